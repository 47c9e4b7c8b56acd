import type { SeatDatabase } from '../../src/index.js';

/** Creates an event with these seats, all available; returns its id. */
export async function createEvent(db: SeatDatabase, name: string, seats: readonly string[]): Promise<number> {
  const [row] = await db.knex('events').insert({ name }).returning('id');
  const id = (row as { id: number }).id;
  for (let i = 0; i < seats.length; i += 500) {
    await db
      .knex('seats')
      .insert(seats.slice(i, i + 500).map((seat_number) => ({ event_id: id, seat_number, status: 'available' })));
  }
  return id;
}

/** Seat numbers A1…A<n>. */
export function seatNumbers(count: number, row = 'A'): string[] {
  return Array.from({ length: count }, (_, i) => `${row}${i + 1}`);
}

/**
 * Writes a lock directly: held by `user` until `untilMs` from the database
 * clock's now (negative: already expired). Tests make locks expired by writing
 * past instants, never by sleeping.
 */
export async function placeLock(
  db: SeatDatabase,
  eventId: number,
  seats: readonly string[],
  user: string,
  untilMs: number,
  heldForMs = 5 * 60_000,
): Promise<void> {
  const { engine, knex } = db;
  await knex('seats')
    .where('event_id', eventId)
    .whereIn('seat_number', [...seats])
    .update({
      status: 'locked',
      locked_by: user,
      locked_until: knex.raw(engine.addMs(engine.now, '?'), [untilMs]),
      locked_at: knex.raw(engine.addMs(engine.now, '?'), [untilMs - heldForMs]),
      lock_token: knex.raw('lock_token + 1'),
    });
}

export async function bookDirectly(
  db: SeatDatabase,
  eventId: number,
  seats: readonly string[],
  user: string,
): Promise<void> {
  await db
    .knex('seats')
    .where('event_id', eventId)
    .whereIn('seat_number', [...seats])
    .update({
      status: 'booked',
      booked_by: user,
      booked_at: db.knex.raw(db.engine.now),
    });
}

export interface SeatRow {
  seat_number: string;
  status: string;
  locked_by: string | null;
  locked_until: Date | null;
  lock_token: number;
  booked_by: string | null;
}

export async function seatRows(db: SeatDatabase, eventId: number): Promise<Map<string, SeatRow>> {
  const rows = await db.knex('seats').where('event_id', eventId).orderBy('id');
  return new Map(
    rows.map((row: any) => [
      row.seat_number,
      {
        seat_number: row.seat_number,
        status: row.status,
        locked_by: row.locked_by,
        locked_until: row.locked_until == null ? null : db.engine.readInstant(row.locked_until),
        lock_token: Number(row.lock_token),
        booked_by: row.booked_by,
      },
    ]),
  );
}

export async function historyRows(db: SeatDatabase): Promise<any[]> {
  return db.knex('release_history').orderBy('id');
}

/** Every row of every seatctl table, in a stable order: compare before and after to prove nothing changed. */
export async function dumpDatabase(db: SeatDatabase): Promise<string> {
  const out: Record<string, unknown[]> = {};
  for (const [table, order] of [
    ['events', 'id'],
    ['seats', 'id'],
    ['release_history', 'id'],
    ['release_runs', 'host'],
    ['knex_migrations', 'id'],
  ] as const) {
    out[table] = await db.knex(table).orderBy(order);
  }
  return JSON.stringify(out);
}
