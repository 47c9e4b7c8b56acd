import { SeatConflictError, type SeatConflict } from '../errors.js';
import { safe, type Output } from './output.js';

/**
 * Says, per seat, why a lock, book or unlock was refused (JSON records on
 * stdout with --json, lines on stderr otherwise), then rethrows for the exit
 * code. Any other error passes through untouched.
 */
export async function printConflicts(out: Output, error: unknown): Promise<never> {
  if (!(error instanceof SeatConflictError)) throw error;
  if (out.json) {
    for (const conflict of error.conflicts) {
      await out.record({
        type: 'conflict',
        event: error.event,
        seat: conflict.seat,
        reason: conflict.reason,
        lockedBy: conflict.lockedBy,
        lockedUntil: conflict.lockedUntil?.toISOString() ?? null,
      });
    }
  } else {
    const { whenWithRelative } = await import('./time-format.js');
    const now = new Date();
    for (const conflict of error.conflicts) {
      out.note(`  ${safe(conflict.seat)}: ${describe(conflict, (date) => whenWithRelative(date, now))}`);
    }
  }
  throw error;
}

function describe(conflict: SeatConflict, when: (date: Date) => string): string {
  const holder = conflict.lockedBy === null ? 'someone' : safe(conflict.lockedBy);
  switch (conflict.reason) {
    case 'held':
      return `held by ${holder} until ${conflict.lockedUntil ? when(conflict.lockedUntil) : 'later'}`;
    case 'booked':
      return 'already booked';
    case 'not-locked':
      return conflict.lockedBy === null
        ? 'not locked'
        : `not locked by you (${holder}'s lock expired at ${when(conflict.lockedUntil!)})`;
    case 'expired':
      return `the lock expired at ${conflict.lockedUntil ? when(conflict.lockedUntil) : 'an earlier time'}`;
    case 'hold-cap':
      return conflict.lockedAt && conflict.lockedBy !== null
        ? `${holder} has held it since ${when(conflict.lockedAt)}: the hold cap (--max-hold) is reached`
        : 'your hold on it ended within the cool-down and had reached the hold cap (--max-hold): try again after --hold-cooldown';
    case 'unavailable':
      return 'not on sale: the app gave it a status seatctl does not manage';
  }
}
