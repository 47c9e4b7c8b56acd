import type { Knex } from 'knex';
import { guard, type SeatDatabase } from '../db/open.js';
import { ensureSchema } from '../db/schema.js';
import { quoteName, SeatConflictError, usageError, type SeatConflict } from '../errors.js';

export interface EventRef {
  id: number;
  name: string;
}

/** Finds an event by its exact name or, failing that, by its numeric id. */
export async function resolveEvent(db: SeatDatabase, ref: string): Promise<EventRef> {
  if (ref === '') throw usageError('the event name is empty');
  const byName = await db.knex('events').select('id', 'name').where('name', ref).first();
  if (byName) return byName as EventRef;
  if (/^[1-9][0-9]{0,9}$/.test(ref)) {
    const byId = await db.knex('events').select('id', 'name').where('id', Number(ref)).first();
    if (byId) return byId as EventRef;
  }
  throw usageError(`unknown event ${quoteName(ref)}`);
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

/**
 * Inside a write transaction: takes the rows of these seats (row locks, in id
 * order so concurrent writers never deadlock, where the engine has them) and
 * throws a usage error naming every seat the event does not have.
 */
async function claimSeats(
  db: SeatDatabase,
  trx: Knex.Transaction,
  event: EventRef,
  seats: readonly string[],
): Promise<void> {
  const rows: Array<{ seat_number: string }> = await db.engine.forUpdate(
    trx('seats').select('seat_number').where('event_id', event.id).whereIn('seat_number', seats).orderBy('id'),
  );
  const found = new Set(rows.map((row) => row.seat_number));
  const unknown = seats.filter((seat) => !found.has(seat));
  if (unknown.length > 0) {
    const names =
      unknown.slice(0, 5).map(quoteName).join(', ') + (unknown.length > 5 ? ` and ${unknown.length - 5} more` : '');
    throw usageError(`unknown seat${unknown.length > 1 ? 's' : ''} ${names} in event ${quoteName(event.name)}`);
  }
}

/** Reads the current state of some seats of an event, for explaining a refusal. */
async function seatStates(
  db: SeatDatabase,
  trx: Knex.Transaction,
  event: EventRef,
  seats: readonly string[],
): Promise<SeatState[]> {
  const { engine } = db;
  const rows: Array<{
    seat_number: string;
    status: SeatState['status'];
    locked_by: string | null;
    locked_until: unknown;
    locked_at: unknown;
    expired: unknown;
  }> = await trx('seats')
    .select(
      'seat_number',
      'status',
      'locked_by',
      'locked_until',
      'locked_at',
      trx.raw(`CASE WHEN locked_until <= ${engine.now} THEN 1 ELSE 0 END AS expired`),
    )
    .where('event_id', event.id)
    .whereIn('seat_number', seats)
    .orderBy('id');
  return rows.map((row) => ({
    seat: row.seat_number,
    status: row.status,
    lockedBy: row.locked_by,
    lockedUntil: row.locked_until == null ? null : engine.readInstant(row.locked_until),
    lockedAt: row.locked_at == null ? null : engine.readInstant(row.locked_at),
    expired: Number(row.expired) === 1,
  }));
}

export interface SeatState {
  seat: string;
  status: 'available' | 'locked' | 'booked';
  lockedBy: string | null;
  lockedUntil: Date | null;
  lockedAt: Date | null;
  /** Locked, and the lock has expired by the database clock. */
  expired: boolean;
}

/** The database clock, read once so several statements of a transaction agree on "now". */
export async function databaseNow(db: SeatDatabase, trx: Knex | Knex.Transaction): Promise<Date> {
  const [row] = db.engine.rows<{ now: unknown }>(await trx.raw(`SELECT ${db.engine.now} AS now`));
  return db.engine.readInstant(row!.now);
}

/** A list of values for `IN (:name)` in a raw query with named bindings (Knex doesn't expand arrays there). */
export function sqlList(knex: Knex | Knex.Transaction, values: readonly string[]): Knex.Raw {
  return knex.raw(values.map(() => '?').join(', '), [...values]);
}

export interface SeatWrite<Row extends { seat_number: string }> {
  /** What the request does, for the refusal message: "lock", "book", "unlock". */
  action: 'lock' | 'book' | 'unlock';
  event: string;
  seats: readonly string[];
  /** The conditional write; returns one row per seat it changed. */
  write(trx: Knex.Transaction, event: EventRef): Promise<Row[]>;
  /** Why a seat the write did not change was refused. */
  refusal(state: SeatState): SeatConflict;
}

/**
 * The shape every seat command shares: resolve the event, take the seats' rows
 * in a write transaction, run one conditional write, and unless it changed
 * every seat asked for, explain each refused one and roll everything back.
 * Returns the changed rows in the order the seats were asked for.
 */
export async function writeAllOrNothing<Row extends { seat_number: string }>(
  db: SeatDatabase,
  request: SeatWrite<Row>,
): Promise<{ event: EventRef; rows: Row[] }> {
  const seats = [...request.seats];
  return guard(db, async () => {
    await ensureSchema(db);
    const event = await resolveEvent(db, request.event);
    return db.engine.writeTransaction(db.knex, async (trx) => {
      await claimSeats(db, trx, event, seats);
      const rows = await request.write(trx, event);
      if (rows.length < seats.length) {
        const done = new Set(rows.map((row) => row.seat_number));
        const refused = (await seatStates(db, trx, event, seats)).filter((state) => !done.has(state.seat));
        throw new SeatConflictError(request.action, event.name, refused.map(request.refusal));
      }
      const order = new Map(seats.map((seat, index) => [seat, index]));
      return { event, rows: rows.sort((a, b) => order.get(a.seat_number)! - order.get(b.seat_number)!) };
    });
  });
}
