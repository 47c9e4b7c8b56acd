import type { CallOptions, SeatDatabase } from '../db/open.js';
import { withSeats } from '../db/ready.js';
import type { SeatState, SeatStore, WriteOutcome } from '../db/seat-store.js';
import { quoteName, SeatConflictError, usageError, type SeatConflict } from '../errors.js';

export type { SeatState };

export interface EventRef {
  id: number;
  name: string;
}

/**
 * Finds an event by its exact name or, failing that, by its numeric id.
 * `cached`: from what this handle read before (the hot path of lock, book and unlock).
 */
export async function resolveEvent(store: SeatStore, ref: string, options: { cached?: boolean } = {}): Promise<EventRef> {
  if (ref === '') throw usageError('the event name is empty');
  const byName = await store.eventByName(ref, options);
  if (byName) return byName;
  if (/^[1-9][0-9]{0,14}$/.test(ref)) {
    const byId = await store.eventById(Number(ref), options);
    if (byId) return { id: byId.id, name: byId.name ?? `#${byId.id}` };
  }
  if (store.mapping.events === null) {
    throw usageError(`unknown event ${quoteName(ref)} (there is no events table: an event is known by its id)`);
  }
  throw usageError(`unknown event ${quoteName(ref)}`);
}

/** The event an optional `event` option names, if any. */
export async function optionalEvent(store: SeatStore, ref: string | undefined): Promise<EventRef | undefined> {
  return ref === undefined ? undefined : resolveEvent(store, ref);
}

export const MAX_SEATS_PER_COMMAND = 10_000;

/** Rejects a seat list that is empty, too long, names an empty seat, or names a seat twice. */
export function checkSeatList(seats: readonly string[]): void {
  if (seats.length === 0) throw usageError('no seats given');
  if (seats.length > MAX_SEATS_PER_COMMAND) {
    throw usageError(`too many seats in one command (${seats.length}; at most ${MAX_SEATS_PER_COMMAND})`);
  }
  const seen = new Set<string>();
  for (const seat of seats) {
    if (seat === '') throw usageError('a seat name is empty');
    if (seen.has(seat)) throw usageError(`seat ${quoteName(seat)} is listed twice`);
    seen.add(seat);
  }
}

export interface SeatWrite<Row extends { seat: string }> extends CallOptions {
  /** What the request does, for the refusal message: "lock", "book", "unlock". */
  action: 'lock' | 'book' | 'unlock';
  event: string;
  /** The event's id, when the caller knows it: no lookup at all. */
  eventId?: number;
  seats: readonly string[];
  /** The holder the request acts for, when it names one. */
  user?: string;
  /** The conditional write, all or nothing, in the store. */
  write(store: SeatStore, event: EventRef): Promise<WriteOutcome<Row>>;
  /** Why a seat the write did not change was refused. */
  refusal(state: SeatState): SeatConflict;
}

/**
 * The shape every seat request shares: resolve the event, let the store run
 * the all-or-nothing write, and turn what it refused into errors: an unknown
 * holder or seat is bad input; refused seats are a SeatConflictError, each
 * with its reason. Returns the changed rows in the order the seats were asked for.
 */
export async function writeAllOrNothing<Row extends { seat: string }>(
  db: SeatDatabase,
  request: SeatWrite<Row>,
): Promise<{ event: EventRef; rows: Row[]; now: Date; renewed: Set<string> }> {
  const seats = [...request.seats];
  return withSeats(
    db,
    async (store) => {
    if (request.eventId !== undefined && (!Number.isSafeInteger(request.eventId) || request.eventId < 1)) {
      throw usageError('eventId must be a whole number of at least 1');
    }
    let event =
      request.eventId !== undefined
        ? { id: request.eventId, name: (await store.eventById(request.eventId, { cached: true }))?.name ?? `#${request.eventId}` }
        : await resolveEvent(store, request.event, { cached: true });
    let outcome = await request.write(store, event);
    if (outcome.result === 'unknown-seats' && request.eventId === undefined) {
      // The event may have been deleted and made again since it was cached: look once more.
      store.forgetEvents();
      const fresh = await resolveEvent(store, request.event);
      if (fresh.id !== event.id) outcome = await request.write(store, (event = fresh));
    }
    switch (outcome.result) {
      case 'unknown-user': {
        const ref = store.mapping.seats.holder.references!;
        throw usageError(`unknown user ${quoteName(request.user ?? '')} (no ${ref.table} row has that ${ref.name})`);
      }
      case 'unknown-seats': {
        const unknown = outcome.seats;
        const names =
          unknown.slice(0, 5).map(quoteName).join(', ') + (unknown.length > 5 ? ` and ${unknown.length - 5} more` : '');
        throw usageError(`unknown seat${unknown.length > 1 ? 's' : ''} ${names} in event ${quoteName(event.name)}`);
      }
      case 'refused':
        throw new SeatConflictError(request.action, event.name, outcome.states.map(request.refusal));
      case 'written': {
        const order = new Map(seats.map((seat, index) => [seat, index]));
        const rows = outcome.rows.sort((a, b) => order.get(a.seat)! - order.get(b.seat)!);
        return { event, rows, now: outcome.now, renewed: outcome.renewed };
      }
    }
    },
    request,
  );
}
