// What a first-time user met (issue 14): each item's fixed behaviour, as the
// process shows it (exit code, stdout, stderr) or as the library returns it.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  lockSeats,
  openDatabase,
  parseDatabaseUrl,
  SeatConflictError,
  SeatctlError,
  stats,
} from '../src/index.js';
import { BIN, jsonLines, runCli, startCli } from './support/cli.js';
import { describeEachEngine, sqlite, tempDir, useDatabase } from './support/engines.js';
import { createEvent, placeLock } from './support/fixtures.js';
import { run } from './support/processes.js';

describeEachEngine('first use', (engine) => {
  const t = useDatabase(engine);
  const cli = (args: string[]) => runCli(['--db', t.url, ...args]);

  it('the hold cap holds against a holder who lets the lock lapse and locks again', async () => {
    const id = await createEvent(t.db, 'Cap', ['D8']);
    // A hold that began 50 s ago, its lock lapsed a second ago: within the cool-down.
    await placeLock(t.db, id, ['D8'], 'scalper', -1000, 50_000);
    const again = { event: 'Cap', seats: ['D8'], user: 'scalper', ttlMs: 30_000, maxHoldMs: 60_000 };
    const continued = await lockSeats(t.db, again);
    // The hold continues: its start stays, and the lock ends at start + cap, not now + TTL.
    expect(continued.seats[0]!.capped).toBe(true);
    expect(continued.now.getTime() - continued.seats[0]!.lockedAt!.getTime()).toBeGreaterThanOrEqual(50_000);
    // Past the cap it is refused, as a renewal would be.
    await placeLock(t.db, id, ['D8'], 'scalper', -1000, 61_000);
    const refused = await lockSeats(t.db, again).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SeatConflictError);
    expect((refused as SeatConflictError).conflicts[0]!.reason).toBe('hold-cap');
    // After a release wrote the hold to the history, the same: the history keeps its start.
    await cli(['release-expired-locks', '--quiet']);
    expect((await lockSeats(t.db, again).catch((error: unknown) => error)) as SeatConflictError).toMatchObject({
      conflicts: [{ reason: 'hold-cap' }],
    });
    // Someone else, or the same holder after the cool-down, starts a new hold.
    expect((await lockSeats(t.db, { ...again, user: 'fan' })).seats[0]!.capped).toBe(false);
    await cli(['unlock', 'Cap', 'D8']);
    const later = await lockSeats(t.db, { ...again, holdCooldownMs: 0 });
    expect(later.seats[0]!.capped).toBe(false);
  });

  it('seed restores exactly the demo: the same event id, and no heartbeat left from before', async () => {
    expect((await cli(['seed'])).code).toBe(0);
    const demo = String((await t.db.knex('events').where('name', 'Taylor Swift - Eras Tour').first('id')).id);
    expect(demo).toBe('1');
    await cli(['release-expired-locks', '--quiet']);
    expect((await stats(t.db)).lastRun).not.toBeNull();
    expect((await cli(['seed'])).code).toBe(0);
    expect((await cli(['seed', '--reset'])).code).toBe(0);
    // The help's own example works after any re-seed.
    expect((await cli(['lock', '1', 'B7', '--user', 'bob'])).code).toBe(0);
    const report = await stats(t.db);
    expect(report.lastRun).toBeNull();
    expect(report.stale).toBe(true);
    expect((await cli(['history', '--json'])).stdout).toBe('{"type":"summary","shown":0,"total":0}\n');
  });

  it('an interrupted release says so on its total line', async () => {
    await runCli(['--db', t.url, 'seed', '--events', '20', '--seats-per-event', '5000', '--expired', '100000']);
    const release = startCli(['--db', t.url, 'release-expired-locks', '--batch-size', '100']);
    await release.waitFor('a few batches', (c) => c.lines.stdout >= 500);
    release.signal('SIGTERM');
    const exit = await release.finished(30_000);
    expect(exit.code).toBe(143);
    const last = exit.stdout.trimEnd().split('\n').at(-1)!;
    expect(last).toMatch(/^Total locks released: [\d,]+ \(interrupted: the rest are left for the next run\)$/);
    expect(exit.stderr).toMatch(/^error: interrupted after releasing [\d,]+ locks/);
  });

  it('--quiet --json prints nothing when nothing was released, and the summary alone otherwise', async () => {
    await cli(['seed']);
    const some = await cli(['release-expired-locks', '--quiet', '--json']);
    expect(jsonLines(some.stdout)).toEqual([{ type: 'summary', total: 19, dryRun: false }]);
    expect(await cli(['release-expired-locks', '--quiet', '--json'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    // Without --quiet, JSON always ends with its summary.
    expect(jsonLines((await cli(['release-expired-locks', '--json'])).stdout)).toEqual([
      { type: 'summary', total: 0, dryRun: false },
    ]);
  });

  it('wording: spoken spans, separators, unlock and history totals, headers for every column', async () => {
    await cli(['seed']);
    const lock = await cli(['lock', '1', 'D1', '--user', 'ann', '--ttl', '1h30m']);
    expect(lock.stdout).toMatch(/, in 1 hour 30 minutes\n$/);
    expect((await cli(['lock', '1', 'D2', '--user', 'ann', '--ttl', '90'])).stdout).toMatch(/, in 90 seconds\n$/);
    const unlock = await cli(['unlock', '1', 'D1', 'D2', '--json']);
    expect(jsonLines(unlock.stdout).map((r) => [r.seat, typeof r.lockToken])).toEqual([
      ['D1', 'number'],
      ['D2', 'number'],
    ]);
    await cli(['lock', '1', 'D3', '--user', 'ann']);
    expect((await cli(['unlock', '1', 'D3'])).stdout.trimEnd().split('\n').at(-1)).toBe('Total seats unlocked: 1');
    await cli(['release-expired-locks', '--quiet']);
    const history = await cli(['history', '--limit', '5']);
    expect(history.stdout.trimEnd().split('\n').at(-1)).toBe(
      'showing the newest 5 of 22 releases (--limit to see more)',
    );
    const list = await cli(['list-locked']);
    expect(list.stdout.split('\n')[0]).toMatch(/^EVENT +SEAT +LOCKED BY +LOCKED UNTIL +STATE$/);
  });
});

describe.skipIf(sqlite.skipReason !== null)('first use [sqlite]', () => {
  const t = useDatabase(sqlite);
  const cli = (args: string[]) => runCli(['--db', t.url, ...args]);

  it('options that would be ignored are refused, and migrate can be quiet', async () => {
    const interval = await cli(['release-expired-locks', '--interval', '10s']);
    expect(interval).toMatchObject({
      code: 2,
      stdout: '',
      stderr: 'error: --interval only applies with --watch (a single release runs once)\n',
    });
    expect(await cli(['migrate', '--quiet'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const small = await cli(['release-expired-locks', '--batch-size', '0']);
    const fraction = await cli(['release-expired-locks', '--batch-size', '2.5']);
    for (const result of [small, fraction]) {
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^error: option '--batch-size <n>' argument '.*' is invalid\. It must be a whole number from 1 to 100,000\.\n$/);
    }
    const unknown = await runCli(['help', 'nonexist']);
    expect(unknown).toMatchObject({ code: 2, stdout: '', stderr: "error: unknown command 'nonexist' (see seatctl --help)\n" });
  });

  it("each command's help names the global options and only the exit codes it can return", async () => {
    const lock = await runCli(['lock', '--help']);
    expect(lock.stdout).toMatch(/Global Options:[\s\S]*--db <url>[\s\S]*--config <file>/);
    expect(lock.stdout).toMatch(/\n {2}3 +conflict/);
    expect(lock.stdout).not.toMatch(/\n {2}6 /);
    const stats = await runCli(['stats', '--help']);
    expect(stats.stdout).toMatch(/\n {2}6 +--check/);
    expect(stats.stdout).not.toMatch(/\n {2}3 +conflict/);
    const release = await runCli(['release-expired-locks', '--help']);
    expect(release.stdout).not.toMatch(/npx/);
    expect(release.stdout).toMatch(/\.\/node_modules\/\.bin\/seatctl release-expired-locks --quiet/);
  });

  it('the library speaks its own words: a missing file, a closed handle, the conflict error', async () => {
    const missing = join(tempDir(), 'missing.db');
    const error = await openDatabase({ url: missing }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SeatctlError);
    expect((error as SeatctlError).message).not.toMatch(/--db/);
    const db = await openDatabase({ url: t.url });
    await db.close();
    await expect(stats(db)).rejects.toMatchObject({ name: 'SeatctlError', kind: 'closed' });
    await db.close(); // harmless twice
    const id = await createEvent(t.db, 'Named', ['A1']);
    await placeLock(t.db, id, ['A1'], 'bob', 60_000);
    const conflict = await lockSeats(t.db, { event: 'Named', seats: ['A1'], user: 'ann' }).catch((e: unknown) => e);
    expect(conflict).toMatchObject({ name: 'SeatConflictError', kind: 'conflict' });
  });

  it('the shipped code cache is accepted by the bin, and the bin never writes into its install', async () => {
    const cache = join(BIN, '..', '..', 'dist', 'cli.cjs.cache');
    const before = readFileSync(cache);
    const result = spawnSync(BIN, ['--version'], { encoding: 'utf8', env: { ...process.env, SEATCTL_CODE_CACHE_REPORT: '1' } });
    expect(result.stderr).toBe('code cache: accepted\n');
    expect(readFileSync(cache).equals(before)).toBe(true);
  });

  it('PostgreSQL URLs: a socket directory, and what the URL leaves to PG* variables', () => {
    expect(parseDatabaseUrl('postgres://postgres@/tickets?host=/var/run/postgresql')).toMatchObject({
      engine: 'postgres',
      host: '/var/run/postgresql',
      user: 'postgres',
      database: 'tickets',
      display: 'postgres://postgres@/tickets?host=/var/run/postgresql',
    });
    const bare = parseDatabaseUrl('postgres:///tickets');
    expect(bare).toMatchObject({ engine: 'postgres', database: 'tickets' });
    expect(bare).not.toHaveProperty('host', expect.anything());
    expect(parseDatabaseUrl('postgres://u:p@db:5433/x?options=-c%20search_path%3Dtickets')).toMatchObject({
      host: 'db',
      port: 5433,
      options: '-c search_path=tickets',
    });
  });

  it('an unreachable server named by PGHOST and PGPORT is said to be there', async () => {
    const result = await runCli(['--db', 'postgres:///x', 'list-locked'], {
      env: { PGHOST: '127.0.0.1', PGPORT: '9', PGUSER: 'nobody', PGPASSWORD: 'secret-pw', PGCONNECT_TIMEOUT: '2' },
    });
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/^error: cannot connect to PostgreSQL at 127\.0\.0\.1:9: connection refused\n$/);
  });

  it('the package: no source maps, a LICENSE, no install script of its own', () => {
    const pack = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: join(BIN, '..', '..'), encoding: 'utf8' });
    const files: string[] = JSON.parse(pack.stdout)[0].files.map((f: { path: string }) => f.path);
    expect(files).toContain('LICENSE');
    expect(files).toContain('dist/cli.cjs.cache');
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(BIN, '..', '..', 'package.json'), 'utf8'));
    expect(pkg.private).toBeUndefined();
    for (const script of ['preinstall', 'install', 'postinstall', 'prepare']) expect(pkg.scripts[script]).toBeUndefined();
  });
});

describe('a big release on a real terminal', () => {
  const hasTmux = spawnSync('tmux', ['-V']).status === 0;
  it.skipIf(!hasTmux && process.env.CI !== 'true')(
    'per-seat lines scroll, no bar garbles them, and the total is the last line before the prompt',
    { timeout: 180_000 },
    async () => {
      const dir = tempDir('seatctl-tty-');
      const db = join(dir, 'seatctl.db');
      await runCli(['--db', db, 'seed', '--reset', '--events', '5', '--seats-per-event', '6000', '--expired', '25000']);
      const session = `seatctl-${process.pid}-${Date.now()}`;
      const script = join(dir, 'run.sh');
      // The shell prints a line in place of its prompt, then tells tmux (and so the test) it is done.
      writeFileSync(
        script,
        `#!/bin/sh\n'${process.execPath}' '${BIN}' --db '${db}' release-expired-locks\necho PROMPT-AFTER\ntmux wait-for -S ${session}-done\n`,
        { mode: 0o755 },
      );
      const tmux = (args: string[], timeoutMs = 30_000) => run('tmux', args, { timeoutMs });
      await tmux(['new-session', '-d', '-s', session, '-x', '100', '-y', '30', `sh ${script}; sleep 600`]);
      try {
        await tmux(['wait-for', `${session}-done`], 150_000);
        const screen = (await tmux(['capture-pane', '-p', '-t', session])).stdout;
        const lines = screen.split('\n').filter((line) => line.trim() !== '');
        expect(lines.at(-1)).toBe('PROMPT-AFTER');
        expect(lines.at(-2)).toBe('Total locks released: 25,000');
        // Every other visible line is a whole seat line: nothing cut off, no copy of a bar.
        for (const line of lines.slice(0, -2)) {
          expect(line).toMatch(/^✔ Released lock on Seat \S+ \(Event: Event \d+, was locked by admin\)$/);
        }
        const history = (await tmux(['capture-pane', '-p', '-S', '-2000', '-t', session])).stdout;
        expect(history).not.toMatch(/Releasing \[/);
      } finally {
        await tmux(['kill-session', '-t', session]).catch(() => undefined);
      }
    },
  );
});
