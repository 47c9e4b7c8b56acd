import type { Knex } from 'knex';
import type { Engine } from '../src/db/engine.js';

// Instants are UTC with millisecond precision on both engines: integer epoch
// milliseconds on SQLite, timestamptz(3) on PostgreSQL (see engine.instantColumn).

export async function up(knex: Knex, engine: Engine): Promise<void> {
  await knex.schema.createTable('events', (t) => {
    t.increments('id');
    t.text('name').notNullable().unique();
    engine
      .instantColumn(t, 'created_at')
      .notNullable()
      .defaultTo(knex.raw(`(${engine.now})`));
  });

  await knex.schema.createTable('seats', (t) => {
    t.increments('id');
    t.integer('event_id').notNullable().references('id').inTable('events').onDelete('CASCADE');
    t.text('seat_number').notNullable();
    t.text('status').notNullable().defaultTo('available');
    t.text('locked_by');
    engine.instantColumn(t, 'locked_until');
    // When the current holder first locked the seat: renewals keep it, and
    // --max-hold counts from it.
    engine.instantColumn(t, 'locked_at');
    // Changes on every lock, so a stale holder can be told from a new one.
    t.integer('lock_token').notNullable().defaultTo(0);
    t.text('booked_by');
    engine.instantColumn(t, 'booked_at');
    t.unique(['event_id', 'seat_number']);
    t.check("status IN ('available', 'locked', 'booked')", [], 'seats_status_valid');
    t.check(
      "status <> 'locked' OR (locked_by IS NOT NULL AND locked_until IS NOT NULL AND locked_at IS NOT NULL)",
      [],
      'seats_lock_complete',
    );
    t.check("status = 'locked' OR (locked_by IS NULL AND locked_until IS NULL)", [], 'seats_unlocked_clean');
    t.check("status <> 'booked' OR booked_by IS NOT NULL", [], 'seats_booking_complete');
  });
  // The locked seats, with their expiry: finding the expired locks costs what
  // the locked seats cost, not the table. Ordered by id so that a release
  // batch takes neighbouring rows: each batch then rewrites few pages, where
  // batches in expiry order would rewrite most of the table's pages each time.
  await knex.raw(`CREATE INDEX seats_locked ON seats (id, locked_until) WHERE status = 'locked'`);

  await knex.schema.createTable('release_history', (t) => {
    t.bigIncrements('id');
    // No foreign keys: the history outlives what it describes.
    t.integer('event_id').notNullable();
    t.integer('seat_id').notNullable();
    t.text('seat_number').notNullable();
    t.text('locked_by').notNullable();
    engine.instantColumn(t, 'locked_until').notNullable();
    t.integer('lock_token').notNullable();
    engine.instantColumn(t, 'released_at').notNullable();
    t.text('reason').notNullable();
    t.check("reason IN ('expired', 'unlocked', 'replaced')", [], 'release_history_reason_valid');
    // One index: every extra one is written for every released lock.
    t.index(['released_at'], 'release_history_released_at');
  });

  // The heartbeat of release-expired-locks: one row per host, rewritten by every real run.
  await knex.schema.createTable('release_runs', (t) => {
    t.text('host').primary();
    t.integer('pid').notNullable();
    engine.instantColumn(t, 'finished_at').notNullable();
    t.integer('released').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('release_runs');
  await knex.schema.dropTable('release_history');
  await knex.schema.dropTable('seats');
  await knex.schema.dropTable('events');
}
