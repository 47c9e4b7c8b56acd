import { guard, type SeatDatabase } from '../db/open.js';
import { ensureSchema } from '../db/schema.js';
import { usageError } from '../errors.js';
import { resolveEvent } from './events.js';
import { checkUser } from './limits.js';

export type ReleaseReason = 'expired' | 'unlocked' | 'replaced';

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

export interface HistoryEntry {
  id: number;
  event: string;
  eventId: number;
  seat: string;
  /** Who held the lock. */
  lockedBy: string;
  /** Until when the lock was valid. */
  lockedUntil: Date;
  lockToken: number;
  releasedAt: Date;
  /** `expired`: by release-expired-locks; `unlocked`: by unlock; `replaced`: an expired lock taken over by a new lock before any release ran. */
  reason: ReleaseReason;
}

export const MAX_HISTORY_LIMIT = 1_000_000;

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
  const { knex, engine } = db;
  return guard(db, async () => {
    await ensureSchema(db);
    const event = options.event === undefined ? undefined : await resolveEvent(db, options.event);
    const query = knex('release_history as h')
      .leftJoin('events as e', 'e.id', 'h.event_id')
      .select(
        'h.id',
        'e.name as event',
        'h.event_id',
        'h.seat_number',
        'h.locked_by',
        'h.locked_until',
        'h.lock_token',
        'h.released_at',
        'h.reason',
      )
      .orderBy('h.released_at', 'desc')
      .orderBy('h.id', 'desc')
      .limit(limit);
    if (event) query.where('h.event_id', event.id);
    if (options.seat !== undefined) query.where('h.seat_number', options.seat);
    if (options.user !== undefined) query.where('h.locked_by', options.user);
    if (options.since !== undefined) query.where('h.released_at', '>=', engine.bindInstant(options.since));
    if (options.withinMs !== undefined) {
      query.whereRaw(`h.released_at >= ${engine.addMs(engine.now, '?')}`, [-options.withinMs]);
    }
    const rows: Array<{
      id: number | string;
      event: string | null;
      event_id: number;
      seat_number: string;
      locked_by: string;
      locked_until: unknown;
      lock_token: number;
      released_at: unknown;
      reason: ReleaseReason;
    }> = await query;
    return rows.map((row) => ({
      id: Number(row.id),
      event: row.event ?? `#${row.event_id}`,
      eventId: row.event_id,
      seat: row.seat_number,
      lockedBy: row.locked_by,
      lockedUntil: engine.readInstant(row.locked_until),
      lockToken: Number(row.lock_token),
      releasedAt: engine.readInstant(row.released_at),
      reason: row.reason,
    }));
  });
}
