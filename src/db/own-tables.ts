import type { Knex } from 'knex';
import { SeatctlError } from '../errors.js';
import type { SeatMapping } from '../mapping/mapping.js';
import type { Engine } from './engine.js';
import { runStatement, statement, withConnection } from './query.js';

// seatctl's own tables on a database an app owns: the release history, the
// heartbeat and the record of these migrations, named seatctl_…, in the same
// SQLite file (so a history row commits with its release) or in a PostgreSQL
// schema of their own. This is all `seatctl migrate` ever creates there.

/** The migrations of seatctl's own tables on a mapped database, oldest first. */
export const OWN_MIGRATION_NAMES = ['001_seatctl_tables'];

interface Names {
  quote(name: string): string;
  table(name: string): string;
  schema: string | undefined;
}

/** Standard SQL quoting, which both engines read (and which is Knex's on PostgreSQL). */
const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

function names(mapping: SeatMapping): Names {
  const schema = mapping.own.schema;
  return { quote, schema, table: (name) => (schema === undefined ? quote(name) : `${quote(schema)}.${quote(name)}`) };
}

function migrationStatements(engine: 'sqlite' | 'postgres', n: Names, mapping: SeatMapping): Record<string, string[]> {
  const { history, runs } = mapping.own;
  const instant = engine === 'sqlite' ? 'bigint' : 'timestamptz';
  // On SQLite a plain INTEGER PRIMARY KEY, not AUTOINCREMENT: that would write
  // into sqlite_sequence, a table the app shares.
  const id = engine === 'sqlite' ? 'integer PRIMARY KEY' : 'bigserial PRIMARY KEY';
  const key = engine === 'sqlite' ? 'integer' : 'bigint';
  return {
    '001_seatctl_tables': [
      `CREATE TABLE IF NOT EXISTS ${n.table(history)} (
  ${n.quote('id')} ${id},
  ${n.quote('event_id')} ${key} NOT NULL,
  ${n.quote('seat_id')} ${key} NOT NULL,
  ${n.quote('seat_number')} text NOT NULL,
  ${n.quote('locked_by')} text NOT NULL,
  ${n.quote('locked_until')} ${instant} NOT NULL,
  ${n.quote('lock_token')} integer,
  ${n.quote('locked_at')} ${instant},
  ${n.quote('released_at')} ${instant} NOT NULL,
  ${n.quote('reason')} text NOT NULL CHECK (${n.quote('reason')} IN ('expired', 'unlocked', 'replaced'))
)`,
      `CREATE INDEX IF NOT EXISTS ${n.quote(`${history}_released_at`)} ON ${n.table(history)} (${n.quote('released_at')})`,
      `CREATE INDEX IF NOT EXISTS ${n.quote(`${history}_seat`)} ON ${n.table(history)} (${n.quote('seat_id')}, ${n.quote('released_at')})`,
      `CREATE TABLE IF NOT EXISTS ${n.table(runs)} (
  ${n.quote('host')} text PRIMARY KEY,
  ${n.quote('pid')} integer NOT NULL,
  ${n.quote('finished_at')} ${instant} NOT NULL,
  ${n.quote('released')} integer NOT NULL
)`,
    ],
  };
}

/** The statements that create the record of migrations (and on PostgreSQL the schema), before any migration. */
function preamble(engine: 'sqlite' | 'postgres', n: Names, mapping: SeatMapping): string[] {
  const now = engine === 'sqlite' ? "CAST(ROUND(unixepoch('subsec') * 1000) AS INTEGER)" : 'clock_timestamp()';
  return [
    ...(n.schema === undefined ? [] : [`CREATE SCHEMA IF NOT EXISTS ${n.quote(n.schema)}`]),
    `CREATE TABLE IF NOT EXISTS ${n.table(mapping.own.migrations)} (
  ${n.quote('name')} text PRIMARY KEY,
  ${n.quote('applied_at')} ${engine === 'sqlite' ? 'bigint' : 'timestamptz'} NOT NULL DEFAULT (${now})
)`,
  ];
}

const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;

/** The whole DDL, for a DBA to apply by hand: safe to run again. */
export function ownTablesSql(engine: 'sqlite' | 'postgres', mapping: SeatMapping): string {
  const n = names(mapping);
  const migrations = migrationStatements(engine, n, mapping);
  const lines = ['BEGIN;', ...preamble(engine, n, mapping).map((s) => `${s};`)];
  for (const name of OWN_MIGRATION_NAMES) {
    lines.push(`-- ${name}`, ...migrations[name]!.map((s) => `${s};`));
    lines.push(`INSERT INTO ${n.table(mapping.own.migrations)} (${n.quote('name')}) VALUES (${literal(name)}) ON CONFLICT DO NOTHING;`);
  }
  lines.push('COMMIT;');
  return `${lines.join('\n')}\n`;
}

/** Names of the applied migrations of seatctl's own tables; undefined when there is no record of them. */
export async function appliedOwnMigrations(knex: Knex | Knex.Transaction, engine: 'sqlite' | 'postgres', mapping: SeatMapping): Promise<string[] | undefined> {
  const n = names(mapping);
  const stmt = statement(engine, () => `SELECT ${n.quote('name')} AS name FROM ${n.table(mapping.own.migrations)}`);
  try {
    const rows = await withConnection(knex, (conn) => runStatement<{ name: string }>(conn, stmt, {}));
    return rows.map((row) => row.name);
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    if (code === '42P01' || code === '3F000' || (code === 'SQLITE_ERROR' && /no such table/.test(message ?? ''))) return undefined;
    throw error;
  }
}

export function assertKnownOwnMigrations(applied: readonly string[], display: string): void {
  const unknown = applied.filter((name) => !OWN_MIGRATION_NAMES.includes(name));
  if (unknown.length > 0) {
    throw new SeatctlError(
      'schema',
      `seatctl's tables in ${display} were migrated by a newer seatctl (unknown migration ${unknown.join(', ')}); upgrade seatctl, this version will not touch them`,
    );
  }
}

/**
 * Creates (or brings up to date) seatctl's own tables and nothing else, in one
 * transaction; concurrent runs wait for each other. Returns the migrations applied.
 */
export async function migrateOwnTables(knex: Knex, engine: Engine, mapping: SeatMapping, display: string): Promise<string[]> {
  const n = names(mapping);
  const migrations = migrationStatements(engine.name, n, mapping);
  return engine.writeTransaction(knex, async (trx) =>
    withConnection(trx, async (conn) => {
      const exec = (sql: string) => runStatement(conn, statement(engine.name, () => sql), {});
      // One migrate at a time on PostgreSQL (SQLite's BEGIN IMMEDIATE already serializes them).
      if (engine.name === 'postgres') await exec("SELECT pg_advisory_xact_lock(hashtext('seatctl migrate'))");
      for (const sql of preamble(engine.name, n, mapping)) await exec(sql);
      const applied = (await appliedOwnMigrations(trx, engine.name, mapping)) ?? [];
      assertKnownOwnMigrations(applied, display);
      const done: string[] = [];
      for (const name of OWN_MIGRATION_NAMES) {
        if (applied.includes(name)) continue;
        for (const sql of migrations[name]!) await exec(sql);
        await exec(`INSERT INTO ${n.table(mapping.own.migrations)} (${n.quote('name')}) VALUES (${literal(name)})`);
        done.push(name);
      }
      return done;
    }),
  );
}
