import { guard, type SeatDatabase } from '../db/open.js';
import { ensureSchema } from '../db/schema.js';
import { SeatConflictError, type SeatConflict } from '../errors.js';
import { checkSeatList, claimSeats, sqlList, resolveEvent, seatStates, type EventRef } from './events.js';
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
  const seats = [...options.seats];
  const user = options.user;
  const byUser = user === undefined ? '' : ' AND locked_by = :user';

  return guard(db, async () => {
    await ensureSchema(db);
    const event = await resolveEvent(db, options.event);
    return engine.writeTransaction(db.knex, async (trx) => {
      await claimSeats(db, trx, event, seats);
      const bindings = { eventId: event.id, seats: sqlList(trx, seats), user: user ?? null };
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
      if (logged.length < seats.length) {
        const done = new Set(logged.map((row) => row.seat_number));
        const refused = (await seatStates(db, trx, event, seats)).filter((state) => !done.has(state.seat));
        throw new SeatConflictError(
          'unlock',
          event.name,
          refused.map((state): SeatConflict => ({
            seat: state.seat,
            reason: state.status === 'booked' ? 'booked' : state.status === 'locked' ? 'held' : 'not-locked',
            lockedBy: state.lockedBy,
            lockedUntil: state.lockedUntil,
          })),
        );
      }
      await trx.raw(
        `UPDATE seats SET status = 'available', locked_by = NULL, locked_until = NULL, locked_at = NULL
         WHERE event_id = :eventId AND seat_number IN (:seats) AND status = 'locked'${byUser}`,
        bindings,
      );
      const order = new Map(seats.map((seat, index) => [seat, index]));
      return {
        event,
        seats: logged
          .map((row): UnlockedSeat => ({
            seat: row.seat_number,
            lockedBy: row.locked_by,
            lockedUntil: engine.readInstant(row.locked_until),
            releasedAt: engine.readInstant(row.released_at),
          }))
          .sort((a, b) => order.get(a.seat)! - order.get(b.seat)!),
      };
    });
  });
}
