import type { Knex } from 'knex';
import type { SeatctlError } from '../errors.js';
import type Database from 'better-sqlite3';
import type { ReleaseScope, SeatStore } from './seat-store.js';

/** One released lock, with the holder it had before the release. */
export interface ReleasedLock {
  /** The event's name (engines leave it empty; the release fills it in). */
  event: string;
  eventId: number;
  seatId: number;
  seat: string;
  lockedBy: string;
  lockedUntil: Date;
  /** The token of the lock that was released; null where the mapping has no lock token. */
  lockToken: number | null;
  /** Null when previewed by a dry run. */
  releasedAt: Date | null;
}

/** What a release batch did, when its seats are not read back. */
export interface BatchCount {
  released: number;
  lastSeatId: number;
}

/**
 * Where SQLite and PostgreSQL differ, behind one shape. SQL fragments are
 * strings to splice into queries shared by both engines; whole operations
 * whose best SQL differs (the release batch) are functions.
 */
export interface Engine {
  readonly name: 'sqlite' | 'postgres';
  /** The database clock, read at the moment the statement (or row) is evaluated. */
  readonly now: string;
  /** PostgreSQL: send seat statements as named prepared statements (parsed and planned once per connection). */
  readonly namedStatements?: boolean;
  /** A bound parameter (`?` or `:name`) read as an instant. */
  castInstant(param: string): string;
  /** `instant + ms`, where `ms` is SQL evaluating to a number of milliseconds. */
  addMs(instant: string, ms: string): string;
  /** The smaller of two instants. */
  least(a: string, b: string): string;
  /** The character with this code point. */
  chr(code: string): string;
  /** A Date as the engine binds it for an instant column. */
  bindInstant(date: Date): Date | number;
  /** An instant column's value as a Date. */
  readInstant(value: unknown): Date;
  /** Adds the table's instant column (UTC, millisecond precision) to a schema builder. */
  instantColumn(table: Knex.CreateTableBuilder, name: string): Knex.ColumnBuilder;
  /** The rows of a `knex.raw` result (drivers shape it differently). */
  rows<T = any>(result: unknown): T[];
  /** Locks the selected rows against other writers until the transaction ends, where the engine can. */
  forUpdate(query: Knex.QueryBuilder): Knex.QueryBuilder;
  /** Runs `work` in a transaction that holds the write lock (or row locks) from its first statement. */
  writeTransaction<T>(knex: Knex, work: (trx: Knex.Transaction) => Promise<T>): Promise<T>;
  /**
   * SQLite: the same on the driver's connection, without Knex's transaction
   * machinery — the hot path of lock, book and unlock (one statement each on
   * PostgreSQL, which has none). `work` runs its statements at once, in a
   * savepoint rolled back when it throws; the result comes once committed.
   */
  writeSession?<T>(knex: Knex, work: (conn: Database.Database) => T): Promise<T>;
  /**
   * Locks per release batch when the caller doesn't choose: each batch is one
   * commit, and what a commit costs depends on the engine (and on SQLite, on
   * the journal mode the database's owner chose).
   */
  defaultBatchSize(knex: Knex): Promise<number>;
  /** Releases one batch of expired locks, writes their history, and returns them. */
  releaseBatch(knex: Knex, store: SeatStore, scope: ReleaseScope): Promise<ReleasedLock[]>;
  /** The same batch, returning only how many it released and the last seat's id (the next batch starts after it). */
  releaseBatchCount(knex: Knex, store: SeatStore, scope: ReleaseScope): Promise<BatchCount>;
  /** A driver error turned into a SeatctlError, or undefined when it isn't one we understand. */
  translateError(error: unknown): SeatctlError | undefined;
}
