// Races at the instant of expiry, kill -9 in the middle of a release, and a
// busy SQLite database: the guarantees that hold when things go wrong.
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { lockSeats, seedSynthetic } from '../src/index.js';
import { cleanEnv, jsonLines, runCli, startCli } from './support/cli.js';
import { sqlite, useDatabase } from './support/engines.js';
import * as seats from './support/schemas.js';
import { completeLines, start, type Child } from './support/processes.js';
import { boundFrom, eventually, idleTime, median, percentile, timed } from './support/timing.js';
import { holdWriteLock } from './support/write-lock.js';

const RACE = fileURLToPath(new URL('./support/race.mjs', import.meta.url));

/** The boundary race runs at least this many rounds of 120 seats, as it always has... */
const MIN_ROUNDS = 3;
/** ...and until each outcome, booked in time and refused as expired, happened at least this often... */
const FLOOR = 10;
/** ...unless this much time has passed: then it fails, with the numbers. */
const BOUNDARY_DEADLINE_MS = 150_000;

interface Attempt {
  type: 'booked' | 'refused';
  seat: string;
  startedAt: number;
  took: number;
  bookedAt?: string;
  reason?: string;
}

/**
 * Where bookings flip from booked to refused, as an offset of their start
 * from their lock's expiry: the threshold that best separates this round's
 * outcomes (booked when started before it). With only one outcome, a step
 * past it.
 */
function flipOffset(attempts: Array<{ offset: number; booked: boolean }>, previous: number, step: number): number {
  if (attempts.every((a) => a.booked)) return previous + step;
  if (attempts.every((a) => !a.booked)) return previous - step;
  const sorted = [...attempts].sort((a, b) => a.offset - b.offset);
  // errors(t) for t just above sorted[i].offset: refused at or below it, plus booked above it.
  let refusedBelow = 0;
  let bookedAbove = sorted.filter((a) => a.booked).length;
  let best = { errors: bookedAbove, offset: sorted[0]!.offset };
  for (const attempt of sorted) {
    if (attempt.booked) bookedAbove--;
    else refusedBelow++;
    const errors = refusedBelow + bookedAbove;
    if (errors < best.errors) best = { errors, offset: attempt.offset + 0.5 };
  }
  return best.offset;
}

// On seatctl's own schema and on a Django app's tables (no lock token: a lock is
// told apart by its expiry), on both engines.
seats.describeEachEngineAndSchema('faults', (engine, schema) => {
  const t = seats.useSchemaDatabase(engine, schema);
  const count = async (query: any) => Number((await query.count({ n: '*' }).first()).n);
  /** What tells one lock of a seat from another: its token, or (without tokens) its expiry. */
  const lockId = (r: { lockToken?: number | null; lockedUntil?: string | Date | null }) =>
    r.lockToken ?? (r.lockedUntil == null ? null : new Date(r.lockedUntil).getTime());

  it(
    'a booking and a release of the same lock never both succeed, at the instant of expiry, many times',
    { timeout: BOUNDARY_DEADLINE_MS + 90_000 },
    async () => {
      const seatList = seats.seatNumbers(120, 'B');
      const id = await seats.createEvent(t.db, 'Boundary', seatList);
      await seats.ensureUser(t.db, 'buyer');
      // One booker and two releasers, separate processes for the whole test.
      const racer = (mode: string) =>
        start(process.execPath, [RACE, mode, t.url, 'Boundary'], {
          env: cleanEnv(seats.mappingEnv(schema)),
          keepStdinOpen: true,
          label: `race.mjs ${mode}`,
        });
      const booker = racer('book');
      const releasers = [racer('release'), racer('release')];
      await Promise.all([booker, ...releasers].map((child) => child.waitForLine('"ready"')));

      let roundsDone = 0;
      let consumed = 0;
      /** Hands the booker a plan and returns what it did, once it is done. */
      const book = async (plan: Array<{ seat: string; at: number; user: string }>): Promise<Attempt[]> => {
        booker.write(`${JSON.stringify(plan)}\n`);
        const done = ++roundsDone;
        await booker.waitFor(
          `the booker's round ${done}`,
          (c) => completeLines(c.stdout).filter((line) => line.includes('"round-done"')).length >= done,
          60_000,
        );
        const lines = completeLines(booker.stdout);
        const records = jsonLines(lines.slice(consumed).join('\n')).filter(
          (r) => r.type === 'booked' || r.type === 'refused',
        );
        consumed = lines.length;
        return records as Attempt[];
      };
      const released = (child: Child) =>
        jsonLines(completeLines(child.stdout).join('\n')).filter((r) => r.type === 'released');
      /** Locks every seat for the buyer, in one statement, until `until(seat index)` from now by the database clock. */
      const lockAll = async (leadMs: number, spacingMs: number) => {
        await seats.clearSeats(t.db, id);
        await seats.placeLock(t.db, id, 'all', 'buyer', leadMs, { stepMs: spacingMs, heldForMs: 0 });
        const rows = await seats.seatList(t.db, id);
        return new Map(
          rows.map((r) => [
            r.seat_number,
            { until: r.locked_until!.getTime(), id: lockId({ lockToken: r.lock_token, lockedUntil: r.locked_until }) },
          ]),
        );
      };

      // How long a booking takes here and now, with both releasers running:
      // the bookings below are aimed, and spaced, by it.
      await lockAll(60_000, 0);
      const warmUp = await book(seatList.slice(0, 20).map((seat) => ({ seat, user: 'buyer', at: 0 })));
      expect(warmUp.map((a) => a.type), 'bookings of valid locks').toEqual(Array(20).fill('booked'));
      let latency = median(warmUp.slice(5).map((a) => a.took));
      let slowest = percentile(warmUp.slice(5).map((a) => a.took), 0.9);
      // The offset from its lock's expiry at which a booking is as likely to be in time as late.
      let aim = -latency / 2;

      let booked = 0;
      let refused = 0;
      let rounds = 0;
      const endedLocks: string[] = [];
      const deadline = Date.now() + BOUNDARY_DEADLINE_MS;
      while ((rounds < MIN_ROUNDS || booked < FLOOR || refused < FLOOR) && Date.now() < deadline) {
        rounds++;
        // Bookings start within ±spread of the aim; expiries are far enough apart for
        // the one booker to keep up; the first comes once the plan is surely handed over.
        const spread = Math.max(2 * latency, 10);
        const spacing = Math.max(3, Math.ceil(1.5 * slowest));
        const lead = Math.ceil(200 + 5 * latency + spread);
        const locks = await lockAll(lead, spacing);
        const plan = seatList
          .map((seat) => {
            const offset = Math.round(aim + (Math.random() * 2 - 1) * spread);
            return { seat, user: 'buyer', at: locks.get(seat)!.until + offset };
          })
          .sort((a, b) => a.at - b.at);
        const bookings = await book(plan);

        // Every lock the booker did not get expires and is released; wait until the releasers said so.
        await eventually('every lock of the round to be booked or released', async () =>
          (await seats.countSeats(t.db, { eventId: id, status: 'locked' })) === 0,
        );
        const ofRound = (r: Record<string, any>) => locks.get(r.seat)?.id === lockId(r);
        const bookedSeats = new Set(bookings.filter((b) => b.type === 'booked').map((b) => b.seat));
        await eventually(
          "the releasers' reports of the round",
          () => releasers.flatMap(released).filter(ofRound).length >= seatList.length - bookedSeats.size,
          { describe: () => releasers.map((r) => r.output()).join('\n') },
        );
        const releasedSeats = releasers.flatMap(released).filter(ofRound).map((r) => r.seat as string);
        expect(new Set(releasedSeats).size, 'each lock released once').toBe(releasedSeats.length);
        expect(
          releasedSeats.filter((seat) => bookedSeats.has(seat)),
          'booked and released',
        ).toEqual([]);
        expect(bookedSeats.size + releasedSeats.length, 'every lock ended one way').toBe(seatList.length);
        for (const refusal of bookings.filter((b) => b.type === 'refused'))
          expect(['expired', 'not-locked']).toContain(refusal.reason);
        for (const booking of bookings.filter((b) => b.type === 'booked'))
          expect(Date.parse(booking.bookedAt!), `${booking.seat} booked after its lock expired`).toBeLessThanOrEqual(
            locks.get(booking.seat)!.until,
          );
        booked += bookedSeats.size;
        refused += bookings.length - bookedSeats.size;
        endedLocks.push(...seatList.map((seat) => `${seat}#${locks.get(seat)!.id}`));

        // Aim the next round where this one's outcomes flipped, at this round's pace.
        latency = median(bookings.map((b) => b.took));
        slowest = percentile(bookings.map((b) => b.took), 0.9);
        aim = flipOffset(
          bookings.map((b) => ({ offset: b.startedAt - locks.get(b.seat)!.until, booked: b.type === 'booked' })),
          aim,
          spread,
        );
      }
      for (const child of [booker, ...releasers]) child.endInput();
      for (const child of [booker, ...releasers]) {
        const exit = await child.finished();
        expect(exit.code, `${child.label}: ${exit.stderr}`).toBe(0);
      }
      // No lock was released in a round after the one it belonged to, nor twice across rounds.
      const everyRelease = releasers.flatMap(released).map((r) => `${r.seat}#${lockId(r)}`);
      expect(new Set(everyRelease).size, 'each lock released once, over all rounds').toBe(everyRelease.length);
      expect(everyRelease.filter((lock) => !endedLocks.includes(lock))).toEqual([]);
      console.log(
        `boundary [${engine.name}, ${schema.name}]: ${booked} booked at the edge of expiry, ${refused} refused as expired, ` +
          `none also released, in ${rounds} rounds (a booking took ${latency.toFixed(1)} ms; ` +
          `aimed ${aim.toFixed(1)} ms from expiry)`,
      );
      // The boundary was really exercised: both outcomes happened, often.
      expect(booked, `booked in time, after ${rounds} rounds`).toBeGreaterThanOrEqual(FLOOR);
      expect(refused, `refused as expired, after ${rounds} rounds`).toBeGreaterThanOrEqual(FLOOR);
    },
  );

  it(
    'a releaser killed with -9 mid-release leaves a consistent database, and the next run releases the rest',
    { timeout: 180_000 },
    async () => {
      if (schema.name === 'seatctl') await seedSynthetic(t.db, { events: 20, seatsPerEvent: 10_000, expired: 200_000 });
      else await seats.seedExpired(t.db, 20, 10_000, 200_000);
      const multi = seats.seatNumbers(2000, 'M');
      await seats.createEvent(t.db, 'Multi', multi);
      await seats.ensureUser(t.db, 'many');
      const release = startCli([...t.cli, 'release-expired-locks', '--json', '--batch-size', '1000']);
      const lock = startCli([...t.cli, 'lock', 'Multi', ...multi, '--user', 'many', '--json']);
      // Each line is printed once its batch has committed: kill it well into the release.
      await release.waitFor('20,000 released locks', (c) => c.lines.stdout >= 20_000, 90_000);
      const [killed] = await Promise.all([release.kill(), lock.kill()]);
      expect(killed.signal).toBe('SIGKILL');

      if (engine.name === 'sqlite') {
        const [check] = await t.db.knex.raw('PRAGMA integrity_check');
        expect(check).toEqual({ integrity_check: 'ok' });
      }
      // The multi-seat lock happened whole or not at all.
      expect([0, 2000]).toContain(await seats.countSeats(t.db, { status: 'locked', lockedBy: 'many' }));
      // Every history row names a released seat; every other expired lock is still in place.
      const historyCount = await count(seats.historyTable(t.db).where('reason', 'expired'));
      const stillLocked = await seats.countSeats(t.db, { status: 'locked', lockedBy: 'admin' });
      expect(historyCount + stillLocked).toBe(200_000);
      expect(await seats.historyOfLockedSeats(t.db)).toBe(0);
      // What the killed run printed was committed.
      const printed = jsonLines(completeLines(killed.stdout).join('\n')).map(
        (r) => `${r.eventId}:${r.seat}:${lockId(r)}`,
      );
      expect(printed.length).toBeGreaterThan(0);
      expect(printed.length).toBeLessThanOrEqual(historyCount);

      const rerun = await runCli([...t.cli, 'release-expired-locks', '--quiet'], { timeoutMs: 120_000 });
      expect(rerun).toMatchObject({ code: 0, stderr: '' });
      expect(rerun.stdout).toBe(`Total locks released: ${stillLocked.toLocaleString('en-US')}\n`);
      expect(await count(seats.historyTable(t.db).where('reason', 'expired'))).toBe(200_000);
      expect(await seats.countSeats(t.db, { status: 'locked', lockedBy: 'admin' })).toBe(0);
    },
  );
  it('a stale holder can never book: A locks, it expires, B takes the seat; A exits 3 and B books', async () => {
    const id = await seats.createEvent(t.db, 'Stale', ['A1']);
    for (const user of ['alice', 'bob']) await seats.ensureUser(t.db, user);
    expect((await runCli([...t.cli, 'lock', 'Stale', 'A1', '--user', 'alice'])).code).toBe(0);
    await seats.placeLock(t.db, id, ['A1'], 'alice', -1000); // alice's lock has now expired
    expect((await runCli([...t.cli, 'lock', 'Stale', 'A1', '--user', 'bob'])).code).toBe(0);
    const stale = await runCli([...t.cli, 'book', 'Stale', 'A1', '--user', 'alice']);
    expect(stale.code).toBe(3);
    expect(stale.stderr).toMatch(/A1: held by bob until/);
    const fresh = await runCli([...t.cli, 'book', 'Stale', 'A1', '--user', 'bob', '--json']);
    expect(fresh.code).toBe(0);
    expect(jsonLines(fresh.stdout)).toEqual([expect.objectContaining({ type: 'booked', seat: 'A1', bookedBy: 'bob' })]);
    await expect(lockSeats(t.db, { event: 'Stale', seats: ['A1'], user: 'alice' })).rejects.toMatchObject({
      kind: 'conflict',
    });
  });
});

describe.skipIf(sqlite.skipReason !== null)('faults [sqlite: busy database]', () => {
  const t = useDatabase(sqlite);
  /** The mark a writer waiting for the write lock keeps touching (see the README, SQLite). */
  const waitingSince = (file: string) => statSync(`${file}-waiting`, { throwIfNoEntry: false })?.mtimeMs ?? 0;

  it('waits while another process holds the write lock for 2 s, then succeeds', async () => {
    await runCli(['--db', t.url, 'seed']);
    // The holder is another process, as it would be in production.
    const holder = await holdWriteLock(t.url);
    const release = startCli(['--db', t.url, 'release-expired-locks', '--quiet']);
    // Hold the lock until the release has been waiting for it for 2 s, by its own marks.
    let firstMark = 0;
    await eventually(
      'the release to wait for the write lock for 2 s',
      () => {
        if (!release.running) throw new Error(`the release ended while the lock was held\n${release.output()}`);
        const mark = waitingSince(t.url);
        if (firstMark === 0 && mark >= release.startedAt) firstMark = mark;
        return firstMark > 0 && mark - firstMark >= 2000;
      },
      { describe: () => release.output() },
    );
    expect(release.running, 'still waiting, not failed').toBe(true);
    await holder.letGo();
    const result = await release.finished();
    expect(result).toMatchObject({ code: 0, stdout: 'Total locks released: 19\n', stderr: '' });
  });

  it('past --busy-timeout exits 4 having waited that long, and changed nothing', async () => {
    const commands = [
      ['release-expired-locks'],
      ['lock', 'Taylor Swift - Eras Tour', 'D1', '--user', 'u'],
      ['unlock', 'Taylor Swift - Eras Tour', 'B1'],
    ];
    // What these commands take here and now when nothing is in their way.
    await runCli(['--db', t.url, 'seed']);
    const idle: number[] = [];
    for (const command of commands) idle.push(await idleTime(() => runCli(['--db', t.url, ...command]), 1));
    const bound = 500 + boundFrom(median(idle), 4, 1500);
    await runCli(['--db', t.url, 'seed']);
    const before = JSON.stringify(await t.db.knex('seats').orderBy('id'));
    const holder = new Database(t.url);
    holder.exec('BEGIN IMMEDIATE');
    try {
      for (const command of commands) {
        const { result, ms } = await timed(() => runCli(['--db', t.url, '--busy-timeout', '500ms', ...command]));
        expect(result.code, command.join(' ')).toBe(4);
        expect(result.stdout).toBe('');
        expect(result.stderr).toMatch(
          /is busy: another process held its write lock for longer than the busy timeout \(500 ms\)/,
        );
        // It waited the whole busy timeout, then gave up: the timeout plus a few times what
        // the command takes unhindered (the default 5 s, or no timeout at all, is far longer).
        expect(ms).toBeGreaterThanOrEqual(500);
        expect(ms, `${command[0]}: bound ${bound} ms`).toBeLessThan(bound);
      }
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    expect(JSON.stringify(await t.db.knex('seats').orderBy('id'))).toBe(before);
    expect((await runCli(['--db', t.url, 'release-expired-locks', '--quiet'])).stdout).toBe(
      'Total locks released: 19\n',
    );
  });
});
