import type { Knex } from 'knex';
import type { Engine } from '../src/db/engine.js';

// The situation from the original bug report: 100 seats, 19 locks held by
// admin that have long expired, 3 live locks held by alice, 5 booked seats.
export const DEMO_EVENT = 'Taylor Swift - Eras Tour';
export const DEMO_ROWS = ['A', 'B', 'C', 'D', 'E'];
export const DEMO_SEATS_PER_ROW = 20;
export const DEMO_EXPIRED = Array.from({ length: 19 }, (_, i) => `A${i + 1}`);
export const DEMO_ACTIVE = ['B1', 'B2', 'B3'];
export const DEMO_BOOKED = ['C1', 'C2', 'C3', 'C4', 'C5'];

const MINUTE = 60_000;

/** The demo event's id, so the help's examples (`seatctl lock 1 B7 …`) keep working after any re-seed. */
export const DEMO_EVENT_ID = 1;

/**
 * Replaces the demo event's seats and history with the demo state, timed
 * against the database clock, and clears the release heartbeat with the
 * history it summarised. The event keeps its id (1 on a new database).
 */
export async function seed(trx: Knex.Transaction, engine: Engine): Promise<void> {
  const existing = await trx('events').where('name', DEMO_EVENT).first('id');
  let eventId: number;
  if (existing) {
    eventId = Number(existing.id);
    await trx('release_history').where('event_id', eventId).delete();
    await trx('seats').where('event_id', eventId).delete();
  } else {
    const taken = await trx('events').where('id', DEMO_EVENT_ID).first('id');
    const [event] = await trx('events')
      .insert(taken ? { name: DEMO_EVENT } : { id: DEMO_EVENT_ID, name: DEMO_EVENT })
      .returning('id');
    eventId = Number((event as { id: number }).id);
    // An id given explicitly leaves PostgreSQL's sequence behind: move it past every id in use.
    if (engine.name === 'postgres') {
      await trx.raw(`SELECT setval(pg_get_serial_sequence('events', 'id'), (SELECT MAX(id) FROM events))`);
    }
  }
  await trx('release_runs').delete();
  const at = (offsetMs: number) => trx.raw(engine.addMs(engine.now, '?'), [offsetMs]);

  const seats = DEMO_ROWS.flatMap((row) =>
    Array.from({ length: DEMO_SEATS_PER_ROW }, (_, i) => {
      const seat = `${row}${i + 1}`;
      const base = { event_id: eventId, seat_number: seat, lock_token: 0 };
      const expired = DEMO_EXPIRED.indexOf(seat);
      if (expired >= 0) {
        // Expired between 2 and 20 minutes ago, after a 5-minute hold.
        const until = -(20 - expired) * MINUTE;
        return {
          ...base,
          status: 'locked',
          locked_by: 'admin',
          locked_until: at(until),
          locked_at: at(until - 5 * MINUTE),
          lock_token: 1,
        };
      }
      const active = DEMO_ACTIVE.indexOf(seat);
      if (active >= 0) {
        return {
          ...base,
          status: 'locked',
          locked_by: 'alice',
          locked_until: at((3 + active) * MINUTE),
          locked_at: at(-MINUTE),
          lock_token: 1,
        };
      }
      if (DEMO_BOOKED.includes(seat)) {
        return { ...base, status: 'booked', booked_by: 'bob', booked_at: at(-30 * MINUTE), lock_token: 1 };
      }
      return { ...base, status: 'available' };
    }),
  );
  await trx('seats').insert(seats);
}
