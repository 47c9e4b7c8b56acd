import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SeatDatabase } from '../db/open.js';
import { withSeats } from '../db/ready.js';
import { SeatctlError, usageError, type ErrorKind } from '../errors.js';
import { DAY } from './limits.js';
import { MAX_BATCH_SIZE, recordRun, releaseExpiredLocksInBatches, type ReleasedLock, type ReleaseSummary } from './release.js';

export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;
export const DEFAULT_MAX_LAG_MS = 1000;
/** A sweeper that keeps failing retries after 1 s, 2 s, 4 s … up to this (or the interval, if shorter). */
export const MAX_RETRY_MS = 30_000;
/** A statement timeout halves the batch, down to this many locks. */
export const MIN_BATCH_SIZE = 10;
/** A stop waits this long for the batch in progress, then cancels it on the server. */
export const DEFAULT_CANCEL_AFTER_MS = 1000;

/** Time for the sweeper: the real clock, or a fake one in tests. */
export interface SweeperClock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or early (without rejecting) once `signal` is aborted. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const realClock: SweeperClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => sleep(ms, undefined, { signal }).catch(() => {}),
};

export interface SweeperOptions {
  /** Only this event's locks (name or id). */
  event?: string;
  /** Locks per transaction (default: the engine's, as for releaseExpiredLocks); a statement timeout halves it for a while. */
  batchSize?: number;
  /** Only release locks that expired longer ago than this. Default 0. */
  graceMs?: number;
  /** At least one full release cycle, and the heartbeat `stats` reads, this often. Default 60 s. */
  intervalMs?: number;
  /**
   * Precise mode: the longest a lock can stay expired before the sweeper
   * looks again (a lock placed after the last look with a shorter lifetime
   * than this is seen late by at most this much). Default 1 s.
   */
  maxLagMs?: number;
  /**
   * true (the default): sleep until the earliest expiry, looking again at
   * least every maxLagMs with one cheap query. false: a full release every
   * intervalMs, as a crontab does. A dry run is always interval-paced (its
   * expired locks stay, so the earliest expiry stays in the past).
   */
  precise?: boolean;
  /** Report what would be released each cycle; change nothing. */
  dryRun?: boolean;
  /** Stopping waits this long for a batch in progress, then cancels it on the server. Default 1 s. */
  cancelAfterMs?: number;
  /** Aborting it stops the sweeper, as stop() does. */
  signal?: AbortSignal;
  /**
   * Called with each committed batch before the next one starts; a returned
   * promise is awaited (a slow consumer paces the release). A throw stops the
   * sweeper and rejects `done`.
   */
  onBatch?: (locks: ReleasedLock[]) => unknown;
  /** Default: the real clock. */
  clock?: SweeperClock;
}

/** What went wrong, for metrics and logs: an error kind, or `statement-timeout`, or `unexpected` for a bug. */
export type SweepFailureKind = ErrorKind | 'statement-timeout' | 'unexpected';

/** One release cycle: every lock that had expired, released in batches, or an error part of the way. */
export interface SweepCycle {
  startedAt: Date;
  finishedAt: Date;
  durationMs: number;
  /** Locks released (committed) by this cycle, also when it failed part of the way. */
  total: number;
  dryRun: boolean;
  /** The stop came during the cycle: what was committed stays, the rest waits for the next run. */
  interrupted: boolean;
  batchSize: number;
  /** The largest release lag of the cycle (released at − locked until), in ms; null when nothing was released. */
  maxLagMs: number | null;
  /** Set when the cycle failed; the sweeper retries (see the `failure` event). */
  error?: Error;
  errorKind?: SweepFailureKind;
}

/** A wake-up with nothing due: one query for the earliest expiry. */
export interface SweepCheck {
  at: Date;
  /** The earliest expiry of a locked seat (database clock), or null when no seat is locked. */
  nextExpiry: Date | null;
}

export interface SweepFailure {
  error: Error;
  kind: SweepFailureKind;
  /** Consecutive failures so far, this one included. */
  attempt: number;
  /** When the sweeper tries again. */
  retryInMs: number;
  /** The batch size of the next attempt (halved after a statement timeout). */
  batchSize: number;
  /** A release cycle failed (false: the idle check for the next expiry did). */
  duringCycle: boolean;
}

export interface SweeperStatus {
  startedAt: Date;
  /** The last time the database answered a release batch, a cycle or a check. */
  lastSuccessAt: Date | null;
  /** The database answered at least once. */
  ready: boolean;
  /** The last attempt reached the database (false after a failure of kind `unavailable` other than a statement timeout). */
  databaseUp: boolean;
  consecutiveFailures: number;
  lastError: Error | null;
  batchSize: number;
  /** The limit for `healthy`: 3 × maxLagMs in precise mode, 3 × intervalMs otherwise. */
  healthyWithinMs: number;
  running: boolean;
}

export interface SweeperHealth {
  healthy: boolean;
  ready: boolean;
  /** One sentence: why (un)healthy. */
  reason: string;
  lastSuccessAt: Date | null;
}

export interface SweeperEvents {
  start: [];
  /** A committed batch (also passed to onBatch, which can pace the release; listeners can't). */
  batch: [ReleasedLock[]];
  cycle: [SweepCycle];
  check: [SweepCheck];
  failure: [SweepFailure];
  stop: [];
}

/** A running sweeper: events, an async iterator of its cycles, its status, and stop(). */
export interface Sweeper extends AsyncIterable<SweepCycle> {
  /** Stops after the batch in progress (cancelled on the server after cancelAfterMs); resolves once stopped. */
  stop(): Promise<void>;
  /** Resolves once the sweeper has stopped; rejects only if onBatch threw. */
  readonly done: Promise<void>;
  status(): SweeperStatus;
  /** healthy: the database answered within healthyWithinMs; ready: it answered once. */
  health(): SweeperHealth;
  on<K extends keyof SweeperEvents>(event: K, listener: (...args: SweeperEvents[K]) => void): this;
  off<K extends keyof SweeperEvents>(event: K, listener: (...args: SweeperEvents[K]) => void): this;
  once<K extends keyof SweeperEvents>(event: K, listener: (...args: SweeperEvents[K]) => void): this;
}

/** What the sweeper needs from the database; the real one is built from a SeatDatabase. */
export interface SweepBackend {
  defaultBatchSize(): Promise<number>;
  /** One release run (no heartbeat) as committed batches. */
  release(options: {
    batchSize: number;
    dryRun: boolean;
    signal: AbortSignal;
    cancel: AbortSignal;
  }): AsyncGenerator<ReleasedLock[], ReleaseSummary>;
  /** The earliest expiry of a locked seat, database clock. */
  nextExpiry(): Promise<Date | null>;
  /** The database clock. */
  now(): Promise<Date>;
  heartbeat(released: number): Promise<void>;
}

/**
 * Runs the release loop in this process: what `release-expired-locks --watch`
 * runs, for a web server to run beside its requests. Returns at once; the
 * first cycle starts immediately. Bad options throw a `usage` SeatctlError.
 *
 * Precise mode (the default): after each cycle the sweeper sleeps until the
 * earliest expiry it knows of, the next heartbeat (intervalMs), or maxLagMs,
 * whichever comes first; a wake-up with nothing due costs one indexed query.
 * Every failure is retried with a growing delay (1 s, 2 s … 30 s, at most the
 * interval); a statement timeout halves the batch first and retries at once,
 * and successes grow it back.
 */
export function startSweeper(db: SeatDatabase, options: SweeperOptions = {}): Sweeper {
  checkOptions(options);
  return runSweeper(databaseBackend(db, options), options);
}

/** The backend of a real database. */
export function databaseBackend(db: SeatDatabase, options: Pick<SweeperOptions, 'event' | 'graceMs'>): SweepBackend {
  return {
    defaultBatchSize: () => db.engine.defaultBatchSize(db.knex),
    release: ({ batchSize, dryRun, signal, cancel }) =>
      releaseExpiredLocksInBatches(db, {
        event: options.event,
        graceMs: options.graceMs,
        batchSize,
        dryRun,
        signal,
        cancel,
        heartbeat: false,
      }),
    nextExpiry: () => withSeats(db, (store) => store.nextExpiry()),
    now: () => withSeats(db, (store) => store.now()),
    heartbeat: (released) => withSeats(db, (store) => recordRun(store, released)),
  };
}

function checkOptions(options: SweeperOptions): void {
  const { batchSize, graceMs = 0, intervalMs = DEFAULT_SWEEP_INTERVAL_MS, maxLagMs = DEFAULT_MAX_LAG_MS } = options;
  const cancelAfterMs = options.cancelAfterMs ?? DEFAULT_CANCEL_AFTER_MS;
  if (batchSize !== undefined && (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE)) {
    throw usageError(`the batch size must be a whole number from 1 to ${MAX_BATCH_SIZE}`);
  }
  if (!Number.isSafeInteger(graceMs) || graceMs < 0 || graceMs > DAY) {
    throw usageError('the grace period must be between 0 and 24 hours');
  }
  if (!Number.isSafeInteger(intervalMs) || intervalMs < 10 || intervalMs > DAY) {
    throw usageError('the interval must be between 10 milliseconds and 24 hours');
  }
  if (!Number.isSafeInteger(maxLagMs) || maxLagMs < 10 || maxLagMs > DAY) {
    throw usageError('the maximum lag must be between 10 milliseconds and 24 hours');
  }
  if (!Number.isSafeInteger(cancelAfterMs) || cancelAfterMs < 0) {
    throw usageError('cancelAfterMs must be a whole number of milliseconds');
  }
}

/** A statement the database cancelled because it ran past statement_timeout (SQLSTATE 57014). */
export function isStatementTimeout(error: unknown): boolean {
  return (
    error instanceof SeatctlError &&
    error.kind === 'unavailable' &&
    error.message.startsWith('the database cancelled the statement: statement timeout') &&
    (error.cause as { code?: unknown } | undefined)?.code === '57014'
  );
}

export function failureKind(error: unknown): SweepFailureKind {
  if (isStatementTimeout(error)) return 'statement-timeout';
  return error instanceof SeatctlError ? error.kind : 'unexpected';
}

/** Wakes slightly after an expiry: the release compares `locked_until <= now`, and clocks are read with some slack. */
const AFTER_EXPIRY_MS = 5;
/** Successful cycles at a halved batch size before it is doubled again. */
const GROW_AFTER_SUCCESSES = 3;

/** The loop itself, on any backend and clock (tests use fakes of both). */
export function runSweeper(backend: SweepBackend, options: SweeperOptions = {}): Sweeper {
  checkOptions(options);
  const clock = options.clock ?? realClock;
  const intervalMs = options.intervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
  const maxLagMs = options.maxLagMs ?? DEFAULT_MAX_LAG_MS;
  const graceMs = options.graceMs ?? 0;
  const dryRun = options.dryRun ?? false;
  const precise = (options.precise ?? true) && !dryRun;
  const cancelAfterMs = options.cancelAfterMs ?? DEFAULT_CANCEL_AFTER_MS;
  // Many locks expiring one after another are released together: cycles start at most this often.
  const minGapMs = Math.min(100, Math.max(1, Math.floor(maxLagMs / 10)));

  const emitter = new EventEmitter();
  const stopping = new AbortController();
  const cancelling = new AbortController();
  const onExternalAbort = () => requestStop();
  options.signal?.addEventListener('abort', onExternalAbort, { once: true });

  const startedAt = clock.now();
  let configuredBatch = options.batchSize ?? 0; // 0: not known until the first cycle asks the engine
  let batchSize = configuredBatch;
  let grownStreak = 0;
  let lastSuccessAt: number | null = null;
  let ready = false;
  let databaseUp = true;
  let failures = 0;
  /** Failures since the last success that were not remedied by a smaller batch: the backoff's exponent. */
  let backoffs = 0;
  let lastError: Error | null = null;
  let lastHeartbeatAt = -Infinity;
  let releasedSinceHeartbeat = 0;
  /** Database clock minus ours, measured at each full cycle. */
  let offsetMs = 0;
  /** When (our clock) the earliest known lock is due for release; null: none known. */
  let dueAt: number | null = null;
  let running = true;
  const iterators = new Set<{ push(cycle: SweepCycle | null): void }>();

  function requestStop(): void {
    if (stopping.signal.aborted) return;
    stopping.abort();
    // A batch that has not finished by then is cancelled on the server.
    const finished = new AbortController();
    void clock.sleep(cancelAfterMs, finished.signal).then(() => {
      if (running) cancelling.abort();
    });
    void done.finally(() => finished.abort()).catch(() => {});
  }

  function succeeded(): void {
    lastSuccessAt = clock.now();
    ready = true;
    databaseUp = true;
  }

  async function resolveBatchSize(): Promise<void> {
    if (configuredBatch === 0) batchSize = configuredBatch = await backend.defaultBatchSize();
  }

  /** One release cycle; returns the report (with `error` when it failed part of the way). */
  async function cycle(): Promise<SweepCycle> {
    const began = clock.now();
    let total = 0;
    let maxLag: number | null = null;
    let interrupted = false;
    let error: Error | undefined;
    try {
      await resolveBatchSize();
      const batches = backend.release({ batchSize, dryRun, signal: stopping.signal, cancel: cancelling.signal });
      for (;;) {
        const next = await batches.next();
        if (next.done) {
          interrupted = next.value.interrupted;
          break;
        }
        const locks = next.value;
        total += locks.length;
        succeeded();
        for (const lock of locks) {
          if (lock.releasedAt === null) continue;
          const lag = lock.releasedAt.getTime() - lock.lockedUntil.getTime();
          if (maxLag === null || lag > maxLag) maxLag = lag;
        }
        emitter.emit('batch', locks);
        if (options.onBatch) await consumer(() => options.onBatch!(locks));
      }
      if (!dryRun) releasedSinceHeartbeat += total;
      if (!interrupted && !stopping.signal.aborted) {
        // The clock offset and the next expiry, for the schedule; the heartbeat once per interval.
        if (precise) {
          const before = clock.now();
          const dbNow = (await backend.now()).getTime();
          offsetMs = dbNow - (before + clock.now()) / 2;
          dueAt = dueFrom(await backend.nextExpiry());
        }
        if (!dryRun && clock.now() - lastHeartbeatAt >= intervalMs) {
          await backend.heartbeat(releasedSinceHeartbeat);
          lastHeartbeatAt = clock.now();
          releasedSinceHeartbeat = 0;
        }
      }
      succeeded();
    } catch (caught) {
      if (caught instanceof ConsumerError) throw caught;
      error = caught instanceof Error ? caught : new Error(String(caught));
    }
    const finished = clock.now();
    const report: SweepCycle = {
      startedAt: new Date(began),
      finishedAt: new Date(finished),
      durationMs: finished - began,
      total,
      dryRun,
      interrupted,
      batchSize,
      maxLagMs: maxLag,
      ...(error === undefined ? {} : { error, errorKind: failureKind(error) }),
    };
    return report;
  }

  /** When a lock expiring at `expiry` (database clock) is due, on our clock. */
  function dueFrom(expiry: Date | null): number | null {
    return expiry === null ? null : expiry.getTime() + graceMs - offsetMs + AFTER_EXPIRY_MS;
  }

  /** Handles a failure: the batch size, the retry delay, the event. Returns the delay. */
  function failed(error: Error, duringCycle: boolean): number {
    failures++;
    lastError = error;
    const kind = failureKind(error);
    if (kind === 'unavailable') databaseUp = false;
    // The caller closed the handle: nothing to retry.
    if (kind === 'closed') requestStop();
    let retryInMs: number;
    if (kind === 'statement-timeout' && batchSize > MIN_BATCH_SIZE) {
      // The remedy is a smaller batch, at once: the database is up, only the batch was too big for it.
      batchSize = Math.max(MIN_BATCH_SIZE, Math.floor(batchSize / 2));
      grownStreak = 0;
      retryInMs = 0;
    } else {
      backoffs++;
      retryInMs = Math.min(intervalMs, MAX_RETRY_MS, 1000 * 2 ** Math.min(backoffs - 1, 30));
    }
    emitter.emit('failure', { error, kind, attempt: failures, retryInMs, batchSize, duringCycle } satisfies SweepFailure);
    return retryInMs;
  }

  function grow(): void {
    if (batchSize >= configuredBatch) return;
    if (++grownStreak >= GROW_AFTER_SUCCESSES) {
      batchSize = Math.min(configuredBatch, batchSize * 2);
      grownStreak = 0;
    }
  }

  function publish(report: SweepCycle): void {
    emitter.emit('cycle', report);
    for (const iterator of iterators) iterator.push(report);
  }

  async function loop(): Promise<void> {
    emitter.emit('start');
    let lastCycleAt = -Infinity;
    while (!stopping.signal.aborted) {
      let now = clock.now();
      let full = !precise || now - lastHeartbeatAt >= intervalMs || (dueAt !== null && dueAt <= now);
      if (!full) {
        // Nothing known to be due: one query for the earliest expiry (a lock placed since the last look).
        try {
          const expiry = await backend.nextExpiry();
          succeeded();
          failures = backoffs = 0;
          dueAt = dueFrom(expiry);
          emitter.emit('check', { at: new Date(clock.now()), nextExpiry: expiry } satisfies SweepCheck);
        } catch (error) {
          const delay = failed(error instanceof Error ? error : new Error(String(error)), false);
          await clock.sleep(delay, stopping.signal);
          continue;
        }
        now = clock.now();
        full = dueAt !== null && dueAt <= now;
      }
      let wait: number;
      if (full) {
        const started = clock.now();
        lastCycleAt = started;
        const report = await cycle();
        publish(report);
        if (report.error !== undefined) {
          await clock.sleep(failed(report.error, true), stopping.signal);
          continue;
        }
        failures = backoffs = 0;
        grow();
        if (!precise) {
          wait = intervalMs - (clock.now() - started);
          if (wait > 0) await clock.sleep(wait, stopping.signal);
          continue;
        }
      }
      now = clock.now();
      // Precise: the earliest of the next expiry (no sooner than minGapMs after the last cycle),
      // the next heartbeat, and the next look for locks placed meanwhile.
      let wakeAt = Math.min(now + maxLagMs, lastHeartbeatAt + intervalMs);
      if (dueAt !== null) wakeAt = Math.min(wakeAt, Math.max(dueAt, lastCycleAt + minGapMs));
      wait = wakeAt - now;
      if (wait > 0) await clock.sleep(wait, stopping.signal);
    }
  }

  const done = (async () => {
    try {
      await loop();
    } finally {
      running = false;
      options.signal?.removeEventListener('abort', onExternalAbort);
      for (const iterator of iterators) iterator.push(null);
      emitter.emit('stop');
    }
  })().catch((error: unknown) => {
    throw error instanceof ConsumerError ? error.cause : error;
  });
  // `done` is there to be awaited; a caller that never does must not see an unhandled rejection for a stop.
  done.catch(() => {});
  if (options.signal?.aborted) requestStop();

  const sweeper = {
    stop: async () => {
      requestStop();
      await done;
    },
    done,
    status: (): SweeperStatus => ({
      startedAt: new Date(startedAt),
      lastSuccessAt: lastSuccessAt === null ? null : new Date(lastSuccessAt),
      ready,
      databaseUp,
      consecutiveFailures: failures,
      lastError,
      batchSize,
      healthyWithinMs: 3 * (precise ? maxLagMs : intervalMs),
      running,
    }),
    health: (): SweeperHealth => {
      const limit = 3 * (precise ? maxLagMs : intervalMs);
      const now = clock.now();
      const since = lastSuccessAt ?? startedAt;
      const age = now - since;
      const healthy = running && age <= limit;
      const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
      let reason: string;
      if (!running) reason = 'the sweeper has stopped';
      else if (healthy) {
        reason = lastSuccessAt === null ? 'starting' : `the database answered ${seconds(age)} ago`;
      } else {
        const last = lastSuccessAt === null ? 'since the start' : `for ${seconds(age)}`;
        const why = lastError === null ? 'a cycle is still running' : lastError.message;
        reason = `no successful cycle ${last} (limit ${seconds(limit)}): ${why}`;
      }
      return { healthy, ready, reason, lastSuccessAt: lastSuccessAt === null ? null : new Date(lastSuccessAt) };
    },
    on(event: string, listener: (...args: any[]) => void) {
      emitter.on(event, listener);
      return sweeper;
    },
    off(event: string, listener: (...args: any[]) => void) {
      emitter.off(event, listener);
      return sweeper;
    },
    once(event: string, listener: (...args: any[]) => void) {
      emitter.once(event, listener);
      return sweeper;
    },
    [Symbol.asyncIterator]: (): AsyncIterator<SweepCycle> => {
      // Each iterator gets every cycle from the moment it was made, buffered until read.
      const queue: Array<SweepCycle | null> = running ? [] : [null];
      let wake: (() => void) | undefined;
      const iterator = {
        push(cycle: SweepCycle | null) {
          queue.push(cycle);
          wake?.();
        },
      };
      if (running) iterators.add(iterator);
      return {
        async next(): Promise<IteratorResult<SweepCycle>> {
          while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
          const cycle = queue.shift()!;
          if (cycle === null) {
            iterators.delete(iterator);
            queue.push(null);
            return { done: true, value: undefined };
          }
          return { done: false, value: cycle };
        },
        async return(): Promise<IteratorResult<SweepCycle>> {
          iterators.delete(iterator);
          return { done: true, value: undefined };
        },
      };
    },
  };
  return sweeper as unknown as Sweeper;
}

/** A throw from the caller's onBatch: it ends the sweeper instead of being retried. */
class ConsumerError extends Error {
  constructor(cause: unknown) {
    super('onBatch threw', { cause });
  }
}

async function consumer(call: () => unknown): Promise<void> {
  try {
    await call();
  } catch (error) {
    throw new ConsumerError(error);
  }
}
