// The release-lag figures of `npm run bench` (--only lag): how late expired
// locks are put back on sale (released_at − locked_until, both by the
// database clock, from the release history) under a realistic churn, for the
// precise sweeper (`release-expired-locks --watch`, default --max-lag 1s) next
// to a crontab run every 60 s and a sweeper polling every 1 s, in the same run,
// on the same workload, each on its own copy of the database; and what the
// precise sweeper costs while nothing expires.
import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate, openDatabase, seedSynthetic } from 'seatctl';

const CHILD = fileURLToPath(new URL('./sweeper-child.js', import.meta.url));
const TICK_MS = 100;
const CLOCK_TICKS = 100; // /proc/<pid>/stat counts CPU time in 1/100 s

/** A deterministic stream of numbers in [0, 1): every sweeper sees the same workload. */
function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The churn: `rate` locks a second on seats that are free, lifetimes spread
 * evenly on a log scale from 1 s to 5 min, a fifth of them booked before they
 * expire. Each seat is locked once, so no lock is taken over before release.
 */
function workload(rate, seconds) {
  const next = random(11);
  const ops = [];
  const count = Math.round(rate * seconds);
  for (let i = 0; i < count; i++) {
    const at = (i / rate) * 1000;
    const ttl = Math.round(1000 * Math.exp(Math.log(1) + next() * (Math.log(300) - Math.log(1))));
    ops.push({ at, kind: 'lock', seat: i + 1, ttl });
    const bookAt = at + next() * ttl * 0.9;
    if (next() < 0.2 && bookAt < seconds * 1000) ops.push({ at: bookAt, kind: 'book', seat: i + 1 });
  }
  return ops.sort((a, b) => a.at - b.at);
}

const percentile = (sorted, p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]);
const fmt = (ms) => (Number.isNaN(ms) ? '–' : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);

/** CPU seconds a process has used so far, from the kernel's accounting. */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

function startChild(command, args, log) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk) => log(`${args[0]}: ${chunk.trim()}`));
  const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    exited,
    get stdout() {
      return stdout;
    },
    async until(text, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!stdout.includes(text)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${args.join(' ')}: no "${text}" (${stdout})`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
  };
}

/** Plays the workload on several databases at once; resolves when it has all been written. */
async function play(ops, dbs) {
  const started = performance.now();
  let index = 0;
  while (index < ops.length) {
    const elapsed = performance.now() - started;
    const due = [];
    while (index < ops.length && ops[index].at <= elapsed) due.push(ops[index++]);
    if (due.length > 0) {
      await Promise.all(
        dbs.map((db) =>
          db.knex.transaction(async (trx) => {
            for (const op of due) {
              if (op.kind === 'lock') {
                await trx.raw(
                  `UPDATE seats SET status = 'locked', locked_by = 'buyer', locked_until = ${db.engine.addMs(db.engine.now, '?')},
                     locked_at = ${db.engine.now}, lock_token = lock_token + 1 WHERE id = ? AND status = 'available'`,
                  [op.ttl, op.seat],
                );
              } else {
                await trx.raw(
                  `UPDATE seats SET status = 'booked', booked_by = 'buyer', booked_at = ${db.engine.now},
                     locked_by = NULL, locked_until = NULL, locked_at = NULL
                   WHERE id = ? AND status = 'locked' AND locked_until > ${db.engine.now}`,
                  [op.seat],
                );
              }
            }
          }),
        ),
      );
    }
    const wait = TICK_MS - ((performance.now() - started) % TICK_MS);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** Lags (ms) of the locks released for having expired, whose expiry fell within the run. */
async function lags(db, until) {
  const rows = await db.knex('release_history').where('reason', 'expired').select('locked_until', 'released_at');
  return rows
    .map((row) => ({ until: db.engine.readInstant(row.locked_until), at: db.engine.readInstant(row.released_at) }))
    .filter((row) => row.until.getTime() <= until)
    .map((row) => row.at.getTime() - row.until.getTime())
    .sort((a, b) => a - b);
}

/** Locks that expired by `until` and are still locked. */
async function stillLocked(db, until) {
  const [row] = await db
    .knex('seats')
    .where('status', 'locked')
    .where('locked_until', '<=', db.engine.bindInstant(new Date(until)))
    .count({ n: '*' });
  return Number(row.n);
}

/**
 * One engine: the same churn on three copies of one database, each with its
 * sweeper, then the idle cost of the precise one.
 */
async function lagForEngine({ engine, fresh, BIN, QUICK, log }) {
  const seconds = QUICK ? 6 : 90;
  const rate = 50; // 3,000 locks a minute
  const ops = workload(rate, seconds);
  const strategies = QUICK ? ['precise', 'poll'] : ['precise', 'poll', 'cron'];
  const urls = {};
  for (const name of strategies) urls[name] = await fresh(`lag-${name}`);
  const dbs = {};
  for (const name of strategies) dbs[name] = await openDatabase({ url: urls[name] });
  log(`${engine}: ${ops.filter((op) => op.kind === 'lock').length} locks over ${seconds} s at ${rate}/s, sweepers: ${strategies.join(', ')}`);

  const children = {};
  const cron = [];
  let cronTimer;
  let cronRuns = 0;
  let ended;
  let cpuUse;
  const load = [];
  try {
  children.precise = startChild(process.execPath, [BIN, '--db', urls.precise, 'release-expired-locks', '--watch', '--quiet'], log);
  children.poll = startChild(process.execPath, [CHILD, urls.poll, 'poll', '1000', '1000'], log);
  await children.poll.until('ready');
  // Past the watcher's start-up: its first heartbeat is written.
  for (let i = 0; i < 600 && !(await dbs.precise.knex('release_runs').first()); i++) await new Promise((r) => setTimeout(r, 50));
  cronTimer =
    strategies.includes('cron') &&
    setInterval(() => {
      cronRuns++;
      cron.push(startChild(process.execPath, [BIN, '--db', urls.cron, 'release-expired-locks', '--quiet'], log).exited);
    }, 60_000);
  load.push(loadavg()[0]);
  const cpu = { precise: cpuSeconds(children.precise.child.pid), poll: cpuSeconds(children.poll.child.pid) };
  const started = performance.now();
  await play(ops, strategies.map((name) => dbs[name]));
  ended = Date.now();
  const wall = (performance.now() - started) / 1000;
  cpuUse = {
    precise: (cpuSeconds(children.precise.child.pid) - cpu.precise) / wall,
    poll: (cpuSeconds(children.poll.child.pid) - cpu.poll) / wall,
  };
  // Every lock that expired during the run released (the crontab's next run may be a minute away).
  for (const name of strategies) {
    const deadline = Date.now() + 75_000;
    while ((await stillLocked(dbs[name], ended)) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  }
  load.push(loadavg()[0]);
  } finally {
    if (cronTimer) clearInterval(cronTimer);
    await Promise.all(cron);
    for (const child of Object.values(children)) child.child.kill('SIGTERM');
    await Promise.all(Object.values(children).map((child) => child.exited));
  }

  const results = [];
  for (const name of strategies) {
    const sorted = await lags(dbs[name], ended);
    results.push({
      engine,
      sweeper: {
        precise: '`--watch` (precise, --max-lag 1s)',
        poll: 'polling every 1 s',
        cron: `crontab every 60 s (${cronRuns} runs)`,
      }[name],
      name,
      count: sorted.length,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      max: sorted.at(-1) ?? NaN,
      cpu: cpuUse[name],
    });
    await dbs[name].close();
  }

  // Idle: locks exist, none expires for minutes.
  const idleUrl = await fresh('lag-idle', { active: 1000 });
  const idleSeconds = QUICK ? 4 : 30;
  log(`${engine}: idle precise sweeper for ${idleSeconds} s`);
  const idle = startChild(process.execPath, [CHILD, idleUrl, 'precise', '60000', '1000'], log);
  let idleLoad;
  try {
    await idle.until('ready');
    idleLoad = loadavg()[0];
    await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
  } finally {
    idle.child.kill('SIGTERM');
    await idle.exited;
  }
  const measured = JSON.parse(idle.stdout.trim().split('\n').at(-1));
  return {
    results,
    idle: {
      engine,
      cpuPercent: (100 * measured.cpuMs) / measured.wallMs,
      queriesPerSecond: measured.queries / (measured.wallMs / 1000),
      wakesPerSecond: measured.wakes / (measured.wallMs / 1000),
      seconds: measured.wallMs / 1000,
    },
    load: [...load, idleLoad],
  };
}

/**
 * Runs the lag figures on SQLite (and PostgreSQL when `pgAdmin` gives a URL)
 * and returns their markdown, to print after the main table.
 */
export async function benchLag({ work, QUICK, log, BIN, pgAdmin, notes }) {
  const sections = [];
  const engines = [];
  // SQLite: one seeded file, copied for each sweeper.
  const seatsNeeded = QUICK ? 1000 : 5000;
  const sqliteSource = join(work, 'lag-source.db');
  {
    const db = await openDatabase({ url: sqliteSource, create: true });
    await migrate(db);
    await seedSynthetic(db, { events: seatsNeeded / 1000, seatsPerEvent: 1000 });
    await db.close();
  }
  engines.push({
    engine: 'SQLite',
    fresh: async (name, extra) => {
      const file = join(work, `${name}.db`);
      copyFileSync(sqliteSource, file);
      if (extra) {
        const db = await openDatabase({ url: file });
        await seedSynthetic(db, { events: 1, seatsPerEvent: 1000, ...extra, reset: true });
        await db.close();
      }
      return file;
    },
  });
  if (!QUICK && pgAdmin) {
    const admin = await pgAdmin();
    if (admin) {
      const url = (name) => {
        const u = new URL(admin.url);
        u.pathname = `/${name}`;
        return u.toString();
      };
      await admin.client.query('DROP DATABASE IF EXISTS lag_source WITH (FORCE)');
      await admin.client.query('CREATE DATABASE lag_source');
      const db = await openDatabase({ url: url('lag_source') });
      await migrate(db);
      await seedSynthetic(db, { events: seatsNeeded / 1000, seatsPerEvent: 1000 });
      await db.close();
      engines.push({
        engine: 'PostgreSQL',
        fresh: async (name, extra) => {
          const dbName = name.replace(/-/g, '_');
          await admin.client.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
          await admin.client.query(`CREATE DATABASE ${dbName} TEMPLATE lag_source`);
          if (extra) {
            const copy = await openDatabase({ url: url(dbName) });
            await seedSynthetic(copy, { events: 1, seatsPerEvent: 1000, ...extra, reset: true });
            await copy.close();
          }
          return url(dbName);
        },
      });
    }
  }
  const all = [];
  for (const engine of engines) all.push(await lagForEngine({ ...engine, BIN, QUICK, log }));

  const target = (r) => {
    if (r.name !== 'precise') return '';
    const ok = r.p50 <= 250 && r.p99 <= 1000 && r.max <= 1500;
    return `p50 ≤ 250 ms, p99 ≤ 1 s, max ≤ 1.5 s: ${ok ? 'yes' : '**no**'}`;
  };
  sections.push(
    `#### Release lag under churn (3,000 locks a minute, lifetimes 1 s–5 min log-uniform, a fifth booked in time; ${QUICK ? 6 : 90} s)\n`,
    '| engine | sweeper | expired locks released | lag p50 | lag p99 | lag max | CPU during the churn | target |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...all.flatMap((e) =>
      e.results.map(
        (r) =>
          `| ${r.engine} | ${r.sweeper} | ${r.count.toLocaleString('en-US')} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.max)} | ${Number.isFinite(r.cpu) ? `${(100 * r.cpu).toFixed(1)}% of a core` : '–'} | ${target(r)} |`,
      ),
    ),
    '',
    `#### Idle cost of the precise sweeper (1,000 locks, none expiring for a minute or more)\n`,
    '| engine | CPU | queries per second | wake-ups per second | target |',
    '| --- | --- | --- | --- | --- |',
    ...all.map(({ idle }) => {
      const ok = idle.cpuPercent <= 1 && idle.queriesPerSecond <= 2;
      return `| ${idle.engine} | ${idle.cpuPercent.toFixed(2)}% of a core | ${idle.queriesPerSecond.toFixed(2)} | ${idle.wakesPerSecond.toFixed(2)} | ≤ 1% and ≤ 2 queries/s: ${ok ? 'yes' : '**no**'} |`;
    }),
  );
  notes.push(
    `Lag runs: load average ${all.map((e) => `${e.idle.engine} ${e.load.map((l) => l.toFixed(1)).join(' → ')}`).join('; ')} (start of the churn → its end → the idle measurement; ${cpus().length} cores).`,
  );
  return sections.join('\n');
}
