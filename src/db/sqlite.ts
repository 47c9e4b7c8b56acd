import { closeSync, constants, existsSync, openSync, statSync, utimesSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import knexFactory, { type Knex } from 'knex';
import BetterSqliteClient from 'knex/lib/dialects/better-sqlite3/index.js';
import SqliteTransaction from 'knex/lib/dialects/sqlite3/execution/sqlite-transaction.js';
import { SeatctlError } from '../errors.js';
import { DEFAULT_BATCH_SIZE, ROLLBACK_JOURNAL_BATCH_SIZE } from './batch-size.js';
import type { Engine } from './engine.js';
import { abortedError, cached, callLimits, inWriteSession, restoreBusyTimeout, setBusyTimeoutAside, throwIfAborted } from './query.js';
import { releaseBatchCountSqlite, releaseBatchSqlite, SQLITE_NOW } from './sqlite-release.js';
import type { SqliteTarget } from './url.js';

export interface SqliteOptions {
  /** How long a statement waits for another process's write lock before failing. */
  busyTimeoutMs: number;
  /** Create the file (owner-only) when it does not exist. */
  create: boolean;
}

interface ConnectionSettings extends SqliteOptions {
  filename: string;
}

// Knex begins every SQLite transaction with a plain BEGIN: a transaction that
// reads first then writes can then fail with SQLITE_BUSY at once, without
// waiting for the busy timeout. seatctl only opens transactions to write, so
// they all take the write lock up front and wait for it (beginImmediate).
class ImmediateTransaction extends (SqliteTransaction as new (...args: unknown[]) => any) {
  begin(conn: Database.Database) {
    return beginImmediate(conn, this.client.connectionSettings as ConnectionSettings);
  }
}

// A monotonic clock without the global `performance`, whose first use loads perf_hooks (a few ms of every start).
const monotonicMs = () => Number(process.hrtime.bigint() / 1_000_000n);

/**
 * BEGIN IMMEDIATE, retried every millisecond (without blocking the event
 * loop) until the busy timeout. SQLite's own busy handler backs off to 100 ms
 * sleeps and keeps missing the short gaps a long release leaves between its
 * batches; a waiter also marks the waiting room, and the release then makes
 * those gaps long enough. The busy timeout is set aside (0) for the polling;
 * a write session on a WAL database keeps it aside — nothing in it can be
 * refused for a lock, and the next session needs no PRAGMA — while anything
 * else (a rollback journal's commit must wait for readers) gets it back first.
 */
async function beginImmediate(conn: Database.Database, settings: ConnectionSettings, session = false): Promise<void> {
  for (let deadline: number | undefined; ; ) {
    const busy = beginImmediateNow(conn, settings, session);
    if (busy === undefined) return;
    try {
      deadline ??= monotonicMs() + settings.busyTimeoutMs;
      if (monotonicMs() >= deadline) throw busy;
      throwIfAborted();
      markWaitingRoom(settings.filename);
      await sleep(1);
    } catch (error) {
      restoreBusyTimeout(conn);
      throw error;
    }
  }
}

/** Connections on a database in WAL mode. */
const walConnections = new WeakSet<Database.Database>();

/**
 * One BEGIN IMMEDIATE, at once, with the busy timeout set aside (see
 * beginImmediate, which polls with it). Returns undefined once begun, or the
 * SQLITE_BUSY error while another connection holds the write lock (the
 * timeout then stays aside for the next try).
 */
function beginImmediateNow(conn: Database.Database, { busyTimeoutMs }: ConnectionSettings, session: boolean): unknown {
  setBusyTimeoutAside(conn, busyTimeoutMs);
  try {
    // Prepared once: exec() would parse it again on every call.
    cached(conn, 'BEGIN IMMEDIATE').run();
  } catch (error) {
    if ((error as { code?: string }).code === 'SQLITE_BUSY') return error;
    restoreBusyTimeout(conn);
    throw error;
  }
  if (!(session && walConnections.has(conn))) restoreBusyTimeout(conn);
  return undefined;
}

/**
 * Write sessions (lock, book, unlock) share write transactions: a group
 * commit. The first call takes the connection and BEGIN IMMEDIATE; calls that
 * arrive while it is open (a busy server: HTTP requests read in the same turn
 * of the event loop, or while the group waits for the write lock) join it, one
 * after another, each inside its own SAVEPOINT, so a call that is refused or
 * fails is rolled back alone. When no call is left, in the next turn of the
 * event loop, one COMMIT (one sync of the WAL) makes them all durable; each
 * call returns only then. A lone call costs a SAVEPOINT and a RELEASE more.
 *
 * A call's work is synchronous (better-sqlite3 is): once the group has begun
 * and no call waits before it, a call runs at once, in its caller's turn,
 * with nothing awaited between its statements. A group begins at once too
 * when the connection is parked (the last group kept it; see
 * SeatctlSqliteClient) and the write lock is free; otherwise it waits for the
 * pool and for the lock, and its calls queue behind it.
 */
class CommitGroup {
  private conn: Database.Database | undefined; // once BEGIN has run
  /** Settles once BEGIN IMMEDIATE has run; every call fails with its error if it failed. */
  private readonly begun: Promise<void>;
  /** Settles when the last call queued so far has had its turn: the next one runs then. */
  private queue: Promise<void>;
  /** Calls that joined and have not finished. */
  private active = 0;
  /** Calls in the queue: while there are any, a new call queues behind them. */
  private queued = 0;
  /** Whether any call's work is in the transaction (else it ends with ROLLBACK). */
  private wrote = false;
  /** A call's work could not be rolled back to its savepoint: the whole transaction must go. */
  private broken: unknown;
  private ended = false;
  private readonly committed: Promise<void>;
  private settle!: (error?: unknown) => void;

  constructor(
    private readonly knex: Knex,
    private readonly settings: ConnectionSettings,
    private readonly forget: () => void,
  ) {
    this.committed = new Promise<void>((resolve, reject) => {
      this.settle = (error?: unknown) => (error === undefined ? resolve() : reject(error));
    });
    this.committed.catch(() => {});
    this.begun = this.start();
    this.queue = this.begun.catch(() => {});
  }

  private get client(): Partial<SeatctlSqliteClient> {
    return this.knex.client as Partial<SeatctlSqliteClient>;
  }

  /** BEGIN IMMEDIATE at once on a parked connection when the write lock is free; else waits for both. */
  private start(): Promise<void> {
    const parked = this.client.takeParked?.();
    if (parked !== undefined) {
      try {
        if (beginImmediateNow(parked, this.settings, true) === undefined) {
          this.began(parked);
          return Promise.resolve();
        }
      } catch (error) {
        return this.abandon(error, parked);
      }
    }
    // The wait for the write lock belongs to the group, not to the call that
    // opened it: that call's signal stops its own wait (in run), not the others'.
    return callLimits.exit(() => this.begin(parked));
  }

  private async begin(held: Database.Database | undefined): Promise<void> {
    let conn = held;
    try {
      conn ??= (await this.knex.client.acquireConnection()) as Database.Database;
      await beginImmediate(conn, this.settings, true);
    } catch (error) {
      return this.abandon(error, conn);
    }
    this.began(conn);
  }

  private began(conn: Database.Database): void {
    this.conn = conn;
    inWriteSession.add(conn);
  }

  /** A group that never began: no later call may join it, and the connection goes back to the pool. */
  private async abandon(error: unknown, conn: Database.Database | undefined): Promise<never> {
    this.ended = true;
    this.forget();
    this.settle();
    if (conn !== undefined) await this.knex.client.releaseConnection(conn);
    throw error;
  }

  /** False once the group has started to end: a later call opens another. */
  get open(): boolean {
    return !this.ended;
  }

  run<T>(work: (conn: Database.Database) => T): Promise<T> {
    const signal = callLimits.getStore()?.signal;
    if (this.conn === undefined || this.queued > 0) return this.runQueued(work, signal);
    // Nobody before it: the call runs now. Even a call stopped already has
    // joined: the group it may have opened must still end.
    this.active++;
    try {
      if (signal?.aborted) throw abortedError(signal);
      const result = this.step(work);
      return this.committed.then(() => result);
    } catch (error) {
      return Promise.reject(error);
    } finally {
      this.leave();
    }
  }

  /** A call that waits for BEGIN, or for the calls queued before it. */
  private async runQueued<T>(work: (conn: Database.Database) => T, signal: AbortSignal | undefined): Promise<T> {
    this.active++;
    this.queued++;
    const turn = this.queue.then(() => this.begun);
    const call = untilAborted(turn, signal).then(() => this.step(work));
    // A call stopped while it waits leaves the queue at once, but the next
    // one still waits for the calls before it.
    this.queue = Promise.allSettled([turn, call]).then(() => {
      this.queued--;
    });
    let result: T;
    try {
      result = await call;
    } finally {
      this.leave();
    }
    await this.committed;
    return result;
  }

  /** A call has finished: the last one out ends the group in the next turn of the event loop. */
  private leave(): void {
    if (--this.active === 0) setImmediate(() => this.end());
  }

  /** One call, inside its own savepoint. */
  private step<T>(work: (conn: Database.Database) => T): T {
    const conn = this.conn!;
    // A statement error that rolled the whole transaction back (SQLite does for
    // a full disk, an I/O error): nothing more may run in it.
    if (!conn.inTransaction || this.broken !== undefined) throw rolledBack();
    cached(conn, 'SAVEPOINT seatctl_call').run();
    try {
      const result = work(conn);
      cached(conn, 'RELEASE seatctl_call').run();
      this.wrote = true;
      return result;
    } catch (error) {
      try {
        if (conn.inTransaction) {
          cached(conn, 'ROLLBACK TO seatctl_call').run();
          cached(conn, 'RELEASE seatctl_call').run();
        }
      } catch (rollbackError) {
        // Its half-done work is still in the transaction: nothing of it may commit.
        this.broken = rollbackError;
      }
      throw error;
    }
  }

  /** No call left: once BEGIN has run, one COMMIT; the calls that wrote return then (or fail with it). */
  private end(): void {
    if (this.active > 0 || this.ended) return;
    this.ended = true;
    this.forget();
    this.begun.then(
      () => this.finish(),
      () => {},
    );
  }

  private finish(): void {
    const conn = this.conn!;
    try {
      if (!conn.inTransaction || this.broken !== undefined) throw rolledBack();
      cached(conn, this.wrote ? 'COMMIT' : 'ROLLBACK').run();
      this.settle();
    } catch (error) {
      this.settle(error);
      try {
        if (conn.inTransaction) cached(conn, 'ROLLBACK').run();
      } catch {
        // Nothing more to do here: SQLite rolls the transaction back when the connection closes.
      }
    } finally {
      inWriteSession.delete(conn);
      if (this.client.park) this.client.park(conn);
      else void this.knex.client.releaseConnection(conn);
    }
  }
}

const rolledBack = () =>
  new SeatctlError('unavailable', 'the write transaction failed (a full disk or an I/O error) and was rolled back: nothing was written; try again');

/** `promise`, or the `aborted` error as soon as `signal` fires. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(abortedError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortedError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The group each Knex instance's write sessions join while it is open. */
const commitGroups = new WeakMap<Knex, CommitGroup>();

function writeSession<T>(knex: Knex, settings: ConnectionSettings, work: (conn: Database.Database) => T): Promise<T> {
  let group = commitGroups.get(knex);
  if (group === undefined || !group.open) {
    const created: CommitGroup = new CommitGroup(knex, settings, () => {
      if (commitGroups.get(knex) === created) commitGroups.delete(knex);
    });
    commitGroups.set(knex, (group = created));
  }
  return group.run(work);
}

/** A file beside the database whose modification time says "a writer is waiting for the lock". */
const waitingRoom = (filename: string) => `${filename}-waiting`;

function markWaitingRoom(filename: string): void {
  if (filename === ':memory:') return;
  const room = waitingRoom(filename);
  const now = new Date();
  try {
    utimesSync(room, now, now);
  } catch {
    try {
      closeSync(openSync(room, constants.O_CREAT | constants.O_WRONLY, 0o600));
    } catch {
      // A read-only directory: waiters still get the lock, only less promptly.
    }
  }
}

function writerWaiting(filename: string): boolean {
  if (filename === ':memory:') return false;
  const stat = statSync(waitingRoom(filename), { throwIfNoEntry: false });
  return stat !== undefined && Date.now() - stat.mtimeMs < WAITING_ROOM_FRESH_MS;
}

const WAITING_ROOM_FRESH_MS = 50;
/** Long enough for a waiter polling every millisecond to take the lock. */
const GAP_FOR_WAITERS_MS = 3;

class SeatctlSqliteClient extends (BetterSqliteClient as new (config: unknown) => any) {
  /**
   * The connection the last write session kept checked out of the pool, so
   * the next one can begin at once (the pool hands a connection out only
   * asynchronously). Anyone else who asks the pool for a connection gets it:
   * it goes back to the pool first.
   */
  private parked: Database.Database | undefined;
  /** destroy() has begun: it waits for every connection to come back, so none is parked any more. */
  private closing = false;

  transaction(...args: unknown[]) {
    return new ImmediateTransaction(this, ...args);
  }

  /** The parked connection, now the caller's, if there is one. */
  takeParked(): Database.Database | undefined {
    const conn = this.parked;
    this.parked = undefined;
    return conn;
  }

  /** A write session is done with `conn`: kept for the next one, unless someone waits for it. */
  park(conn: Database.Database): void {
    if (this.closing || this.pool === undefined || this.pool.numPendingAcquires() > 0) void this.releaseConnection(conn);
    else this.parked = conn;
  }

  acquireConnection() {
    this.unpark();
    return super.acquireConnection();
  }

  destroy(callback?: unknown) {
    this.closing = true;
    this.unpark();
    return super.destroy(callback);
  }

  // knex.initialize() after destroy() makes a new pool.
  initializePool(config: unknown) {
    this.closing = false;
    return super.initializePool(config);
  }

  private unpark(): void {
    const conn = this.takeParked();
    if (conn !== undefined) void this.releaseConnection(conn);
  }

  // Knex's own queries run with the busy timeout in force.
  _query(connection: Database.Database, obj: unknown) {
    restoreBusyTimeout(connection);
    return super._query(connection, obj);
  }

  async acquireRawConnection() {
    const { filename, busyTimeoutMs, create } = this.connectionSettings as ConnectionSettings;
    const inMemory = filename === ':memory:';
    const created = create && !inMemory && createOwnerOnlyFile(filename);
    const nativeBinding = betterSqliteAddon();
    const db = new Database(filename, { fileMustExist: !inMemory, timeout: busyTimeoutMs, ...(nativeBinding && { nativeBinding }) });
    try {
      // WAL lets readers run while a writer commits; -wal and -shm files are
      // created with the database file's (owner-only) permissions. The journal
      // mode is a lasting property of the file: seatctl sets it only on a
      // database it creates, never on one an app already has.
      if (created) db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      // A committed booking must survive a power cut, not only a crash.
      db.pragma('synchronous = FULL');
      // A small page cache: seatctl reads each page once or twice per run,
      // and a release of a million locks must stay within a small footprint.
      db.pragma('cache_size = -4000');
      if (db.pragma('journal_mode', { simple: true }) === 'wal') walConnections.add(db);
    } catch (error) {
      db.close();
      throw error;
    }
    return db;
  }
}

let addonPath: string | null | undefined;

/**
 * better-sqlite3's compiled addon, named outright: left to itself, it asks the
 * `bindings` package, which tries a dozen places (about 4 ms of every CLI
 * start). Only in the bundled CLI, where `require` exists; elsewhere, or if
 * the addon isn't where a normal install puts it, better-sqlite3 searches.
 */
function betterSqliteAddon(): string | undefined {
  if (addonPath === undefined) {
    addonPath = null;
    if (typeof require === 'function') {
      try {
        const file = join(dirname(require.resolve('better-sqlite3/package.json')), 'build', 'Release', 'better_sqlite3.node');
        if (existsSync(file)) addonPath = file;
      } catch {
        // Not resolvable from here: better-sqlite3 finds its own.
      }
    }
  }
  return addonPath ?? undefined;
}

/** Creates the database file readable and writable by its owner only, if it is missing; true if it did. */
function createOwnerOnlyFile(filename: string): boolean {
  try {
    closeSync(openSync(filename, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return false;
  }
}

export function createSqliteKnex(target: SqliteTarget, options: SqliteOptions): Knex {
  return knexFactory({
    client: SeatctlSqliteClient,
    connection: { filename: target.filename, busyTimeoutMs: options.busyTimeoutMs, create: options.create },
    useNullAsDefault: true,
    compileSqlOnError: false,
    log: { warn() {}, error() {}, debug() {}, deprecate() {} },
    pool: { min: 1, max: 1 },
  } as unknown as Knex.Config);
}

export function createSqliteEngine(target: SqliteTarget, options: SqliteOptions): Engine {
  // Between batches the write lock is free: if a writer waits, let it in.
  const letWaitersIn = async () => {
    if (writerWaiting(target.filename)) await sleep(GAP_FOR_WAITERS_MS);
  };
  return {
    name: 'sqlite',
    now: SQLITE_NOW,
    castInstant: (param) => param,
    addMs: (instant, ms) => `(${instant} + ${ms})`,
    least: (a, b) => `min(${a}, ${b})`,
    chr: (code) => `char(${code})`,
    bindInstant: (date) => date.getTime(),
    readInstant: (value) => new Date(value as number),
    instantColumn: (table, name) => table.bigInteger(name),
    forUpdate: (query) => query,
    rows: (result) => result as any[],
    writeTransaction: (knex, work) => knex.transaction(work),
    writeSession: (knex, work) => writeSession(knex, { ...options, filename: target.filename }, work),

    // WAL commits append to one file with one sync: short batches cost little and
    // keep writers waiting at most a batch. In a rollback-journal database (Django's
    // and Rails' default) every commit writes and syncs a journal too: batches 25
    // times bigger keep that cost to a few commits per 100,000 locks.
    async defaultBatchSize(knex) {
      const [row] = (await knex.raw('PRAGMA journal_mode')) as Array<{ journal_mode: string }>;
      return row?.journal_mode === 'wal' || row?.journal_mode === 'memory' ? DEFAULT_BATCH_SIZE : ROLLBACK_JOURNAL_BATCH_SIZE;
    },

    async releaseBatch(knex, store, scope) {
      const released = await releaseBatchSqlite(knex, store, scope);
      await letWaitersIn();
      return released;
    },

    async releaseBatchCount(knex, store, scope) {
      const count = await releaseBatchCountSqlite(knex, store, scope);
      await letWaitersIn();
      return count;
    },

    translateError: (error) => translateSqliteError(error, target, options),
  };
}

function translateSqliteError(error: unknown, target: SqliteTarget, options: SqliteOptions): SeatctlError | undefined {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== 'string') return undefined;
  const where = target.display;
  const unavailable = (message: string) => new SeatctlError('unavailable', message, { cause: error });
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return unavailable(
      `the database ${where} is busy: another process held its write lock for longer than the busy timeout (${options.busyTimeoutMs} ms); try again later or raise --busy-timeout`,
    );
  }
  if (code === 'SQLITE_READONLY_DIRECTORY') {
    return unavailable(
      `cannot open the database ${where}: SQLite must create ${basename(target.filename)}-wal and -shm beside it, but its directory is not writable by this user (run seatctl as the database's owner, or make the directory writable)`,
    );
  }
  if (code.startsWith('SQLITE_READONLY')) {
    return unavailable(
      `cannot write to the database ${where}: it is read-only (check the permissions of the file and its directory)`,
    );
  }
  if (code.startsWith('SQLITE_CANTOPEN'))
    return unavailable(`cannot open the database ${where}: ${whyCannotOpen(target.filename)}`);
  if (code === 'SQLITE_ERROR' && /no such table/.test(String((error as Error).message))) {
    return new SeatctlError('schema', `the database ${where} is not set up for seatctl: run seatctl migrate`, {
      cause: error,
    });
  }
  if (code === 'SQLITE_NOTADB')
    return unavailable(`cannot open the database ${where}: the file is not a SQLite database`);
  if (code.startsWith('SQLITE_CORRUPT'))
    return unavailable(`the database ${where} is corrupt (restore it from a backup)`);
  if (code === 'SQLITE_FULL') return unavailable(`cannot write to the database ${where}: the disk is full`);
  if (code.startsWith('SQLITE_IOERR'))
    return unavailable(`cannot read or write the database ${where}: input/output error (${code})`);
  if (code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_AUTH')) {
    return unavailable(`cannot open the database ${where}: permission denied`);
  }
  switch (code) {
    case 'ENOENT':
      return unavailable(`cannot open the database ${where}: the directory ${dirname(target.filename)} does not exist`);
    case 'EACCES':
    case 'EPERM':
      return unavailable(`cannot open the database ${where}: permission denied`);
    case 'EROFS':
      return unavailable(`cannot create the database ${where}: the file system is read-only`);
    case 'ENOTDIR':
      return unavailable(`cannot open the database ${where}: a part of the path is not a directory`);
    case 'ENOSPC':
      return unavailable(`cannot create the database ${where}: the disk is full`);
    default:
      return undefined;
  }
}

function whyCannotOpen(filename: string): string {
  try {
    const stat = statSync(filename);
    return stat.isDirectory()
      ? 'it is a directory, not a database file'
      : 'the file or its directory is not accessible';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      try {
        statSync(dirname(filename));
        return 'the file does not exist';
      } catch {
        return `the directory ${dirname(filename)} does not exist`;
      }
    }
    return 'the file is not accessible';
  }
}
