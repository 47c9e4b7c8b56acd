// Test schemas: seatctl's own, and a Django app's tables created by Django
// itself. Fixtures write and read seats through the handle's mapping, so a
// guarantee test runs unchanged on either: it speaks of seats, holders and
// instants, as src/core does.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { afterAll, beforeAll, beforeEach, describe } from 'vitest';
import { instantCodec } from '../../src/db/instants.js';
import { migrate, openDatabase, type SeatctlConfig, type SeatDatabase } from '../../src/index.js';
import { appSkipReason, newAppDatabase } from './apps.js';
import { ENGINES, tempDir, type TestEngine } from './engines.js';

export type SchemaName = 'seatctl' | 'django';

export interface TestSchema {
  name: SchemaName;
  /** The config a CLI run needs (undefined: seatctl's own schema, no config). */
  config: SeatctlConfig | undefined;
  skipReason: string | null;
  /** A new, empty database of this schema (seatctl's own tables not yet created). */
  newDatabaseUrl(engine: TestEngine): Promise<string>;
}

export const SEATCTL_SCHEMA: TestSchema = {
  name: 'seatctl',
  config: undefined,
  skipReason: null,
  newDatabaseUrl: (engine) => engine.newDatabaseUrl(),
};

export const DJANGO_SCHEMA: TestSchema = {
  name: 'django',
  config: { preset: 'django', app: 'reservations' },
  get skipReason() {
    return appSkipReason('django');
  },
  newDatabaseUrl: (engine) => newAppDatabase('django', engine),
};

export const SCHEMAS: TestSchema[] = [SEATCTL_SCHEMA, DJANGO_SCHEMA];

/** A config file for CLI runs on this schema, and the arguments that name the database and it. */
export function cliArgs(url: string, schema: TestSchema): string[] {
  if (schema.config === undefined) return ['--db', url];
  const file = join(tempDir('seatctl-config-'), 'seatctl.config.json');
  writeFileSync(file, JSON.stringify(schema.config));
  return ['--db', url, '--config', file];
}

// --- the mapped tables, by the handle's mapping -------------------------------------

function names(db: SeatDatabase) {
  const m = db.mapping.seats;
  const table = (ref: { schema?: string; table: string }) => (ref.schema ? `${ref.schema}.${ref.table}` : ref.table);
  const own = (name: string) => (db.mapping.own.schema ? `${db.mapping.own.schema}.${name}` : name);
  return {
    m,
    seats: table(m),
    events: db.mapping.events ? table(db.mapping.events) : undefined,
    holders: m.holder.references ? table(m.holder.references) : undefined,
    history: own(db.mapping.own.history),
    runs: own(db.mapping.own.runs),
    migrations: db.mapping.own.migrations,
    time: instantCodec(db.engine.name, m.timeStorage),
  };
}

/** The holder column's value for a name: the name, or the id of a user row (created when missing). */
async function holderValue(db: SeatDatabase, user: string, trx: Knex | Knex.Transaction = db.knex): Promise<unknown> {
  const { m, holders } = names(db);
  const ref = m.holder.references;
  if (ref === null) return user;
  const found = await trx(holders!).where(ref.name, user).first(ref.id);
  if (found) return found[ref.id];
  // Django's auth_user: the columns it requires.
  const [row] = await trx(holders!)
    .insert({
      [ref.name]: user,
      password: '',
      is_superuser: false,
      first_name: '',
      last_name: '',
      email: '',
      is_staff: false,
      is_active: true,
      date_joined: db.knex.raw(db.engine.name === 'sqlite' ? "strftime('%Y-%m-%d %H:%M:%f', 'now')" : 'now()'),
    })
    .returning(ref.id);
  return (row as Record<string, unknown>)[ref.id];
}

/**
 * An instant `offsetSql` milliseconds from the database clock, as SQL in the
 * column's storage. The offset is SQL with its numbers written in (a storage's
 * conversion repeats it, so it can't carry placeholders).
 */
function instantAt(db: SeatDatabase, offsetSql: string): Knex.Raw {
  const { time } = names(db);
  return db.knex.raw(time.store(db.engine.addMs(db.engine.now, offsetSql)));
}

/** A whole number written into SQL: tests' own values, never input. */
const int = (value: number) => {
  if (!Number.isSafeInteger(value)) throw new TypeError(`not a whole number: ${value}`);
  return `(${value})`;
};

/** Creates an event with these seats, all available; returns its id. */
export async function createEvent(db: SeatDatabase, name: string, seats: readonly string[]): Promise<number> {
  const { m, seats: table, events } = names(db);
  const e = db.mapping.events!;
  const [row] = await db.knex(events!).insert({ [e.name]: name }).returning(e.id);
  const id = Number((row as Record<string, unknown>)[e.id]);
  for (let i = 0; i < seats.length; i += 500) {
    await db.knex(table).insert(
      seats.slice(i, i + 500).map((seat) => ({
        [m.event]: id,
        [m.seat]: seat,
        [m.status]: m.statusValues.available,
        ...(m.lockToken ? { [m.lockToken]: 0 } : {}),
      })),
    );
  }
  return id;
}

/** Seat numbers A1…A<n>. */
export function seatNumbers(count: number, row = 'A'): string[] {
  return Array.from({ length: count }, (_, i) => `${row}${i + 1}`);
}

/**
 * Writes a lock directly: held by `user` until `untilMs` from the database
 * clock's now (negative: already expired). With `stepMs`, each next seat (in
 * id order) expires that much later. Tests make locks expired by writing past
 * instants, never by sleeping.
 */
export async function placeLock(
  db: SeatDatabase,
  eventId: number,
  seats: readonly string[] | 'all',
  user: string,
  untilMs: number,
  options: { heldForMs?: number; stepMs?: number } = {},
): Promise<void> {
  const { m, seats: table } = names(db);
  const holder = await holderValue(db, user);
  const query = db.knex(table).where(m.event, eventId);
  if (seats !== 'all') query.whereIn(m.seat, [...seats]);
  let offset = int(untilMs);
  if (options.stepMs !== undefined) {
    const first = Number((await db.knex(table).where(m.event, eventId).min({ id: m.id }).first())!.id);
    offset = `${int(untilMs)} + (${db.knex.raw('??', [m.id]).toQuery()} - ${int(first)}) * ${int(options.stepMs)}`;
  }
  await query.update({
    [m.status]: m.statusValues.locked,
    [m.holder.column]: holder,
    [m.lockedUntil]: instantAt(db, offset),
    ...(m.lockedAt ? { [m.lockedAt]: instantAt(db, int(untilMs - (options.heldForMs ?? 5 * 60_000))) } : {}),
    ...(m.lockToken ? { [m.lockToken]: db.knex.raw('?? + 1', [m.lockToken]) } : {}),
  });
}

/** Books seats directly, as the app would: status booked, the holder kept as who booked. */
export async function bookDirectly(db: SeatDatabase, eventId: number, seats: readonly string[], user: string): Promise<void> {
  const { m, seats: table } = names(db);
  const holder = await holderValue(db, user);
  await db
    .knex(table)
    .where(m.event, eventId)
    .whereIn(m.seat, [...seats])
    .update({
      [m.status]: m.statusValues.booked,
      [m.lockedUntil]: null,
      ...(m.bookedBy ? { [m.bookedBy]: holder, [m.holder.column]: null } : { [m.holder.column]: holder }),
      ...(m.bookedAt ? { [m.bookedAt]: instantAt(db, '0') } : {}),
    });
}

/** Every seat of the event back on sale. */
export async function clearSeats(db: SeatDatabase, eventId: number): Promise<void> {
  const { m, seats: table } = names(db);
  await db
    .knex(table)
    .where(m.event, eventId)
    .update({
      [m.status]: m.statusValues.available,
      [m.holder.column]: null,
      [m.lockedUntil]: null,
      ...(m.lockedAt ? { [m.lockedAt]: null } : {}),
      ...(m.bookedBy ? { [m.bookedBy]: null } : {}),
      ...(m.bookedAt ? { [m.bookedAt]: null } : {}),
    });
}

export interface SeatRow {
  id: number;
  event_id: number;
  seat_number: string;
  status: 'available' | 'locked' | 'booked' | 'other';
  /** The holder's name (for a booked seat: who booked it). */
  locked_by: string | null;
  locked_until: Date | null;
  lock_token: number | null;
}

/** Every seat (of an event), in id order, as seatctl's own schema would show it. */
export async function seatList(db: SeatDatabase, eventId?: number): Promise<SeatRow[]> {
  const { m, seats: table, holders, time } = names(db);
  const ref = m.holder.references;
  const q = (name: string) => db.knex.raw('??', [name]).toQuery();
  const query = db
    .knex(`${table} as s`)
    .select({
      id: `s.${m.id}`,
      event_id: `s.${m.event}`,
      seat_number: `s.${m.seat}`,
      status: `s.${m.status}`,
      ...(m.bookedBy ? { booked_by: `s.${m.bookedBy}` } : {}),
    })
    .select(db.knex.raw(`${time.read(`s.${q(m.lockedUntil)}`)} AS locked_until`))
    .select(db.knex.raw(m.lockToken ? `s.${q(m.lockToken)} AS lock_token` : 'NULL AS lock_token'))
    .orderBy(`s.${m.id}`);
  if (ref) {
    query.leftJoin(`${holders} as h`, `h.${ref.id}`, `s.${m.holder.column}`).select({ locked_by: `h.${ref.name}` });
  } else {
    query.select({ locked_by: `s.${m.holder.column}` });
  }
  if (eventId !== undefined) query.where(`s.${m.event}`, eventId);
  const rows: Array<Record<string, unknown>> = await query;
  const statusOf = (value: unknown): SeatRow['status'] => {
    for (const status of ['available', 'locked', 'booked'] as const) {
      if (String(value) === String(m.statusValues[status])) return status;
    }
    return 'other';
  };
  return rows.map((row) => ({
    id: Number(row.id),
    event_id: Number(row.event_id),
    seat_number: String(row.seat_number),
    status: statusOf(row.status),
    locked_by: (row.booked_by as string | undefined) ?? (row.locked_by as string | null),
    locked_until: row.locked_until == null ? null : db.engine.readInstant(row.locked_until),
    lock_token: row.lock_token == null ? null : Number(row.lock_token),
  }));
}

/** The seats of an event by seat number. */
export async function seatRows(db: SeatDatabase, eventId: number): Promise<Map<string, SeatRow>> {
  return new Map((await seatList(db, eventId)).map((row) => [row.seat_number, row]));
}

/** seatctl's history table (the handle's own: release_history, or seatctl_release_history). */
export function historyTable(db: SeatDatabase): Knex.QueryBuilder {
  return db.knex(names(db).history);
}

/** Every row of the mapped tables and seatctl's own, in a stable order: compare before and after to prove nothing changed. */
export async function dumpDatabase(db: SeatDatabase): Promise<string> {
  const n = names(db);
  const out: Record<string, unknown[]> = {};
  for (const [table, order] of [
    [n.events, db.mapping.events?.id],
    [n.seats, n.m.id],
    [n.holders, n.m.holder.references?.id],
    [n.history, 'id'],
    [n.runs, 'host'],
  ] as const) {
    if (table !== undefined && order !== undefined) out[table] = await db.knex(table).orderBy(order);
  }
  return JSON.stringify(out);
}

/** Empties the seats, events and holders, and seatctl's history and heartbeat. */
export async function emptyTables(db: SeatDatabase): Promise<void> {
  const n = names(db);
  for (const table of [n.history, n.runs, n.seats, n.events, n.holders]) {
    if (table !== undefined) await db.knex(table).delete();
  }
}

/**
 * Many seats at once, by SQL (a Django app's tables can't be seeded by seatctl):
 * `events` events of `perEvent` seats, the first `expired` (spread evenly) locked
 * by `admin` and expired a minute to an hour ago.
 */
export async function seedExpired(db: SeatDatabase, events: number, perEvent: number, expired: number): Promise<void> {
  const { m, seats: table } = names(db);
  const holder = await holderValue(db, 'admin');
  const every = Math.max(1, Math.floor((events * perEvent) / expired));
  for (let e = 0; e < events; e++) {
    const id = await createEvent(db, `Event ${String(e + 1).padStart(4, '0')}`, seatNumbers(perEvent, 'S'));
    void id;
  }
  const q = (name: string) => db.knex.raw('??', [name]).toQuery();
  const picked = db.knex
    .select('id')
    .from(db.knex.select({ id: m.id }).select(db.knex.raw(`ROW_NUMBER() OVER (ORDER BY ${q(m.id)}) - 1 AS n`)).from(table).as('numbered'))
    .whereRaw('n % ? = 0 AND n / ? < ?', [every, every, expired]);
  await db
    .knex(table)
    .whereIn(m.id, picked)
    .update({
      [m.status]: m.statusValues.locked,
      [m.holder.column]: holder,
      [m.lockedUntil]: instantAt(db, `-60000 - (${q(m.id)} % 3540) * 1000`),
      ...(m.lockedAt ? { [m.lockedAt]: instantAt(db, '-3600000') } : {}),
      ...(m.lockToken ? { [m.lockToken]: 1 } : {}),
    });
}

/** Makes sure a holder of this name exists (a user row, for a mapping whose holders are rows). */
export async function ensureUser(db: SeatDatabase, user: string): Promise<void> {
  await holderValue(db, user);
}

/** How many seats are in this state (and held, or booked, by this user). */
export async function countSeats(
  db: SeatDatabase,
  filter: { eventId?: number; status?: 'available' | 'locked' | 'booked'; lockedBy?: string } = {},
): Promise<number> {
  const { m, seats: table, holders } = names(db);
  const ref = m.holder.references;
  const query = db.knex(`${table} as s`);
  if (filter.eventId !== undefined) query.where(`s.${m.event}`, filter.eventId);
  if (filter.status !== undefined) query.where(`s.${m.status}`, m.statusValues[filter.status]);
  if (filter.lockedBy !== undefined) {
    const column = filter.status === 'booked' && m.bookedBy ? m.bookedBy : m.holder.column;
    if (ref) query.join(`${holders} as h`, `h.${ref.id}`, `s.${column}`).where(`h.${ref.name}`, filter.lockedBy);
    else query.where(`s.${column}`, filter.lockedBy);
  }
  return Number((await query.count({ n: '*' }).first())!.n);
}

/** History rows whose seat is still locked: a release that wrote history must have released its seat. */
export async function historyOfLockedSeats(db: SeatDatabase): Promise<number> {
  const { m, seats: table, history } = names(db);
  const row = await db
    .knex(`${history} as h`)
    .join(`${table} as s`, `s.${m.id}`, 'h.seat_id')
    .where(`s.${m.status}`, m.statusValues.locked)
    .count({ n: '*' })
    .first();
  return Number(row!.n);
}

/** The seats table's name (schema-qualified where it has one), for raw SQL in a test. */
export function seatsTable(db: SeatDatabase): { table: string; seat: string; id: string } {
  const { m, seats } = names(db);
  return { table: seats, seat: m.seat, id: m.id };
}

/** Environment for a child process that opens the database through the library (test/support/race.mjs). */
export function mappingEnv(schema: TestSchema): Record<string, string> {
  return schema.config === undefined ? {} : { SEATCTL_TEST_MAPPING: JSON.stringify(schema.config) };
}

/** describe() once per engine and schema; what can't run here is skipped, visibly, with the reason in the title. */
export function describeEachEngineAndSchema(
  title: string,
  body: (engine: TestEngine, schema: TestSchema) => void,
  schemas: TestSchema[] = SCHEMAS,
): void {
  for (const engine of ENGINES) {
    for (const schema of schemas) {
      const reason = engine.skipReason ?? schema.skipReason;
      const label = `${title} [${engine.name}, ${schema.name} schema${reason ? `: skipped, ${reason}` : ''}]`;
      describe.skipIf(reason !== null)(label, () => body(engine, schema));
    }
  }
}

export interface SchemaDatabase {
  url: string;
  db: SeatDatabase;
  /** `--db <url>` (and `--config <file>` for a mapped schema), for CLI runs. */
  cli: string[];
  schema: TestSchema;
}

/**
 * One database of this schema for the enclosing describe block, with seatctl's
 * own tables migrated, emptied before each test.
 */
export function useSchemaDatabase(engine: TestEngine, schema: TestSchema): SchemaDatabase {
  const handle = { schema } as SchemaDatabase;
  beforeAll(async () => {
    handle.url = await schema.newDatabaseUrl(engine);
    handle.db = await openDatabase({ url: handle.url, create: schema.config === undefined, mapping: schema.config });
    await migrate(handle.db);
    handle.cli = cliArgs(handle.url, schema);
  }, 120_000);
  beforeEach(async () => {
    await emptyTables(handle.db);
  });
  afterAll(async () => {
    await handle.db?.close();
  });
  return handle;
}
