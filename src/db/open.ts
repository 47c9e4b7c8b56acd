import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Knex } from 'knex';
import { SeatctlError, usageError } from '../errors.js';
import { parseConfig, type SeatctlConfig } from '../mapping/config.js';
import { defaultMapping, resolveMapping, type SeatMapping } from '../mapping/mapping.js';
import type { Engine } from './engine.js';
import { abortedError, callLimits } from './query.js';
import { parseDatabaseUrl, type DatabaseTarget } from './url.js';

export interface DatabaseOptions {
  /** A file path, `sqlite:<path>`, `file:<path>`, or `postgres://…`. Default: ./seatctl.db */
  url?: string;
  /** SQLite: how long to wait for another process's write lock. Default 5000. */
  busyTimeoutMs?: number;
  /** PostgreSQL: how long to wait for the server to accept a connection. Default 5000. */
  connectTimeoutMs?: number;
  /** SQLite: create the database file (owner-only) when it is missing. Default false. */
  create?: boolean;
  /** Directory a relative SQLite path is resolved against. Default: the process's. */
  cwd?: string;
  /**
   * Where the seats live, as in seatctl.config.json (`{ preset: 'django', app:
   * 'reservations' }`…). Default: seatctl's own schema.
   */
  mapping?: SeatctlConfig;
  /** What to call the mapping in messages (the config file's path). Default: "the mapping option". */
  mappingSource?: string;
  /**
   * PostgreSQL: the pool seatctl opens. Default `{ max: 10, idleTimeoutMillis: 30000 }`
   * for a server calling the library (the CLI opens at most 4).
   */
  pool?: { max?: number; idleTimeoutMillis?: number };
  /**
   * PostgreSQL: the application's own pg.Pool, instead of a pool of seatctl's:
   * every call checks a client out of it and gives it back; close() leaves it open.
   */
  pgPool?: import('pg').Pool;
  /**
   * The application's own Knex instance (SQLite or PostgreSQL), instead of one
   * of seatctl's; close() leaves it open. `url` still names the database in messages.
   */
  knex?: Knex;
  /**
   * PostgreSQL: send lock, book, unlock and the other seat statements as named
   * prepared statements, parsed and planned once per server connection instead
   * of on every call (half the time of a lock on a server doing nothing else).
   * Default true. Behind PgBouncer in transaction pooling before 1.21 a
   * connection that meets an unknown or taken name goes on unnamed; pass
   * false to never name them.
   */
  preparedStatements?: boolean;
}

export const DEFAULT_LIBRARY_POOL = { max: 10, idleTimeoutMillis: 30_000 };

/** An open seatctl database: hand it to the library's functions, close it when done. */
export interface SeatDatabase {
  readonly knex: Knex;
  readonly engine: Engine;
  readonly target: DatabaseTarget;
  /** Where the seats live: seatctl's own schema, or an app's tables. */
  readonly mapping: SeatMapping;
  /** close() was called: every further call fails with a `closed` SeatctlError. */
  readonly closed: boolean;
  /** Runs a library call, counted as in flight until it settles. */
  track<T>(operation: () => Promise<T>): Promise<T>;
  /** Refuses new calls, waits for those in flight, then closes the connections; calling it again is harmless. */
  close(): Promise<void>;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

/**
 * Opens a database handle. Nothing connects until the first query; connection
 * errors surface there as `unavailable` SeatctlErrors.
 */
export async function openDatabase(options: DatabaseOptions = {}): Promise<SeatDatabase> {
  const { target, mapping } = describeDatabase(options);
  let knex: Knex;
  let engine: Engine;
  if (target.engine === 'sqlite') {
    // An app's database is the app's to create.
    const create = (options.create ?? false) && mapping.owned;
    if (!create && target.filename !== ':memory:' && !existsSync(target.filename)) {
      if (!existsSync(dirname(target.filename))) {
        throw new SeatctlError(
          'unavailable',
          `cannot open the database ${target.display}: the directory ${dirname(target.filename)} does not exist`,
        );
      }
      throw new SeatctlError(
        'schema',
        mapping.owned
          ? `there is no seatctl database at ${target.display}: run seatctl migrate (or seatctl seed) to create it`
          : `there is no database at ${target.display}: the app's database must exist before seatctl can use it`,
      );
    }
    // Loaded on demand so a PostgreSQL run never loads SQLite, and the reverse.
    const { createSqliteKnex, createSqliteEngine } = await import('./sqlite.js');
    const sqliteOptions = { busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS, create };
    knex = options.knex ?? createSqliteKnex(target, sqliteOptions);
    engine = createSqliteEngine(target, sqliteOptions);
  } else {
    const { createPostgresKnex, createPostgresKnexOnPool, createPostgresEngine } = await import('./postgres.js');
    const pool = { ...DEFAULT_LIBRARY_POOL, ...options.pool };
    if (!Number.isSafeInteger(pool.max) || pool.max < 1) throw usageError('the pool size must be a whole number of at least 1');
    const pgOptions = {
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      pool,
      namedStatements: options.preparedStatements !== false,
    };
    knex = options.knex ?? (options.pgPool ? createPostgresKnexOnPool(options.pgPool) : createPostgresKnex(target, pgOptions));
    engine = createPostgresEngine(target, pgOptions);
  }
  const shared = options.knex !== undefined || options.pgPool !== undefined;
  return handle(knex, engine, target, mapping, shared);
}

/**
 * A handle that counts the calls in flight: close() refuses new calls, waits
 * for those in flight to finish, then closes the connections (unless they are
 * the application's own).
 */
function handle(knex: Knex, engine: Engine, target: DatabaseTarget, mapping: SeatMapping, shared: boolean): SeatDatabase {
  let closing: Promise<void> | undefined;
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const db: SeatDatabase = {
    knex,
    engine,
    target,
    mapping,
    get closed() {
      return closing !== undefined;
    },
    async track<T>(operation: () => Promise<T>): Promise<T> {
      inFlight++;
      try {
        return await operation();
      } finally {
        if (--inFlight === 0) drained?.();
      }
    },
    close: () =>
      (closing ??= (async () => {
        if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
        if (!shared) await knex.destroy();
      })()),
  };
  return db;
}

/** Where a database is and how its seats are mapped, without opening it. */
export function describeDatabase(options: DatabaseOptions): { target: DatabaseTarget; mapping: SeatMapping } {
  const target = parseDatabaseUrl(options.url, options.cwd);
  const source = options.mappingSource ?? 'the mapping option';
  const mapping =
    options.mapping === undefined
      ? defaultMapping(target.engine)
      : resolveMapping(parseConfig(options.mapping, source), target.engine, source);
  return { target, mapping };
}

/** Opens a database, runs `work` with it, and always closes it, so the process can end. */
export async function withDatabase<T>(options: DatabaseOptions, work: (db: SeatDatabase) => Promise<T>): Promise<T> {
  const db = await openDatabase(options);
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

/** Runs a library operation, turning the drivers' errors into SeatctlErrors. */
export async function guard<T>(db: SeatDatabase, operation: () => Promise<T>, call: CallOptions = {}): Promise<T> {
  if (db.closed) throw new SeatctlError('closed', 'the database handle is closed: open another one');
  const signal = callSignal(call);
  if (signal?.aborted) throw abortedError(signal);
  const run = () => db.track(operation);
  try {
    if (signal === undefined) return await run();
    const cancel =
      db.engine.name === 'postgres' ? (pid: number) => db.knex.raw('SELECT pg_cancel_backend(?)', [pid]) : undefined;
    return await callLimits.run({ signal, cancel }, run);
  } catch (error) {
    if (signal?.aborted && !(error instanceof SeatctlError && error.kind !== 'unavailable')) throw abortedError(signal);
    if (error instanceof SeatctlError) throw error;
    throw db.engine.translateError(error) ?? error;
  }
}

/** What every library call may take: a signal that stops it, and a time limit. */
export interface CallOptions {
  /** Aborts the call: before its first statement, or (PostgreSQL) by cancelling the statement running. */
  signal?: AbortSignal;
  /** The call fails with an `aborted` SeatctlError once this many milliseconds have passed. */
  timeoutMs?: number;
}

function callSignal(call: CallOptions): AbortSignal | undefined {
  if (call.timeoutMs !== undefined && (!Number.isSafeInteger(call.timeoutMs) || call.timeoutMs < 1)) {
    throw usageError('timeoutMs must be a whole number of milliseconds, at least 1');
  }
  const timeout = call.timeoutMs === undefined ? undefined : AbortSignal.timeout(call.timeoutMs);
  if (call.signal && timeout) return AbortSignal.any([call.signal, timeout]);
  return call.signal ?? timeout;
}
