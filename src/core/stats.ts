import { guard, type SeatDatabase } from '../db/open.js';
import { ensureSchema } from '../db/schema.js';
import { usageError } from '../errors.js';
import { databaseNow, resolveEvent, type EventRef } from './events.js';
import { MINUTE } from './limits.js';

export const DEFAULT_STALE_AFTER_MS = 5 * MINUTE;

export interface StatsOptions {
  /** Only this event (name or id). */
  event?: string;
  /** Expired locks waiting longer than this since the last release run make the report stale. Default 5 minutes. */
  staleAfterMs?: number;
}

export interface EventStats {
  event: string;
  eventId: number;
  seats: number;
  available: number;
  /** Locked, and the lock is still valid. */
  locked: number;
  /** Locked, expired, and waiting for release-expired-locks. */
  expired: number;
  booked: number;
}

export interface ReleaseRun {
  host: string;
  pid: number;
  finishedAt: Date;
  released: number;
}

export interface StatsReport {
  /** The database clock the report was judged against. */
  now: Date;
  events: EventStats[];
  /** The most recent real run of release-expired-locks, from any host; null if none ever ran. */
  lastRun: ReleaseRun | null;
  /** Expired locks are waiting and no release has run for longer than staleAfterMs. */
  stale: boolean;
  staleAfterMs: number;
}

/** Per-event seat counts, the release heartbeat, and whether the sweeper looks stopped. */
export async function stats(db: SeatDatabase, options: StatsOptions = {}): Promise<StatsReport> {
  const staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  if (!Number.isSafeInteger(staleAfterMs) || staleAfterMs < 1000)
    throw usageError('the stale-after period must be at least 1 second');
  const { knex, engine } = db;
  return guard(db, async () => {
    await ensureSchema(db);
    const event: EventRef | undefined = options.event === undefined ? undefined : await resolveEvent(db, options.event);
    const now = await databaseNow(db, knex);
    const NOW = engine.castInstant(':now');
    const count = (condition: string) => `SUM(CASE WHEN ${condition} THEN 1 ELSE 0 END)`;
    const rows = engine.rows<Record<string, unknown>>(
      await knex.raw(
        `SELECT e.id, e.name, COUNT(s.id) AS seats,
           ${count("s.status = 'available'")} AS available,
           ${count(`s.status = 'locked' AND s.locked_until > ${NOW}`)} AS locked,
           ${count(`s.status = 'locked' AND s.locked_until <= ${NOW}`)} AS expired,
           ${count("s.status = 'booked'")} AS booked
         FROM events e LEFT JOIN seats s ON s.event_id = e.id
         ${event === undefined ? '' : 'WHERE e.id = :eventId'}
         GROUP BY e.id, e.name
         ORDER BY e.name`,
        { now: engine.bindInstant(now), eventId: event?.id ?? null },
      ),
    );
    const run = await knex('release_runs')
      .orderBy('finished_at', 'desc')
      .first('host', 'pid', 'finished_at', 'released');
    const lastRun: ReleaseRun | null = run
      ? {
          host: run.host,
          pid: Number(run.pid),
          finishedAt: engine.readInstant(run.finished_at),
          released: Number(run.released),
        }
      : null;
    const events = rows.map((row): EventStats => ({
      event: String(row.name),
      eventId: Number(row.id),
      seats: Number(row.seats),
      available: Number(row.available ?? 0),
      locked: Number(row.locked ?? 0),
      expired: Number(row.expired ?? 0),
      booked: Number(row.booked ?? 0),
    }));
    const waiting = events.some((e) => e.expired > 0);
    const stale = waiting && (lastRun === null || now.getTime() - lastRun.finishedAt.getTime() > staleAfterMs);
    return { now, events, lastRun, stale, staleAfterMs };
  });
}

export interface AvailableSeats {
  event: EventRef;
  now: Date;
  /** Seats a buyer can lock now: available, or locked with a lock that has expired (even before any release ran). */
  seats: string[];
}

export async function availableSeats(db: SeatDatabase, event: string): Promise<AvailableSeats> {
  const { knex, engine } = db;
  return guard(db, async () => {
    await ensureSchema(db);
    const ref = await resolveEvent(db, event);
    const now = await databaseNow(db, knex);
    const seats: string[] = await knex('seats')
      .where('event_id', ref.id)
      .where((q) =>
        q
          .where('status', 'available')
          .orWhere((q2) => q2.where('status', 'locked').where('locked_until', '<=', engine.bindInstant(now))),
      )
      .orderBy('id')
      .pluck('seat_number');
    return { event: ref, now, seats };
  });
}
