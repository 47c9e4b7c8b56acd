import type { Knex } from 'knex';
import * as initialSchema from '../../migrations/001_initial_schema.js';
import * as historyHoldStart from '../../migrations/002_history_hold_start.js';
import { SeatctlError } from '../errors.js';
import type { Engine } from './engine.js';
import { userTables } from './introspect.js';
import { guard, type SeatDatabase } from './open.js';
import { appliedOwnMigrations, assertKnownOwnMigrations, migrateOwnTables, OWN_MIGRATION_NAMES } from './own-tables.js';

interface MigrationModule {
  up(knex: Knex, engine: Engine): Promise<void>;
  down(knex: Knex, engine: Engine): Promise<void>;
}

// The migrations are imported, not looked up in a directory: their names are
// the same whether seatctl runs from source or from the build, and nothing
// depends on the directory cron starts it from.
const MIGRATIONS: ReadonlyArray<{ name: string; module: MigrationModule }> = [
  { name: '001_initial_schema', module: initialSchema },
  { name: '002_history_hold_start', module: historyHoldStart },
];

export const MIGRATION_NAMES = MIGRATIONS.map((m) => m.name);

const MIGRATIONS_TABLE = 'knex_migrations';
/** Every table seatctl's own schema has: a database with others and no knex_migrations is an app's. */
const OWN_SCHEMA_TABLES = ['knex_migrations', 'knex_migrations_lock', 'events', 'seats', 'release_history', 'release_runs'];

/** Where the README explains how to run on an app's database. */
export const EXISTING_DATABASES_HELP = 'see "Existing databases" in seatctl\'s README';

function migrationSource(engine: Engine): Knex.MigrationSource<(typeof MIGRATIONS)[number]> {
  return {
    getMigrations: async () => [...MIGRATIONS],
    getMigrationName: (migration) => migration.name,
    getMigration: async ({ module }) => ({
      up: (knex: Knex) => module.up(knex, engine),
      down: (knex: Knex) => module.down(knex, engine),
    }),
  };
}

export interface MigrateResult {
  /** Names of the migrations this run applied, oldest first; empty when up to date. */
  applied: string[];
}

/**
 * Brings the schema up to date. Safe to run any number of times, from several
 * hosts at once. On a mapped database (an app's) it creates seatctl's own
 * tables and nothing else.
 */
export function migrate(db: SeatDatabase): Promise<MigrateResult> {
  return guard(db, async () => {
    if (!db.mapping.owned) {
      const applied = await migrateOwnTables(db.knex, db.engine, db.mapping, db.target.display);
      schemaChecked.set(db, Promise.resolve());
      return { applied };
    }
    return migrateLatest(db);
  });
}

/** How long `migrate` waits for another host's migration to finish. */
const MIGRATION_LOCK_WAIT_MS = 30_000;

async function migrateLatest(db: SeatDatabase): Promise<MigrateResult> {
  const applied = await appliedMigrations(db);
  if (applied === undefined) {
    // Creating seatctl's tables where the role can use no schema fails anyway: say why first.
    await refuseUnusableSearchPath(db);
    await refuseForeignDatabase(db);
  }
  if (applied !== undefined) {
    assertKnown(db, applied);
    // Up to date: nothing to write, not even Knex's migration lock (a read-only database stays fine).
    if (MIGRATION_NAMES.every((name) => applied.includes(name))) {
      schemaChecked.set(db, Promise.resolve());
      return { applied: [] };
    }
  }
  const deadline = Date.now() + MIGRATION_LOCK_WAIT_MS;
  for (;;) {
    try {
      const [, done] = (await db.knex.migrate.latest({
        migrationSource: migrationSource(db.engine),
        tableName: MIGRATIONS_TABLE,
      })) as [number, string[]];
      schemaChecked.set(db, Promise.resolve());
      return { applied: done };
    } catch (error) {
      if ((error as Error).name !== 'MigrationLocked') throw error;
      // Knex reports any failure to take its lock this way, with the cause's message only.
      const message = (error as Error).message;
      if (/readonly|read-only/i.test(message)) {
        throw new SeatctlError('unavailable', `cannot migrate the database ${db.target.display}: it is read-only`);
      }
      if (!/already locked/.test(message)) throw error;
      // Another host is migrating right now: wait for it, then find nothing to do.
      if (Date.now() >= deadline) {
        throw new SeatctlError(
          'unavailable',
          `another seatctl migrate has held the migration lock of ${db.target.display} for ${MIGRATION_LOCK_WAIT_MS / 1000} s; if none is running, a crashed one left it: run seatctl migrate --force-unlock`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/** Frees the migration lock a crashed `migrate` left behind. */
export function forceUnlockMigrations(db: SeatDatabase): Promise<void> {
  return guard(db, async () => {
    await refuseLockedOutOfLockTable(db);
    await db.knex.migrate.forceFreeMigrationsLock({
      migrationSource: migrationSource(db.engine),
      tableName: MIGRATIONS_TABLE,
    });
  });
}

/**
 * Knex looks for its lock table in information_schema, which shows a role
 * only the tables it has a privilege on: a role without one would find no
 * lock table, free nothing and succeed. Say so instead.
 */
async function refuseLockedOutOfLockTable(db: SeatDatabase): Promise<void> {
  if (db.engine.name !== 'postgres') return;
  const [row] = db.engine.rows<{ role: string; present: boolean; allowed: boolean | null }>(
    await db.knex.raw(
      `SELECT current_user AS role, to_regclass('${MIGRATIONS_TABLE}_lock') IS NOT NULL AS present,
         has_table_privilege(to_regclass('${MIGRATIONS_TABLE}_lock'), 'DELETE')
           AND has_table_privilege(to_regclass('${MIGRATIONS_TABLE}_lock'), 'INSERT') AS allowed`,
    ),
  );
  if (row?.present && !row.allowed) {
    throw new SeatctlError(
      'schema',
      `the database role "${row.role}" may not free the migration lock (it lacks DELETE and INSERT on ${MIGRATIONS_TABLE}_lock): free it as the role that owns seatctl's tables`,
    );
  }
}

const schemaChecked = new WeakMap<SeatDatabase, Promise<void>>();

/**
 * Throws a `schema` error unless every migration this seatctl knows has been
 * applied and none it doesn't know. Checked once per database handle.
 */
export function ensureSchema(db: SeatDatabase): Promise<void> {
  let check = schemaChecked.get(db);
  if (check === undefined) {
    check = checkSchema(db);
    schemaChecked.set(db, check);
    check.catch(() => schemaChecked.delete(db));
  }
  return check;
}

async function appliedMigrations(db: SeatDatabase): Promise<string[] | undefined> {
  try {
    return await db.knex(MIGRATIONS_TABLE).pluck('name');
  } catch (error) {
    if (isMissingTable(error)) return undefined;
    throw error;
  }
}

async function checkSchema(db: SeatDatabase): Promise<void> {
  if (!db.mapping.owned) {
    const own = await appliedOwnMigrations(db.knex, db.engine.name, db.mapping);
    if (own === undefined || own.length === 0) {
      throw new SeatctlError(
        'schema',
        `seatctl's own tables (${db.mapping.own.history}, ${db.mapping.own.runs}) are missing from ${db.target.display}: run seatctl migrate, which creates them and nothing else (or have a DBA apply seatctl migrate --print-sql)`,
      );
    }
    assertKnownOwnMigrations(own, db.target.display);
    const missing = OWN_MIGRATION_NAMES.filter((name) => !own.includes(name));
    if (missing.length > 0) {
      throw new SeatctlError('schema', `seatctl's own tables in ${db.target.display} need ${missing.length} migration(s) (${missing.join(', ')}): run seatctl migrate`);
    }
    return;
  }
  const applied = await appliedMigrations(db);
  if (applied === undefined) {
    await refuseHiddenSchema(db);
    await refuseUnusableSearchPath(db);
    await refuseForeignDatabase(db);
  }
  if (applied === undefined || applied.length === 0) {
    throw new SeatctlError('schema', `the database ${db.target.display} is not set up: run seatctl migrate`);
  }
  assertKnown(db, applied);
  const missing = MIGRATION_NAMES.filter((name) => !applied.includes(name));
  if (missing.length > 0) {
    throw new SeatctlError(
      'schema',
      `the database ${db.target.display} needs ${missing.length} migration(s) (${missing.join(', ')}): run seatctl migrate`,
    );
  }
}

/**
 * On PostgreSQL, tables are found through the search_path, in the schemas
 * the role may use. When seatctl's tables sit in a schema the search_path
 * leaves out, or one the role lacks USAGE on, "not set up: run seatctl
 * migrate" would be the wrong diagnosis (and a migrate would create a second,
 * empty copy): say where they are and what is missing.
 */
async function refuseHiddenSchema(db: SeatDatabase): Promise<void> {
  if (db.engine.name !== 'postgres') return;
  const found = db.engine.rows<{ schema: string; usable: boolean; on_path: boolean; role: string; path: string }>(
    await db.knex.raw(
      `SELECT quote_ident(n.nspname) AS schema, has_schema_privilege(n.oid, 'USAGE') AS usable,
         n.nspname IN (SELECT CASE WHEN btrim(p) IN ('$user', '"$user"') THEN current_user ELSE btrim(btrim(p), '"') END
                       FROM unnest(string_to_array(current_setting('search_path'), ',')) AS p) AS on_path,
         quote_ident(current_user) AS role, current_setting('search_path') AS path
       FROM pg_namespace n
       WHERE NOT (n.nspname = ANY(current_schemas(false)))
         AND EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = 'knex_migrations')
         AND EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = 'release_runs')
       ORDER BY n.nspname`,
    ),
  );
  const [first] = found;
  if (first === undefined) return;
  const where = `seatctl's tables are in the schema ${found.map((row) => row.schema).join(', ')}`;
  const grant = `GRANT USAGE ON SCHEMA ${first.schema} TO ${first.role}`;
  const setPath = `ALTER ROLE ${first.role} SET search_path = ${first.schema}, or ?options=-c search_path=${first.schema} in the URL`;
  const message = !first.usable
    ? first.on_path
      ? `${where}, which the role ${first.role} may not use (it lacks USAGE on it): ${grant} (see "PostgreSQL roles" in seatctl's README)`
      : `${where}, which the search_path (${first.path}) leaves out and the role ${first.role} may not use: ${grant}, and set the search_path (${setPath})`
    : `${where}, which the search_path (${first.path}) leaves out: set it (${setPath})`;
  throw new SeatctlError('schema', message);
}

/**
 * A search_path that resolves to no schema the role may use (no USAGE, or
 * naming nothing that exists) hides every table: "not set up" would be the
 * wrong diagnosis.
 */
async function refuseUnusableSearchPath(db: SeatDatabase): Promise<void> {
  if (db.engine.name !== 'postgres') return;
  const [row] = db.engine.rows<{ visible: string; path: string }>(
    await db.knex.raw(
      "SELECT array_to_string(current_schemas(false), ', ') AS visible, current_setting('search_path') AS path",
    ),
  );
  if (row && row.visible === '') {
    throw new SeatctlError(
      'schema',
      `the search_path (${row.path}) names no schema this role may use: grant it USAGE on seatctl's schema, or set the search_path (ALTER ROLE … SET search_path, or ?options=-c search_path=… in the URL)`,
    );
  }
}

/**
 * A database without seatctl's schema that holds other tables is an app's:
 * without a mapping, seatctl refuses it before writing anything.
 */
async function refuseForeignDatabase(db: SeatDatabase): Promise<void> {
  const foreign = (await userTables(db.knex, db.engine.name)).filter((table) => !OWN_SCHEMA_TABLES.includes(table));
  if (foreign.length === 0) return;
  const shown = foreign.slice(0, 6).join(', ') + (foreign.length > 6 ? ` and ${foreign.length - 6} more` : '');
  throw new SeatctlError(
    'schema',
    `the database ${db.target.display} is not a seatctl database (it has the tables ${shown}); to run seatctl on an app's own tables, describe them in seatctl.config.json: ${EXISTING_DATABASES_HELP}`,
  );
}

function assertKnown(db: SeatDatabase, applied: string[]): void {
  const unknown = applied.filter((name) => !MIGRATION_NAMES.includes(name));
  if (unknown.length > 0) {
    throw new SeatctlError(
      'schema',
      `the database ${db.target.display} was migrated by a newer seatctl (unknown migration ${unknown.join(', ')}); upgrade seatctl, this version will not touch it`,
    );
  }
}

function isMissingTable(error: unknown): boolean {
  const { code, message } = error as { code?: string; message?: string };
  return code === '42P01' || (code === 'SQLITE_ERROR' && /no such table/.test(message ?? ''));
}
