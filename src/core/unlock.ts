import type { CallOptions, SeatDatabase } from '../db/open.js';
import { checkSeatList, writeAllOrNothing, type EventRef } from './events.js';
import { checkUser } from './limits.js';

export interface UnlockOptions extends CallOptions {
  /** Event name, or id. */
  event: string;
  /** The event's id, when the caller has it: skips the lookup (the result then names the event as cached, or `#id`). */
  eventId?: number;
  seats: readonly string[];
  /** Only release this user's locks; any other seat refuses the whole request. */
  user?: string;
}

export interface UnlockedSeat {
  seat: string;
  /** Who held the lock that was released. */
  lockedBy: string;
  lockedUntil: Date;
  /** The token of the lock that was released; null where the mapping has no lock token. */
  lockToken: number | null;
  releasedAt: Date;
}

export interface UnlockResult {
  event: EventRef;
  seats: UnlockedSeat[];
}

/**
 * Releases specific locks on purpose, all or nothing, writing their history
 * (reason `unlocked`) in the same transaction. Seats that are not locked, are
 * booked, or (with `user`) are held by someone else refuse the whole request.
 */
export async function unlockSeats(db: SeatDatabase, options: UnlockOptions): Promise<UnlockResult> {
  if (options.user !== undefined) checkUser(options.user);
  checkSeatList(options.seats);
  const { event, rows } = await writeAllOrNothing(db, {
    action: 'unlock',
    event: options.event,
    eventId: options.eventId,
    signal: options.signal,
    timeoutMs: options.timeoutMs,
    seats: options.seats,
    user: options.user,
    write: (store, event) => store.unlockSeats({ eventId: event.id, seats: options.seats, user: options.user ?? null }),
    refusal: (state) => ({
      seat: state.seat,
      reason:
        state.status === 'booked'
          ? 'booked'
          : state.status === 'other'
            ? 'unavailable'
            : state.status === 'locked'
              ? 'held'
              : 'not-locked',
      lockedBy: state.lockedBy,
      lockedUntil: state.lockedUntil,
    }),
  });
  return { event, seats: rows };
}
