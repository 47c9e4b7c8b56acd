import { Option, type Command } from 'commander';
import { DEFAULT_MAX_HOLD_MS, DEFAULT_TTL_MS, lockSeats } from '../../core/lock.js';
import { usageError } from '../../errors.js';
import { outputFor, withCommandDatabase } from '../context.js';
import { printConflicts } from '../conflicts.js';
import { plural, safe } from '../output.js';
import { durationArg, durationOrZeroArg } from '../parse.js';

interface LockCommandOptions {
  user: string;
  ttl: number;
  maxHold: number;
  holdCooldown?: number;
  json?: boolean;
}

export function registerLock(program: Command): void {
  program
    .command('lock')
    .description('Lock seats for a user, all or nothing')
    .argument('<event>', 'event name (exact) or id')
    .argument('<seats...>', 'seat numbers, e.g. A1 A2')
    .requiredOption('--user <name>', 'who holds the lock')
    .addOption(
      new Option('--ttl <duration>', 'how long the lock lasts, at most 24h')
        .argParser(durationArg)
        .default(DEFAULT_TTL_MS, '5m'),
    )
    .addOption(
      new Option('--max-hold <duration>', 're-locking extends a hold up to this long after it began')
        .argParser(durationArg)
        .default(DEFAULT_MAX_HOLD_MS, '30m'),
    )
    .addOption(
      new Option(
        '--hold-cooldown <duration>',
        'a re-lock within this long after your hold ended continues it (default: the --max-hold)',
      ).argParser(durationOrZeroArg),
    )
    .option('--json', 'JSON Lines: one "locked" record per seat')
    .addHelpText(
      'after',
      `
Examples:
  $ seatctl lock "Taylor Swift - Eras Tour" A1 A2 --user alice
  $ seatctl lock 1 B7 --user bob --ttl 90s

A seat can be locked when it is available or its lock has expired. Re-locking
seats you hold extends them, up to --max-hold after you first locked them; a
re-lock soon after your hold ended (--hold-cooldown) continues that hold. If
any seat can't be locked, none is (exit 3).`,
    )
    .action(async (event: string, seats: string[], options: LockCommandOptions, command: Command) => {
      const out = outputFor(command);
      const maxHoldGiven = command.getOptionValueSource('maxHold') === 'cli';
      const result = await withCommandDatabase(command, {}, (db) => {
        if ((maxHoldGiven || options.holdCooldown !== undefined) && db.mapping.seats.lockedAt === null) {
          const flag = maxHoldGiven ? '--max-hold' : '--hold-cooldown';
          throw usageError(`${flag} needs the hold's start, and this mapping has no such column (seats.lockedAt)`);
        }
        const maxHoldMs = maxHoldGiven || db.mapping.seats.lockedAt !== null ? options.maxHold : undefined;
        const holdCooldownMs = options.holdCooldown;
        return lockSeats(db, { event, seats, user: options.user, ttlMs: options.ttl, maxHoldMs, holdCooldownMs }).catch((error) =>
          printConflicts(out, error),
        );
      });
      if (out.json) {
        for (const seat of result.seats) {
          await out.record({
            type: 'locked',
            event: result.event.name,
            eventId: result.event.id,
            seat: seat.seat,
            lockedBy: result.user,
            lockedUntil: seat.lockedUntil.toISOString(),
            lockedAt: seat.lockedAt?.toISOString() ?? null,
            lockToken: seat.lockToken,
            renewed: seat.renewed,
            capped: seat.capped,
          });
        }
        return;
      }
      const { whenWithRelative } = await import('../time-format.js');
      const until = result.seats.reduce(
        (latest, seat) => (seat.lockedUntil > latest ? seat.lockedUntil : latest),
        result.seats[0]!.lockedUntil,
      );
      const renewed = result.seats.filter((seat) => seat.renewed).length;
      const cut = result.seats.filter((seat) => seat.renewed && seat.capped).length;
      await out.line(
        out.style.green(
          `✔ Locked ${plural(result.seats.length, 'seat')} (${result.seats.map((s) => safe(s.seat)).join(', ')}) of ${safe(result.event.name)} for ${safe(result.user)}, until ${whenWithRelative(until, result.now)}`,
        ) + (renewed > 0 ? ` (${renewed} renewed${cut > 0 ? `, ${cut} only up to the hold cap` : ''})` : ''),
      );
      const capped = result.seats.filter((seat) => seat.capped);
      if (capped.length > 0) {
        out.note(
          out.errStyle.yellow(
            `note: ${capped.map((s) => safe(s.seat)).join(', ')} reached the hold cap: held since ${whenWithRelative(capped[0]!.lockedAt!, result.now)}, so the lock ends earlier than --ttl asked`,
          ),
        );
      }
    });
}
