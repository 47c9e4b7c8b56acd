// Races at the instant of expiry, kill -9 in the middle of a release, and a
// busy SQLite database: the guarantees that hold when things go wrong.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { lockSeats, seedSynthetic } from '../src/index.js';
import { BIN, cleanEnv, jsonLines, runCli } from './support/cli.js';
import { describeEachEngine, sqlite, useDatabase } from './support/engines.js';
import { createEvent, placeLock, seatNumbers } from './support/fixtures.js';

const RACE = fileURLToPath(new URL('./support/race.mjs', import.meta.url));

function startNode(args: string[]) {
  const child = spawn(process.execPath, args, { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

describeEachEngine('faults', (engine) => {
  const t = useDatabase(engine);
  const count = async (query: any) => Number((await query.count({ n: '*' }).first()).n);

  it(
    'a booking and a release of the same lock never both succeed, at the instant of expiry, many times',
    { timeout: 120_000 },
    async () => {
      const seats = seatNumbers(120, 'B');
      const id = await createEvent(t.db, 'Boundary', seats);
      let booked = 0;
      let refused = 0;
      for (let round = 0; round < 3; round++) {
        await t.db
          .knex('seats')
          .where('event_id', id)
          .update({
            status: 'available',
            locked_by: null,
            locked_until: null,
            locked_at: null,
            booked_by: null,
            booked_at: null,
          });
        // Expiries spread over 0.36 s, starting 1.5 s from now (time for the racers to start);
        // each booking is aimed between 30 ms before and 15 ms after its seat's expiry
        // (a booking takes a few milliseconds itself, more on PostgreSQL).
        const { engine: e, knex } = t.db;
        const firstId = (await knex('seats').where('event_id', id).min({ id: 'id' }).first())!.id;
        await knex('seats')
          .where('event_id', id)
          .update({
            status: 'locked',
            locked_by: 'buyer',
            locked_until: knex.raw(e.addMs(e.now, '? + (id - ?) * 3'), [1500, firstId]),
            locked_at: knex.raw(e.now),
            lock_token: knex.raw('lock_token + 1'),
          });
        const rows = await knex('seats').where('event_id', id).select('seat_number', 'locked_until');
        const until = new Map(rows.map((r: any) => [r.seat_number, e.readInstant(r.locked_until).getTime()]));
        const bookingPlan = seats
          .map((seat) => ({ seat, user: 'buyer', at: until.get(seat)! + Math.round(Math.random() * 45 - 30) }))
          .sort((a, b) => a.at - b.at);
        const stopAt = Math.max(...until.values()) + 500;
        const releasers = [0, 1].map(() => startNode([RACE, 'release', t.url, String(stopAt)]));
        const booker = startNode([RACE, 'book', t.url, String(stopAt), JSON.stringify(bookingPlan)]);
        const results = await Promise.all([booker.done, ...releasers.map((r) => r.done)]);
        for (const r of results) expect(r.code, r.stderr).toBe(0);
        const bookings = jsonLines(results[0]!.stdout);
        const releases = results.slice(1).flatMap((r) => jsonLines(r.stdout));
        const bookedSeats = new Set(bookings.filter((b) => b.type === 'booked').map((b) => b.seat));
        const releasedSeats = releases.map((r) => r.seat);
        expect(new Set(releasedSeats).size, 'each lock released once').toBe(releasedSeats.length);
        expect(
          releasedSeats.filter((seat) => bookedSeats.has(seat)),
          'booked and released',
        ).toEqual([]);
        expect(bookedSeats.size + releasedSeats.length, 'every lock ended one way').toBe(seats.length);
        for (const refusal of bookings.filter((b) => b.type === 'refused'))
          expect(['expired', 'not-locked']).toContain(refusal.reason);
        booked += bookedSeats.size;
        refused += bookings.length - bookedSeats.size;
      }
      console.log(
        `boundary [${engine.name}]: ${booked} booked at the edge of expiry, ${refused} refused as expired, none also released`,
      );
      // The boundary was really exercised: both outcomes happened, often.
      expect(booked).toBeGreaterThanOrEqual(10);
      expect(refused).toBeGreaterThanOrEqual(10);
    },
  );

  it(
    'a releaser killed with -9 mid-release leaves a consistent database, and the next run releases the rest',
    { timeout: 180_000 },
    async () => {
      await seedSynthetic(t.db, { events: 20, seatsPerEvent: 10_000, expired: 200_000 });
      const multi = seatNumbers(2000, 'M');
      await createEvent(t.db, 'Multi', multi);
      const release = startNode([BIN, '--db', t.url, 'release-expired-locks', '--json', '--batch-size', '1000']);
      const lock = startNode([BIN, '--db', t.url, 'lock', 'Multi', ...multi, '--user', 'many', '--json']);
      const deadline = Date.now() + 60_000;
      while ((await count(t.db.knex('release_history'))) < 20_000) {
        if (Date.now() > deadline) throw new Error('the release never got going');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      release.child.kill('SIGKILL');
      lock.child.kill('SIGKILL');
      const killed = await release.done;
      await lock.done;
      expect(killed.signal).toBe('SIGKILL');

      if (engine.name === 'sqlite') {
        const [check] = await t.db.knex.raw('PRAGMA integrity_check');
        expect(check).toEqual({ integrity_check: 'ok' });
      }
      // The multi-seat lock happened whole or not at all.
      expect([0, 2000]).toContain(await count(t.db.knex('seats').where({ locked_by: 'many' })));
      // Every history row names a released seat; every other expired lock is still in place.
      const historyCount = await count(t.db.knex('release_history').where('reason', 'expired'));
      const stillLocked = await count(t.db.knex('seats').where({ status: 'locked', locked_by: 'admin' }));
      expect(historyCount + stillLocked).toBe(200_000);
      expect(
        await count(
          t.db.knex('release_history as h').join('seats as s', 's.id', 'h.seat_id').where('s.status', 'locked'),
        ),
      ).toBe(0);
      // What the killed run printed was committed.
      const printed = jsonLines(killed.stdout.slice(0, killed.stdout.lastIndexOf('\n') + 1)).map(
        (r) => `${r.eventId}:${r.seat}:${r.lockToken}`,
      );
      expect(printed.length).toBeGreaterThan(0);
      expect(printed.length).toBeLessThanOrEqual(historyCount);

      const rerun = await runCli(['--db', t.url, 'release-expired-locks', '--quiet'], { timeoutMs: 120_000 });
      expect(rerun).toMatchObject({ code: 0, stderr: '' });
      expect(rerun.stdout).toBe(`Total locks released: ${stillLocked}\n`);
      expect(await count(t.db.knex('release_history').where('reason', 'expired'))).toBe(200_000);
      expect(await count(t.db.knex('seats').where({ status: 'locked', locked_by: 'admin' }))).toBe(0);
    },
  );

  it('a stale holder can never book: A locks, it expires, B takes the seat; A exits 3 and B books', async () => {
    const id = await createEvent(t.db, 'Stale', ['A1']);
    expect((await runCli(['--db', t.url, 'lock', 'Stale', 'A1', '--user', 'alice'])).code).toBe(0);
    await placeLock(t.db, id, ['A1'], 'alice', -1000); // alice's lock has now expired
    expect((await runCli(['--db', t.url, 'lock', 'Stale', 'A1', '--user', 'bob'])).code).toBe(0);
    const stale = await runCli(['--db', t.url, 'book', 'Stale', 'A1', '--user', 'alice']);
    expect(stale.code).toBe(3);
    expect(stale.stderr).toMatch(/A1: held by bob until/);
    const fresh = await runCli(['--db', t.url, 'book', 'Stale', 'A1', '--user', 'bob', '--json']);
    expect(fresh.code).toBe(0);
    expect(jsonLines(fresh.stdout)).toEqual([expect.objectContaining({ type: 'booked', seat: 'A1', bookedBy: 'bob' })]);
    await expect(lockSeats(t.db, { event: 'Stale', seats: ['A1'], user: 'alice' })).rejects.toMatchObject({
      kind: 'conflict',
    });
  });
});

describe.skipIf(sqlite.skipReason !== null)('faults [sqlite: busy database]', () => {
  const t = useDatabase(sqlite);

  it('waits while another process holds the write lock for 2 s, then succeeds', async () => {
    await runCli(['--db', t.url, 'seed']);
    // The holder is another process, as it would be in production.
    const holder = spawn(process.execPath, [
      '-e',
      `const D = require(${JSON.stringify(require.resolve('better-sqlite3'))}); const db = new D(${JSON.stringify(t.url)}); db.exec('BEGIN IMMEDIATE'); console.log('holding'); setTimeout(() => { db.exec('ROLLBACK'); db.close(); }, 2000);`,
    ]);
    await new Promise((resolve) => holder.stdout.once('data', resolve));
    const started = Date.now();
    const result = await runCli(['--db', t.url, 'release-expired-locks', '--quiet']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(result).toMatchObject({ code: 0, stdout: 'Total locks released: 19\n', stderr: '' });
  });

  it('past --busy-timeout exits 4 within the timeout, having changed nothing', async () => {
    await runCli(['--db', t.url, 'seed']);
    const before = JSON.stringify(await t.db.knex('seats').orderBy('id'));
    const holder = new Database(t.url);
    holder.exec('BEGIN IMMEDIATE');
    try {
      for (const command of [
        ['release-expired-locks'],
        ['lock', 'Taylor Swift - Eras Tour', 'D1', '--user', 'u'],
        ['unlock', 'Taylor Swift - Eras Tour', 'B1'],
      ]) {
        const started = Date.now();
        const result = await runCli(['--db', t.url, '--busy-timeout', '500ms', ...command]);
        expect(result.code, command.join(' ')).toBe(4);
        expect(result.stderr).toMatch(
          /is busy: another process held its write lock for longer than the busy timeout \(500 ms\)/,
        );
        expect(Date.now() - started).toBeLessThan(3000);
      }
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    expect(JSON.stringify(await t.db.knex('seats').orderBy('id'))).toBe(before);
  });
});
