import { guard, type SeatDatabase } from '../db/open.js';
import { withSeats } from '../db/ready.js';
import type { LockedRow } from '../db/seat-store.js';
import { usageError } from '../errors.js';
import { optionalEvent } from './events.js';
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

/** A locked seat, with its event's name. */
export interface LockedSeatRow extends Omit<LockedRow, 'id'> {
  event: string;
}

export interface LockedPage {
  /** The database clock the page was judged against; the same for every page of a listing. */
  now: Date;
  seats: LockedSeatRow[];
}

/** Every locked seat, in seat id order, a page at a time so memory stays flat. */
export async function* listLockedPages(db: SeatDatabase, options: ListLockedOptions = {}): AsyncGenerator<LockedPage> {
  const pageSize = options.pageSize ?? 5000;
  if (options.user !== undefined) checkUser(options.user);
  if (options.state !== undefined && options.state !== 'expired' && options.state !== 'active') {
    throw usageError("the lock state must be 'expired' or 'active'");
  }
  const { store, eventId, now } = await withSeats(db, async (store) => {
    const event = await optionalEvent(store, options.event);
    return { store, eventId: event?.id, now: await store.now() };
  });
  const names = new Map<number, string>();
  let afterId = 0;
  for (;;) {
    const rows = await guard(db, async () => {
      const page = await store.lockedPage({ afterId, limit: pageSize, now, eventId, user: options.user, state: options.state });
      const missing = [...new Set(page.map((row) => row.eventId).filter((id) => !names.has(id)))];
      if (missing.length > 0) {
        const found = await store.eventNames(missing);
        for (const id of missing) names.set(id, found.get(id) ?? `#${id}`);
      }
      return page;
    });
    if (rows.length > 0 || afterId === 0) {
      yield {
        now,
        seats: rows.map(({ id: _id, ...row }) => ({ event: names.get(row.eventId)!, ...row })),
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
