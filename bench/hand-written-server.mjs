// The benchmark's baseline for examples/web-server.mjs: the same routes and the
// same HTTP handling, with lock and book as the least SQL that does the job on
// seatctl's own schema — one conditional statement each, all or nothing, rows
// taken in id order (no deadlocks) — and nothing else: no conflict reasons, no
// history, no hold cap, no event cache, no schema check. pg (a pg.Pool of the
// size seatctl's library opens) or better-sqlite3 (BEGIN IMMEDIATE, prepared
// statements, the same durability settings as seatctl), directly.
//
//   PORT=0 node bench/hand-written-server.mjs --db <sqlite file | postgres://…> [--pool 10]
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';

const { values: flags } = parseArgs({ options: { db: { type: 'string' }, pool: { type: 'string', default: '10' } } });
const url = flags.db ?? process.env.DATABASE_URL;
const store = /^postgres(ql)?:/.test(url) ? postgresStore(url, Number(flags.pool)) : sqliteStore(url);

function postgresStore(connectionString, max) {
  const pool = new pg.Pool({ connectionString, max });
  // $1 event name, $2 seats, $3 user; the rows are locked in id order, then all are written or none.
  const target = `target AS (
      SELECT s.id, s.status, s.locked_by, s.locked_until FROM seats s
      WHERE s.event_id = (SELECT id FROM events WHERE name = $1) AND s.seat_number = ANY($2::text[])
      ORDER BY s.id FOR UPDATE)`;
  const LOCK = `WITH ${target}
    UPDATE seats s SET status = 'locked', locked_by = $3, locked_until = clock_timestamp() + $4 * interval '1 millisecond',
      locked_at = clock_timestamp(), lock_token = s.lock_token + 1
    FROM target t
    WHERE s.id = t.id AND (SELECT count(*) FROM target
      WHERE status = 'available' OR (status = 'locked' AND (locked_until <= clock_timestamp() OR locked_by = $3))) = cardinality($2::text[])
    RETURNING s.seat_number AS seat, s.locked_until, s.lock_token`;
  const BOOK = `WITH ${target}
    UPDATE seats s SET status = 'booked', booked_by = s.locked_by, booked_at = clock_timestamp(),
      locked_by = NULL, locked_until = NULL, locked_at = NULL
    FROM target t
    WHERE s.id = t.id AND (SELECT count(*) FROM target
      WHERE status = 'locked' AND locked_by = $3 AND locked_until > clock_timestamp()) = cardinality($2::text[])
    RETURNING s.seat_number AS seat, s.booked_at`;
  return {
    lock: async ({ event, seats, user, ttlMs = 300_000 }) => (await pool.query(LOCK, [event, seats, user, ttlMs])).rows,
    book: async ({ event, seats, user }) => (await pool.query(BOOK, [event, seats, user])).rows,
    close: () => pool.end(),
  };
}

function sqliteStore(filename) {
  const db = new Database(filename, { fileMustExist: true, timeout: 5000 });
  db.pragma('foreign_keys = ON');
  db.pragma('synchronous = FULL');
  const NOW = "CAST(ROUND(unixepoch('subsec') * 1000) AS INTEGER)";
  const requested = `event_id = (SELECT id FROM events WHERE name = @event) AND seat_number IN (SELECT value FROM json_each(@seats))`;
  const lock = db.prepare(`UPDATE seats SET status = 'locked', locked_by = @user, locked_until = ${NOW} + @ttl,
      locked_at = ${NOW}, lock_token = lock_token + 1
    WHERE ${requested} AND (SELECT count(*) FROM seats WHERE ${requested}
      AND (status = 'available' OR (status = 'locked' AND (locked_until <= ${NOW} OR locked_by = @user)))) = json_array_length(@seats)
    RETURNING seat_number AS seat, locked_until, lock_token`);
  const book = db.prepare(`UPDATE seats SET status = 'booked', booked_by = locked_by, booked_at = ${NOW},
      locked_by = NULL, locked_until = NULL, locked_at = NULL
    WHERE ${requested} AND (SELECT count(*) FROM seats WHERE ${requested}
      AND status = 'locked' AND locked_by = @user AND locked_until > ${NOW}) = json_array_length(@seats)
    RETURNING seat_number AS seat, booked_at`);
  const write = (statement) => db.transaction((args) => statement.all(args)).immediate;
  const lockNow = write(lock);
  const bookNow = write(book);
  return {
    lock: async ({ event, seats, user, ttlMs = 300_000 }) => lockNow({ event, seats: JSON.stringify(seats), user, ttl: ttlMs }),
    book: async ({ event, seats, user }) => bookNow({ event, seats: JSON.stringify(seats), user }),
    close: async () => db.close(),
  };
}

/** All or nothing: every seat asked for came back, or none did. */
const served = (seats, rows) => {
  if (rows.length !== seats.length) throw new Refused();
  return { seats: rows };
};

const routes = {
  'POST /lock': async (body) => served(body.seats, await store.lock(body)),
  'POST /book': async (body) => served(body.seats, await store.book(body)),
};

class Refused extends Error {}
class BadRequest extends Error {}

let stopping = false;
let inFlight = 0;

const server = createServer(async (req, res) => {
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json', ...(stopping && { connection: 'close' }) });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'GET' && req.url === '/healthz') return send(200, { ok: true });
  const route = routes[`${req.method} ${req.url}`];
  if (route === undefined) return send(404, { error: 'not found' });
  inFlight++;
  try {
    send(200, await route(await readRequest(req)));
  } catch (error) {
    if (error instanceof Refused) send(409, { conflicts: [] });
    else if (error instanceof BadRequest) send(400, { error: error.message });
    else {
      console.error(error);
      send(500, { error: 'internal error' });
    }
  } finally {
    if (--inFlight === 0 && stopping) void store.close();
  }
});

async function readRequest(req) {
  let text = '';
  for await (const chunk of req.setEncoding('utf8')) {
    if ((text += chunk).length > 100_000) throw new BadRequest('the request body is too large');
  }
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BadRequest('the request body is not JSON');
  }
  const { event, seats, user, ttlMs } = body ?? {};
  if (typeof event !== 'string' || typeof user !== 'string' || !Array.isArray(seats) || !seats.every((s) => typeof s === 'string')) {
    throw new BadRequest('expected {"event": string, "seats": [string, …], "user": string}');
  }
  if (seats.length === 0 || (ttlMs !== undefined && !Number.isSafeInteger(ttlMs))) throw new BadRequest('bad seats or ttlMs');
  return body;
}

server.listen(Number(process.env.PORT ?? 3000), () => console.log(`listening on ${server.address().port}`));

process.once('SIGTERM', () => {
  stopping = true;
  server.close();
  if (inFlight === 0) void store.close();
});
