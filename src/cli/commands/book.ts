import type { Command } from 'commander';
import { bookSeats } from '../../core/book.js';
import { printConflicts } from '../conflicts.js';
import { outputFor, withCommandDatabase } from '../context.js';
import { plural, safe } from '../output.js';

export function registerBook(program: Command): void {
  program
    .command('book')
    .description("Turn a user's unexpired locks into bookings, all or nothing")
    .argument('<event>', 'event name (exact) or id')
    .argument('<seats...>', 'seat numbers, e.g. A1 A2')
    .requiredOption('--user <name>', 'the lock holder the seats are booked for')
    .option('--json', 'JSON Lines: one "booked" record per seat')
    .addHelpText(
      'after',
      `
Examples:
  $ seatctl book "Taylor Swift - Eras Tour" A1 A2 --user alice

Only seats the user holds with a lock that has not expired at the moment of
booking are booked; otherwise none is, and each refused seat says why (exit 3).`,
    )
    .action(async (event: string, seats: string[], options: { user: string }, command: Command) => {
      const out = outputFor(command);
      const result = await withCommandDatabase(command, {}, (db) =>
        bookSeats(db, { event, seats, user: options.user }).catch((error) => printConflicts(out, error)),
      );
      if (out.json) {
        for (const seat of result.seats) {
          await out.record({
            type: 'booked',
            event: result.event.name,
            eventId: result.event.id,
            seat: seat.seat,
            bookedBy: result.user,
            bookedAt: seat.bookedAt.toISOString(),
          });
        }
        return;
      }
      await out.line(
        out.style.green(
          `✔ Booked ${plural(result.seats.length, 'seat')} (${result.seats.map((s) => safe(s.seat)).join(', ')}) of ${safe(result.event.name)} for ${safe(result.user)}`,
        ),
      );
    });
}
