import type { Knex } from 'knex';
import type { TableRef } from '../mapping/mapping.js';
import { runStatement, statement, withConnection } from './query.js';

export interface ColumnInfo {
  name: string;
  /** The declared type, lower case: `timestamp with time zone`, `datetime`, `integer`… */
  type: string;
  nullable: boolean;
  /** PostgreSQL enum: its labels, in order. */
  enumLabels?: string[];
}

/** The columns of a table, by name; undefined when there is no such table (or it is not visible to this role). */
export async function tableColumns(
  knex: Knex,
  engine: 'sqlite' | 'postgres',
  ref: TableRef,
): Promise<Map<string, ColumnInfo> | undefined> {
  if (engine === 'sqlite') {
    const stmt = statement('sqlite', (p) => `SELECT name, type, "notnull" AS not_null, pk FROM pragma_table_info(${p('table')})`);
    const rows = await withConnection(knex, (conn) =>
      runStatement<{ name: string; type: string; not_null: number; pk: number }>(conn, stmt, { table: ref.table }),
    );
    if (rows.length === 0) return undefined;
    // An INTEGER PRIMARY KEY is the rowid: never NULL, whatever the declaration says.
    return new Map(
      rows.map((row) => [row.name, { name: row.name, type: row.type.toLowerCase(), nullable: row.not_null === 0 && row.pk === 0 }]),
    );
  }
  const qualified = ref.schema === undefined ? quotePg(ref.table) : `${quotePg(ref.schema)}.${quotePg(ref.table)}`;
  const stmt = statement(
    'postgres',
    (p) => `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
        CASE WHEN t.typtype = 'e' THEN (SELECT array_agg(enumlabel::text ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid) END AS labels
      FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = to_regclass(${p('table')}) AND a.attnum > 0 AND NOT a.attisdropped`,
  );
  const rows = await withConnection(knex, (conn) =>
    runStatement<{ name: string; type: string; nullable: boolean; labels: string[] | null }>(conn, stmt, { table: qualified }),
  );
  if (rows.length === 0) return undefined;
  return new Map(
    rows.map((row) => [
      row.name,
      { name: row.name, type: row.type, nullable: row.nullable, ...(row.labels ? { enumLabels: row.labels } : {}) },
    ]),
  );
}

/** The tables of the database (SQLite) or of the schemas on the search path (PostgreSQL), for messages. */
export async function userTables(knex: Knex, engine: 'sqlite' | 'postgres'): Promise<string[]> {
  const stmt =
    engine === 'sqlite'
      ? statement('sqlite', () => `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name`)
      : statement(
          'postgres',
          () => `SELECT c.relname AS name FROM pg_class c
            WHERE c.relkind IN ('r', 'p', 'v')
              AND c.relnamespace IN (SELECT oid FROM pg_namespace WHERE nspname = ANY(current_schemas(false)))
            ORDER BY c.relname`,
        );
  const rows = await withConnection(knex, (conn) => runStatement<{ name: string }>(conn, stmt, {}));
  return rows.map((row) => row.name);
}

function quotePg(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
