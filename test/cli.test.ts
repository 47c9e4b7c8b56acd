import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { migrate, openDatabase } from '../src/index.js';
import { describe, expect, it } from 'vitest';
import { BIN, cleanEnv, jsonLines, runCli } from './support/cli.js';
import { describeEachEngine, tempDir, useDatabase } from './support/engines.js';
import { createEvent, dumpDatabase, placeLock } from './support/fixtures.js';
import { run } from './support/processes.js';

const ANSI = /\u001b\[/;
const RELEASED_LINE = /^✔ Released lock on Seat A\d+ \(Event: Taylor Swift - Eras Tour, was locked by admin\)$/;

describeEachEngine('seatctl CLI', (engine) => {
  const t = useDatabase(engine);
  const cli = (args: string[], options: Parameters<typeof runCli>[1] = {}) => runCli(['--db', t.url, ...args], options);
  const demoId = async () =>
    String((await t.db.knex('events').where('name', 'Taylor Swift - Eras Tour').first('id')).id);

  describe('the Quick start', () => {
    it('seeds the demo, releases exactly the 19 expired locks, then has nothing to release', async () => {
      const seed = await cli(['seed']);
      expect(seed).toMatchObject({ code: 0, stderr: '' });
      expect(seed.stdout).toMatch(
        /^Seeded Taylor Swift - Eras Tour: 100 seats, 19 expired locks \(admin\), 3 active locks \(alice\), 5 booked\n$/,
      );

      const first = await cli(['release-expired-locks']);
      expect(first.code).toBe(0);
      expect(first.stderr).toBe('');
      const lines = first.stdout.trimEnd().split('\n');
      expect(lines).toHaveLength(20);
      for (const line of lines.slice(0, 19)) expect(line).toMatch(RELEASED_LINE);
      expect(new Set(lines.slice(0, 19).map((l) => /Seat (\w+)/.exec(l)![1]))).toEqual(
        new Set(Array.from({ length: 19 }, (_, i) => `A${i + 1}`)),
      );
      expect(lines[19]).toBe('Total locks released: 19');
      expect(first.stdout).not.toMatch(ANSI);

      const second = await cli(['release-expired-locks']);
      expect(second).toEqual({ code: 0, signal: null, stdout: 'No expired locks to release\n', stderr: '' });

      const locked = await cli(['list-locked', '--json']);
      expect(
        jsonLines(locked.stdout)
          .filter((r) => r.type === 'lock')
          .map((r) => r.seat),
      ).toEqual(['B1', 'B2', 'B3']);
    });
  });

  describe('release-expired-locks', () => {
    it('--quiet prints only the total, and nothing at all when nothing expired', async () => {
      await cli(['seed']);
      expect(await cli(['release-expired-locks', '--quiet'])).toMatchObject({
        code: 0,
        stdout: 'Total locks released: 19\n',
        stderr: '',
      });
      expect(await cli(['release-expired-locks', '--quiet'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    });

    it('--json prints one released record per seat and a summary, nothing else', async () => {
      await cli(['seed']);
      const result = await cli(['release-expired-locks', '--json', '--batch-size', '5']);
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('');
      const records = jsonLines(result.stdout);
      expect(records).toHaveLength(20);
      for (const record of records.slice(0, 19)) {
        expect(record).toMatchObject({ type: 'released', event: 'Taylor Swift - Eras Tour', lockedBy: 'admin' });
        expect(typeof record.eventId).toBe('number');
        expect(record.lockedUntil).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        expect(Date.parse(record.lockedUntil)).toBeLessThan(Date.now());
      }
      expect(records[19]).toEqual({ type: 'summary', total: 19, dryRun: false });
      expect(jsonLines((await cli(['release-expired-locks', '--json'])).stdout)).toEqual([
        { type: 'summary', total: 0, dryRun: false },
      ]);
    });

    it('--dry-run reports and changes nothing', async () => {
      await cli(['seed']);
      const before = await dumpDatabase(t.db);
      const dry = await cli(['release-expired-locks', '--dry-run']);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toMatch(
        /^Would release lock on Seat A13 \(Event: Taylor Swift - Eras Tour, was locked by admin\)$/m,
      );
      expect(dry.stdout).toMatch(/Total locks that would be released: 19\n$/);
      expect(await dumpDatabase(t.db)).toBe(before);
      expect(jsonLines((await cli(['release-expired-locks', '--dry-run', '--json'])).stdout).at(-1)).toEqual({
        type: 'summary',
        total: 19,
        dryRun: true,
      });
    });

    it('--event and --grace narrow what is released', async () => {
      const a = await createEvent(t.db, 'Early Show', ['A1', 'A2']);
      const b = await createEvent(t.db, 'Late Show', ['A1']);
      await placeLock(t.db, a, ['A1'], 'x', -10_000);
      await placeLock(t.db, a, ['A2'], 'x', -600_000);
      await placeLock(t.db, b, ['A1'], 'y', -600_000);
      const graced = await cli(['release-expired-locks', '--event', 'Early Show', '--grace', '1m', '--json']);
      expect(jsonLines(graced.stdout).map((r) => r.seat ?? r.total)).toEqual(['A2', 1]);
      const rest = await cli(['release-expired-locks', '--json']);
      expect(
        jsonLines(rest.stdout)
          .map((r) => r.seat ?? r.total)
          .sort(),
      ).toEqual([2, 'A1', 'A1']);
    });

    it('colors only a terminal or FORCE_COLOR; NO_COLOR and --no-color turn it off', async () => {
      await cli(['seed']);
      const forced = await cli(['release-expired-locks', '--dry-run'], { env: { FORCE_COLOR: '1' } });
      expect(forced.stdout).toMatch(/\u001b\[33mWould release lock on Seat A1 /);
      const noColorEnv = await cli(['release-expired-locks', '--dry-run'], { env: { NO_COLOR: '1' } });
      expect(noColorEnv.stdout).not.toMatch(ANSI);
      const noColorFlag = await cli(['release-expired-locks', '--dry-run', '--no-color'], {
        env: { FORCE_COLOR: '1' },
      });
      expect(noColorFlag.stdout).not.toMatch(ANSI);
      const released = await cli(['release-expired-locks'], { env: { FORCE_COLOR: '1' } });
      expect(released.stdout).toMatch(/\u001b\[32m✔ Released lock on Seat A1 /);
    });

    it('rejects a bad --batch-size or --grace with exit 2 and one line', async () => {
      for (const args of [
        ['--batch-size', '0'],
        ['--batch-size', 'abc'],
        ['--batch-size', '-5'],
        ['--grace', '5x'],
      ]) {
        const result = await cli(['release-expired-locks', ...args]);
        expect(result.code, args.join(' ')).toBe(2);
        expect(result.stdout).toBe('');
        expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
      }
    });
  });

  describe('lock', () => {
    it('locks seats and prints the seats, the holder and the expiry', async () => {
      await cli(['seed']);
      const result = await cli(['lock', 'Taylor Swift - Eras Tour', 'D1', 'D2', '--user', 'zoe']);
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(
        /^✔ Locked 2 seats \(D1, D2\) of Taylor Swift - Eras Tour for zoe, until \d\d:\d\d:\d\d, in 5 minutes\n$/,
      );
      const id = await demoId();
      const before = Date.now();
      const json = jsonLines((await cli(['lock', id, 'D3', '--user', 'zoe', '--ttl', '90s', '--json'])).stdout);
      const after = Date.now();
      expect(json).toEqual([
        expect.objectContaining({ type: 'locked', seat: 'D3', lockedBy: 'zoe', lockToken: 1, renewed: false }),
      ]);
      // 90 s from when it was taken, while the command ran (by the database clock: ours, give or take 1.5 s).
      const [lockedAt, lockedUntil] = [Date.parse(json[0]!.lockedAt), Date.parse(json[0]!.lockedUntil)];
      expect(lockedUntil - lockedAt).toBe(90_000);
      expect(lockedAt).toBeGreaterThan(before - 1500);
      expect(lockedAt).toBeLessThan(after + 1500);
    });

    it('refuses with exit 3, names each conflicting seat and why, and locks nothing', async () => {
      await cli(['seed']);
      const before = await dumpDatabase(t.db);
      const result = await cli(['lock', 'Taylor Swift - Eras Tour', 'D1', 'B1', 'C1', '--user', 'zoe']);
      expect(result.code).toBe(3);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(/^ {2}B1: held by alice until \d\d:\d\d:\d\d, in \d minutes$/m);
      expect(result.stderr).toMatch(/^ {2}C1: already booked$/m);
      expect(result.stderr).toMatch(/^error: cannot lock B1, C1 of Taylor Swift - Eras Tour: nothing was changed$/m);
      expect(await dumpDatabase(t.db)).toBe(before);
      const json = await cli(['lock', await demoId(), 'B1', '--user', 'zoe', '--json']);
      expect(json.code).toBe(3);
      expect(jsonLines(json.stdout)).toEqual([
        expect.objectContaining({ type: 'conflict', seat: 'B1', reason: 'held', lockedBy: 'alice' }),
      ]);
    });

    it('re-locking extends a hold up to --max-hold after it began; past the cap it exits 3 saying so', async () => {
      await cli(['seed']);
      const id = Number(await demoId());
      await placeLock(t.db, id, ['D1'], 'alice', 60_000, 31 * 60_000); // held for 31 minutes, valid 1 more
      const refused = await cli(['lock', 'Taylor Swift - Eras Tour', 'D1', '--user', 'alice']);
      expect(refused.code).toBe(3);
      expect(refused.stderr).toMatch(/^ {2}D1: alice has held it since .*: the hold cap \(--max-hold\) is reached$/m);
      const raised = await cli([
        'lock',
        'Taylor Swift - Eras Tour',
        'D1',
        '--user',
        'alice',
        '--max-hold',
        '1h',
        '--json',
      ]);
      expect(raised.code).toBe(0);
      expect(jsonLines(raised.stdout)[0]).toMatchObject({ seat: 'D1', renewed: true, capped: false });
      await placeLock(t.db, id, ['D2'], 'alice', 60_000, 28 * 60_000); // held for 28 minutes
      const capped = await cli(['lock', 'Taylor Swift - Eras Tour', 'D2', '--user', 'alice', '--ttl', '10m']);
      expect(capped.code).toBe(0);
      expect(capped.stderr).toMatch(/^note: D2 reached the hold cap/);
    });

    it('treats unknown events and seats, a missing --user and bad TTLs as bad input: exit 2, one line', async () => {
      await cli(['seed']);
      const before = await dumpDatabase(t.db);
      const id = await demoId();
      const cases: Array<[string[], RegExp]> = [
        [['lock', 'Nope', 'A1', '--user', 'u'], /unknown event 'Nope'/],
        [['lock', id, 'A1', 'Z99', '--user', 'u'], /unknown seat 'Z99' in event 'Taylor Swift - Eras Tour'/],
        [['lock', id, 'A1'], /required option '--user <name>'/],
        [['lock', id, '--user', 'u'], /missing required argument 'seats'/],
        [['lock', id, 'D1', '--user', 'u', '--ttl', 'abc'], /--ttl <duration>.*'abc' is invalid/],
        [['lock', id, 'D1', '--user', 'u', '--ttl', '25h'], /between 100 milliseconds and 24 hours/],
      ];
      for (const [args, message] of cases) {
        const result = await cli(args);
        expect(result.code, args.join(' ')).toBe(2);
        expect(result.stdout).toBe('');
        expect(result.stderr).toMatch(message);
        expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
      }
      expect(await dumpDatabase(t.db)).toBe(before);
    });
  });

  describe('list-locked', () => {
    it('shows a table of locks with expired rows red, active rows yellow, and a count', async () => {
      await cli(['seed']);
      const plain = await cli(['list-locked']);
      expect(plain.code).toBe(0);
      const lines = plain.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^EVENT\s+SEAT\s+LOCKED BY\s+LOCKED UNTIL\s+STATE$/);
      expect(lines).toContainEqual(
        expect.stringMatching(/^Taylor Swift - Eras Tour {2}A13 +admin +\d\d:\d\d:\d\d +expired \d+ minutes ago$/),
      );
      expect(lines).toContainEqual(
        expect.stringMatching(/^Taylor Swift - Eras Tour {2}B1 +alice +\d\d:\d\d:\d\d +expires in (\d minutes|\d+ seconds)$/),
      );
      expect(lines.at(-1)).toBe('22 locked seats: 19 expired, 3 active');
      const colored = await cli(['list-locked'], { env: { FORCE_COLOR: '3' } });
      expect(colored.stdout).toMatch(/\u001b\[31mTaylor Swift - Eras Tour {2}A1 /);
      expect(colored.stdout).toMatch(/\u001b\[33mTaylor Swift - Eras Tour {2}B1 /);
    });

    it('filters by --expired, --active, --user and --event, and prints JSON Lines', async () => {
      await cli(['seed']);
      const active = jsonLines((await cli(['list-locked', '--active', '--json'])).stdout);
      expect(active.map((r) => r.seat ?? r.type)).toEqual(['B1', 'B2', 'B3', 'summary']);
      expect(active.at(-1)).toEqual({ type: 'summary', total: 3, expired: 0, active: 3 });
      const expired = jsonLines(
        (await cli(['list-locked', '--expired', '--user', 'admin', '--event', await demoId(), '--json'])).stdout,
      );
      expect(expired.at(-1)).toEqual({ type: 'summary', total: 19, expired: 19, active: 0 });
      expect((await cli(['list-locked', '--user', 'nobody'])).stdout).toBe('No locked seats\n');
      const both = await cli(['list-locked', '--expired', '--active']);
      expect(both.code).toBe(2);
      expect(both.stderr).toMatch(/--expired.*cannot be used with.*--active/);
    });
  });

  describe('stats', () => {
    it('counts seats per event, shows the last release, and warns when expired locks wait with no release', async () => {
      await cli(['seed']);
      const before = await cli(['stats']);
      expect(before.code).toBe(0);
      expect(before.stdout).toMatch(
        /^EVENT +SEATS +AVAILABLE +ACTIVE LOCKS +EXPIRED LOCKS +BOOKED\nTaylor Swift - Eras Tour +100 +73 +3 +19 +5\nlast release: never\n$/,
      );
      expect(before.stderr).toBe(
        'warning: 19 expired locks are waiting and no release has ever run (--stale-after 5m): is release-expired-locks running?\n',
      );
      const check = await cli(['stats', '--check']);
      expect(check.code).toBe(6);
      expect(check.stderr).toBe(
        'error: 19 expired locks are waiting and no release has ever run (--stale-after 5m): is release-expired-locks running?\n',
      );
      await cli(['release-expired-locks', '--quiet']);
      const after = await cli(['stats', '--check']);
      expect(after).toMatchObject({ code: 0, stderr: '' });
      expect(after.stdout).toMatch(/\nlast release: \d+ seconds? ago on \S+, 19 released\n$/);
      const json = jsonLines((await cli(['stats', '--json', '--event', 'Taylor Swift - Eras Tour'])).stdout);
      expect(json[0]).toEqual(
        expect.objectContaining({
          type: 'event',
          event: 'Taylor Swift - Eras Tour',
          seats: 100,
          available: 92,
          locked: 3,
          expired: 0,
          booked: 5,
        }),
      );
      expect(json[1]).toMatchObject({ type: 'summary', stale: false, lastRun: { released: 19 } });
    });

    it('--check fails once expired locks wait longer than --stale-after since the last release', async () => {
      await cli(['seed']);
      await cli(['release-expired-locks', '--quiet']);
      const id = Number(await demoId());
      await placeLock(t.db, id, ['D1'], 'late', -60_000);
      await t.db
        .knex('release_runs')
        .update({ finished_at: t.db.knex.raw(t.db.engine.addMs(t.db.engine.now, '?'), [-10 * 60_000]) });
      const stale = await cli(['stats', '--check']);
      expect(stale.code).toBe(6);
      expect(stale.stderr).toMatch(
        /^error: 1 expired lock is waiting and no release has run for 10 minutes \(--stale-after 5m\)/,
      );
      expect((await cli(['stats', '--check', '--stale-after', '1h'])).code).toBe(0);
    });
  });

  describe('migrate and the database', () => {
    it('migrate applies the schema once, then says the database is up to date', async () => {
      const url = await engine.newDatabaseUrl();
      const first = await runCli(['--db', url, 'migrate']);
      expect(first).toMatchObject({
        code: 0,
        stdout: 'Applied migration 001_initial_schema\nApplied migration 002_history_hold_start\n',
        stderr: '',
      });
      expect(await runCli(['--db', url, 'migrate'])).toMatchObject({ code: 0, stdout: 'Database is up to date\n' });
      expect(jsonLines((await runCli(['--db', url, 'migrate', '--json'])).stdout)).toEqual([
        { type: 'summary', applied: 0 },
      ]);
    });

    it('exits 5 on a database that was never migrated, and tells to run migrate', async () => {
      const url = await engine.newDatabaseUrl();
      if (engine.name === 'sqlite') writeFileSync(url, '');
      for (const command of [['release-expired-locks'], ['list-locked'], ['lock', 'x', 'A1', '--user', 'u']]) {
        const result = await runCli(['--db', url, ...command]);
        expect(result.code, command.join(' ')).toBe(5);
        expect(result.stdout).toBe('');
        expect(result.stderr).toMatch(/^error: the database .* is not set up: run seatctl migrate\n$/);
      }
    });

    it('takes the database from DATABASE_URL, and --db over it', async () => {
      await cli(['seed']);
      const fromEnv = await runCli(['list-locked', '--json'], { env: { DATABASE_URL: t.url } });
      expect(jsonLines(fromEnv.stdout).at(-1)).toMatchObject({ total: 22 });
      const other = await engine.newDatabaseUrl();
      await runCli(['--db', other, 'migrate']);
      const overridden = await runCli(['--db', other, 'list-locked', '--json'], { env: { DATABASE_URL: t.url } });
      expect(jsonLines(overridden.stdout).at(-1)).toMatchObject({ total: 0 });
    });
  });
});

describe('seatctl CLI [sqlite only]', () => {
  it('uses ./seatctl.db in the working directory by default, from any directory (as cron does)', async () => {
    const dir = tempDir();
    const seed = await runCli(['seed'], { cwd: dir });
    expect(seed.code).toBe(0);
    expect(existsSync(join(dir, 'seatctl.db'))).toBe(true);
    const release = await runCli(['release-expired-locks', '--quiet'], { cwd: dir });
    expect(release).toMatchObject({ code: 0, stdout: 'Total locks released: 19\n', stderr: '' });
  });

  it('a reader that goes away (| head) ends the printing, not the release', async () => {
    const file = join(tempDir(), 'head.db');
    await runCli(['--db', file, 'seed', '--events', '5', '--seats-per-event', '1000', '--expired', '5000']);
    const result = await run(
      'sh',
      ['-c', `"${process.execPath}" "${BIN}" --db "${file}" release-expired-locks --json | head -1`],
      { env: cleanEnv(), group: true },
    );
    expect(result.stdout.split('\n')[0]).toMatch(/^\{"type":"released"/);
    expect(result.stderr).toBe('');
    const after = await runCli(['--db', file, 'stats', '--json']);
    expect(jsonLines(after.stdout).at(-1)).toMatchObject({ expired: 0, lastRun: { released: 5000 } });
  });

  it('prints a history of 150,000 rows as a table', async () => {
    const file = join(tempDir(), 'long-history.db');
    await runCli(['--db', file, 'seed', '--events', '15', '--seats-per-event', '10000', '--expired', '150000']);
    await runCli(['--db', file, 'release-expired-locks', '--quiet']);
    const result = await runCli(['--db', file, 'history', '--limit', '150000']);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(150_001);
    expect(lines[0]).toMatch(/^RELEASED AT +EVENT +SEAT +LOCKED BY +LOCKED UNTIL +REASON$/);
  });

  it('accepts sqlite:<path>, file:<path> and plain paths for the same file', async () => {
    const dir = tempDir();
    const file = join(dir, 'venue.db');
    expect((await runCli(['--db', `sqlite:${file}`, 'seed'])).code).toBe(0);
    expect(jsonLines((await runCli(['--db', `file:${file}`, 'list-locked', '--json'])).stdout).at(-1)).toMatchObject({
      total: 22,
    });
    expect(
      jsonLines((await runCli(['--db', 'venue.db', 'list-locked', '--json'], { cwd: dir })).stdout).at(-1),
    ).toMatchObject({ total: 22 });
  });

  it('a database migrated by the library from source is up to date for the built CLI, and the reverse', async () => {
    const file = join(tempDir(), 'both.db');
    const db = await openDatabase({ url: file, create: true });
    expect((await migrate(db)).applied).toEqual(['001_initial_schema', '002_history_hold_start']);
    await db.close();
    expect(await runCli(['--db', file, 'migrate'])).toMatchObject({ code: 0, stdout: 'Database is up to date\n' });
    const other = join(tempDir(), 'other.db');
    expect((await runCli(['--db', other, 'migrate'])).code).toBe(0);
    const again = await openDatabase({ url: other });
    expect((await migrate(again)).applied).toEqual([]);
    await again.close();
  });

  it('keeps SQLite in WAL mode with foreign keys on', async () => {
    const file = join(tempDir(), 'pragmas.db');
    await runCli(['--db', file, 'seed']);
    const raw = new Database(file, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      raw.close();
    }
    const db = await openDatabase({ url: file });
    try {
      expect(await db.knex.raw('PRAGMA foreign_keys')).toEqual([{ foreign_keys: 1 }]);
      expect(await db.knex.raw('PRAGMA busy_timeout')).toEqual([{ timeout: 5000 }]);
    } finally {
      await db.close();
    }
  });

  it('does not create a database file for a command that needs an existing one', async () => {
    const file = join(tempDir(), 'missing.db');
    const result = await runCli(['--db', file, 'release-expired-locks']);
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/no seatctl database at .*missing\.db: run seatctl migrate/);
    expect(existsSync(file)).toBe(false);
  });

  it('creates the database, its -wal and its -shm readable by the owner only', async () => {
    const dir = tempDir();
    const file = join(dir, 'private.db');
    expect((await runCli(['--db', file, 'seed'], { env: {} })).code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // Keep a reader open so SQLite keeps the -wal and -shm files, then write through seatctl.
    const reader = new Database(file, { readonly: true });
    try {
      reader.prepare('SELECT count(*) FROM seats').get();
      expect((await runCli(['--db', file, 'lock', '1', 'D1', '--user', 'u'])).code).toBe(0);
      for (const suffix of ['-wal', '-shm']) {
        expect(existsSync(file + suffix), suffix).toBe(true);
        expect((statSync(file + suffix).mode & 0o777).toString(8), suffix).toBe('600');
      }
    } finally {
      reader.close();
    }
  });

  it('exits 4 with a clear sentence for a file that is not a SQLite database, and leaves it alone', async () => {
    const file = join(tempDir(), 'notes.txt');
    writeFileSync(file, 'these are not the seats you are looking for\n'.repeat(100));
    chmodSync(file, 0o644);
    const result = await runCli(['--db', file, 'list-locked']);
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(
      /^error: cannot open the database .*notes\.txt: the file is not a SQLite database\n$/,
    );
  });
});

describe('progress on a terminal', () => {
  it('draws a bar on stderr when it is a terminal, for big seeds and releases; never otherwise', async () => {
    const file = join(tempDir(), 'progress.db');
    const underTerminal = (args: string[]) =>
      run(
        'script',
        ['-qec', [process.execPath, BIN, '--db', file, ...args].map((a) => `'${a}'`).join(' '), '/dev/null'],
        { env: { ...process.env, TERM: 'xterm' }, group: true, timeoutMs: 60_000 },
      );
    const seed = await underTerminal(['seed', '--events', '50', '--seats-per-event', '1000', '--expired', '40000']);
    expect(seed.code, seed.stdout).toBe(0);
    expect(seed.stdout).toMatch(/Seeding \[[^\]]*\] \d+%/);
    const release = await underTerminal(['release-expired-locks', '--quiet']);
    expect(release.code, release.stdout).toBe(0);
    expect(release.stdout).toMatch(/Releasing \[[^\]]*\] \d+%/);
    expect(release.stdout).toMatch(/Total locks released: 40,000/);
    // The same, to a pipe: no bar, no cursor codes.
    const piped = await runCli([
      '--db',
      file,
      'seed',
      '--events',
      '50',
      '--seats-per-event',
      '1000',
      '--expired',
      '40000',
    ]);
    expect(piped.stderr).toBe('');
    expect(piped.stdout).not.toMatch(ANSI);
  });
});

describe('seatctl CLI without a database', () => {
  it('--help leads with what it does, shows examples and the exit codes', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Examples:/);
    expect(help.stdout).toMatch(/Exit codes:[\s\S]*5 +database not set up/);
    for (const command of [
      'release-expired-locks',
      'list-locked',
      'lock',
      'book',
      'unlock',
      'history',
      'stats',
      'seed',
      'migrate',
    ]) {
      const sub = await runCli([command, '--help']);
      expect(sub.code, command).toBe(0);
      expect(sub.stdout, command).toMatch(/Examples:\n {2}\$ seatctl /);
      expect(sub.stdout, command).toMatch(/Exit codes:/);
    }
  });

  it('bad usage is one line on stderr with exit 2; an unknown command suggests the right one', async () => {
    const unknown = await runCli(['list-lock']);
    expect(unknown).toMatchObject({
      code: 2,
      stdout: '',
      stderr: "error: unknown command 'list-lock' (did you mean list-locked?)\n",
    });
    const option = await runCli(['release-expired-locks', '--frobnicate']);
    expect(option).toMatchObject({ code: 2, stdout: '', stderr: "error: unknown option '--frobnicate'\n" });
  });

  it('refuses other database schemes with exit 2, without echoing the URL', async () => {
    const result = await runCli(['--db', 'mysql://root:hunter2secret@db/tickets', 'list-locked']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      "error: unsupported database 'mysql:' (use a file path, sqlite:<path>, file:<path>, or postgres://user:password@host:port/database)\n",
    );
    expect(result.stderr).not.toMatch(/hunter2/);
  });

  it('--version prints the version of the package', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(await runCli(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('is a runnable bin', () => {
    expect(statSync(BIN).mode & 0o111).not.toBe(0);
  });
});
