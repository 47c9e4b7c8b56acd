import { Option, type Command } from 'commander';
import { countHistory, history, type HistoryOptions } from '../../core/history.js';
import { outputFor, withCommandDatabase } from '../context.js';
import { jsonLine, safe, Table, thousands } from '../output.js';
import { countArg, sinceArg } from '../parse.js';

interface HistoryCommandOptions {
  event?: string;
  seat?: string;
  user?: string;
  since?: { agoMs: number } | { at: Date };
  limit: number;
}

export function registerHistory(program: Command): void {
  program
    .command('history')
    .description('Show released locks, newest first: who held them, until when, when and why they were released')
    .option('--event <event>', 'only this event (exact name or id)')
    .option('--seat <seat>', 'only this seat number')
    .option('--user <name>', 'only locks held by this user')
    .addOption(
      new Option('--since <when>', 'only releases since a duration ago (2h) or an ISO 8601 date').argParser(sinceArg),
    )
    .addOption(new Option('--limit <n>', 'at most this many rows').argParser(countArg).default(100))
    .option('--json', 'JSON Lines: one "release" record per row')
    .addHelpText(
      'after',
      `
Examples:
  $ seatctl history --since 1h
  $ seatctl history --event "Taylor Swift - Eras Tour" --seat A13 --json

Reasons: expired (released by release-expired-locks), unlocked (by unlock),
replaced (an expired lock taken over by a new lock before any release ran).`,
    )
    .action(async (options: HistoryCommandOptions, command: Command) => {
      const out = outputFor(command);
      const since = options.since;
      const filter: HistoryOptions = {
        event: options.event,
        seat: options.seat,
        user: options.user,
        since: since && 'at' in since ? since.at : undefined,
        withinMs: since && 'agoMs' in since ? since.agoMs : undefined,
      };
      const { entries, total } = await withCommandDatabase(command, {}, async (db) => {
        const entries = await history(db, { ...filter, limit: options.limit });
        // A full page may be cut short by --limit: say how many there are.
        const total = entries.length < options.limit ? entries.length : await countHistory(db, filter);
        return { entries, total };
      });
      if (out.json) {
        await out.write(
          entries
            .map(
              (entry) =>
                `${jsonLine({
                  type: 'release',
                  id: entry.id,
                  event: entry.event,
                  eventId: entry.eventId,
                  seat: entry.seat,
                  lockedBy: entry.lockedBy,
                  lockedUntil: entry.lockedUntil.toISOString(),
                  lockToken: entry.lockToken,
                  releasedAt: entry.releasedAt.toISOString(),
                  reason: entry.reason,
                })}\n`,
            )
            .join(''),
        );
        await out.record({ type: 'summary', shown: entries.length, total });
        return;
      }
      if (entries.length === 0) {
        await out.line('No releases recorded');
        return;
      }
      const { format } = await import('date-fns/format');
      const time = (date: Date) => format(date, 'yyyy-MM-dd HH:mm:ss');
      const rows = entries.map((e) => [
        time(e.releasedAt),
        safe(e.event),
        safe(e.seat),
        safe(e.lockedBy),
        time(e.lockedUntil),
        e.reason,
      ]);
      const header = ['RELEASED AT', 'EVENT', 'SEAT', 'LOCKED BY', 'LOCKED UNTIL', 'REASON'];
      await out.write(new Table(header, rows).render(out.style.bold, rows));
      if (total > entries.length) {
        await out.line(
          `showing the newest ${thousands(entries.length)} of ${thousands(total)} releases (--limit to see more)`,
        );
      }
    });
}
