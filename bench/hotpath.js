// npm run bench -- --only hotpath
//
// The library on a web server's hot path: examples/web-server.mjs (seatctl)
// next to bench/hand-written-server.mjs (the least SQL that does the job), each
// in its own process, driven over loopback by autocannon at several connection
// counts. At each level both servers run side by side, each on its own fresh
// copy of the same seeded database with a release-expired-locks sweeper
// alongside, and are measured in alternating slices (seatctl, hand-written,
// hand-written, seatctl, …), so both see the same machine. Each request locks 1–4 random free seats of one
// event for a random user (TTL 3 s); half of the locks are then booked, the
// rest left to expire (their seats come back into play once they have).
// After every run the database is checked against what the servers answered.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import pg from 'pg';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXAMPLE = join(ROOT, 'examples', 'web-server.mjs');
const HAND_WRITTEN = join(ROOT, 'bench', 'hand-written-server.mjs');
const TTL_MS = 3000;
const SERVERS = { seatctl: 'seatctl (examples/web-server.mjs)', hand: 'hand-written SQL' };

/**
 * @param {object} ctx what bench/run.js shares: work dir, QUICK, log, addRow, addTableRow, notes, BIN, median, seatctl, postgres()
 */
export async function benchHotpath(ctx) {
  const { QUICK, log, work } = ctx;
  // Enough seats that the fastest server never runs out within a run: a
  // booked seat is gone for good, a lapsed one comes back after the TTL.
  const plan = QUICK
    ? { events: 30, perEvent: 1000, warmupS: 0.5, seconds: 2, slices: 2, sliceS: 1, sqlite: [8], postgres: [8], twoServers: false }
    : { events: 150, perEvent: 1000, warmupS: 1, seconds: 8, slices: 12, sliceS: 2, sqlite: [1, 8, 32, 64], postgres: [8, 32, 64], twoServers: true };
  const app = makeApp(work);
  const load = new LoadSampler();
  const invariantFailures = [];
  const summary = [];
  const check = (label, result) => {
    summary.push({ label, ...result });
    if (result.problems.length > 0) invariantFailures.push(`${label}: ${result.problems.slice(0, 5).join('; ')}`);
  };

  // SQLite
  {
    log(`hot path, SQLite: seeding ${plan.events} × ${plan.perEvent} seats`);
    const source = join(work, 'hotpath.db');
    rmSync(source, { force: true });
    ctx.seatctl(['--db', source, 'seed', '--reset', '--events', String(plan.events), '--seats-per-event', String(plan.perEvent)]);
    const db = new Database(source);
    db.pragma('wal_checkpoint(TRUNCATE)');
    const seats = db.prepare('SELECT e.name AS event, s.seat_number AS seat FROM seats s JOIN events e ON e.id = s.event_id').all();
    db.close();
    const fresh = (name) => {
      const copy = join(work, `hot-${name}.db`);
      for (const suffix of ['', '-wal', '-shm', '-waiting']) rmSync(copy + suffix, { force: true });
      copyFileSync(source, copy);
      return copy;
    };
    const engine = { label: 'SQLite', fresh, seats, read: readSqlite };
    await levels(ctx, engine, plan.sqlite, plan, app, load, check);
    if (plan.twoServers) await twoServers(ctx, engine, plan, app, load, check);
  }

  // PostgreSQL
  const adminUrl = await ctx.postgres();
  let pgVersion;
  if (adminUrl !== undefined) {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      const urlFor = (name) => Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
      pgVersion = (await admin.query('SHOW server_version')).rows[0].server_version;
      log(`hot path, PostgreSQL: seeding ${plan.events} × ${plan.perEvent} seats`);
      await admin.query('DROP DATABASE IF EXISTS bench_hot WITH (FORCE)');
      await admin.query('CREATE DATABASE bench_hot');
      ctx.seatctl(['--db', urlFor('bench_hot'), 'seed', '--events', String(plan.events), '--seats-per-event', String(plan.perEvent)]);
      const client = new pg.Client({ connectionString: urlFor('bench_hot') });
      await client.connect();
      await client.query('VACUUM ANALYZE');
      const seats = (await client.query('SELECT e.name AS event, s.seat_number AS seat FROM seats s JOIN events e ON e.id = s.event_id')).rows;
      await client.end();
      const fresh = async (name) => {
        await admin.query(`DROP DATABASE IF EXISTS bench_hot_${name} WITH (FORCE)`);
        await admin.query(`CREATE DATABASE bench_hot_${name} TEMPLATE bench_hot`);
        return urlFor(`bench_hot_${name}`);
      };
      await levels(ctx, { label: 'PostgreSQL', fresh, seats, read: readPostgres }, plan.postgres, plan, app, load, check);
    } finally {
      await admin.end();
    }
  }

  const runs = summary.length;
  const requests = summary.reduce((n, s) => n + s.locks + s.books, 0);
  ctx.notes.push(
    `Hot path: ${plan.events} events × ${plan.perEvent} seats. At each level both servers run side by side, each on its own fresh database ` +
      `with its own sweeper: ${plan.warmupS} s warm-up each, then ${plan.slices} slices of ${plan.sliceS} s, alternating (seatctl, hand-written, hand-written, seatctl, …): ` +
      `req/s the median of a server's slices, p50/p99 over all its responses. Locks of 1–4 seats for random users, TTL ${TTL_MS / 1000} s, ` +
      `half of them booked; a \`release-expired-locks --watch --interval 1s\` sweeper alongside${pgVersion ? `; PostgreSQL ${pgVersion} with its default durability settings` : ''}; SQLite with seatctl's (WAL, synchronous=FULL) on both servers. autocannon drives from the benchmark's own process ` +
      `on the same ${ctx.cores} cores as the servers and the database; req/s counts HTTP requests (locks and bookings); p50/p99 are per request, from every response's time.`,
  );
  ctx.notes.push(`Load average (1 min) during the hot-path runs: ${load.describe()}.`);
  ctx.notes.push(
    invariantFailures.length === 0
      ? `Hot-path invariants held after all ${runs} runs (${requests.toLocaleString('en-US')} successful locks and bookings checked): no seat booked twice; every 200 in the database; lock tokens contiguous per seat; seatctl: one history row for every lock that ended unbooked (hand-written: the sweeper's rows only, never twice).`
      : `Hot-path invariants FAILED: ${invariantFailures.join(' | ')}`,
  );
  const statuses = summary.flatMap((s) => (s.unexpected > 0 ? [`${s.label}: ${s.unexpected} unexpected responses (${s.statusText})`] : []));
  if (statuses.length > 0) ctx.notes.push(`Hot path, unexpected responses: ${statuses.join('; ')}.`);
  // The table is still printed (with this note); the run then exits 1.
  if (invariantFailures.length > 0) process.exitCode = 1;
}

/**
 * Every level: both servers side by side, each on its own fresh database with
 * its own sweeper, measured in alternating slices. The disk's sync times
 * drift over minutes on a shared machine: runs one after the other would
 * favour whichever ran in the faster minutes, while slices in the order
 * ABBA… give both the same share of a drift that is steady over a few seconds,
 * and the median slice leaves out the odd slice a burst on the disk spoiled.
 */
async function levels(ctx, engine, connectionCounts, plan, app, load, check) {
  for (const connections of connectionCounts) {
    const level = `${engine.label} hot path, ${connections} connection${connections > 1 ? 's' : ''}`;
    ctx.log(`${level}: both servers, ${plan.slices} slices of ${plan.sliceS} s`);
    const sides = {};
    const children = [];
    try {
      for (const kind of Object.keys(SERVERS)) {
        const url = await engine.fresh(`${kind}_${connections}`);
        const server = await startServer(kind, url, app);
        children.push(server, startSweeper(ctx, url));
        sides[kind] = { url, server, workload: new Workload(engine.seats), rps: [], errors: 0, latencies: [] };
      }
      for (const side of Object.values(sides)) await cannon(side.server.port, connections, plan.warmupS, side.workload, null);
      load.start();
      for (let slice = 0; slice < plan.slices; slice++) {
        const side = sides[slice % 4 === 0 || slice % 4 === 3 ? 'seatctl' : 'hand'];
        const run = await cannon(side.server.port, connections, plan.sliceS, side.workload, side.latencies);
        side.rps.push(run.requests.total / run.duration);
        side.errors += run.errors + run.timeouts;
      }
      load.stop();
      await stopAll(children);
    } finally {
      await Promise.all(children.map((child) => child.kill()));
    }
    for (const [kind, side] of Object.entries(sides)) {
      const result = await verify(engine, side.url, side.workload, kind === 'seatctl');
      check(`${engine.label} ${kind} ${connections}c`, { ...result, unexpected: result.unexpected + side.errors });
      side.latencies.sort((a, b) => a - b);
    }
    if (process.env.SEATCTL_BENCH_SLICES) ctx.log(`${level}: req/s by slice: ${Object.entries(sides).map(([k, s]) => `${k} ${s.rps.map((v) => v.toFixed(0)).join(' ')}`).join('; ')}`);
    const rps = (kind) => ctx.median(sides[kind].rps);
    const pct = (kind, p) => percentile(sides[kind].latencies, p);
    const reqTarget = engine.label === 'PostgreSQL' ? 0.8 : connections <= 32 ? 0.9 : undefined;
    const reqS = (v) => `${v.toFixed(0)} req/s`;
    const ms = (v) => `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`;
    ctx.addRow(`${level}: req/s`, rps('seatctl'), rps('hand'), SERVERS.hand, reqTarget && { label: `≥ ${reqTarget}×`, ok: (_, r) => r >= reqTarget }, reqS);
    ctx.addRow(`${level}: p50`, pct('seatctl', 50), pct('hand', 50), SERVERS.hand, undefined, ms);
    const p99Target = engine.label === 'PostgreSQL' ? { label: '≤ 1.5×', ok: (_, r) => r <= 1.5 } : undefined;
    ctx.addRow(`${level}: p99`, pct('seatctl', 99), pct('hand', 99), SERVERS.hand, p99Target, ms);
  }
}

/** Two seatctl server processes on one SQLite file, driven at once: none of their answers may be an error. */
async function twoServers(ctx, engine, plan, app, load, check) {
  ctx.log('hot path, SQLite: two seatctl servers on one file');
  const url = await engine.fresh('two');
  const workload = new Workload(engine.seats);
  const run = await driveServers(ctx, ['seatctl', 'seatctl'], url, [16, 16], workload, plan, app, load);
  const result = await verify(engine, url, workload, true);
  check('SQLite two seatctl servers', result);
  ctx.addTableRow({
    figure: 'SQLite: two seatctl server processes on one file, 2 × 16 connections: errors',
    ours: `${run.unexpected} (of ${run.requests.toLocaleString('en-US')}; ${run.rps.toFixed(0)} req/s)`,
    base: '',
    ratio: '',
    target: '0 errors',
    met: run.unexpected === 0 && result.problems.length === 0 ? 'yes' : '**no**',
  });
}

/**
 * Starts the servers and the sweeper on `url`, warms up, drives every server
 * at once with its own autocannon (connections[i]), stops them all; returns
 * req/s and latency percentiles over the measured part.
 */
async function driveServers(ctx, kinds, url, connections, workload, plan, app, load) {
  const children = [];
  try {
    const servers = await Promise.all(kinds.map((kind) => startServer(kind, url, app)));
    children.push(...servers);
    children.push(startSweeper(ctx, url));
    const drive = (seconds, measure) =>
      Promise.all(servers.map((server, i) => cannon(server.port, connections[i], seconds, workload, measure)));
    await drive(plan.warmupS, null);
    const latencies = [];
    load.start();
    const results = await drive(plan.seconds, latencies);
    load.stop();
    const elapsed = Math.max(...results.map((r) => r.duration));
    await stopAll(children);
    latencies.sort((a, b) => a - b);
    const pct = (p) => percentile(latencies, p);
    const requests = results.reduce((n, r) => n + r.requests.total, 0);
    const transportErrors = results.reduce((n, r) => n + r.errors + r.timeouts, 0);
    return { rps: requests / elapsed, p50: pct(50), p99: pct(99), requests, unexpected: transportErrors + workload.unexpected };
  } finally {
    await Promise.all(children.map((child) => child.kill()));
  }
}

/** The p-th percentile of sorted values (NaN for none). */
function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** The sweeper every server has alongside: a release every second, as in production. */
function startSweeper(ctx, url) {
  return startChild(process.execPath, [ctx.BIN, '--db', url, 'release-expired-locks', '--watch', '--interval', '1s', '--quiet'], 'sweeper');
}

/** Stops servers and sweepers (SIGTERM); each must exit 0. */
async function stopAll(children) {
  const stops = await Promise.all(children.map((child) => child.stop()));
  const failed = stops.filter((s) => s.code !== 0);
  if (failed.length > 0) throw new Error(`a server or the sweeper did not stop cleanly: ${failed.map((s) => `${s.label} ${s.code ?? s.signal}: ${s.stderr.slice(-500)}`).join('; ')}`);
}

/** One autocannon instance: lock, then (half the time) book; each response's time into `latencies` when measuring. */
function cannon(port, connections, seconds, workload, latencies) {
  const instance = autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration: seconds,
    timeout: 30,
    requests: workload.requests(),
  });
  if (latencies !== null) instance.on('response', (_client, _status, _bytes, ms) => latencies.push(ms));
  return instance;
}

/**
 * The requests and what they returned: a deck of free seats per event (seats
 * whose lock was left to expire come back once it has), and every successful
 * lock (seat, token, user) and booking, for the checks afterwards.
 */
class Workload {
  constructor(seats) {
    this.events = new Map();
    for (const { event, seat } of seats) {
      if (!this.events.has(event)) this.events.set(event, { free: [], lapsing: [] });
      this.events.get(event).free.push(seat);
    }
    this.names = [...this.events.keys()];
    for (const e of this.events.values()) shuffle(e.free);
    this.locks = []; // { event, seat, user, token }
    this.books = []; // { event, seat, user }
    this.status = new Map();
    this.unexpected = 0;
    // Lock requests sent and not answered (yet): autocannon drops the requests in flight when a run ends.
    this.pending = new Set();
    this.dry = 0;
    this.users = 0;
  }

  /** 1–4 free seats of one random event; none twice in flight. */
  take() {
    const count = 1 + Math.floor(Math.random() * 4);
    for (let attempt = 0; attempt < 20; attempt++) {
      const event = this.names[Math.floor(Math.random() * this.names.length)];
      const deck = this.events.get(event);
      const now = Date.now();
      while (deck.lapsing.length > 0 && deck.lapsing[0].at <= now) deck.free.push(...deck.lapsing.shift().seats);
      if (deck.free.length < count) continue;
      // Seats come back in lock order: draw at random from the deck, not from its end.
      const seats = [];
      for (let i = 0; i < count; i++) {
        const j = Math.floor(Math.random() * deck.free.length);
        [deck.free[j], deck.free[deck.free.length - 1]] = [deck.free[deck.free.length - 1], deck.free[j]];
        seats.push(deck.free.pop());
      }
      return { event, seats, user: `user-${++this.users}` };
    }
    this.dry++;
    const event = this.names[0];
    return { event, seats: [this.events.get(event).free[0] ?? 'A1'], user: `user-${++this.users}` };
  }

  /** Seats whose lock was left to expire: free again once it has (and the sweeper may or may not have run). */
  lapse(request) {
    this.events.get(request.event).lapsing.push({ at: Date.now() + TTL_MS + 50, seats: request.seats });
  }

  count(status) {
    this.status.set(status, (this.status.get(status) ?? 0) + 1);
    if (status !== 200) this.unexpected++;
  }

  requests() {
    const post = (path, body) => ({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return [
      {
        setupRequest: (req, context) => {
          context.request = this.take();
          context.locked = false;
          this.pending.add(context.request);
          return { ...req, ...post('/lock', { ...context.request, ttlMs: TTL_MS }) };
        },
        onResponse: (status, body, context) => {
          this.pending.delete(context.request);
          this.count(status);
          if (status !== 200) return;
          context.locked = true;
          const { event, user } = context.request;
          for (const s of JSON.parse(body).seats) this.locks.push({ event, seat: s.seat, user, token: Number(s.lockToken ?? s.lock_token) });
        },
      },
      {
        // Half the locks are booked; the other half (and refused ones) lapse. A falsy return starts over with a lock.
        setupRequest: (req, context) => {
          if (!context.locked || Math.random() < 0.5) {
            this.lapse(context.request);
            return null;
          }
          const { event, seats, user } = context.request;
          return { ...req, ...post('/book', { event, seats, user }) };
        },
        onResponse: (status, _body, context) => {
          this.count(status);
          const { event, seats, user } = context.request;
          if (status === 200) for (const seat of seats) this.books.push({ event, seat, user });
          else this.lapse(context.request);
        },
      },
    ];
  }
}

function shuffle(xs) {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
}

/**
 * The database after a run against what the servers answered:
 * - no seat was booked twice, and every 200 booking is a booked seat of that user;
 * - every 200 lock is in the database: its token is the seat's current one
 *   (locked by, or booked by, that user) or an earlier one;
 * - per seat, the tokens of the 200 locks are exactly 1…the seat's token, once each;
 * - history: seatctl writes one row for every lock that ended without a
 *   booking (released by the sweeper, or replaced); the hand-written server
 *   writes none itself, so only the sweeper's rows are there, never two for one lock.
 */
async function verify(engine, url, workload, seatctl) {
  const { seats, history } = await engine.read(url);
  const problems = [];
  const key = (event, seat) => `${event}\u0000${seat}`;
  const booked = new Map();
  for (const b of workload.books) {
    const k = key(b.event, b.seat);
    if (booked.has(k)) problems.push(`${b.seat} of ${b.event} booked twice (${booked.get(k)}, ${b.user})`);
    booked.set(k, b.user);
    const row = seats.get(k);
    if (row?.status !== 'booked' || row.booked_by !== b.user) problems.push(`booking of ${b.seat} by ${b.user} is not in the database`);
  }
  const tokens = new Map();
  for (const l of workload.locks) {
    const k = key(l.event, l.seat);
    if (!tokens.has(k)) tokens.set(k, []);
    tokens.get(k).push(l);
    const row = seats.get(k);
    if (row === undefined || l.token > row.lock_token) problems.push(`lock ${l.seat}#${l.token} is not in the database`);
    else if (l.token === row.lock_token && row.status !== 'available' && row.locked_by !== l.user && row.booked_by !== l.user) {
      problems.push(`${l.seat}#${l.token} is held by ${row.locked_by ?? row.booked_by}, not ${l.user}`);
    }
  }
  // A lock whose answer never came (in flight when a run ended) may be the seat's last token.
  const unanswered = new Set([...workload.pending].flatMap((r) => r.seats.map((seat) => key(r.event, seat))));
  for (const [k, row] of seats) {
    const list = (tokens.get(k) ?? []).map((l) => l.token).sort((a, b) => a - b);
    const answered = unanswered.has(k) && list.length === row.lock_token - 1 ? row.lock_token - 1 : row.lock_token;
    if (list.length !== answered || list.some((t, i) => t !== i + 1)) {
      problems.push(`${k.replace('\u0000', ' ')}: tokens ${list.join(',')} but the seat is at ${row.lock_token}`);
    }
  }
  const logged = new Map();
  for (const h of history) {
    const k = `${key(h.event, h.seat_number)}#${h.lock_token}`;
    if (logged.has(k)) problems.push(`two history rows for ${k}`);
    logged.set(k, h.reason);
  }
  let ended = 0;
  for (const l of workload.locks) {
    const row = seats.get(key(l.event, l.seat));
    const current = row !== undefined && l.token === row.lock_token;
    const k = `${key(l.event, l.seat)}#${l.token}`;
    const inHistory = logged.has(k);
    if (current && row.status !== 'available') {
      if (inHistory) problems.push(`history row for the live lock ${l.seat}#${l.token}`);
      continue;
    }
    ended++;
    if (seatctl && !inHistory) problems.push(`no history row for the ended lock ${l.seat}#${l.token}`);
    if (!seatctl && inHistory && logged.get(k) !== 'expired') problems.push(`unexpected ${logged.get(k)} row for ${l.seat}#${l.token}`);
  }
  const locked = new Set(workload.locks.map((l) => `${key(l.event, l.seat)}#${l.token}`));
  for (const k of logged.keys()) {
    // A lock whose answer never came may have ended too (released once it expired).
    if (!locked.has(k) && !unanswered.has(k.slice(0, k.lastIndexOf('#')))) problems.push(`history row for a lock no one was granted: ${k}`);
  }
  const statusText = [...workload.status].map(([s, n]) => `${n} × ${s}`).join(', ');
  if (workload.dry > 0) problems.push(`the deck of free seats ran dry ${workload.dry} times`);
  return { problems, locks: workload.locks.length, books: workload.books.length, ended, history: history.length, unexpected: workload.unexpected, statusText };
}

const SEATS_SQL = `SELECT e.name AS event, s.seat_number, s.status, s.locked_by, s.booked_by, s.lock_token
  FROM seats s JOIN events e ON e.id = s.event_id`;
const HISTORY_SQL = `SELECT e.name AS event, h.seat_number, h.lock_token, h.reason
  FROM release_history h JOIN events e ON e.id = h.event_id`;

function byKey(rows) {
  return new Map(rows.map((r) => [`${r.event}\u0000${r.seat_number}`, { ...r, lock_token: Number(r.lock_token) }]));
}

async function readSqlite(file) {
  const db = new Database(file, { readonly: true });
  try {
    return { seats: byKey(db.prepare(SEATS_SQL).all()), history: db.prepare(HISTORY_SQL).all() };
  } finally {
    db.close();
  }
}

async function readPostgres(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return { seats: byKey((await client.query(SEATS_SQL)).rows), history: (await client.query(HISTORY_SQL)).rows };
  } finally {
    await client.end();
  }
}

/** An app directory as a user has it: web-server.mjs beside node_modules/seatctl (this checkout). */
function makeApp(work) {
  const app = join(work, 'app');
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  symlinkSync(ROOT, join(app, 'node_modules', 'seatctl'));
  copyFileSync(EXAMPLE, join(app, 'web-server.mjs'));
  return app;
}

async function startServer(kind, url, app) {
  const [script, cwd] = kind === 'seatctl' ? [join(app, 'web-server.mjs'), app] : [HAND_WRITTEN, ROOT];
  const extra = process.env.SEATCTL_BENCH_SERVER_ARGS ? process.env.SEATCTL_BENCH_SERVER_ARGS.split(' ') : [];
  const child = startChild(process.execPath, [...(kind === 'seatctl' ? extra : []), script, '--db', url], kind, { cwd, env: { ...process.env, PORT: '0' } });
  const line = await child.waitFor(/listening on (\d+)/);
  child.port = Number(line[1]);
  return child;
}

const live = new Set();
process.on('exit', () => {
  for (const child of live) child.process.kill('SIGKILL');
});

/** A child process that is killed if the benchmark ends before it does. */
function startChild(command, args, label, options = {}) {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  const child = { process: proc, label, stdout: '', stderr: '', exit: undefined };
  live.add(child);
  const exited = new Promise((resolve) =>
    proc.on('close', (code, signal) => {
      live.delete(child);
      resolve((child.exit = { label, code, signal, stderr: child.stderr }));
    }),
  );
  const waiters = new Set();
  for (const stream of ['stdout', 'stderr']) {
    proc[stream].setEncoding('utf8').on('data', (chunk) => {
      child[stream] += chunk;
      for (const w of waiters) w();
    });
  }
  child.waitFor = (pattern, timeoutMs = 30_000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`${label}: no ${pattern} within ${timeoutMs} ms\n${child.stderr}`)), timeoutMs);
      const check = () => {
        const match = pattern.exec(child.stdout);
        if (match) done(null, match);
        else if (child.exit) done(new Error(`${label} exited (${child.exit.code ?? child.exit.signal}) before ${pattern}\n${child.stderr}`));
      };
      const done = (error, value) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (error) reject(error);
        else resolve(value);
      };
      waiters.add(check);
      exited.then(check);
      check();
    });
  child.stop = async (timeoutMs = 30_000) => {
    if (!child.exit) proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    const exit = await exited;
    clearTimeout(timer);
    return exit;
  };
  child.kill = async () => {
    if (!child.exit) proc.kill('SIGKILL');
    return exited;
  };
  return child;
}

/** The 1-minute load average, sampled every second while runs are measured. */
class LoadSampler {
  constructor() {
    this.samples = [];
    this.timer = undefined;
  }

  sample() {
    this.samples.push(Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]));
  }

  start() {
    this.sample();
    this.timer = setInterval(() => this.sample(), 1000);
  }

  stop() {
    clearInterval(this.timer);
    this.sample();
  }

  describe() {
    if (this.samples.length === 0) return 'not sampled';
    const s = [...this.samples].sort((a, b) => a - b);
    return `min ${s[0].toFixed(2)}, median ${s[Math.floor(s.length / 2)].toFixed(2)}, max ${s[s.length - 1].toFixed(2)} (${s.length} samples)`;
  }
}

