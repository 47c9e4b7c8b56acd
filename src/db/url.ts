import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SeatctlError } from '../errors.js';

export const DEFAULT_SQLITE_FILE = 'seatctl.db';

export interface SqliteTarget {
  engine: 'sqlite';
  /** Absolute path of the database file, or ':memory:'. */
  filename: string;
  /** What to call this database in messages. */
  display: string;
}

export interface PostgresTarget {
  engine: 'postgres';
  /** A host name, or a Unix socket directory (`/var/run/postgresql`); unset: the driver's default (PGHOST, else localhost). */
  host?: string;
  /** Unset: PGPORT, else 5432. */
  port?: number;
  /** libpq's `options`: `-c search_path=tickets -c statement_timeout=5s`, sent at connection start. */
  options?: string;
  /** Where messages say the server is: host:port, or the socket directory. */
  where: string;
  user?: string;
  password?: string;
  database?: string;
  ssl?: boolean | { rejectUnauthorized: boolean };
  applicationName?: string;
  /** The URL without its password, safe to print. */
  display: string;
}

export type DatabaseTarget = SqliteTarget | PostgresTarget;

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;

/**
 * Turns `--db` / `DATABASE_URL` into a connection target. Accepted forms: a
 * plain path, `sqlite:<path>`, `file:<path>`, `postgres://…`, `postgresql://…`.
 * No message produced here repeats the URL itself: it may hold a password.
 */
export function parseDatabaseUrl(url: string | undefined, cwd: string = process.cwd()): DatabaseTarget {
  if (url === undefined) return sqliteTarget(DEFAULT_SQLITE_FILE, cwd);
  if (url.trim() === '') {
    throw new SeatctlError('usage', 'the database URL is empty (use a file path, sqlite:<path> or postgres://…)');
  }
  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase();
  // A one-letter "scheme" is a Windows drive letter, which is a path.
  if (scheme === undefined || scheme.length === 1) return sqliteTarget(url, cwd);
  switch (scheme) {
    case 'sqlite':
    case 'sqlite3':
      return sqliteTarget(stripSlashes(url.slice(scheme.length + 1)), cwd);
    case 'file':
      return sqliteTarget(url.startsWith('file://') ? fileUrlPath(url) : url.slice('file:'.length), cwd);
    case 'postgres':
    case 'postgresql':
      return postgresTarget(url);
    default:
      throw new SeatctlError(
        'usage',
        `unsupported database '${scheme}:' (use a file path, sqlite:<path>, file:<path>, or postgres://user:password@host:port/database)`,
      );
  }
}

function stripSlashes(rest: string): string {
  // sqlite:///var/lib/x.db → /var/lib/x.db; sqlite://x.db → x.db
  return rest.startsWith('//') ? rest.slice(2) : rest;
}

function fileUrlPath(url: string): string {
  try {
    return fileURLToPath(url);
  } catch {
    throw new SeatctlError('usage', 'malformed file: URL (use file:<path> or file:///absolute/path)');
  }
}

function sqliteTarget(path: string, cwd: string): SqliteTarget {
  if (path === '') throw new SeatctlError('usage', 'the SQLite database path is empty');
  if (path === ':memory:') return { engine: 'sqlite', filename: path, display: path };
  const filename = isAbsolute(path) ? path : resolve(cwd, path);
  return { engine: 'sqlite', filename, display: filename };
}

function postgresTarget(url: string): PostgresTarget {
  let parsed: URL;
  try {
    // libpq takes `postgres://user@/db?host=/socket/dir`; WHATWG URLs refuse a user without a host.
    parsed = new URL(url.replace(/^(postgres(?:ql)?:\/\/[^/?#]*@)(?=[/?#]|$)/i, `$1${NO_HOST}`));
  } catch {
    throw malformed('it is not a valid URL; percent-encode @ / # % : in the user name and password');
  }
  if (parsed.hash !== '') throw malformed("it contains '#'; percent-encode it in the password as %23");
  let user: string | undefined;
  let password: string | undefined;
  let database: string | undefined;
  try {
    user = parsed.username === '' ? undefined : decodeURIComponent(parsed.username);
    password = parsed.password === '' ? undefined : decodeURIComponent(parsed.password);
    const path = parsed.pathname.replace(/^\//, '');
    database = path === '' ? undefined : decodeURIComponent(path);
  } catch {
    throw malformed('it has a broken percent-encoding');
  }
  if (database?.includes('/')) throw malformed("the database name contains '/'");
  // As libpq: what the URL leaves out comes from PGHOST, PGPORT, PGUSER,
  // PGPASSWORD and PGDATABASE, which the driver reads itself.
  let host: string | undefined = parsed.hostname === NO_HOST ? undefined : parsed.hostname.replace(/^\[(.*)\]$/, '$1') || undefined;
  let port = parsed.port === '' ? undefined : Number(parsed.port);

  const target: PostgresTarget = { engine: 'postgres', user, password, database, where: '', display: '' };
  for (const [key, value] of parsed.searchParams) {
    if (key === 'sslmode') target.ssl = sslFor(value);
    else if (key === 'application_name') target.applicationName = value;
    else if (key === 'options') target.options = value;
    else if (key === 'host') host = value;
    else if (key === 'port') {
      if (!/^\d{1,5}$/.test(value)) throw malformed(`the port '${value}' is not a number`);
      port = Number(value);
    } else {
      throw malformed(`unsupported parameter '${key}' (supported: sslmode, application_name, options, host, port)`);
    }
  }
  target.host = host;
  target.port = port;
  const hostShown = host === undefined ? '' : host.startsWith('/') ? '' : host.includes(':') ? `[${host}]` : host;
  target.where = host?.startsWith('/') ? `${host} (Unix socket)` : `${host ?? 'localhost'}:${port ?? 5432}`;
  target.display = `postgres://${user === undefined ? '' : `${encodeURIComponent(user)}@`}${hostShown}${port === undefined || host?.startsWith('/') ? '' : `:${port}`}/${database ?? ''}${host?.startsWith('/') ? `?host=${host}` : ''}`;
  return target;
}

const NO_HOST = 'seatctl-no-host.invalid';

function sslFor(mode: string): PostgresTarget['ssl'] {
  switch (mode) {
    case 'disable':
      return false;
    case 'require':
    case 'prefer':
      return { rejectUnauthorized: false };
    case 'verify-ca':
    case 'verify-full':
      return { rejectUnauthorized: true };
    default:
      throw malformed(`unsupported sslmode '${mode}' (use disable, require, verify-ca or verify-full)`);
  }
}

function malformed(why: string): SeatctlError {
  return new SeatctlError('usage', `malformed PostgreSQL URL: ${why}`);
}
