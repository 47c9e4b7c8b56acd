// How each engine stores an app's instants (src/db/instants.ts), on real
// databases: what the codec writes, what it reads back, how comparisons in the
// column's own storage agree with the instants' order, and a mapped table of
// each storage released end to end through the library.
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { instantCodec } from '../src/db/instants.js';
import { SQLITE_NOW } from '../src/db/sqlite-release.js';
import type { InstantStorage } from '../src/mapping/instant-storage.js';
import { history, migrate, openDatabase, releaseExpiredLocks, type SeatDatabase } from '../src/index.js';
import { describeEachEngine, type EngineName } from './support/engines.js';

const STORAGES: Record<EngineName, InstantStorage[]> = {
  sqlite: ['text', 'iso-text', 'epoch-ms', 'epoch-s'],
  postgres: ['timestamptz', 'timestamp', 'epoch-ms', 'epoch-s'],
};

/** The column type an app declares for each storage (Django's, Rails', Prisma's where they have one). */
const COLUMN_TYPE: Record<EngineName, Partial<Record<InstantStorage, string>>> = {
  sqlite: { text: 'datetime', 'iso-text': 'DATETIME', 'epoch-ms': 'bigint', 'epoch-s': 'integer' },
  postgres: {
    timestamptz: 'timestamp with time zone',
    timestamp: 'timestamp(6) without time zone',
    'epoch-ms': 'bigint',
    'epoch-s': 'bigint',
  },
};

/** The stored value as text, to compare with what the app would have written. */
const RAW: Record<InstantStorage, string> = {
  text: 'v',
  'iso-text': 'v',
  'epoch-ms': 'CAST(v AS TEXT)',
  'epoch-s': 'CAST(v AS TEXT)',
  timestamp: "to_char(v, 'YYYY-MM-DD HH24:MI:SS.US')",
  timestamptz: "to_char(v AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')",
};

/** What the app itself writes for an instant (UTC). */
function appForm(storage: InstantStorage, instant: Date): string {
  const iso = instant.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const seconds = `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
  const ms = iso.slice(20, 23);
  switch (storage) {
    case 'text': // Django and Rails: microseconds, left out when zero
      return ms === '000' ? seconds : `${seconds}.${ms}000`;
    case 'iso-text':
      return `${iso.slice(0, 23)}+00:00`;
    case 'epoch-ms':
      return String(instant.getTime());
    case 'epoch-s':
      return String(Math.floor(instant.getTime() / 1000));
    case 'timestamp':
    case 'timestamptz':
      return `${seconds}.${ms}000`;
  }
}

/** The instant as the storage keeps it: whole seconds for epoch-s, milliseconds otherwise. */
const kept = (storage: InstantStorage, instant: Date): Date =>
  storage === 'epoch-s' ? new Date(Math.floor(instant.getTime() / 1000) * 1000) : instant;

const INSTANTS = [
  '2024-02-29T23:59:59.999Z', // the last millisecond of a leap day
  '2024-03-01T00:00:00.000Z', // no fraction
  '2024-03-01T00:00:00.001Z', // the same second, with one
  '2024-07-14T12:34:56.789Z',
  '2038-01-19T03:14:08.500Z', // past 32-bit seconds
].map((iso) => new Date(iso));

const ms = (date: Date, delta: number) => new Date(date.getTime() + delta);

/** Every instant and its neighbours one millisecond either side. */
const PROBES = INSTANTS.flatMap((instant) => [ms(instant, -1), instant, ms(instant, 1)]);

/** Values an app wrote with microseconds (Django's DateTimeField, Rails' datetime(6)), as UTC 'YYYY-MM-DD HH:MM:SS.ffffff'. */
const MICROS = ['2024-03-01 00:00:00.000001', '2024-03-01 00:00:00.000999', '2024-03-01 00:00:00.001500', '2024-07-14 12:34:56.789123'];
const MICRO_PROBES = ['2024-02-29T23:59:59.999Z', '2024-03-01T00:00:00.000Z', '2024-03-01T00:00:00.001Z', '2024-03-01T00:00:00.002Z', '2024-07-14T12:34:56.789Z', '2024-07-14T12:34:56.790Z'].map(
  (iso) => new Date(iso),
);
/** Microseconds since 1970 of a MICROS value. */
const micros = (text: string) => Date.parse(`${text.slice(0, 19).replace(' ', 'T')}Z`) * 1000 + Number(text.slice(20));
/** How an app inserts a MICROS value, per storage that holds microseconds. */
const MICRO_INSERT: Partial<Record<InstantStorage, { sql: string; value: (text: string) => string }>> = {
  text: { sql: '?', value: (text) => text },
  timestamptz: { sql: 'CAST(? AS timestamptz)', value: (text) => `${text}+00` },
  timestamp: { sql: 'CAST(? AS timestamp)', value: (text) => text },
};

type Conn = SeatDatabase['knex'];

describeEachEngine('instant storages', (engine) => {
  let db: SeatDatabase;
  beforeAll(async () => {
    db = await openDatabase({ url: await engine.newDatabaseUrl(), create: true });
  });
  afterAll(async () => {
    await db?.close();
  });

  const canonical = (date: Date) => canonicalInstant(engine.name, date);
  const query = async (sql: string, bindings: unknown[] = [], conn: Conn = db.knex): Promise<any[]> =>
    db.engine.rows(await conn.raw(sql, bindings as never[]));
  /** PostgreSQL: a transaction (one connection) with SET LOCAL settings. */
  const withSettings = async <T>(settings: string[], work: (conn: Conn) => Promise<T>): Promise<T> =>
    db.knex.transaction(async (trx) => {
      for (const setting of settings) await trx.raw(setting);
      return work(trx as unknown as Conn);
    });

  for (const storage of STORAGES[engine.name]) {
    describe(storage, () => {
      const codec = instantCodec(engine.name, storage);
      const table = `instants_${storage.replace('-', '_')}`;
      beforeAll(async () => {
        await query(`CREATE TABLE ${table} (id integer PRIMARY KEY, v ${COLUMN_TYPE[engine.name][storage]})`);
        await query(`CREATE INDEX ${table}_v ON ${table} (v)`);
      });
      beforeEach(async () => {
        await query(`DELETE FROM ${table}`);
      });

      const store = async (instants: Date[], conn: Conn = db.knex) => {
        for (const [i, instant] of instants.entries()) {
          await query(`INSERT INTO ${table} (id, v) VALUES (?, ${codec.store(canonical(instant))})`, [i + 1], conn);
        }
      };

      /** For every row (by id) and every probe: [v <= compare(probe), v > compare(probe)]. */
      const comparisons = async (probes: Date[], conn: Conn = db.knex) => {
        const out: string[] = [];
        for (const probe of probes) {
          const rows = await query(
            `SELECT id, CASE WHEN v <= ${codec.compare(canonical(probe))} THEN 1 ELSE 0 END AS le,
                    CASE WHEN v > ${codec.compare(canonical(probe))} THEN 1 ELSE 0 END AS gt
             FROM ${table} ORDER BY id`,
            [],
            conn,
          );
          for (const row of rows) out.push(`#${row.id} ${Number(row.le) ? '<=' : ''}${Number(row.gt) ? '>' : ''} ${probe.toISOString()}`);
        }
        return out;
      };
      /** The same, from the instants' own order. */
      const expectedComparisons = (stored: Date[], probes: Date[]) =>
        probes.flatMap((probe) => stored.map((s, i) => `#${i + 1} ${s <= probe ? '<=' : '>'} ${probe.toISOString()}`));

      const readBack = async (conn: Conn = db.knex) =>
        (await query(`SELECT ${codec.read('v')} AS instant, ${RAW[storage]} AS raw FROM ${table} ORDER BY id`, [], conn)).map(
          (row) => ({ instant: db.engine.readInstant(row.instant).toISOString(), raw: String(row.raw) }),
        );
      const expectedReadBack = (instants: Date[]) =>
        instants.map((instant) => ({ instant: kept(storage, instant).toISOString(), raw: appForm(storage, instant) }));

      it('stores an instant as the app would, and reads it back as the same instant', async () => {
        await store(INSTANTS);
        expect(await readBack()).toEqual(expectedReadBack(INSTANTS));
      });

      it('compares the stored column with an instant as the instants compare, at and one millisecond around each', async () => {
        await store(INSTANTS);
        const stored = INSTANTS.map((instant) => kept(storage, instant));
        expect(await comparisons(PROBES)).toEqual(expectedComparisons(stored, PROBES));
      });

      const micro = MICRO_INSERT[storage];
      if (micro !== undefined) {
        it('compares values written with microseconds by the instant they hold, and reads them to the millisecond', async () => {
          for (const [i, text] of MICROS.entries()) {
            await query(`INSERT INTO ${table} (id, v) VALUES (?, ${micro.sql})`, [i + 1, micro.value(text)]);
          }
          const out: string[] = [];
          for (const probe of MICRO_PROBES) {
            out.push(...MICROS.map((text, i) => `#${i + 1} ${micros(text) <= probe.getTime() * 1000 ? '<=' : '>'} ${probe.toISOString()}`));
          }
          expect(await comparisons(MICRO_PROBES)).toEqual(out);
          const read = await readBack();
          for (const [i, text] of MICROS.entries()) {
            expect(Math.abs(new Date(read[i]!.instant).getTime() * 1000 - micros(text)), text).toBeLessThan(1000);
          }
        });
      }

      if (engine.name === 'postgres') {
        it.each(['America/New_York', 'Asia/Kathmandu'])('stores, reads and compares the same under the session time zone %s', async (zone) => {
          await withSettings([`SET LOCAL TIME ZONE '${zone}'`], async (conn) => {
            await store(INSTANTS, conn);
            expect(await readBack(conn)).toEqual(expectedReadBack(INSTANTS));
            const stored = INSTANTS.map((instant) => kept(storage, instant));
            expect(await comparisons(PROBES, conn)).toEqual(expectedComparisons(stored, PROBES));
            // Against the server's clock: an hour is less than either zone's offset from UTC.
            await query(`DELETE FROM ${table}`, [], conn);
            await query(
              `INSERT INTO ${table} (id, v) VALUES (1, ${codec.store("(now() - interval '1 hour')")}), (2, ${codec.store("(now() + interval '1 hour')")})`,
              [],
              conn,
            );
            const due = await query(`SELECT id FROM ${table} WHERE v <= ${codec.compare('now()')} ORDER BY id`, [], conn);
            expect(due.map((row) => Number(row.id))).toEqual([1]);
          });
        });
      }

      it("an index on the column serves `column <= compare(now)` with the release's clock", async () => {
        await store(INSTANTS);
        if (engine.name === 'sqlite') {
          const plan = await query(`EXPLAIN QUERY PLAN SELECT id FROM ${table} WHERE v <= ${codec.compare(`(${SQLITE_NOW} - 0)`)}`);
          expect(plan.map((row) => row.detail).join('\n')).toMatch(new RegExp(`^SEARCH ${table} USING (COVERING )?INDEX ${table}_v \\(v<\\?\\)$`));
        } else {
          // statement_timestamp() is stable: the planner may use it as an index bound.
          const plan = await withSettings(['SET LOCAL enable_seqscan = off'], (conn) =>
            query(`EXPLAIN SELECT id FROM ${table} WHERE v <= ${codec.compare('statement_timestamp()')}`, [], conn),
          );
          const text = plan.map((row) => row['QUERY PLAN']).join('\n');
          expect(text).toMatch(new RegExp(`Index (Only )?Scan (using|on) ${table}_v`));
          expect(text).toMatch(/Index Cond: \(v <= /);
        }
      });
    });
  }

  describe('a mapped table released end to end', () => {
    for (const storage of STORAGES[engine.name]) {
      it(`${storage}: exactly the expired locks are released, the rest left as they were`, async () => {
        const url = await engine.newDatabaseUrl();
        const type = COLUMN_TYPE[engine.name][storage];
        await appDatabase(engine.name, url, [
          `CREATE TABLE box_office_seat (
            pk integer PRIMARY KEY,
            show_id integer NOT NULL,
            label varchar(10) NOT NULL,
            state varchar(10) NOT NULL,
            holder varchar(50),
            hold_until ${type},
            changed_at ${type} NOT NULL
          )`,
        ]);
        const app = await openDatabase({
          url,
          mapping: {
            seats: {
              table: 'box_office_seat',
              id: 'pk',
              event: 'show_id',
              seat: 'label',
              status: 'state',
              statusValues: { available: 'free', locked: 'held', booked: 'sold' },
              lockedUntil: 'hold_until',
              timeStorage: storage,
              holder: 'holder',
              touch: ['changed_at'],
            },
            events: null,
          },
        });
        try {
          expect((await migrate(app)).applied).toEqual(['001_seatctl_tables']);
          const codec = instantCodec(engine.name, storage);
          const [{ now: rawNow }] = app.engine.rows(await app.knex.raw(`SELECT ${app.engine.now} AS now`));
          const now = app.engine.readInstant(rawNow);
          const MINUTE = 60_000;
          const changedAt = new Date('2020-01-01T00:00:00.000Z');
          const seats: Array<[pk: number, label: string, state: string, holder: string | null, untilMs: number | null]> = [
            [1, 'A1', 'held', 'alice', -60 * MINUTE], // expired an hour ago
            [2, 'A2', 'held', 'bob', -5_000], // expired seconds ago (still past in whole seconds)
            [3, 'A3', 'held', 'carol', 60 * MINUTE], // valid for an hour
            [4, 'A4', 'free', null, null],
            [5, 'A5', 'sold', 'dave', -60 * MINUTE], // booked: its stale expiry means nothing
            [6, 'A6', 'held', 'erin', 10 * MINUTE],
            [7, 'B1', 'held', 'frank', -2 * MINUTE], // another show
          ];
          for (const [pk, label, state, holder, untilMs] of seats) {
            await app.knex.raw(
              `INSERT INTO box_office_seat (pk, show_id, label, state, holder, hold_until, changed_at)
               VALUES (?, ?, ?, ?, ?, ${untilMs === null ? 'NULL' : codec.store(canonicalInstant(engine.name, ms(now, untilMs)))}, ${codec.store(canonicalInstant(engine.name, changedAt))})`,
              [pk, label.startsWith('A') ? 7 : 8, label, state, holder],
            );
          }
          const dump = async () =>
            app.engine.rows(
              await app.knex.raw(
                `SELECT pk, show_id, label, state, holder, ${RAW_COLUMN(storage, 'hold_until')} AS hold_until, ${RAW_COLUMN(storage, 'changed_at')} AS changed_at, ${codec.read('changed_at')} AS changed
                 FROM box_office_seat ORDER BY pk`,
              ),
            );
          const before = await dump();

          const report = await releaseExpiredLocks(app);

          const expired = [seats[0]!, seats[1]!, seats[6]!];
          expect(report.total).toBe(3);
          expect(report.dryRun).toBe(false);
          expect(
            report.released.map(({ seatId, eventId, seat, lockedBy, lockedUntil, lockToken }) => ({ seatId, eventId, seat, lockedBy, lockedUntil, lockToken })),
          ).toEqual(
            expired.map(([pk, label, , holder, untilMs]) => ({
              seatId: pk,
              eventId: label.startsWith('A') ? 7 : 8,
              seat: label,
              lockedBy: holder,
              lockedUntil: kept(storage, ms(now, untilMs!)),
              lockToken: null,
            })),
          );

          const after = await dump();
          for (const [i, row] of after.entries()) {
            const pk = Number(row.pk);
            if (![1, 2, 7].includes(pk)) {
              expect(row, `seat ${pk} is untouched`).toEqual(before[i]);
              continue;
            }
            const { changed, changed_at: changedRaw, ...rest } = row;
            const { changed: _changed, changed_at: _changedRaw, ...was } = before[i];
            expect(rest, `seat ${pk} is released`).toEqual({ ...was, state: 'free', holder: null, hold_until: null });
            // Touched with the release's instant, written in the table's own storage.
            const touched = app.engine.readInstant(changed);
            const form = appForm(storage, touched);
            // PostgreSQL's clock has microseconds, which a timestamp column keeps.
            if (storage === 'timestamp' || storage === 'timestamptz') expect(changedRaw.slice(0, 23)).toBe(form.slice(0, 23));
            else expect(changedRaw).toBe(form);
            expect(touched.getTime()).toBeGreaterThanOrEqual(kept(storage, now).getTime());
            expect(touched.getTime() - now.getTime()).toBeLessThan(MINUTE);
          }

          const logged = await history(app);
          expect(logged.map((entry) => [entry.seat, entry.lockedBy, entry.reason, entry.lockedUntil.toISOString()]).sort()).toEqual(
            expired.map(([, label, , holder, untilMs]) => [label, holder, 'expired', kept(storage, ms(now, untilMs!)).toISOString()]).sort(),
          );
          expect((await releaseExpiredLocks(app)).total).toBe(0);
        } finally {
          await app.close();
        }
      });
    }
  });
});

/** A canonical instant as SQL: integer milliseconds on SQLite, timestamptz on PostgreSQL. */
function canonicalInstant(engine: EngineName, date: Date): string {
  return engine === 'sqlite' ? `CAST(${date.getTime()} AS INTEGER)` : `CAST('${date.toISOString()}' AS timestamptz)`;
}

/** The column as the app stored it, as text (NULL stays NULL). */
function RAW_COLUMN(storage: InstantStorage, column: string): string {
  return RAW[storage].replace(/\bv\b/g, column);
}

/** Creates the app's database and its tables, as the app would (not through seatctl). */
async function appDatabase(engine: EngineName, url: string, statements: string[]): Promise<void> {
  if (engine === 'sqlite') {
    const file = new Database(url);
    try {
      for (const sql of statements) file.exec(sql);
    } finally {
      file.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const sql of statements) await client.query(sql);
  } finally {
    await client.end();
  }
}
