import { Option, type Command } from 'commander';
import { listLockedPages, type LockedSeatRow } from '../../core/list.js';
import { outputFor, withCommandDatabase } from '../context.js';
import { jsonLine, type Output, plural, safe, Table, thousands } from '../output.js';

interface ListLockedCommandOptions {
  event?: string;
  expired?: boolean;
  active?: boolean;
  user?: string;
}

export function registerListLocked(program: Command): void {
  program
    .command('list-locked')
    .description('Show locked seats: who holds them and until when')
    .option('--event <event>', 'only this event (exact name or id)')
    .addOption(new Option('--expired', 'only locks that have expired and await release').conflicts('active'))
    .addOption(new Option('--active', 'only locks that are still valid').conflicts('expired'))
    .option('--user <name>', 'only locks held by this user')
    .option('--json', 'JSON Lines: one "lock" record per seat, then a "summary"')
    .addHelpText(
      'after',
      `
Examples:
  $ seatctl list-locked
  $ seatctl list-locked --expired --event "Taylor Swift - Eras Tour"
  $ seatctl list-locked --user alice --json`,
    )
    .action(async (options: ListLockedCommandOptions, command: Command) => {
      const out = outputFor(command);
      const state = options.expired ? 'expired' : options.active ? 'active' : undefined;
      await withCommandDatabase(command, {}, async (db) => {
        const { clockTime, relativeTime } = await import('../time-format.js');
        const counts = { expired: 0, active: 0 };
        let table: Table | undefined;
        for await (const page of listLockedPages(db, { event: options.event, state, user: options.user })) {
          for (const seat of page.seats) counts[seat.expired ? 'expired' : 'active']++;
          if (out.json) {
            await out.write(page.seats.map((seat) => `${jsonLine(lockRecord(seat))}\n`).join(''));
            continue;
          }
          const rows = page.seats.map((seat) => ({
            seat,
            cells: [
              safe(seat.event),
              safe(seat.seat),
              safe(seat.lockedBy),
              clockTime(seat.lockedUntil, page.now),
              seat.expired
                ? `expired ${relativeTime(seat.lockedUntil, page.now)}`
                : `expires ${relativeTime(seat.lockedUntil, page.now)}`,
            ],
          }));
          if (table === undefined && rows.length > 0) {
            table = new Table(
              ['EVENT', 'SEAT', 'LOCKED BY', 'LOCKED UNTIL', 'STATE'],
              rows.map((row) => row.cells),
            );
            await out.line(out.style.bold(table.format(table.header)));
          }
          if (table) {
            await out.write(
              rows
                .map((row) => `${(row.seat.expired ? out.style.red : out.style.yellow)(table!.format(row.cells))}\n`)
                .join(''),
            );
          }
        }
        await printCount(out, counts);
      });
    });
}

function lockRecord(seat: LockedSeatRow): Record<string, unknown> {
  return {
    type: 'lock',
    event: seat.event,
    eventId: seat.eventId,
    seat: seat.seat,
    lockedBy: seat.lockedBy,
    lockedUntil: seat.lockedUntil.toISOString(),
    lockedAt: seat.lockedAt?.toISOString() ?? null,
    lockToken: seat.lockToken,
    expired: seat.expired,
  };
}

async function printCount(out: Output, counts: { expired: number; active: number }): Promise<void> {
  const total = counts.expired + counts.active;
  if (out.json) {
    await out.record({ type: 'summary', total, ...counts });
  } else if (total === 0) {
    await out.line('No locked seats');
  } else {
    await out.line(
      `${plural(total, 'locked seat')}: ${thousands(counts.expired)} expired, ${thousands(counts.active)} active`,
    );
  }
}
