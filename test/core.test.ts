import { describe, expect, it } from 'vitest';
import {
  availableSeats,
  bookSeats,
  history,
  listLocked,
  lockSeats,
  migrate,
  openDatabase,
  releaseExpiredLocks,
  releaseExpiredLocksCounting,
  releaseExpiredLocksInBatches,
  SeatConflictError,
  SeatctlError,
  seedDemo,
  seedSynthetic,
  stats,
  unlockSeats,
} from '../src/index.js';
import { describeEachEngine, useDatabase } from './support/engines.js';
import { bookDirectly, createEvent, historyRows, placeLock, seatNumbers, seatRows } from './support/fixtures.js';

const MINUTE = 60_000;

async function expectError<T>(promise: Promise<T>, kind: string, message?: RegExp): Promise<SeatctlError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected a ${kind} error`).toBeInstanceOf(SeatctlError);
  expect((error as SeatctlError).kind).toBe(kind);
  if (message) expect((error as SeatctlError).message).toMatch(message);
  return error as SeatctlError;
}

describeEachEngine('library', (engine) => {
  const t = useDatabase(engine);

  describe('schema', () => {
    it('migrate is idempotent: applies everything once, then nothing', async () => {
      const db = await openDatabase({ url: await engine.newDatabaseUrl(), create: true });
      try {
        expect((await migrate(db)).applied).toEqual(['001_initial_schema', '002_history_hold_start']);
        expect((await migrate(db)).applied).toEqual([]);
      } finally {
        await db.close();
      }
    });

    it('refuses a database that was never migrated, with a schema error', async () => {
      const db = await openDatabase({ url: await engine.newDatabaseUrl(), create: true });
      try {
        await expectError(releaseExpiredLocks(db), 'schema', /run seatctl migrate/);
      } finally {
        await db.close();
      }
    });

    it('refuses a database migrated by a newer seatctl, and migrate will not touch it', async () => {
      const url = await engine.newDatabaseUrl();
      const db = await openDatabase({ url, create: true });
      try {
        await migrate(db);
        await db.knex('knex_migrations').insert({ name: '999_from_the_future', batch: 2, migration_time: new Date() });
      } finally {
        await db.close();
      }
      const newer = await openDatabase({ url });
      try {
        await expectError(releaseExpiredLocks(newer), 'schema', /newer seatctl/);
        await expectError(migrate(newer), 'schema', /newer seatctl/);
      } finally {
        await newer.close();
      }
    });

    it('stores instants as UTC milliseconds that SQL compares against the database clock', async () => {
      const id = await createEvent(t.db, 'Clock', ['A1', 'A2']);
      const before = Date.now();
      await placeLock(t.db, id, ['A1'], 'u', 2000); // valid for 2 more seconds
      const after = Date.now();
      await placeLock(t.db, id, ['A2'], 'u', -2000); // expired 2 seconds ago
      const raw = await t.db.knex('seats').where('seat_number', 'A1').first('locked_until');
      if (engine.name === 'sqlite') expect(typeof raw.locked_until).toBe('number');
      else expect(raw.locked_until).toBeInstanceOf(Date);
      const until = t.db.engine.readInstant(raw.locked_until).getTime();
      // 2 s after the write by the database clock (ours, give or take 1.5 s), however long the write took.
      expect(until).toBeGreaterThan(before + 2000 - 1500);
      expect(until).toBeLessThan(after + 2000 + 1500);
      const report = await releaseExpiredLocks(t.db);
      expect(report.released.map((r) => r.seat)).toEqual(['A2']);
    });
  });

  describe('seedDemo', () => {
    it('creates the situation of the original bug report, and re-running restores it', async () => {
      await seedDemo(t.db);
      const check = async () => {
        const report = await stats(t.db);
        expect(report.events).toEqual([
          expect.objectContaining({
            event: 'Taylor Swift - Eras Tour',
            seats: 100,
            available: 73,
            locked: 3,
            expired: 19,
            booked: 5,
          }),
        ]);
      };
      await check();
      await releaseExpiredLocks(t.db);
      await lockSeats(t.db, { event: 'Taylor Swift - Eras Tour', seats: ['E20'], user: 'zoe' });
      await seedDemo(t.db);
      await check();
      expect(await historyRows(t.db)).toEqual([]);
    });
  });

  describe('releaseExpiredLocks', () => {
    it('releases exactly the expired locks, reports who held them, and leaves active locks and bookings alone', async () => {
      await seedDemo(t.db);
      const report = await releaseExpiredLocks(t.db);
      expect(report.total).toBe(19);
      expect(report.dryRun).toBe(false);
      expect(report.released.map((r) => r.seat).sort()).toEqual(seatNumbers(19).sort());
      for (const lock of report.released) {
        expect(lock).toMatchObject({ event: 'Taylor Swift - Eras Tour', lockedBy: 'admin' });
        expect(lock.lockedUntil.getTime()).toBeLessThanOrEqual(lock.releasedAt!.getTime());
      }
      const rows = await seatRows(t.db, report.released[0]!.eventId);
      for (const seat of seatNumbers(19))
        expect(rows.get(seat)).toMatchObject({ status: 'available', locked_by: null, locked_until: null });
      for (const seat of ['B1', 'B2', 'B3'])
        expect(rows.get(seat)).toMatchObject({ status: 'locked', locked_by: 'alice' });
      for (const seat of ['C1', 'C2', 'C3', 'C4', 'C5']) expect(rows.get(seat)!.status).toBe('booked');
      expect((await releaseExpiredLocks(t.db)).total).toBe(0);
    });

    it('writes one history row per release, agreeing with the report row for row', async () => {
      await seedDemo(t.db);
      const report = await releaseExpiredLocks(t.db, { batchSize: 4 });
      const entries = await history(t.db, { limit: 1000 });
      expect(entries).toHaveLength(19);
      const key = (e: { seat: string; lockedBy: string; lockedUntil: Date; releasedAt: Date | null }) =>
        `${e.seat}|${e.lockedBy}|${e.lockedUntil.toISOString()}|${e.releasedAt!.toISOString()}`;
      expect(entries.map(key).sort()).toEqual(report.released.map(key).sort());
      expect(new Set(entries.map((e) => e.reason))).toEqual(new Set(['expired']));
    });

    it('works in batches: every batch is committed before it is handed over, and small batches add up', async () => {
      const id = await createEvent(t.db, 'Batches', seatNumbers(25));
      await placeLock(t.db, id, seatNumbers(23), 'admin', -MINUTE);
      const sizes: number[] = [];
      const batches = releaseExpiredLocksInBatches(t.db, { batchSize: 5 });
      for (;;) {
        const next = await batches.next();
        if (next.done) {
          expect(next.value).toEqual({ total: 23, dryRun: false, interrupted: false });
          break;
        }
        sizes.push(next.value.length);
        // Committed: another connection already sees the batch's seats as available.
        const other = await openDatabase({ url: t.url });
        try {
          const seen = await other
            .knex('seats')
            .whereIn(
              'seat_number',
              next.value.map((r) => r.seat),
            )
            .pluck('status');
          expect(new Set(seen)).toEqual(new Set(['available']));
        } finally {
          await other.close();
        }
      }
      expect(sizes).toEqual([5, 5, 5, 5, 3]);
    });

    it('stops between batches when its signal is aborted, and says so', async () => {
      const id = await createEvent(t.db, 'Stop', seatNumbers(20));
      await placeLock(t.db, id, seatNumbers(20), 'admin', -MINUTE);
      const controller = new AbortController();
      const batches = releaseExpiredLocksInBatches(t.db, { batchSize: 5, signal: controller.signal });
      expect((await batches.next()).value).toHaveLength(5);
      controller.abort();
      const end = await batches.next();
      expect(end).toEqual({ done: true, value: { total: 5, dryRun: false, interrupted: true } });
      expect(await t.db.knex('seats').where('status', 'locked').count({ n: '*' })).toEqual([
        { n: engine.name === 'postgres' ? '15' : 15 },
      ]);
    });

    it('--dry-run reports what would be released and changes nothing', async () => {
      await seedDemo(t.db);
      const before = await t.db.knex('seats').orderBy('id');
      const report = await releaseExpiredLocks(t.db, { dryRun: true, batchSize: 7 });
      expect(report.total).toBe(19);
      expect(report.dryRun).toBe(true);
      expect(report.released.map((r) => r.seat).sort()).toEqual(seatNumbers(19).sort());
      expect(report.released.every((r) => r.releasedAt === null && r.lockedBy === 'admin')).toBe(true);
      expect(await t.db.knex('seats').orderBy('id')).toEqual(before);
      expect(await historyRows(t.db)).toEqual([]);
    });

    it('releases one event only with --event, by name or id', async () => {
      const a = await createEvent(t.db, 'Event A', ['A1', 'A2']);
      const b = await createEvent(t.db, 'Event B', ['A1']);
      await placeLock(t.db, a, ['A1', 'A2'], 'x', -MINUTE);
      await placeLock(t.db, b, ['A1'], 'y', -MINUTE);
      expect((await releaseExpiredLocks(t.db, { event: 'Event B' })).released.map((r) => [r.event, r.seat])).toEqual([
        ['Event B', 'A1'],
      ]);
      expect((await releaseExpiredLocks(t.db, { event: String(a) })).total).toBe(2);
      await expectError(releaseExpiredLocks(t.db, { event: 'Nope' }), 'usage', /unknown event 'Nope'/);
    });

    it('with a grace period, only releases locks expired for longer than it', async () => {
      const id = await createEvent(t.db, 'Grace', ['A1', 'A2']);
      await placeLock(t.db, id, ['A1'], 'x', -30_000);
      await placeLock(t.db, id, ['A2'], 'x', -5 * MINUTE);
      expect((await releaseExpiredLocks(t.db, { graceMs: MINUTE })).released.map((r) => r.seat)).toEqual(['A2']);
      expect((await releaseExpiredLocks(t.db)).released.map((r) => r.seat)).toEqual(['A1']);
    });

    it('records a heartbeat for real runs only', async () => {
      await seedDemo(t.db);
      await releaseExpiredLocks(t.db, { dryRun: true });
      expect((await stats(t.db)).lastRun).toBeNull();
      await releaseExpiredLocks(t.db);
      const { lastRun } = await stats(t.db);
      expect(lastRun).toMatchObject({ pid: process.pid, released: 19 });
    });

    it('counting (what --quiet runs) releases the same locks batch by batch, writes every history row, and reads no seat back', async () => {
      const a = await createEvent(t.db, 'Count A', seatNumbers(30));
      const b = await createEvent(t.db, 'Count B', seatNumbers(10));
      await placeLock(t.db, a, seatNumbers(23), 'admin', -MINUTE);
      await placeLock(t.db, a, ['A24', 'A25'], 'alice', MINUTE);
      await placeLock(t.db, b, seatNumbers(4), 'bob', -MINUTE);
      await bookDirectly(t.db, a, ['A26'], 'carol');
      const preview = releaseExpiredLocksCounting(t.db, { batchSize: 5, dryRun: true });
      const previewed: number[] = [];
      for (let next = await preview.next(); ; next = await preview.next()) {
        if (next.done) {
          expect(next.value).toEqual({ total: 27, dryRun: true, interrupted: false });
          break;
        }
        previewed.push(next.value);
      }
      expect(previewed).toEqual([5, 5, 5, 5, 5, 2]);
      expect(await historyRows(t.db)).toEqual([]);

      const counted: number[] = [];
      const batches = releaseExpiredLocksCounting(t.db, { batchSize: 5, event: 'Count A' });
      for (let next = await batches.next(); ; next = await batches.next()) {
        if (next.done) {
          expect(next.value).toEqual({ total: 23, dryRun: false, interrupted: false });
          break;
        }
        counted.push(next.value);
      }
      expect(counted).toEqual([5, 5, 5, 5, 3]);
      const rows = await seatRows(t.db, a);
      for (const seat of seatNumbers(23)) expect(rows.get(seat)).toMatchObject({ status: 'available', locked_by: null, locked_until: null });
      for (const seat of ['A24', 'A25']) expect(rows.get(seat)).toMatchObject({ status: 'locked', locked_by: 'alice' });
      expect(rows.get('A26')!.status).toBe('booked');
      expect((await seatRows(t.db, b)).get('A1')!.status).toBe('locked');
      const entries = await history(t.db, { limit: 1000 });
      expect(entries.map((e) => e.seat).sort()).toEqual(seatNumbers(23).sort());
      expect(entries.every((e) => e.lockedBy === 'admin' && e.reason === 'expired' && e.event === 'Count A')).toBe(true);
      // The rest, counted in one batch; then nothing.
      expect((await releaseExpiredLocksCounting(t.db).next()).value).toBe(4);
      expect(await releaseExpiredLocksCounting(t.db).next()).toEqual({ done: true, value: { total: 0, dryRun: false, interrupted: false } });
      expect((await stats(t.db)).lastRun).toMatchObject({ released: 0 });
    });

    it('rejects a batch size out of range', async () => {
      await expectError(releaseExpiredLocks(t.db, { batchSize: 0 }), 'usage', /batch size/);
      await expectError(releaseExpiredLocks(t.db, { batchSize: -5 }), 'usage', /batch size/);
    });
  });

  describe('lockSeats', () => {
    it('locks available seats for the TTL, by the database clock', async () => {
      await createEvent(t.db, 'Show', ['A1', 'A2', 'A3']);
      const result = await lockSeats(t.db, { event: 'Show', seats: ['A2', 'A1'], user: 'alice', ttlMs: 90_000 });
      expect(result.seats.map((s) => s.seat)).toEqual(['A2', 'A1']);
      for (const seat of result.seats) {
        expect(seat.lockedUntil.getTime() - result.now.getTime()).toBe(90_000);
        expect(seat.renewed).toBe(false);
        expect(seat.capped).toBe(false);
      }
      const rows = await seatRows(t.db, result.event.id);
      expect(rows.get('A1')).toMatchObject({ status: 'locked', locked_by: 'alice', lock_token: 1 });
      expect(rows.get('A3')).toMatchObject({ status: 'available', locked_by: null });
    });

    it('is all or nothing: one refused seat leaves every seat as it was, and each refusal says why', async () => {
      const id = await createEvent(t.db, 'Show', ['A1', 'A2', 'A3', 'A4']);
      await placeLock(t.db, id, ['A2'], 'bob', 3 * MINUTE);
      await bookDirectly(t.db, id, ['A3'], 'carol');
      const before = await t.db.knex('seats').orderBy('id');
      const error = (await expectError(
        lockSeats(t.db, { event: 'Show', seats: ['A1', 'A2', 'A3'], user: 'alice' }),
        'conflict',
      )) as SeatConflictError;
      expect(error.conflicts).toEqual([
        expect.objectContaining({ seat: 'A2', reason: 'held', lockedBy: 'bob' }),
        expect.objectContaining({ seat: 'A3', reason: 'booked' }),
      ]);
      expect(await t.db.knex('seats').orderBy('id')).toEqual(before);
      expect(await historyRows(t.db)).toEqual([]);
    });

    it("takes over an expired lock, whoever held it, and records the old lock's end in the history", async () => {
      const id = await createEvent(t.db, 'Show', ['A1']);
      await placeLock(t.db, id, ['A1'], 'bob', -MINUTE);
      const result = await lockSeats(t.db, { event: 'Show', seats: ['A1'], user: 'alice' });
      expect(result.seats[0]).toMatchObject({ renewed: false, lockToken: 2 });
      const [entry] = await history(t.db);
      expect(entry).toMatchObject({ seat: 'A1', lockedBy: 'bob', reason: 'replaced', lockToken: 1 });
    });

    it('re-locking your own seat extends it, keeps when the hold began, and changes the token', async () => {
      await createEvent(t.db, 'Show', ['A1']);
      const first = await lockSeats(t.db, { event: 'Show', seats: ['A1'], user: 'alice', ttlMs: MINUTE });
      const second = await lockSeats(t.db, { event: 'Show', seats: ['A1'], user: 'alice', ttlMs: 10 * MINUTE });
      expect(second.seats[0]!.renewed).toBe(true);
      expect(second.seats[0]!.lockedAt).toEqual(first.seats[0]!.lockedAt);
      expect(second.seats[0]!.lockedUntil.getTime()).toBe(second.now.getTime() + 10 * MINUTE);
      expect(second.seats[0]!.lockToken).toBe(first.seats[0]!.lockToken + 1);
    });

    it('never extends a hold beyond --max-hold after it began; past the cap it refuses', async () => {
      const id = await createEvent(t.db, 'Show', ['A1', 'A2']);
      // A hold that began 28 minutes ago (lock valid 2 more minutes, 30-minute TTL).
      await placeLock(t.db, id, ['A1'], 'alice', 2 * MINUTE, 30 * MINUTE);
      const capped = await lockSeats(t.db, {
        event: 'Show',
        seats: ['A1'],
        user: 'alice',
        ttlMs: 10 * MINUTE,
        maxHoldMs: 30 * MINUTE,
      });
      expect(capped.seats[0]!.capped).toBe(true);
      expect(capped.seats[0]!.lockedUntil.getTime()).toBe(capped.seats[0]!.lockedAt.getTime() + 30 * MINUTE);
      // A hold that began 31 minutes ago: the cap is passed.
      await placeLock(t.db, id, ['A2'], 'alice', MINUTE, 32 * MINUTE);
      const error = (await expectError(
        lockSeats(t.db, { event: 'Show', seats: ['A2'], user: 'alice', maxHoldMs: 30 * MINUTE }),
        'conflict',
      )) as SeatConflictError;
      expect(error.conflicts[0]).toMatchObject({ seat: 'A2', reason: 'hold-cap', lockedBy: 'alice' });
    });

    it('rejects unknown events and seats, duplicates, empty names and bad TTLs as usage errors, changing nothing', async () => {
      await createEvent(t.db, 'Show', ['A1']);
      await expectError(lockSeats(t.db, { event: 'Nope', seats: ['A1'], user: 'u' }), 'usage', /unknown event 'Nope'/);
      await expectError(
        lockSeats(t.db, { event: 'Show', seats: ['A1', 'Z9', 'Z8'], user: 'u' }),
        'usage',
        /unknown seats 'Z9', 'Z8'/,
      );
      await expectError(lockSeats(t.db, { event: 'Show', seats: ['A1', 'A1'], user: 'u' }), 'usage', /listed twice/);
      await expectError(lockSeats(t.db, { event: 'Show', seats: [], user: 'u' }), 'usage', /no seats/);
      await expectError(lockSeats(t.db, { event: 'Show', seats: [''], user: 'u' }), 'usage', /empty/);
      await expectError(lockSeats(t.db, { event: '', seats: ['A1'], user: 'u' }), 'usage', /empty/);
      await expectError(lockSeats(t.db, { event: 'Show', seats: ['A1'], user: '' }), 'usage', /user name is empty/);
      await expectError(lockSeats(t.db, { event: 'Show', seats: ['A1'], user: 'u', ttlMs: 0 }), 'usage', /TTL/);
      await expectError(
        lockSeats(t.db, { event: 'Show', seats: ['A1'], user: 'u', ttlMs: 25 * 60 * MINUTE }),
        'usage',
        /TTL/,
      );
      expect(await t.db.knex('seats').where('status', 'locked').count({ n: '*' }).first()).toMatchObject({
        n: engine.name === 'postgres' ? '0' : 0,
      });
    });

    it('matches names exactly and literally: quotes, %, _, SQL and Unicode', async () => {
      const names = ["Rock 'n' Roll", '100% "Live"', 'a_b', "'); DROP TABLE seats;--", '??', 'Café Ñandú 東京 🎤'];
      for (const name of names) await createEvent(t.db, name, [name, 'A1']);
      for (const name of names) {
        const result = await lockSeats(t.db, { event: name, seats: [name], user: name });
        expect(result.event.name).toBe(name);
        expect(result.seats[0]!.seat).toBe(name);
      }
      await expectError(lockSeats(t.db, { event: 'a%b', seats: ['A1'], user: 'u' }), 'usage', /unknown event/);
      await expectError(
        lockSeats(t.db, { event: 'Cafe\u0301 Ñandú 東京 🎤', seats: ['A1'], user: 'u' }),
        'usage',
        /unknown event/,
      );
      expect((await listLocked(t.db)).seats.map((s) => s.lockedBy).sort()).toEqual([...names].sort());
    });
  });

  describe('bookSeats', () => {
    it("books the user's unexpired locks", async () => {
      await createEvent(t.db, 'Show', ['A1', 'A2']);
      await lockSeats(t.db, { event: 'Show', seats: ['A1', 'A2'], user: 'alice' });
      const result = await bookSeats(t.db, { event: 'Show', seats: ['A1', 'A2'], user: 'alice' });
      expect(result.seats.map((s) => s.seat)).toEqual(['A1', 'A2']);
      const rows = await seatRows(t.db, result.event.id);
      expect(rows.get('A1')).toMatchObject({
        status: 'booked',
        booked_by: 'alice',
        locked_by: null,
        locked_until: null,
      });
      // A booked seat is never released or re-locked.
      expect((await releaseExpiredLocks(t.db)).total).toBe(0);
      await expectError(lockSeats(t.db, { event: 'Show', seats: ['A1'], user: 'alice' }), 'conflict');
    });

    it('books nothing unless every seat is held by the user with a valid lock, and says why per seat', async () => {
      const id = await createEvent(t.db, 'Show', ['A1', 'A2', 'A3', 'A4', 'A5', 'A6']);
      await placeLock(t.db, id, ['A1'], 'alice', MINUTE);
      await placeLock(t.db, id, ['A2'], 'alice', -MINUTE);
      await placeLock(t.db, id, ['A3'], 'bob', MINUTE);
      await bookDirectly(t.db, id, ['A4'], 'carol');
      await placeLock(t.db, id, ['A6'], 'bob', -MINUTE);
      const before = await t.db.knex('seats').orderBy('id');
      const error = (await expectError(
        bookSeats(t.db, { event: 'Show', seats: ['A1', 'A2', 'A3', 'A4', 'A5', 'A6'], user: 'alice' }),
        'conflict',
      )) as SeatConflictError;
      expect(error.conflicts.map((c) => [c.seat, c.reason])).toEqual([
        ['A2', 'expired'],
        ['A3', 'held'],
        ['A4', 'booked'],
        ['A5', 'not-locked'],
        ['A6', 'not-locked'],
      ]);
      expect(await t.db.knex('seats').orderBy('id')).toEqual(before);
    });

    it('a stale holder can never book: A locks, it expires, B takes the seat; A fails and B succeeds', async () => {
      const id = await createEvent(t.db, 'Show', ['A1']);
      await placeLock(t.db, id, ['A1'], 'alice', -1000);
      await lockSeats(t.db, { event: 'Show', seats: ['A1'], user: 'bob' });
      const error = (await expectError(
        bookSeats(t.db, { event: 'Show', seats: ['A1'], user: 'alice' }),
        'conflict',
      )) as SeatConflictError;
      expect(error.conflicts[0]).toMatchObject({ reason: 'held', lockedBy: 'bob' });
      await bookSeats(t.db, { event: 'Show', seats: ['A1'], user: 'bob' });
      expect((await seatRows(t.db, id)).get('A1')).toMatchObject({ status: 'booked', booked_by: 'bob' });
    });
  });

  describe('unlockSeats', () => {
    it('releases the given locks now and records them as unlocked', async () => {
      const id = await createEvent(t.db, 'Show', ['A1', 'A2']);
      await placeLock(t.db, id, ['A1'], 'alice', MINUTE);
      await placeLock(t.db, id, ['A2'], 'bob', -MINUTE);
      const result = await unlockSeats(t.db, { event: 'Show', seats: ['A1', 'A2'] });
      expect(result.seats.map((s) => [s.seat, s.lockedBy])).toEqual([
        ['A1', 'alice'],
        ['A2', 'bob'],
      ]);
      expect((await history(t.db)).map((e) => [e.seat, e.reason]).sort()).toEqual([
        ['A1', 'unlocked'],
        ['A2', 'unlocked'],
      ]);
      expect(new Set([...(await seatRows(t.db, id)).values()].map((r) => r.status))).toEqual(new Set(['available']));
    });

    it("with a user, only that user's locks; anything else refuses the whole request", async () => {
      const id = await createEvent(t.db, 'Show', ['A1', 'A2', 'A3', 'A4']);
      await placeLock(t.db, id, ['A1'], 'alice', MINUTE);
      await placeLock(t.db, id, ['A2'], 'bob', MINUTE);
      await bookDirectly(t.db, id, ['A3'], 'bob');
      const error = (await expectError(
        unlockSeats(t.db, { event: 'Show', seats: ['A1', 'A2', 'A3', 'A4'], user: 'alice' }),
        'conflict',
      )) as SeatConflictError;
      expect(error.conflicts.map((c) => [c.seat, c.reason])).toEqual([
        ['A2', 'held'],
        ['A3', 'booked'],
        ['A4', 'not-locked'],
      ]);
      expect((await seatRows(t.db, id)).get('A1')).toMatchObject({ status: 'locked', locked_by: 'alice' });
      expect(await historyRows(t.db)).toEqual([]);
    });
  });

  describe('listLocked, history, stats, availableSeats', () => {
    it('lists locks with their state, filtered by event, state and user', async () => {
      await seedDemo(t.db);
      const all = await listLocked(t.db);
      expect(all.seats).toHaveLength(22);
      expect(all.seats.filter((s) => s.expired)).toHaveLength(19);
      expect((await listLocked(t.db, { state: 'active' })).seats.map((s) => s.seat)).toEqual(['B1', 'B2', 'B3']);
      expect((await listLocked(t.db, { state: 'expired', user: 'alice' })).seats).toEqual([]);
      expect((await listLocked(t.db, { user: 'admin', pageSize: 4 })).seats).toHaveLength(19);
      expect((await listLocked(t.db, { event: 'Taylor Swift - Eras Tour', state: 'expired' })).seats).toHaveLength(19);
    });

    it('filters the history by event, seat, user and time, newest first', async () => {
      await seedDemo(t.db);
      await releaseExpiredLocks(t.db);
      await lockSeats(t.db, { event: 'Taylor Swift - Eras Tour', seats: ['D1'], user: 'dan' });
      await unlockSeats(t.db, { event: 'Taylor Swift - Eras Tour', seats: ['D1'] });
      const all = await history(t.db);
      expect(all).toHaveLength(20);
      expect(all[0]).toMatchObject({ seat: 'D1', reason: 'unlocked', lockedBy: 'dan' });
      expect(await history(t.db, { seat: 'A13' })).toEqual([
        expect.objectContaining({ seat: 'A13', lockedBy: 'admin', reason: 'expired' }),
      ]);
      expect(await history(t.db, { user: 'dan', limit: 5 })).toHaveLength(1);
      expect(await history(t.db, { limit: 3 })).toHaveLength(3);
      expect(await history(t.db, { withinMs: MINUTE })).toHaveLength(20);
      expect(await history(t.db, { since: new Date(Date.now() + 60 * MINUTE) })).toHaveLength(0);
    });

    it('counts seats per event and flags expired locks waiting with no recent release', async () => {
      await seedDemo(t.db);
      const before = await stats(t.db);
      expect(before.stale).toBe(true); // 19 expired, no release ever ran
      await releaseExpiredLocks(t.db);
      const after = await stats(t.db, { event: 'Taylor Swift - Eras Tour' });
      expect(after.stale).toBe(false);
      expect(after.events[0]).toMatchObject({ available: 92, locked: 3, expired: 0, booked: 5 });
    });

    it('treats expired locks as available before any release ran', async () => {
      await seedDemo(t.db);
      const { seats } = await availableSeats(t.db, 'Taylor Swift - Eras Tour');
      expect(seats).toHaveLength(92);
      expect(seats).toContain('A13');
      expect(seats).not.toContain('B1');
      expect(seats).not.toContain('C1');
    });
  });

  describe('seedSynthetic', () => {
    it('seeds events of seats with the asked numbers of expired, active and booked seats, spread over events', async () => {
      const result = await seedSynthetic(t.db, { events: 3, seatsPerEvent: 50, expired: 30, active: 9, booked: 6 });
      expect(result).toEqual({ events: 3, seats: 150, expired: 30, active: 9, booked: 6 });
      const report = await stats(t.db);
      expect(report.events.map((e) => e.event)).toEqual(['Event 0001', 'Event 0002', 'Event 0003']);
      const sum = (key: 'expired' | 'locked' | 'booked' | 'seats') => report.events.reduce((n, e) => n + e[key], 0);
      expect([sum('seats'), sum('expired'), sum('locked'), sum('booked')]).toEqual([150, 30, 9, 6]);
      expect(report.events.every((e) => e.expired > 0)).toBe(true);
      const seats = await t.db
        .knex('seats')
        .where('event_id', report.events[0]!.eventId)
        .orderBy('id')
        .pluck('seat_number');
      expect(seats.slice(0, 3)).toEqual(['A1', 'A2', 'A3']);
      expect(seats[20]).toBe('B1');
      // Repeating replaces the same events with the same state.
      await seedSynthetic(t.db, { events: 3, seatsPerEvent: 50, expired: 30, active: 9, booked: 6 });
      expect((await stats(t.db)).events.map((e) => [e.seats, e.expired])).toEqual(
        report.events.map((e) => [e.seats, e.expired]),
      );
    });

    it('rejects counts that do not fit', async () => {
      await expectError(
        seedSynthetic(t.db, { events: 1, seatsPerEvent: 10, expired: 8, active: 3 }),
        'usage',
        /add up/,
      );
      await expectError(seedSynthetic(t.db, { events: 0, seatsPerEvent: 10 }), 'usage', /--events/);
    });
  });
});
