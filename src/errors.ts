/**
 * The one error type of seatctl. The library throws it with a `kind`; the CLI
 * entry point alone turns the kind into an exit code.
 */
export type ErrorKind =
  | 'usage' // bad usage or input: unknown option, bad duration, unknown event or seat
  | 'conflict' // the request was refused and nothing changed (a seat is held or booked)
  | 'unavailable' // the database can't be opened, reached, or is busy past the timeout
  | 'schema' // the database is not set up, or was set up by a newer seatctl
  | 'unhealthy' // stats --check: expired locks wait and no release ran recently
  | 'interrupted' // SIGINT or SIGTERM ended the command before it finished
  | 'closed' // the library was called with a database handle that was closed
  | 'aborted'; // the caller's AbortSignal fired, or its timeoutMs passed, before the call was done

export const EXIT_CODES = {
  ok: 0,
  failure: 1,
  usage: 2,
  conflict: 3,
  unavailable: 4,
  schema: 5,
  unhealthy: 6,
  interrupted: 130,
  closed: 1,
  aborted: 4,
} as const;

export class SeatctlError extends Error {
  override readonly name: string = 'SeatctlError';
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
  }

  get exitCode(): number {
    return EXIT_CODES[this.kind];
  }
}

export function usageError(message: string): SeatctlError {
  return new SeatctlError('usage', message);
}

/** Why one seat of a lock, book or unlock request could not be served. */
export type SeatConflictReason =
  | 'held' // locked by someone else, lock still valid
  | 'booked' // already booked
  | 'not-locked' // book or unlock of a seat nobody holds
  | 'expired' // book with a lock that has expired
  | 'hold-cap' // re-lock would keep the seat past the hold cap
  | 'unavailable'; // the seat's status is one the mapping doesn't name (the app's own, e.g. 'reserved')

export interface SeatConflict {
  seat: string;
  reason: SeatConflictReason;
  /** Who holds (or held) the seat, when the reason involves a holder. */
  lockedBy: string | null;
  lockedUntil: Date | null;
  /** For `hold-cap`: when the holder first locked the seat. */
  lockedAt?: Date | null;
}

/** A lock, book or unlock request that was refused as a whole; nothing changed. */
export class SeatConflictError extends SeatctlError {
  override readonly name: string = 'SeatConflictError';
  readonly conflicts: SeatConflict[];
  readonly event: string;

  constructor(action: string, event: string, conflicts: SeatConflict[]) {
    const seats = conflicts.map((c) => c.seat).join(', ');
    super('conflict', `cannot ${action} ${seats} of ${event}: nothing was changed`);
    this.event = event;
    this.conflicts = conflicts;
  }
}

/** A name from the database or the command line, quoted and shortened for a one-line message. */
export function quoteName(name: string): string {
  const shown = name.length > 60 ? `${name.slice(0, 57)}…` : name;
  return `'${shown}'`;
}
