import type { Knex } from 'knex';
import type { SeatDatabase } from '../db/open.js';
import { withSeats } from '../db/ready.js';
import type { SeatState, SeatStore } from '../db/seat-store.js';
import { quoteName, SeatConflictError, usageError, type SeatConflict } from '../errors.js';

export type { SeatState };

export interface EventRef {
  id: number;
  name: string;
}

/** Finds an event by its exact name or, failing that, by its numeric id. */
export async function resolveEvent(store: SeatStore, ref: string): Promise<EventRef> {
  if (ref === '') throw usageError('the event name is empty');
  const byName = await store.eventByName(ref);
  if (byName) return byName;
  if (/^[1-9][0-9]{0,14}$/.test(ref)) {
    const byId = await store.eventById(Number(ref));
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

export interface SeatWrite<Row extends { seat: string }> {
  /** What the request does, for the refusal message: "lock", "book", "unlock". */
  action: 'lock' | 'book' | 'unlock';
  event: string;
  seats: readonly string[];
  /** The holder the request acts for, when it names one. */
  user?: string;
  /** The conditional write; returns one row per seat it changed. */
  write(trx: Knex.Transaction, store: SeatStore, event: EventRef): Promise<Row[]>;
  /** Why a seat the write did not change was refused. */
  refusal(state: SeatState): SeatConflict;
}

/**
 * The shape every seat request shares: resolve the event (and the holder), take
 * the seats' rows in a write transaction, run one conditional write, and unless
 * it changed every seat asked for, explain each refused one and roll
 * everything back. Returns the changed rows in the order the seats were asked for.
 */
export async function writeAllOrNothing<Row extends { seat: string }>(
  db: SeatDatabase,
  request: SeatWrite<Row>,
): Promise<{ event: EventRef; rows: Row[] }> {
  const seats = [...request.seats];
  return withSeats(db, async (store) => {
    const event = await resolveEvent(store, request.event);
    if (request.user !== undefined && !(await store.holderExists(request.user))) {
      const ref = store.mapping.seats.holder.references!;
      throw usageError(`unknown user ${quoteName(request.user)} (no ${ref.table} row has that ${ref.name})`);
    }
    return db.engine.writeTransaction(db.knex, async (trx) => {
      const found = await store.claimSeats(trx, event.id, seats);
      const unknown = seats.filter((seat) => !found.has(seat));
      if (unknown.length > 0) {
        const names =
          unknown.slice(0, 5).map(quoteName).join(', ') + (unknown.length > 5 ? ` and ${unknown.length - 5} more` : '');
        throw usageError(`unknown seat${unknown.length > 1 ? 's' : ''} ${names} in event ${quoteName(event.name)}`);
      }
      const rows = await request.write(trx, store, event);
      if (rows.length < seats.length) {
        const done = new Set(rows.map((row) => row.seat));
        const states = await store.seatStates(trx, event.id, seats, request.user ?? null);
        const refused = states.filter((state) => !done.has(state.seat));
        throw new SeatConflictError(request.action, event.name, refused.map(request.refusal));
      }
      const order = new Map(seats.map((seat, index) => [seat, index]));
      return { event, rows: rows.sort((a, b) => order.get(a.seat)! - order.get(b.seat)!) };
    });
  });
}
