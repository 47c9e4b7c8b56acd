// seatctl on a real Rails app's database: ActiveRecord 6.1 (Debian's
// ruby-activerecord) creates it with its own migration and writes every lock
// through its models; seatctl runs every command on it with {"preset": "rails"};
// ActiveRecord reads the seats back. On SQLite and on PostgreSQL, where the
// database's default time zone is Asia/Kolkata: Rails stores UTC in a
// `timestamp without time zone`, and a comparison with now() would move every
// expiry by five and a half hours.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { appSkipReason, newAppDatabase, runApp } from './support/apps.js';
import { jsonLines, runCli } from './support/cli.js';
import { ENGINES, tempDir } from './support/engines.js';

interface RailsSeat {
  event: string;
  seat: string;
  status: 'available' | 'locked' | 'booked';
  status_raw: number;
  locked_until: string | null;
  locked_by: string | null;
  updated_at: string;
  created_at: string;
}

type Row = Record<string, unknown>;
type Dump = { tables: Record<string, Row[]>; schema: unknown };

const skip = appSkipReason('rails');
const TZ = 'Asia/Kolkata';

/** The `…not a seatctl database…` line every command prints on a Rails database without a config. */
const notSeatctl = (display: string) =>
  `the database ${display} is not a seatctl database (it has the tables ar_internal_metadata, schema_migrations); ` +
  `to run seatctl on an app's own tables, describe them in seatctl.config.json: see "Existing databases" in seatctl's README`;

/** How seatctl names a database in messages: the path, or the URL without its password. */
function display(url: string): string {
  if (!url.startsWith('postgres')) return url;
  const u = new URL(url);
  return `postgres://${u.username}@${u.host}${u.pathname}`;
}

/** Rails' instants (microseconds) for an instant seatctl reported (milliseconds): equal to the millisecond. */
const micros = (iso: string) => iso.replace(/Z$/, '000Z');

async function pgRows<T = Row>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Every table outside PostgreSQL's own schemas, as schema.table. */
const pgTables = (url: string) =>
  pgRows<{ t: string }>(
    url,
    `SELECT table_schema || '.' || table_name AS t FROM information_schema.tables
     WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
  ).then((rows) => rows.map((r) => r.t));

/** sqlite_master, read-only: type name (table). */
function sqliteObjects(file: string): string[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare('SELECT type, name, tbl_name FROM sqlite_master ORDER BY type, name')
      .all()
      .map((r: any) => `${r.type} ${r.name} (${r.tbl_name})`);
  } finally {
    db.close();
  }
}

for (const engine of ENGINES) {
  const reason = skip ?? engine.skipReason;
  describe.skipIf(reason !== null)(`a Rails app's database [${engine.name}${reason ? `: skipped, ${reason}` : ''}]`, () => {
    let url: string;
    let dir: string; // holds seatctl.config.json
    let bare: string; // no config anywhere up the tree
    const rails = <T = any>(...args: string[]) => runApp<T>('rails', url, args);
    const dump = () => rails<Dump>('dump');
    const read = async () => new Map((await rails<RailsSeat[]>('read')).map((s) => [`${s.event}/${s.seat}`, s]));
    // SEATCTL_CONFIG unset: the config is the file in the working directory, or none.
    const seatctl = (...args: string[]) => runCli(['--db', url, ...args], { cwd: dir, env: { SEATCTL_CONFIG: undefined } });
    const unmapped = (...args: string[]) => runCli(['--db', url, ...args], { cwd: bare, env: { SEATCTL_CONFIG: undefined } });
    /** Rails' lock of A6, a whole second: its stored text has no fraction. */
    let wholeSecond: string;
    /** event/seat → the expiry Rails stored (microseconds), as its lock command read it back. */
    const railsExpiry = new Map<string, string>();
    const railsLock = async (event: string, user: string, ms: string, ...seats: string[]) => {
      const { locked } = await rails<{ locked: Array<{ seat: string; locked_until: string }> }>('lock', event, '--user', user, '--expires-in-ms', ms, ...seats);
      for (const l of locked) railsExpiry.set(`${event}/${l.seat}`, l.locked_until);
      return locked;
    };

    beforeAll(async () => {
      url = await newAppDatabase('rails', engine);
      dir = tempDir('seatctl-rails-');
      bare = tempDir('seatctl-rails-bare-');
      if (engine.name === 'postgres') {
        // The default zone of every session seatctl opens (Rails sets its own sessions to UTC).
        await pgRows(url, `ALTER DATABASE "${new URL(url).pathname.slice(1)}" SET timezone = '${TZ}'`);
      }
      await rails('create-event', 'Eras Tour', '--seats', '60');
      await rails('create-event', 'Other', '--seats', '10');
      await railsLock('Eras Tour', 'alice', '-60000', 'A1', 'A2', 'A3', 'A4', 'A5');
      wholeSecond = (await railsLock('Eras Tour', 'bob', '-5000', '--whole-second', 'A6'))[0]!.locked_until;
      await railsLock('Eras Tour', 'dave', '600000', 'B1', 'B2');
      await rails('book', 'Eras Tour', 'B2');
      await railsLock('Eras Tour', 'alice', '600000', 'B3');
      await railsLock('Other', 'bob', '-30000', 'A1');
    }, 180_000);

    it('without a config every command refuses the database (exit 5), names its tables and the README section, and changes nothing', { timeout: 120_000 }, async () => {
      const before = await dump();
      const file = engine.name === 'sqlite' ? readFileSync(url) : undefined;
      const files = engine.name === 'sqlite' ? readdirSync(dirname(url)) : undefined;
      const tables = engine.name === 'postgres' ? await pgTables(url) : undefined;
      const refusal = `error: ${notSeatctl(display(url))}\n`;

      const commands = [
        ['migrate'],
        ['list-locked'],
        ['release-expired-locks'],
        ['release-expired-locks', '--dry-run'],
        ['lock', 'Eras Tour', 'C1', '--user', 'erin'],
        ['book', 'Eras Tour', 'B3', '--user', 'alice'],
        ['unlock', 'Eras Tour', 'B3'],
        ['history'],
        ['stats'],
        ['seed'],
      ];
      for (const args of commands) {
        const result = await unmapped(...args);
        expect({ args, code: result.code, stdout: result.stdout, stderr: result.stderr }).toEqual({ args, code: 5, stdout: '', stderr: refusal });
        if (file !== undefined) {
          // The file byte for byte, and no journal, WAL or side file left beside it.
          expect(readFileSync(url).equals(file), `${args.join(' ')} changed the file`).toBe(true);
          expect(readdirSync(dirname(url))).toEqual(files);
        }
      }

      const doctor = await unmapped('doctor');
      expect(doctor.code).toBe(5);
      expect(doctor.stdout).toBe(
        `database: ${display(url)} (${engine.name === 'sqlite' ? 'SQLite' : 'PostgreSQL'})\n` +
          'mapping:  preset seatctl, from the default schema\n' +
          `✖ ${notSeatctl(display(url))}\n` +
          'not usable: fix the lines marked ✖\n',
      );
      expect(doctor.stderr).toBe(`error: the database is not usable with this mapping: ${notSeatctl(display(url))}\n`);

      if (file !== undefined) {
        expect(readFileSync(url).equals(file)).toBe(true);
        expect(readdirSync(dirname(url))).toEqual(files);
      } else {
        // migrate made no schema, no knex_migrations, no table anywhere (it used to stop half-way: "table events already exists").
        expect(await pgTables(url)).toEqual(tables);
        expect(await pgRows(url, `SELECT nspname FROM pg_namespace WHERE nspname = 'seatctl'`)).toEqual([]);
      }
      expect(JSON.stringify(await dump())).toBe(JSON.stringify(before));
    });

    it('with {"preset": "rails"}: doctor reads the mapping and suggests the index as a Rails migration; migrate creates only seatctl_* tables', { timeout: 120_000 }, async () => {
      writeFileSync(join(dir, 'seatctl.config.json'), JSON.stringify({ preset: 'rails' }));
      const before = await dump();
      const storage = engine.name === 'sqlite' ? 'text' : 'timestamp';
      const idiom = '    add_index :seats, [:id, :locked_until], where: "status = 1", name: "index_seats_on_locked_until_locked"\n';

      const doctor = await seatctl('doctor');
      expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);
      expect(doctor.stderr).toBe('');
      expect(doctor.stdout).toContain(`mapping:  preset rails, from ${join(dir, 'seatctl.config.json')}\n`);
      expect(doctor.stdout).toContain(`✔ the columns of seats fit the mapping (instants stored as ${storage})\n`);
      expect(doctor.stdout).toContain(
        "⚠ seatctl's own tables (seatctl_release_history, seatctl_release_runs) are missing: run seatctl migrate before the other commands (it creates them and nothing else)\n",
      );
      expect(doctor.stdout).toContain('⚠ no index serves the search for expired locks: each release reads the whole seats table\n');
      expect(doctor.stdout).toContain(
        `  add it (SQL): CREATE INDEX ${engine.name === 'postgres' ? 'CONCURRENTLY ' : ''}"seats_seatctl_locked" ON "seats" ("id", "locked_until") WHERE "status" = 1;\n`,
      );
      expect(doctor.stdout).toContain(`  or in Rails (a migration):\n${idiom}`);
      expect(doctor.stdout.endsWith('\nusable\n')).toBe(true);

      // Without its own tables seatctl refuses to run, and says how to get them.
      const early = await seatctl('list-locked');
      expect(early).toMatchObject({
        code: 5,
        stdout: '',
        stderr: `error: seatctl's own tables (seatctl_release_history, seatctl_release_runs) are missing from ${display(url)}: run seatctl migrate, which creates them and nothing else (or have a DBA apply seatctl migrate --print-sql)\n`,
      });

      const objects = engine.name === 'sqlite' ? sqliteObjects(url) : await pgTables(url);
      const migrate = await seatctl('migrate');
      expect(migrate).toMatchObject({ code: 0, stdout: 'Applied migration 001_seatctl_tables\n', stderr: '' });
      expect(await seatctl('migrate')).toMatchObject({ code: 0, stdout: 'Database is up to date\n', stderr: '' });

      // Rails' tables, rows, indexes, sequences and settings are as they were, byte for byte.
      expect(JSON.stringify(await dump())).toBe(JSON.stringify(before));
      if (engine.name === 'sqlite') {
        const added = sqliteObjects(url).filter((o) => !objects.includes(o));
        expect(added.filter((o) => o.startsWith('table '))).toEqual([
          'table seatctl_migrations (seatctl_migrations)',
          'table seatctl_release_history (seatctl_release_history)',
          'table seatctl_release_runs (seatctl_release_runs)',
        ]);
        expect(added.every((o) => / \(seatctl_[a-z_]+\)$/.test(o))).toBe(true);
      } else {
        expect((await pgTables(url)).filter((t) => !objects.includes(t))).toEqual([
          'seatctl.seatctl_migrations',
          'seatctl.seatctl_release_history',
          'seatctl.seatctl_release_runs',
        ]);
      }

      const checked = await seatctl('doctor');
      expect(checked.code, checked.stdout).toBe(0);
      expect(checked.stderr).toBe('');
      expect(checked.stdout).toContain("✔ seatctl's own tables are set up (seatctl_release_history, seatctl_release_runs)\n");
      expect(checked.stdout).not.toContain('✖');
      expect(checked.stdout).toContain(`  or in Rails (a migration):\n${idiom}`);
    });

    it(`list-locked and release-expired-locks: exactly the expired locks go back on sale${engine.name === 'postgres' ? ` (sessions in ${TZ})` : ''}; Rails reads them as available, updated_at moved`, { timeout: 120_000 }, async () => {
      if (engine.name === 'postgres') {
        // Every new session on this database, seatctl's included, runs in Asia/Kolkata (UTC+05:30).
        expect(await pgRows(url, 'SHOW timezone')).toEqual([{ TimeZone: TZ }]);
      }
      const before = await dump();
      const seatsBefore = await read();
      // Rails stored the whole-second expiry without a fraction.
      const eras = before.tables.events!.find((e) => e.name === 'Eras Tour')!.id;
      const a6Row = before.tables.seats!.find((r) => r.seat_number === 'A6' && r.event_id === eras)!;
      expect(a6Row.locked_until).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);

      const list = await seatctl('list-locked', '--json');
      expect(list.code, list.stderr).toBe(0);
      expect(list.stderr).toBe('');
      const listed = jsonLines(list.stdout);
      expect(listed.pop()).toEqual({ type: 'summary', total: 9, expired: 7, active: 2 });
      const state = Object.fromEntries(listed.map((l) => [`${l.event}/${l.seat}`, `${l.lockedBy}:${l.expired ? 'expired' : 'active'}`]));
      expect(state).toEqual({
        ...Object.fromEntries(['A1', 'A2', 'A3', 'A4', 'A5'].map((s) => [`Eras Tour/${s}`, 'alice:expired'])),
        'Eras Tour/A6': 'bob:expired',
        'Eras Tour/B1': 'dave:active',
        'Eras Tour/B3': 'alice:active',
        'Other/A1': 'bob:expired',
      });
      // The expiries Rails wrote (microseconds), in milliseconds; exactly which millisecond is the last test's business.
      for (const l of listed) expect(Math.abs(Date.parse(l.lockedUntil) - Date.parse(railsExpiry.get(`${l.event}/${l.seat}`)!))).toBeLessThanOrEqual(1);

      const started = Date.now();
      const release = await seatctl('release-expired-locks', '--json');
      const ended = Date.now();
      expect(release.code, release.stderr).toBe(0);
      expect(release.stderr).toBe('');
      const released = jsonLines(release.stdout);
      expect(released.pop()).toEqual({ type: 'summary', total: 7, dryRun: false });
      // Expired one minute ago: released. Valid ten more minutes (B1, B3): not — the zone moved nothing.
      expect(released.map((r) => `${r.event}/${r.seat}:${r.lockedBy}`).sort()).toEqual(
        [...['A1', 'A2', 'A3', 'A4', 'A5'].map((s) => `Eras Tour/${s}:alice`), 'Eras Tour/A6:bob', 'Other/A1:bob'].sort(),
      );
      // The whole-second expiry read as the very instant Rails meant.
      const a6 = released.find((r) => r.event === 'Eras Tour' && r.seat === 'A6')!;
      expect(a6.lockedUntil).toMatch(/:\d\d\.000Z$/);
      expect(micros(a6.lockedUntil)).toBe(wholeSecond);

      const seats = await read();
      for (const r of released) {
        const key = `${r.event}/${r.seat}`;
        const seat = seats.get(key)!;
        expect(seat, key).toMatchObject({ status: 'available', status_raw: 0, locked_until: null, locked_by: null });
        // updated_at moved forward to the release.
        const touched = Date.parse(seat.updated_at);
        expect(touched, key).toBeGreaterThan(Date.parse(seatsBefore.get(key)!.updated_at));
        expect(Math.abs(touched - Date.parse(r.releasedAt)), key).toBeLessThan(1000);
        expect(touched).toBeGreaterThanOrEqual(started - 1000);
        expect(touched).toBeLessThanOrEqual(ended + 1000);
      }
      // Every other seat exactly as before, updated_at included.
      const releasedKeys = new Set(released.map((r) => `${r.event}/${r.seat}`));
      for (const [key, seat] of seatsBefore) if (!releasedKeys.has(key)) expect(seats.get(key), key).toEqual(seat);
      expect(seats.get('Eras Tour/B1')).toMatchObject({ status: 'locked', locked_by: 'dave' });
      expect(seats.get('Eras Tour/B2')).toMatchObject({ status: 'booked', locked_by: 'dave', locked_until: null });
      expect(seats.get('Eras Tour/B3')).toMatchObject({ status: 'locked', locked_by: 'alice' });

      // Byte for byte: the app's tables differ only in the released seats' status, locked_until, locked_by and updated_at.
      const after = await dump();
      const expected = structuredClone(before);
      const eventIds = new Map(before.tables.events!.map((e) => [String(e.id), String(e.name)]));
      const updatedAfter = new Map(after.tables.seats!.map((r) => [String(r.id), r.updated_at]));
      let changed = 0;
      for (const row of expected.tables.seats!) {
        if (!releasedKeys.has(`${eventIds.get(String(row.event_id))}/${row.seat_number}`)) continue;
        changed++;
        row.status = engine.name === 'sqlite' ? 0 : '0';
        row.locked_until = null;
        row.locked_by = null;
        row.updated_at = updatedAfter.get(String(row.id));
      }
      expect(changed).toBe(7);
      expect(JSON.stringify(after)).toBe(JSON.stringify(expected));

      // Nothing left to release.
      expect(await seatctl('release-expired-locks', '--json')).toMatchObject({
        code: 0,
        stdout: '{"type":"summary","total":0,"dryRun":false}\n',
        stderr: '',
      });
    });

    it('lock, book and unlock write what Rails reads as its own: the integer enum, locked_by, UTC datetimes, updated_at', { timeout: 120_000 }, async () => {
      const before = await read();
      const lock = await seatctl('lock', 'Eras Tour', 'C1', 'C2', 'C3', '--user', 'erin', '--ttl', '5m', '--json');
      expect(lock.code, lock.stderr).toBe(0);
      expect(lock.stderr).toBe('');
      const locked = jsonLines(lock.stdout);
      expect(locked.map((l) => [l.type, l.seat, l.lockedBy, l.lockToken, l.lockedAt, l.renewed])).toEqual([
        ['locked', 'C1', 'erin', null, null, false],
        ['locked', 'C2', 'erin', null, null, false],
        ['locked', 'C3', 'erin', null, null, false],
      ]);
      const lockedUntil = locked[0]!.lockedUntil as string;
      let seats = await read();
      for (const name of ['C1', 'C2', 'C3']) {
        const seat = seats.get(`Eras Tour/${name}`)!;
        expect(seat).toMatchObject({ status: 'locked', status_raw: 1, locked_by: 'erin' });
        // To the millisecond: Rails' microseconds are seatctl's milliseconds and three zeros.
        expect(seat.locked_until).toBe(micros(lockedUntil));
        // Touched with the lock's instant: the expiry less the 5 minutes.
        expect(seat.updated_at).toBe(micros(new Date(Date.parse(lockedUntil) - 300_000).toISOString()));
        expect(seat.created_at).toBe(before.get(`Eras Tour/${name}`)!.created_at);
      }

      const held = await seatctl('lock', 'Eras Tour', 'C1', '--user', 'bob', '--json');
      expect(held.code).toBe(3);
      expect(jsonLines(held.stdout)).toEqual([
        { type: 'conflict', event: 'Eras Tour', seat: 'C1', reason: 'held', lockedBy: 'erin', lockedUntil },
      ]);
      expect(held.stderr).toBe('error: cannot lock C1 of Eras Tour: nothing was changed\n');
      // A seat Rails booked is never locked by seatctl.
      const booked = await seatctl('lock', 'Eras Tour', 'B2', '--user', 'erin', '--json');
      expect(booked.code).toBe(3);
      expect(jsonLines(booked.stdout)).toEqual([
        { type: 'conflict', event: 'Eras Tour', seat: 'B2', reason: 'booked', lockedBy: 'dave', lockedUntil: null },
      ]);
      expect(booked.stderr).toBe('error: cannot lock B2 of Eras Tour: nothing was changed\n');
      // Refusals changed nothing.
      expect(await read()).toEqual(seats);

      const book = await seatctl('book', 'Eras Tour', 'C1', '--user', 'erin', '--json');
      expect(book.code, book.stderr).toBe(0);
      expect(book.stderr).toBe('');
      const [bookedC1] = jsonLines(book.stdout);
      expect(bookedC1).toMatchObject({ type: 'booked', event: 'Eras Tour', seat: 'C1', bookedBy: 'erin' });
      const unlock = await seatctl('unlock', 'Eras Tour', 'C2', '--json');
      expect(unlock.code, unlock.stderr).toBe(0);
      expect(unlock.stderr).toBe('');
      const [unlockedC2] = jsonLines(unlock.stdout);
      expect(unlockedC2).toMatchObject({ type: 'unlocked', event: 'Eras Tour', seat: 'C2', lockedBy: 'erin', lockedUntil });

      // Rails books a lock seatctl placed: it reads the expiry as valid.
      expect(await rails('book', 'Eras Tour', 'C3')).toEqual({ booked: ['C3'], refused: [] });

      const lockInstant = Date.parse(lockedUntil) - 300_000;
      seats = await read();
      const c1 = seats.get('Eras Tour/C1')!;
      // Booked; the preset has no booked-by column, so locked_by keeps saying who it was.
      expect(c1).toMatchObject({ status: 'booked', status_raw: 2, locked_by: 'erin', locked_until: null });
      expect(Date.parse(c1.updated_at)).toBeGreaterThan(lockInstant);
      expect(Math.abs(Date.parse(c1.updated_at) - Date.parse(bookedC1!.bookedAt))).toBeLessThan(1000);
      const c2 = seats.get('Eras Tour/C2')!;
      expect(c2).toMatchObject({ status: 'available', status_raw: 0, locked_by: null, locked_until: null });
      expect(Date.parse(c2.updated_at)).toBeGreaterThan(lockInstant);
      expect(Math.abs(Date.parse(c2.updated_at) - Date.parse(unlockedC2!.releasedAt))).toBeLessThan(1000);
      expect(seats.get('Eras Tour/C3')).toMatchObject({ status: 'booked', status_raw: 2, locked_by: 'erin', locked_until: null });
      // The seats seatctl did not write are as they were.
      for (const [key, seat] of before) if (!['Eras Tour/C1', 'Eras Tour/C2', 'Eras Tour/C3'].includes(key)) expect(seats.get(key), key).toEqual(seat);
    });

    it('history and stats: what seatctl released, and the seats as Rails left them', { timeout: 60_000 }, async () => {
      const history = await seatctl('history', '--json');
      expect(history.code, history.stderr).toBe(0);
      expect(history.stderr).toBe('');
      const rows = jsonLines(history.stdout).filter((h) => h.type === 'release');
      expect(rows.filter((h) => h.reason === 'expired').map((h) => `${h.event}/${h.seat}:${h.lockedBy}`).sort()).toEqual(
        [...['A1', 'A2', 'A3', 'A4', 'A5'].map((s) => `Eras Tour/${s}:alice`), 'Eras Tour/A6:bob', 'Other/A1:bob'].sort(),
      );
      expect(rows.filter((h) => h.reason === 'unlocked').map((h) => [h.event, h.seat, h.lockedBy])).toEqual([['Eras Tour', 'C2', 'erin']]);
      expect(rows.find((h) => h.seat === 'A6')!.lockedUntil).toBe(wholeSecond.replace('000Z', 'Z'));

      const stats = await seatctl('stats', '--json');
      expect(stats.code, stats.stderr).toBe(0);
      expect(stats.stderr).toBe('');
      const records = jsonLines(stats.stdout);
      expect(records.filter((r) => r.type === 'event')).toEqual([
        // B2, C1 and C3 booked; B1 and B3 still locked (valid).
        { type: 'event', event: 'Eras Tour', eventId: expect.any(Number), seats: 60, available: 55, locked: 2, expired: 0, booked: 3 },
        { type: 'event', event: 'Other', eventId: expect.any(Number), seats: 10, available: 10, locked: 0, expired: 0, booked: 0 },
      ]);
      const summary = records.find((r) => r.type === 'summary')!;
      expect(summary).toMatchObject({ seats: 70, available: 65, locked: 2, expired: 0, booked: 3, stale: false });
      expect(summary.lastRun).toMatchObject({ released: 0 });
    });

    // SEATCTL BUG (SQLite only, minor): this test fails on SQLite and is left failing on purpose.
    // seatctl reads a text expiry as CAST((julianday(c) - 2440587.5) * 86400000.0 + 0.5 AS INTEGER)
    // (sqliteTextToMs in src/db/instants.ts): rounded to the nearest millisecond, so a Rails
    // expiry of …:42.714567 is reported as …:42.715Z by list-locked, release-expired-locks and
    // history, where PostgreSQL (and JavaScript's Date) report the same stored instant as
    // …:42.714Z. Which locks expire is not affected: that comparison is made in the column's own
    // text form. (It passes by chance only if all eight fractional expiries Rails wrote fall in
    // the first half of their millisecond: 1 run in 256.)
    it('an expiry Rails wrote with microseconds is reported in the millisecond it falls in (truncated, as on PostgreSQL)', { timeout: 60_000 }, async () => {
      const reported = new Map<string, string>();
      const history = jsonLines((await seatctl('history', '--json')).stdout).filter((h) => h.type === 'release' && h.reason === 'expired');
      const listed = jsonLines((await seatctl('list-locked', '--json')).stdout).filter((l) => l.type === 'lock');
      for (const r of [...history, ...listed]) reported.set(`${r.event}/${r.seat}`, r.lockedUntil);
      expect(reported.size).toBe(9); // 7 released, B1 and B3 still locked
      const truncated = new Map([...reported.keys()].map((key) => [key, new Date(Date.parse(railsExpiry.get(key)!)).toISOString()]));
      expect(Object.fromEntries(reported)).toEqual(Object.fromEntries(truncated));
    });
  });
}
