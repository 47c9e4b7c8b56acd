import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Knex } from 'knex';
import { SeatctlError } from '../errors.js';
import type { Engine } from './engine.js';
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
}

/** An open seatctl database: hand it to the library's functions, close it when done. */
export interface SeatDatabase {
  readonly knex: Knex;
  readonly engine: Engine;
  readonly target: DatabaseTarget;
  close(): Promise<void>;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

/**
 * Opens a database handle. Nothing connects until the first query; connection
 * errors surface there as `unavailable` SeatctlErrors.
 */
export async function openDatabase(options: DatabaseOptions = {}): Promise<SeatDatabase> {
  const target = parseDatabaseUrl(options.url, options.cwd);
  let knex: Knex;
  let engine: Engine;
  if (target.engine === 'sqlite') {
    const create = options.create ?? false;
    if (!create && target.filename !== ':memory:' && !existsSync(target.filename)) {
      if (!existsSync(dirname(target.filename))) {
        throw new SeatctlError(
          'unavailable',
          `cannot open the database ${target.display}: the directory ${dirname(target.filename)} does not exist`,
        );
      }
      throw new SeatctlError(
        'schema',
        `there is no seatctl database at ${target.display}: run seatctl migrate (or seatctl seed) to create it, or pass --db`,
      );
    }
    // Loaded on demand so a PostgreSQL run never loads SQLite, and the reverse.
    const { createSqliteKnex, createSqliteEngine } = await import('./sqlite.js');
    const sqliteOptions = { busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS, create };
    knex = createSqliteKnex(target, sqliteOptions);
    engine = createSqliteEngine(target, sqliteOptions);
  } else {
    const { createPostgresKnex, createPostgresEngine } = await import('./postgres.js');
    const pgOptions = { connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS };
    knex = createPostgresKnex(target, pgOptions);
    engine = createPostgresEngine(target, pgOptions);
  }
  return {
    knex,
    engine,
    target,
    close: () => knex.destroy(),
  };
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
export async function guard<T>(db: SeatDatabase, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof SeatctlError) throw error;
    throw db.engine.translateError(error) ?? error;
  }
}
