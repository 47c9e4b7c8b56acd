import type { SeatDatabase } from '../db/open.js';
import { withSeats } from '../db/ready.js';
import { usageError } from '../errors.js';
import { optionalEvent, resolveEvent, type EventRef } from './events.js';
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
  return withSeats(db, async (store) => {
    const event = await optionalEvent(store, options.event);
    const now = await store.now();
    const counts = await store.eventCounts(now, event?.id);
    const lastRun = await store.lastRun();
    const events = counts.map((row): EventStats => ({
      event: row.event ?? `#${row.eventId}`,
      eventId: row.eventId,
      seats: row.seats,
      available: row.available,
      locked: row.locked,
      expired: row.expired,
      booked: row.booked,
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
  return withSeats(db, async (store) => {
    const ref: EventRef = await resolveEvent(store, event);
    const now = await store.now();
    return { event: ref, now, seats: await store.lockableSeats(ref.id, now) };
  });
}
