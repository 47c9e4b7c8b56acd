import type { CallOptions, SeatDatabase } from '../db/open.js';
import type { SeatConflict } from '../errors.js';
import { checkSeatList, writeAllOrNothing, type EventRef, type SeatState } from './events.js';
import { checkUser } from './limits.js';

export interface BookOptions extends CallOptions {
  /** Event name, or id. */
  event: string;
  /** The event's id, when the caller has it: skips the lookup (the result then names the event as cached, or `#id`). */
  eventId?: number;
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
  const user = options.user;
  const { event, rows } = await writeAllOrNothing(db, {
    action: 'book',
    event: options.event,
    eventId: options.eventId,
    signal: options.signal,
    timeoutMs: options.timeoutMs,
    seats: options.seats,
    user,
    write: (store, event) => store.bookSeats({ eventId: event.id, seats: options.seats, user }),
    refusal: bookingConflict,
  });
  return { event, user, seats: rows };
}

function bookingConflict(state: SeatState): SeatConflict {
  const conflict = { seat: state.seat, lockedBy: state.lockedBy, lockedUntil: state.lockedUntil };
  if (state.status === 'booked') return { ...conflict, reason: 'booked' };
  if (state.status === 'other') return { ...conflict, reason: 'unavailable' };
  if (state.status === 'locked' && state.mine) return { ...conflict, reason: 'expired' };
  if (state.status === 'locked' && !state.expired) return { ...conflict, reason: 'held' };
  // Available, or someone else's lock that expired: this user does not hold it.
  return { ...conflict, reason: 'not-locked' };
}
