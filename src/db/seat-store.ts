import type { Knex } from 'knex';
import type { SeatMapping, TableRef } from '../mapping/mapping.js';
import type { StatusValue } from '../mapping/presets.js';
import type { Engine, ReleasedLock } from './engine.js';
import { instantCodec, type InstantCodec } from './instants.js';
import { runStatement, statement, withConnection, type Params, type Statement } from './query.js';

/** The state of a seat as seatctl sees it; `other` is a status value the mapping doesn't name. */
export type SeatStatus = 'available' | 'locked' | 'booked' | 'other';

export interface SeatState {
  seat: string;
  status: SeatStatus;
  /** The raw status value, for messages about an `other` one. */
  statusValue: StatusValue;
  lockedBy: string | null;
  lockedUntil: Date | null;
  lockedAt: Date | null;
  /** Locked, and the lock has expired by the database clock. */
  expired: boolean;
  /** Locked by the holder the request names. */
  mine: boolean;
}

/** Shown for a lock whose holder column is empty (a Django user deleted with SET_NULL). */
export const NO_HOLDER = '(none)';

/** Batches walk the locked seats in id order. */
export interface ReleaseScope {
  batchSize: number;
  afterSeatId: number;
  eventId?: number;
  graceMs: number;
}

export interface LockedRow {
  id: number;
  eventId: number;
  seat: string;
  lockedBy: string;
  lockedUntil: Date;
  /** When the holder first locked the seat; null where the mapping doesn't record it. */
  lockedAt: Date | null;
  /** Null where the mapping has no lock token. */
  lockToken: number | null;
  /** The lock has expired (by the database clock) and awaits release. */
  expired: boolean;
}

export interface EventCounts {
  eventId: number;
  event: string | null;
  seats: number;
  available: number;
  locked: number;
  expired: number;
  booked: number;
}

export interface HistoryFilter {
  eventId?: number;
  seat?: string;
  user?: string;
  since?: Date;
  withinMs?: number;
  limit: number;
}

/** `expired`: by release-expired-locks; `unlocked`: by unlock; `replaced`: an expired lock taken over by a new lock before any release ran. */
export type ReleaseReason = 'expired' | 'unlocked' | 'replaced';

export interface HistoryRow {
  id: number;
  /** Null when the events table has no such event (or there is no events table). */
  event: string | null;
  eventId: number;
  seat: string;
  /** Who held the lock. */
  lockedBy: string;
  /** Until when the lock was valid. */
  lockedUntil: Date;
  /** Null where the mapping has no lock token. */
  lockToken: number | null;
  releasedAt: Date;
  reason: ReleaseReason;
}

export interface RunRow {
  host: string;
  pid: number;
  finishedAt: Date;
  released: number;
}

type Db = Knex | Knex.Transaction;

/**
 * Every statement seatctl runs against the seats, built once from the
 * mapping: identifiers quoted by Knex's dialect, status values written as
 * literals (so partial indexes apply), everything else bound. The domain
 * (src/core) asks for seats, holders and instants; only this module knows
 * which table and column hold them, and how the app stores an instant.
 */
export class SeatStore {
  readonly mapping: SeatMapping;
  readonly engine: Engine;
  private readonly knex: Knex;
  private readonly time: InstantCodec;
  private readonly statements = new Map<string, Statement>();
  private readonly t: { seats: string; events: string | null; holders: string | null; history: string; runs: string };
  /** Unqualified column names of the seats table, quoted, for SET clauses. */
  private readonly col: Record<'id' | 'event' | 'seat' | 'status' | 'until' | 'holder', string> & {
    token: string | null;
    lockedAt: string | null;
    bookedBy: string | null;
    bookedAt: string | null;
    touch: string[];
  };
  private readonly lit: Record<'available' | 'locked' | 'booked', string>;

  constructor(mapping: SeatMapping, engine: Engine, knex: Knex) {
    this.mapping = mapping;
    this.engine = engine;
    this.knex = knex;
    this.time = instantCodec(engine.name, mapping.seats.timeStorage);
    const m = mapping.seats;
    const own = (table: string) => this.table({ schema: mapping.own.schema, table });
    this.t = {
      seats: this.table(m),
      events: mapping.events && this.table(mapping.events),
      holders: m.holder.references && this.table(m.holder.references),
      history: own(mapping.own.history),
      runs: own(mapping.own.runs),
    };
    const q = (name: string | null) => (name === null ? null : this.quote(name));
    this.col = {
      id: this.quote(m.id),
      event: this.quote(m.event),
      seat: this.quote(m.seat),
      status: this.quote(m.status),
      until: this.quote(m.lockedUntil),
      holder: this.quote(m.holder.column),
      token: q(m.lockToken),
      lockedAt: q(m.lockedAt),
      bookedBy: q(m.bookedBy),
      bookedAt: q(m.bookedAt),
      touch: m.touch.map((name) => this.quote(name)),
    };
    this.lit = {
      available: literal(m.statusValues.available),
      locked: literal(m.statusValues.locked),
      booked: literal(m.statusValues.booked),
    };
  }

  quote(name: string): string {
    return this.knex.client.wrapIdentifier(name, undefined);
  }

  table(ref: TableRef): string {
    return ref.schema === undefined ? this.quote(ref.table) : `${this.quote(ref.schema)}.${this.quote(ref.table)}`;
  }

  /** What a status value means. */
  statusOf(value: unknown): SeatStatus {
    const values = this.mapping.seats.statusValues;
    for (const status of ['available', 'locked', 'booked'] as const) {
      // Drivers hand integers back as numbers, or as strings for bigint.
      if (value === values[status] || (typeof values[status] === 'number' && Number(value) === values[status])) {
        return status;
      }
    }
    return 'other';
  }

  // --- SQL fragments ---------------------------------------------------------

  private get sqlite(): boolean {
    return this.engine.name === 'sqlite';
  }

  /** A canonical instant parameter (integer ms on SQLite, timestamptz on PostgreSQL). */
  private at(placeholder: string): string {
    return this.sqlite ? `CAST(${placeholder} AS INTEGER)` : `CAST(${placeholder} AS timestamptz)`;
  }

  /** A whole number of milliseconds (or any integer) parameter. */
  private int(placeholder: string): string {
    return this.sqlite ? `CAST(${placeholder} AS INTEGER)` : `CAST(${placeholder} AS bigint)`;
  }

  /** Column `name` of the seats row `s`. */
  private s(column: string): string {
    return `s.${column}`;
  }

  /** The holder's name: the text column, or the name from the table the key points to. */
  private holderName(alias = 's'): string {
    const holder = `${alias}.${this.col.holder}`;
    const ref = this.mapping.seats.holder.references;
    if (ref === null) return `COALESCE(${holder}, '${NO_HOLDER}')`;
    // A dangling key (the user row was deleted without clearing it) shows as #<id>.
    return `COALESCE(h.${this.quote(ref.name)}, '#' || CAST(${holder} AS TEXT), '${NO_HOLDER}')`;
  }

  private holderJoin(alias = 's'): string {
    const ref = this.mapping.seats.holder.references;
    if (ref === null) return '';
    return ` LEFT JOIN ${this.t.holders} h ON h.${this.quote(ref.id)} = ${alias}.${this.col.holder}`;
  }

  /**
   * The holder a request names, as the holder column stores it: the name
   * itself, or (for a key) the id of the row with that name; NULL for an
   * unknown name, which then matches no seat.
   */
  private holderValue(param: string): string {
    const ref = this.mapping.seats.holder.references;
    if (ref === null) return param;
    return `(SELECT ${this.quote(ref.id)} FROM ${this.t.holders} WHERE ${this.quote(ref.name)} = ${param})`;
  }

  private tokenRead(alias = 's'): string {
    // Typed, so a CTE that carries it can still be inserted into an integer column.
    return this.col.token === null ? 'CAST(NULL AS integer)' : `${alias}.${this.col.token}`;
  }

  private lockedAtRead(alias = 's'): string {
    const none = this.sqlite ? 'NULL' : 'CAST(NULL AS timestamptz)';
    return this.col.lockedAt === null ? none : this.time.read(`${alias}.${this.col.lockedAt}`);
  }

  /** `seat IN (list)` for a list parameter. */
  private seatIn(column: string, param: string): string {
    return this.sqlite ? `${column} IN (SELECT value FROM json_each(${param}))` : `${column} = ANY(CAST(${param} AS text[]))`;
  }

  private seatList(seats: readonly string[]): unknown {
    return this.sqlite ? JSON.stringify(seats) : [...seats];
  }

  /** SET clauses that touch the app's updated_at-style columns with `canonical`. */
  private touches(canonical: string): string {
    return this.col.touch.map((column) => `, ${column} = ${this.time.store(canonical)}`).join('');
  }

  /** SET clauses that end a lock: status back to available, holder and expiry cleared. */
  private clearLock(canonical: string): string {
    return (
      `${this.col.status} = ${this.lit.available}, ${this.col.holder} = NULL, ${this.col.until} = NULL` +
      (this.col.lockedAt === null ? '' : `, ${this.col.lockedAt} = NULL`) +
      this.touches(canonical)
    );
  }

  private get historyColumns(): string {
    return '(event_id, seat_id, seat_number, locked_by, locked_until, lock_token, locked_at, released_at, reason)';
  }

  /** A statement built once per store (and so prepared once per SQLite connection). */
  statementFor(key: string, build: (p: (name: string) => string) => string): Statement {
    let stmt = this.statements.get(key);
    if (stmt === undefined) this.statements.set(key, (stmt = statement(this.engine.name, build)));
    return stmt;
  }

  private async rows<Row>(db: Db, stmt: Statement, values: Params): Promise<Row[]> {
    return withConnection(db, (conn) => runStatement<Row>(conn, stmt, values));
  }

  private instant(value: unknown): Date {
    return this.engine.readInstant(value);
  }

  private maybeInstant(value: unknown): Date | null {
    return value == null ? null : this.engine.readInstant(value);
  }

  // --- the clock and events ---------------------------------------------------

  /** The database clock, read once so several statements can agree on "now". */
  async now(db: Db = this.knex): Promise<Date> {
    const stmt = this.statementFor('now', () => `SELECT ${this.engine.now} AS now`);
    const [row] = await this.rows<{ now: unknown }>(db, stmt, {});
    return this.instant(row!.now);
  }

  async eventByName(name: string): Promise<{ id: number; name: string } | undefined> {
    if (this.mapping.events === null) return undefined;
    const e = this.mapping.events;
    const stmt = this.statementFor(
      'eventByName',
      (p) => `SELECT ${this.quote(e.id)} AS id, ${this.quote(e.name)} AS name FROM ${this.t.events} WHERE ${this.quote(e.name)} = ${p('name')}`,
    );
    const [row] = await this.rows<{ id: unknown; name: string }>(this.knex, stmt, { name });
    return row && { id: Number(row.id), name: String(row.name) };
  }

  /** The event with this id; without an events table, any event id some seat has. */
  async eventById(id: number): Promise<{ id: number; name: string | null } | undefined> {
    const e = this.mapping.events;
    const stmt =
      e === null
        ? this.statementFor('eventById', (p) => `SELECT ${this.col.event} AS id, NULL AS name FROM ${this.t.seats} WHERE ${this.col.event} = ${p('id')} LIMIT 1`)
        : this.statementFor(
            'eventById',
            (p) => `SELECT ${this.quote(e.id)} AS id, ${this.quote(e.name)} AS name FROM ${this.t.events} WHERE ${this.quote(e.id)} = ${p('id')}`,
          );
    const [row] = await this.rows<{ id: unknown; name: string | null }>(this.knex, stmt, { id });
    return row && { id: Number(row.id), name: row.name === null ? null : String(row.name) };
  }

  /** Names of these events (ids without a name are left out). */
  async eventNames(ids: readonly number[]): Promise<Map<number, string>> {
    const names = new Map<number, string>();
    const e = this.mapping.events;
    if (e === null || ids.length === 0) return names;
    const stmt = this.statementFor('eventNames', (p) =>
      this.sqlite
        ? `SELECT ${this.quote(e.id)} AS id, ${this.quote(e.name)} AS name FROM ${this.t.events} WHERE ${this.quote(e.id)} IN (SELECT value FROM json_each(${p('ids')}))`
        : `SELECT ${this.quote(e.id)} AS id, ${this.quote(e.name)} AS name FROM ${this.t.events} WHERE ${this.quote(e.id)} = ANY(CAST(${p('ids')} AS bigint[]))`,
    );
    const rows = await this.rows<{ id: unknown; name: string }>(this.knex, stmt, {
      ids: this.sqlite ? JSON.stringify(ids) : [...ids],
    });
    for (const row of rows) names.set(Number(row.id), String(row.name));
    return names;
  }

  /** Whether the holder table has a row with this name (always true for a text holder). */
  async holderExists(user: string, db: Db = this.knex): Promise<boolean> {
    const ref = this.mapping.seats.holder.references;
    if (ref === null) return true;
    const stmt = this.statementFor('holderExists', (p) => `SELECT 1 AS found FROM ${this.t.holders} WHERE ${this.quote(ref.name)} = ${p('user')}`);
    return (await this.rows(db, stmt, { user })).length > 0;
  }

  // --- seat requests: lock, book, unlock ---------------------------------------

  /**
   * Takes the rows of these seats (row locks, in id order so concurrent writers
   * never deadlock, where the engine has them); returns the seat labels found.
   */
  async claimSeats(trx: Knex.Transaction, eventId: number, seats: readonly string[]): Promise<Set<string>> {
    const stmt = this.statementFor(
      'claimSeats',
      (p) =>
        `SELECT ${this.s(this.col.seat)} AS seat FROM ${this.t.seats} s
         WHERE ${this.s(this.col.event)} = ${p('eventId')} AND ${this.seatIn(this.s(this.col.seat), p('seats'))}
         ORDER BY ${this.s(this.col.id)}${this.sqlite ? '' : ' FOR UPDATE'}`,
    );
    const rows = await this.rows<{ seat: unknown }>(trx, stmt, { eventId, seats: this.seatList(seats) });
    return new Set(rows.map((row) => String(row.seat)));
  }

  /** The state of some seats, for explaining a refusal. */
  async seatStates(trx: Knex.Transaction, eventId: number, seats: readonly string[], user: string | null): Promise<SeatState[]> {
    const stmt = this.statementFor(
      'seatStates',
      (p) =>
        `SELECT ${this.s(this.col.seat)} AS seat, ${this.s(this.col.status)} AS status, ${this.holderName()} AS locked_by,
           ${this.time.read(this.s(this.col.until))} AS locked_until, ${this.lockedAtRead()} AS locked_at,
           CASE WHEN ${this.s(this.col.until)} <= ${this.time.compare(this.engine.now)} THEN 1 ELSE 0 END AS expired,
           CASE WHEN ${this.s(this.col.holder)} = ${this.holderValue(p('user'))} THEN 1 ELSE 0 END AS mine
         FROM ${this.t.seats} s${this.holderJoin()}
         WHERE ${this.s(this.col.event)} = ${p('eventId')} AND ${this.seatIn(this.s(this.col.seat), p('seats'))}
         ORDER BY ${this.s(this.col.id)}`,
    );
    const rows = await this.rows<Record<string, unknown>>(trx, stmt, { eventId, seats: this.seatList(seats), user });
    return rows.map((row) => {
      const status = this.statusOf(row.status);
      return {
        seat: String(row.seat),
        status,
        statusValue: row.status as StatusValue,
        lockedBy: status === 'locked' || row.locked_by !== NO_HOLDER ? (row.locked_by as string) : null,
        lockedUntil: this.maybeInstant(row.locked_until),
        lockedAt: this.maybeInstant(row.locked_at),
        expired: status === 'locked' && Number(row.expired) === 1,
        mine: Number(row.mine) === 1,
      };
    });
  }

  /** Of these seats, those the holder holds with a lock still valid at `now`. */
  async heldBy(trx: Knex.Transaction, eventId: number, seats: readonly string[], user: string, now: Date): Promise<Set<string>> {
    const stmt = this.statementFor(
      'heldBy',
      (p) =>
        `SELECT ${this.s(this.col.seat)} AS seat FROM ${this.t.seats} s
         WHERE ${this.s(this.col.event)} = ${p('eventId')} AND ${this.seatIn(this.s(this.col.seat), p('seats'))}
           AND ${this.s(this.col.status)} = ${this.lit.locked} AND ${this.s(this.col.holder)} = ${this.holderValue(p('user'))}
           AND ${this.s(this.col.until)} > ${this.time.compare(this.at(p('now')))}`,
    );
    const rows = await this.rows<{ seat: unknown }>(trx, stmt, {
      eventId,
      seats: this.seatList(seats),
      user,
      now: this.engine.bindInstant(now),
    });
    return new Set(rows.map((row) => String(row.seat)));
  }

  /** History rows for expired locks about to be taken over by a new lock (reason `replaced`). */
  async recordReplaced(trx: Knex.Transaction, eventId: number, seats: readonly string[], now: Date): Promise<void> {
    const stmt = this.statementFor('recordReplaced', (p) => {
      const NOW = this.at(p('now'));
      return `INSERT INTO ${this.t.history} ${this.historyColumns}
        SELECT ${this.s(this.col.event)}, ${this.s(this.col.id)}, ${this.s(this.col.seat)}, ${this.holderName()},
          ${this.time.read(this.s(this.col.until))}, ${this.tokenRead()}, ${this.lockedAtRead()}, ${NOW}, 'replaced'
        FROM ${this.t.seats} s${this.holderJoin()}
        WHERE ${this.s(this.col.event)} = ${p('eventId')} AND ${this.seatIn(this.s(this.col.seat), p('seats'))}
          AND ${this.s(this.col.status)} = ${this.lit.locked} AND ${this.s(this.col.until)} <= ${this.time.compare(NOW)}`;
    });
    await this.rows(trx, stmt, { eventId, seats: this.seatList(seats), now: this.engine.bindInstant(now) });
  }

  /**
   * The conditional write of a lock: available seats, expired locks, and the
   * holder's own valid locks. Where the mapping knows when a hold began and a
   * cap applies, a hold continues — the holder's valid lock, or one of theirs
   * that ended within the cool-down (the history keeps its start) — and the
   * lock ends at the latest at the hold's start plus the cap; past the cap the
   * seat is refused. Returns one row per seat locked.
   */
  async lock(
    trx: Knex.Transaction,
    request: {
      eventId: number;
      seats: readonly string[];
      user: string;
      now: Date;
      ttlMs: number;
      maxHoldMs: number | null;
      cooldownMs: number;
    },
  ): Promise<Array<{ seat: string; lockedUntil: Date; lockedAt: Date | null; lockToken: number | null }>> {
    const capped = request.maxHoldMs !== null && this.col.lockedAt !== null;
    const stmt = this.statementFor(`lock:${capped}`, (p) => {
      const { engine, time, col } = this;
      const NOW = this.at(p('now'));
      const HOLDER = this.holderValue(p('user'));
      const until = engine.addMs(NOW, this.int(p('ttl')));
      let sets: string[];
      let allowed: string;
      if (capped) {
        const cooldownStart = engine.addMs(NOW, `-${this.int(p('cooldown'))}`);
        // The start of the hold this lock continues, or NULL for a new hold.
        const prior = `(CASE WHEN ${col.status} = ${this.lit.locked} AND ${col.holder} = ${HOLDER} AND ${col.until} > ${time.compare(cooldownStart)}
            THEN COALESCE(${time.read(col.lockedAt!)}, ${NOW})
            ELSE (SELECT h.locked_at FROM ${this.t.history} h
                  WHERE h.seat_id = ${this.t.seats}.${col.id} AND h.locked_by = ${p('user')}
                    AND h.released_at > ${cooldownStart} AND h.locked_at IS NOT NULL
                  ORDER BY h.released_at DESC LIMIT 1) END)`;
        const capEnd = engine.addMs(prior, this.int(p('maxHold')));
        sets = [
          `${col.until} = CASE WHEN ${prior} IS NULL THEN ${time.store(until)} ELSE ${time.store(engine.least(until, capEnd))} END`,
          `${col.lockedAt} = ${time.store(`COALESCE(${prior}, ${NOW})`)}`,
        ];
        allowed = ` AND (${prior} IS NULL OR ${capEnd} > ${NOW})`;
      } else {
        // No cap: a renewal keeps the hold's start where the mapping records it.
        const holding = `${col.status} = ${this.lit.locked} AND ${col.holder} = ${HOLDER} AND ${col.until} > ${time.compare(NOW)}`;
        sets = [
          `${col.until} = ${time.store(until)}`,
          ...(col.lockedAt === null ? [] : [`${col.lockedAt} = CASE WHEN ${holding} THEN ${col.lockedAt} ELSE ${time.store(NOW)} END`]),
        ];
        allowed = '';
      }
      sets.push(
        `${col.status} = ${this.lit.locked}`,
        `${col.holder} = ${HOLDER}`,
        ...(col.token === null ? [] : [`${col.token} = COALESCE(${col.token}, 0) + 1`]),
      );
      return `UPDATE ${this.t.seats} SET ${sets.join(', ')}${this.touches(NOW)}
        WHERE ${col.event} = ${p('eventId')} AND ${this.seatIn(col.seat, p('seats'))}
          AND (${col.status} = ${this.lit.available}
               OR (${col.status} = ${this.lit.locked} AND (${col.until} <= ${time.compare(NOW)} OR ${col.holder} = ${HOLDER})))${allowed}
        RETURNING ${col.seat} AS seat, ${time.read(col.until)} AS locked_until,
          ${col.lockedAt === null ? 'NULL' : time.read(col.lockedAt)} AS locked_at, ${col.token ?? 'NULL'} AS lock_token`;
    });
    const rows = await this.rows<Record<string, unknown>>(trx, stmt, {
      eventId: request.eventId,
      seats: this.seatList(request.seats),
      user: request.user,
      now: this.engine.bindInstant(request.now),
      ttl: request.ttlMs,
      ...(capped ? { maxHold: request.maxHoldMs, cooldown: request.cooldownMs } : {}),
    });
    return rows.map((row) => ({
      seat: String(row.seat),
      lockedUntil: this.instant(row.locked_until),
      lockedAt: this.maybeInstant(row.locked_at),
      lockToken: row.lock_token == null ? null : Number(row.lock_token),
    }));
  }

  /** The conditional write of a booking: only the holder's locks that are valid at the instant of the write. */
  async book(
    trx: Knex.Transaction,
    request: { eventId: number; seats: readonly string[]; user: string },
  ): Promise<Array<{ seat: string; bookedAt: Date }>> {
    const stmt = this.statementFor('book', (p) => {
      const { engine, time, col } = this;
      const NOW = engine.now;
      const sets = [
        `${col.status} = ${this.lit.booked}`,
        ...(col.bookedBy === null ? [] : [`${col.bookedBy} = ${col.holder}`]),
        ...(col.bookedAt === null ? [] : [`${col.bookedAt} = ${time.store(NOW)}`]),
        // Without a column for who booked, the holder column keeps saying who it was.
        ...(col.bookedBy === null ? [] : [`${col.holder} = NULL`]),
        `${col.until} = NULL`,
        ...(col.lockedAt === null ? [] : [`${col.lockedAt} = NULL`]),
      ];
      return `UPDATE ${this.t.seats} SET ${sets.join(', ')}${this.touches(NOW)}
        WHERE ${col.event} = ${p('eventId')} AND ${this.seatIn(col.seat, p('seats'))}
          AND ${col.status} = ${this.lit.locked} AND ${col.holder} = ${this.holderValue(p('user'))}
          AND ${col.until} > ${time.compare(NOW)}
        RETURNING ${col.seat} AS seat, ${col.bookedAt === null ? NOW : time.read(col.bookedAt)} AS booked_at`;
    });
    const rows = await this.rows<Record<string, unknown>>(trx, stmt, {
      eventId: request.eventId,
      seats: this.seatList(request.seats),
      user: request.user,
    });
    return rows.map((row) => ({ seat: String(row.seat), bookedAt: this.instant(row.booked_at) }));
  }

  /** Ends these locks now (any holder's, or only `user`'s), writing their history first. */
  async unlock(
    trx: Knex.Transaction,
    request: { eventId: number; seats: readonly string[]; user: string | null },
  ): Promise<Array<{ seat: string; lockedBy: string; lockedUntil: Date; lockToken: number | null; releasedAt: Date }>> {
    const byUser = request.user !== null;
    const logged = this.statementFor(`unlock:log:${byUser}`, (p) => {
      const holder = byUser ? ` AND ${this.s(this.col.holder)} = ${this.holderValue(p('user'))}` : '';
      return `INSERT INTO ${this.t.history} ${this.historyColumns}
        SELECT ${this.s(this.col.event)}, ${this.s(this.col.id)}, ${this.s(this.col.seat)}, ${this.holderName()},
          ${this.time.read(this.s(this.col.until))}, ${this.tokenRead()}, ${this.lockedAtRead()}, ${this.engine.now}, 'unlocked'
        FROM ${this.t.seats} s${this.holderJoin()}
        WHERE ${this.s(this.col.event)} = ${p('eventId')} AND ${this.seatIn(this.s(this.col.seat), p('seats'))}
          AND ${this.s(this.col.status)} = ${this.lit.locked}${holder}
        RETURNING seat_number, locked_by, locked_until, lock_token, released_at`;
    });
    const release = this.statementFor(`unlock:release:${byUser}`, (p) => {
      const holder = byUser ? ` AND ${this.col.holder} = ${this.holderValue(p('user'))}` : '';
      return `UPDATE ${this.t.seats} SET ${this.clearLock(this.engine.now)}
        WHERE ${this.col.event} = ${p('eventId')} AND ${this.seatIn(this.col.seat, p('seats'))}
          AND ${this.col.status} = ${this.lit.locked}${holder}`;
    });
    const values = { eventId: request.eventId, seats: this.seatList(request.seats), ...(byUser ? { user: request.user } : {}) };
    const rows = await this.rows<Record<string, unknown>>(trx, logged, values);
    await this.rows(trx, release, values);
    return rows.map((row) => ({
      seat: String(row.seat_number),
      lockedBy: String(row.locked_by),
      lockedUntil: this.instant(row.locked_until),
      lockToken: row.lock_token == null ? null : Number(row.lock_token),
      releasedAt: this.instant(row.released_at),
    }));
  }

  // --- release ---------------------------------------------------------------------

  /**
   * The statements of one release batch, for the engine's release module:
   * `pick` selects the batch's expired locks in id order (seat id, event id,
   * seat label, holder's name, canonical expiry, token); `clear` is the SET
   * clause that ends a lock; `expiredBefore(x)` the re-check against a canonical instant.
   */
  releaseParts(): ReleaseParts {
    const { col, time } = this;
    return {
      seats: this.t.seats,
      history: this.t.history,
      historyColumns: this.historyColumns,
      id: col.id,
      status: col.status,
      locked: this.lit.locked,
      pickColumns: `${this.s(col.event)} AS event_id, ${this.s(col.id)} AS seat_id, ${this.s(col.seat)} AS seat_number, ${this.holderName()} AS locked_by, ${time.read(this.s(col.until))} AS locked_until, ${this.tokenRead()} AS lock_token, ${this.lockedAtRead()} AS locked_at`,
      from: `${this.t.seats} s${this.holderJoin()}`,
      event: this.s(col.event),
      expiredBefore: (canonical: string, alias?: string) =>
        `${alias === undefined ? col.until : `${alias}.${col.until}`} <= ${time.compare(canonical)}`,
      clear: (canonical: string) => this.clearLock(canonical),
      int: (placeholder: string) => this.int(placeholder),
    };
  }

  /** The locks a release would take next, without writing anything. */
  async previewBatch(scope: ReleaseScope): Promise<ReleasedLock[]> {
    const byEvent = scope.eventId !== undefined;
    const stmt = this.statementFor(`preview:${byEvent}`, (p) => {
      const parts = this.releaseParts();
      return `SELECT ${parts.pickColumns} FROM ${parts.from}
        WHERE ${this.s(this.col.status)} = ${this.lit.locked}
          AND ${parts.expiredBefore(this.engine.addMs(this.engine.now, `-${this.int(p('grace'))}`), 's')}
          AND ${this.s(this.col.id)} > ${p('after')}${byEvent ? ` AND ${this.s(this.col.event)} = ${p('eventId')}` : ''}
        ORDER BY ${this.s(this.col.id)} LIMIT ${this.int(p('limit'))}`;
    });
    const rows = await this.rows<Record<string, unknown>>(this.knex, stmt, {
      grace: scope.graceMs,
      after: scope.afterSeatId,
      limit: scope.batchSize,
      ...(byEvent ? { eventId: scope.eventId } : {}),
    });
    return rows.map((row) => this.releasedLock(row, null));
  }

  /** A release row (canonical values) as a ReleasedLock. */
  releasedLock(row: Record<string, unknown>, releasedAt: Date | null): ReleasedLock {
    return {
      event: '',
      eventId: Number(row.event_id),
      seatId: Number(row.seat_id),
      seat: String(row.seat_number),
      lockedBy: String(row.locked_by),
      lockedUntil: this.instant(row.locked_until),
      lockToken: row.lock_token == null ? null : Number(row.lock_token),
      releasedAt,
    };
  }

  /** How many locks a release would take now, counted on the locked seats. */
  async countExpired(options: { eventId?: number; graceMs: number }): Promise<number> {
    const byEvent = options.eventId !== undefined;
    const stmt = this.statementFor(`countExpired:${byEvent}`, (p) => {
      const cutoff = this.engine.addMs(this.engine.now, `-${this.int(p('grace'))}`);
      return `SELECT COUNT(*) AS n FROM ${this.t.seats} s
        WHERE ${this.s(this.col.status)} = ${this.lit.locked} AND ${this.s(this.col.until)} <= ${this.time.compare(cutoff)}
        ${byEvent ? `AND ${this.s(this.col.event)} = ${p('eventId')}` : ''}`;
    });
    const [row] = await this.rows<{ n: unknown }>(this.knex, stmt, {
      grace: options.graceMs,
      ...(byEvent ? { eventId: options.eventId } : {}),
    });
    return Number(row?.n ?? 0);
  }

  // --- reading ----------------------------------------------------------------------

  /** A page of locked seats in id order, judged against `now`. */
  async lockedPage(filter: {
    afterId: number;
    limit: number;
    now: Date;
    eventId?: number;
    user?: string;
    state?: 'expired' | 'active';
  }): Promise<LockedRow[]> {
    const key = `lockedPage:${filter.eventId !== undefined}:${filter.user !== undefined}:${filter.state ?? ''}`;
    const stmt = this.statementFor(key, (p) => {
      const { col, time } = this;
      const NOW = time.compare(this.at(p('now')));
      return `SELECT ${this.s(col.id)} AS id, ${this.s(col.event)} AS event_id, ${this.s(col.seat)} AS seat,
          ${this.holderName()} AS locked_by, ${time.read(this.s(col.until))} AS locked_until, ${this.lockedAtRead()} AS locked_at,
          ${this.tokenRead()} AS lock_token, CASE WHEN ${this.s(col.until)} <= ${NOW} THEN 1 ELSE 0 END AS expired
        FROM ${this.t.seats} s${this.holderJoin()}
        WHERE ${this.s(col.status)} = ${this.lit.locked} AND ${this.s(col.id)} > ${p('afterId')}
          ${filter.eventId === undefined ? '' : `AND ${this.s(col.event)} = ${p('eventId')}`}
          ${filter.user === undefined ? '' : `AND ${this.s(col.holder)} = ${this.holderValue(p('user'))}`}
          ${filter.state === 'expired' ? `AND ${this.s(col.until)} <= ${NOW}` : ''}
          ${filter.state === 'active' ? `AND ${this.s(col.until)} > ${NOW}` : ''}
        ORDER BY ${this.s(col.id)} LIMIT ${this.int(p('limit'))}`;
    });
    const rows = await this.rows<Record<string, unknown>>(this.knex, stmt, {
      afterId: filter.afterId,
      limit: filter.limit,
      now: this.engine.bindInstant(filter.now),
      ...(filter.eventId === undefined ? {} : { eventId: filter.eventId }),
      ...(filter.user === undefined ? {} : { user: filter.user }),
    });
    return rows.map((row) => ({
      id: Number(row.id),
      eventId: Number(row.event_id),
      seat: String(row.seat),
      lockedBy: String(row.locked_by),
      lockedUntil: this.instant(row.locked_until),
      lockedAt: this.maybeInstant(row.locked_at),
      lockToken: row.lock_token == null ? null : Number(row.lock_token),
      expired: Number(row.expired) === 1,
    }));
  }

  /** Seat counts per event (every event of the events table, or every event id seats name). */
  async eventCounts(now: Date, eventId?: number): Promise<EventCounts[]> {
    const stmt = this.statementFor(`eventCounts:${eventId !== undefined}`, (p) => {
      const { col, time } = this;
      const NOW = time.compare(this.at(p('now')));
      const count = (condition: string) => `SUM(CASE WHEN ${condition} THEN 1 ELSE 0 END)`;
      const counts = `COUNT(s.${col.id}) AS seats,
          ${count(`s.${col.status} = ${this.lit.available}`)} AS available,
          ${count(`s.${col.status} = ${this.lit.locked} AND s.${col.until} > ${NOW}`)} AS locked,
          ${count(`s.${col.status} = ${this.lit.locked} AND s.${col.until} <= ${NOW}`)} AS expired,
          ${count(`s.${col.status} = ${this.lit.booked}`)} AS booked`;
      const e = this.mapping.events;
      if (e === null) {
        return `SELECT s.${col.event} AS id, NULL AS name, ${counts} FROM ${this.t.seats} s
          ${eventId === undefined ? '' : `WHERE s.${col.event} = ${p('eventId')}`}
          GROUP BY s.${col.event} ORDER BY s.${col.event}`;
      }
      const [id, name] = [`e.${this.quote(e.id)}`, `e.${this.quote(e.name)}`];
      return `SELECT ${id} AS id, ${name} AS name, ${counts}
        FROM ${this.t.events} e LEFT JOIN ${this.t.seats} s ON s.${col.event} = ${id}
        ${eventId === undefined ? '' : `WHERE ${id} = ${p('eventId')}`}
        GROUP BY ${id}, ${name} ORDER BY ${name}`;
    });
    const rows = await this.rows<Record<string, unknown>>(this.knex, stmt, {
      now: this.engine.bindInstant(now),
      ...(eventId === undefined ? {} : { eventId }),
    });
    return rows.map((row) => ({
      eventId: Number(row.id),
      event: row.name == null ? null : String(row.name),
      seats: Number(row.seats ?? 0),
      available: Number(row.available ?? 0),
      locked: Number(row.locked ?? 0),
      expired: Number(row.expired ?? 0),
      booked: Number(row.booked ?? 0),
    }));
  }

  /** Seats a buyer can lock at `now`: available, or locked with an expired lock. */
  async lockableSeats(eventId: number, now: Date): Promise<string[]> {
    const stmt = this.statementFor('lockableSeats', (p) => {
      const { col, time } = this;
      return `SELECT s.${col.seat} AS seat FROM ${this.t.seats} s
        WHERE s.${col.event} = ${p('eventId')}
          AND (s.${col.status} = ${this.lit.available}
               OR (s.${col.status} = ${this.lit.locked} AND s.${col.until} <= ${time.compare(this.at(p('now')))}))
        ORDER BY s.${col.id}`;
    });
    const rows = await this.rows<{ seat: unknown }>(this.knex, stmt, { eventId, now: this.engine.bindInstant(now) });
    return rows.map((row) => String(row.seat));
  }

  /** The earliest expiry of a lock, if any seat is locked. */
  async nextExpiry(): Promise<Date | null> {
    const stmt = this.statementFor(
      'nextExpiry',
      () =>
        `SELECT ${this.time.read('m.until')} AS next FROM (SELECT MIN(s.${this.col.until}) AS until FROM ${this.t.seats} s
           WHERE s.${this.col.status} = ${this.lit.locked}) m`,
    );
    const [row] = await this.rows<{ next: unknown }>(this.knex, stmt, {});
    return this.maybeInstant(row?.next);
  }

  // --- seatctl's own tables ---------------------------------------------------------

  private historyWhere(filter: Omit<HistoryFilter, 'limit'>, p: (name: string) => string): string {
    const where = [
      filter.eventId === undefined ? null : `h.event_id = ${p('eventId')}`,
      filter.seat === undefined ? null : `h.seat_number = ${p('seat')}`,
      filter.user === undefined ? null : `h.locked_by = ${p('user')}`,
      filter.since === undefined ? null : `h.released_at >= ${this.at(p('since'))}`,
      filter.withinMs === undefined ? null : `h.released_at >= ${this.engine.addMs(this.engine.now, `-${this.int(p('within'))}`)}`,
    ].filter((clause) => clause !== null);
    return where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`;
  }

  private historyValues(filter: Omit<HistoryFilter, 'limit'>): Params {
    return {
      ...(filter.eventId === undefined ? {} : { eventId: filter.eventId }),
      ...(filter.seat === undefined ? {} : { seat: filter.seat }),
      ...(filter.user === undefined ? {} : { user: filter.user }),
      ...(filter.since === undefined ? {} : { since: this.engine.bindInstant(filter.since) }),
      ...(filter.withinMs === undefined ? {} : { within: filter.withinMs }),
    };
  }

  private historyKey(filter: Omit<HistoryFilter, 'limit'>): string {
    return [filter.eventId, filter.seat, filter.user, filter.since, filter.withinMs].map((v) => v !== undefined).join(':');
  }

  async history(filter: HistoryFilter): Promise<HistoryRow[]> {
    const stmt = this.statementFor(`history:${this.historyKey(filter)}`, (p) => {
      const e = this.mapping.events;
      const name = e === null ? 'NULL' : `e.${this.quote(e.name)}`;
      const join = e === null ? '' : ` LEFT JOIN ${this.t.events} e ON e.${this.quote(e.id)} = h.event_id`;
      return `SELECT h.id, ${name} AS event, h.event_id, h.seat_number, h.locked_by, h.locked_until, h.lock_token, h.released_at, h.reason
        FROM ${this.t.history} h${join}
        ${this.historyWhere(filter, p)}
        ORDER BY h.released_at DESC, h.id DESC LIMIT ${this.int(p('limit'))}`;
    });
    const rows = await this.rows<Record<string, unknown>>(this.knex, stmt, { limit: filter.limit, ...this.historyValues(filter) });
    return rows.map((row) => ({
      id: Number(row.id),
      event: row.event == null ? null : String(row.event),
      eventId: Number(row.event_id),
      seat: String(row.seat_number),
      lockedBy: String(row.locked_by),
      lockedUntil: this.instant(row.locked_until),
      lockToken: row.lock_token == null ? null : Number(row.lock_token),
      releasedAt: this.instant(row.released_at),
      reason: row.reason as HistoryRow['reason'],
    }));
  }

  /** How many history rows the filter matches, however many a limit shows. */
  async historyCount(filter: Omit<HistoryFilter, 'limit'>): Promise<number> {
    const stmt = this.statementFor(
      `historyCount:${this.historyKey(filter)}`,
      (p) => `SELECT COUNT(*) AS n FROM ${this.t.history} h ${this.historyWhere(filter, p)}`,
    );
    const [row] = await this.rows<{ n: unknown }>(this.knex, stmt, this.historyValues(filter));
    return Number(row?.n ?? 0);
  }

  /** The heartbeat `stats` reads: this host's last finished release run. */
  async recordRun(host: string, pid: number, released: number): Promise<void> {
    const stmt = this.statementFor(
      'recordRun',
      (p) => `INSERT INTO ${this.t.runs} (host, pid, finished_at, released) VALUES (${p('host')}, ${this.int(p('pid'))}, ${this.engine.now}, ${this.int(p('released'))})
        ON CONFLICT (host) DO UPDATE SET pid = excluded.pid, finished_at = excluded.finished_at, released = excluded.released`,
    );
    await this.rows(this.knex, stmt, { host, pid, released });
  }

  async lastRun(): Promise<RunRow | null> {
    const stmt = this.statementFor(
      'lastRun',
      () => `SELECT host, pid, finished_at, released FROM ${this.t.runs} ORDER BY finished_at DESC LIMIT 1`,
    );
    const [row] = await this.rows<Record<string, unknown>>(this.knex, stmt, {});
    return row
      ? { host: String(row.host), pid: Number(row.pid), finishedAt: this.instant(row.finished_at), released: Number(row.released) }
      : null;
  }
}

/** What an engine's release module needs to build its batch statement. */
export interface ReleaseParts {
  seats: string;
  history: string;
  historyColumns: string;
  id: string;
  status: string;
  locked: string;
  pickColumns: string;
  from: string;
  event: string;
  expiredBefore(canonical: string, alias?: string): string;
  clear(canonical: string): string;
  int(placeholder: string): string;
}

/** A status value as a SQL literal: values come from the config, never from a request. */
function literal(value: StatusValue): string {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError('status values must be whole numbers or strings');
    return String(value);
  }
  return `'${value.replace(/'/g, "''")}'`;
}
