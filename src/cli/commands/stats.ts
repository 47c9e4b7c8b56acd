import { Option, type Command } from 'commander';
import { DEFAULT_STALE_AFTER_MS, stats, type StatsReport } from '../../core/stats.js';
import { SeatctlError } from '../../errors.js';
import { outputFor, withCommandDatabase } from '../context.js';
import { jsonLine, type Output, plural, safe, Table, thousands } from '../output.js';
import { durationText, spoken } from '../durations.js';
import { durationArg } from '../parse.js';

interface StatsCommandOptions {
  event?: string;
  staleAfter: number;
  check?: boolean;
}

export function registerStats(program: Command): void {
  program
    .command('stats')
    .description('Seat counts per event, the last release run, and a warning when expired locks pile up')
    .option('--event <event>', 'only this event (exact name or id)')
    .addOption(
      new Option('--stale-after <duration>', 'warn when expired locks wait and no release ran for this long')
        .argParser(durationArg)
        .default(DEFAULT_STALE_AFTER_MS, '5m'),
    )
    .option('--check', 'exit 6 when that warning applies (for health checks)')
    .option('--json', 'JSON Lines: one "event" record per event, then a "summary"')
    .addHelpText(
      'after',
      `
Examples:
  $ seatctl stats
  $ seatctl stats --check --stale-after 10m || alert "seat sweeper stopped"`,
    )
    .action(async (options: StatsCommandOptions, command: Command) => {
      const out = outputFor(command);
      const report = await withCommandDatabase(command, {}, (db) =>
        stats(db, { event: options.event, staleAfterMs: options.staleAfter }),
      );
      if (out.json) await printJson(out, report);
      else await printHuman(out, report, !options.check);
      if (options.check && report.stale) throw new SeatctlError('unhealthy', staleWarning(report));
    });
}

async function printJson(out: Output, report: StatsReport): Promise<void> {
  await out.write(report.events.map((e) => `${jsonLine({ type: 'event', ...e })}\n`).join(''));
  const totals = { seats: 0, available: 0, locked: 0, expired: 0, booked: 0 };
  for (const e of report.events)
    for (const key of Object.keys(totals) as Array<keyof typeof totals>) totals[key] += e[key];
  await out.record({
    type: 'summary',
    now: report.now.toISOString(),
    ...totals,
    lastRun: report.lastRun && { ...report.lastRun, finishedAt: report.lastRun.finishedAt.toISOString() },
    stale: report.stale,
    staleAfterMs: report.staleAfterMs,
  });
}

async function printHuman(out: Output, report: StatsReport, warn: boolean): Promise<void> {
  if (report.events.length === 0) {
    await out.line('No events');
  } else {
    // Locks are active or expired, as list-locked counts them.
    const header = ['EVENT', 'SEATS', 'AVAILABLE', 'ACTIVE LOCKS', 'EXPIRED LOCKS', 'BOOKED'];
    const rows = report.events.map((e) => [
      safe(e.event),
      ...[e.seats, e.available, e.locked, e.expired, e.booked].map((n) => thousands(n)),
    ]);
    await out.write(new Table(header, rows, [false, true, true, true, true, true]).render(out.style.bold, rows));
  }
  const run = report.lastRun;
  await out.line(
    run === null
      ? 'last release: never'
      : `last release: ${ago(report.now.getTime() - run.finishedAt.getTime())} on ${safe(run.host)}, ${thousands(run.released)} released`,
  );
  if (warn && report.stale) out.note(out.errStyle.yellow(`warning: ${staleWarning(report)}`));
}

function staleWarning(report: StatsReport): string {
  const waiting = report.events.reduce((sum, e) => sum + e.expired, 0);
  const since =
    report.lastRun === null
      ? 'no release has ever run'
      : `no release has run for ${spoken(report.now.getTime() - report.lastRun.finishedAt.getTime())}`;
  return `${plural(waiting, 'expired lock')} ${waiting === 1 ? 'is' : 'are'} waiting and ${since} (--stale-after ${durationText(report.staleAfterMs)}): is release-expired-locks running?`;
}

const ago = (ms: number) => `${spoken(ms)} ago`;
