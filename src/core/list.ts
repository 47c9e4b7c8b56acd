import { guard, type SeatDatabase } from '../db/open.js';
import { ensureSchema } from '../db/schema.js';
import { usageError } from '../errors.js';
import { databaseNow, resolveEvent } from './events.js';
import { checkUser } from './limits.js';

export interface ListLockedOptions {
  /** Only this event (name or id). */
  event?: string;
  /** Only expired locks, or only active ones. Default both. */
  state?: 'expired' | 'active';
  /** Only locks held by this user. */
  user?: string;
  /** Rows read per query. Default 5000. */
  pageSize?: number;
}

export interface LockedSeatRow {
  event: string;
  eventId: number;
  seat: string;
  lockedBy: string;
  lockedUntil: Date;
  lockedAt: Date;
  lockToken: number;
  /** The lock has expired (by the database clock) and awaits release. */
  expired: boolean;
}

export interface LockedPage {
  /** The database clock the page was judged against; the same for every page of a listing. */
  now: Date;
  seats: LockedSeatRow[];
}

/** Every locked seat, in event and seat order, a page at a time so memory stays flat. */
export async function* listLockedPages(db: SeatDatabase, options: ListLockedOptions = {}): AsyncGenerator<LockedPage> {
  const pageSize = options.pageSize ?? 5000;
  if (options.user !== undefined) checkUser(options.user);
  if (options.state !== undefined && options.state !== 'expired' && options.state !== 'active') {
    throw usageError("the lock state must be 'expired' or 'active'");
  }
  const { knex, engine } = db;
  const { eventId, now } = await guard(db, async () => {
    await ensureSchema(db);
    const event = options.event === undefined ? undefined : await resolveEvent(db, options.event);
    return { eventId: event?.id, now: await databaseNow(db, knex) };
  });
  const nowSql = engine.castInstant(':now');
  let afterId = 0;
  for (;;) {
    const rows = await guard(db, async () =>
      engine.rows<{
        id: number;
        event: string;
        event_id: number;
        seat_number: string;
        locked_by: string;
        locked_until: unknown;
        locked_at: unknown;
        lock_token: number;
        expired: unknown;
      }>(
        await knex.raw(
          `SELECT s.id, e.name AS event, s.event_id, s.seat_number, s.locked_by, s.locked_until, s.locked_at,
                  s.lock_token, CASE WHEN s.locked_until <= ${nowSql} THEN 1 ELSE 0 END AS expired
           FROM seats s JOIN events e ON e.id = s.event_id
           WHERE s.status = 'locked' AND s.id > :afterId
             ${eventId === undefined ? '' : 'AND s.event_id = :eventId'}
             ${options.user === undefined ? '' : 'AND s.locked_by = :user'}
             ${options.state === 'expired' ? `AND s.locked_until <= ${nowSql}` : ''}
             ${options.state === 'active' ? `AND s.locked_until > ${nowSql}` : ''}
           ORDER BY s.id
           LIMIT :limit`,
          {
            now: engine.bindInstant(now),
            afterId,
            eventId: eventId ?? null,
            user: options.user ?? null,
            limit: pageSize,
          },
        ),
      ),
    );
    if (rows.length > 0 || afterId === 0) {
      yield {
        now,
        seats: rows.map((row) => ({
          event: row.event,
          eventId: row.event_id,
          seat: row.seat_number,
          lockedBy: row.locked_by,
          lockedUntil: engine.readInstant(row.locked_until),
          lockedAt: engine.readInstant(row.locked_at),
          lockToken: Number(row.lock_token),
          expired: Number(row.expired) === 1,
        })),
      };
    }
    if (rows.length < pageSize) return;
    afterId = rows[rows.length - 1]!.id;
  }
}

/** Every locked seat at once; see listLockedPages for very many. */
export async function listLocked(db: SeatDatabase, options: ListLockedOptions = {}): Promise<LockedPage> {
  let now: Date | undefined;
  const seats: LockedSeatRow[] = [];
  for await (const page of listLockedPages(db, options)) {
    now = page.now;
    seats.push(...page.seats);
  }
  return { now: now!, seats };
}
