import type { Command } from 'commander';
import { unlockSeats } from '../../core/unlock.js';
import { printConflicts } from '../conflicts.js';
import { outputFor, withCommandDatabase } from '../context.js';
import { jsonLine, safe, thousands } from '../output.js';

export function registerUnlock(program: Command): void {
  program
    .command('unlock')
    .description('Release specific locks now, expired or not, all or nothing')
    .argument('<event>', 'event name (exact) or id')
    .argument('<seats...>', 'seat numbers, e.g. A1 A2')
    .option('--user <name>', "only this user's locks; any other seat refuses the whole request")
    .option('--json', 'JSON Lines: one "unlocked" record per seat')
    .addHelpText(
      'after',
      `
Examples:
  $ seatctl unlock "Taylor Swift - Eras Tour" B1 --user alice
  $ seatctl unlock 1 A1 A2          (an operator releasing any holder's locks)`,
    )
    .action(async (event: string, seats: string[], options: { user?: string }, command: Command) => {
      const out = outputFor(command);
      const result = await withCommandDatabase(command, {}, (db) =>
        unlockSeats(db, { event, seats, user: options.user }).catch((error) => printConflicts(out, error)),
      );
      let text = '';
      for (const seat of result.seats) {
        text += out.json
          ? `${jsonLine({
              type: 'unlocked',
              event: result.event.name,
              eventId: result.event.id,
              seat: seat.seat,
              lockedBy: seat.lockedBy,
              lockedUntil: seat.lockedUntil.toISOString(),
              lockToken: seat.lockToken,
              releasedAt: seat.releasedAt.toISOString(),
            })}\n`
          : `${out.style.green(`✔ Unlocked Seat ${safe(seat.seat)} (Event: ${safe(result.event.name)}, was locked by ${safe(seat.lockedBy)})`)}\n`;
      }
      if (!out.json) {
        text += `Total seats unlocked: ${thousands(result.seats.length)}\n`;
      }
      await out.write(text);
    });
}
