// seatctl on a real Django app's database: Django (Debian's python3-django)
// creates it with its own migrations and writes every lock through its ORM;
// seatctl runs every command on it with the two-key config of the contract;
// Django's ORM reads the seats back. On SQLite and on PostgreSQL.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { appSkipReason, newAppDatabase, runApp } from './support/apps.js';
import { jsonLines, runCli, startCli } from './support/cli.js';
import { ENGINES, tempDir } from './support/engines.js';

interface DjangoSeat {
  event: string;
  seat: string;
  status: string;
  locked_until: string | null;
  locked_until_utcoffset_seconds: number | null;
  locked_by: string | null;
  locked_by_id: number | null;
}

type Dump = { tables: Record<string, { columns: string[]; rows: unknown[][] }>; schema: unknown };

const skip = appSkipReason('django');

for (const engine of ENGINES) {
  const reason = skip ?? engine.skipReason;
  describe.skipIf(reason !== null)(`a Django app's database [${engine.name}${reason ? `: skipped, ${reason}` : ''}]`, () => {
    let url: string;
    let dir: string;
    const django = <T = any>(...args: string[]) => runApp<T>('django', url, args);
    const seatctl = (...args: string[]) => runCli(['--db', url, ...args], { cwd: dir });
    const read = async () => new Map((await django<DjangoSeat[]>('read')).map((s) => [`${s.event}/${s.seat}`, s]));

    beforeAll(async () => {
      url = await newAppDatabase('django', engine);
      dir = tempDir('seatctl-django-');
      // The whole config of the contract, found in the working directory.
      writeFileSync(join(dir, 'seatctl.config.json'), JSON.stringify({ preset: 'django', app: 'reservations' }));
      if (engine.name === 'postgres') {
        // A non-UTC session time zone for seatctl's connections: instants must not shift.
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        await client.query(`ALTER DATABASE "${new URL(url).pathname.slice(1)}" SET timezone = 'Pacific/Auckland'`);
        await client.end();
      }
      await django('create-users', 'alice', 'bob', 'carol', 'dave');
      await django('create-event', 'Eras Tour', '--seats', '60');
      await django('create-event', 'Other', '--seats', '10');
      await django('lock', 'Eras Tour', '--user', 'alice', '--expires-in-ms', '-60000', 'A1', 'A2', 'A3', 'A4', 'A5');
      await django('lock', 'Eras Tour', '--user', 'bob', '--expires-in-ms', '-5000', '--whole-second', 'A6');
      await django('lock', 'Eras Tour', '--user', 'carol', '--expires-in-ms', '-2000', 'A7');
      await django('delete-user', 'carol');
      await django('lock', 'Eras Tour', '--user', 'dave', '--expires-in-ms', '600000', 'B1', 'B2');
      await django('book', 'Eras Tour', 'B2');
      await django('lock', 'Eras Tour', '--user', 'alice', '--expires-in-ms', '600000', 'B3');
      await django('lock', 'Other', '--user', 'bob', '--expires-in-ms', '-30000', 'A1');
    }, 180_000);

    it('doctor, migrate, list-locked and release: exactly the expired locks go back on sale, nothing else changes', { timeout: 120_000 }, async () => {
      const before = await django<Dump>('dump');

      const doctor = await seatctl('doctor');
      expect(doctor.code, doctor.stderr).toBe(0);
      expect(doctor.stdout).toMatch(/preset django/);
      expect(doctor.stdout).toMatch(/seatctl's own tables .* are missing/);
      // Without its own tables the database is not usable yet: exit 5 until migrate.
      const unusable = await seatctl('list-locked');
      expect(unusable.code).toBe(5);
      expect(unusable.stderr).toMatch(/run seatctl migrate/);

      const migrate = await seatctl('migrate');
      expect(migrate.code, migrate.stderr).toBe(0);
      expect(migrate.stdout).toBe('Applied migration 001_seatctl_tables\n');
      // migrate created seatctl's own tables and nothing else: the app's tables, schema and settings are as they were.
      expect(JSON.stringify(await django<Dump>('dump'))).toBe(JSON.stringify(before));

      const checked = await seatctl('doctor');
      expect(checked.code, checked.stdout).toBe(0);
      expect(checked.stdout).toMatch(/⚠ no index serves the search for expired locks/);
      expect(checked.stdout).toMatch(/models\.Index\(fields=\["id", "locked_until"\], condition=models\.Q\(status="locked"\)/);

      const listed = jsonLines((await seatctl('list-locked', '--json')).stdout);
      const summary = listed.pop()!;
      expect(summary).toMatchObject({ type: 'summary', total: 10, expired: 8, active: 2 });
      const holders = Object.fromEntries(listed.map((l) => [`${l.event}/${l.seat}`, l.lockedBy]));
      expect(holders).toMatchObject({ 'Eras Tour/A1': 'alice', 'Eras Tour/A6': 'bob', 'Eras Tour/A7': '(none)', 'Other/A1': 'bob', 'Eras Tour/B1': 'dave' });
      expect(listed.every((l) => l.lockToken === null && l.lockedAt === null)).toBe(true);

      const release = await seatctl('release-expired-locks', '--json');
      expect(release.code, release.stderr).toBe(0);
      const released = jsonLines(release.stdout);
      expect(released.pop()).toMatchObject({ type: 'summary', total: 8 });
      expect(released.map((r) => `${r.event}/${r.seat}:${r.lockedBy}`).sort()).toEqual(
        ['A1', 'A2', 'A3', 'A4', 'A5'].map((s) => `Eras Tour/${s}:alice`).concat(['Eras Tour/A6:bob', 'Eras Tour/A7:(none)', 'Other/A1:bob']).sort(),
      );
      // The whole-second expiry Django wrote without a fraction was read as the same instant.
      const a6 = released.find((r) => r.seat === 'A6' && r.event === 'Eras Tour')!;
      expect(a6.lockedUntil).toMatch(/:\d\d\.000Z$/);

      // Django reads back exactly the expired seats as available, the rest as they were.
      const seats = await read();
      for (const key of released.map((r) => `${r.event}/${r.seat}`)) {
        expect(seats.get(key)).toMatchObject({ status: 'available', locked_until: null, locked_by: null });
      }
      expect(seats.get('Eras Tour/B1')).toMatchObject({ status: 'locked', locked_by: 'dave' });
      expect(seats.get('Eras Tour/B2')).toMatchObject({ status: 'booked', locked_by: 'dave' });
      expect(seats.get('Eras Tour/B3')).toMatchObject({ status: 'locked', locked_by: 'alice' });

      // Byte for byte: the app's tables differ from before only in the mapped columns of the released seats.
      const after = await django<Dump>('dump');
      const expected = structuredClone(before);
      const seat = expected.tables.reservations_seat!;
      const col = (name: string) => seat.columns.indexOf(name);
      const releasedIds = new Set(
        after.tables.reservations_seat!.rows.filter((row) => String(row[col('status')]) === 'available').map((row) => String(row[col('id')])),
      );
      for (const row of seat.rows) {
        if (!releasedIds.has(String(row[col('id')]))) continue;
        row[col('status')] = 'available';
        row[col('locked_until')] = null;
        row[col('locked_by_id')] = null;
      }
      expect(releasedIds.size).toBe(8 + 60 + 10 - 10 - 1); // every seat but the 2 active locks and the booking
      expect(JSON.stringify(after)).toBe(JSON.stringify(expected));
    });

    it('lock, book and unlock write what Django reads as its own: aware datetimes, auth_user holders', { timeout: 120_000 }, async () => {
      const lock = await seatctl('lock', 'Eras Tour', 'C1', 'C2', '--user', 'alice', '--ttl', '5m', '--json');
      expect(lock.code, lock.stderr).toBe(0);
      const locked = jsonLines(lock.stdout);
      expect(locked.map((l) => [l.seat, l.lockToken, l.renewed])).toEqual([
        ['C1', null, false],
        ['C2', null, false],
      ]);
      let seats = await read();
      for (const name of ['C1', 'C2']) {
        const s = seats.get(`Eras Tour/${name}`)!;
        expect(s).toMatchObject({ status: 'locked', locked_by: 'alice', locked_until_utcoffset_seconds: 0 });
        expect(Date.parse(s.locked_until!)).toBe(Date.parse(locked[0]!.lockedUntil));
      }

      const refused = await seatctl('lock', 'Eras Tour', 'C1', '--user', 'bob');
      expect(refused.code).toBe(3);
      expect(refused.stderr).toMatch(/C1: held by alice until/);
      const stranger = await seatctl('lock', 'Eras Tour', 'C3', '--user', 'nobody');
      expect(stranger.code).toBe(2);
      expect(stranger.stderr).toBe("error: unknown user 'nobody' (no auth_user row has that username)\n");
      const cap = await seatctl('lock', 'Eras Tour', 'C3', '--user', 'alice', '--max-hold', '10m');
      expect(cap.code).toBe(2);
      expect(cap.stderr).toBe("error: --max-hold needs the hold's start, and this mapping has no such column (seats.lockedAt)\n");

      const book = await seatctl('book', 'Eras Tour', 'C1', '--user', 'alice');
      expect(book.code, book.stderr).toBe(0);
      const unlock = await seatctl('unlock', 'Eras Tour', 'C2', '--json');
      expect(unlock.code, unlock.stderr).toBe(0);
      seats = await read();
      expect(seats.get('Eras Tour/C1')).toMatchObject({ status: 'booked', locked_by: 'alice', locked_until: null });
      expect(seats.get('Eras Tour/C2')).toMatchObject({ status: 'available', locked_by: null, locked_until: null });

      // A seat Django booked is never locked by seatctl.
      const booked = await seatctl('lock', 'Eras Tour', 'B2', '--user', 'alice');
      expect(booked.code).toBe(3);
      expect(booked.stderr).toMatch(/B2: already booked/);

      const history = jsonLines((await seatctl('history', '--json')).stdout);
      expect(history.filter((h) => h.reason === 'expired')).toHaveLength(8);
      expect(history.filter((h) => h.reason === 'unlocked').map((h) => [h.seat, h.lockedBy])).toEqual([['C2', 'alice']]);

      const stats = jsonLines((await seatctl('stats', '--json')).stdout);
      expect(stats.find((s) => s.event === 'Eras Tour')).toMatchObject({ seats: 60, booked: 2 });
      expect(stats.find((s) => s.type === 'summary')).toMatchObject({ stale: false });
      expect(stats.find((s) => s.type === 'summary').lastRun).not.toBeNull();

      // seed never writes into an app's tables.
      const before = JSON.stringify(await django<Dump>('dump'));
      const seed = await seatctl('seed');
      expect(seed.code).toBe(2);
      expect(seed.stderr).toMatch(/^error: seed only fills seatctl's own schema/);
      expect(JSON.stringify(await django<Dump>('dump'))).toBe(before);
    });

    it('--watch releases a lock Django placed as soon as it expires', { timeout: 60_000 }, async () => {
      await django('lock', 'Eras Tour', '--user', 'bob', '--expires-in-ms', '1500', 'C10');
      const watcher = startCli(['--db', url, 'release-expired-locks', '--watch', '--interval', '300ms', '--json'], { cwd: dir });
      await watcher.waitForLine('"seat":"C10"');
      watcher.process.kill('SIGTERM');
      const result = await watcher.finished();
      expect(result.code, result.stderr).toBe(0);
      const c10 = jsonLines(result.stdout).find((r) => r.seat === 'C10')!;
      expect(Date.parse(c10.releasedAt)).toBeGreaterThanOrEqual(Date.parse(c10.lockedUntil));
      expect((await read()).get('Eras Tour/C10')).toMatchObject({ status: 'available', locked_by: null });
    });
  });
}
