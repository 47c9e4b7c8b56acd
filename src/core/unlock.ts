import type { SeatDatabase } from '../db/open.js';
import { checkSeatList, sqlList, writeAllOrNothing, type EventRef } from './events.js';
import { checkUser } from './limits.js';

export interface UnlockOptions {
  /** Event name, or id. */
  event: string;
  seats: readonly string[];
  /** Only release this user's locks; any other seat refuses the whole request. */
  user?: string;
}

export interface UnlockedSeat {
  seat: string;
  /** Who held the lock that was released. */
  lockedBy: string;
  lockedUntil: Date;
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
  const { engine } = db;
  const byUser = options.user === undefined ? '' : ' AND locked_by = :user';
  const { event, rows } = await writeAllOrNothing(db, {
    action: 'unlock',
    event: options.event,
    seats: options.seats,
    async write(trx, event) {
      const bindings = { eventId: event.id, seats: sqlList(trx, options.seats), user: options.user ?? null };
      // The history first, from the seats as they are; then the seats, under the same row locks.
      const logged = engine.rows<{
        seat_number: string;
        locked_by: string;
        locked_until: unknown;
        released_at: unknown;
      }>(
        await trx.raw(
          `INSERT INTO release_history
             (event_id, seat_id, seat_number, locked_by, locked_until, lock_token, released_at, reason)
           SELECT event_id, id, seat_number, locked_by, locked_until, lock_token, ${engine.now}, 'unlocked'
           FROM seats
           WHERE event_id = :eventId AND seat_number IN (:seats) AND status = 'locked'${byUser}
           RETURNING seat_number, locked_by, locked_until, released_at`,
          bindings,
        ),
      );
      await trx.raw(
        `UPDATE seats SET status = 'available', locked_by = NULL, locked_until = NULL, locked_at = NULL
         WHERE event_id = :eventId AND seat_number IN (:seats) AND status = 'locked'${byUser}`,
        bindings,
      );
      return logged;
    },
    refusal: (state) => ({
      seat: state.seat,
      reason: state.status === 'booked' ? 'booked' : state.status === 'locked' ? 'held' : 'not-locked',
      lockedBy: state.lockedBy,
      lockedUntil: state.lockedUntil,
    }),
  });
  return {
    event,
    seats: rows.map((row): UnlockedSeat => ({
      seat: row.seat_number,
      lockedBy: row.locked_by,
      lockedUntil: engine.readInstant(row.locked_until),
      releasedAt: engine.readInstant(row.released_at),
    })),
  };
}
