import type { SeatDatabase } from '../db/open.js';
import { usageError } from '../errors.js';
import { checkSeatList, databaseNow, sqlList, writeAllOrNothing, type EventRef } from './events.js';
import { checkUser, MINUTE, HOUR, SECOND } from './limits.js';

export const DEFAULT_TTL_MS = 5 * MINUTE;
export const MIN_TTL_MS = 100;
export const MAX_TTL_MS = 24 * HOUR;
export const DEFAULT_MAX_HOLD_MS = 30 * MINUTE;
export const MAX_MAX_HOLD_MS = 7 * 24 * HOUR;

export interface LockOptions {
  /** Event name, or id. */
  event: string;
  seats: readonly string[];
  /** Who holds the lock. */
  user: string;
  /** How long the lock lasts. Default 5 minutes, at most 24 hours. */
  ttlMs?: number;
  /** A holder re-locking its seats can't keep them longer than this after it first locked them. Default 30 minutes. */
  maxHoldMs?: number;
}

export interface LockedSeat {
  seat: string;
  lockedUntil: Date;
  /** When this holder first locked the seat (earlier than now for a renewal). */
  lockedAt: Date;
  /** Changes on every lock: tells this lock from any earlier or later one. */
  lockToken: number;
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
  const maxHoldMs = options.maxHoldMs ?? DEFAULT_MAX_HOLD_MS;
  checkUser(options.user);
  checkSeatList(options.seats);
  if (!Number.isSafeInteger(ttlMs) || ttlMs < MIN_TTL_MS || ttlMs > MAX_TTL_MS) {
    throw usageError('the lock TTL must be between 100 milliseconds and 24 hours');
  }
  if (!Number.isSafeInteger(maxHoldMs) || maxHoldMs < SECOND || maxHoldMs > MAX_MAX_HOLD_MS) {
    throw usageError('the hold cap must be between 1 second and 7 days');
  }
  const { engine } = db;
  const user = options.user;
  let now = new Date(0);
  let renewing = new Set<string>();
  const { event, rows } = await writeAllOrNothing(db, {
    action: 'lock',
    event: options.event,
    seats: options.seats,
    async write(trx, event) {
      // One instant for every statement below, read once the rows are ours.
      now = await databaseNow(db, trx);
      const bindings = {
        now: engine.bindInstant(now),
        eventId: event.id,
        seats: sqlList(trx, options.seats),
        user,
        ttl: ttlMs,
        maxHold: maxHoldMs,
      };
      const NOW = engine.castInstant(':now');

      // Which of the seats this holder already holds (for the report: the UPDATE decides).
      renewing = new Set<string>(
        await trx('seats')
          .where('event_id', event.id)
          .whereIn('seat_number', [...options.seats])
          .where({ status: 'locked', locked_by: user })
          .whereRaw(`locked_until > ${engine.castInstant('?')}`, [bindings.now])
          .pluck('seat_number'),
      );

      // An expired lock taken over here was never released: its history row says so.
      await trx.raw(
        `INSERT INTO release_history
           (event_id, seat_id, seat_number, locked_by, locked_until, lock_token, released_at, reason)
         SELECT event_id, id, seat_number, locked_by, locked_until, lock_token, ${NOW}, 'replaced'
         FROM seats
         WHERE event_id = :eventId AND seat_number IN (:seats) AND status = 'locked' AND locked_until <= ${NOW}`,
        bindings,
      );

      const holding = `status = 'locked' AND locked_by = :user AND locked_until > ${NOW}`;
      return engine.rows<{ seat_number: string; locked_until: unknown; locked_at: unknown; lock_token: number }>(
        await trx.raw(
          `UPDATE seats SET
             locked_until = CASE WHEN ${holding}
               THEN ${engine.least(engine.addMs(NOW, ':ttl'), engine.addMs('locked_at', ':maxHold'))}
               ELSE ${engine.addMs(NOW, ':ttl')} END,
             locked_at = CASE WHEN ${holding} THEN locked_at ELSE ${NOW} END,
             status = 'locked',
             locked_by = :user,
             lock_token = lock_token + 1
           WHERE event_id = :eventId AND seat_number IN (:seats)
             AND (status = 'available'
                  OR (status = 'locked' AND (locked_until <= ${NOW}
                      OR (locked_by = :user AND ${engine.addMs('locked_at', ':maxHold')} > ${NOW}))))
           RETURNING seat_number, locked_until, locked_at, lock_token`,
          bindings,
        ),
      );
    },
    refusal: (state) => ({
      seat: state.seat,
      reason: state.status === 'booked' ? 'booked' : state.lockedBy === user ? 'hold-cap' : 'held',
      lockedBy: state.lockedBy,
      lockedUntil: state.lockedUntil,
      lockedAt: state.lockedAt,
    }),
  });
  return {
    event,
    user,
    now,
    seats: rows.map((row): LockedSeat => {
      const lockedUntil = engine.readInstant(row.locked_until);
      const lockedAt = engine.readInstant(row.locked_at);
      return {
        seat: row.seat_number,
        lockedUntil,
        lockedAt,
        lockToken: Number(row.lock_token),
        renewed: renewing.has(row.seat_number),
        capped: lockedUntil.getTime() < now.getTime() + ttlMs,
      };
    }),
  };
}
