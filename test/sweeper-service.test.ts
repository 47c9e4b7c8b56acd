// The sweeper as an SRE runs it, with real processes, real HTTP and real
// databases: precise releases of real short locks, /metrics, /healthz and
// /readyz while the database goes away and comes back, a statement timeout,
// SIGTERM during a long batch, and the sweeper in-process beside a web server.
import { createServer } from 'node:http';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase, seedSynthetic, startSweeper, type SeatDatabase } from '../src/index.js';
import { jsonLines, runCli, startCli } from './support/cli.js';
import { describeEachEngine, postgres, sqlite, useDatabase } from './support/engines.js';
import { createEvent, placeLock, seatNumbers } from './support/fixtures.js';
import { startPostgres } from './support/postgres-server.js';
import { completeLines, type Child } from './support/processes.js';
import { boundFrom, eventually, idleTime } from './support/timing.js';
import { holdWriteLock } from './support/write-lock.js';

const records = (text: string) => jsonLines(completeLines(text).join('\n'));

/** The URL a sweeper started with `--metrics 0 --log-format json` serves on (from its note). */
async function serving(watcher: Child): Promise<string> {
  let url: string | undefined;
  await watcher.waitFor('the metrics address', () => {
    url = records(watcher.stdout).find((r) => r.type === 'note')?.url;
    return url !== undefined;
  });
  return url!;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.text() };
}

/** A metric's value in Prometheus text (the first series matching the name and labels). */
function metric(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

const lagOf = (r: Record<string, any>) => Date.parse(r.releasedAt) - Date.parse(r.lockedUntil);

describeEachEngine('the precise sweeper (--watch) with real short locks', (engine) => {
  const t = useDatabase(engine);

  it('releases every lock after its expiry, none early, none later than --max-lag plus a generous margin', async () => {
    const id = await createEvent(t.db, 'Short', seatNumbers(20));
    // What a whole one-shot run takes here and now: the margin for a busy machine.
    const oneShot = await idleTime(() => runCli(['--db', t.url, 'release-expired-locks', '--dry-run', '--json']));
    const watcher = startCli(['--db', t.url, 'release-expired-locks', '--watch', '--json', '--interval', '60s', '--max-lag', '500ms']);
    await watcher.waitFor('the first cycle', () => records(watcher.stdout).some((r) => r.type === 'summary'));
    // Locks placed after the sweeper's last look, with lifetimes shorter and longer than --max-lag.
    const ttls = [100, 200, 300, 450, 600, 800, 1000, 1300, 1600, 2000];
    for (const [i, ttl] of ttls.entries()) await placeLock(t.db, id, [`A${i + 1}`, `A${i + 11}`], 'buyer', ttl);
    await watcher.waitFor('every lock released', () => records(watcher.stdout).filter((r) => r.type === 'released').length === 20);
    const released = records(watcher.stdout).filter((r) => r.type === 'released');
    const bound = 500 + boundFrom(oneShot, 3, 2000);
    for (const record of released) {
      expect(lagOf(record), `${record.seat}: released before its expiry`).toBeGreaterThanOrEqual(0);
      expect(lagOf(record), `${record.seat}: one-shot run ${Math.round(oneShot)} ms`).toBeLessThanOrEqual(bound);
    }
    // With a 60 s interval, only the precise schedule can explain that.
    watcher.signal('SIGTERM');
    expect((await watcher.finished()).code).toBe(0);
  });

  it('runs in-process beside a web server, through the library', async () => {
    const id = await createEvent(t.db, 'In-process', seatNumbers(5));
    const server = createServer((_, response) => response.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const db = await openDatabase({ url: t.url });
    const sweeper = startSweeper(db, { maxLagMs: 200 });
    try {
      await placeLock(t.db, id, ['A1', 'A2'], 'buyer', 300);
      const released: string[] = [];
      sweeper.on('batch', (locks) => released.push(...locks.map((lock) => lock.seat)));
      await eventually('both locks released', () => released.length === 2);
      expect(released.sort()).toEqual(['A1', 'A2']);
      expect((await get(`http://127.0.0.1:${port}/`)).body).toBe('ok');
      expect(sweeper.health()).toMatchObject({ healthy: true, ready: true });
    } finally {
      await sweeper.stop();
      await db.close();
      server.close();
    }
    expect(sweeper.status().running).toBe(false);
  });
});

describe.skipIf(sqlite.skipReason !== null)('--metrics and health over HTTP [sqlite: another process holds the write lock]', () => {
  const t = useDatabase(sqlite);

  it('serves the metrics; /healthz turns 503 while the database is unavailable and 200 when it is back', async () => {
    const id = await createEvent(t.db, 'Metrics', seatNumbers(5));
    await placeLock(t.db, id, ['A1'], 'x', -1000);
    const watcher = startCli([
      '--db', t.url, '--busy-timeout', '200ms',
      'release-expired-locks', '--watch', '--quiet', '--interval', '1s', '--max-lag', '300ms',
      '--metrics', '0', '--metrics-by-event', '--log-format', 'json',
    ]);
    const url = await serving(watcher);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await eventually('/readyz 200', async () => (await get(`${url}/readyz`)).status === 200);
    await eventually('A1 released', async () => metric((await get(`${url}/metrics`)).body, 'seatctl_locks_released_total{event="Metrics"}') === 1);
    const metrics = (await get(`${url}/metrics`)).body;
    for (const name of [
      'seatctl_locks_released_total',
      'seatctl_expired_locks_waiting',
      'seatctl_release_lag_seconds_bucket{le="0.01"}',
      'seatctl_release_lag_seconds_bucket{le="300"}',
      'seatctl_cycle_duration_seconds_count',
      'seatctl_last_success_timestamp_seconds',
      'seatctl_database_up',
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(metrics, name).toContain(name);
    }
    expect(metric(metrics, 'seatctl_database_up')).toBe(1);
    expect(metric(metrics, 'seatctl_expired_locks_waiting')).toBe(0);
    const healthy = await get(`${url}/healthz`);
    expect(healthy.status).toBe(200);
    expect(healthy.body).toMatch(/^\{"status":"ok",.*\}\n$/);

    // A lock expiring soon, then the write lock held elsewhere: its release fails, cycle after cycle.
    await placeLock(t.db, id, ['A2'], 'y', 500);
    const holder = await holdWriteLock(t.url);
    await eventually('/healthz 503', async () => (await get(`${url}/healthz`)).status === 503, {
      describe: () => watcher.output(),
    });
    const failing = await get(`${url}/healthz`);
    expect(failing.body.split('\n')).toHaveLength(2);
    expect(JSON.parse(failing.body)).toMatchObject({ status: 'failing', reason: expect.stringMatching(/no successful cycle .*busy/) });
    const down = (await get(`${url}/metrics`)).body;
    expect(metric(down, 'seatctl_database_up')).toBe(0);
    expect(metric(down, 'seatctl_errors_total{kind="unavailable"}')).toBeGreaterThanOrEqual(1);
    const errors = records(watcher.stdout).filter((r) => r.type === 'error');
    expect(errors[0]).toMatchObject({ level: 'error', kind: 'unavailable', attempt: 1, msg: expect.stringMatching(/busy/) });

    await holder.letGo();
    await eventually('/healthz 200 again', async () => (await get(`${url}/healthz`)).status === 200, {
      describe: () => watcher.output(),
    });
    await eventually('A2 released', async () => metric((await get(`${url}/metrics`)).body, 'seatctl_locks_released_total{event="Metrics"}') === 2);
    expect(metric((await get(`${url}/metrics`)).body, 'seatctl_database_up')).toBe(1);
    watcher.signal('SIGTERM');
    expect((await watcher.finished()).code).toBe(0);
    expect(records(watcher.stdout).at(-1)).toMatchObject({ type: 'stop', msg: 'sweeper stopped' });
    expect(watcher.stderr).toBe('');
  });

  it('loads neither prom-client nor pino without their flags, and refuses them without --watch', async () => {
    const result = await runCli(['--db', t.url, 'release-expired-locks', '--metrics', '9465']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('error: --metrics only applies with --watch (a single release runs once)\n');
    const both = await runCli(['--db', t.url, 'release-expired-locks', '--watch', '--json', '--log-format', 'json']);
    expect(both.code).toBe(2);
    const env = { NODE_OPTIONS: `--require ${new URL('./support/report-loaded.cjs', import.meta.url).pathname}` };
    const probe = await runCli(['--db', t.url, 'release-expired-locks', '--quiet'], { env });
    expect(probe.code).toBe(0);
    expect(probe.stderr).toBe('');
    // The probe sees them when the flags ask for them.
    const watcher = startCli(['--db', t.url, 'release-expired-locks', '--watch', '--metrics', '0', '--log-format', 'json'], { env });
    await watcher.waitFor('the sweeper started', () => records(watcher.stdout).some((r) => r.type === 'note'));
    watcher.signal('SIGTERM');
    const stopped = await watcher.finished();
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toBe('loaded: pino, prom-client\n');
  });
});

describe.skipIf(postgres.skipReason !== null)('--metrics and health over HTTP [postgres: the server stops and starts]', () => {
  let server: Awaited<ReturnType<typeof startPostgres>>;
  let db: SeatDatabase | undefined;

  afterAll(async () => {
    await db?.close();
    try {
      server?.stop();
    } catch {
      // Stopped already (a failure while it was paused): its directory is gone all the same.
    }
  });

  it('/healthz turns 503 and database_up 0 while the server is down, errors are counted, and all turns back', { timeout: 120_000 }, async () => {
    server = await startPostgres({ fast: true });
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    await admin.query('CREATE DATABASE health');
    await admin.end();
    const url = server.adminUrl.replace(/\/postgres$/, '/health');
    db = await openDatabase({ url });
    await migrate(db);
    const id = await createEvent(db, 'Health', seatNumbers(5));
    await placeLock(db, id, ['A1'], 'x', -1000);
    await db.close();
    db = undefined;
    const watcher = startCli([
      '--db', url, '--connect-timeout', '1s',
      'release-expired-locks', '--watch', '--quiet', '--interval', '1s', '--max-lag', '300ms',
      '--metrics', '0', '--log-format', 'json',
    ]);
    const base = await serving(watcher);
    await eventually('A1 released', async () => metric((await get(`${base}/metrics`)).body, 'seatctl_locks_released_total') === 1);
    expect((await get(`${base}/healthz`)).status).toBe(200);
    expect((await get(`${base}/readyz`)).status).toBe(200);

    server.pause();
    await eventually('/healthz 503', async () => (await get(`${base}/healthz`)).status === 503, { describe: () => watcher.output() });
    expect(JSON.parse((await get(`${base}/healthz`)).body).reason).toMatch(/cannot connect to PostgreSQL|the server ended the connection/);
    const down = (await get(`${base}/metrics`)).body;
    expect(metric(down, 'seatctl_database_up')).toBe(0);
    expect(metric(down, 'seatctl_errors_total{kind="unavailable"}')).toBeGreaterThanOrEqual(1);
    expect(watcher.stdout).not.toContain(server.password);

    server.resume();
    await eventually('/healthz 200 again', async () => (await get(`${base}/healthz`)).status === 200, {
      timeoutMs: 60_000,
      describe: () => watcher.output(),
    });
    expect(metric((await get(`${base}/metrics`)).body, 'seatctl_database_up')).toBe(1);
    watcher.signal('SIGTERM');
    expect((await watcher.finished()).code).toBe(0);
  });
});

describe.skipIf(postgres.skipReason !== null)('the sweeper never gives up [postgres]', () => {
  /** A fresh database with `expired` expired locks; returns its URL. */
  async function database(expired: number): Promise<string> {
    const url = await postgres.newDatabaseUrl();
    const db = await openDatabase({ url });
    try {
      await migrate(db);
      await seedSynthetic(db, { events: Math.max(1, expired / 1000), seatsPerEvent: 1000, expired });
    } finally {
      await db.close();
    }
    return url;
  }

  /** A client that ignores the database's statement_timeout. */
  async function client(url: string): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: url, options: '-c statement_timeout=0' });
    await c.connect();
    return c;
  }

  it('under statement_timeout = 50ms halves the batch until it fits and releases everything; failed cycles print their summary', { timeout: 120_000 }, async () => {
    const url = await database(20_000);
    const c = await client(url);
    try {
      const name = new URL(url).pathname.slice(1);
      await c.query(`ALTER DATABASE "${name}" SET statement_timeout = '50ms'`);
      const watcher = startCli(['--db', url, 'release-expired-locks', '--watch', '--json', '--quiet', '--batch-size', '100000', '--interval', '1s']);
      const total = () => records(watcher.stdout).filter((r) => r.type === 'summary').reduce((sum, r) => sum + r.total, 0);
      await watcher.waitFor('every lock released', () => total() === 20_000, 90_000);
      const failed = records(watcher.stdout).filter((r) => r.type === 'summary' && r.error);
      expect(failed.length).toBeGreaterThanOrEqual(1);
      expect(failed[0]).toMatchObject({ type: 'summary', error: { kind: 'statement-timeout', message: expect.stringMatching(/^the database cancelled the statement: statement timeout/) } });
      const lines = completeLines(watcher.stderr);
      expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d error: the database cancelled the statement: statement timeout .*\(attempt 1; retrying now with batches of 50,000\)$/);
      const left = await c.query("SELECT count(*)::int AS n FROM seats WHERE status = 'locked'");
      expect(left.rows[0].n).toBe(0);
      watcher.signal('SIGTERM');
      expect((await watcher.finished()).code).toBe(0);
    } finally {
      await c.end();
    }
  });

  it('SIGTERM during a long batch cancels the statement on the server and exits 0; no orphan keeps running', { timeout: 120_000 }, async () => {
    const url = await database(1000);
    const c = await client(url);
    try {
      // Each release statement now takes a minute.
      await c.query(`CREATE FUNCTION slow_release() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$`);
      await c.query('CREATE TRIGGER slow AFTER UPDATE ON seats FOR EACH STATEMENT EXECUTE FUNCTION slow_release()');
      const running = async () =>
        (await c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE 'WITH picked%'")).rows[0].n as number;
      const watcher = startCli(['--db', url, 'release-expired-locks', '--watch', '--quiet']);
      await eventually('the release statement running', async () => (await running()) === 1, { describe: () => watcher.output() });
      const stopping = performance.now();
      watcher.signal('SIGTERM');
      const exit = await watcher.finished();
      // Without the cancel, the process would be ended after 3 s with 143 and the statement would run on.
      expect(exit.code, watcher.output()).toBe(0);
      expect(performance.now() - stopping).toBeLessThan(30_000);
      await eventually('no release statement left on the server', async () => (await running()) === 0, { timeoutMs: 10_000 });
      const locked = await c.query("SELECT count(*)::int AS n FROM seats WHERE status = 'locked'");
      expect(locked.rows[0].n).toBe(1000);
    } finally {
      await c.end();
    }
  });
});
