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

  it('an uncontended lock runs two statements and a book one, inside BEGIN … COMMIT, and no PRAGMA; anything else gets the busy timeout back first', async () => {
    await createEvent(t.db, 'Quiet', seatNumbers(10));
    await lockSeats(t.db, { event: 'Quiet', seats: ['A1'], user: 'warm' });
    const probe = new Database(t.url, { readonly: true });
    const statementProto = Object.getPrototypeOf(probe.prepare('SELECT 1'));
    probe.close();
    /** The statements `work` runs through prepared statements (BEGIN is exec'd), first word and all. */
    const statementsRun = async (work: () => Promise<unknown>) => {
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
    const pragmas = async (work: () => Promise<unknown>) => (await statementsRun(work)).filter((text) => /^PRAGMA/i.test(text));
    const firstWords = (texts: string[]) => texts.map((text) => text.split(/\s+/)[0]!.toUpperCase());
    // A lock reads the seats once (renewals, expired locks taken over) and writes them once; a book writes them.
    expect(firstWords(await statementsRun(() => lockSeats(t.db, { event: 'Quiet', seats: ['A2', 'A3'], user: 'buyer' })))).toEqual([
      'SELECT',
      'UPDATE',
      'COMMIT',
    ]);
    expect(firstWords(await statementsRun(() => bookSeats(t.db, { event: 'Quiet', seats: ['A2'], user: 'buyer' })))).toEqual(['UPDATE', 'COMMIT']);
    expect(firstWords(await statementsRun(() => unlockSeats(t.db, { event: 'Quiet', seats: ['A3'], user: 'buyer' })))).toEqual([
      'INSERT',
      'UPDATE',
      'COMMIT',
    ]);
    // A refusal reads the seats to say why, and rolls back.
    const refused = await statementsRun(() => bookSeats(t.db, { event: 'Quiet', seats: ['A2'], user: 'buyer' }).catch(() => undefined));
    expect(firstWords(refused)).toEqual(['UPDATE', 'SELECT', 'ROLLBACK']);
    // A read outside a write session runs with the busy timeout: it is put back once, then kept.
    expect(await pragmas(() => stats(t.db))).toEqual(['PRAGMA busy_timeout = 5000']);
    expect(await pragmas(() => stats(t.db))).toEqual([]);
    // The next write session sets it aside again, once.
    expect(await pragmas(() => lockSeats(t.db, { event: 'Quiet', seats: ['A4'], user: 'buyer' }))).toEqual(['PRAGMA busy_timeout = 0']);
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
