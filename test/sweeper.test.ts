// The sweeper's schedule, retries and batch sizing, on a fake clock and a
// fake database: every decision is checked at the exact virtual instant it
// is taken, so nothing here depends on how busy the machine is.
import { describe, expect, it } from 'vitest';
import {
  MIN_BATCH_SIZE,
  runSweeper,
  SeatctlError,
  type ReleasedLock,
  type ReleaseSummary,
  type SweepBackend,
  type SweepCycle,
  type SweeperClock,
  type SweepFailure,
  type SweeperOptions,
} from '../src/index.js';

const T0 = Date.UTC(2026, 10, 24, 14, 0, 0);

/** Virtual time: the sweeper's sleeps end only when the test moves the clock past them. */
class FakeClock implements SweeperClock {
  t = T0;
  private sleeper: { until: number; resolve: () => void } | undefined;
  private onSleep: (() => void) | undefined;

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const entry = { until: this.t + Math.max(0, ms), resolve };
      const wake = () => {
        signal.removeEventListener('abort', wake);
        if (this.sleeper?.resolve === wake) this.sleeper = undefined;
        resolve();
      };
      signal.addEventListener('abort', wake, { once: true });
      // The sweeper's own sleep is the one the test steps through; others (the cancel timer) wait aside.
      if (this.sleeper === undefined) {
        this.sleeper = { until: entry.until, resolve: wake };
        this.onSleep?.();
      } else {
        others.add({ until: entry.until, resolve: wake });
      }
    });
  }

  /** Resolves once the sweeper sleeps; returns how long it asked to sleep. */
  async asleep(): Promise<number> {
    for (let i = 0; i < 1000 && this.sleeper === undefined; i++) {
      await new Promise<void>((resolve) => {
        this.onSleep = resolve;
        setImmediate(resolve);
      });
    }
    if (this.sleeper === undefined) throw new Error('the sweeper never went to sleep');
    return this.sleeper.until - this.t;
  }

  /** Moves the clock to the end of the sweeper's sleep and wakes it. */
  async wake(): Promise<number> {
    const asked = await this.asleep();
    const sleeper = this.sleeper!;
    this.sleeper = undefined;
    this.t = Math.max(this.t, sleeper.until);
    for (const other of [...others]) if (other.until <= this.t) other.resolve();
    sleeper.resolve();
    return asked;
  }

  /** Moves the clock by `ms` without waking anyone (time spent inside a query). */
  pass(ms: number): void {
    this.t += ms;
  }
}
const others = new Set<{ until: number; resolve: () => void }>();

interface FakeLock {
  seat: string;
  until: number;
}

/** A database of locks on the fake clock, recording every query the sweeper makes. */
class FakeDatabase implements SweepBackend {
  locks: FakeLock[] = [];
  released: ReleasedLock[] = [];
  queries: string[] = [];
  heartbeats: number[] = [];
  /** Throws this from every query while set. */
  down: Error | undefined;
  /** A batch bigger than this fails with a statement timeout. */
  maxBatch = Infinity;
  /** Time a release batch takes. */
  batchMs = 0;
  batchSizes: number[] = [];

  constructor(private readonly clock: FakeClock) {}

  lock(seat: string, inMs: number): void {
    this.locks.push({ seat, until: this.clock.now() + inMs });
  }

  private query(name: string): void {
    this.queries.push(name);
    if (this.down) throw this.down;
  }

  async defaultBatchSize(): Promise<number> {
    return 1000;
  }

  async *release(options: { batchSize: number; signal: AbortSignal }): AsyncGenerator<ReleasedLock[], ReleaseSummary> {
    let total = 0;
    for (;;) {
      if (options.signal.aborted) return { total, dryRun: false, interrupted: true };
      this.query('release');
      this.batchSizes.push(options.batchSize);
      if (options.batchSize > this.maxBatch) throw statementTimeout();
      this.clock.pass(this.batchMs);
      const now = this.clock.now();
      const due = this.locks.filter((lock) => lock.until <= now).slice(0, options.batchSize);
      this.locks = this.locks.filter((lock) => !due.includes(lock));
      const rows = due.map((lock, i) => ({
        event: 'E',
        eventId: 1,
        seatId: i + 1,
        seat: lock.seat,
        lockedBy: 'x',
        lockedUntil: new Date(lock.until),
        lockToken: 1,
        releasedAt: new Date(now),
      }));
      this.released.push(...rows);
      total += rows.length;
      if (rows.length > 0) yield rows;
      if (rows.length < options.batchSize) return { total, dryRun: false, interrupted: false };
    }
  }

  async nextExpiry(): Promise<Date | null> {
    this.query('nextExpiry');
    return this.locks.length === 0 ? null : new Date(Math.min(...this.locks.map((lock) => lock.until)));
  }

  async now(): Promise<Date> {
    this.query('now');
    return new Date(this.clock.now());
  }

  async heartbeat(released: number): Promise<void> {
    this.query('heartbeat');
    this.heartbeats.push(this.clock.now());
    void released;
  }
}

function statementTimeout(): SeatctlError {
  const cause = Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' });
  return new SeatctlError(
    'unavailable',
    'the database cancelled the statement: statement timeout (canceling statement due to statement timeout)',
    { cause },
  );
}

const unreachable = () =>
  new SeatctlError('unavailable', 'cannot connect to PostgreSQL at db:5432: connection refused', {
    cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
  });

function setup(options: SweeperOptions = {}) {
  const clock = new FakeClock();
  const db = new FakeDatabase(clock);
  const cycles: SweepCycle[] = [];
  const failures: SweepFailure[] = [];
  const start = () => {
    const sweeper = runSweeper(db, { clock, intervalMs: 60_000, maxLagMs: 1000, ...options });
    sweeper.on('cycle', (cycle) => cycles.push(cycle));
    sweeper.on('failure', (failure) => failures.push(failure));
    return sweeper;
  };
  return { clock, db, cycles, failures, start };
}

describe('the sweeper on a fake clock', () => {
  it('releases each lock at its expiry, never before it, and looks for new locks at least every --max-lag', async () => {
    const { clock, db, cycles, start } = setup();
    db.lock('A1', 5_000);
    db.lock('A2', 20_000);
    const sweeper = start();
    // The first cycle runs at once: nothing has expired.
    expect(await clock.asleep()).toBe(1000);
    expect(cycles).toHaveLength(1);
    expect(cycles[0]!.total).toBe(0);
    // Idle wake-ups, one per --max-lag, until A1's expiry comes within a second.
    const sleeps: number[] = [];
    while (db.released.length === 0) sleeps.push(await clock.wake());
    expect(sleeps.slice(0, 4)).toEqual([1000, 1000, 1000, 1000]);
    expect(Math.max(...sleeps)).toBeLessThanOrEqual(1000);
    const [a1] = db.released;
    expect(a1!.seat).toBe('A1');
    const lag = a1!.releasedAt!.getTime() - a1!.lockedUntil.getTime();
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(lag).toBeLessThan(50);
    while (db.released.length < 2) await clock.wake();
    const a2 = db.released[1]!;
    expect(a2.releasedAt!.getTime() - a2.lockedUntil.getTime()).toBeLessThan(50);
    await clock.asleep();
    const stopping = sweeper.stop();
    await stopping;
  });

  it('a lock placed after a look, shorter than --max-lag, is released at most --max-lag after its expiry', async () => {
    const { clock, db, start } = setup();
    const sweeper = start();
    await clock.asleep();
    await clock.wake(); // a look: nothing locked
    clock.pass(1);
    db.lock('B1', 300); // expires 300 ms later, before the next look
    while (db.released.length === 0) await clock.wake();
    const lag = db.released[0]!.releasedAt!.getTime() - db.released[0]!.lockedUntil.getTime();
    expect(lag).toBeGreaterThan(0);
    expect(lag).toBeLessThanOrEqual(1000);
    await sweeper.stop();
  });

  it('idle, costs one query per wake-up, and one full cycle with its heartbeat per interval', async () => {
    const { clock, db, start } = setup({ intervalMs: 10_000 });
    db.lock('C1', 3_600_000); // locks exist, none expiring soon
    const sweeper = start();
    await clock.asleep();
    const startedAt = clock.now();
    db.queries = [];
    let wakes = 0;
    while (clock.now() - startedAt < 60_000) {
      await clock.wake();
      wakes++;
    }
    await clock.asleep();
    const seconds = (clock.now() - startedAt) / 1000;
    const count = (name: string) => db.queries.filter((q) => q === name).length;
    expect(db.queries.length / seconds).toBeLessThanOrEqual(2);
    // Six full cycles (one per 10 s interval), each with its heartbeat; every other wake-up one query.
    expect(count('release')).toBe(6);
    expect(count('heartbeat')).toBe(6);
    expect(count('nextExpiry')).toBe(wakes);
    expect(db.queries.length).toBe(wakes + 6 * 3);
    for (let i = 1; i < db.heartbeats.length; i++) {
      expect(db.heartbeats[i]! - db.heartbeats[i - 1]!).toBeLessThanOrEqual(10_000);
    }
    await sweeper.stop();
  });

  it('many locks expiring one after another are released together, cycles at most every max-lag/10', async () => {
    const { clock, db, cycles, start } = setup();
    for (let i = 0; i < 100; i++) db.lock(`D${i}`, 2000 + i * 5); // one every 5 ms
    const sweeper = start();
    while (db.released.length < 100) await clock.wake();
    const releasing = cycles.filter((cycle) => cycle.total > 0);
    for (let i = 1; i < releasing.length; i++) {
      expect(releasing[i]!.startedAt.getTime() - releasing[i - 1]!.startedAt.getTime()).toBeGreaterThanOrEqual(100);
    }
    for (const lock of db.released) {
      const lag = lock.releasedAt!.getTime() - lock.lockedUntil.getTime();
      expect(lag).toBeGreaterThanOrEqual(0);
      expect(lag).toBeLessThanOrEqual(105);
    }
    await sweeper.stop();
  });

  it('retries every failure after 1 s, 2 s, 4 s … capped at 30 s, and resumes when the database is back', async () => {
    const { clock, db, failures, start } = setup({ intervalMs: 120_000 });
    db.down = unreachable();
    const sweeper = start();
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) delays.push(await clock.wake());
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    expect(failures.map((f) => f.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(failures.every((f) => f.kind === 'unavailable')).toBe(true);
    expect(sweeper.status().databaseUp).toBe(false);
    db.down = undefined;
    db.lock('E1', -10);
    await clock.wake();
    await clock.asleep();
    expect(db.released.map((l) => l.seat)).toEqual(['E1']);
    expect(sweeper.status()).toMatchObject({ databaseUp: true, consecutiveFailures: 0 });
    await sweeper.stop();
  });

  it('caps the retry delay at the interval when it is shorter, and retries any error, not only connection errors', async () => {
    const { clock, db, failures, start } = setup({ intervalMs: 3000 });
    db.down = new Error('a bug in a driver');
    const sweeper = start();
    const delays = [await clock.wake(), await clock.wake(), await clock.wake(), await clock.wake()];
    expect(delays).toEqual([1000, 2000, 3000, 3000]);
    expect(failures[0]!.kind).toBe('unexpected');
    await sweeper.stop();
  });

  it('a statement timeout halves the batch and retries at once, down to a floor; successes grow it back', async () => {
    const { clock, db, cycles, failures, start } = setup({ batchSize: 1000, intervalMs: 1000 });
    for (let i = 0; i < 1000; i++) db.lock(`F${i}`, -1000);
    db.maxBatch = 200;
    const sweeper = start();
    while (db.released.length < 1000) await clock.wake();
    // 1000 → 500 → 250 → 125, then every lock in batches of 125.
    expect(failures.map((f) => [f.kind, f.batchSize, f.retryInMs])).toEqual([
      ['statement-timeout', 500, 0],
      ['statement-timeout', 250, 0],
      ['statement-timeout', 125, 0],
    ]);
    expect(cycles[0]).toMatchObject({ total: 0, errorKind: 'statement-timeout' });
    expect(new Set(db.batchSizes.slice(3))).toEqual(new Set([125]));
    // Grows back (×2 after 3 successful cycles), and halves again when too big.
    for (let i = 0; i < 40; i++) await clock.wake();
    expect(Math.max(...db.batchSizes.slice(-10))).toBeLessThanOrEqual(250);
    db.maxBatch = Infinity;
    for (let i = 0; i < 40; i++) await clock.wake();
    expect(sweeper.status().batchSize).toBe(1000);
    await sweeper.stop();
  });

  it('a failed cycle reports what it committed before the failure', async () => {
    const { clock, db, cycles, start } = setup({ batchSize: 100 });
    for (let i = 0; i < 250; i++) db.lock(`G${i}`, -1000);
    let batches = 0;
    const release = db.release.bind(db);
    db.release = async function* (options) {
      const inner = release(options);
      for (;;) {
        const next = await inner.next();
        if (next.done) return next.value;
        if (++batches === 3) throw unreachable();
        yield next.value;
      }
    };
    const sweeper = start();
    await clock.asleep();
    expect(cycles[0]).toMatchObject({ total: 200, errorKind: 'unavailable' });
    expect(cycles[0]!.error!.message).toMatch(/connection refused/);
    await sweeper.stop();
  });

  it('the statement-timeout halving stops at the floor, and then backs off', async () => {
    const { clock, db, failures, start } = setup({ batchSize: 40 });
    db.lock('H1', -1000);
    db.maxBatch = 0;
    const sweeper = start();
    for (let i = 0; i < 5; i++) await clock.wake();
    expect(failures.map((f) => f.batchSize)).toEqual([20, MIN_BATCH_SIZE, MIN_BATCH_SIZE, MIN_BATCH_SIZE, MIN_BATCH_SIZE]);
    expect(failures.map((f) => f.retryInMs)).toEqual([0, 0, 1000, 2000, 4000]);
    await sweeper.stop();
  });

  it('health: 503 once nothing succeeded for 3 × max-lag, with the reason; 200 again after a success; ready after the first answer', async () => {
    const { clock, db, start } = setup({ intervalMs: 60_000, maxLagMs: 1000 });
    db.down = unreachable();
    const sweeper = start();
    expect(sweeper.health()).toMatchObject({ healthy: true, ready: false });
    await clock.wake(); // 1 s
    await clock.wake(); // 3 s
    expect(sweeper.health().healthy).toBe(true);
    await clock.wake(); // 7 s
    const health = sweeper.health();
    expect(health).toMatchObject({ healthy: false, ready: false });
    expect(health.reason).toMatch(/^no successful cycle since the start \(limit 3\.0 s\): cannot connect to PostgreSQL/);
    db.down = undefined;
    await clock.wake();
    await clock.asleep();
    expect(sweeper.health()).toMatchObject({ healthy: true, ready: true });
    // In interval mode the limit is 3 intervals.
    await sweeper.stop();
    const polling = setup({ precise: false, intervalMs: 10_000 });
    const other = polling.start();
    await polling.clock.asleep();
    expect(other.status().healthyWithinMs).toBe(30_000);
    await other.stop();
  });

  it('interval mode (precise: false) runs a full cycle every interval, start to start', async () => {
    const { clock, db, start } = setup({ precise: false, intervalMs: 5000 });
    db.batchMs = 300;
    const sweeper = start();
    const sleeps = [await clock.wake(), await clock.wake(), await clock.wake()];
    expect(sleeps).toEqual([4700, 4700, 4700]);
    expect(db.queries.filter((q) => q === 'nextExpiry')).toEqual([]);
    await sweeper.stop();
  });

  it('stop() during a sleep ends at once; the async iterator yields every cycle, then ends', async () => {
    const { clock, db, start } = setup();
    db.lock('I1', -5);
    const sweeper = start();
    const seen: SweepCycle[] = [];
    const reading = (async () => {
      for await (const cycle of sweeper) seen.push(cycle);
    })();
    await clock.asleep();
    db.lock('I2', 500);
    while (db.released.length < 2) await clock.wake();
    await clock.asleep();
    await sweeper.stop();
    await reading;
    expect(seen.map((c) => c.total).filter((t) => t > 0)).toEqual([1, 1]);
    expect(sweeper.status().running).toBe(false);
  });

  it('stop() during a release finishes the batch in progress and starts no other', async () => {
    const { clock, db, start } = setup({ batchSize: 10 });
    for (let i = 0; i < 50; i++) db.lock(`J${i}`, -1);
    let stopping: Promise<void> | undefined;
    const sweeper = start();
    sweeper.on('batch', () => {
      stopping ??= sweeper.stop();
    });
    await sweeper.done;
    await stopping;
    expect(db.released).toHaveLength(10);
    void clock;
  });

  it('an onBatch that throws ends the sweeper and rejects done', async () => {
    const { db, start } = setup({
      onBatch: () => {
        throw new Error('stdout is gone');
      },
    });
    db.lock('K1', -1);
    const sweeper = start();
    await expect(sweeper.done).rejects.toThrow('stdout is gone');
  });

  it('a closed database handle stops the sweeper', async () => {
    const { db, start } = setup();
    db.down = new SeatctlError('closed', 'the database handle is closed: open another one');
    const sweeper = start();
    await sweeper.done;
    expect(sweeper.status().running).toBe(false);
  });

  it('refuses bad options', () => {
    const { db } = setup();
    expect(() => runSweeper(db, { maxLagMs: 0 })).toThrow(/maximum lag/);
    expect(() => runSweeper(db, { intervalMs: 5 })).toThrow(/interval/);
    expect(() => runSweeper(db, { batchSize: 0 })).toThrow(/batch size/);
  });
});
