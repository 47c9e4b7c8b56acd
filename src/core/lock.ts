import type { CallOptions, SeatDatabase } from '../db/open.js';
import { usageError } from '../errors.js';
import { checkSeatList, writeAllOrNothing, type EventRef } from './events.js';
import { checkUser, MINUTE, HOUR, SECOND } from './limits.js';

export const DEFAULT_TTL_MS = 5 * MINUTE;
export const MIN_TTL_MS = 100;
export const MAX_TTL_MS = 24 * HOUR;
export const DEFAULT_MAX_HOLD_MS = 30 * MINUTE;
export const MAX_MAX_HOLD_MS = 7 * 24 * HOUR;

export interface LockOptions extends CallOptions {
  /** Event name, or id. */
  event: string;
  /** The event's id, when the caller has it: skips the lookup (the result then names the event as cached, or `#id`). */
  eventId?: number;
  seats: readonly string[];
  /** Who holds the lock. */
  user: string;
  /** How long the lock lasts. Default 5 minutes, at most 24 hours. */
  ttlMs?: number;
  /**
   * A holder re-locking its seats can't keep them longer than this after it
   * first locked them. Default 30 minutes where the mapping records when a hold
   * began; without such a column there is no cap, and asking for one is an error.
   */
  maxHoldMs?: number;
  /**
   * A re-lock by the same holder within this long after their hold ended
   * continues that hold, so the cap can't be dodged by letting a lock lapse.
   * Default: the hold cap itself.
   */
  holdCooldownMs?: number;
}

export interface LockedSeat {
  seat: string;
  lockedUntil: Date;
  /** When this holder first locked the seat (earlier than now for a renewal); null where the mapping doesn't record it. */
  lockedAt: Date | null;
  /** Changes on every lock: tells this lock from any earlier or later one; null where the mapping has no token. */
  lockToken: number | null;
  /** The holder already held the seat; the lock was extended. */
  renewed: boolean;
  /** The expiry was cut short by the hold cap. */
  capped: boolean;
}

export interface LockResult {
  event: EventRef;
  user: string;
  /** The database clock when the lock was taken. */
  now: Date;
  seats: LockedSeat[];
}

/**
 * Locks seats for a user, all or nothing, in one transaction. A seat can be
 * locked when it is available or its lock has expired (whoever held it); the
 * holder's own seats are re-locked with the new expiry, up to the hold cap.
 * Otherwise nothing changes and a `SeatConflictError` says why, per seat.
 */
export async function lockSeats(db: SeatDatabase, options: LockOptions): Promise<LockResult> {
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  checkUser(options.user);
  checkSeatList(options.seats);
  if (!Number.isSafeInteger(ttlMs) || ttlMs < MIN_TTL_MS || ttlMs > MAX_TTL_MS) {
    throw usageError('the lock TTL must be between 100 milliseconds and 24 hours');
  }
  const holdStart = db.mapping.seats.lockedAt !== null;
  if (options.maxHoldMs !== undefined && !holdStart) {
    throw usageError("a hold cap needs the hold's start, and this mapping has no such column (seats.lockedAt)");
  }
  const maxHoldMs = holdStart ? (options.maxHoldMs ?? DEFAULT_MAX_HOLD_MS) : null;
  if (maxHoldMs !== null && (!Number.isSafeInteger(maxHoldMs) || maxHoldMs < SECOND || maxHoldMs > MAX_MAX_HOLD_MS)) {
    throw usageError('the hold cap must be between 1 second and 7 days');
  }
  const cooldownMs = options.holdCooldownMs ?? maxHoldMs ?? 0;
  if (!Number.isSafeInteger(cooldownMs) || cooldownMs < 0 || cooldownMs > MAX_MAX_HOLD_MS) {
    throw usageError('the hold cool-down must be between 0 and 7 days');
  }
  const user = options.user;
  const { event, rows, now, renewed } = await writeAllOrNothing(db, {
    action: 'lock',
    event: options.event,
    eventId: options.eventId,
    signal: options.signal,
    timeoutMs: options.timeoutMs,
    seats: options.seats,
    user,
    write: (store, event) =>
      store.lockSeats({ eventId: event.id, seats: options.seats, user, ttlMs, maxHoldMs, cooldownMs }),
    // A seat the write refused that was free to lock, or the holder's own, was refused by the hold cap.
    refusal: (state) => ({
      seat: state.seat,
      reason:
        state.status === 'booked'
          ? 'booked'
          : state.status === 'other'
            ? 'unavailable'
            : state.status === 'locked' && !state.expired && !state.mine
              ? 'held'
              : 'hold-cap',
      lockedBy: state.lockedBy,
      lockedUntil: state.lockedUntil,
      lockedAt: state.lockedAt,
    }),
  });
  return {
    event,
    user,
    now,
    seats: rows.map((row): LockedSeat => ({
      seat: row.seat,
      lockedUntil: row.lockedUntil,
      lockedAt: row.lockedAt,
      lockToken: row.lockToken,
      renewed: renewed.has(row.seat),
      // The cap, not the TTL, decided the expiry.
      capped:
        maxHoldMs !== null &&
        row.lockedAt !== null &&
        row.lockedAt.getTime() + maxHoldMs < now.getTime() + ttlMs,
    })),
  };
}
