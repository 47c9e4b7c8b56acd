// Bad input and hostile data, as a table: every case runs the real binary and
// must give the documented exit code, one line on stderr naming the problem
// (no stack trace), nothing on stdout, and leave the database as it was.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, inject, it } from 'vitest';
import { migrate, openDatabase } from '../src/index.js';
import { BIN, cleanEnv, jsonLines, runCli, startCli, type CliResult } from './support/cli.js';
import { describeEachEngine, postgres, tempDir, useDatabase } from './support/engines.js';
import { createEvent, dumpDatabase, placeLock } from './support/fixtures.js';
import { run as runProcess } from './support/processes.js';
import { boundFrom, eventually, timed } from './support/timing.js';

const DEMO = 'Taylor Swift - Eras Tour';
const LONG = 'x'.repeat(10_000);
/** Bytes a terminal would act on: every C0 control but newline and tab, DEL, and C1 controls. */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

/** One line on stderr, no stack trace, nothing on stdout. */
function expectOneLineError(result: CliResult, code: number, message: RegExp, label: string): void {
  expect(result.code, `${label}: exit code (stderr: ${result.stderr})`).toBe(code);
  expect(result.stdout, `${label}: stdout`).toBe('');
  expect(result.stderr, `${label}: one line`).toMatch(/^error: [^\n]*\n$/);
  expect(result.stderr, label).toMatch(message);
  expect(result.stderr, `${label}: no stack trace`).not.toMatch(/\n\s+at /);
}

interface Case {
  args: string[];
  code: number;
  message: RegExp;
}

const USAGE: Record<string, Case> = {
  'unknown command, with a did-you-mean': {
    args: ['relase-expired-locks'],
    code: 2,
    message: /unknown command 'relase-expired-locks' \(did you mean release-expired-locks\?\)/,
  },
  'unknown option': { args: ['list-locked', '--expird'], code: 2, message: /unknown option '--expird'/ },
  'missing --user': { args: ['lock', DEMO, 'D1'], code: 2, message: /required option '--user <name>' not specified/ },
  'missing seat list': { args: ['lock', DEMO, '--user', 'u'], code: 2, message: /missing required argument 'seats'/ },
  '--expired with --active': {
    args: ['list-locked', '--expired', '--active'],
    code: 2,
    message: /option '--expired' cannot be used with option '--active'/,
  },
  '--batch-size 0': {
    args: ['release-expired-locks', '--batch-size', '0'],
    code: 2,
    message: /--batch-size <n>' argument '0' is invalid\. It must be a whole number from 1 to 100,000\./,
  },
  '--batch-size -5': {
    args: ['release-expired-locks', '--batch-size', '-5'],
    code: 2,
    message: /It must be a whole number from 1 to 100,000\./,
  },
  '--batch-size abc': {
    args: ['release-expired-locks', '--batch-size', 'abc'],
    code: 2,
    message: /'--batch-size <n>' argument 'abc' is invalid/,
  },
  '--interval 0': {
    args: ['release-expired-locks', '--watch', '--interval', '0'],
    code: 2,
    message: /'--interval <duration>' argument '0' is invalid/,
  },
  '--limit 0': { args: ['history', '--limit', '0'], code: 2, message: /limit must be a whole number from 1/ },
  '--since abc': {
    args: ['history', '--since', 'abc'],
    code: 2,
    message: /'--since <when>' argument 'abc' is invalid/,
  },
  '--stale-after 0': {
    args: ['stats', '--stale-after', '0'],
    code: 2,
    message: /'--stale-after <duration>' argument '0' is invalid/,
  },
  '--busy-timeout abc': {
    args: ['--busy-timeout', 'abc', 'list-locked'],
    code: 2,
    message: /'--busy-timeout <duration>' argument 'abc' is invalid/,
  },
  'seed --expired without sizes': {
    args: ['seed', '--expired', '5'],
    code: 2,
    message: /needs both --events and --seats-per-event/,
  },
  'seed counts that do not fit': {
    args: ['seed', '--events', '1', '--seats-per-event', '5', '--expired', '6'],
    code: 2,
    message: /--expired must be a whole number from 0 to 5/,
  },
};

const DURATIONS = ['abc', '-5m', '0', '5x', '10y', '999999999999h', '', '25h', '1.5h'];

const NAMES: Record<string, Case> = {
  'unknown event': {
    args: ['lock', 'No Such Show', 'A1', '--user', 'u'],
    code: 2,
    message: /unknown event 'No Such Show'/,
  },
  'unknown seat': {
    args: ['lock', DEMO, 'D1', 'Z99', '--user', 'u'],
    code: 2,
    message: /unknown seat 'Z99' in event 'Taylor Swift - Eras Tour'/,
  },
  'unknown seats, all named': {
    args: ['unlock', DEMO, 'Z1', 'B1', 'Z2'],
    code: 2,
    message: /unknown seats 'Z1', 'Z2' in event/,
  },
  'the same seat twice': {
    args: ['lock', DEMO, 'D1', 'D1', '--user', 'u'],
    code: 2,
    message: /seat 'D1' is listed twice/,
  },
  'an empty event name': { args: ['lock', '', 'D1', '--user', 'u'], code: 2, message: /the event name is empty/ },
  'an empty seat name': { args: ['book', DEMO, '', '--user', 'u'], code: 2, message: /a seat name is empty/ },
  'an empty user name': { args: ['lock', DEMO, 'D1', '--user', ''], code: 2, message: /the user name is empty/ },
  'a 10,000-character event name': {
    args: ['lock', LONG, 'D1', '--user', 'u'],
    code: 2,
    message: /unknown event 'x{57}…'/,
  },
  'a 10,000-character seat name': {
    args: ['lock', DEMO, LONG, '--user', 'u'],
    code: 2,
    message: /unknown seat 'x{57}…'/,
  },
  'a 10,000-character user name': {
    args: ['lock', DEMO, 'D1', '--user', LONG],
    code: 2,
    message: /the user name is too long \(10000 characters; at most 200\)/,
  },
  'LIKE wildcards are not wildcards': {
    args: ['lock', 'Taylor Swift - Eras T%', 'D1', '--user', 'u'],
    code: 2,
    message: /unknown event 'Taylor Swift - Eras T%'/,
  },
  'Unicode is matched exactly (NFD is not NFC)': {
    args: ['lock', 'Cafe\u0301 Ñandú', 'A1', '--user', 'u'],
    code: 2,
    message: /unknown event/,
  },
  'an unknown event for list-locked': {
    args: ['list-locked', '--event', 'Nope'],
    code: 2,
    message: /unknown event 'Nope'/,
  },
  'an unknown event for release': {
    args: ['release-expired-locks', '--event', 'Nope'],
    code: 2,
    message: /unknown event 'Nope'/,
  },
};

/** Event and seat names that must be stored and matched literally. */
const LITERAL = [
  "Rock 'n' Roll",
  '100% "Live"',
  'a_b',
  "'); DROP TABLE seats;--",
  '??',
  'Café Ñandú',
  '東京 🎤',
  'back\\slash',
];

/** A name that tries to retitle the window, clear the screen, return the cursor, erase, ring, and start a C1 CSI. */
const HOSTILE_EVENT = 'Evil\u001b]0;pwned\u0007 Show\u001b[2J\rOK\b\u0007\u009b31m';
const HOSTILE_SEAT = 'X\u001b[31m1';

describeEachEngine('bad input', (engine) => {
  const t = useDatabase(engine);
  const cli = (args: string[], options?: Parameters<typeof runCli>[1]) => runCli(['--db', t.url, ...args], options);

  async function seeded(): Promise<void> {
    expect((await cli(['seed'])).code).toBe(0);
  }

  async function expectRejected(label: string, args: string[], code: number, message: RegExp): Promise<void> {
    const before = await dumpDatabase(t.db);
    const result = await cli(args);
    expectOneLineError(result, code, message, label);
    expect(await dumpDatabase(t.db), `${label}: the database is unchanged`).toBe(before);
  }

  it.each(Object.entries(USAGE))('usage: %s', async (label, { args, code, message }) => {
    await seeded();
    await expectRejected(label, args, code, message);
  });

  it.each(DURATIONS)('duration %j is rejected with exit 2', async (duration) => {
    await seeded();
    await expectRejected(`--ttl ${duration}`, ['lock', DEMO, 'D1', '--user', 'u', '--ttl', duration], 2, /--ttl|TTL/);
    // --grace takes 0 (its default): every other bad duration is refused there too.
    if (duration !== '0')
      await expectRejected(`--grace ${duration}`, ['release-expired-locks', '--grace', duration], 2, /--grace|grace/);
  });

  it.each(Object.entries(NAMES))('names: %s', async (label, { args, code, message }) => {
    await seeded();
    await createEvent(t.db, 'Café Ñandú', ['A1']);
    await expectRejected(label, args, code, message);
  });

  it('names with quotes, %, _, SQL and Unicode are stored and matched literally; the tables stay intact', async () => {
    for (const name of LITERAL) await createEvent(t.db, name, [name, 'A1']);
    for (const name of LITERAL) {
      const locked = await cli(['lock', name, name, '--user', name, '--json']);
      expect(locked.code, `${name}: ${locked.stderr}`).toBe(0);
      expect(jsonLines(locked.stdout)[0]).toMatchObject({ event: name, seat: name, lockedBy: name });
    }
    const listed = jsonLines((await cli(['list-locked', '--json'])).stdout).filter((r) => r.type === 'lock');
    expect(listed.map((r) => r.event).sort()).toEqual([...LITERAL].sort());
    expect((await cli(['list-locked', '--event', 'a%b'])).code).toBe(2);
    expect((await cli(['list-locked', '--event', 'aXb'])).code).toBe(2);
    expect(Number((await t.db.knex('seats').count({ n: '*' }).first())!.n)).toBe(2 * LITERAL.length);
    for (const name of LITERAL) expect((await cli(['unlock', name, name, '--user', name])).code).toBe(0);
  });

  it('hostile names reach the terminal escaped, and --json carries them exactly', async () => {
    const id = await createEvent(t.db, HOSTILE_EVENT, [HOSTILE_SEAT, 'A1']);
    await placeLock(t.db, id, [HOSTILE_SEAT], HOSTILE_SEAT, -60_000);
    const human = [
      await cli(['list-locked']),
      await cli(['release-expired-locks', '--dry-run']),
      await cli(['lock', HOSTILE_EVENT, 'Z9', '--user', 'u']),
      await cli(['lock', HOSTILE_EVENT, 'A1', '--user', HOSTILE_SEAT]),
      await cli(['lock', HOSTILE_EVENT, 'A1', '--user', 'other']),
      await cli(['stats']),
    ];
    for (const result of human) {
      expect(result.stdout + result.stderr, 'no control byte but newline and tab').not.toMatch(CONTROL);
    }
    expect(human[0]!.stdout).toContain('Evil\\e]0;pwned\\x07 Show\\e[2J\\rOK\\x08\\x07\\x9b31m');
    expect(human[2]!.stderr).toMatch(/unknown seat 'Z9' in event 'Evil\\e\]0;pwned\\x07/);
    expect(human[4]!.stderr).toMatch(/A1: held by X\\e\[31m1 until/);
    const released = await cli(['release-expired-locks', '--json']);
    expect(released.stdout).not.toMatch(CONTROL);
    const [record] = jsonLines(released.stdout);
    expect(record).toMatchObject({
      type: 'released',
      event: HOSTILE_EVENT,
      seat: HOSTILE_SEAT,
      lockedBy: HOSTILE_SEAT,
    });
    const history = jsonLines((await cli(['history', '--json'])).stdout);
    expect(history[0]).toMatchObject({ event: HOSTILE_EVENT, seat: HOSTILE_SEAT });
  });

  it(
    'Ctrl-C during a long release ends promptly with exit 130, every finished batch committed and no half-applied one',
    { timeout: 120_000 },
    async () => {
      expect((await cli(['seed', '--events', '20', '--seats-per-event', '10000', '--expired', '200000'])).code).toBe(0);
      const release = startCli(['--db', t.url, 'release-expired-locks', '--json', '--batch-size', '500']);
      // Its first lines say it is releasing (and handling signals): interrupt it a few batches in.
      await release.waitFor('2,000 released locks', (c) => c.lines.stdout >= 2000, 60_000);
      const gotThere = Date.now() - release.startedAt;
      const interrupted = Date.now();
      release.signal('SIGINT');
      const { code, stdout, stderr } = await release.finished();
      expect(code).toBe(130);
      // It stops after the batch in progress: far sooner than it took to start and release those
      // 2,000 locks (not stopping would take the 198,000 others).
      expect(Date.now() - interrupted, `2,000 locks took ${gotThere} ms`).toBeLessThan(
        boundFrom(gotThere, 3, 1000),
      );
      expect(stderr).toMatch(/^error: interrupted after releasing [\d,]+ locks; the rest are left for the next run\n$/);
      const records = jsonLines(stdout);
      const summary = records.at(-1)!;
      expect(summary).toMatchObject({ type: 'summary', interrupted: true });
      const history = Number((await t.db.knex('release_history').count({ n: '*' }).first())!.n);
      expect(history).toBe(summary.total);
      expect(history % 500, 'whole batches only').toBe(0);
      expect(records.filter((r) => r.type === 'released')).toHaveLength(history);
      const locked = Number((await t.db.knex('seats').where('status', 'locked').count({ n: '*' }).first())!.n);
      expect(locked + history).toBe(200_000);
    },
  );

  /**
   * Whether another connection has a write transaction open on the database:
   * one that has written (PostgreSQL), or that holds the write lock (SQLite).
   */
  async function writeTransactionOpen(): Promise<boolean> {
    if (engine.name === 'postgres') {
      const { rows } = await t.db.knex.raw(
        `SELECT count(*) AS n FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL`,
      );
      return Number(rows[0].n) > 0;
    }
    const probe = new Database(t.url, { timeout: 0 });
    try {
      probe.exec('BEGIN IMMEDIATE');
      probe.exec('ROLLBACK');
      return false;
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_BUSY') return true;
      throw error;
    } finally {
      probe.close();
    }
  }

  it('Ctrl-C during a long seed ends promptly with exit 130 and seeds nothing', { timeout: 120_000 }, async () => {
    // A seed of one chunk (50,000 seats), start to end, here and now: the most an interrupted seed
    // should take to stop is a few of those (it stops after its chunk in progress, and rolls back).
    const { ms: oneChunk } = await timed(() =>
      cli(['seed', '--reset', '--events', '10', '--seats-per-event', '5000', '--expired', '2500']),
    );
    expect((await cli(['seed', '--reset'])).code).toBe(0);
    const before = await dumpDatabase(t.db);
    const seed = startCli(
      ['--db', t.url, 'seed', '--events', '400', '--seats-per-event', '5000', '--expired', '100000'],
    );
    // A seed prints nothing until it is done: interrupt it once its transaction has begun writing.
    await eventually('the seed to begin writing', writeTransactionOpen, { describe: () => seed.output() });
    const interrupted = Date.now();
    seed.signal('SIGINT');
    const { code, stderr } = await seed.finished();
    expect(code).toBe(130);
    expect(Date.now() - interrupted, `one chunk took ${Math.round(oneChunk)} ms`).toBeLessThan(
      boundFrom(oneChunk, 3, 1000),
    );
    expect(stderr).toBe('error: seeding was interrupted; nothing was written\n');
    expect(await dumpDatabase(t.db)).toBe(before);
  });
});

describe('bad input: the database', () => {
  const run = (url: string, args: string[], options?: Parameters<typeof runCli>[1]) =>
    runCli(['--db', url, ...args], options);

  it('--db pointing to a directory: exit 4', async () => {
    const dir = tempDir();
    for (const args of [['list-locked'], ['migrate']]) {
      expectOneLineError(
        await run(dir, args),
        4,
        /cannot open the database .*: it is a directory, not a database file/,
        args[0]!,
      );
    }
  });

  it('--db in a directory that does not exist: exit 4, for reads and for migrate', async () => {
    const file = join(tempDir(), 'missing', 'seatctl.db');
    for (const args of [['list-locked'], ['migrate'], ['seed']]) {
      expectOneLineError(
        await run(file, args),
        4,
        /cannot open the database .*: the directory .*missing does not exist/,
        args[0]!,
      );
    }
  });

  it('a file that is not a SQLite database: exit 4, file untouched', async () => {
    const file = join(tempDir(), 'notes.txt');
    writeFileSync(file, 'not a database\n'.repeat(1000));
    for (const args of [['list-locked'], ['migrate'], ['release-expired-locks']]) {
      expectOneLineError(await run(file, args), 4, /the file is not a SQLite database/, args[0]!);
    }
  });

  it('a read-only database: writes exit 4 with a clear sentence, reads still work', async () => {
    const dir = tempDir();
    const file = join(dir, 'readonly.db');
    expect((await run(file, ['seed'])).code).toBe(0);
    chmodSync(file, 0o444);
    // Root ignores file permissions: run seatctl as an unprivileged user then (its directory stays writable for -wal/-shm).
    const asUser = process.getuid?.() === 0;
    if (asUser) chmodSync(dir, 0o777);
    const seatctl = async (args: string[]): Promise<CliResult> => {
      const [cmd, argv] = asUser
        ? ['runuser', ['-u', 'nobody', '--', process.execPath, BIN, '--db', file, ...args]]
        : [process.execPath, [BIN, '--db', file, ...args]];
      return runProcess(cmd as string, argv as string[], { env: cleanEnv(), timeoutMs: 30_000 });
    };
    const read = await seatctl(['list-locked']);
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout).toMatch(/22 locked seats/);
    for (const args of [['lock', DEMO, 'D1', '--user', 'u'], ['release-expired-locks'], ['migrate']]) {
      const result = await seatctl(args);
      if (args[0] === 'migrate') {
        expect(result.code).toBe(0); // up to date: nothing to write
        continue;
      }
      expectOneLineError(
        result,
        4,
        /cannot write to the database .*readonly\.db: it is read-only \(check the permissions of the file and its directory\)/,
        args[0]!,
      );
    }
  });

  it('an empty database that was never migrated: exit 5, "run seatctl migrate"', async () => {
    const file = join(tempDir(), 'empty.db');
    writeFileSync(file, '');
    for (const args of [
      ['list-locked'],
      ['release-expired-locks'],
      ['lock', 'x', 'A1', '--user', 'u'],
      ['history'],
      ['stats'],
    ]) {
      expectOneLineError(await run(file, args), 5, /is not set up: run seatctl migrate/, args[0]!);
    }
  });

  it('a database migrated by a newer seatctl: exit 5, and migrate refuses to touch it', async () => {
    const file = join(tempDir(), 'newer.db');
    const db = await openDatabase({ url: file, create: true });
    await migrate(db);
    await db.knex('knex_migrations').insert({ name: '002_from_the_future', batch: 2, migration_time: new Date() });
    const before = JSON.stringify(await db.knex('knex_migrations').orderBy('id'));
    await db.close();
    for (const args of [['list-locked'], ['migrate'], ['release-expired-locks']]) {
      expectOneLineError(
        await run(file, args),
        5,
        /was migrated by a newer seatctl \(unknown migration 002_from_the_future\)/,
        args[0]!,
      );
    }
    const after = await openDatabase({ url: file });
    expect(JSON.stringify(await after.knex('knex_migrations').orderBy('id'))).toBe(before);
    await after.close();
  });

  it.each([
    'mysql://root:hunter2secret@db/tickets',
    'redis://localhost:6379',
    'http://example.com/db',
    'mongodb+srv://u:hunter2secret@x/y',
  ])('unknown scheme %s: exit 2, unsupported database, no URL echoed', async (url) => {
    const result = await run(url, ['list-locked']);
    expectOneLineError(result, 2, /unsupported database '[a-z+]+:'/, url);
    expect(result.stderr).not.toMatch(/hunter2/);
  });
});

/** A TCP port nothing listens on. */
async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

// Passwords with the characters that break URLs, in every form they could leak in.
const PASSWORDS = ['p@ss/w#rd%41', 'sec/ret@host#frag', 'tail%2Fpct@@'];
const forms = (password: string) => [
  password,
  encodeURIComponent(password),
  decodeURIComponent(encodeURIComponent(password)),
];

describe('bad input: PostgreSQL URLs never leak the password', () => {
  /** How long seatctl takes here and now to start with this command line and print its help: no connection. */
  const startup = async (args: string[]) => (await timed(() => runCli([...args, '--help']))).ms;

  it.each(PASSWORDS)('a closed port: exit 4 within the connect timeout (password %j)', async (password) => {
    const url = `postgres://seatctl:${encodeURIComponent(password)}@127.0.0.1:${await closedPort()}/tickets`;
    for (const verbose of [[], ['--verbose']]) {
      const args = ['--db', url, '--connect-timeout', '2s', ...verbose, 'list-locked'];
      const idle = await startup(args);
      const { result, ms } = await timed(() => runCli(args));
      // Within the 2 s connect timeout, plus a few times the same command's start without connecting.
      expect(ms, `start: ${Math.round(idle)} ms`).toBeLessThan(2000 + boundFrom(idle, 3, 1000));
      expect(result.code).toBe(4);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(/^error: cannot connect to PostgreSQL at 127\.0\.0\.1:\d+: connection refused\n/);
      if (verbose.length === 0) expectOneLineError(result, 4, /connection refused/, 'closed port');
      for (const form of forms(password)) expect(result.stderr).not.toContain(form);
    }
  });

  it('an unreachable host gives up within --connect-timeout', async () => {
    // 192.0.2.0/24 is reserved for documentation: nothing answers there.
    const url = 'postgres://seatctl:s3cr3t-pw@192.0.2.1:5432/tickets';
    const args = ['--db', url, '--connect-timeout', '1s', 'list-locked'];
    const idle = await startup(args);
    const { result, ms } = await timed(() => runCli(args));
    // The 1 s connect timeout, the 1 s more seatctl gives its pool to report it, and a few times the
    // same command's start without connecting.
    expect(ms, `start: ${Math.round(idle)} ms`).toBeLessThan(1000 + 1000 + boundFrom(idle, 3, 1000));
    expectOneLineError(
      result,
      4,
      /cannot connect to PostgreSQL at 192\.0\.2\.1:5432: (no answer within the connect timeout \(1 s\)|network unreachable|host unreachable|connection refused)/,
      'unreachable',
    );
    expect(result.stderr).not.toContain('s3cr3t-pw');
  });

  it.each(PASSWORDS)('a malformed URL (password %j not percent-encoded): exit 2, nothing leaked', async (password) => {
    for (const url of [
      `postgres://seatctl:${password}@127.0.0.1:5432/tickets`,
      `postgresql://seatctl:${password}@:5432/x`,
      `postgres://seatctl:${password}@[::1/x`,
    ]) {
      for (const verbose of [[], ['--verbose']]) {
        const result = await runCli(['--db', url, ...verbose, 'release-expired-locks']);
        expect([2, 4], `${url}: ${result.stderr}`).toContain(result.code);
        expect(result.stdout).toBe('');
        for (const form of forms(password)) expect(result.stderr, url).not.toContain(form);
      }
    }
    const broken = await runCli(['--db', `postgres://seatctl:${password}@127.0.0.1:5432/tickets`, 'list-locked']);
    if (broken.code === 2) expectOneLineError(broken, 2, /malformed PostgreSQL URL/, 'malformed');
  });

  it.skipIf(postgres.skipReason !== null)(
    'a wrong password: exit 4 naming the failure, never the password',
    async () => {
      const admin = new URL(inject('pgAdminUrl')!);
      for (const password of PASSWORDS) {
        admin.password = encodeURIComponent(password);
        for (const verbose of [[], ['--verbose']]) {
          const result = await runCli(['--db', admin.toString(), ...verbose, 'list-locked']);
          expect(result.code).toBe(4);
          expect(result.stderr).toMatch(
            /^error: cannot connect to PostgreSQL at 127\.0\.0\.1:\d+: password authentication failed for user "postgres"\n/,
          );
          for (const form of forms(password)) expect(result.stderr).not.toContain(form);
        }
      }
    },
  );
});
