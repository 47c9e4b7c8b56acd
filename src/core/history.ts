import type { SeatDatabase } from '../db/open.js';
import { withSeats } from '../db/ready.js';
import type { HistoryRow, ReleaseReason } from '../db/seat-store.js';
import { usageError } from '../errors.js';
import { optionalEvent } from './events.js';
import { checkUser } from './limits.js';

export type { ReleaseReason };

export interface HistoryOptions {
  /** Only this event (name or id). */
  event?: string;
  /** Only this seat number. */
  seat?: string;
  /** Only locks this user held. */
  user?: string;
  /** Only releases at or after this instant. */
  since?: Date;
  /** Only releases within this many milliseconds before now (the database clock). */
  withinMs?: number;
  /** At most this many rows, newest first. Default 100. */
  limit?: number;
}

/** A release, with its event's name. */
export interface HistoryEntry extends Omit<HistoryRow, 'event'> {
  event: string;
}

export const MAX_HISTORY_LIMIT = 1_000_000;

/** How many releases the history holds that match these options (the limit aside). */
export async function countHistory(db: SeatDatabase, options: Omit<HistoryOptions, 'limit'> = {}): Promise<number> {
  if (options.user !== undefined) checkUser(options.user);
  return withSeats(db, async (store) => {
    const event = await optionalEvent(store, options.event);
    return store.historyCount({
      eventId: event?.id,
      seat: options.seat,
      user: options.user,
      since: options.since,
      withinMs: options.withinMs,
    });
  });
}

/** The release history, newest first. */
export async function history(db: SeatDatabase, options: HistoryOptions = {}): Promise<HistoryEntry[]> {
  const limit = options.limit ?? 100;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) {
    throw usageError(`the limit must be a whole number from 1 to ${MAX_HISTORY_LIMIT}`);
  }
  if (options.user !== undefined) checkUser(options.user);
  if (options.seat === '') throw usageError('the seat name is empty');
  if (options.since !== undefined && Number.isNaN(options.since.getTime()))
    throw usageError('the since instant is invalid');
  if (options.withinMs !== undefined && (!Number.isSafeInteger(options.withinMs) || options.withinMs < 0)) {
    throw usageError('the since duration must be positive');
  }
  return withSeats(db, async (store) => {
    const event = await optionalEvent(store, options.event);
    const rows = await store.history({
      eventId: event?.id,
      seat: options.seat,
      user: options.user,
      since: options.since,
      withinMs: options.withinMs,
      limit,
    });
    return rows.map((row) => ({ ...row, event: row.event ?? `#${row.eventId}` }));
  });
}
