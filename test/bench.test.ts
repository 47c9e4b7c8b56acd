// The benchmark runs once in its --quick form, so it can't rot between the
// times someone runs it for real (npm run bench).
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { cleanEnv, runCli } from './support/cli.js';
import { run } from './support/processes.js';
import { boundFrom, idleTime } from './support/timing.js';

const hasSqliteShell = (await run('sqlite3', ['--version'], { timeoutMs: 10_000 })).code === 0;
const reason = "the sqlite3 shell (the benchmark's floor) is not installed: apt-get install sqlite3";
if (!hasSqliteShell && process.env.CI === 'true') throw new Error(`CI must run the benchmark, but ${reason}`);
if (!hasSqliteShell) console.log(`\n*** benchmark test SKIPPED: ${reason} ***\n`);

it.skipIf(!hasSqliteShell)(
  'npm run bench -- --quick prints the table of medians and ratios',
  { timeout: 900_000 },
  async () => {
    const bench = fileURLToPath(new URL('../bench/run.js', import.meta.url));
    // It runs a few hundred seatctl processes (about 230 times one seatctl start, idle): it may
    // take 1000 times what one start takes here now, and never less than 110 s.
    const oneStart = await idleTime(() => runCli(['--version']));
    const deadline = Math.min(boundFrom(oneStart, 1000, 110_000), 880_000);
    // The benchmark starts seatctl, sqlite3 and psql runs of its own: one process group, killed whole.
    const result = await run(process.execPath, [bench, '--quick'], {
      env: cleanEnv(),
      group: true,
      timeoutMs: deadline,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^### seatctl benchmark, \d{4}-\d\d-\d\d \(--quick\)\n/);
    expect(result.stdout).toMatch(/Machine: \d+ cores .*Node v\d+/);
    expect(result.stdout).toMatch(/\| figure \| seatctl \| baseline \| ratio \| target \| met \|/);
    for (const figure of [
      /\| SQLite release 10,000\/1,000, --quiet \| \d+ ms \| \d+ ms \(sqlite3 UPDATE … RETURNING\) \| [\d.]+× \|/,
      /\| SQLite release 10,000\/1,000, --json > file \|/,
      /\| no-op release, 10,000 seats \| \d+ ms \| \d+ ms \(node -e 0\) \|/,
      /\| peak RSS releasing 10,000 expired locks, text report to a file \| \d+ MB \|/,
      /\| peak RSS releasing 10,000 expired locks, --json to a file \| \d+ MB \|/,
      /\| seed 10,000 seats \(SQLite\) \|/,
      /\| SQLite: lock during a 10,000 release, median of 5 \|/,
    ]) {
      expect(result.stdout).toMatch(figure);
    }
    if (process.env.CI === 'true') expect(result.stdout).toMatch(/\| PostgreSQL release 10,000\/1,000, --quiet \|/);
  },
);
