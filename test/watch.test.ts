// release-expired-locks --watch as the long-running sweeper it is meant to be:
// a real process that releases locks as they expire, survives its database
// going away and coming back, and ends cleanly on SIGTERM.
import { spawn } from 'node:child_process';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type SeatDatabase } from '../src/index.js';
import { BIN, cleanEnv, jsonLines } from './support/cli.js';
import { describeEachEngine, postgres, sqlite, useDatabase } from './support/engines.js';
import { createEvent, placeLock, seatNumbers } from './support/fixtures.js';
import { startPostgres } from './support/postgres-server.js';

function startWatcher(args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (output.stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (output.stderr += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const until = async (condition: () => boolean, what: string, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline)
        throw new Error(`watcher: timed out waiting for ${what}\nstdout: ${output.stdout}\nstderr: ${output.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const started = Date.now();
    child.kill(signal);
    const result = await exited;
    return { ...result, ms: Date.now() - started };
  };
  afterAll(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, output, until, stop };
}

/** The records of the lines written so far (the last one may still be on its way). */
const records = (stdout: string) => jsonLines(stdout.slice(0, stdout.lastIndexOf('\n') + 1));
const released = (stdout: string) => records(stdout).filter((r) => r.type === 'released').map((r) => r.seat);
const summaries = (stdout: string) => records(stdout).filter((r) => r.type === 'summary');

describeEachEngine('release-expired-locks --watch', (engine) => {
  const t = useDatabase(engine);

  it('releases locks as they expire, one summary per cycle, and ends cleanly on SIGTERM', async () => {
    const id = await createEvent(t.db, 'Watched', seatNumbers(10));
    await placeLock(t.db, id, ['A1', 'A2'], 'early', -1000);
    await placeLock(t.db, id, ['A3'], 'later', 60_000);
    const watcher = startWatcher(['--db', t.url, 'release-expired-locks', '--watch', '--interval', '300ms', '--json']);
    await watcher.until(() => released(watcher.output.stdout).length === 2, 'the first release');
    expect(released(watcher.output.stdout).sort()).toEqual(['A1', 'A2']);
    // A lock that expires while the watcher runs is released by a later cycle.
    await placeLock(t.db, id, ['A3'], 'later', -10);
    await watcher.until(
      () => summaries(watcher.output.stdout).some((summary) => summary.total === 1),
      'the summary of a later cycle that released A3',
    );
    expect(released(watcher.output.stdout)).toContain('A3');
    expect(summaries(watcher.output.stdout)[0]).toMatchObject({ total: 2, dryRun: false, at: expect.stringMatching(/Z$/) });
    const stopped = await watcher.stop('SIGTERM');
    expect(stopped).toMatchObject({ code: 0, signal: null });
    expect(stopped.ms).toBeLessThan(2000);
    expect(watcher.output.stderr).toBe('');
    // Every cycle left its heartbeat.
    const run = await t.db.knex('release_runs').first();
    expect(Number(run.pid)).toBe(watcher.child.pid);
  });

  it('with --quiet prints one timestamped line per cycle that released something, nothing for the others', async () => {
    const id = await createEvent(t.db, 'Quiet', seatNumbers(5));
    await placeLock(t.db, id, ['A1', 'A2', 'A3'], 'x', -1000);
    const watcher = startWatcher(['--db', t.url, 'release-expired-locks', '--watch', '--interval', '200ms', '--quiet']);
    await watcher.until(() => watcher.output.stdout.includes('released'), 'a cycle line');
    await new Promise((resolve) => setTimeout(resolve, 700)); // several quiet cycles
    const stopped = await watcher.stop('SIGINT');
    expect(stopped.code).toBe(0);
    expect(watcher.output.stdout).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d released 3 expired locks\n$/);
  });
});

describe.skipIf(sqlite.skipReason !== null)('release-expired-locks --watch [sqlite: busy database]', () => {
  const t = useDatabase(sqlite);

  it('reports a database busy past the timeout once per cycle, keeps going, and resumes', async () => {
    const id = await createEvent(t.db, 'Busy', seatNumbers(5));
    await placeLock(t.db, id, ['A1'], 'x', -1000);
    const holder = spawn(process.execPath, [
      '-e',
      `const D = require(${JSON.stringify(require.resolve('better-sqlite3'))}); const db = new D(${JSON.stringify(t.url)}); db.exec('BEGIN IMMEDIATE'); console.log('holding'); setTimeout(() => { db.exec('ROLLBACK'); db.close(); }, 2500);`,
    ]);
    await new Promise((resolve) => holder.stdout.once('data', resolve));
    const watcher = startWatcher([
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
    await watcher.until(() => watcher.output.stderr.split('\n').filter(Boolean).length >= 2, 'two error lines');
    const lines = watcher.output.stderr.slice(0, watcher.output.stderr.lastIndexOf('\n'));
    for (const line of lines.split('\n')) {
      expect(line).toMatch(
        /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d error: the database .* is busy: .* \(attempt \d+; retrying in \d+ s\)$/,
      );
    }
    await watcher.until(
      () => released(watcher.output.stdout).includes('A1'),
      'the release once the lock is gone',
      15_000,
    );
    expect((await watcher.stop()).code).toBe(0);
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
    const watcher = startWatcher([
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
    await watcher.until(() => released(watcher.output.stdout).includes('A1'), 'the first release');

    await db.close();
    server.pause();
    await watcher.until(
      () => /cannot connect to PostgreSQL at 127\.0\.0\.1:\d+/.test(watcher.output.stderr),
      'an error line',
      20_000,
    );
    expect(watcher.child.exitCode).toBeNull();
    server.resume();

    db = await openDatabase({ url });
    await placeLock(db, id, ['A2'], 'y', -1000);
    await watcher.until(() => released(watcher.output.stdout).includes('A2'), 'a release after the restart', 30_000);
    expect(watcher.output.stderr).not.toMatch(new RegExp(server.password));
    expect((await watcher.stop()).code).toBe(0);
  });
});
