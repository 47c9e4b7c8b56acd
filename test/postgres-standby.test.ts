// seatctl on a read-only hot standby, then on the same server once promoted:
// what a fail-over looks like from a releaser's crontab. Its own primary
// (a throwaway cluster like the tests' one) and a standby made from it with
// pg_basebackup; both are stopped and deleted after the file.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, seedDemo, withDatabase } from '../src/index.js';
import { jsonLines, runCli } from './support/cli.js';
import { findStandbyBinaries, startPostgres, startStandby } from './support/postgres-server.js';

const skipReason =
  findStandbyBinaries() === undefined ? 'PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) are not installed' : null;
const DEMO = 'Taylor Swift - Eras Tour';
const readOnly = 'error: cannot write: the PostgreSQL server is read-only (a standby?)\n';

describe.skipIf(skipReason !== null)(
  `PostgreSQL: a read-only hot standby, then promoted${skipReason === null ? '' : ` [skipped: ${skipReason}]`}`,
  () => {
    let primary: Awaited<ReturnType<typeof startPostgres>> | undefined;
    let standby: Awaited<ReturnType<typeof startStandby>> | undefined;
    let url: string;

    beforeAll(async () => {
      primary = await startPostgres({ fast: true });
      const admin = new pg.Client({ connectionString: primary.adminUrl });
      await admin.connect();
      await admin.query('CREATE DATABASE tickets');
      await admin.end();
      const onPrimary = primary.adminUrl.replace(/\/postgres$/, '/tickets');
      await withDatabase({ url: onPrimary }, async (db) => {
        await migrate(db);
        await seedDemo(db);
      });
      // A release ran a moment ago (stats --check is content), and since then five more locks expired.
      expect((await runCli(['--db', onPrimary, 'release-expired-locks', '--quiet'])).code).toBe(0);
      await withDatabase({ url: onPrimary }, (db) =>
        db.knex.raw(
          `UPDATE seats SET status = 'locked', locked_by = 'late', locked_until = clock_timestamp() - interval '1 minute',
             locked_at = clock_timestamp() - interval '6 minutes' WHERE seat_number IN ('D1', 'D2', 'D3', 'D4', 'D5')`,
        ),
      );
      standby = await startStandby(primary, { fast: true });
      url = standby.adminUrl.replace(/\/postgres$/, '/tickets');
    }, 120_000);

    afterAll(() => {
      try {
        standby?.stop();
      } finally {
        primary?.stop();
      }
    });

    it('writes exit 4 saying the server is read-only, reads work; after pg_ctl promote the same release succeeds', { timeout: 120_000 }, async () => {
      for (const args of [
        ['release-expired-locks'],
        ['lock', DEMO, 'E1', '--user', 'zoe'],
        ['book', DEMO, 'B1', '--user', 'alice'],
        ['unlock', DEMO, 'B1'],
      ]) {
        const result = await runCli(['--db', url, ...args]);
        expect(result.stderr, args.join(' ')).toBe(readOnly);
        expect(result.code, args.join(' ')).toBe(4);
        expect(result.stdout).toBe('');
      }
      const listed = await runCli(['--db', url, 'list-locked']);
      expect(listed.stderr).toBe('');
      expect(listed.stdout).toMatch(/8 locked seats: 5 expired, 3 active/);
      expect(listed.code).toBe(0);
      for (const args of [['stats'], ['stats', '--check'], ['history'], ['doctor']]) {
        const result = await runCli(['--db', url, ...args]);
        expect(result.stderr, args.join(' ')).toBe('');
        expect(result.code, args.join(' ')).toBe(0);
      }
      // Nothing was written on the way: the standby still has every lock.
      const dryRun = await runCli(['--db', url, 'release-expired-locks', '--dry-run', '--json']);
      expect(jsonLines(dryRun.stdout).at(-1)).toMatchObject({ type: 'summary', total: 5, dryRun: true });

      standby!.promote();
      const released = await runCli(['--db', url, 'release-expired-locks', '--json']);
      expect(released.stderr).toBe('');
      expect(released.code).toBe(0);
      expect(
        jsonLines(released.stdout)
          .filter((r) => r.type === 'released')
          .map((r) => r.seat),
      ).toEqual(['D1', 'D2', 'D3', 'D4', 'D5']);
      expect((await runCli(['--db', url, 'lock', DEMO, 'E1', '--user', 'zoe'])).code).toBe(0);
    });
  },
);
