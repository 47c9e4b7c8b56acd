// The benchmark runs once in its --quick form, so it can't rot between the
// times someone runs it for real (npm run bench).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { cleanEnv } from './support/cli.js';

const hasSqliteShell = spawnSync('sqlite3', ['--version']).status === 0;
const reason = "the sqlite3 shell (the benchmark's floor) is not installed: apt-get install sqlite3";
if (!hasSqliteShell && process.env.CI === 'true') throw new Error(`CI must run the benchmark, but ${reason}`);
if (!hasSqliteShell) console.log(`\n*** benchmark test SKIPPED: ${reason} ***\n`);

it.skipIf(!hasSqliteShell)(
  'npm run bench -- --quick prints the table of medians and ratios',
  { timeout: 120_000 },
  () => {
    const bench = fileURLToPath(new URL('../bench/run.js', import.meta.url));
    const run = spawnSync(process.execPath, [bench, '--quick'], {
      encoding: 'utf8',
      env: cleanEnv(),
      timeout: 110_000,
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^### seatctl benchmark, \d{4}-\d\d-\d\d \(--quick\)\n/);
    expect(run.stdout).toMatch(/Machine: \d+ cores .*Node v\d+/);
    expect(run.stdout).toMatch(/\| figure \| seatctl \| baseline \| ratio \| target \| met \|/);
    for (const figure of [
      /\| SQLite release 10,000\/1,000, --quiet \| \d+ ms \| \d+ ms \(sqlite3 UPDATE … RETURNING\) \| [\d.]+× \|/,
      /\| SQLite release 10,000\/1,000, --json > file \|/,
      /\| no-op release, 10,000 seats \| \d+ ms \| \d+ ms \(node -e 0\) \|/,
      /\| peak RSS releasing 10,000 expired locks, text report to a file \| \d+ MB \|/,
      /\| peak RSS releasing 10,000 expired locks, --json to a file \| \d+ MB \|/,
      /\| seed 10,000 seats \(SQLite\) \|/,
      /\| SQLite: lock during a 10,000 release, median of 5 \|/,
    ]) {
      expect(run.stdout).toMatch(figure);
    }
    if (process.env.CI === 'true') expect(run.stdout).toMatch(/\| PostgreSQL release 10,000\/1,000, --quiet \|/);
  },
);
