import type { Knex } from 'knex';
import type { SeatMapping } from '../mapping/mapping.js';
import type { Finding } from './mapping-check.js';
import { tableName } from './mapping-check.js';
import { runStatement, statement, withConnection, type Statement } from './query.js';
import { SeatStore } from './seat-store.js';

// The costly half of `seatctl doctor`: it reads the data, not only the
// catalog. Each function returns findings; none writes anything.

async function rows<Row>(knex: Knex, stmt: Statement): Promise<Row[]> {
  return withConnection(knex, (conn) => runStatement<Row>(conn, stmt, {}));
}

/** Do the stored expiries hold instants in the declared storage? Mixed storage (integers and text in one SQLite column) is refused. */
export async function checkInstantValues(knex: Knex, store: SeatStore): Promise<Finding[]> {
  const m = store.mapping.seats;
  const engine = store.engine.name;
  const column = store.quote(m.lockedUntil);
  const table = store.table(m);
  const where = `${tableName(m)}.${m.lockedUntil}`;
  const findings: Finding[] = [];
  if (engine === 'sqlite') {
    const kinds = await rows<{ kind: string; n: number; example: unknown }>(
      knex,
      statement('sqlite', () => `SELECT typeof(${column}) AS kind, COUNT(*) AS n, MIN(${column}) AS example FROM ${table} WHERE ${column} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC`),
    );
    if (kinds.length === 0) return [{ level: 'ok', message: `${where} holds no expiry yet (nothing is locked)` }];
    const expected = m.timeStorage === 'epoch-ms' || m.timeStorage === 'epoch-s' ? 'integer' : 'text';
    if (kinds.length > 1) {
      return [
        {
          level: 'error',
          message: `${where} mixes storage classes (${kinds.map((k) => `${k.n} ${k.kind}`).join(', ')}): SQLite orders every integer before every text, so "has it expired?" has no answer; make the app store one form`,
        },
      ];
    }
    const only = kinds[0]!;
    if (only.kind !== expected) {
      return [
        {
          level: 'error',
          message: `${where} holds ${only.kind} values (e.g. ${JSON.stringify(only.example)}), but seats.timeStorage "${m.timeStorage}" means ${expected}`,
        },
      ];
    }
    if (expected === 'text') {
      const pattern =
        m.timeStorage === 'text'
          ? "[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9]"
          : '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]*';
      const tail = m.timeStorage === 'text' ? ` AND NOT (${column} GLOB '${pattern}.[0-9]*')` : '';
      const glob = m.timeStorage === 'text' ? `NOT (${column} GLOB '${pattern}')${tail}` : `NOT (${column} GLOB '${pattern}')`;
      const [bad] = await rows<{ n: number; example: string | null }>(
        knex,
        statement('sqlite', () => `SELECT COUNT(*) AS n, MIN(${column}) AS example FROM ${table} WHERE ${column} IS NOT NULL AND (${glob} OR julianday(${column}) IS NULL)`),
      );
      if (bad && bad.n > 0) {
        findings.push({
          level: 'error',
          message: `${bad.n} values of ${where} are not in the "${m.timeStorage}" form (e.g. ${JSON.stringify(bad.example)}): they would compare wrongly`,
        });
        return findings;
      }
    }
    findings.push({ level: 'ok', message: `${only.n === 1 ? "the one expiry" : `the ${only.n} expiries`} in ${where} ${only.n === 1 ? "is a" : "are"} ${m.timeStorage} value${only.n === 1 ? "" : "s"}` });
  }
  if (m.timeStorage === 'epoch-ms' || m.timeStorage === 'epoch-s') {
    // Milliseconds since 1970 pass 10^11 in March 1973; seconds will not before the year 5138.
    const [range] = await rows<{ low: unknown; high: unknown }>(
      knex,
      statement(engine, () => `SELECT MIN(${column}) AS low, MAX(${column}) AS high FROM ${table}`),
    );
    const high = Number(range?.high ?? 0);
    if (range?.high != null && (m.timeStorage === 'epoch-ms') !== high > 1e11) {
      findings.push({
        level: 'error',
        message: `${where} holds numbers up to ${high}, which look like ${high > 1e11 ? 'milliseconds' : 'seconds'}, but seats.timeStorage is "${m.timeStorage}"`,
      });
    }
  }
  return findings;
}

/**
 * The cheap guard every command runs before it writes: one stored expiry of a
 * locked seat (found through the index of locked seats, when there is one)
 * must be in the declared storage. A wrong `timeStorage` would otherwise make
 * every comparison wrong: SQLite sorts all integers before all text.
 */
export async function checkOneStoredExpiry(knex: Knex, store: SeatStore): Promise<Finding | undefined> {
  const m = store.mapping.seats;
  const engine = store.engine.name;
  const column = store.quote(m.lockedUntil);
  const [row] = await rows<{ kind: string; value: unknown }>(
    knex,
    statement(
      engine,
      () => `SELECT ${engine === 'sqlite' ? `typeof(${column})` : `'number'`} AS kind, ${column} AS value FROM ${store.table(m)}
        WHERE ${store.quote(m.status)} = ${literalOf(m.statusValues.locked)} AND ${column} IS NOT NULL LIMIT 1`,
    ),
  );
  if (row === undefined) return undefined;
  const where = `${tableName(m)}.${m.lockedUntil}`;
  const shown = JSON.stringify(row.value instanceof Date ? row.value.toISOString() : row.value);
  const epoch = m.timeStorage === 'epoch-ms' || m.timeStorage === 'epoch-s';
  if (engine === 'sqlite') {
    const expected = epoch ? 'integer' : 'text';
    if (row.kind !== expected) {
      return { level: 'error', message: `${where} holds ${row.kind} values (e.g. ${shown}), but seats.timeStorage "${m.timeStorage}" means ${expected}` };
    }
    if (!epoch) {
      const iso = /^\d{4}-\d\d-\d\dT/.test(String(row.value));
      if (iso !== (m.timeStorage === 'iso-text')) {
        return {
          level: 'error',
          message: `${where} holds ${iso ? 'ISO text (with a T)' : "text like Django's and Rails'"} (e.g. ${shown}), but seats.timeStorage is "${m.timeStorage}": use "${iso ? 'iso-text' : 'text'}"`,
        };
      }
    }
  }
  if (epoch) {
    // Milliseconds since 1970 pass 10^11 in March 1973; seconds will not before the year 5138.
    const ms = Number(row.value) > 1e11;
    if (ms !== (m.timeStorage === 'epoch-ms')) {
      return {
        level: 'error',
        message: `${where} holds ${shown}, which looks like ${ms ? 'milliseconds' : 'seconds'}, but seats.timeStorage is "${m.timeStorage}"`,
      };
    }
  }
  return undefined;
}

/** Statuses in use that the mapping doesn't name (seats in them are left alone), and locked seats without an expiry. */
export async function checkStatuses(knex: Knex, store: SeatStore): Promise<Finding[]> {
  const m = store.mapping.seats;
  const engine = store.engine.name;
  const table = store.table(m);
  const status = store.quote(m.status);
  const counts = await rows<{ status: unknown; n: unknown }>(
    knex,
    statement(engine, () => `SELECT ${status} AS status, COUNT(*) AS n FROM ${table} GROUP BY ${status}`),
  );
  const findings: Finding[] = [];
  const other = counts.filter((row) => store.statusOf(row.status) === 'other');
  const named = counts.filter((row) => store.statusOf(row.status) !== 'other');
  findings.push({
    level: 'ok',
    message: `${tableName(m)}.${m.status}: ${named.map((row) => `${Number(row.n)} ${JSON.stringify(row.status)}`).join(', ') || 'no seats yet'}`,
  });
  if (other.length > 0) {
    findings.push({
      level: 'warning',
      message: `${tableName(m)}.${m.status} also holds ${other.map((row) => `${JSON.stringify(row.status)} (${Number(row.n)} seats)`).join(', ')}, which seats.statusValues doesn't name: seatctl leaves those seats alone`,
    });
  }
  const [stuck] = await rows<{ n: unknown }>(
    knex,
    statement(
      engine,
      () => `SELECT COUNT(*) AS n FROM ${table} WHERE ${status} = ${literalOf(m.statusValues.locked)} AND ${store.quote(m.lockedUntil)} IS NULL`,
    ),
  );
  if (Number(stuck?.n ?? 0) > 0) {
    findings.push({
      level: 'warning',
      message: `${Number(stuck!.n)} locked seats have no expiry (${m.lockedUntil} is NULL): no release will ever free them; unlock them by hand`,
    });
  }
  return findings;
}

const literalOf = (value: string | number) => (typeof value === 'number' ? String(value) : `'${value.replace(/'/g, "''")}'`);

export interface IndexAdvice {
  /** The index is there (the release's pick is served by an index other than the primary key). */
  served: boolean;
  /** What the planner said, for the report. */
  plan: string;
  sql: string;
  /** The same index in the app's own idiom (Django Meta.indexes, a Rails migration, a Prisma schema), when the preset knows it. */
  idiom?: { label: string; text: string };
}

/**
 * Whether an index serves the release's search for expired locks, judged by
 * the engine's own plan of that search (with sequential scans discouraged on
 * PostgreSQL, so that a small table still shows which index would be used).
 */
export async function checkExpiryIndex(knex: Knex, store: SeatStore): Promise<IndexAdvice> {
  const m = store.mapping.seats;
  const engine = store.engine.name;
  const parts = store.releaseParts();
  const cutoff = engine === 'sqlite' ? store.engine.now : 'statement_timestamp()';
  const pick = `SELECT ${parts.pickColumns} FROM ${parts.from}
    WHERE s.${parts.status} = ${parts.locked} AND ${parts.expiredBefore(cutoff, 's')} AND s.${parts.id} > 0
    ORDER BY s.${parts.id} LIMIT 1000`;
  let plan: string;
  let index: string | undefined;
  if (engine === 'sqlite') {
    const steps = await rows<{ detail: string }>(knex, statement('sqlite', () => `EXPLAIN QUERY PLAN ${pick}`));
    plan = steps.map((step) => step.detail).join('; ');
    const onSeats = steps.map((step) => step.detail).find((detail) => /^(SCAN|SEARCH) s\b/.test(detail));
    index = onSeats && /USING (?:COVERING )?INDEX (\S+)/.exec(onSeats)?.[1];
  } else {
    plan = await knex.transaction(async (trx) =>
      withConnection(trx, async (conn) => {
        await runStatement(conn, statement('postgres', () => 'SET LOCAL enable_seqscan = off'), {});
        const result = await runStatement<{ 'QUERY PLAN': string }>(conn, statement('postgres', () => `EXPLAIN ${pick}`), {});
        return result.map((row) => row['QUERY PLAN']).join('\n');
      }),
    );
    index = /(?:Index Only Scan|Index Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\S+)/.exec(plan)?.[1];
  }
  // An index serves the search when it holds the expiry, or only the locked seats;
  // the primary key or an index on another column only walks the whole table in another order.
  let served = false;
  if (index !== undefined) {
    const [definition] = await rows<{ sql: string | null }>(
      knex,
      engine === 'sqlite'
        ? statement('sqlite', () => `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = '${index!.replace(/'/g, "''")}'`)
        : statement('postgres', () => `SELECT pg_get_indexdef(to_regclass('${store.quote(index!.replace(/^"|"$/g, '')).replace(/'/g, "''")}')) AS sql`),
    );
    const sql = definition?.sql ?? '';
    const mentions = (column: string) => new RegExp(`(^|[^A-Za-z0-9_])"?${column.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"?([^A-Za-z0-9_]|$)`).test(sql);
    const where = /\bWHERE\b(.*)$/is.exec(sql)?.[1] ?? '';
    served = mentions(m.lockedUntil) || (where !== '' && new RegExp(m.status.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).test(where));
  }
  return { served, plan, ...suggestIndex(store.mapping, engine) };
}

function suggestIndex(mapping: SeatMapping, engine: 'sqlite' | 'postgres'): { sql: string; idiom?: IndexAdvice['idiom'] } {
  const m = mapping.seats;
  const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
  const name = `${m.table}_seatctl_locked`.slice(0, 63);
  const table = m.schema === undefined ? q(m.table) : `${q(m.schema)}.${q(m.table)}`;
  const sql = `CREATE INDEX ${engine === 'postgres' ? 'CONCURRENTLY ' : ''}${q(name)} ON ${table} (${q(m.id)}, ${q(m.lockedUntil)}) WHERE ${q(m.status)} = ${literalOf(m.statusValues.locked)};`;
  const locked = m.statusValues.locked;
  switch (mapping.preset) {
    case 'django':
      return {
        sql,
        idiom: {
          label: `Django (in class Seat's Meta, then makemigrations and migrate)`,
          text: `indexes = [models.Index(fields=["${m.id}", "${m.lockedUntil}"], condition=models.Q(${m.status}=${JSON.stringify(locked)}), name="seat_locked_until")]`,
        },
      };
    case 'rails':
      return {
        sql,
        idiom: {
          label: 'Rails (a migration)',
          text: `add_index :${m.table}, [:${m.id}, :${m.lockedUntil}], where: "${m.status} = ${literalOf(locked).replace(/"/g, '\\"')}", name: "index_${m.table}_on_locked_until_locked"`,
        },
      };
    case 'prisma':
      return {
        sql,
        idiom: {
          label: 'Prisma (model Seat; Prisma has no partial indexes, so this one also covers the other seats — or add the SQL above to a migration by hand)',
          text: `@@index([${m.status}, ${m.id}, ${m.lockedUntil}])`,
        },
      };
    default:
      return { sql };
  }
}
