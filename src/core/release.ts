import { hostname } from 'node:os';
import { setImmediate } from 'node:timers/promises';
import type { ReleasedLock } from '../db/engine.js';
import { guard, type SeatDatabase } from '../db/open.js';
import { withSeats } from '../db/ready.js';
import type { ReleaseScope, SeatStore } from '../db/seat-store.js';
import { SeatctlError, usageError } from '../errors.js';
import { optionalEvent } from './events.js';
import { DAY } from './limits.js';

import { MAX_BATCH_SIZE } from '../db/batch-size.js';
export { DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, ROLLBACK_JOURNAL_BATCH_SIZE } from '../db/batch-size.js';

export interface ReleaseOptions {
  /** Only this event's locks (name or id). */
  event?: string;
  /** Locks released per transaction. Default 1000; 25,000 on a SQLite database whose journal is not WAL. */
  batchSize?: number;
  /** Report what would be released; change nothing. */
  dryRun?: boolean;
  /** Only release locks that expired longer ago than this. Default 0. */
  graceMs?: number;
  /** Stops between batches once aborted; what was released stays released. */
  signal?: AbortSignal;
  /**
   * Aborting this cancels the batch in progress on the server (PostgreSQL:
   * the statement is cancelled, its transaction rolls back) and ends the run
   * as interrupted. SQLite batches are short and synchronous: they finish.
   */
  cancel?: AbortSignal;
  /** Record the run (host, pid, count) for `stats` when done. Default true; a sweeper records it once per interval instead. */
  heartbeat?: boolean;
}

export type { ReleasedLock };

export interface ReleaseSummary {
  total: number;
  dryRun: boolean;
  /** True when the signal stopped the run before every expired lock was seen. */
  interrupted: boolean;
}

export interface ReleaseReport extends ReleaseSummary {
  released: ReleasedLock[];
}

/**
 * Releases every expired lock, batch by batch; each batch is one short
 * transaction, committed before it is yielded. A seat locked again or booked
 * meanwhile is never touched, and each lock is released (and yielded) by one
 * run only, however many run at once. Returns the summary when done.
 */
export function releaseExpiredLocksInBatches(
  db: SeatDatabase,
  options: ReleaseOptions = {},
): AsyncGenerator<ReleasedLock[], ReleaseSummary> {
  return releaseRun(db, options, {
    batches: (store, scope, dryRun) => (dryRun ? previewBatches(store, scope) : releaseBatches(db, store, scope)),
    size: (rows) => rows.length,
    report: (names, rows) => names.label(rows),
  });
}

/**
 * The same release, yielding only how many locks each batch released: the
 * seats are not read back, which makes a big release markedly cheaper (what
 * `release-expired-locks --quiet` runs). Every lock still gets its history row.
 */
export function releaseExpiredLocksCounting(db: SeatDatabase, options: ReleaseOptions = {}): AsyncGenerator<number, ReleaseSummary> {
  return releaseRun(db, options, {
    batches: (store, scope, dryRun) => (dryRun ? sizes(previewBatches(store, scope)) : releaseCounts(db, store, scope)),
    size: (count) => count,
    report: async (_, count) => count,
  });
}

/** What a run yields per batch: the locks themselves, or how many. */
interface RunKind<T> {
  batches(store: SeatStore, scope: BatchOptions, dryRun: boolean): AsyncGenerator<T>;
  size(batch: T): number;
  report(names: EventNames, batch: T): Promise<T>;
}

async function* releaseRun<T>(db: SeatDatabase, options: ReleaseOptions, kind: RunKind<T>): AsyncGenerator<T, ReleaseSummary> {
  const chosen = options.batchSize;
  const graceMs = options.graceMs ?? 0;
  const dryRun = options.dryRun ?? false;
  if (chosen !== undefined && (!Number.isSafeInteger(chosen) || chosen < 1 || chosen > MAX_BATCH_SIZE)) {
    throw usageError(`the batch size must be a whole number from 1 to ${MAX_BATCH_SIZE}`);
  }
  if (!Number.isSafeInteger(graceMs) || graceMs < 0 || graceMs > DAY) {
    throw usageError('the grace period must be between 0 and 24 hours');
  }
  const { store, eventId, names, batchSize } = await withSeats(db, async (store) => {
    const event = await optionalEvent(store, options.event);
    return {
      store,
      eventId: event?.id,
      names: new EventNames(store, event && [event.id, event.name]),
      batchSize: chosen ?? (await db.engine.defaultBatchSize(db.knex)),
    };
  });

  const scope: BatchOptions = { batchSize, eventId, graceMs, cancel: options.cancel };
  const batches = kind.batches(store, scope, dryRun);
  let total = 0;
  let interrupted = false;
  for (;;) {
    // Batches run back to back on a synchronous driver: give the event loop a
    // turn, so signals, timers and a web server's requests are served meanwhile.
    await setImmediate();
    if (options.signal?.aborted) {
      interrupted = true;
      break;
    }
    let next: IteratorResult<T>;
    try {
      next = await guard(db, () => batches.next());
    } catch (error) {
      // A batch cancelled on purpose rolled back: the run was interrupted, not failed.
      if (options.cancel?.aborted && error instanceof SeatctlError && error.kind === 'unavailable') {
        interrupted = true;
        break;
      }
      throw error;
    }
    if (next.done) break;
    const batch = next.value;
    total += kind.size(batch);
    yield await guard(db, () => kind.report(names, batch));
  }
  if (!dryRun && !interrupted && (options.heartbeat ?? true)) await recordRun(store, total);
  return { total, dryRun, interrupted };
}

/** Releases every expired lock and returns them all; see releaseExpiredLocksInBatches for big releases. */
export async function releaseExpiredLocks(db: SeatDatabase, options: ReleaseOptions = {}): Promise<ReleaseReport> {
  const released: ReleasedLock[] = [];
  const batches = releaseExpiredLocksInBatches(db, options);
  for (;;) {
    const next = await batches.next();
    if (next.done) return { ...next.value, released };
    released.push(...next.value);
  }
}

/** The heartbeat `stats` reads: this host's last finished release run. */
export function recordRun(store: SeatStore, released: number): Promise<void> {
  return store.recordRun(hostname(), process.pid, released);
}

interface BatchOptions {
  batchSize: number;
  eventId: number | undefined;
  graceMs: number;
  cancel?: AbortSignal;
}

/** One batch as the walk sees it: what to yield, how many locks, and the last seat's id. */
interface Step<T> {
  batch: T;
  size: number;
  lastSeatId: number;
}

/**
 * The expired locks in seat id order, batch after batch, each starting after
 * the last seat of the one before. A short batch means nothing more had
 * expired (or, on PostgreSQL, the rest is being written by someone else right
 * now: the next run takes it).
 */
async function* walk<T>(options: BatchOptions, step: (scope: ReleaseScope & { cancel?: AbortSignal }) => Promise<Step<T>>): AsyncGenerator<T> {
  let afterSeatId = 0;
  for (;;) {
    // `cancel` rides along in the scope: the PostgreSQL release cancels its statement when it is aborted.
    const { batch, size, lastSeatId } = await step({ ...options, afterSeatId });
    afterSeatId = Math.max(afterSeatId, lastSeatId);
    if (size > 0) yield batch;
    if (size < options.batchSize) return;
  }
}

const lastSeat = (rows: ReleasedLock[]) => rows.reduce((last, row) => Math.max(last, row.seatId), 0);

function releaseBatches(db: SeatDatabase, store: SeatStore, options: BatchOptions): AsyncGenerator<ReleasedLock[]> {
  return walk(options, async (scope) => {
    const rows = await db.engine.releaseBatch(db.knex, store, scope);
    return { batch: rows, size: rows.length, lastSeatId: lastSeat(rows) };
  });
}

/** As releaseBatches, without reading the released seats back: how many each batch released. */
function releaseCounts(db: SeatDatabase, store: SeatStore, options: BatchOptions): AsyncGenerator<number> {
  return walk(options, async (scope) => {
    const { released, lastSeatId } = await db.engine.releaseBatchCount(db.knex, store, scope);
    return { batch: released, size: released, lastSeatId };
  });
}

async function* sizes(batches: AsyncGenerator<ReleasedLock[]>): AsyncGenerator<number> {
  for await (const rows of batches) yield rows.length;
}

/** The locks a release would take, page by page, without writing anything. */
function previewBatches(store: SeatStore, options: BatchOptions): AsyncGenerator<ReleasedLock[]> {
  return walk(options, async (scope) => {
    const rows = await store.previewBatch(scope);
    return { batch: rows, size: rows.length, lastSeatId: lastSeat(rows) };
  });
}

/** Event names for released rows, read once per event. */
class EventNames {
  private readonly names = new Map<number, string>();

  constructor(
    private readonly store: SeatStore,
    known?: [number, string],
  ) {
    if (known) this.names.set(known[0], known[1]);
  }

  /** Fills in each row's event name, in place. */
  async label(rows: ReleasedLock[]): Promise<ReleasedLock[]> {
    const missing = [...new Set(rows.map((row) => row.eventId).filter((id) => !this.names.has(id)))];
    if (missing.length > 0) {
      const found = await this.store.eventNames(missing);
      for (const id of missing) this.names.set(id, found.get(id) ?? `#${id}`);
    }
    for (const row of rows) row.event = this.names.get(row.eventId)!;
    return rows;
  }
}

/** How many locks a release would take now (for progress bars): counted on the index of locked seats. */
export async function countExpiredLocks(
  db: SeatDatabase,
  options: Pick<ReleaseOptions, 'event' | 'graceMs'> = {},
): Promise<number> {
  return withSeats(db, async (store) => {
    const event = await optionalEvent(store, options.event);
    return store.countExpired({ eventId: event?.id, graceMs: options.graceMs ?? 0 });
  });
}
