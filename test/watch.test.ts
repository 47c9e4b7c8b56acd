// release-expired-locks --watch as the long-running sweeper it is meant to be:
// a real process that releases locks as they expire, survives its database
// going away and coming back, and ends cleanly on SIGTERM.
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type SeatDatabase } from '../src/index.js';
import { jsonLines, runCli, startCli } from './support/cli.js';
import { describeEachEngine, postgres, sqlite, useDatabase } from './support/engines.js';
import { createEvent, placeLock, seatNumbers } from './support/fixtures.js';
import { startPostgres } from './support/postgres-server.js';
import { completeLines, type Child } from './support/processes.js';
import { boundFrom, eventually, idleTime } from './support/timing.js';
import { holdWriteLock } from './support/write-lock.js';

/** Sends the signal and measures how long the watcher takes to exit. */
async function stop(watcher: Child, signal: NodeJS.Signals = 'SIGTERM') {
  const started = performance.now();
  watcher.signal(signal);
  const { code, signal: killedBy } = await watcher.finished();
  return { code, signal: killedBy, ms: performance.now() - started };
}

/** The records of the lines written so far (the last one may still be on its way). */
const records = (stdout: string) => jsonLines(completeLines(stdout).join('\n'));
const released = (stdout: string) => records(stdout).filter((r) => r.type === 'released').map((r) => r.seat);
const summaries = (stdout: string) => records(stdout).filter((r) => r.type === 'summary');

describeEachEngine('release-expired-locks --watch', (engine) => {
  const t = useDatabase(engine);

  it('releases locks as they expire, one summary per cycle, and ends cleanly on SIGTERM', async () => {
    const id = await createEvent(t.db, 'Watched', seatNumbers(10));
    await placeLock(t.db, id, ['A1', 'A2'], 'early', -1000);
    await placeLock(t.db, id, ['A3'], 'later', 60_000);
    // A whole one-shot run of the same command here and now (start, connect, one query, close,
    // exit): stopping a watcher, which only has to close and exit, must not take a few times that.
    const oneShot = await idleTime(() => runCli(['--db', t.url, 'release-expired-locks', '--dry-run', '--json']));
    const watcher = startCli(['--db', t.url, 'release-expired-locks', '--watch', '--interval', '300ms', '--json']);
    await watcher.waitFor('the first release', () => released(watcher.stdout).length === 2);
    expect(released(watcher.stdout).sort()).toEqual(['A1', 'A2']);
    // A lock that expires while the watcher runs is released by a later cycle.
    await placeLock(t.db, id, ['A3'], 'later', -10);
    await watcher.waitFor('the summary of a later cycle that released A3', () =>
      summaries(watcher.stdout).some((summary) => summary.total === 1),
    );
    expect(released(watcher.stdout)).toContain('A3');
    expect(summaries(watcher.stdout)[0]).toMatchObject({ total: 2, dryRun: false, at: expect.stringMatching(/Z$/) });
    const stopped = await stop(watcher, 'SIGTERM');
    expect(stopped).toMatchObject({ code: 0, signal: null });
    expect(stopped.ms, `one-shot run: ${Math.round(oneShot)} ms`).toBeLessThan(boundFrom(oneShot, 3, 1000));
    expect(watcher.stderr).toBe('');
    // Every cycle left its heartbeat.
    const run = await t.db.knex('release_runs').first();
    expect(Number(run.pid)).toBe(watcher.pid);
  });

  it('with --quiet prints one timestamped line per cycle that released something, nothing for the others', async () => {
    const id = await createEvent(t.db, 'Quiet', seatNumbers(5));
    await placeLock(t.db, id, ['A1', 'A2', 'A3'], 'x', -1000);
    const watcher = startCli(['--db', t.url, 'release-expired-locks', '--watch', '--interval', '200ms', '--quiet']);
    await watcher.waitFor('a cycle line', () => watcher.stdout.includes('released'));
    // Several quiet cycles: each one's heartbeat moves on by about the interval.
    const heartbeat = async () =>
      t.db.engine.readInstant((await t.db.knex('release_runs').first('finished_at')).finished_at).getTime();
    const first = await heartbeat();
    await eventually('two more cycles', async () => (await heartbeat()) >= first + 2 * 200, {
      describe: () => watcher.output(),
    });
    const stopped = await stop(watcher, 'SIGINT');
    expect(stopped.code).toBe(0);
    expect(watcher.stdout).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d released 3 expired locks\n$/);
  });
});

describe.skipIf(sqlite.skipReason !== null)('release-expired-locks --watch [sqlite: busy database]', () => {
  const t = useDatabase(sqlite);

  it('reports a database busy past the timeout once per cycle, keeps going, and resumes', async () => {
    const id = await createEvent(t.db, 'Busy', seatNumbers(5));
    await placeLock(t.db, id, ['A1'], 'x', -1000);
    const holder = await holdWriteLock(t.url);
    const watcher = startCli([
      '--db',
      t.url,
      '--busy-timeout',
      '200ms',
      'release-expired-locks',
      '--watch',
      '--interval',
      '300ms',
      '--json',
    ]);
    await watcher.waitFor('two error lines', () => watcher.lines.stderr >= 2);
    await holder.letGo();
    for (const line of completeLines(watcher.stderr)) {
      expect(line).toMatch(
        /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d error: the database .* is busy: .* \(attempt \d+; retrying in \d+ s\)$/,
      );
    }
    await watcher.waitFor('the release once the lock is gone', () =>
      released(watcher.stdout).includes('A1'),
    );
    expect((await stop(watcher)).code).toBe(0);
  });
});

describe.skipIf(postgres.skipReason !== null)('release-expired-locks --watch [postgres: server restart]', () => {
  let server: Awaited<ReturnType<typeof startPostgres>>;
  let db: SeatDatabase;
  let url: string;

  afterAll(async () => {
    await db?.close();
    server?.stop();
  });

  it('survives the server stopping and starting again under it', { timeout: 90_000 }, async () => {
    server = await startPostgres({ fast: true });
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    await admin.query('CREATE DATABASE watched');
    await admin.end();
    url = server.adminUrl.replace(/\/postgres$/, '/watched');
    db = await openDatabase({ url });
    await migrate(db);
    const id = await createEvent(db, 'Restart', seatNumbers(5));
    await placeLock(db, id, ['A1'], 'x', -1000);
    const watcher = startCli([
      '--db',
      url,
      '--connect-timeout',
      '1s',
      'release-expired-locks',
      '--watch',
      '--interval',
      '300ms',
      '--json',
    ]);
    await watcher.waitFor('the first release', () => released(watcher.stdout).includes('A1'));

    await db.close();
    server.pause();
    await watcher.waitFor('an error line', () =>
      /cannot connect to PostgreSQL at 127\.0\.0\.1:\d+/.test(watcher.stderr),
    );
    expect(watcher.running).toBe(true);
    server.resume();

    db = await openDatabase({ url });
    await placeLock(db, id, ['A2'], 'y', -1000);
    await watcher.waitFor('a release after the restart', () => released(watcher.stdout).includes('A2'), 60_000);
    expect(watcher.stderr).not.toMatch(new RegExp(server.password));
    expect((await stop(watcher)).code).toBe(0);
  });
});
