import type Database from 'better-sqlite3';
import type { Knex } from 'knex';
import type { SeatMapping, TableRef } from '../mapping/mapping.js';
import type { StatusValue } from '../mapping/presets.js';
import type { Engine, ReleasedLock } from './engine.js';
import { instantCodec, type InstantCodec } from './instants.js';
import { runSqliteStatement, runStatement, statement, withConnection, type Params, type Runner, type Statement } from './query.js';

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

/** A request for some seats of one event, by a holder (unlock without one: any holder's). */
export interface SeatRequest {
  eventId: number;
  seats: readonly string[];
  user: string | null;
}

export interface LockRequest extends SeatRequest {
  user: string;
  ttlMs: number;
  /** Null: no hold cap (or the mapping can't tell when a hold began). */
  maxHoldMs: number | null;
  cooldownMs: number;
}

export interface LockedRow2 {
  seat: string;
  lockedUntil: Date;
  lockedAt: Date | null;
  lockToken: number | null;
}

/** What a lock, book or unlock came to: written whole, or nothing written and why. */
export type WriteOutcome<Row> =
  | { result: 'written'; rows: Row[]; now: Date; renewed: Set<string> }
  | { result: 'refused'; states: SeatState[]; now: Date }
  | { result: 'unknown-seats'; seats: string[] }
  | { result: 'unknown-user' };

/** Carries a refusal out of a write transaction, which it rolls back. */
class Refused extends Error {
  constructor(readonly outcome: WriteOutcome<never>) {
    super(outcome.result);
  }
}

/** A request's rules as SQL over a seats row `r` ('' for the UPDATE's own table). */
interface RequestRules {
  /** The clock the rules judge against. */
  now: string;
  /** The request names a holder who must exist. */
  needsHolder: boolean;
  /** The seat can be served. */
  allowed(r: string, seatId: string): string;
  /** The holder held it, validly, before (lock: a renewal). */
  renew(r: string): string;
  /** Which served seats get a history row, and why; null for none. */
  history: { when(r: string): string; reason: 'replaced' | 'unlocked' } | null;
  sets: string;
  returning: string;
  /**
   * PostgreSQL, lock with a hold cap: the start of the hold each seat's lock
   * would continue (a lookup in the history), computed once per seat as the
   * row is locked; `allowed` and `sets` then read it from there.
   */
  priorExpr?: (r: string, seatId: string) => string;
}

/**
 * Where a capped lock finds the start of the hold it continues: looked up
 * where it is used (`inline`), or once per seat in PostgreSQL's `target` or
 * in SQLite's UPDATE … FROM.
 */
type PriorForm = 'inline' | 'target' | 'from';

/** The requested seats with no row among `found` (one row per seat that exists). */
function unknownSeats(requested: readonly string[], found: ReadonlyArray<{ seat?: unknown }>): string[] {
  if (found.length >= requested.length) return [];
  const seen = new Set(found.map((row) => String(row.seat)));
  return requested.filter((seat) => !seen.has(seat));
}

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

type Db = Runner;

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
    // Typed: PostgreSQL can't infer a parameter compared with nothing but NULL.
    if (ref === null) return this.sqlite ? param : `CAST(${param} AS text)`;
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
    if (stmt === undefined) this.statements.set(key, (stmt = statement(this.engine.name, build, { named: this.engine.namedStatements })));
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

  /**
   * Events by name and by id, read once per handle: a web server resolves the
   * same few events for every request, and events are not renamed under it.
   */
  private readonly events = new Map<string, Promise<{ id: number; name: string | null } | undefined>>();

  async eventByName(name: string, options: { cached?: boolean } = {}): Promise<{ id: number; name: string } | undefined> {
    if (!options.cached) return this.readEventByName(name);
    return this.cachedEvent(`name:${name}`, () => this.readEventByName(name)) as Promise<{ id: number; name: string } | undefined>;
  }

  /** Forgets the events read so far (one was deleted, or created again under a new id). */
  forgetEvents(): void {
    this.events.clear();
  }

  private cachedEvent(
    key: string,
    read: () => Promise<{ id: number; name: string | null } | undefined>,
  ): Promise<{ id: number; name: string | null } | undefined> {
    let found = this.events.get(key);
    if (found === undefined) {
      found = read();
      this.events.set(key, found);
      // Only what exists is remembered: an event created later is found then.
      found.then((event) => event === undefined && this.events.delete(key), () => this.events.delete(key));
    }
    return found;
  }

  private async readEventByName(name: string): Promise<{ id: number; name: string } | undefined> {
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
  async eventById(id: number, options: { cached?: boolean } = {}): Promise<{ id: number; name: string | null } | undefined> {
    if (!options.cached) return this.readEventById(id);
    return this.cachedEvent(`id:${id}`, () => this.readEventById(id));
  }

  private async readEventById(id: number): Promise<{ id: number; name: string | null } | undefined> {
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

  /** SQLite: whether the holder table has a row with this name (always true for a text holder). */
  private holderExists(conn: Database.Database, user: string): boolean {
    const ref = this.mapping.seats.holder.references;
    if (ref === null) return true;
    const stmt = this.statementFor('holderExists', (p) => `SELECT 1 AS found FROM ${this.t.holders} WHERE ${this.quote(ref.name)} = ${p('user')}`);
    return runSqliteStatement(conn, stmt, { user }).length > 0;
  }

  // --- seat requests: lock, book, unlock -----------------------------------------------
  //
  // Each is all or nothing. On PostgreSQL a request is ONE statement (a CTE):
  // it takes the seats' rows in id order (FOR UPDATE), decides against one
  // reading of the clock, writes the history and the seats only when every
  // seat can be served, and returns the seats' states either way — one round
  // trip, no transaction held open between round trips. On SQLite the same
  // steps run as statements in one BEGIN IMMEDIATE transaction on the
  // connection itself (the write lock makes them as good as one).

  async lockSeats(request: LockRequest): Promise<WriteOutcome<LockedRow2>> {
    const capped = request.maxHoldMs !== null && this.col.lockedAt !== null;
    if (this.engine.name === 'postgres') {
      const stmt = this.statementFor(`lock1:${capped}`, (p) => this.requestStatement(p, this.lockRules(p, capped, 'target')));
      return this.runRequest(stmt, this.lockValues(request, capped), (row) => ({
        seat: String(row.seat),
        lockedUntil: this.instant(row.locked_until),
        lockedAt: this.maybeInstant(row.locked_at),
        lockToken: row.lock_token == null ? null : Number(row.lock_token),
      }));
    }
    return this.session(request, (conn) => {
      // SQLite's clock is this machine's clock: read here, bound once, it is
      // the instant every statement of the request judges against.
      const now = new Date();
      const values = { ...this.lockValues(request, capped), now: this.engine.bindInstant(now) };
      const seen = runSqliteStatement<{ seat: unknown; renew: unknown; lapsed: unknown }>(
        conn,
        this.statementFor('lock:seen', (p) => this.lockSeenStatement(p)),
        values,
      );
      const renewed = new Set(seen.filter((row) => Number(row.renew) === 1).map((row) => String(row.seat)));
      // An expired lock taken over here was never released: its history row says so.
      if (seen.some((row) => Number(row.lapsed) === 1)) {
        runSqliteStatement(conn, this.statementFor('lock:replaced', (p) => this.replacedStatement(p)), values);
      }
      const stmt = this.statementFor(`lock:${capped}`, (p) => this.lockUpdate(p, this.lockRules(p, capped, capped ? 'from' : 'inline')));
      const rows = runSqliteStatement<Record<string, unknown>>(conn, stmt, values);
      return {
        now,
        renewed,
        rows: rows.map((row) => ({
          seat: String(row.seat),
          lockedUntil: this.instant(row.locked_until),
          lockedAt: this.maybeInstant(row.locked_at),
          lockToken: row.lock_token == null ? null : Number(row.lock_token),
        })),
      };
    });
  }

  async bookSeats(request: SeatRequest & { user: string }): Promise<WriteOutcome<{ seat: string; bookedAt: Date }>> {
    const values = { eventId: request.eventId, seats: this.seatList(request.seats), user: request.user };
    const read = (row: Record<string, unknown>) => ({ seat: String(row.seat), bookedAt: this.instant(row.booked_at) });
    if (this.engine.name === 'postgres') {
      return this.runRequest(this.statementFor('book1', (p) => this.requestStatement(p, this.bookRules(p))), values, read);
    }
    return this.session(request, (conn) => {
      const now = new Date();
      const stmt = this.statementFor('book', (p) => this.plainUpdate(p, this.bookRules(p)));
      return { now, renewed: new Set<string>(), rows: runSqliteStatement<Record<string, unknown>>(conn, stmt, values).map(read) };
    });
  }

  async unlockSeats(
    request: SeatRequest,
  ): Promise<WriteOutcome<{ seat: string; lockedBy: string; lockedUntil: Date; lockToken: number | null; releasedAt: Date }>> {
    const byUser = request.user !== null;
    const values = { eventId: request.eventId, seats: this.seatList(request.seats), ...(byUser ? { user: request.user } : {}) };
    const read = (row: Record<string, unknown>) => ({
      seat: String(row.seat),
      lockedBy: String(row.locked_by),
      lockedUntil: this.instant(row.locked_until),
      lockToken: row.lock_token == null ? null : Number(row.lock_token),
      releasedAt: this.instant(row.released_at),
    });
    if (this.engine.name === 'postgres') {
      return this.runRequest(this.statementFor(`unlock1:${byUser}`, (p) => this.requestStatement(p, this.unlockRules(p, byUser))), values, read);
    }
    return this.session(request, (conn) => {
      const now = new Date();
      const rules = (p: (name: string) => string) => this.unlockRules(p, byUser);
      // The history first, from the seats as they are; then the seats, under the same write lock.
      const logged = runSqliteStatement<Record<string, unknown>>(
        conn,
        this.statementFor(`unlock:log:${byUser}`, (p) => this.historyInsert(p, rules(p), 'unlocked', this.engine.now)),
        values,
      );
      runSqliteStatement(conn, this.statementFor(`unlock:${byUser}`, (p) => this.plainUpdate(p, rules(p))), values);
      return { now, renewed: new Set<string>(), rows: logged.map(read) };
    });
  }

  // The rules of each request, as SQL over a seats row `r` (an alias, or the table in an UPDATE).

  /** Lock: which seats may be locked, and how the lock is written. */
  private lockRules(p: (name: string) => string, capped: boolean, form: PriorForm = 'inline'): RequestRules {
    const { engine, time, col } = this;
    const NOW = this.clockParam(p);
    const HOLDER = this.holderValue(p('user'));
    const until = engine.addMs(NOW, this.int(p('ttl')));
    const c = (r: string, column: string) => (r === '' ? column : `${r}.${column}`);
    const holding = (r: string) =>
      `${c(r, col.status)} = ${this.lit.locked} AND ${c(r, col.holder)} = ${HOLDER} AND ${c(r, col.until)} > ${time.compare(NOW)}`;
    // The start of the hold this lock continues, or NULL for a new hold: the
    // holder's lock still valid, or one of theirs that ended within the
    // cool-down (from the seat itself, or from the history once released).
    const priorExpr = (r: string, seatId: string) => {
      const cooldownStart = engine.addMs(NOW, `-${this.int(p('cooldown'))}`);
      return `(CASE WHEN ${c(r, col.status)} = ${this.lit.locked} AND ${c(r, col.holder)} = ${HOLDER} AND ${c(r, col.until)} > ${time.compare(cooldownStart)}
          THEN COALESCE(${time.read(c(r, col.lockedAt!))}, ${NOW})
          ELSE (SELECT h.locked_at FROM ${this.t.history} h
                WHERE h.seat_id = ${seatId} AND h.locked_by = ${p('user')}
                  AND h.released_at > ${cooldownStart} AND h.locked_at IS NOT NULL
                ORDER BY h.released_at DESC LIMIT 1) END)`;
    };
    // The lookup runs once per seat where it can: on PostgreSQL in `target`
    // (see requestStatement), whose row carries it and the UPDATE reads it back
    // from there; on SQLite in the UPDATE's FROM (see lockUpdate).
    const prior =
      form === 'target'
        ? (r: string, seatId: string) => (r === '' ? `(SELECT tp.prior FROM target tp WHERE tp.id = ${seatId})` : `${r}.seatctl_prior`)
        : form === 'from'
          ? (r: string, seatId: string) => (r === '' ? 'sp.seatctl_prior' : priorExpr(r, seatId))
          : priorExpr;
    const lockable = (r: string) =>
      `(${c(r, col.status)} = ${this.lit.available} OR (${c(r, col.status)} = ${this.lit.locked} AND (${c(r, col.until)} <= ${time.compare(NOW)} OR ${c(r, col.holder)} = ${HOLDER})))`;
    const table = this.t.seats;
    let sets: string[];
    let allowed: (r: string, seatId: string) => string;
    if (capped) {
      const capEnd = (r: string, seatId: string) => engine.addMs(prior(r, seatId), this.int(p('maxHold')));
      const selfPrior = prior('', `${table}.${col.id}`);
      sets = [
        `${col.until} = CASE WHEN ${selfPrior} IS NULL THEN ${time.store(until)} ELSE ${time.store(engine.least(until, capEnd('', `${table}.${col.id}`)))} END`,
        `${col.lockedAt} = ${time.store(`COALESCE(${selfPrior}, ${NOW})`)}`,
      ];
      allowed = (r, seatId) => `${lockable(r)} AND (${prior(r, seatId)} IS NULL OR ${capEnd(r, seatId)} > ${NOW})`;
    } else {
      // No cap: a renewal keeps the hold's start where the mapping records it.
      sets = [
        `${col.until} = ${time.store(until)}`,
        ...(col.lockedAt === null ? [] : [`${col.lockedAt} = CASE WHEN ${holding('')} THEN ${col.lockedAt} ELSE ${time.store(NOW)} END`]),
      ];
      allowed = (r) => lockable(r);
    }
    sets.push(
      `${col.status} = ${this.lit.locked}`,
      `${col.holder} = ${HOLDER}`,
      ...(col.token === null ? [] : [`${col.token} = COALESCE(${col.token}, 0) + 1`]),
    );
    return {
      now: NOW,
      needsHolder: true,
      allowed,
      renew: holding,
      // An expired lock taken over was never released: its history row says so.
      history: { when: (r) => `${c(r, col.status)} = ${this.lit.locked} AND ${c(r, col.until)} <= ${time.compare(NOW)}`, reason: 'replaced' },
      sets: `${sets.join(', ')}${this.touches(NOW)}`,
      returning: `${col.seat} AS seat, ${time.read(col.until)} AS locked_until, ${col.lockedAt === null ? this.nullInstant() : time.read(col.lockedAt)} AS locked_at, ${col.token ?? 'CAST(NULL AS integer)'} AS lock_token`,
      ...(capped && form !== 'inline' ? { priorExpr } : {}),
    };
  }

  /** Book: only the holder's locks that are valid at the instant of the write. */
  private bookRules(p: (name: string) => string): RequestRules {
    const { time, col } = this;
    const NOW = this.engine.name === 'postgres' ? this.clockParam(p) : this.engine.now;
    const c = (r: string, column: string) => (r === '' ? column : `${r}.${column}`);
    const sets = [
      `${col.status} = ${this.lit.booked}`,
      ...(col.bookedBy === null ? [] : [`${col.bookedBy} = ${col.holder}`]),
      ...(col.bookedAt === null ? [] : [`${col.bookedAt} = ${time.store(NOW)}`]),
      // Without a column for who booked, the holder column keeps saying who it was.
      ...(col.bookedBy === null ? [] : [`${col.holder} = NULL`]),
      `${col.until} = NULL`,
      ...(col.lockedAt === null ? [] : [`${col.lockedAt} = NULL`]),
    ];
    return {
      now: NOW,
      needsHolder: true,
      allowed: (r) =>
        `${c(r, col.status)} = ${this.lit.locked} AND ${c(r, col.holder)} = ${this.holderValue(p('user'))} AND ${c(r, col.until)} > ${time.compare(NOW)}`,
      renew: () => 'false',
      history: null,
      sets: `${sets.join(', ')}${this.touches(NOW)}`,
      returning: `${col.seat} AS seat, ${col.bookedAt === null ? NOW : time.read(col.bookedAt)} AS booked_at`,
    };
  }

  /** Unlock: locked seats (only the user's, when one is named), released now with their history. */
  private unlockRules(p: (name: string) => string, byUser: boolean): RequestRules {
    const { col } = this;
    const NOW = this.engine.name === 'postgres' ? this.clockParam(p) : this.engine.now;
    const c = (r: string, column: string) => (r === '' ? column : `${r}.${column}`);
    return {
      now: NOW,
      needsHolder: byUser,
      allowed: (r) =>
        `${c(r, col.status)} = ${this.lit.locked}${byUser ? ` AND ${c(r, col.holder)} = ${this.holderValue(p('user'))}` : ''}`,
      renew: () => 'false',
      history: { when: () => 'true', reason: 'unlocked' },
      sets: this.clearLock(NOW),
      returning: `${col.seat} AS seat`,
    };
  }

  /** PostgreSQL: the database clock, read once per statement (a CTE named `now`). */
  private clockParam(_p: (name: string) => string): string {
    return this.engine.name === 'postgres' ? '(SELECT t FROM now)' : this.at(_p('now'));
  }

  private nullInstant(): string {
    return this.sqlite ? 'NULL' : 'CAST(NULL AS timestamptz)';
  }

  private requestWhere(p: (name: string) => string, r: string): string {
    const c = (column: string) => (r === '' ? column : `${r}.${column}`);
    return `${c(this.col.event)} = ${p('eventId')} AND ${this.seatIn(c(this.col.seat), p('seats'))}`;
  }

  /**
   * SQLite: the request's seats before the lock, for the report and to skip
   * what is not needed (the write decides): which this holder holds now
   * (renewals), and whether any expired lock is taken over (history rows).
   */
  private lockSeenStatement(p: (name: string) => string): string {
    const rules = this.lockRules(p, false);
    return `SELECT s.${this.col.seat} AS seat, COALESCE(${rules.renew('s')}, 0) AS renew, COALESCE(${rules.history!.when('s')}, 0) AS lapsed
      FROM ${this.t.seats} s WHERE ${this.requestWhere(p, 's')}`;
  }

  /** SQLite: history rows for the expired locks a lock takes over. */
  private replacedStatement(p: (name: string) => string): string {
    const rules = this.lockRules(p, false);
    return this.historyInsert(p, { ...rules, allowed: () => 'true' }, 'replaced', rules.now, rules.history!.when('s'));
  }

  /** INSERT of history rows for the request's seats that its rules allow (and `extra`). */
  private historyInsert(p: (name: string) => string, rules: RequestRules, reason: string, now: string, extra = 'true'): string {
    return `INSERT INTO ${this.t.history} ${this.historyColumns}
      SELECT ${this.s(this.col.event)}, ${this.s(this.col.id)}, ${this.s(this.col.seat)}, ${this.holderName()},
        ${this.time.read(this.s(this.col.until))}, ${this.tokenRead()}, ${this.lockedAtRead()}, ${now}, '${reason}'
      FROM ${this.t.seats} s${this.holderJoin()}
      WHERE ${this.requestWhere(p, 's')} AND ${rules.allowed('s', `s.${this.col.id}`)} AND ${extra}
      RETURNING seat_number AS seat, locked_by, locked_until, lock_token, released_at`;
  }

  /** SQLite: the request's conditional UPDATE. */
  private plainUpdate(p: (name: string) => string, rules: RequestRules): string {
    return `UPDATE ${this.t.seats} SET ${rules.sets}
      WHERE ${this.requestWhere(p, '')} AND ${rules.allowed('', `${this.t.seats}.${this.col.id}`)}
      RETURNING ${rules.returning}`;
  }

  /**
   * SQLite: the lock's UPDATE. With a hold cap, the start of the hold each
   * seat continues is looked up once per seat, in the FROM (the SETs and the
   * re-check read it from there), not once per place it is used.
   */
  private lockUpdate(p: (name: string) => string, rules: RequestRules): string {
    if (rules.priorExpr === undefined) return this.plainUpdate(p, rules);
    const seats = this.t.seats;
    return `UPDATE ${seats} SET ${rules.sets}
      FROM (SELECT s.${this.col.id} AS seatctl_id, ${rules.priorExpr('s', `s.${this.col.id}`)} AS seatctl_prior
            FROM ${seats} s WHERE ${this.requestWhere(p, 's')}) AS sp
      WHERE ${seats}.${this.col.id} = sp.seatctl_id AND ${rules.allowed('', `${seats}.${this.col.id}`)}
      RETURNING ${rules.returning}`;
  }

  private lockValues(request: LockRequest, capped: boolean): Params {
    return {
      eventId: request.eventId,
      seats: this.seatList(request.seats),
      user: request.user,
      ttl: request.ttlMs,
      ...(capped ? { maxHold: request.maxHoldMs, cooldown: request.cooldownMs } : {}),
    };
  }

  /**
   * PostgreSQL: one request as one statement. `target` takes the rows in id
   * order and judges each against the rules; the history and the seats are
   * written only when the holder is known and every seat was found and allowed.
   */
  private requestStatement(p: (name: string) => string, rules: RequestRules): string {
    const { col, time } = this;
    const seatsParam = p('seats');
    const HOLDER = rules.needsHolder ? this.holderValue(p('user')) : 'NULL';
    const history = rules.history;
    // Milliseconds, as JavaScript's Date and seatctl's SQLite clock: what is written is what is reported.
    return `WITH now AS MATERIALIZED (SELECT date_trunc('milliseconds', clock_timestamp()) AS t),
      known AS MATERIALIZED (SELECT ${rules.needsHolder ? `${HOLDER} IS NOT NULL` : 'true'} AS ok),
      target AS MATERIALIZED (
        SELECT s.${col.id} AS id, s.${col.event} AS event_id, s.${col.seat} AS seat, s.${col.status} AS status,
          ${this.holderName()} AS locked_by, ${time.read(`s.${col.until}`)} AS locked_until, ${this.lockedAtRead()} AS locked_at,
          ${this.tokenRead()} AS lock_token,
          COALESCE(s.${col.until} <= ${time.compare(rules.now)}, false) AS expired,
          COALESCE(s.${col.holder} = ${rules.needsHolder ? HOLDER : 'NULL'}, false) AS mine,
          COALESCE(${rules.allowed('s', `s.${col.id}`)}, false) AS ok,
          COALESCE(${rules.renew('s')}, false) AS renew,
          ${history === null ? 'false' : `COALESCE(${history.when('s')}, false)`} AS logged${rules.priorExpr ? ', s.seatctl_prior AS prior' : ''}
        FROM (
          SELECT s.*${rules.priorExpr ? `, ${rules.priorExpr('s', `s.${col.id}`)} AS seatctl_prior` : ''}
          FROM ${this.t.seats} s
          WHERE ${this.requestWhere(p, 's')}
          ORDER BY s.${col.id}
          FOR UPDATE OF s
        ) s${this.holderJoin()}
        ORDER BY s.${col.id}
      ),
      go AS MATERIALIZED (
        SELECT (SELECT ok FROM known) AND (SELECT count(*) FROM target) = cardinality(CAST(${seatsParam} AS text[]))
          AND NOT EXISTS (SELECT 1 FROM target WHERE NOT ok) AS ok
      ),
      ${
        history === null
          ? ''
          : `logged AS (
        INSERT INTO ${this.t.history} ${this.historyColumns}
        SELECT event_id, id, seat, locked_by, locked_until, lock_token, locked_at, ${rules.now}, '${history.reason}'
        FROM target WHERE logged AND (SELECT ok FROM go)
        RETURNING seat_number AS seat, locked_by, locked_until, lock_token, released_at
      ),`
      }
      written AS (
        UPDATE ${this.t.seats} SET ${rules.sets}
        WHERE ${col.id} = ANY(ARRAY(SELECT id FROM target)) AND (SELECT ok FROM go)
          AND ${rules.allowed('', `${this.t.seats}.${col.id}`)}
        RETURNING ${rules.returning}
      )
      SELECT (SELECT t FROM now) AS now, (SELECT ok FROM known) AS known,
        (SELECT COALESCE(json_agg(json_build_object('seat', seat, 'status', status, 'locked_by', locked_by,
            'locked_until', locked_until, 'locked_at', locked_at, 'expired', expired, 'mine', mine, 'ok', ok, 'renew', renew)), '[]')
          FROM target) AS states,
        (SELECT COALESCE(json_agg(w), '[]') FROM ${history?.reason === 'unlocked' ? 'logged' : 'written'} w) AS written`;
  }

  /** PostgreSQL: runs a request statement and reads its one row as the outcome. */
  private async runRequest<Row extends { seat: string }>(
    stmt: Statement,
    values: Params,
    read: (row: Record<string, unknown>) => Row,
  ): Promise<WriteOutcome<Row>> {
    const [result] = await this.rows<{
      now: Date;
      known: boolean;
      states: Array<Record<string, unknown>>;
      written: Array<Record<string, unknown>>;
    }>(this.knex, stmt, values);
    const { now, known, states, written } = result!;
    if (!known) return { result: 'unknown-user' };
    const requested = values.seats as string[];
    const unknown = unknownSeats(requested, states);
    if (unknown.length > 0) return { result: 'unknown-seats', seats: unknown };
    if (written.length < requested.length) {
      return { result: 'refused', now, states: states.filter((state) => !state.ok).map((state) => this.seatState(state)) };
    }
    const renewed = new Set(states.filter((state) => state.renew).map((state) => String(state.seat)));
    return { result: 'written', now, renewed, rows: written.map(read) };
  }

  /**
   * SQLite: a request as statements in one write transaction: the holder
   * (when it is a key), then `write`; when not every seat was written, the
   * seats are read (an unknown one, or why each was refused) and everything
   * is rolled back.
   */
  private async session<Row extends { seat: string }>(
    request: SeatRequest,
    write: (conn: Database.Database) => { now: Date; renewed: Set<string>; rows: Row[] },
  ): Promise<WriteOutcome<Row>> {
    const writeSession = this.engine.writeSession;
    if (writeSession === undefined) throw new Error(`no write sessions on ${this.engine.name}`);
    try {
      return await writeSession(this.knex, (conn) => {
        if (request.user !== null && !this.holderExists(conn, request.user)) throw new Refused({ result: 'unknown-user' });
        const { now, renewed, rows } = write(conn);
        if (rows.length < request.seats.length) {
          // Not all written: the seats are read to say why, and everything is rolled back.
          const states = this.seatStates(conn, request.eventId, request.seats, request.user);
          const unknown = unknownSeats(request.seats, states);
          if (unknown.length > 0) throw new Refused({ result: 'unknown-seats', seats: unknown });
          const done = new Set(rows.map((row) => row.seat));
          throw new Refused({ result: 'refused', now, states: states.filter((state) => !done.has(state.seat)) });
        }
        return { result: 'written' as const, now, renewed, rows };
      });
    } catch (error) {
      if (error instanceof Refused) return error.outcome as WriteOutcome<Row>;
      throw error;
    }
  }

  /** A seat's state from a row of `target` (or of seatStates). */
  private seatState(row: Record<string, unknown>): SeatState {
    const status = this.statusOf(row.status);
    return {
      seat: String(row.seat),
      status,
      statusValue: row.status as StatusValue,
      lockedBy: status === 'locked' || (row.locked_by != null && row.locked_by !== NO_HOLDER) ? (row.locked_by as string) : null,
      lockedUntil: this.maybeInstant(row.locked_until),
      lockedAt: this.maybeInstant(row.locked_at),
      expired: status === 'locked' && (row.expired === true || Number(row.expired) === 1),
      mine: row.mine === true || Number(row.mine) === 1,
    };
  }

  /** SQLite: the state of some seats, for explaining a refusal. */
  private seatStates(conn: Database.Database, eventId: number, seats: readonly string[], user: string | null): SeatState[] {
    const stmt = this.statementFor(
      'seatStates',
      (p) =>
        `SELECT ${this.s(this.col.seat)} AS seat, ${this.s(this.col.status)} AS status, ${this.holderName()} AS locked_by,
           ${this.time.read(this.s(this.col.until))} AS locked_until, ${this.lockedAtRead()} AS locked_at,
           CASE WHEN ${this.s(this.col.until)} <= ${this.time.compare(this.engine.now)} THEN 1 ELSE 0 END AS expired,
           CASE WHEN ${this.s(this.col.holder)} = ${this.holderValue(p('user'))} THEN 1 ELSE 0 END AS mine
         FROM ${this.t.seats} s${this.holderJoin()}
         WHERE ${this.requestWhere(p, 's')}
         ORDER BY ${this.s(this.col.id)}`,
    );
    const rows = runSqliteStatement<Record<string, unknown>>(conn, stmt, { eventId, seats: this.seatList(seats), user });
    return rows.map((row) => this.seatState(row));
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
