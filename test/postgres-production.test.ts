// PostgreSQL as production runs it: statistics that lag behind the data, a
// statement_timeout set on the database, roles with only the grants the
// README lists, a schema other than public, a backend terminated under a
// release, and another releaser (pg_cron) beside seatctl. Each against the
// tests' own server, with the real binary where the exit code and message
// are the point.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  bookSeats,
  ensureSchema,
  listLocked,
  lockSeats,
  migrate,
  openDatabase,
  releaseExpiredLocks,
  releaseExpiredLocksInBatches,
  stats,
  unlockSeats,
  withDatabase,
  type SeatDatabase,
} from '../src/index.js';
import { jsonLines, runCli } from './support/cli.js';
import { completeRecords, startCli } from './support/cli-process.js';
import { asAdmin, serverUrl, superuserSkipReason, useScratch } from './support/postgres-scratch.js';

const skipReason = await superuserSkipReason();
const DEMO = 'Taylor Swift - Eras Tour';

/** The ```sql blocks of a README section, in order. */
function readmeSql(heading: string): string[] {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf(`\n${heading}\n`);
  if (start === -1) throw new Error(`README has no section ${heading}`);
  const end = readme.indexOf('\n#', start + heading.length + 2);
  const section = readme.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/```sql\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

/** Statements of a SQL block, one per `;`. */
const statements = (block: string) =>
  block
    .split(/;\s*\n/)
    .map((sql) => sql.trim())
    .filter((sql) => sql !== '');

/** A new database with seatctl's schema, migrated by the admin; returns its name and URL. */
async function migratedDatabase(scratch: ReturnType<typeof useScratch>, name: string) {
  const database = await scratch.database(name);
  const url = serverUrl(database);
  await withDatabase({ url }, (db) => migrate(db));
  return { database, url };
}

/** `count` seats of one new event, the first `expired` of them locked by `admin` with a lock that expired a minute ago. */
async function fillSeats(client: pg.Client, event: string, count: number, expired: number): Promise<number> {
  const { rows } = await client.query('INSERT INTO events (name) VALUES ($1) RETURNING id', [event]);
  const id = rows[0].id as number;
  await client.query(
    `INSERT INTO seats (event_id, seat_number, status, locked_by, locked_until, locked_at, lock_token)
     SELECT $1, 'S' || g, CASE WHEN g <= $3 THEN 'locked' ELSE 'available' END,
       CASE WHEN g <= $3 THEN 'admin' END,
       CASE WHEN g <= $3 THEN clock_timestamp() - interval '1 minute' END,
       CASE WHEN g <= $3 THEN clock_timestamp() - interval '6 minutes' END, CASE WHEN g <= $3 THEN 1 ELSE 0 END
     FROM generate_series(1, $2) AS g`,
    [id, count, expired],
  );
  return id;
}

const released = (stdout: string) => completeRecords(stdout).filter((r) => r.type === 'released').map((r) => r.seat as string);

async function count(client: pg.Client, sql: string, values: unknown[] = []): Promise<number> {
  const { rows } = await client.query(sql, values);
  return Number(rows[0].n);
}

const title = (name: string) => (skipReason === null ? name : `${name} [skipped: ${skipReason}]`);

describe.skipIf(skipReason !== null)(title('PostgreSQL in production'), () => {
  const scratch = useScratch();

  describe('stale statistics', () => {
    const SEATS = 300_000;
    const EXPIRED = 50_000;
    let base: string;

    // The statistics are taken while no seat is locked; then a sixth of the
    // seats are locked (spread over the table, as buyers do) and expire.
    // Autovacuum is off for the table, so nothing refreshes them. Each test
    // works on copies of this database, files and statistics alike; the
    // "fresh" copies are analysed again.
    beforeAll(async () => {
      ({ database: base } = await migratedDatabase(scratch, 'stale'));
      await asAdmin(base, async (client) => {
        await client.query('ALTER TABLE seats SET (autovacuum_enabled = false)');
        await fillSeats(client, 'Stadium', SEATS, 0);
        await client.query('ANALYZE');
        await client.query(
          `UPDATE seats SET status = 'locked', locked_by = 'admin', locked_until = clock_timestamp() - interval '1 minute',
             locked_at = clock_timestamp() - interval '6 minutes', lock_token = 1
           WHERE id % ${SEATS / EXPIRED} = 0`,
        );
        // Read every row once, so every copy starts with the same hint bits
        // (ANALYZE would otherwise set them in the fresh copies only).
        await client.query('SELECT COUNT(*) FROM seats');
      });
    }, 180_000);

    const copy = async (name: string, fresh: boolean) => {
      const database = await scratch.database(name, base);
      await asAdmin(database, async (client) => {
        if (fresh) await client.query('ANALYZE');
        const { rows } = await client.query(
          "SELECT most_common_vals::text AS mcv FROM pg_stats WHERE tablename = 'seats' AND attname = 'status'",
        );
        expect(rows[0].mcv === '{available}', 'the statistics say no seat is locked').toBe(!fresh);
      });
      return database;
    };

    /** Every plan auto_explain reports for the statements `work` runs on `database`, with actual row counts. */
    const plansOf = async (database: string, work: (db: SeatDatabase) => Promise<void>): Promise<string[]> => {
      const explain = [
        '-c session_preload_libraries=auto_explain',
        '-c auto_explain.log_min_duration=0',
        '-c auto_explain.log_analyze=on',
        '-c auto_explain.log_timing=off',
        '-c auto_explain.log_level=notice',
      ].join(' ');
      const plans: string[] = [];
      await withDatabase({ url: serverUrl(database, { params: { options: explain } }) }, async (db) => {
        (db.knex.client as any).pool.on('createSuccess', (_: unknown, conn: pg.Client) =>
          conn.on('notice', (notice) => plans.push(notice.message ?? '')),
        );
        await work(db);
      });
      return plans;
    };

    /** The time each named step takes on `database`, after its table is read into the cache. */
    const timed = async (database: string, steps: Record<string, (db: SeatDatabase) => Promise<unknown>>) => {
      await asAdmin(database, (client) => client.query('SELECT COUNT(*) FROM seats'));
      const db = await openDatabase({ url: serverUrl(database) });
      const times: Record<string, number> = {};
      try {
        await ensureSchema(db);
        for (const [name, step] of Object.entries(steps)) {
          const start = performance.now();
          await step(db);
          times[name] = performance.now() - start;
        }
      } finally {
        await db.close();
      }
      return times;
    };

    /** Stale and fresh copies, timed alternately (stale first, then fresh first, then stale first); the best of each. */
    const compare = async (name: string, steps: Record<string, (db: SeatDatabase) => Promise<unknown>>) => {
      const runs = { stale: [] as Array<Record<string, number>>, fresh: [] as Array<Record<string, number>> };
      // The machine is shared with the rest of the suite: the best of three rounds is what the plans cost.
      for (const order of [['stale', 'fresh'], ['fresh', 'stale'], ['stale', 'fresh']] as const) {
        for (const kind of order) runs[kind].push(await timed(await copy(`${name}_${kind}_${runs[kind].length}`, kind === 'fresh'), steps));
      }
      return Object.keys(steps).map((step) => {
        const stale = Math.min(...runs.stale.map((t) => t[step]!));
        const fresh = Math.min(...runs.fresh.map((t) => t[step]!));
        console.log(`stale statistics, ${step}: ${stale.toFixed(1)} ms; after ANALYZE: ${fresh.toFixed(1)} ms (${(stale / fresh).toFixed(2)}×)`);
        return { step, stale, fresh };
      });
    };

    it(
      `releasing ${EXPIRED.toLocaleString('en')} locks taken since the last ANALYZE of ${SEATS.toLocaleString('en')} seats finds each batch's rows by id and takes at most twice the time it takes after a fresh ANALYZE; list-locked and stats too`,
      { timeout: 300_000 },
      async () => {
        // The plan the release batch runs with, as auto_explain reports it for seatctl's own statement.
        const plans = await plansOf(await copy('stale_plan', false), async (db) => {
          for await (const batch of releaseExpiredLocksInBatches(db, { batchSize: 1000 })) {
            expect(batch).toHaveLength(1000);
            break;
          }
        });
        const plan = plans.find((text) => text.includes('WITH picked'));
        expect(plan, 'auto_explain reported the release statement').toBeDefined();
        const update = plan!.slice(plan!.indexOf('CTE released'), plan!.indexOf('Subquery Scan'));
        expect(update).toMatch(/Update on seats/);
        expect(update).toMatch(/Index Scan using seats_(locked|pkey) on seats .*\(actual rows=1000 loops=1\)/);
        expect(update).toMatch(/Index Cond: \(+id = ANY/);
        expect(update).not.toMatch(/Nested Loop|Join Filter|Seq Scan|Rows Removed/);
        // The planner expected one row where there were a thousand: the statistics were stale indeed.
        expect(plan).toMatch(/Index Scan using seats_locked on seats s .*rows=1 .*\(actual rows=1000 loops=1\)/);
        console.log(`stale statistics, the release batch's plan (auto_explain):\n${plan!.slice(plan!.indexOf('Insert on'))}`);

        const results = await compare('release', {
          'list-locked': async (db) => expect((await listLocked(db)).seats).toHaveLength(EXPIRED),
          stats: async (db) => expect((await stats(db)).events[0]).toMatchObject({ seats: SEATS, expired: EXPIRED }),
          release: async (db) => expect((await releaseExpiredLocks(db)).total).toBe(EXPIRED),
        });
        for (const { step, stale, fresh } of results) expect(stale, step).toBeLessThanOrEqual(2 * fresh);
      },
    );

    // Under these statistics the planner would serve `status = 'locked' AND
    // event_id = … AND seat_number = ANY(…)` from the partial index of locked
    // seats, filtering every locked seat: lock, book and unlock find their
    // seats by (event, seat) first, as the release finds its rows by id.
    it(
      'lock, book and unlock under the same statistics read only the seats they name, and take at most twice their time after ANALYZE',
      { timeout: 300_000 },
      async () => {
        const requests = 20;
        const seats = Array.from({ length: requests }, (_, i) => `S${(i + 1) * 6}`); // expired locks
        const lockAndBook = async (db: SeatDatabase) => {
          for (const seat of seats) {
            await lockSeats(db, { event: 'Stadium', seats: [seat], user: 'zoe', ttlMs: 60_000 });
            await bookSeats(db, { event: 'Stadium', seats: [seat], user: 'zoe' });
          }
        };
        const plans = await plansOf(await copy('seats_plan', false), async (db) => {
          await lockSeats(db, { event: 'Stadium', seats: ['S6', 'S7'], user: 'zoe', ttlMs: 60_000 });
          await bookSeats(db, { event: 'Stadium', seats: ['S6'], user: 'zoe' });
          await unlockSeats(db, { event: 'Stadium', seats: ['S7'], user: 'zoe' });
        });
        const results = await compare('seats', { [`${requests} × lock + book`]: lockAndBook });
        // A statement that names its seats finds them by (event, seat) or by id, never among every locked seat.
        const wide = plans.filter(
          (text) =>
            /"seat_number" = ANY/.test(text) &&
            (/Seq Scan on seats|Rows Removed by Filter: \d{4,}/.test(text) ||
              (/Index Scan using seats_locked on seats/.test(text) && !/Index Cond: \(+id = ANY/.test(text))),
        );
        expect(wide.map((text) => text.split('\n').slice(1, 3).join(' ')), 'statements that read every locked seat').toEqual([]);
        for (const { step, stale, fresh } of results) expect(stale, step).toBeLessThanOrEqual(2 * fresh);
      },
    );
  });

  describe('a statement_timeout set on the database', () => {
    it('cancels a batch that runs longer: exit 4 saying so, committed batches stay released, small batches complete', { timeout: 120_000 }, async () => {
      const EXPIRED = 10_000;
      const { database, url } = await migratedDatabase(scratch, 'timeout');
      await asAdmin(database, async (client) => {
        await fillSeats(client, 'Arena', EXPIRED + 100, EXPIRED);
        // As autovacuum would have by then: a table never analysed is planned on guesses.
        await client.query('VACUUM ANALYZE seats');
        await client.query(`ALTER DATABASE "${database}" SET statement_timeout = '50ms'`);
      });
      const cancelled = 'error: the database cancelled the statement: statement timeout (canceling statement due to statement timeout)\n';
      const locked = (client: pg.Client) => count(client, "SELECT COUNT(*) AS n FROM seats WHERE status = 'locked'");
      const releaseArgs = ['--db', url, 'release-expired-locks', '--batch-size', '50', '--json'];

      // Small batches, until one waits behind a lock on the history (as a
      // CREATE INDEX would take) for longer than the timeout.
      const first = startCli(releaseArgs);
      await first.until(() => released(first.stdout).length >= 50, 'the first committed batch');
      const blocker = new pg.Client({ connectionString: serverUrl(database), options: '-c statement_timeout=0' });
      await blocker.connect();
      let result;
      try {
        await blocker.query('BEGIN');
        await blocker.query('LOCK TABLE release_history IN SHARE MODE');
        result = await first.done;
      } finally {
        await blocker.query('ROLLBACK');
        await blocker.end();
      }
      expect(result.stderr).toBe(cancelled);
      expect(result.code).toBe(4);
      const before = released(result.stdout);
      expect(before.length).toBeGreaterThan(0);
      expect(before.length).toBeLessThan(EXPIRED);
      await asAdmin(database, async (client) => {
        // Exactly the reported batches are released, each with its history row; the cancelled one left no trace.
        const { rows } = await client.query("SELECT seat_number FROM release_history WHERE reason = 'expired'");
        expect(rows.map((row) => row.seat_number).sort()).toEqual([...before].sort());
        expect(await locked(client)).toBe(EXPIRED - before.length);
      });

      // One batch of every lock left: more than 50 ms of work.
      const huge = await runCli(['--db', url, 'release-expired-locks', '--batch-size', '100000', '--json']);
      expect(huge.stderr).toBe(cancelled);
      expect(huge.code).toBe(4);
      expect(huge.stdout).toBe('');
      await asAdmin(database, async (client) => {
        expect(await locked(client)).toBe(EXPIRED - before.length);
        expect(await count(client, 'SELECT COUNT(*) AS n FROM release_history')).toBe(before.length);
      });

      const rest = await runCli(releaseArgs);
      expect(rest.stderr).toBe('');
      expect(rest.code).toBe(0);
      const after = jsonLines(rest.stdout).filter((r) => r.type === 'released').map((r) => r.seat as string);
      expect(before.length + after.length).toBe(EXPIRED);
      expect(new Set([...before, ...after]).size).toBe(EXPIRED);
      await asAdmin(database, async (client) => {
        expect(await locked(client)).toBe(0);
        expect(await count(client, 'SELECT COUNT(DISTINCT seat_id) AS n FROM release_history')).toBe(EXPIRED);
      });
    });
  });

  describe('least privilege', () => {
    it("an app role with exactly the README's grants runs every command; a missing grant is exit 5 naming it", { timeout: 120_000 }, async () => {
      const database = await scratch.database('roles');
      const owner = scratch.roleName('owner');
      const app = scratch.roleName('app');
      const own = (sql: string) =>
        sql.replace(/\bseatctl_owner\b/g, owner).replace(/\bseatctl_app\b/g, app).replace(/\bDATABASE tickets\b/g, `DATABASE "${database}"`);
      const [dba, grants] = readmeSql('#### PostgreSQL roles');
      expect(grants, 'the README lists the DBA statements and the grants').toBeDefined();
      await asAdmin(database, async (client) => {
        for (const sql of statements(dba!)) await client.query(own(sql));
      });
      const ownerUrl = serverUrl(database, { user: owner, password: 'owner-secret' });
      const appUrl = serverUrl(database, { user: app, password: 'app-secret' });

      const migrated = await runCli(['--db', ownerUrl, 'migrate']);
      expect(migrated.stderr).toBe('');
      expect(migrated.code).toBe(0);
      expect((await runCli(['--db', ownerUrl, 'seed'])).code).toBe(0);
      const asOwner = new pg.Client({ connectionString: ownerUrl });
      await asOwner.connect();
      try {
        for (const sql of statements(grants!)) await asOwner.query(own(sql));
      } finally {
        await asOwner.end();
      }

      const ok = async (args: string[]) => {
        const result = await runCli(['--db', appUrl, ...args]);
        expect(result.stderr, `seatctl ${args.join(' ')}`).toBe('');
        expect(result.code, `seatctl ${args.join(' ')}`).toBe(0);
        return result;
      };
      expect(jsonLines((await ok(['release-expired-locks', '--dry-run', '--json'])).stdout)).toHaveLength(20);
      expect((await ok(['release-expired-locks', '--dry-run'])).stdout).toMatch(/Total locks that would be released: 19/);
      expect((await ok(['list-locked'])).stdout).toMatch(/22 locked seats: 19 expired, 3 active/);
      // A19 expired (taken over, a history row), D1 is available.
      await ok(['lock', DEMO, 'A19', 'D1', '--user', 'zoe']);
      await ok(['book', DEMO, 'A19', 'D1', '--user', 'zoe']);
      await ok(['unlock', DEMO, 'B1']);
      expect(jsonLines((await ok(['release-expired-locks', '--json'])).stdout).at(-1)).toMatchObject({ total: 18 });
      expect((await ok(['release-expired-locks'])).stdout).toBe('No expired locks to release\n');
      expect((await ok(['history'])).stdout).toMatch(/A1/);
      expect((await ok(['stats'])).stdout).toMatch(/last release: .* 0 released/);
      await ok(['stats', '--check']);
      expect((await ok(['doctor'])).stdout).toMatch(/\nusable\n$/);
      expect((await ok(['migrate'])).stdout).toMatch(/up to date/);

      const refused = async (args: string[], message: RegExp) => {
        const result = await runCli(['--db', appUrl, ...args]);
        expect(result.stderr, `seatctl ${args.join(' ')}`).toMatch(message);
        expect(result.stderr).not.toMatch(/run seatctl migrate/);
        expect(result.code, `seatctl ${args.join(' ')}`).toBe(5);
      };
      // The migration lock is the owner's.
      await refused(
        ['migrate', '--force-unlock'],
        new RegExp(`^error: the database role "${app}" may not free the migration lock \\(it lacks DELETE and INSERT on knex_migrations_lock\\)`),
      );
      expect((await runCli(['--db', ownerUrl, 'migrate', '--force-unlock'])).code).toBe(0);

      const withoutGrant = async (revoke: string, grant: string, check: () => Promise<void>) => {
        await asAdmin(database, (client) => client.query(own(revoke)));
        try {
          await check();
        } finally {
          await asAdmin(database, (client) => client.query(own(grant)));
        }
      };
      await withoutGrant('REVOKE USAGE ON SCHEMA seatctl FROM seatctl_app', 'GRANT USAGE ON SCHEMA seatctl TO seatctl_app', () =>
        refused(
          ['list-locked'],
          new RegExp(`^error: seatctl's tables are in the schema seatctl, which the role ${app} may not use \\(it lacks USAGE on it\\): GRANT USAGE ON SCHEMA seatctl TO ${app} `),
        ),
      );
      await asAdmin(database, (client) =>
        client.query("UPDATE seatctl.seats SET status = 'locked', locked_by = 'x', locked_until = now() - interval '1 minute', locked_at = now() - interval '2 minutes' WHERE seat_number = 'E1'"),
      );
      await withoutGrant(
        'REVOKE USAGE ON SEQUENCE seatctl.release_history_id_seq FROM seatctl_app',
        'GRANT USAGE ON SEQUENCE seatctl.release_history_id_seq TO seatctl_app',
        () =>
          refused(
            ['release-expired-locks'],
            new RegExp(`^error: the database role "${app}" lacks USAGE on the sequence release_history_id_seq \\(permission denied for sequence release_history_id_seq\\)`),
          ),
      );
      await withoutGrant('REVOKE SELECT ON seatctl.knex_migrations FROM seatctl_app', 'GRANT SELECT ON seatctl.knex_migrations TO seatctl_app', () =>
        refused(['stats'], new RegExp(`^error: the database role "${app}" lacks a privilege: permission denied for table knex_migrations `)),
      );
      // Every grant back: the release goes through.
      expect((await ok(['release-expired-locks', '--json'])).stdout).toMatch(/"seat":"E1"/);
    });
  });

  describe('a schema other than public', () => {
    it('migrated into tickets with ?options=-c search_path=tickets, then used through the URL or the role\'s search_path', { timeout: 120_000 }, async () => {
      const database = await scratch.database('tickets');
      const owner = await scratch.role('t_owner', 'owner-secret');
      const app = await scratch.role('t_app', 'app-secret');
      await asAdmin(database, async (client) => {
        await client.query(`CREATE SCHEMA tickets AUTHORIZATION ${owner}`);
        await client.query(`GRANT CONNECT ON DATABASE "${database}" TO ${owner}, ${app}`);
      });
      const inTickets = { options: '-c search_path=tickets' };
      const ownerUrl = serverUrl(database, { user: owner, password: 'owner-secret', params: inTickets });
      expect((await runCli(['--db', ownerUrl, 'migrate'])).code).toBe(0);
      expect((await runCli(['--db', ownerUrl, 'seed'])).code).toBe(0);
      await asAdmin(database, async (client) => {
        const { rows } = await client.query(
          "SELECT schemaname, COUNT(*) AS n FROM pg_tables WHERE tablename IN ('seats', 'events', 'release_history', 'release_runs', 'knex_migrations') GROUP BY schemaname",
        );
        expect(rows).toEqual([{ schemaname: 'tickets', n: '5' }]);
      });
      const [, grants] = readmeSql('#### PostgreSQL roles');
      const asOwner = new pg.Client({ connectionString: ownerUrl, options: inTickets.options });
      await asOwner.connect();
      try {
        for (const sql of statements(grants!)) {
          await asOwner.query(sql.replace(/\bseatctl_app\b/g, app).replace(/\bSCHEMA seatctl\b/g, 'SCHEMA tickets'));
        }
      } finally {
        await asOwner.end();
      }

      // The app's role has no search_path of its own yet: seatctl says where its tables are.
      const plain = serverUrl(database, { user: app, password: 'app-secret' });
      const hidden = await runCli(['--db', plain, 'stats']);
      expect(hidden.stderr).toBe(
        `error: seatctl's tables are in the schema tickets, which the search_path ("$user", public) leaves out: set it (ALTER ROLE ${app} SET search_path = tickets, or ?options=-c search_path=tickets in the URL)\n`,
      );
      expect(hidden.code).toBe(5);

      const viaUrl = await runCli(['--db', serverUrl(database, { user: app, password: 'app-secret', params: inTickets }), 'release-expired-locks', '--quiet']);
      expect(viaUrl.stderr).toBe('');
      expect(viaUrl.stdout).toBe('Total locks released: 19\n');
      expect(viaUrl.code).toBe(0);

      await asAdmin(database, (client) => client.query(`ALTER ROLE ${app} SET search_path = tickets`));
      const viaRole = await runCli(['--db', plain, 'lock', DEMO, 'A1', '--user', 'zoe']);
      expect(viaRole.stderr).toBe('');
      expect(viaRole.code).toBe(0);
      const listed = await runCli(['--db', plain, 'list-locked', '--json']);
      expect(jsonLines(listed.stdout).filter((r) => r.type === 'lock').map((r) => r.seat)).toEqual(['A1', 'B1', 'B2', 'B3']);
      expect((await runCli(['--db', plain, 'stats', '--check'])).code).toBe(0);
    });
  });

  describe('a backend terminated under a release', () => {
    it('exit 4 "the server ended the connection", committed batches stay, a rerun releases the rest, none twice', { timeout: 120_000 }, async () => {
      const EXPIRED = 30_000;
      const { database, url } = await migratedDatabase(scratch, 'terminated');
      await asAdmin(database, (client) => fillSeats(client, 'Hall', EXPIRED, EXPIRED));
      const victim = `seatctl-${scratch.prefix}`;
      const first = startCli(['--db', `${url}?application_name=${victim}`, 'release-expired-locks', '--batch-size', '500', '--json']);
      await first.until(() => released(first.stdout).length >= 500, 'the first committed batch');
      // Terminated while the release statement runs (not between statements, not in a COMMIT).
      await asAdmin(database, (client) =>
        first.until(async () => {
          const { rows } = await client.query(
            `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
             WHERE application_name = $1 AND state = 'active' AND query LIKE 'WITH picked%'`,
            [victim],
          );
          return rows.some((row) => row.done);
        }, 'the release statement to be running'),
      );
      const result = await first.done;
      expect(result.stderr).toBe('error: the server ended the connection: terminating connection due to administrator command\n');
      expect(result.code).toBe(4);
      const before = released(result.stdout);
      expect(before.length).toBeGreaterThan(0);
      expect(before.length).toBeLessThan(EXPIRED);
      await asAdmin(database, async (client) => {
        const { rows } = await client.query('SELECT seat_number FROM release_history');
        expect(rows.map((row) => row.seat_number).sort()).toEqual([...before].sort());
        expect(await count(client, "SELECT COUNT(*) AS n FROM seats WHERE status = 'available'")).toBe(before.length);
      });

      const rest = await runCli(['--db', url, 'release-expired-locks', '--json']);
      expect(rest.code).toBe(0);
      const after = jsonLines(rest.stdout).filter((r) => r.type === 'released').map((r) => r.seat as string);
      expect(before.length + after.length).toBe(EXPIRED);
      expect(new Set([...before, ...after]).size).toBe(EXPIRED);
      await asAdmin(database, async (client) => {
        expect(await count(client, 'SELECT COUNT(*) AS n FROM release_history')).toBe(EXPIRED);
        expect(await count(client, 'SELECT COUNT(DISTINCT seat_id) AS n FROM release_history')).toBe(EXPIRED);
        expect(await count(client, "SELECT COUNT(*) AS n FROM seats WHERE status = 'locked'")).toBe(0);
      });
    });
  });

  describe('pg_cron beside seatctl', () => {
    it("a release in SQL counts for stats --check with the README's statement, and not without it", { timeout: 60_000 }, async () => {
      const [heartbeat] = readmeSql('#### Another releaser beside seatctl (pg_cron)');
      expect(heartbeat).toMatch(/^INSERT INTO release_runs/);
      const { database, url } = await migratedDatabase(scratch, 'pgcron');
      await asAdmin(database, (client) => fillSeats(client, 'Cron', 20, 5));
      // What a pg_cron job runs every minute, with or without the heartbeat.
      const cronRelease = (withHeartbeat: boolean) =>
        asAdmin(database, async (client) => {
          await client.query('BEGIN');
          await client.query(
            "UPDATE seats SET status = 'available', locked_by = NULL, locked_until = NULL, locked_at = NULL WHERE status = 'locked' AND locked_until <= clock_timestamp()",
          );
          if (withHeartbeat) await client.query(heartbeat!);
          await client.query('COMMIT');
        });
      // Locks that expired since the job's last run.
      const expireMore = (seats: string) =>
        asAdmin(database, (client) =>
          client.query(
            `UPDATE seats SET status = 'locked', locked_by = 'late', locked_until = clock_timestamp() - interval '1 second', locked_at = clock_timestamp() - interval '5 minutes' WHERE seat_number IN (${seats})`,
          ),
        );

      await cronRelease(false);
      await expireMore("'S10', 'S11'");
      const unseen = await runCli(['--db', url, 'stats', '--check']);
      expect(unseen.stderr).toMatch(/^error: 2 expired locks are waiting and no release has ever run/);
      expect(unseen.code).toBe(6);

      await cronRelease(true);
      await expireMore("'S12', 'S13'");
      const seen = await runCli(['--db', url, 'stats', '--check']);
      expect(seen.stderr).toBe('');
      expect(seen.stdout).toMatch(/last release: .* on pg_cron, 0 released/);
      expect(seen.code).toBe(0);
    });
  });
});
