// Databases and roles on the test server for tests that need more than one
// migrated database: roles with chosen privileges, a schema other than public,
// a database-level setting. Everything a file creates is dropped after it,
// also when a test failed, so a server from TEST_DATABASE_URL is left as found.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, inject } from 'vitest';

/** Why these tests cannot run here, or null. They create roles and read other sessions: a superuser. */
export async function superuserSkipReason(): Promise<string | null> {
  const reason = inject('pgSkipReason');
  if (reason !== null) return reason;
  const admin = inject('pgAdminUrl')!;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    const { rows } = await client.query('SELECT rolsuper FROM pg_roles WHERE rolname = current_user');
    return rows[0]?.rolsuper ? null : 'the PostgreSQL user of TEST_DATABASE_URL is not a superuser';
  } finally {
    await client.end();
  }
}

export interface UrlParts {
  user?: string;
  password?: string;
  host?: string;
  port?: number;
  /** Query parameters: `{ options: '-c search_path=tickets' }`. */
  params?: Record<string, string>;
}

/** A URL for `database` on the test server, as the admin unless `parts` says otherwise. */
export function serverUrl(database: string, parts: UrlParts = {}): string {
  const url = new URL(inject('pgAdminUrl')!);
  url.pathname = `/${database}`;
  if (parts.user !== undefined) url.username = encodeURIComponent(parts.user);
  if (parts.password !== undefined) url.password = encodeURIComponent(parts.password);
  if (parts.host !== undefined) url.hostname = parts.host;
  if (parts.port !== undefined) url.port = String(parts.port);
  for (const [key, value] of Object.entries(parts.params ?? {})) url.searchParams.set(key, value);
  return url.toString();
}

/** The test server's host and port. */
export function serverAddress(): { host: string; port: number } {
  const url = new URL(inject('pgAdminUrl')!);
  return { host: url.hostname, port: Number(url.port || 5432) };
}

/** The database the admin URL names (where roles and databases are created from). */
export function adminDatabase(): string {
  return decodeURIComponent(new URL(inject('pgAdminUrl')!).pathname.slice(1)) || 'postgres';
}

/** Runs `work` on an admin connection to `database` (no statement timeout, whatever the database sets). */
export async function asAdmin<T>(database: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl(database), options: '-c statement_timeout=0' });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export interface Scratch {
  /** A short unique prefix for names this file creates. */
  prefix: string;
  /** Creates an empty database (from `template`, if given); returns its name. */
  database(name: string, template?: string): Promise<string>;
  /** Creates a login role with a password; returns its (prefixed) name. */
  role(name: string, password: string): Promise<string>;
  /** The prefixed name of a role the test creates itself (with SQL from the README); dropped after the file. */
  roleName(name: string): string;
}

/** Databases and roles for one test file, dropped in afterAll. */
export function useScratch(): Scratch {
  const prefix = `sp${randomBytes(3).toString('hex')}`;
  const databases: string[] = [];
  const roles: string[] = [];
  afterAll(async () => {
    if (databases.length === 0 && roles.length === 0) return;
    await asAdmin(adminDatabase(), async (client) => {
      for (const name of databases.splice(0).reverse()) await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      for (const name of roles.splice(0)) await client.query(`DROP ROLE IF EXISTS "${name}"`);
    });
  });
  const roleName = (name: string) => {
    const full = `${prefix}_${name}`;
    if (!roles.includes(full)) roles.push(full);
    return full;
  };
  return {
    prefix,
    async database(name, template) {
      const full = `${prefix}_${name}`;
      databases.push(full);
      await asAdmin(adminDatabase(), (client) =>
        client.query(`CREATE DATABASE "${full}"${template === undefined ? '' : ` TEMPLATE "${template}" STRATEGY FILE_COPY`}`),
      );
      return full;
    },
    roleName,
    async role(name, password) {
      const full = roleName(name);
      await asAdmin(adminDatabase(), (client) => client.query(`CREATE ROLE "${full}" LOGIN PASSWORD '${password}'`));
      return full;
    },
  };
}
