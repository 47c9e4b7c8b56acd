// The library on a web server's hot path (issue 13): how many round trips a
// call costs, statements prepared once, the app's own pool, close() with calls
// in flight. Counted with driver hooks in this process.
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { bookSeats, lockSeats, openDatabase, stats, unlockSeats, type SeatDatabase } from '../src/index.js';
import { postgres, sqlite, useDatabase } from './support/engines.js';
import { createEvent, seatNumbers } from './support/fixtures.js';

/** Counts calls of a prototype method while `work` runs. */
async function counting<T>(proto: any, method: string, work: () => Promise<T>): Promise<{ result: T; calls: string[] }> {
  const original = proto[method];
  const calls: string[] = [];
  proto[method] = function (this: unknown, ...args: any[]) {
    const text = typeof args[0] === 'string' ? args[0] : (args[0]?.text ?? '');
    calls.push(String(text).trim().split('\n')[0]!.slice(0, 60));
    return original.apply(this, args);
  };
  try {
    return { result: await work(), calls };
  } finally {
    proto[method] = original;
  }
}

describe.skipIf(postgres.skipReason !== null)('hot path [postgres]', () => {
  const t = useDatabase(postgres);

  it('lock, book and unlock are one statement each, once the handle knows the event', async () => {
    await createEvent(t.db, 'Hot', seatNumbers(10));
    // The first call on a handle checks the schema and reads the event: not counted.
    await lockSeats(t.db, { event: 'Hot', seats: ['A1'], user: 'warm' });
    const lock = await counting(pg.Client.prototype, 'query', () =>
      lockSeats(t.db, { event: 'Hot', seats: ['A2', 'A3'], user: 'buyer' }),
    );
    expect(lock.calls, lock.calls.join('\n')).toHaveLength(1);
    const book = await counting(pg.Client.prototype, 'query', () =>
      bookSeats(t.db, { event: 'Hot', seats: ['A2'], user: 'buyer' }),
    );
    expect(book.calls, book.calls.join('\n')).toHaveLength(1);
    const unlock = await counting(pg.Client.prototype, 'query', () =>
      unlockSeats(t.db, { event: 'Hot', seats: ['A3'], user: 'buyer' }),
    );
    expect(unlock.calls, unlock.calls.join('\n')).toHaveLength(1);
    // A refusal is the same one statement: it returns the reasons.
    const refused = await counting(pg.Client.prototype, 'query', () =>
      lockSeats(t.db, { event: 'Hot', seats: ['A1', 'A4'], user: 'other' }).catch((error: unknown) => error),
    );
    expect(refused.calls).toHaveLength(1);
    expect(refused.result).toMatchObject({ kind: 'conflict', conflicts: [{ seat: 'A1', reason: 'held', lockedBy: 'warm' }] });
  });

  it("runs on the application's own pg.Pool and never ends it", async () => {
    const pool = new pg.Pool({ connectionString: t.url, max: 3 });
    try {
      const db = await openDatabase({ url: t.url, pgPool: pool });
      await createEvent(t.db, 'Pooled', ['A1']);
      await lockSeats(db, { event: 'Pooled', seats: ['A1'], user: 'app' });
      await db.close();
      expect(pool.totalCount).toBeGreaterThan(0);
      expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });

  it('a call past its timeoutMs ends with an aborted error, and its statement is cancelled on the server', async () => {
    await createEvent(t.db, 'Slow', ['A1']);
    const holder = new pg.Client({ connectionString: t.url });
    await holder.connect();
    try {
      // Another transaction holds the seat's row: the lock's statement waits for it.
      await holder.query('BEGIN');
      await holder.query("SELECT id FROM seats WHERE seat_number = 'A1' FOR UPDATE");
      const started = Date.now();
      const error = await lockSeats(t.db, { event: 'Slow', seats: ['A1'], user: 'late', timeoutMs: 300 }).catch((e: unknown) => e);
      expect(error).toMatchObject({ name: 'SeatctlError', kind: 'aborted' });
      expect(Date.now() - started).toBeLessThan(30_000);
      const waiting = await holder.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE 'WITH now%'",
      );
      expect(waiting.rows[0].n, 'no statement of seatctl still runs on the server').toBe(0);
      // An already-aborted signal stops a call before its first statement.
      const controller = new AbortController();
      controller.abort();
      await expect(lockSeats(t.db, { event: 'Slow', seats: ['A1'], user: 'late', signal: controller.signal })).rejects.toMatchObject({
        kind: 'aborted',
      });
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    // Nothing was half-done: the seat is still free.
    expect((await lockSeats(t.db, { event: 'Slow', seats: ['A1'], user: 'next' })).seats).toHaveLength(1);
  });

  it('sizes its own pool as asked', async () => {
    const db = await openDatabase({ url: t.url, pool: { max: 2 } });
    try {
      expect((db.knex.client as any).pool.max).toBe(2);
    } finally {
      await db.close();
    }
  });
});

describe.skipIf(sqlite.skipReason !== null)('hot path [sqlite]', () => {
  const t = useDatabase(sqlite);
  let extra: SeatDatabase | undefined;
  afterEach(async () => {
    await extra?.close();
    extra = undefined;
  });

  it('prepares each statement once per connection: a second lock prepares nothing', async () => {
    await createEvent(t.db, 'Hot', seatNumbers(10));
    await lockSeats(t.db, { event: 'Hot', seats: ['A1'], user: 'warm' });
    await bookSeats(t.db, { event: 'Hot', seats: ['A1'], user: 'warm' });
    const again = await counting(Database.prototype, 'prepare', async () => {
      await lockSeats(t.db, { event: 'Hot', seats: ['A2'], user: 'warm' });
      await bookSeats(t.db, { event: 'Hot', seats: ['A2'], user: 'warm' });
    });
    expect(again.calls, again.calls.join('\n')).toEqual([]);
  });

  /** The statements `work` runs (every one is prepared, BEGIN and COMMIT too), in order. */
  const statementsRun = async (work: () => Promise<unknown>) => {
    const probe = new Database(t.url, { readonly: true });
    const statementProto = Object.getPrototypeOf(probe.prepare('SELECT 1'));
    probe.close();
    const seen: string[] = [];
    const originals = ['run', 'all', 'get'].map((method) => [method, statementProto[method]] as const);
    for (const [method, original] of originals) {
      statementProto[method] = function (this: { source: string }, ...args: unknown[]) {
        seen.push(this.source.trim());
        return original.apply(this, args);
      };
    }
    try {
      await work();
    } finally {
      for (const [method, original] of originals) statementProto[method] = original;
    }
    return seen;
  };
  const firstWords = (texts: string[]) => texts.map((text) => text.split(/\s+/)[0]!.toUpperCase());

  it('an uncontended lock runs two statements and a book one, inside BEGIN … COMMIT, and no PRAGMA; anything else gets the busy timeout back first', async () => {
    await createEvent(t.db, 'Quiet', seatNumbers(10));
    await lockSeats(t.db, { event: 'Quiet', seats: ['A1'], user: 'warm' });
    const pragmas = async (work: () => Promise<unknown>) => (await statementsRun(work)).filter((text) => /^PRAGMA/i.test(text));
    // A lock reads the seats once (renewals, expired locks taken over) and writes them once; a book writes them.
    // Each call runs in a savepoint of the write transaction it may share with others.
    const session = (...words: string[]) => ['BEGIN', 'SAVEPOINT', ...words, 'RELEASE', 'COMMIT'];
    expect(firstWords(await statementsRun(() => lockSeats(t.db, { event: 'Quiet', seats: ['A2', 'A3'], user: 'buyer' })))).toEqual(
      session('SELECT', 'UPDATE'),
    );
    expect(firstWords(await statementsRun(() => bookSeats(t.db, { event: 'Quiet', seats: ['A2'], user: 'buyer' })))).toEqual(session('UPDATE'));
    expect(firstWords(await statementsRun(() => unlockSeats(t.db, { event: 'Quiet', seats: ['A3'], user: 'buyer' })))).toEqual(
      session('INSERT', 'UPDATE'),
    );
    // A refusal reads the seats to say why, and rolls back: it returns at once, and
    // its transaction (nothing else in it) ends with a ROLLBACK in the next turn.
    const refused = await statementsRun(async () => {
      await bookSeats(t.db, { event: 'Quiet', seats: ['A2'], user: 'buyer' }).catch(() => undefined);
      await new Promise((resolve) => setImmediate(resolve));
    });
    expect(firstWords(refused)).toEqual(['BEGIN', 'SAVEPOINT', 'UPDATE', 'SELECT', 'ROLLBACK', 'RELEASE', 'ROLLBACK']);
    // A read outside a write session runs with the busy timeout: it is put back once, then kept.
    expect(await pragmas(() => stats(t.db))).toEqual(['PRAGMA busy_timeout = 5000']);
    expect(await pragmas(() => stats(t.db))).toEqual([]);
    // The next write session sets it aside again, once.
    expect(await pragmas(() => lockSeats(t.db, { event: 'Quiet', seats: ['A4'], user: 'buyer' }))).toEqual(['PRAGMA busy_timeout = 0']);
  });

  it('calls made at once share one commit; a refused one is rolled back alone; none returns before the commit', async () => {
    await createEvent(t.db, 'Group', seatNumbers(10));
    await lockSeats(t.db, { event: 'Group', seats: ['A9'], user: 'warm' });
    const reader = new Database(t.url, { readonly: true });
    try {
      const holderOf = (seat: string) =>
        (reader.prepare("SELECT locked_by FROM seats WHERE seat_number = ? AND event_id = (SELECT id FROM events WHERE name = 'Group')").get(seat) as {
          locked_by: string | null;
        }).locked_by;
      let seenOnReturn: string | null = null;
      const statements = await statementsRun(async () => {
        const calls = [
          // Seen from another connection the moment the call returns: committed already.
          lockSeats(t.db, { event: 'Group', seats: ['A1', 'A2'], user: 'first' }).then((result) => {
            seenOnReturn = holderOf('A1');
            return result;
          }),
          lockSeats(t.db, { event: 'Group', seats: ['A3'], user: 'second' }),
          // A2 is the first call's by now: refused, and its A4 is not locked either.
          lockSeats(t.db, { event: 'Group', seats: ['A4', 'A2'], user: 'third' }),
          bookSeats(t.db, { event: 'Group', seats: ['A9'], user: 'warm' }),
        ];
        const settled = await Promise.allSettled(calls);
        expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
        expect((settled[2] as PromiseRejectedResult).reason).toMatchObject({
          kind: 'conflict',
          conflicts: [{ seat: 'A2', reason: 'held', lockedBy: 'first' }],
        });
      });
      const words = firstWords(statements);
      expect(words.filter((w) => w === 'BEGIN')).toHaveLength(1);
      expect(words.filter((w) => w === 'SAVEPOINT')).toHaveLength(4);
      expect(words.filter((w) => w === 'COMMIT')).toHaveLength(1);
      expect(seenOnReturn).toBe('first');
      expect(['A1', 'A2', 'A3', 'A4'].map(holderOf)).toEqual(['first', 'first', 'second', null]);
      expect((reader.prepare("SELECT status FROM seats WHERE seat_number = 'A9'").get() as { status: string }).status).toBe('booked');
    } finally {
      reader.close();
    }
  });

  it('when the write lock cannot be had, every call waiting for it fails with the busy error and changes nothing', async () => {
    await createEvent(t.db, 'Blocked', seatNumbers(5));
    extra = await openDatabase({ url: t.url, busyTimeoutMs: 200 });
    await lockSeats(extra, { event: 'Blocked', seats: ['A5'], user: 'warm' });
    const holder = new Database(t.url);
    try {
      holder.exec('BEGIN IMMEDIATE');
      const settled = await Promise.allSettled(
        ['A1', 'A2', 'A3'].map((seat) => lockSeats(extra!, { event: 'Blocked', seats: [seat], user: 'waiting' })),
      );
      for (const s of settled) {
        expect(s.status).toBe('rejected');
        expect((s as PromiseRejectedResult).reason).toMatchObject({ name: 'SeatctlError', kind: 'unavailable', message: expect.stringMatching(/busy/) });
      }
      holder.exec('ROLLBACK');
      const locked = holder.prepare("SELECT count(*) AS n FROM seats WHERE status = 'locked' AND locked_by = 'waiting'").get() as { n: number };
      expect(locked.n).toBe(0);
      await expect(lockSeats(extra, { event: 'Blocked', seats: ['A1'], user: 'later' })).resolves.toMatchObject({ seats: [{ seat: 'A1' }] });
    } finally {
      holder.close();
    }
  });

  it("a call's timeout stops its own wait for the write lock, not the wait of the calls grouped with it", async () => {
    await createEvent(t.db, 'Waiting', seatNumbers(5));
    extra = await openDatabase({ url: t.url, busyTimeoutMs: 30_000 });
    await lockSeats(extra, { event: 'Waiting', seats: ['A5'], user: 'warm' });
    const holder = new Database(t.url);
    try {
      holder.exec('BEGIN IMMEDIATE');
      // The hasty call opens the group (and starts the wait); the patient one joins it.
      const hasty = lockSeats(extra, { event: 'Waiting', seats: ['A2'], user: 'hasty', timeoutMs: 50 });
      const patient = lockSeats(extra, { event: 'Waiting', seats: ['A1'], user: 'patient' });
      await expect(hasty).rejects.toMatchObject({ name: 'SeatctlError', kind: 'aborted' });
      holder.exec('ROLLBACK');
      await expect(patient).resolves.toMatchObject({ seats: [{ seat: 'A1' }] });
      const holders = holder.prepare("SELECT seat_number AS seat, locked_by FROM seats WHERE seat_number IN ('A1', 'A2') AND event_id = (SELECT id FROM events WHERE name = 'Waiting') ORDER BY seat_number").all();
      expect(holders).toEqual([
        { seat: 'A1', locked_by: 'patient' },
        { seat: 'A2', locked_by: null },
      ]);
    } finally {
      if (holder.inTransaction) holder.exec('ROLLBACK');
      holder.close();
    }
  });

  it('a call stopped after it was made, before its transaction, still ends the transaction it began: the write lock is free again', async () => {
    await createEvent(t.db, 'Stopped', seatNumbers(5));
    // The handle now knows the event, and keeps its connection for the next write session.
    await lockSeats(t.db, { event: 'Stopped', seats: ['A1'], user: 'warm' });
    const controller = new AbortController();
    const stopped = lockSeats(t.db, { event: 'Stopped', seats: ['A2'], user: 'stopped', signal: controller.signal });
    controller.abort();
    await expect(stopped).rejects.toMatchObject({ name: 'SeatctlError', kind: 'aborted' });
    await new Promise((resolve) => setImmediate(resolve));
    const other = new Database(t.url, { timeout: 0 });
    try {
      expect(() => other.exec('BEGIN IMMEDIATE')).not.toThrow();
      other.exec('ROLLBACK');
      const a2 = other.prepare("SELECT locked_by FROM seats WHERE seat_number = 'A2' AND event_id = (SELECT id FROM events WHERE name = 'Stopped')").get();
      expect(a2).toEqual({ locked_by: null });
    } finally {
      other.close();
    }
  });

  it('close() lets the calls in flight finish, then refuses new ones', async () => {
    extra = await openDatabase({ url: t.url });
    await createEvent(t.db, 'Closing', ['A1']);
    const pending = lockSeats(extra, { event: 'Closing', seats: ['A1'], user: 'late' });
    const closing = extra.close();
    await expect(pending).resolves.toMatchObject({ seats: [{ seat: 'A1' }] });
    await closing;
    await expect(stats(extra)).rejects.toMatchObject({ name: 'SeatctlError', kind: 'closed' });
  });

  it('close() right after a refused call ends: the connection comes back to the closing pool when the refused transaction ends', async () => {
    const db = await openDatabase({ url: t.url });
    await createEvent(t.db, 'Refusing', ['A1']);
    await lockSeats(db, { event: 'Refusing', seats: ['A1'], user: 'first' });
    // A refusal returns at once; its transaction ends (ROLLBACK) in the next turn,
    // while close() already waits for the pool's connection to come back.
    await expect(lockSeats(db, { event: 'Refusing', seats: ['A1'], user: 'second' })).rejects.toMatchObject({ kind: 'conflict' });
    // A connection kept back would leave close() waiting for ever: a generous deadline says so.
    let deadline: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      db.close().then(() => 'closed'),
      new Promise((resolve) => (deadline = setTimeout(resolve, 30_000, 'close() still waiting after 30 s'))),
    ]);
    clearTimeout(deadline);
    expect(outcome).toBe('closed');
  });

  it("runs on the application's own Knex instance and never destroys it", async () => {
    const { default: knexFactory } = await import('knex');
    const app = knexFactory({ client: 'better-sqlite3', connection: { filename: t.url }, useNullAsDefault: true });
    try {
      extra = await openDatabase({ url: t.url, knex: app });
      await createEvent(t.db, 'Shared', ['A1']);
      await lockSeats(extra, { event: 'Shared', seats: ['A1'], user: 'app' });
      await extra.close();
      extra = undefined;
      expect(await app.raw('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await app.destroy();
    }
  });
});
