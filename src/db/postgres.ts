import knexFactory, { type Knex } from 'knex';
import type pg from 'pg';
import { SeatctlError } from '../errors.js';
import { DEFAULT_BATCH_SIZE } from './batch-size.js';
import type { Engine } from './engine.js';
import { pgInterval, releaseBatchCountPostgres, releaseBatchPostgres } from './postgres-release.js';
import type { PostgresTarget } from './url.js';

export interface PostgresOptions {
  /** How long to wait for the server to accept a connection. */
  connectTimeoutMs: number;
  /** Connections at most, and how long one may sit idle before it closes. */
  pool: { max: number; idleTimeoutMillis: number };
  /** Named prepared statements for the seat statements (not through PgBouncer's transaction pooling before 1.21). */
  namedStatements?: boolean;
}

/**
 * Knex over the application's own pg.Pool: connections come from it and go
 * back to it, and seatctl never ends it. Knex's pool of its own is bypassed.
 */
export function createPostgresKnexOnPool(pool: pg.Pool): Knex {
  const knex = knexFactory({ client: 'pg', connection: {}, version: '13', compileSqlOnError: false, log: silentLog });
  const client = knex.client as { acquireConnection(): Promise<unknown>; releaseConnection(c: unknown): Promise<void>; destroy(): Promise<void> };
  client.acquireConnection = () => pool.connect();
  client.releaseConnection = async (conn) => (conn as pg.PoolClient).release();
  client.destroy = async () => undefined;
  return knex;
}

export function createPostgresKnex(target: PostgresTarget, options: PostgresOptions): Knex {
  return knexFactory({
    client: 'pg',
    // Never a connection string: Knex would hand an unparsable one to SQLite.
    connection: {
      host: target.host,
      port: target.port,
      ...(target.options === undefined ? {} : { options: target.options }),
      user: target.user,
      password: target.password,
      database: target.database,
      ssl: target.ssl,
      application_name: target.applicationName ?? 'seatctl',
      connectionTimeoutMillis: options.connectTimeoutMs,
    },
    // Must give up on an unreachable server within the connect timeout rather than Knex's 60 s.
    pool: { min: 0, max: options.pool.max, idleTimeoutMillis: options.pool.idleTimeoutMillis },
    acquireConnectionTimeout: options.connectTimeoutMs + 1000,
    // Skips Knex's `select version()` round trip on the first connection.
    version: '13',
    compileSqlOnError: false,
    log: silentLog,
  });
}

/** Knex logs pool errors to the console itself; seatctl reports them once, in its own words. */
export const silentLog = { warn() {}, error() {}, debug() {}, deprecate() {} };


const RETRYABLE = new Set(['40P01', '40001']); // deadlock detected, serialization failure

export function createPostgresEngine(target: PostgresTarget, options: PostgresOptions): Engine {
  return {
    name: 'postgres',
    namedStatements: options.namedStatements ?? false,
    // now() is the start of the transaction: a long transaction would see a
    // lock as valid after it expired. clock_timestamp() is the real clock.
    now: 'clock_timestamp()',
    castInstant: (param) => `CAST(${param} AS timestamptz)`,
    addMs: (instant, ms) => `(${instant} + ${pgInterval(ms)})`,
    least: (a, b) => `least(${a}, ${b})`,
    chr: (code) => `chr(${code})`,
    bindInstant: (date) => date,
    readInstant: (value) => (value instanceof Date ? value : new Date(value as string)),
    instantColumn: (table, name) => table.specificType(name, 'timestamptz(3)'),
    forUpdate: (query) => query.forUpdate(),
    rows: (result) => (result as { rows: any[] }).rows,

    async writeTransaction(knex, work) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await knex.transaction(work);
        } catch (error) {
          const code = (error as { code?: string }).code;
          if (attempt >= 5 || code === undefined || !RETRYABLE.has(code)) throw error;
        }
      }
    },

    defaultBatchSize: async () => DEFAULT_BATCH_SIZE,
    releaseBatch: releaseBatchPostgres,
    releaseBatchCount: releaseBatchCountPostgres,

    translateError: (error) => translatePostgresError(error, target, options),
  };
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by the server',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  EPIPE: 'connection closed by the server',
};

function translatePostgresError(
  error: unknown,
  target: PostgresTarget,
  options: PostgresOptions,
): SeatctlError | undefined {
  const { code, name, message } = (error ?? {}) as { code?: string; name?: string; message?: string };
  const cannotConnect = (reason: string) =>
    new SeatctlError('unavailable', `cannot connect to PostgreSQL at ${whereOf(target)}: ${reason}`, {
      cause: error,
    });
  const seconds = `${options.connectTimeoutMs / 1000} s`;

  if (code !== undefined && code in NETWORK_REASONS) return cannotConnect(NETWORK_REASONS[code]!);
  if (name === 'KnexTimeoutError' || /connection timeout|timeout expired/i.test(message ?? '')) {
    return cannotConnect(`no answer within the connect timeout (${seconds}); raise it with --connect-timeout`);
  }
  if (code === '28P01' || code === '28000') return cannotConnect(serverMessage(message));
  if (code === '3D000') return cannotConnect(serverMessage(message));
  // The driver's own complaint when the server (or PgBouncer) asks for a password and there is none;
  // "SASL authentication failed" from PgBouncer is a wrong password, said by the server below.
  if (/client password must be a string/.test(message ?? '')) {
    return cannotConnect('the server asks for a password and the URL has none (or set PGPASSWORD)');
  }
  if (/SASL authentication failed/.test(message ?? '')) return cannotConnect(serverMessage(message));
  // PgBouncer refuses startup parameters it does not know, `options` among them.
  if (/unsupported startup parameter: options/.test(message ?? '')) {
    return cannotConnect(
      `${serverMessage(message)} (PgBouncer does not pass the URL's ?options= on to the server: set them on the role instead, ALTER ROLE … SET search_path = …)`,
    );
  }
  if (/self[- ]signed certificate|does not support SSL|certificate/i.test(message ?? '')) {
    return cannotConnect(`SSL negotiation failed (${serverMessage(message)}); check sslmode in the URL`);
  }
  if (/Connection terminated|Client has encountered a connection error|not queryable/i.test(message ?? '')) {
    return cannotConnect('the connection was closed');
  }
  if (code === undefined) return undefined;
  // Translated by SQLSTATE, never by the words: the server's own sentence follows.
  const unavailable = (text: string) => new SeatctlError('unavailable', text, { cause: error });
  const schema = (text: string) => new SeatctlError('schema', text, { cause: error });
  if (code === '57P01' || code === '57P02' || code === '57P03' || code === '25P03' || code === '57P05') {
    return unavailable(`the server ended the connection: ${serverMessage(message)}`);
  }
  if (code.startsWith('08') || code === '53300') return cannotConnect(serverMessage(message));
  if (code === '57014') {
    return unavailable(`the database cancelled the statement: ${statementCancelled(message)} (${serverMessage(message)})`);
  }
  if (code === '55P03') return unavailable(`the database gave up waiting for a lock: ${serverMessage(message)}`);
  if (code === '40001' || code === '40P01') {
    return unavailable(`the database aborted the transaction to resolve a conflict, several times: ${serverMessage(message)}; try again`);
  }
  if (code === '42501') return schema(missingPrivilege(serverMessage(message), target.user));
  if (code === '3F000') return schema(`${serverMessage(message)}: the schema is missing, or this role may not use it`);
  if (code === '25006') {
    return new SeatctlError('unavailable', 'cannot write: the PostgreSQL server is read-only (a standby?)', {
      cause: error,
    });
  }
  if (code === '42P01') {
    return new SeatctlError('schema', 'the database is not set up for seatctl: run seatctl migrate', { cause: error });
  }
  return undefined;
}

/** Where the server is, as the driver will look for it: what the URL leaves out, it takes from PGHOST and PGPORT. */
function whereOf(target: PostgresTarget): string {
  if (target.host !== undefined) return target.where;
  const host = process.env.PGHOST || 'localhost';
  const port = target.port ?? (Number(process.env.PGPORT) || 5432);
  return host.startsWith('/') ? `${host} (Unix socket)` : `${host}:${port}`;
}

/**
 * A missing privilege, named as precisely as the server's sentence allows: a
 * sequence is only ever denied to seatctl in nextval(), which needs USAGE.
 */
function missingPrivilege(sentence: string, user: string | undefined): string {
  const role = user === undefined ? 'the database role' : `the database role "${user}"`;
  const see = `see "PostgreSQL roles" in seatctl's README for the grants each command needs`;
  const sequence = /^permission denied for sequence (.+)$/.exec(sentence)?.[1];
  if (sequence !== undefined) {
    return `${role} lacks USAGE on the sequence ${sequence} (${sentence}); ${see}`;
  }
  return `${role} lacks a privilege: ${sentence} (${see})`;
}

/** What cancelled a statement (57014): a timeout the role or database set, or someone's pg_cancel_backend. */
function statementCancelled(message: string | undefined): string {
  if (/statement timeout/i.test(message ?? '')) return 'statement timeout';
  if (/lock timeout/i.test(message ?? '')) return 'lock timeout';
  if (/user request/i.test(message ?? '')) return 'cancelled on request';
  return 'cancelled';
}

/** The server's own sentence, without the SQL Knex may have put in front of it. */
function serverMessage(message: string | undefined): string {
  const text = message ?? 'unknown error';
  const cut = text.lastIndexOf(' - ');
  return cut === -1 ? text : text.slice(cut + 3);
}
