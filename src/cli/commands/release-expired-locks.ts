import { Option, type Command } from 'commander';
import { DEFAULT_BATCH_SIZE, releaseExpiredLocksInBatches, type ReleasedLock, type ReleaseSummary } from '../../core/release.js';
import type { SeatDatabase } from '../../db/open.js';
import { SeatctlError } from '../../errors.js';
import { outputFor, withCommandDatabase } from '../context.js';
import { collectGarbage } from '../heap.js';
import { stopSignal } from '../interrupt.js';
import { isoTime, jsonString, plural, safe, type Output } from '../output.js';
import { countArg, durationOrZeroArg } from '../parse.js';

const GC_EVERY_LOCKS = 10_000;

interface ReleaseCommandOptions {
  event?: string;
  dryRun?: boolean;
  quiet?: boolean;
  json?: boolean;
  batchSize?: number;
  grace?: number;
}

export function registerReleaseExpiredLocks(program: Command): void {
  program
    .command('release-expired-locks')
    .description('Release every lock whose time has passed, and report each seat put back on sale')
    .option('--event <event>', 'only this event (exact name or id)')
    .option('--dry-run', 'show what would be released; change nothing')
    .option('-q, --quiet', 'print only the total, and nothing when nothing was released (for cron)')
    .option('--json', 'JSON Lines: one "released" record per seat, then a "summary"')
    .addOption(
      new Option('--batch-size <n>', 'locks released per transaction (1-100000)').argParser(countArg).default(DEFAULT_BATCH_SIZE),
    )
    .addOption(
      new Option('--grace <duration>', 'only release locks expired for longer than this')
        .argParser(durationOrZeroArg)
        .default(0, '0'),
    )
    .addHelpText(
      'after',
      `
Examples:
  $ seatctl release-expired-locks
  $ seatctl release-expired-locks --dry-run --event "Taylor Swift - Eras Tour"
  * * * * * cd /srv/app && npx seatctl release-expired-locks --quiet      (crontab)`,
    )
    .action(async (options: ReleaseCommandOptions, command: Command) => {
      const out = outputFor(command);
      await withCommandDatabase(command, {}, async (db) => {
        const summary = await releaseOnce(db, out, options);
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
  const batches = releaseExpiredLocksInBatches(db, {
    event: options.event,
    batchSize: options.batchSize,
    graceMs: options.grace,
    dryRun,
    signal: stopSignal,
  });
  let released = 0;
  for (;;) {
    const next = await batches.next();
    if (next.done) {
      await printSummary(out, next.value);
      return next.value;
    }
    await printBatch(out, next.value, dryRun);
    released += next.value.length;
    if (released >= GC_EVERY_LOCKS) {
      released = 0;
      collectGarbage();
    }
  }
}

// A release can print a million lines: each batch is built as one string, and
// what is the same for many lines (an event's name) is escaped once.
async function printBatch(out: Output, locks: ReleasedLock[], dryRun: boolean): Promise<void> {
  let text = '';
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

async function printSummary(out: Output, summary: ReleaseSummary): Promise<void> {
  if (out.json) {
    await out.record({
      type: 'summary',
      total: summary.total,
      dryRun: summary.dryRun,
      ...(summary.interrupted ? { interrupted: true } : {}),
    });
    return;
  }
  if (summary.total === 0) {
    if (!out.quiet) await out.line('No expired locks to release');
    return;
  }
  const label = summary.dryRun ? 'Total locks that would be released' : 'Total locks released';
  await out.line(out.style.bold(`${label}: ${summary.total}`));
}
