import type { SeatDatabase } from '../db/open.js';
import type { SeatConflict } from '../errors.js';
import { checkSeatList, sqlList, writeAllOrNothing, type EventRef, type SeatState } from './events.js';
import { checkUser } from './limits.js';

export interface BookOptions {
  /** Event name, or id. */
  event: string;
  seats: readonly string[];
  /** The lock holder the seats are booked for. */
  user: string;
}

export interface BookResult {
  event: EventRef;
  user: string;
  seats: Array<{ seat: string; bookedAt: Date }>;
}

/**
 * Turns a user's locks into bookings, all or nothing, in one conditional
 * write: only seats this user holds with a lock that has not expired at the
 * instant of the write, by the database clock. Otherwise nothing is booked and
 * a `SeatConflictError` says why, per seat.
 */
export async function bookSeats(db: SeatDatabase, options: BookOptions): Promise<BookResult> {
  checkUser(options.user);
  checkSeatList(options.seats);
  const { engine } = db;
  const user = options.user;
  const { event, rows } = await writeAllOrNothing(db, {
    action: 'book',
    event: options.event,
    seats: options.seats,
    write: async (trx, event) =>
      engine.rows<{ seat_number: string; booked_at: unknown }>(
        await trx.raw(
          `UPDATE seats SET
             status = 'booked', booked_by = locked_by, booked_at = ${engine.now},
             locked_by = NULL, locked_until = NULL, locked_at = NULL
           WHERE event_id = :eventId AND seat_number IN (:seats)
             AND status = 'locked' AND locked_by = :user AND locked_until > ${engine.now}
           RETURNING seat_number, booked_at`,
          { eventId: event.id, seats: sqlList(trx, options.seats), user },
        ),
      ),
    refusal: (state) => bookingConflict(state, user),
  });
  return {
    event,
    user,
    seats: rows.map((row) => ({ seat: row.seat_number, bookedAt: engine.readInstant(row.booked_at) })),
  };
}

function bookingConflict(state: SeatState, user: string): SeatConflict {
  const conflict = { seat: state.seat, lockedBy: state.lockedBy, lockedUntil: state.lockedUntil };
  if (state.status === 'booked') return { ...conflict, reason: 'booked' };
  if (state.status === 'locked' && state.lockedBy === user) return { ...conflict, reason: 'expired' };
  if (state.status === 'locked' && !state.expired) return { ...conflict, reason: 'held' };
  // Available, or someone else's lock that expired: this user does not hold it.
  return { ...conflict, reason: 'not-locked' };
}
