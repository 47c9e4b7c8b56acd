import { AsyncLocalStorage } from 'node:async_hooks';
import type Database from 'better-sqlite3';
import { SeatctlError } from '../errors.js';
import type { Knex } from 'knex';
import type pg from 'pg';

/**
 * A statement with named parameters, written once for the engine: `$1`… on
 * PostgreSQL, `@name` on SQLite. seatctl's statements are run on the driver's
 * own connection (Knex still owns the pool and the transactions), so a literal
 * in the SQL can never be taken for a placeholder, and SQLite prepares each
 * statement once per connection.
 */
export interface Statement {
  readonly engine: 'sqlite' | 'postgres';
  readonly text: string;
  /** Parameter names: PostgreSQL's $k is params[k - 1]; SQLite binds by name. */
  readonly params: readonly string[];
  /** PostgreSQL: the name it is prepared under on each connection, when named statements are on. */
  readonly name?: string;
}

export type Params = Record<string, unknown>;

/** Builds a statement; `param(name)` writes the engine's placeholder for a named parameter. */
export function statement(
  engine: 'sqlite' | 'postgres',
  build: (param: (name: string) => string) => string,
  options: { named?: boolean } = {},
): Statement {
  const params: string[] = [];
  const param = (name: string) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new TypeError(`bad parameter name ${name}`);
    let index = params.indexOf(name);
    if (index === -1) index = params.push(name) - 1;
    return engine === 'postgres' ? `$${index + 1}` : `@${name}`;
  };
  const text = build(param);
  // Named after its text: two handles on one connection may share it, never clash.
  const name = options.named && engine === 'postgres' ? `seatctl_${textHash(text)}` : undefined;
  return { engine, text, params, ...(name && { name }) };
}

/**
 * A name for a statement's text: two FNV-1a hashes (different offsets) and the
 * length, 80 bits in all — distinct for the few dozen texts a process builds,
 * without loading node:crypto into every CLI start.
 */
function textHash(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x01000193) >>> 0;
  }
  return `${a.toString(16).padStart(8, '0')}${b.toString(16).padStart(8, '0')}${text.length.toString(16)}`;
}

export type Connection = Database.Database | pg.ClientBase;

/** A library call's caller-side limits, seen by every statement the call runs. */
export interface CallLimits {
  signal: AbortSignal;
  /** PostgreSQL: cancels what a backend runs (through another connection). */
  cancel?: (pid: number) => Promise<unknown>;
}

export const callLimits = new AsyncLocalStorage<CallLimits>();

/** The SeatctlError for a call whose signal fired: a timeout says how long it had. */
export function abortedError(signal: AbortSignal): SeatctlError {
  const reason = signal.reason as { name?: string; message?: string } | undefined;
  const timedOut = reason?.name === 'TimeoutError';
  return new SeatctlError('aborted', timedOut ? `the call did not finish within its timeout: nothing was left half-done` : 'the call was aborted: nothing was left half-done', {
    cause: signal.reason,
  });
}

/** Throws if the current call was aborted: checked before every statement. */
export function throwIfAborted(): void {
  const limits = callLimits.getStore();
  if (limits?.signal.aborted) throw abortedError(limits.signal);
}

/**
 * Once `signal` is aborted, cancels whatever this connection's backend runs
 * (`cancel` sends pg_cancel_backend from another pooled connection), so a
 * stopped call leaves no statement running on the server. Returns a function
 * to call once the statement has settled: it waits for a cancel in flight, so
 * the connection goes back to the pool only when a late cancel can no longer
 * hit the next statement (a cancel that reaches an idle backend is dropped).
 */
export function cancelOnAbort(
  cancel: (backend: number) => Promise<unknown>,
  conn: pg.ClientBase,
  signal: AbortSignal | undefined,
): () => Promise<void> {
  if (signal === undefined) return async () => {};
  const backend = (conn as pg.ClientBase & { processID?: number }).processID;
  let cancelling: Promise<unknown> | undefined;
  const onAbort = () => {
    if (backend !== undefined) cancelling = cancel(backend).catch(() => {});
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return async () => {
    signal.removeEventListener('abort', onAbort);
    await cancelling;
  };
}

/** Connections whose server does not keep named statements between transactions (a pooler's). */
const unnamedOnly = new WeakSet<object>();

/** Runs a statement on a connection; returns its rows (none for a write without RETURNING). */
export async function runStatement<Row = Record<string, unknown>>(
  conn: Connection,
  stmt: Statement,
  values: Params,
): Promise<Row[]> {
  if (stmt.engine === 'sqlite') return runSqliteStatement<Row>(conn as Database.Database, stmt, values);
  throwIfAborted();
  const client = conn as pg.ClientBase;
  const limits = callLimits.getStore();
  const stopCancel = limits?.cancel ? cancelOnAbort(limits.cancel, client, limits.signal) : undefined;
  try {
    const args = stmt.params.map((name) => values[name]);
    // Named only outside a transaction, where a refused name can be retried unnamed.
    const idle = (client as { getTransactionStatus?: () => string | null }).getTransactionStatus?.() === 'I';
    const name = stmt.name !== undefined && idle && !unnamedOnly.has(client) ? stmt.name : undefined;
    try {
      return (await client.query({ name, text: stmt.text, values: args })).rows as Row[];
    } catch (error) {
      // A pooler in transaction mode (PgBouncer before 1.21) hands each
      // transaction any server connection, where the name is unknown or
      // already taken: the statement never ran. This connection sends its
      // statements unnamed from now on.
      const code = (error as { code?: unknown }).code;
      if (name === undefined || (code !== '26000' && code !== '42P05')) throw error;
      unnamedOnly.add(client);
      return (await client.query({ text: stmt.text, values: args })).rows as Row[];
    }
  } finally {
    await stopCancel?.();
  }
}

/** SQLite's half of runStatement, at once: better-sqlite3 runs a statement synchronously. */
export function runSqliteStatement<Row = Record<string, unknown>>(conn: Database.Database, stmt: Statement, values: Params): Row[] {
  throwIfAborted();
  const prepared = prepare(conn, stmt.text);
  const args: Record<string, unknown> = {};
  for (const name of stmt.params) args[name] = sqliteValue(values[name]);
  if (prepared.reader) return prepared.all(args) as Row[];
  prepared.run(args);
  return [];
}

/** better-sqlite3 binds numbers, strings, bigints, buffers and null; seatctl's instants are numbers there. */
function sqliteValue(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.getTime();
  return value;
}

const preparedStatements = new WeakMap<Database.Database, Map<string, Database.Statement>>();

/**
 * SQLite connections whose busy timeout is set to 0 (the value is the one to
 * put back): BEGIN IMMEDIATE is polled without blocking the event loop, and
 * on a WAL database a write session (lock, book, unlock) leaves it at 0 for
 * the next one, so an uncontended call runs no PRAGMA at all. Any other
 * statement on the connection puts the timeout back first.
 */
const busyTimeoutSetAside = new WeakMap<Database.Database, number>();
/** Connections inside a write session: their statements run with the timeout set aside. */
export const inWriteSession: WeakSet<Database.Database> = new WeakSet();

export function setBusyTimeoutAside(conn: Database.Database, busyTimeoutMs: number): void {
  if (busyTimeoutSetAside.has(conn)) return;
  cached(conn, 'PRAGMA busy_timeout = 0').run();
  busyTimeoutSetAside.set(conn, busyTimeoutMs);
}

export function restoreBusyTimeout(conn: Database.Database): void {
  const busyTimeoutMs = busyTimeoutSetAside.get(conn);
  if (busyTimeoutMs === undefined) return;
  busyTimeoutSetAside.delete(conn);
  cached(conn, `PRAGMA busy_timeout = ${busyTimeoutMs}`).run();
}

/** A SQLite statement prepared once per connection (outside a write session, with the busy timeout in force). */
export function prepare(conn: Database.Database, text: string): Database.Statement {
  if (!inWriteSession.has(conn)) restoreBusyTimeout(conn);
  return cached(conn, text);
}

/** A SQLite statement prepared once per connection, run as it is (the busy timeout left as it stands). */
export function cached(conn: Database.Database, text: string): Database.Statement {
  let cache = preparedStatements.get(conn);
  if (cache === undefined) preparedStatements.set(conn, (cache = new Map()));
  let prepared = cache.get(text);
  if (prepared === undefined) cache.set(text, (prepared = conn.prepare(text)));
  return prepared;
}

/** Where a statement runs: a Knex instance or transaction, or a driver connection already held. */
export type Runner = Knex | Knex.Transaction | Connection;

function isKnex(runner: Runner): runner is Knex | Knex.Transaction {
  return typeof runner === 'function';
}

/**
 * The driver connection behind a runner, for `work`: a connection as it is;
 * a transaction's own connection; or one from the pool, given back after.
 */
export async function withConnection<T>(runner: Runner, work: (conn: Connection) => Promise<T>): Promise<T> {
  if (!isKnex(runner)) return work(runner);
  const conn = (await runner.client.acquireConnection()) as Connection;
  try {
    return await work(conn);
  } finally {
    await runner.client.releaseConnection(conn);
  }
}
