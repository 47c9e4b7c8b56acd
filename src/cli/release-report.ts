import type { ReleasedLock, ReleaseSummary } from '../core/release.js';
import { isoTime, jsonString, safe, thousands, type Output } from './output.js';

// A release can print a million lines: each batch is built as one string, and
// what is the same for many lines (an event's name) is escaped once. The JSON
// is written by hand for the same reason (this is the hot path of a big
// release's --json); every string goes through jsonString, so it stays valid
// and terminal-safe.
export async function printBatch(out: Output, locks: ReleasedLock[], dryRun: boolean): Promise<void> {
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

export function summaryRecord(summary: ReleaseSummary): Record<string, unknown> {
  return {
    type: 'summary',
    total: summary.total,
    dryRun: summary.dryRun,
    ...(summary.interrupted ? { interrupted: true } : {}),
  };
}

/** The end of a one-shot release: the total, or that there was nothing to release. */
export async function printSummary(out: Output, summary: ReleaseSummary): Promise<void> {
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
  await out.line(out.style.bold(`${label}: ${thousands(summary.total)}${interrupted}`));
}
