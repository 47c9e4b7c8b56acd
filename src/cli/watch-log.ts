import type { ReleasedLock } from '../core/release.js';
import type { SweepCycle, SweepFailure } from '../core/sweeper.js';
import { importOptional } from './optional-package.js';
import { printBatch, summaryRecord } from './release-report.js';
import { isoTime, plural, redact, safe, terminalSafeJson, thousands, type Output } from './output.js';

/** What a --watch sweeper says as it runs: per-seat releases, one entry per cycle, errors, start and stop. */
export interface WatchLog {
  start(details: Record<string, unknown>): void;
  batch(locks: ReleasedLock[]): Promise<void>;
  cycle(cycle: SweepCycle): Promise<void>;
  failure(failure: SweepFailure): void;
  /** An operator's note (where the metrics are served). */
  note(text: string, details?: Record<string, unknown>): void;
  stop(): void;
}

/** How a retry is announced: `attempt 3; retrying in 4 s`, or at once with a smaller batch after a statement timeout. */
function retryText(failure: SweepFailure): string {
  const when =
    failure.kind === 'statement-timeout' && failure.retryInMs === 0
      ? `retrying now with batches of ${thousands(failure.batchSize)}`
      : `retrying in ${Math.round(failure.retryInMs / 1000)} s`;
  return `attempt ${failure.attempt}; ${when}`;
}

/**
 * The default: per-seat lines (unless --quiet) and one timestamped line per
 * cycle that released something on stdout, or --json records with a summary
 * per cycle; errors, one line per attempt, on stderr.
 */
export async function humanWatchLog(out: Output, dryRun: boolean): Promise<WatchLog> {
  const { format } = await import('date-fns/format');
  const stamp = (at = new Date()) => format(at, 'yyyy-MM-dd HH:mm:ss');
  return {
    start() {},
    batch: (locks) => printBatch(out, locks, dryRun),
    async cycle(cycle) {
      if (out.json) {
        const error = cycle.error && { kind: cycle.errorKind, message: redact(cycle.error.message) };
        await out.record({ ...summaryRecord(cycle), at: cycle.finishedAt.toISOString(), ...(error ? { error } : {}) });
        return;
      }
      if (cycle.total > 0) {
        const verb = cycle.dryRun ? 'would release' : 'released';
        await out.line(out.style.bold(`${stamp(cycle.finishedAt)} ${verb} ${plural(cycle.total, 'expired lock')}`));
      } else if (out.verbose && cycle.error === undefined) {
        await out.line(`${stamp(cycle.finishedAt)} no expired locks`);
      }
    },
    failure(failure) {
      out.note(
        `${stamp()} ${out.errStyle.red('error:')} ${safe(redact(failure.error.message))} (${retryText(failure)})`,
      );
    },
    note(text) {
      out.note(`${stamp()} ${text}`);
    },
    stop() {},
  };
}

/**
 * --log-format json: one JSON object per line on stdout for every event, for
 * a log aggregator (pino: `level`, `time`, `msg`, and a `type` as in --json).
 */
export async function jsonWatchLog(out: Output, dryRun: boolean): Promise<WatchLog> {
  const { pino } = await importOptional<typeof import('pino')>('pino');
  const logger = pino(
    {
      level: out.verbose ? 'debug' : 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    // Synchronous writes, in order with the process's end; names made terminal-safe as in --json.
    { write: (line: string) => void out.write(terminalSafeJson(line)) },
  );
  const errorOf = (error: Error) => redact(error.message);
  return {
    start(details) {
      logger.info({ type: 'start', ...details }, 'sweeper started');
    },
    async batch(locks) {
      if (out.quiet) return;
      const type = dryRun ? 'would-release' : 'released';
      for (const lock of locks) {
        logger.info(
          {
            type,
            event: lock.event,
            eventId: lock.eventId,
            seat: lock.seat,
            lockedBy: lock.lockedBy,
            lockedUntil: isoTime(lock.lockedUntil),
            lockToken: lock.lockToken,
            releasedAt: lock.releasedAt && isoTime(lock.releasedAt),
            ...(lock.releasedAt ? { lagMs: lock.releasedAt.getTime() - lock.lockedUntil.getTime() } : {}),
          },
          `${dryRun ? 'would release' : 'released'} lock on seat ${lock.seat}`,
        );
      }
    },
    async cycle(cycle) {
      const fields = {
        type: 'cycle',
        released: cycle.total,
        dryRun: cycle.dryRun,
        durationMs: cycle.durationMs,
        maxLagMs: cycle.maxLagMs,
        batchSize: cycle.batchSize,
        ...(cycle.interrupted ? { interrupted: true } : {}),
        ...(cycle.error ? { error: { kind: cycle.errorKind, message: errorOf(cycle.error) } } : {}),
      };
      const verb = cycle.dryRun ? 'would release' : 'released';
      const msg = `${verb} ${plural(cycle.total, 'expired lock')}${cycle.error ? ', then failed' : ''}`;
      if (cycle.total > 0 || cycle.error) logger.info(fields, msg);
      else logger.debug(fields, msg);
    },
    failure(failure) {
      logger.error(
        {
          type: 'error',
          kind: failure.kind,
          attempt: failure.attempt,
          retryInMs: failure.retryInMs,
          batchSize: failure.batchSize,
          duringCycle: failure.duringCycle,
        },
        `${errorOf(failure.error)} (${retryText(failure)})`,
      );
    },
    note(text, details) {
      logger.info({ type: 'note', ...details }, text);
    },
    stop() {
      logger.info({ type: 'stop' }, 'sweeper stopped');
    },
  };
}
