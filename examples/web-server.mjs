// A minimal HTTP API on seatctl's library: lock and book seats.
//
//   DATABASE_URL=postgres://app:secret@db/tickets PORT=3000 node web-server.mjs
//   curl -X POST localhost:3000/lock -d '{"event":"Eras Tour","seats":["A1","A2"],"user":"alice"}'
//
// POST /lock {event, seats, user, ttlMs?}  200 the lock | 409 {conflicts} | 400 {error}
// POST /book {event, seats, user}          200 the booking | 409 {conflicts} | 400 {error}
// GET /healthz                             200
// SIGTERM: stop accepting, finish the requests in flight, close the database, exit 0.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { openDatabase, lockSeats, bookSeats, SeatctlError, SeatConflictError } from 'seatctl';

const { values: flags } = parseArgs({ options: { db: { type: 'string' } } });
// One handle per process: it keeps the connection pool (PostgreSQL) or the connection (SQLite).
const db = await openDatabase({ url: flags.db ?? process.env.DATABASE_URL });

const routes = {
  'POST /lock': ({ event, seats, user, ttlMs }) => lockSeats(db, { event, seats, user, ttlMs }),
  'POST /book': ({ event, seats, user }) => bookSeats(db, { event, seats, user }),
};

let stopping = false;

const server = createServer(async (req, res) => {
  const send = (status, body) => {
    // While stopping, every response ends its connection, so keep-alive clients let go.
    res.writeHead(status, { 'content-type': 'application/json', ...(stopping && { connection: 'close' }) });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'GET' && req.url === '/healthz') return send(200, { ok: true });
  const route = routes[`${req.method} ${req.url}`];
  if (route === undefined) return send(404, { error: 'not found' });
  try {
    send(200, await route(await readRequest(req)));
  } catch (error) {
    if (error instanceof SeatConflictError) send(409, { error: error.message, conflicts: error.conflicts });
    else if (error instanceof BadRequest || (error instanceof SeatctlError && error.kind === 'usage')) send(400, { error: error.message });
    else if (error instanceof SeatctlError && (error.kind === 'unavailable' || error.kind === 'closed')) send(503, { error: error.message });
    else {
      console.error(error);
      send(500, { error: 'internal error' });
    }
  }
});

class BadRequest extends Error {}

/** The JSON body: `event` and `user` strings, `seats` an array of strings; the library checks the rest. */
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
  const { event, seats, user } = body ?? {};
  if (typeof event !== 'string' || typeof user !== 'string' || !Array.isArray(seats) || !seats.every((s) => typeof s === 'string')) {
    throw new BadRequest('expected {"event": string, "seats": [string, …], "user": string}');
  }
  return body;
}

server.listen(Number(process.env.PORT ?? 3000), () => console.log(`listening on ${server.address().port}`));

process.once('SIGTERM', async () => {
  stopping = true;
  server.close(); // no new connections; idle keep-alive ones are closed now, busy ones after their response
  await db.close(); // refuses new calls, waits for those in flight, closes the connections
  // Nothing is left to keep the process alive: it exits 0 once the last response is out.
});
