import { setTimeout as sleep } from 'node:timers/promises';
import { Option, type Command } from 'commander';
import {
  countExpiredLocks,
  MAX_BATCH_SIZE,
  releaseExpiredLocksInBatches,
  type ReleasedLock,
  type ReleaseSummary,
} from '../../core/release.js';
import { openDatabase, type SeatDatabase } from '../../db/open.js';
import { SeatctlError, usageError } from '../../errors.js';
import { databaseOptions, outputFor, withCommandDatabase } from '../context.js';
import { collectGarbage } from '../heap.js';
import { stopSignal } from '../interrupt.js';
import { isoTime, jsonString, plural, redact, safe, type Output } from '../output.js';
import { countInRange, durationArg, durationOrZeroArg } from '../parse.js';
import { progressBar } from '../progress.js';

const GC_EVERY_LOCKS = 10_000;
const DEFAULT_INTERVAL_MS = 60_000;
/** A watcher that can't reach its database retries after 1 s, 2 s, 4 s … up to this (or the interval, if shorter). */
const MAX_RETRY_MS = 30_000;

interface ReleaseCommandOptions {
  event?: string;
  dryRun?: boolean;
  quiet?: boolean;
  json?: boolean;
  batchSize?: number;
  grace: number;
  watch?: boolean;
  interval: number;
}

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
    .option('--watch', 'keep running: release now, then every --interval, until SIGINT or SIGTERM')
    .addOption(
      new Option('--interval <duration>', 'with --watch: time between releases')
        .argParser(durationArg)
        .default(DEFAULT_INTERVAL_MS, '60s'),
    )
    .addHelpText(
      'after',
      `
Examples:
  $ seatctl release-expired-locks
  $ seatctl release-expired-locks --dry-run --event "Taylor Swift - Eras Tour"
  * * * * * cd /srv/app && ./node_modules/.bin/seatctl release-expired-locks --quiet   (crontab)
  $ seatctl release-expired-locks --watch --interval 30s --quiet         (a sweeper service)`,
    )
    .action(async (options: ReleaseCommandOptions, command: Command) => {
      const out = outputFor(command);
      if (!options.watch && command.getOptionValueSource('interval') === 'cli') {
        throw usageError('--interval only applies with --watch (a single release runs once)');
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
  const batches = releaseExpiredLocksInBatches(db, {
    ...scope,
    batchSize: options.batchSize,
    dryRun,
    signal: stopSignal,
  });
  let total = 0;
  let sinceCollection = 0;
  try {
    for (;;) {
      const next = await batches.next();
      if (next.done) return next.value;
      await printBatch(out, next.value, dryRun);
      total += next.value.length;
      progress?.update(total);
      sinceCollection += next.value.length;
      if (sinceCollection >= GC_EVERY_LOCKS) {
        sinceCollection = 0;
        collectGarbage();
      }
    }
  } finally {
    progress?.stop();
  }
}

/**
 * --watch: a release now, then one every interval, never two at once, until
 * a signal. An unreachable database costs one error line per attempt, retried
 * with a growing (capped) delay; the watcher resumes when it comes back.
 */
async function watch(command: Command, out: Output, options: ReleaseCommandOptions): Promise<void> {
  const { format } = await import('date-fns/format');
  const stamp = () => format(new Date(), 'yyyy-MM-dd HH:mm:ss');
  const db = await openDatabase(await databaseOptions(command));
  let failures = 0;
  try {
    while (!stopSignal.aborted) {
      const started = Date.now();
      let wait = options.interval;
      try {
        const summary = await releaseOnce(db, out, options);
        failures = 0;
        await printCycle(out, summary, stamp());
      } catch (error) {
        if (!(error instanceof SeatctlError) || error.kind !== 'unavailable') throw error;
        failures++;
        wait = Math.min(options.interval, MAX_RETRY_MS, 1000 * 2 ** (failures - 1));
        out.note(
          `${stamp()} ${out.errStyle.red('error:')} ${safe(redact(error.message))} (attempt ${failures}; retrying in ${Math.round(wait / 1000)} s)`,
        );
      }
      const remaining = wait - (failures > 0 ? 0 : Date.now() - started);
      if (remaining > 0) await sleep(remaining, undefined, { signal: stopSignal }).catch(() => {});
    }
  } finally {
    await db.close();
  }
}

// A release can print a million lines: each batch is built as one string, and
// what is the same for many lines (an event's name) is escaped once.
async function printBatch(out: Output, locks: ReleasedLock[], dryRun: boolean): Promise<void> {
  let text = '';
  if (out.json && out.quiet) return;
  if (out.json) {
    const type = dryRun ? '"would-release"' : '"released"';
    const events = new Map<number, string>();
    for (const lock of locks) {
      let event = events.get(lock.eventId);
      if (event === undefined) events.set(lock.eventId, (event = jsonString(lock.event)));
      const releasedAt = lock.releasedAt === null ? 'null' : `"${isoTime(lock.releasedAt)}"`;
      text += `{"type":${type},"event":${event},"eventId":${lock.eventId},"seat":${jsonString(lock.seat)},"lockedBy":${jsonString(lock.lockedBy)},"lockedUntil":"${isoTime(lock.lockedUntil)}","lockToken":${lock.lockToken},"releasedAt":${releasedAt}}\n`;
    }
    await out.write(text);
    return;
  }
  if (out.quiet) return;
  const verb = dryRun ? 'Would release' : '✔ Released';
  const paint = dryRun ? out.style.yellow : out.style.green;
  const events = new Map<number, string>();
  for (const lock of locks) {
    let event = events.get(lock.eventId);
    if (event === undefined) events.set(lock.eventId, (event = safe(lock.event)));
    text += `${paint(`${verb} lock on Seat ${safe(lock.seat)} (Event: ${event}, was locked by ${safe(lock.lockedBy)})`)}\n`;
  }
  await out.write(text);
}

function summaryRecord(summary: ReleaseSummary): Record<string, unknown> {
  return {
    type: 'summary',
    total: summary.total,
    dryRun: summary.dryRun,
    ...(summary.interrupted ? { interrupted: true } : {}),
  };
}

async function printSummary(out: Output, summary: ReleaseSummary): Promise<void> {
  // --quiet keeps cron quiet: nothing at all when nothing was released, in either format.
  if (out.quiet && summary.total === 0 && !summary.interrupted) return;
  if (out.json) {
    await out.record(summaryRecord(summary));
    return;
  }
  if (summary.total === 0 && !summary.interrupted) {
    await out.line('No expired locks to release');
    return;
  }
  const label = summary.dryRun ? 'Total locks that would be released' : 'Total locks released';
  const interrupted = summary.interrupted ? ' (interrupted: the rest are left for the next run)' : '';
  await out.line(out.style.bold(`${label}: ${summary.total.toLocaleString('en-US')}${interrupted}`));
}

/** The one timestamped line of a --watch cycle: only when it released something, or with --verbose. */
async function printCycle(out: Output, summary: ReleaseSummary, stamp: string): Promise<void> {
  if (out.json) {
    await out.record({ ...summaryRecord(summary), at: new Date().toISOString() });
    return;
  }
  if (summary.total > 0) {
    const verb = summary.dryRun ? 'would release' : 'released';
    await out.line(out.style.bold(`${stamp} ${verb} ${plural(summary.total, 'expired lock')}`));
  } else if (out.verbose) {
    await out.line(`${stamp} no expired locks`);
  }
}
