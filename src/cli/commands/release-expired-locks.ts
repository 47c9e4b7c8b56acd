import { Option, type Command } from 'commander';
import {
  countExpiredLocks,
  MAX_BATCH_SIZE,
  releaseExpiredLocksCounting,
  releaseExpiredLocksInBatches,
  type ReleasedLock,
  type ReleaseSummary,
} from '../../core/release.js';
import { DEFAULT_CANCEL_AFTER_MS, DEFAULT_MAX_LAG_MS, DEFAULT_SWEEP_INTERVAL_MS, startSweeper, type Sweeper } from '../../core/sweeper.js';
import { openDatabase, type SeatDatabase } from '../../db/open.js';
import { SeatctlError, usageError } from '../../errors.js';
import { databaseOptions, outputFor, withCommandDatabase } from '../context.js';
import { collectGarbageIfLarge } from '../heap.js';
import { stopSignal } from '../interrupt.js';
import { plural, redact, type Output } from '../output.js';
import { countInRange, durationArg, durationOrZeroArg, parseListen } from '../parse.js';
import { progressBar } from '../progress.js';
import { printBatch, printSummary } from '../release-report.js';
import { humanWatchLog, jsonWatchLog } from '../watch-log.js';

interface ReleaseCommandOptions {
  event?: string;
  dryRun?: boolean;
  quiet?: boolean;
  json?: boolean;
  batchSize?: number;
  grace: number;
  watch?: boolean;
  interval: number;
  maxLag: number;
  metrics?: { host: string; port: number };
  metricsByEvent?: boolean;
  logFormat: 'human' | 'json';
}

/** Flags that only mean something to a --watch sweeper. */
const WATCH_ONLY = { interval: '--interval', maxLag: '--max-lag', metrics: '--metrics', metricsByEvent: '--metrics-by-event', logFormat: '--log-format' };

export function registerReleaseExpiredLocks(program: Command): void {
  program
    .command('release-expired-locks')
    .description('Release every lock whose time has passed, and report each seat put back on sale')
    .option('--event <event>', 'only this event (exact name or id)')
    .option('--dry-run', 'show what would be released; change nothing')
    .option('-q, --quiet', 'print only the total, and nothing when nothing was released (for cron)')
    .option('--json', 'JSON Lines: one "released" record per seat, then a "summary" (with --quiet: the summary only)')
    .addOption(
      new Option(
        '--batch-size <n>',
        'locks released per transaction, 1-100000 (default: 1000; 10000 on a SQLite database not in WAL mode)',
      ).argParser(countInRange(1, MAX_BATCH_SIZE)),
    )
    .addOption(
      new Option('--grace <duration>', 'only release locks expired for longer than this')
        .argParser(durationOrZeroArg)
        .default(0, '0'),
    )
    .option('--watch', 'keep running: release each lock as it expires, until SIGINT or SIGTERM')
    .addOption(
      new Option('--interval <duration>', 'with --watch: a full release (and heartbeat) at least this often')
        .argParser(durationArg)
        .default(DEFAULT_SWEEP_INTERVAL_MS, '60s'),
    )
    .addOption(
      new Option('--max-lag <duration>', 'with --watch: look for new locks at least this often, so none stays expired longer')
        .argParser(durationArg)
        .default(DEFAULT_MAX_LAG_MS, '1s'),
    )
    .addOption(
      new Option('--metrics <[host:]port>', 'with --watch: serve /metrics (Prometheus), /healthz and /readyz (host: 127.0.0.1)').argParser(
        parseListen,
      ),
    )
    .option('--metrics-by-event', 'with --metrics: count released locks per event (one series per event)')
    .addOption(
      new Option('--log-format <format>', 'with --watch: human lines, or one JSON object per event (pino)')
        .choices(['human', 'json'])
        .default('human'),
    )
    .addHelpText(
      'after',
      `
Examples:
  $ seatctl release-expired-locks
  $ seatctl release-expired-locks --dry-run --event "Taylor Swift - Eras Tour"
  * * * * * cd /srv/app && ./node_modules/.bin/seatctl release-expired-locks --quiet   (crontab)
  $ seatctl release-expired-locks --watch --quiet                        (a sweeper service: each lock within 1 s of expiry)
  $ seatctl release-expired-locks --watch --quiet --metrics 9465 --log-format json    (with Prometheus metrics and health checks)`,
    )
    .action(async (options: ReleaseCommandOptions, command: Command) => {
      const out = outputFor(command);
      if (!options.watch) {
        for (const [key, flag] of Object.entries(WATCH_ONLY)) {
          if (command.getOptionValueSource(key) === 'cli') {
            throw usageError(`${flag} only applies with --watch (a single release runs once)`);
          }
        }
      }
      if (options.metricsByEvent && options.metrics === undefined) {
        throw usageError('--metrics-by-event only applies with --metrics');
      }
      if (options.logFormat === 'json' && options.json) {
        throw usageError('--log-format json already writes one JSON object per event: leave out --json');
      }
      if (options.watch) {
        await watch(command, out, options);
        return;
      }
      await withCommandDatabase(command, {}, async (db) => {
        const summary = await releaseOnce(db, out, options);
        await printSummary(out, summary);
        if (summary.interrupted) {
          throw new SeatctlError(
            'interrupted',
            `interrupted after releasing ${plural(summary.total, 'lock')}; the rest are left for the next run`,
          );
        }
      });
    });
}

/** Prints each committed batch, then collects garbage if the heap has grown large. */
function batchPrinter(print: (locks: ReleasedLock[]) => Promise<void>): (locks: ReleasedLock[]) => Promise<void> {
  return async (locks) => {
    await print(locks);
    collectGarbageIfLarge();
  };
}

/** Each batch printed, then counted. */
async function* mapBatches(
  batches: AsyncGenerator<ReleasedLock[], ReleaseSummary>,
  print: (locks: ReleasedLock[]) => Promise<void>,
): AsyncGenerator<number, ReleaseSummary> {
  for (;;) {
    const next = await batches.next();
    if (next.done) return next.value;
    await print(next.value);
    yield next.value.length;
  }
}

/** A signal aborted `ms` after `signal` is: a stop waits that long for the batch in progress, then cancels it. */
function abortedAfter(signal: AbortSignal, ms: number): AbortSignal {
  const controller = new AbortController();
  signal.addEventListener('abort', () => setTimeout(() => controller.abort(), ms).unref(), { once: true });
  return controller.signal;
}

/** One release run, printed as it goes: each batch is written, then forgotten. */
async function releaseOnce(db: SeatDatabase, out: Output, options: ReleaseCommandOptions): Promise<ReleaseSummary> {
  const dryRun = options.dryRun ?? false;
  const scope = { event: options.event, graceMs: options.grace };
  // A bar and per-seat lines on one terminal would garble each other: the bar
  // is drawn only when the lines go elsewhere (a file, a pipe) or there are none.
  const linesOnTerminal = process.stdout.isTTY && !out.quiet && !out.json;
  const progress =
    process.stderr.isTTY && !linesOnTerminal
      ? await progressBar('Releasing', await countExpiredLocks(db, scope))
      : undefined;
  const runOptions = {
    ...scope,
    batchSize: options.batchSize,
    dryRun,
    signal: stopSignal,
    cancel: abortedAfter(stopSignal, DEFAULT_CANCEL_AFTER_MS),
  };
  // --quiet prints no seat: the run only counts, and no seat is read back.
  const batches = out.quiet
    ? releaseExpiredLocksCounting(db, runOptions)
    : mapBatches(releaseExpiredLocksInBatches(db, runOptions), batchPrinter((locks) => printBatch(out, locks, dryRun)));
  let total = 0;
  try {
    for (;;) {
      const next = await batches.next();
      if (next.done) return next.value;
      total += next.value;
      progress?.update(total);
    }
  } finally {
    progress?.stop();
  }
}

/**
 * --watch: the library's sweeper (src/core/sweeper.ts), printed. Metrics and
 * the JSON logger are loaded only when their flags ask for them.
 */
async function watch(command: Command, out: Output, options: ReleaseCommandOptions): Promise<void> {
  const dryRun = options.dryRun ?? false;
  const log = options.logFormat === 'json' ? await jsonWatchLog(out, dryRun) : await humanWatchLog(out, dryRun);
  const resolved = await databaseOptions(command);
  const db = await openDatabase(resolved);
  let server: { url: string; close(): Promise<void> } | undefined;
  try {
    const status = options.metrics && (await Promise.all([import('../metrics.js'), import('../status-server.js')]));
    let sweeper: Sweeper | undefined;
    const metrics =
      status &&
      (await status[0].sweeperMetrics(() => sweeper!.status(), {
        byEvent: options.metricsByEvent ?? false,
        countWaiting: () => countExpiredLocks(db, { event: options.event, graceMs: options.grace }).catch(() => undefined),
      }));
    const print = batchPrinter(async (locks) => {
      metrics?.batch(locks);
      await log.batch(locks);
    });
    log.start({
      db: redact(db.target.display),
      intervalMs: options.interval,
      maxLagMs: options.maxLag,
      precise: !dryRun,
      ...(options.event === undefined ? {} : { scope: options.event }),
    });
    sweeper = startSweeper(db, {
      event: options.event,
      batchSize: options.batchSize,
      graceMs: options.grace,
      intervalMs: options.interval,
      maxLagMs: options.maxLag,
      dryRun,
      signal: stopSignal,
      onBatch: print,
    });
    sweeper.on('cycle', (cycle) => {
      metrics?.cycle(cycle);
      void log.cycle(cycle);
    });
    sweeper.on('failure', (failure) => {
      metrics?.failure(failure);
      log.failure(failure);
    });
    if (status && metrics && options.metrics) {
      try {
        server = await status[1].startStatusServer(sweeper, metrics, options.metrics);
      } catch (error) {
        await sweeper.stop();
        throw error;
      }
      log.note(`metrics on ${server.url}/metrics, health on ${server.url}/healthz and ${server.url}/readyz`, {
        url: server.url,
      });
    }
    await sweeper.done;
    log.stop();
  } finally {
    await server?.close();
    await db.close();
  }
}
