import { spawn } from 'node:child_process';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { bookSeats, lockSeats, releaseExpiredLocks, seedSynthetic } from '../src/index.js';
import { BIN, cleanEnv, jsonLines, runCli, type CliResult } from './support/cli.js';
import { describeEachEngine, postgres, useDatabase } from './support/engines.js';
import { createEvent, placeLock, seatNumbers } from './support/fixtures.js';

/** Starts seatctl without waiting for it. */
function startCli(args: string[]): { done: Promise<CliResult>; child: ReturnType<typeof spawn> } {
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`seatctl ${args.join(' ')} hung\n${stderr}`));
    }, 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { done, child };
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describeEachEngine('concurrency', (engine) => {
  const t = useDatabase(engine);
  const count = async (table: string, where: Record<string, unknown> = {}) =>
    Number((await t.db.knex(table).where(where).count({ n: '*' }).first())!.n);

  it('two releasers started at the same moment report disjoint seats whose union is every expired lock', async () => {
    await seedSynthetic(t.db, { events: 20, seatsPerEvent: 2000, expired: 40_000 });
    const runs = [0, 1].map(() => startCli(['--db', t.url, 'release-expired-locks', '--json', '--batch-size', '100']));
    const results = await Promise.all(runs.map((run) => run.done));
    const reports = results.map((result) => {
      expect(result.code, result.stderr).toBe(0);
      return jsonLines(result.stdout);
    });
    const seats = reports.map((records) =>
      records.filter((r) => r.type === 'released').map((r) => `${r.eventId}:${r.seat}`),
    );
    const [a, b] = seats as [string[], string[]];
    expect(new Set(a).size).toBe(a.length);
    expect(new Set(b).size).toBe(b.length);
    const inB = new Set(b);
    expect(a.filter((seat) => inB.has(seat))).toEqual([]);
    expect(a.length + b.length).toBe(40_000);
    expect(a.length, 'both releasers did part of the work').toBeGreaterThan(0);
    expect(b.length, 'both releasers did part of the work').toBeGreaterThan(0);
    const totals = reports.map((records) => records.at(-1)!.total as number);
    expect(totals[0]! + totals[1]!).toBe(40_000);
    expect(await count('release_history', { reason: 'expired' })).toBe(40_000);
    expect(await count('seats', { status: 'locked' })).toBe(0);
  });

  it('a booking made by another connection while a big release runs survives it', async () => {
    await seedSynthetic(t.db, { events: 10, seatsPerEvent: 8000, expired: 60_000 });
    // Releases walk the seats in id order: take over and book some of the last ones mid-release.
    const targets: Array<{ event: string; seat: string }> = await t.db
      .knex('seats as s')
      .join('events as e', 'e.id', 's.event_id')
      .where('s.status', 'locked')
      .orderBy('s.id', 'desc')
      .limit(40)
      .select('e.name as event', 's.seat_number as seat');
    const release = startCli(['--db', t.url, 'release-expired-locks', '--quiet', '--batch-size', '200']);
    await waitFor(async () => (await count('release_history')) > 0);
    for (const { event, seat } of targets) {
      await lockSeats(t.db, { event, seats: [seat], user: 'buyer' });
      await bookSeats(t.db, { event, seats: [seat], user: 'buyer' });
    }
    const result = await release.done;
    expect(result.code, result.stderr).toBe(0);
    const total = Number(/Total locks released: (\d+)/.exec(result.stdout)![1]);
    const replaced = await count('release_history', { reason: 'replaced' });
    expect(replaced, 'the bookings happened while the release ran').toBeGreaterThan(0);
    expect(total + replaced).toBe(60_000);
    const booked = await t.db.knex('seats').where({ status: 'booked', booked_by: 'buyer' }).count({ n: '*' }).first();
    expect(Number(booked!.n)).toBe(40);
    expect(await count('seats', { status: 'locked' })).toBe(0);
  });

  it('of two lockers of the same free seat, exactly one wins and the other exits 3', async () => {
    const seats = seatNumbers(6);
    await createEvent(t.db, 'Race', seats);
    const runs = seats.flatMap((seat) =>
      ['left', 'right'].map((user) => startCli(['--db', t.url, 'lock', 'Race', seat, '--user', user, '--json'])),
    );
    const results = await Promise.all(runs.map((run) => run.done));
    for (let i = 0; i < seats.length; i++) {
      const pair = [results[2 * i]!, results[2 * i + 1]!];
      expect(pair.map((r) => r.code).sort(), pair.map((r) => r.stderr).join('\n')).toEqual([0, 3]);
      const winner = pair.find((r) => r.code === 0)!;
      const row = await t.db.knex('seats').where('seat_number', seats[i]).first('locked_by');
      expect(jsonLines(winner.stdout)[0]!.lockedBy).toBe(row.locked_by);
    }
  });

  it('the library and the CLI agree on one release even when called together', async () => {
    const id = await createEvent(t.db, 'Mixed', seatNumbers(3000));
    await placeLock(t.db, id, seatNumbers(3000), 'admin', -60_000);
    const cli = startCli(['--db', t.url, 'release-expired-locks', '--json', '--batch-size', '50']);
    const library = await releaseExpiredLocks(t.db, { batchSize: 50 });
    const fromCli = jsonLines((await cli.done).stdout)
      .filter((r) => r.type === 'released')
      .map((r) => r.seat);
    const fromLibrary = library.released.map((r) => r.seat);
    expect(fromCli.length + fromLibrary.length).toBe(3000);
    expect(new Set([...fromCli, ...fromLibrary]).size).toBe(3000);
  });
});

describe.skipIf(postgres.skipReason !== null)('concurrency [postgres: SKIP LOCKED]', () => {
  const t = useDatabase(postgres);

  it('skips a seat another transaction holds FOR UPDATE without waiting, and the next run releases it', async () => {
    const id = await createEvent(t.db, 'Held', seatNumbers(3000));
    await placeLock(t.db, id, seatNumbers(3000), 'admin', -60_000);
    const holder = new pg.Client({ connectionString: t.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query("SELECT id FROM seats WHERE seat_number = 'A1500' FOR UPDATE");
      const started = Date.now();
      const results = await Promise.all(
        [0, 1, 2].map(() => startCli(['--db', t.url, 'release-expired-locks', '--json', '--batch-size', '200']).done),
      );
      expect(Date.now() - started, 'releasers never wait for the held row').toBeLessThan(20_000);
      const released = results.flatMap((r) => {
        expect(r.code, r.stderr).toBe(0);
        return jsonLines(r.stdout)
          .filter((x) => x.type === 'released')
          .map((x) => x.seat as string);
      });
      expect(released).toHaveLength(2999);
      expect(new Set(released).size).toBe(2999);
      expect(released).not.toContain('A1500');
      const totals = results.reduce((sum, r) => sum + (jsonLines(r.stdout).at(-1)!.total as number), 0);
      expect(totals).toBe(2999);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    const next = await runCli(['--db', t.url, 'release-expired-locks', '--json']);
    expect(
      jsonLines(next.stdout)
        .filter((x) => x.type === 'released')
        .map((x) => x.seat),
    ).toEqual(['A1500']);
  });
});
