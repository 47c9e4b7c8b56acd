import type { Knex } from 'knex';
import type { Engine } from '../src/db/engine.js';

// The hold's start travels into the history, so a holder who re-locks a seat
// soon after their hold ended continues that hold (and its cap) instead of
// starting a new one; the index finds a seat's recent releases.

export async function up(knex: Knex, engine: Engine): Promise<void> {
  await knex.schema.alterTable('release_history', (t) => {
    engine.instantColumn(t, 'locked_at');
    t.index(['seat_id', 'released_at'], 'release_history_seat');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('release_history', (t) => {
    t.dropIndex(['seat_id', 'released_at'], 'release_history_seat');
    t.dropColumn('locked_at');
  });
}
