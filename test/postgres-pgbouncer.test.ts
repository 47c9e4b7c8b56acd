// seatctl through PgBouncer in transaction pooling mode, as many deployments
// run PostgreSQL: concurrent releasers sharing two server connections, a
// wrong password, and startup options PgBouncer refuses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookSeats, lockSeats, migrate, openDatabase, withDatabase } from '../src/index.js';
import { jsonLines, runCli } from './support/cli.js';
import { startCli } from './support/cli-process.js';
import { findPgBouncer, startPgBouncer, type PgBouncer } from './support/pgbouncer.js';
import { asAdmin, serverAddress, serverUrl, superuserSkipReason, useScratch } from './support/postgres-scratch.js';

function skipReasonFor(): string | null {
  if (findPgBouncer() !== undefined) return null;
  const reason = "pgbouncer is not installed (Debian's pgbouncer package)";
  if (process.env.CI === 'true') throw new Error(`CI must run the PgBouncer tests, but ${reason}`);
  return reason;
}
const skipReason = (await superuserSkipReason()) ?? skipReasonFor();
const title = (name: string) => (skipReason === null ? name : `${name} [skipped: ${skipReason}]`);

describe.skipIf(skipReason !== null)(title('PostgreSQL through PgBouncer (transaction pooling)'), () => {
  const scratch = useScratch();
  const password = 'pooled-secret';
  let bouncer: PgBouncer;
  let role: string;
  /** A URL through PgBouncer. */
  const pooled = (database: string, parts: { password?: string; user?: string; params?: Record<string, string> } = {}) =>
    serverUrl(database, { host: '127.0.0.1', port: bouncer.port, user: role, password, ...parts });

  beforeAll(async () => {
    role = await scratch.role('pooled', password);
    // Two server connections for every client: transaction pooling must share them.
    bouncer = await startPgBouncer({ server: serverAddress(), users: { [role]: password }, poolMode: 'transaction', poolSize: 2 });
  });
  afterAll(async () => {
    await bouncer?.stop();
  });

  /** A database the pooled role owns and has migrated. */
  const ownDatabase = async (name: string, options?: string) => {
    const database = await scratch.database(name);
    await asAdmin(database, async (client) => {
      await client.query(`ALTER DATABASE "${database}" OWNER TO ${role}`);
      if (options !== undefined) await client.query(`CREATE SCHEMA tickets AUTHORIZATION ${role}`);
    });
    const direct = serverUrl(database, { user: role, password, params: options === undefined ? {} : { options } });
    await withDatabase({ url: direct }, (db) => migrate(db));
    return database;
  };

  it('two releasers at once over the same 20,000 expired locks release each exactly once', { timeout: 120_000 }, async () => {
    const EXPIRED = 20_000;
    const database = await ownDatabase('pooled');
    await asAdmin(database, async (client) => {
      const { rows } = await client.query("INSERT INTO events (name) VALUES ('Pooled') RETURNING id");
      await client.query(
        `INSERT INTO seats (event_id, seat_number, status, locked_by, locked_until, locked_at, lock_token)
         SELECT $1, 'S' || g, 'locked', 'admin', clock_timestamp() - interval '1 minute', clock_timestamp() - interval '6 minutes', 1
         FROM generate_series(1, $2) AS g`,
        [rows[0].id, EXPIRED],
      );
    });
    const args = ['--db', pooled(database), 'release-expired-locks', '--batch-size', '200', '--json'];
    const [a, b] = await Promise.all([startCli(args).done, startCli(args).done]);
    for (const run of [a, b]) {
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
    }
    const seats = (stdout: string) => jsonLines(stdout).filter((r) => r.type === 'released').map((r) => r.seat as string);
    const [first, second] = [seats(a.stdout), seats(b.stdout)];
    const taken = new Set(second);
    expect(first.filter((seat) => taken.has(seat))).toEqual([]);
    expect(new Set([...first, ...second]).size).toBe(EXPIRED);
    expect(first.length + second.length).toBe(EXPIRED);
    await asAdmin(database, async (client) => {
      const { rows } = await client.query('SELECT COUNT(*) AS n, COUNT(DISTINCT seat_id) AS seats FROM release_history');
      expect(rows[0]).toEqual({ n: String(EXPIRED), seats: String(EXPIRED) });
    });
  });

  it('the library with named statements (the default): 8 callers on two server connections, every lock and booking served', { timeout: 120_000 }, async () => {
    const database = await ownDatabase('named');
    const SEATS = 400;
    await asAdmin(database, async (client) => {
      const { rows } = await client.query("INSERT INTO events (name) VALUES ('Named') RETURNING id");
      await client.query(
        `INSERT INTO seats (event_id, seat_number, status, lock_token) SELECT $1, 'S' || g, 'available', 0 FROM generate_series(1, $2) AS g`,
        [rows[0].id, SEATS],
      );
    });
    // PgBouncer 1.18 keeps no names between transactions: each client connection that meets an
    // unknown or taken name sends its statements unnamed from then on, and no call fails.
    const db = await openDatabase({ url: pooled(database), pool: { max: 8 } });
    try {
      let next = 0;
      const caller = async () => {
        while (next < SEATS) {
          const seat = `S${++next}`;
          await lockSeats(db, { event: 'Named', seats: [seat], user: `u${seat}`, ttlMs: 60_000 });
          await bookSeats(db, { event: 'Named', seats: [seat], user: `u${seat}` });
        }
      };
      await Promise.all(Array.from({ length: 8 }, caller));
    } finally {
      await db.close();
    }
    await asAdmin(database, async (client) => {
      const { rows } = await client.query("SELECT COUNT(*) AS n FROM seats WHERE status = 'booked' AND booked_by = 'u' || seat_number");
      expect(rows[0].n).toBe(String(SEATS));
    });
  });

  it("a wrong password, or a user PgBouncer doesn't know, is exit 4 with PgBouncer's sentence", async () => {
    const database = await ownDatabase('auth');
    for (const url of [pooled(database, { password: 'not-the-password' }), pooled(database, { user: 'nobody' })]) {
      const result = await runCli(['--db', url, 'stats']);
      expect(result.stderr).toBe(`error: cannot connect to PostgreSQL at 127.0.0.1:${bouncer.port}: SASL authentication failed\n`);
      expect(result.code).toBe(4);
      expect(result.stdout).toBe('');
    }
  });

  it('refuses ?options= (said clearly); the role\'s own search_path works through it', async () => {
    const database = await ownDatabase('tickets', '-c search_path=tickets');
    const withOptions = await runCli(['--db', pooled(database, { params: { options: '-c search_path=tickets' } }), 'stats']);
    expect(withOptions.stderr).toBe(
      `error: cannot connect to PostgreSQL at 127.0.0.1:${bouncer.port}: unsupported startup parameter: options (PgBouncer does not pass the URL's ?options= on to the server: set them on the role instead, ALTER ROLE … SET search_path = …)\n`,
    );
    expect(withOptions.code).toBe(4);

    await asAdmin(database, (client) => client.query(`ALTER ROLE ${role} IN DATABASE "${database}" SET search_path = tickets`));
    const viaRole = await runCli(['--db', pooled(database), 'stats', '--check']);
    expect(viaRole.stderr).toBe('');
    expect(viaRole.code).toBe(0);
  });
});
