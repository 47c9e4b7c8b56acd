// seatctl on a Prisma app's database, with {"preset": "prisma"}. No Prisma
// binary can be installed here, so the database is created with the DDL
// `prisma migrate dev` generates for the schema below (the migration.sql and
// the _prisma_migrations table of its schema engine, copied as Prisma writes
// them), and the rows are inserted with SQL in exactly the storage Prisma
// Client writes: timestamp(3) UTC wall time and a real enum on PostgreSQL;
// on SQLite, DATETIME columns holding ISO text (its driver adapters, the
// preset's default) or integer epoch milliseconds (its older native engine,
// with "seats": {"timeStorage": "epoch-ms"}).
//
//   enum SeatStatus { available locked booked }
//   model Event { id Int @id @default(autoincrement()) name String @unique seats Seat[] }
//   model Seat {
//     id Int @id @default(autoincrement())
//     eventId Int
//     event Event @relation(fields: [eventId], references: [id])
//     seatNumber String
//     status SeatStatus @default(available)
//     lockedUntil DateTime?
//     lockedBy String?
//     updatedAt DateTime @updatedAt
//     @@unique([eventId, seatNumber])
//   }
import { createHash, randomUUID } from 'node:crypto';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, runCli } from './support/cli.js';
import { postgres, sqlite, tempDir, type TestEngine } from './support/engines.js';

const POSTGRES_MIGRATION = `-- CreateEnum
CREATE TYPE "SeatStatus" AS ENUM ('available', 'locked', 'booked');

-- CreateTable
CREATE TABLE "Event" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,

    CONSTRAINT "Event_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Seat" (
    "id" SERIAL NOT NULL,
    "eventId" INTEGER NOT NULL,
    "seatNumber" TEXT NOT NULL,
    "status" "SeatStatus" NOT NULL DEFAULT 'available',
    "lockedUntil" TIMESTAMP(3),
    "lockedBy" TEXT,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Seat_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Event_name_key" ON "Event"("name");

-- CreateIndex
CREATE UNIQUE INDEX "Seat_eventId_seatNumber_key" ON "Seat"("eventId", "seatNumber");

-- AddForeignKey
ALTER TABLE "Seat" ADD CONSTRAINT "Seat_eventId_fkey" FOREIGN KEY ("eventId") REFERENCES "Event"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
`;

const SQLITE_MIGRATION = `-- CreateTable
CREATE TABLE "Event" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL
);

-- CreateTable
CREATE TABLE "Seat" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "eventId" INTEGER NOT NULL,
    "seatNumber" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'available',
    "lockedUntil" DATETIME,
    "lockedBy" TEXT,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "Seat_eventId_fkey" FOREIGN KEY ("eventId") REFERENCES "Event" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "Event_name_key" ON "Event"("name");

-- CreateIndex
CREATE UNIQUE INDEX "Seat_eventId_seatNumber_key" ON "Seat"("eventId", "seatNumber");
`;

// The schema engine's own table, created before the first migration.
const POSTGRES_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
);`;

const SQLITE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
);`;

const MIGRATION_NAME = '20260101000000_init';

/** How Prisma stores a DateTime here. */
type Storage = 'timestamp' | 'iso-text' | 'epoch-ms';

interface Variant {
  title: string;
  engine: TestEngine;
  storage: Storage;
  config: Record<string, unknown>;
}

const VARIANTS: Variant[] = [
  { title: 'PostgreSQL: enum "SeatStatus", timestamp(3)', engine: postgres, storage: 'timestamp', config: { preset: 'prisma' } },
  { title: 'SQLite: ISO text (driver adapters)', engine: sqlite, storage: 'iso-text', config: { preset: 'prisma' } },
  {
    title: 'SQLite: epoch milliseconds (native engine)',
    engine: sqlite,
    storage: 'epoch-ms',
    config: { preset: 'prisma', seats: { timeStorage: 'epoch-ms' } },
  },
];

// A PostgreSQL zone west of UTC: a `timestamp` compared with now() would push every expiry three hours later.
const PG_TZ = 'America/Sao_Paulo';

type Row = Record<string, any>;

/** The app's database, through plain SQL (`?` placeholders on both engines). */
interface AppSql {
  exec(sql: string): Promise<void>;
  all(sql: string, params?: unknown[]): Promise<Row[]>;
}

function appSql(engine: TestEngine, url: string): AppSql {
  if (engine.name === 'sqlite') {
    const withDb = <T>(work: (db: Database.Database) => T): T => {
      const db = new Database(url);
      try {
        return work(db);
      } finally {
        db.close();
      }
    };
    return {
      exec: async (sql) => withDb((db) => void db.exec(sql)),
      all: async (sql, params = []) =>
        withDb((db) => {
          const stmt = db.prepare(sql);
          if (stmt.reader) return stmt.all(...params) as Row[];
          stmt.run(...params);
          return [];
        }),
    };
  }
  const withClient = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  return {
    exec: (sql) => withClient(async (client) => void (await client.query(sql))),
    all: (sql, params = []) =>
      withClient(async (client) => {
        let n = 0;
        return (await client.query(sql.replace(/\?/g, () => `$${++n}`), params)).rows;
      }),
  };
}

/** An instant as Prisma Client writes it in this storage. */
function written(storage: Storage, ms: number): string | number {
  const iso = new Date(ms).toISOString();
  if (storage === 'epoch-ms') return ms;
  if (storage === 'iso-text') return iso.replace('Z', '+00:00');
  return iso.replace('T', ' ').replace('Z', ''); // UTC wall time, for a timestamp(3) parameter
}

/** The SQL that reads an instant column raw: the stored value itself, or on PostgreSQL its digits to the microsecond. */
function rawColumn(storage: Storage, column: string): string {
  return storage === 'timestamp' ? `to_char(${column}, 'YYYY-MM-DD"T"HH24:MI:SS.US')` : column;
}

/** What a raw read of an instant seatctl reported (ISO, milliseconds) must be. */
function stored(storage: Storage, iso: string): string | number {
  if (storage === 'epoch-ms') return Date.parse(iso);
  if (storage === 'iso-text') return iso.replace('Z', '+00:00');
  return iso.replace('Z', '000'); // timestamp(3): three digits, then zeros
}

/** A raw instant as milliseconds. */
function instantOf(storage: Storage, raw: string | number): number {
  if (storage === 'epoch-ms') return raw as number;
  return Date.parse(storage === 'timestamp' ? `${raw}Z` : (raw as string));
}

/** The raw value is in the declared storage, whatever instant it is. */
function expectStorage(storage: Storage, raw: unknown, type: string | undefined, what: string): void {
  if (storage === 'epoch-ms') {
    expect({ what, type }).toEqual({ what, type: 'integer' });
    expect(Number.isSafeInteger(raw), what).toBe(true);
  } else if (storage === 'iso-text') {
    expect({ what, type }).toEqual({ what, type: 'text' });
    expect(raw, what).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$/);
  } else {
    expect(raw, what).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}000$/);
  }
}

interface PrismaSeat {
  id: number;
  status: string;
  lockedBy: string | null;
  lockedUntil: string | number | null;
  lockedUntilType?: string;
  updatedAt: string | number;
  updatedAtType?: string;
}

for (const variant of VARIANTS) {
  const { engine, storage } = variant;
  const isSqlite = engine.name === 'sqlite';
  const reason = engine.skipReason;
  describe.skipIf(reason !== null)(`a Prisma app's database [${variant.title}${reason ? `: skipped, ${reason}` : ''}]`, () => {
    let url: string;
    let dir: string;
    let sql: AppSql;
    /** When Prisma created the seats: every seat's updatedAt until something writes it. */
    const created = Date.now() - 3_600_000;
    const seatctl = (...args: string[]) => runCli(['--db', url, ...args], { cwd: dir, env: { SEATCTL_CONFIG: undefined } });
    /** seatctl on another copy or with another config: its own working directory. */
    const seatctlIn = (cwd: string, db: string, ...args: string[]) => runCli(['--db', db, ...args], { cwd, env: { SEATCTL_CONFIG: undefined } });
    const configDir = (config: unknown) => {
      const path = tempDir('seatctl-prisma-config-');
      writeFileSync(join(path, 'seatctl.config.json'), JSON.stringify(config));
      return path;
    };

    const seats = async (db = sql): Promise<Map<string, PrismaSeat>> => {
      const types = isSqlite ? `, typeof(s."lockedUntil") AS "lockedUntilType", typeof(s."updatedAt") AS "updatedAtType"` : '';
      const rows = await db.all(
        `SELECT e."name" AS event, s."seatNumber" AS seat, s."id" AS id, CAST(s."status" AS TEXT) AS status, s."lockedBy" AS "lockedBy",
           ${rawColumn(storage, 's."lockedUntil"')} AS "lockedUntil", ${rawColumn(storage, 's."updatedAt"')} AS "updatedAt"${types}
         FROM "Seat" s JOIN "Event" e ON e."id" = s."eventId" ORDER BY s."id"`,
      );
      return new Map(rows.map(({ event, seat, ...rest }) => [`${event}/${seat}`, rest as PrismaSeat]));
    };

    /** Everything the app owns, byte-stable: rows in id order with their storage, the schema, the settings. `db`: a copy (SQLite). */
    const dump = async (db = sql): Promise<string> => {
      if (isSqlite) {
        const master = await db.all(
          `SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name NOT LIKE 'seatctl\\_%' ESCAPE '\\' ORDER BY type, name`,
        );
        const tables: Record<string, unknown[]> = {};
        for (const { name } of master.filter((m) => m.type === 'table')) {
          const columns = (await db.all(`SELECT name FROM pragma_table_info(?)`, [name])).map((c) => `quote("${c.name}")`);
          // quote() spells each value with its storage class: 42, 'text', 4.2e0.
          tables[name] = (await db.all(`SELECT ${columns.join(` || ',' || `)} AS row FROM "${name}" ORDER BY rowid`)).map((r) => r.row);
        }
        const journal_mode = (await db.all('PRAGMA journal_mode'))[0]!.journal_mode;
        const user_version = (await db.all('PRAGMA user_version'))[0]!.user_version;
        return JSON.stringify({ master, tables, journal_mode, user_version });
      }
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        // Instants with a time zone, in UTC whatever the database's default.
        await client.query(`SET TimeZone TO 'UTC'`);
        const q = async (query: string) => (await client.query(query)).rows;
        const tables: Record<string, unknown[]> = {};
        for (const name of ['Event', 'Seat', '_prisma_migrations']) {
          // Row literals, in id order.
          tables[name] = (await q(`SELECT t::text AS row FROM "${name}" t ORDER BY t."id"`)).map((r) => r.row);
        }
        return JSON.stringify({
          tables,
          columns: await q(`SELECT table_name, column_name, data_type, udt_name, datetime_precision, is_nullable, column_default
            FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`),
          indexes: await q(`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`),
          constraints: await q(`SELECT conname, pg_get_constraintdef(c.oid) AS def FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
            WHERE n.nspname = 'public' ORDER BY conname`),
          enums: await q(`SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid ORDER BY t.typname, e.enumsortorder`),
          sequences: await q(`SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public' ORDER BY sequencename`),
          public: await q(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`),
        });
      } finally {
        await client.end();
      }
    };

    beforeAll(async () => {
      url = await engine.newDatabaseUrl();
      dir = configDir(variant.config);
      sql = appSql(engine, url);
      // prisma migrate dev: its table, the migration, the record of it.
      const migration = isSqlite ? SQLITE_MIGRATION : POSTGRES_MIGRATION;
      const now = Date.now();
      await sql.exec(isSqlite ? SQLITE_MIGRATIONS_TABLE : POSTGRES_MIGRATIONS_TABLE);
      await sql.exec(migration);
      await sql.all(
        `INSERT INTO "_prisma_migrations" ("id", "checksum", "finished_at", "migration_name", "logs", "rolled_back_at", "started_at", "applied_steps_count")
         VALUES (?, ?, ${isSqlite ? '?' : 'CAST(? AS timestamptz)'}, ?, NULL, NULL, ${isSqlite ? '?' : 'CAST(? AS timestamptz)'}, 1)`,
        [randomUUID(), createHash('sha256').update(migration).digest('hex'), isSqlite ? now : new Date(now), MIGRATION_NAME, isSqlite ? now - 5 : new Date(now - 5)],
      );
      if (!isSqlite) await sql.exec(`ALTER DATABASE "${new URL(url).pathname.slice(1)}" SET timezone = '${PG_TZ}'`);

      // What Prisma Client writes: createMany, then update() per lock (each sets @updatedAt).
      const seatRows: Array<[string, string[]]> = [
        ['Eras Tour', Array.from({ length: 80 }, (_, i) => `${'ABCD'[Math.floor(i / 20)]}${(i % 20) + 1}`)],
        ['Other', Array.from({ length: 10 }, (_, i) => `A${i + 1}`)],
      ];
      for (const [name, labels] of seatRows) {
        const { id } = (await sql.all(`INSERT INTO "Event" ("name") VALUES (?) RETURNING "id"`, [name]))[0]!;
        await sql.all(
          `INSERT INTO "Seat" ("eventId", "seatNumber", "updatedAt") VALUES ${labels.map(() => '(?, ?, ?)').join(', ')}`,
          labels.flatMap((label) => [id, label, written(storage, created)]),
        );
      }
      const lock = async (event: string, user: string, inMs: number, ...labels: string[]) => {
        const at = Date.now();
        for (const label of labels) {
          await sql.all(
            `UPDATE "Seat" SET "status" = ?, "lockedUntil" = ?, "lockedBy" = ?, "updatedAt" = ?
             WHERE "seatNumber" = ? AND "eventId" = (SELECT "id" FROM "Event" WHERE "name" = ?)`,
            ['locked', written(storage, at + inMs), user, written(storage, at), label, event],
          );
        }
      };
      await lock('Eras Tour', 'alice', -60_000, 'A1', 'A2', 'A3', 'A4', 'A5');
      await lock('Eras Tour', 'bob', -1_500, 'A6');
      await lock('Eras Tour', 'dave', 600_000, 'B1', 'B2');
      await sql.all(
        `UPDATE "Seat" SET "status" = ?, "lockedUntil" = NULL, "updatedAt" = ? WHERE "seatNumber" = 'B2' AND "eventId" = (SELECT "id" FROM "Event" WHERE "name" = 'Eras Tour')`,
        ['booked', written(storage, Date.now())],
      );
      await lock('Eras Tour', 'alice', 600_000, 'B3');
      await lock('Other', 'bob', -30_000, 'A1');
    }, 120_000);

    it('doctor reads the mapping and suggests the index as @@index; migrate creates only seatctl_* tables', { timeout: 60_000 }, async () => {
      const before = await dump();
      const doctor = await seatctl('doctor');
      expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);
      expect(doctor.stderr).toBe('');
      expect(doctor.stdout).toContain(`mapping:  preset prisma, from ${join(dir, 'seatctl.config.json')}\n`);
      expect(doctor.stdout).toContain(`✔ table Seat exists (7 columns)\n`);
      expect(doctor.stdout).toContain(`✔ the columns of Seat fit the mapping (instants stored as ${storage})\n`);
      if (isSqlite) expect(doctor.stdout).toContain(`✔ the 9 expiries in Seat.lockedUntil are ${storage} values\n`);
      expect(doctor.stdout).toContain('✔ Seat.status: ');
      expect(doctor.stdout).toContain('⚠ no index serves the search for expired locks: each release reads the whole seats table\n');
      expect(doctor.stdout).toContain(
        `  add it (SQL): CREATE INDEX ${isSqlite ? '' : 'CONCURRENTLY '}"Seat_seatctl_locked" ON "Seat" ("id", "lockedUntil") WHERE "status" = 'locked';\n`,
      );
      expect(doctor.stdout).toMatch(/\n {2}or in Prisma \(model Seat; [^\n]*\):\n {4}@@index\(\[status, id, lockedUntil\]\)\n/);
      expect(doctor.stdout).not.toContain('✖');
      expect(doctor.stdout.endsWith('\nusable\n')).toBe(true);

      const migrate = await seatctl('migrate');
      expect(migrate).toMatchObject({ code: 0, stdout: 'Applied migration 001_seatctl_tables\n', stderr: '' });
      expect(await dump()).toBe(before);
      if (!isSqlite) {
        expect(await sql.all(`SELECT table_schema, table_name FROM information_schema.tables WHERE table_name LIKE 'seatctl%' ORDER BY 2`)).toEqual(
          ['seatctl_migrations', 'seatctl_release_history', 'seatctl_release_runs'].map((table_name) => ({ table_schema: 'seatctl', table_name })),
        );
      } else {
        expect((await sql.all(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'seatctl%' ORDER BY name`)).map((r) => r.name)).toEqual([
          'seatctl_migrations',
          'seatctl_release_history',
          'seatctl_release_runs',
        ]);
      }
    });

    it(`release-expired-locks frees exactly the expired locks, clears lockedUntil and lockedBy and touches updatedAt as ${storage}${isSqlite ? '' : ` (sessions in ${PG_TZ})`}`, { timeout: 60_000 }, async () => {
      const before = await seats();
      const beforeDump = await dump();
      const release = await seatctl('release-expired-locks', '--json');
      expect(release.code, release.stderr).toBe(0);
      expect(release.stderr).toBe('');
      const released = jsonLines(release.stdout);
      expect(released.pop()).toEqual({ type: 'summary', total: 7, dryRun: false });
      expect(released.map((r) => `${r.event}/${r.seat}:${r.lockedBy}`).sort()).toEqual(
        [...['A1', 'A2', 'A3', 'A4', 'A5'].map((s) => `Eras Tour/${s}:alice`), 'Eras Tour/A6:bob', 'Other/A1:bob'].sort(),
      );
      for (const r of released) {
        // The expiry Prisma wrote, to the millisecond.
        expect(r.lockedUntil, `${r.event}/${r.seat}`).toBe(new Date(instantOf(storage, before.get(`${r.event}/${r.seat}`)!.lockedUntil!)).toISOString());
      }

      const after = await seats();
      const releasedKeys = new Set(released.map((r) => `${r.event}/${r.seat}`));
      for (const r of released) {
        const key = `${r.event}/${r.seat}`;
        const seat = after.get(key)!;
        expect(seat, key).toMatchObject({ status: 'available', lockedBy: null, lockedUntil: null });
        expectStorage(storage, seat.updatedAt, seat.updatedAtType, `${key} updatedAt`);
        expect(Math.abs(instantOf(storage, seat.updatedAt) - Date.parse(r.releasedAt)), key).toBeLessThan(1000);
      }
      for (const [key, seat] of before) if (!releasedKeys.has(key)) expect(after.get(key), key).toEqual(seat);
      expect(after.get('Eras Tour/B1')).toMatchObject({ status: 'locked', lockedBy: 'dave' });
      expect(after.get('Eras Tour/B3')).toMatchObject({ status: 'locked', lockedBy: 'alice' });

      // The rest of the app's database is as it was: only those seven rows changed.
      const afterDump = JSON.parse(await dump());
      const expected = JSON.parse(beforeDump);
      if (isSqlite) {
        // Seat rows, in id order: the released ones as they are now.
        const ids = new Set([...releasedKeys].map((key) => after.get(key)!.id));
        expected.tables.Seat = expected.tables.Seat.map((row: string, i: number) => (ids.has(Number(row.split(',')[0])) ? afterDump.tables.Seat[i] : row));
      } else {
        const ids = new Set([...releasedKeys].map((key) => String(after.get(key)!.id)));
        expected.tables.Seat = expected.tables.Seat.map((row: string, i: number) => (ids.has(row.slice(1).split(',')[0]!) ? afterDump.tables.Seat[i] : row));
      }
      expect(JSON.stringify(afterDump)).toBe(JSON.stringify(expected));
    });

    it(`lock, book and unlock write the status, lockedBy, lockedUntil and updatedAt as ${storage}`, { timeout: 60_000 }, async () => {
      const before = await seats();
      const lock = await seatctl('lock', 'Eras Tour', 'C1', 'C2', 'C3', '--user', 'erin', '--ttl', '5m', '--json');
      expect(lock.code, lock.stderr).toBe(0);
      expect(lock.stderr).toBe('');
      const locked = jsonLines(lock.stdout);
      expect(locked.map((l) => [l.type, l.seat, l.lockedBy, l.lockToken, l.renewed])).toEqual([
        ['locked', 'C1', 'erin', null, false],
        ['locked', 'C2', 'erin', null, false],
        ['locked', 'C3', 'erin', null, false],
      ]);
      const lockedUntil = locked[0]!.lockedUntil as string;
      const lockedAt = new Date(Date.parse(lockedUntil) - 300_000).toISOString();
      let now = await seats();
      for (const label of ['C1', 'C2', 'C3']) {
        const seat = now.get(`Eras Tour/${label}`)!;
        expect(seat).toMatchObject({ status: 'locked', lockedBy: 'erin', lockedUntil: stored(storage, lockedUntil), updatedAt: stored(storage, lockedAt) });
        expectStorage(storage, seat.lockedUntil, seat.lockedUntilType, `${label} lockedUntil`);
        expectStorage(storage, seat.updatedAt, seat.updatedAtType, `${label} updatedAt`);
      }

      const held = await seatctl('lock', 'Eras Tour', 'C1', '--user', 'bob', '--json');
      expect(held.code).toBe(3);
      expect(jsonLines(held.stdout)).toEqual([{ type: 'conflict', event: 'Eras Tour', seat: 'C1', reason: 'held', lockedBy: 'erin', lockedUntil }]);
      expect(held.stderr).toBe('error: cannot lock C1 of Eras Tour: nothing was changed\n');
      expect(await seats()).toEqual(now);

      const book = await seatctl('book', 'Eras Tour', 'C1', '--user', 'erin', '--json');
      expect(book.code, book.stderr).toBe(0);
      expect(book.stderr).toBe('');
      const [booked] = jsonLines(book.stdout);
      expect(booked).toMatchObject({ type: 'booked', seat: 'C1', bookedBy: 'erin' });
      const unlock = await seatctl('unlock', 'Eras Tour', 'C2', '--json');
      expect(unlock.code, unlock.stderr).toBe(0);
      expect(unlock.stderr).toBe('');
      const [unlocked] = jsonLines(unlock.stdout);
      expect(unlocked).toMatchObject({ type: 'unlocked', seat: 'C2', lockedBy: 'erin', lockedUntil });

      now = await seats();
      const c1 = now.get('Eras Tour/C1')!;
      // No booked-by column in the model: lockedBy keeps saying who it was.
      expect(c1).toMatchObject({ status: 'booked', lockedBy: 'erin', lockedUntil: null });
      expectStorage(storage, c1.updatedAt, c1.updatedAtType, 'C1 updatedAt');
      expect(Math.abs(instantOf(storage, c1.updatedAt) - Date.parse(booked!.bookedAt))).toBeLessThan(1000);
      const c2 = now.get('Eras Tour/C2')!;
      expect(c2).toMatchObject({ status: 'available', lockedBy: null, lockedUntil: null });
      expectStorage(storage, c2.updatedAt, c2.updatedAtType, 'C2 updatedAt');
      expect(Math.abs(instantOf(storage, c2.updatedAt) - Date.parse(unlocked!.releasedAt))).toBeLessThan(1000);
      expect(now.get('Eras Tour/C3')).toMatchObject({ status: 'locked', lockedBy: 'erin', lockedUntil: stored(storage, lockedUntil) });
      for (const [key, seat] of before) if (!['Eras Tour/C1', 'Eras Tour/C2', 'Eras Tour/C3'].includes(key)) expect(now.get(key), key).toEqual(seat);

      const history = jsonLines((await seatctl('history', '--json')).stdout);
      expect(history.filter((h) => h.reason === 'expired')).toHaveLength(7);
      expect(history.filter((h) => h.reason === 'unlocked').map((h) => [h.seat, h.lockedBy, h.lockedUntil])).toEqual([['C2', 'erin', lockedUntil]]);
    });

    if (isSqlite) {
      /** A copy of the database (seatctl's tables included), for a test that changes the data. */
      const copy = () => {
        const file = join(tempDir('seatctl-prisma-copy-'), 'app.db');
        copyFileSync(url, file);
        return { file, sql: appSql(engine, file) };
      };
      const other: Storage = storage === 'iso-text' ? 'epoch-ms' : 'iso-text';
      const otherConfig = other === 'epoch-ms' ? { preset: 'prisma', seats: { timeStorage: 'epoch-ms' } } : { preset: 'prisma' };

      it(`doctor refuses an expiry column that mixes integers and text (exit 5, one line naming the column)`, { timeout: 60_000 }, async () => {
        const { file, sql: db } = copy();
        // One more lock written the other way, as a second Prisma engine on the same file would.
        await db.all(
          `UPDATE "Seat" SET "status" = 'locked', "lockedBy" = 'frank', "lockedUntil" = ? WHERE "seatNumber" = 'C9' AND "eventId" = (SELECT "id" FROM "Event" WHERE "name" = 'Eras Tour')`,
          [written(other, Date.now() + 600_000)],
        );
        const before = await dump(db);
        const doctor = await seatctlIn(dir, file, 'doctor');
        const kinds = storage === 'iso-text' ? '3 text, 1 integer' : '3 integer, 1 text';
        const message = `Seat.lockedUntil mixes storage classes (${kinds}): SQLite orders every integer before every text, so "has it expired?" has no answer; make the app store one form`;
        expect(doctor.code).toBe(5);
        expect(doctor.stderr).toBe(`error: the database is not usable with this mapping: ${message}\n`);
        expect(doctor.stdout).toContain(`✖ ${message}\n`);
        expect(doctor.stdout.endsWith('\nnot usable: fix the lines marked ✖\n')).toBe(true);
        expect(await dump(db)).toBe(before);
      });

      it(`doctor refuses a config whose timeStorage ("${other}") doesn't match the ${storage} data (exit 5, one line naming the column)`, { timeout: 60_000 }, async () => {
        const before = await dump();
        const doctor = await seatctlIn(configDir(otherConfig), url, 'doctor');
        const [kind, means] = storage === 'iso-text' ? ['text', 'integer'] : ['integer', 'text'];
        const message = new RegExp(
          `^Seat\\.lockedUntil holds ${kind} values \\(e\\.g\\. ${storage === 'iso-text' ? '"\\d{4}-\\d\\d-\\d\\dT[\\d:.]+\\+00:00"' : '\\d{13}'}\\), but seats\\.timeStorage "${other}" means ${means}$`,
        );
        expect(doctor.code).toBe(5);
        expect(doctor.stderr.endsWith('\n')).toBe(true);
        expect(doctor.stderr.split('\n')).toHaveLength(2);
        expect(doctor.stderr).toMatch(/^error: the database is not usable with this mapping: /);
        expect(doctor.stderr.trimEnd().replace('error: the database is not usable with this mapping: ', '')).toMatch(message);
        expect(await dump()).toBe(before);
      });

      // SEATCTL BUG: this test fails on both SQLite variants and is left failing on purpose.
      // Only doctor reads the stored values (checkInstantValues in
      // src/db/data-checks.ts); every other command checks the catalog alone
      // (fitMapping, via withSeats in src/db/ready.ts), and on SQLite the
      // catalog says DATETIME whatever the rows hold. The commands then
      // compare and write the column in the other storage's form, and SQLite
      // orders every integer before every text:
      // - "iso-text" declared over Prisma's integer milliseconds (the preset's
      //   default on a database of Prisma's native engine): every lock looks
      //   expired; release-expired-locks exits 1 "unexpected failure: NOT NULL
      //   constraint failed: seatctl_release_history.locked_until" (julianday()
      //   of an integer is NULL), list-locked shows every lock as "expired 57
      //   years ago", and lock writes ISO text into the integer column;
      // - "epoch-ms" declared over ISO text: no lock ever expires (release
      //   exits 0 having released nothing), and lock writes integers into the
      //   text column.
      // PostgreSQL is refused by its column types (the test below passes there).
      it(`release-expired-locks and lock refuse a config whose timeStorage ("${other}") doesn't match the ${storage} data, and write nothing`, { timeout: 60_000 }, async () => {
        const { file, sql: db } = copy();
        // An expired and a valid lock, as this app stores them.
        await db.all(
          `UPDATE "Seat" SET "status" = 'locked', "lockedBy" = 'gina', "lockedUntil" = CASE "seatNumber" WHEN 'D1' THEN ? ELSE ? END
           WHERE "seatNumber" IN ('D1', 'D2') AND "eventId" = (SELECT "id" FROM "Event" WHERE "name" = 'Eras Tour')`,
          [written(storage, Date.now() - 60_000), written(storage, Date.now() + 600_000)],
        );
        const before = await seats(db);
        const wrong = configDir(otherConfig);
        const release = await seatctlIn(wrong, file, 'release-expired-locks', '--json');
        const lock = await seatctlIn(wrong, file, 'lock', 'Eras Tour', 'D3', '--user', 'hank', '--json');
        const after = await seats(db);
        // No lock released, none written in the wrong storage: the seats are as they were…
        expect(Object.fromEntries(after)).toEqual(Object.fromEntries(before));
        // …because both commands refuse, in one line naming the column.
        expect({ code: release.code, stdout: release.stdout }).toEqual({ code: 5, stdout: '' });
        expect(release.stderr).toMatch(/^error: [^\n]*Seat\.lockedUntil[^\n]*\n$/);
        expect({ code: lock.code, stdout: lock.stdout }).toEqual({ code: 5, stdout: '' });
        expect(lock.stderr).toMatch(/^error: [^\n]*Seat\.lockedUntil[^\n]*\n$/);
      });
    } else {
      it('a config whose timeStorage ("epoch-ms") doesn\'t match the timestamp(3) columns: doctor, release-expired-locks and lock refuse (exit 5), nothing changes', { timeout: 60_000 }, async () => {
        const before = await dump();
        const wrong = configDir({ preset: 'prisma', seats: { timeStorage: 'epoch-ms' } });
        const message = 'Seat.lockedUntil: its type is timestamp(3) without time zone, not what "epoch-ms" needs (seats.lockedUntil, seats.timeStorage)';
        const doctor = await seatctlIn(wrong, url, 'doctor');
        expect(doctor.code).toBe(5);
        expect(doctor.stderr).toBe(`error: the database is not usable with this mapping: ${message}\n`);
        expect(doctor.stdout).toContain(`✖ ${message}\n`);
        expect(doctor.stdout).toContain('✖ Seat.updatedAt: its type is timestamp(3) without time zone, not what "epoch-ms" needs (seats.touch, seats.timeStorage)\n');
        const refusal = `error: the mapping in ${join(wrong, 'seatctl.config.json')} does not fit postgres://${new URL(url).username}@${new URL(url).host}${new URL(url).pathname}: ${message}; run seatctl doctor for the full report\n`;
        const release = await seatctlIn(wrong, url, 'release-expired-locks', '--json');
        expect(release).toMatchObject({ code: 5, stdout: '', stderr: refusal });
        const lock = await seatctlIn(wrong, url, 'lock', 'Eras Tour', 'D3', '--user', 'hank', '--json');
        expect(lock).toMatchObject({ code: 5, stdout: '', stderr: refusal });
        expect(await dump()).toBe(before);
      });
    }
  });
}
