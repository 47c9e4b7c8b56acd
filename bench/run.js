#!/usr/bin/env node
// npm run bench [-- --quick] [-- --runs N] [-- --only release,…,hotpath]
//
// Measures seatctl side by side with the database engine's own floor, in one
// run, each figure several times (fresh database copies, runs interleaved so
// that a noisy neighbour hurts every side alike), and prints a markdown table
// of medians and ratios. Absolute times on a shared machine mean little; the
// ratios are the result.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { findServerBinaries, startPostgres } from '../test/support/postgres-server.js';
import { benchDjango } from './existing-db.js';
import { benchHotpath } from './hotpath.js';
import { benchLag } from './lag.js';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const RUNS = Number(args[args.indexOf('--runs') + 1]) || (QUICK ? 3 : 5);
// --only release,noop,memory,seed,latency,postgres,django,lag,hotpath: a subset, for working on one figure.
const ONLY = args.includes('--only') ? new Set(args[args.indexOf('--only') + 1].split(',')) : undefined;
const wanted = (part) => ONLY === undefined || ONLY.has(part);
const BIN = fileURLToPath(new URL('../bin/seatctl.cjs', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'seatctl-bench-'));
const rows = [];
const notes = [];
let pgServer;

const log = (message) => process.stderr.write(`bench: ${message}\n`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

/** Runs a command to completion; stdout to a file (or nowhere). Returns milliseconds. */
function timed(command, commandArgs, { stdoutFile, env, input } = {}) {
  const out = stdoutFile ? openSync(stdoutFile, 'w') : 'ignore';
  const started = process.hrtime.bigint();
  const result = spawnSync(command, commandArgs, {
    stdio: [input === undefined ? 'ignore' : 'pipe', out, 'pipe'],
    input,
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (typeof out === 'number') closeSync(out);
  if (result.status !== 0) {
    throw new Error(`${command} ${commandArgs.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr}`);
  }
  return ms;
}

const seatctl = (cliArgs, options) => timed(BIN, cliArgs, options);

function sqliteFresh(source, name) {
  const copy = join(work, name);
  for (const suffix of ['', '-wal', '-shm']) rmSync(copy + suffix, { force: true });
  copyFileSync(source, copy);
  // Written out before the run it is for: a release's own syncs must not wait
  // behind the kernel writing back the copy (tens of MB at the full size).
  spawnSync('sync');
  return copy;
}

// The sqlite3 shell (Debian's is 3.40, before unixepoch('subsec')) with the same clock in milliseconds.
const SQLITE_NOW = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
const SQLITE_FLOOR = `UPDATE seats SET status = 'available', locked_by = NULL, locked_until = NULL, locked_at = NULL
  WHERE status = 'locked' AND locked_until <= ${SQLITE_NOW}
  RETURNING id, event_id, seat_number, locked_by, locked_until;`;
// What seatctl's release writes, as one transaction: the history rows (with the holder), then the seats.
const SQLITE_FLOOR_HISTORY = `BEGIN IMMEDIATE;
  INSERT INTO release_history (event_id, seat_id, seat_number, locked_by, locked_until, lock_token, released_at, reason)
  SELECT event_id, id, seat_number, locked_by, locked_until, lock_token, ${SQLITE_NOW}, 'expired' FROM seats
  WHERE status = 'locked' AND locked_until <= ${SQLITE_NOW} ORDER BY id
  RETURNING event_id, seat_id, seat_number, locked_by, locked_until, released_at;
  UPDATE seats SET status = 'available', locked_by = NULL, locked_until = NULL, locked_at = NULL
  WHERE status = 'locked' AND id IN (SELECT seat_id FROM release_history WHERE reason = 'expired');
  COMMIT;`;
const PG_FLOOR = `UPDATE seats SET status = 'available', locked_by = NULL, locked_until = NULL, locked_at = NULL
  WHERE status = 'locked' AND locked_until <= clock_timestamp()
  RETURNING id, event_id, seat_number, locked_by, locked_until;`;
const PG_FLOOR_HISTORY = `BEGIN;
  WITH released AS (
    UPDATE seats AS s SET status = 'available', locked_by = NULL, locked_until = NULL, locked_at = NULL
    FROM (SELECT id, locked_by, locked_until FROM seats WHERE status = 'locked' AND locked_until <= clock_timestamp() FOR UPDATE) AS p
    WHERE s.id = p.id
    RETURNING s.id, s.event_id, s.seat_number, s.lock_token, p.locked_by, p.locked_until)
  INSERT INTO release_history (event_id, seat_id, seat_number, locked_by, locked_until, lock_token, released_at, reason)
  SELECT event_id, id, seat_number, locked_by, locked_until, lock_token, clock_timestamp(), 'expired' FROM released
  RETURNING event_id, seat_id, seat_number, locked_by, locked_until, released_at;
  COMMIT;`;

/** A row of medians and their ratio; `unit` is 'ms', another unit's name, or a function that formats a value. */
function addRow(figure, ours, base, baseLabel, target, unit = 'ms') {
  const ratio = ours / base;
  const show =
    typeof unit === 'function' ? unit : unit === 'ms' ? fmtMs : (v) => `${v < 10 ? v.toPrecision(2) : v.toFixed(0)} ${unit}`;
  rows.push({
    figure,
    ours: show(ours),
    base: `${show(base)} (${baseLabel})`,
    ratio: `${ratio.toFixed(2)}×`,
    target: target?.label ?? '',
    met: target ? (target.ok(ours, ratio) ? 'yes' : '**no**') : '',
  });
}

/** `seatctl seed` of synthetic data: the benchmark's databases are made by the tool itself. */
const seedArgs = (db, events, seatsPerEvent, expired) => [
  '--db',
  db,
  'seed',
  '--reset',
  '--events',
  String(events),
  '--seats-per-event',
  String(seatsPerEvent),
  '--expired',
  String(expired),
];

/** Seeds a SQLite database and returns its path. */
function seedSqlite(name, events, seatsPerEvent, expired) {
  const file = join(work, name);
  seatctl(seedArgs(file, events, seatsPerEvent, expired));
  // A checkpoint, so every copy starts with the same single file.
  const db = new Database(file);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return file;
}

function benchSqliteRelease(label, events, seatsPerEvent, expired, targetRatio) {
  log(`SQLite release ${label}`);
  const source = seedSqlite(`release-${expired}.db`, events, seatsPerEvent, expired);
  const times = { quiet: [], json: [], floor: [], floorHistory: [] };
  for (let run = 0; run < RUNS; run++) {
    times.quiet.push(seatctl(['--db', sqliteFresh(source, 'q.db'), 'release-expired-locks', '--quiet']));
    times.json.push(
      seatctl(['--db', sqliteFresh(source, 'j.db'), 'release-expired-locks', '--json'], {
        stdoutFile: join(work, 'out.json'),
      }),
    );
    times.floor.push(
      timed('sqlite3', [sqliteFresh(source, 'f.db'), SQLITE_FLOOR], { stdoutFile: join(work, 'floor.out') }),
    );
    times.floorHistory.push(
      timed('sqlite3', [sqliteFresh(source, 'h.db'), SQLITE_FLOOR_HISTORY], { stdoutFile: join(work, 'floor-h.out') }),
    );
  }
  const floor = median(times.floor);
  const floorHistory = median(times.floorHistory);
  const target = targetRatio ? { label: `≤ ${targetRatio}× floor`, ok: (_, r) => r <= targetRatio } : undefined;
  addRow(`SQLite release ${label}, --quiet`, median(times.quiet), floor, 'sqlite3 UPDATE … RETURNING', target);
  addRow(`SQLite release ${label}, --json > file`, median(times.json), floor, 'sqlite3 UPDATE … RETURNING', target);
  addRow(`SQLite release ${label}, --quiet`, median(times.quiet), floorHistory, 'sqlite3 same SQL incl. history');
  addRow(`SQLite release ${label}, --json > file`, median(times.json), floorHistory, 'sqlite3 same SQL incl. history');
}

function benchNoop() {
  log('no-op');
  const sizes = QUICK
    ? [[10, 1000]]
    : [
        [10, 1000],
        [1000, 1000],
      ];
  const files = sizes.map(([events, per]) => {
    const file = seedSqlite(`noop-${events * per}.db`, events, per, 0);
    seatctl(['--db', file, 'release-expired-locks', '--quiet']); // the heartbeat row exists, as in production
    return file;
  });
  const n = QUICK ? 10 : 30;
  const times = files.map(() => []);
  const bare = [];
  for (let run = 0; run < n; run++) {
    bare.push(timed(process.execPath, ['-e', '0']));
    files.forEach((file, i) => times[i].push(seatctl(['--db', file, 'release-expired-locks', '--quiet'])));
  }
  const node = median(bare);
  sizes.forEach(([events, per], i) => {
    addRow(`no-op release, ${(events * per).toLocaleString('en-US')} seats`, median(times[i]), node, 'node -e 0', {
      label: '≤ 2× node -e 0',
      ok: (_, r) => r <= 2,
    });
  });
  if (files.length === 2) {
    addRow('no-op release, 1,000,000 vs 10,000 seats', median(times[1]), median(times[0]), 'no-op at 10,000 seats', {
      label: '≤ 1.2×',
      ok: (_, r) => r <= 1.2,
    });
  }
}

/** Peak resident memory of a child process, from the kernel's own accounting. */
function peakRss(command, commandArgs, stdoutFile) {
  const python = spawnSync(
    'python3',
    [
      '-c',
      'import resource, subprocess, sys\nout = open(sys.argv[1], "w")\nr = subprocess.run(sys.argv[2:], stdout=out)\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -1)',
      stdoutFile,
      command,
      ...commandArgs,
    ],
    { encoding: 'utf8' },
  );
  if (python.status === 0 && Number(python.stdout) > 0) return Number(python.stdout) / 1024;
  // Without python3: sample the high-water mark the kernel keeps for the process.
  const out = openSync(stdoutFile, 'w');
  const child = spawnSync(
    'sh',
    [
      '-c',
      `"$@" & pid=$!; peak=0; while kill -0 $pid 2>/dev/null; do v=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null); [ -n "$v" ] && peak=$v; sleep 0.01; done; wait $pid; echo $peak >&2`,
      'sh',
      command,
      ...commandArgs,
    ],
    { stdio: ['ignore', out, 'pipe'], encoding: 'utf8' },
  );
  closeSync(out);
  return Number(child.stderr.trim().split('\n').pop()) / 1024;
}

function benchMemory() {
  const [events, per, expired] = QUICK ? [10, 1000, 10_000] : [1000, 1000, 1_000_000];
  log(`memory: releasing ${expired} locks`);
  const source = seedSqlite('memory.db', events, per, expired);
  const label = `${expired.toLocaleString('en-US')} expired locks`;
  const baseline = peakRss(process.execPath, ['-e', '0'], join(work, 'node.out'));
  for (const [format, cliArgs] of [
    ['text report', []],
    ['--json', ['--json']],
  ]) {
    const mb = peakRss(
      BIN,
      ['--db', sqliteFresh(source, 'm.db'), 'release-expired-locks', ...cliArgs],
      join(work, 'mem.out'),
    );
    addRow(
      `peak RSS releasing ${label}, ${format} to a file`,
      mb,
      baseline,
      'node -e 0',
      { label: '≤ 100 MB', ok: (v) => v <= 100 },
      'MB',
    );
  }
}

function benchSeed() {
  const [events, per] = QUICK ? [10, 1000] : [1000, 1000];
  log(`seed ${events * per} seats`);
  const file = join(work, 'seed.db');
  const times = [];
  for (let run = 0; run < (QUICK ? 2 : 3); run++) {
    rmSync(file, { force: true });
    times.push(seatctl(seedArgs(file, events, per, (events * per) / 10)));
  }
  const bare = median([0, 1, 2].map(() => timed(process.execPath, ['-e', '0'])));
  addRow(
    `seed ${(events * per).toLocaleString('en-US')} seats (SQLite)`,
    median(times),
    bare,
    'node -e 0',
    QUICK ? undefined : { label: '≤ 10 s', ok: (v) => v <= 10_000 },
  );
  return { events, per };
}

/** Single-seat `seatctl lock` calls on free seats, on an idle database and while a big release runs. */
function lockLatency(engineLabel, freshDatabase, freeSeats, releaseSize) {
  const calls = QUICK ? 5 : 20;
  const lockOnce = (url, seat) =>
    seatctl(['--db', url, 'lock', seat.event, seat.seat, '--user', 'bench', '--ttl', '1m']);
  const idleUrl = freshDatabase('idle');
  const idle = freeSeats.slice(0, calls).map((seat) => lockOnce(idleUrl, seat));
  const busyUrl = freshDatabase('busy');
  const release = spawn(BIN, ['--db', busyUrl, 'release-expired-locks', '--quiet'], { stdio: 'ignore' });
  // The calls below block this process's event loop: ask the kernel whether the release still runs.
  const releaseRunning = () => {
    try {
      return !/^State:\s+Z/m.test(readFileSync(`/proc/${release.pid}/status`, 'utf8'));
    } catch {
      return false;
    }
  };
  spawnSync('sleep', ['0.4']); // past the release's start-up, into its batches
  const busy = [];
  let overlapped = 0;
  for (const seat of freeSeats.slice(calls, 2 * calls)) {
    busy.push(lockOnce(busyUrl, seat));
    if (releaseRunning()) overlapped++;
  }
  return new Promise((resolve) => {
    const finish = () => {
      addRow(
        `${engineLabel}: lock during a ${releaseSize} release, median of ${calls}`,
        median(busy),
        median(idle),
        'same on an idle database',
        {
          label: '≤ 1.3×',
          ok: (_, r) => r <= 1.3,
        },
      );
      addRow(
        `${engineLabel}: lock during a ${releaseSize} release, worst of ${calls}`,
        Math.max(...busy),
        Math.max(...idle),
        'worst on an idle database',
        {
          label: '≤ 2×',
          ok: (_, r) => r <= 2,
        },
      );
      if (overlapped < calls)
        notes.push(
          `${engineLabel}: the release ended before ${calls - overlapped} of the ${calls} lock calls during it.`,
        );
      resolve();
    };
    if (release.exitCode !== null) finish();
    else release.on('exit', finish);
  });
}

async function benchSqliteLockLatency() {
  const [events, per, expired] = QUICK ? [10, 1100, 10_000] : [1000, 1050, 1_000_000];
  log(`SQLite lock latency during a ${expired}-lock release`);
  const source = seedSqlite('latency.db', events, per, expired);
  const db = new Database(source, { readonly: true });
  const free = db
    .prepare(
      "SELECT e.name AS event, s.seat_number AS seat FROM seats s JOIN events e ON e.id = s.event_id WHERE s.status = 'available' ORDER BY s.id DESC LIMIT 100",
    )
    .all();
  db.close();
  await lockLatency(
    'SQLite',
    (name) => sqliteFresh(source, `latency-${name}.db`),
    free,
    expired.toLocaleString('en-US'),
  );
}

/** A PostgreSQL server for the lag figures, with a client of its own, or undefined (see postgresAdminUrl). */
async function lagPostgres() {
  const url = await postgresAdminUrl();
  if (url === undefined) return undefined;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  lagClients.push(client);
  return { url, client };
}
const lagClients = [];

let pgAdminUrl;
/** The PostgreSQL server every PostgreSQL figure uses (started once), or undefined, with a note, when there is none. */
function postgresAdminUrl() {
  pgAdminUrl ??= (async () => {
    if (findServerBinaries() === undefined && !process.env.TEST_DATABASE_URL) {
      notes.push('PostgreSQL: no server binaries installed and no TEST_DATABASE_URL; PostgreSQL figures skipped.');
      return undefined;
    }
    if (process.env.TEST_DATABASE_URL) return process.env.TEST_DATABASE_URL;
    log('PostgreSQL: starting a throwaway server');
    pgServer = await startPostgres();
    return pgServer.adminUrl;
  })();
  return pgAdminUrl;
}

async function benchPostgres() {
  const adminUrl = await postgresAdminUrl();
  if (adminUrl === undefined) return;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const urlFor = (name) => {
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    return url.toString();
  };
  const fresh = async (template, name) => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
    return urlFor(name);
  };
  const seeded = async (name, events, per, expired) => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
    seatctl(seedArgs(urlFor(name), events, per, expired));
    const client = new pg.Client({ connectionString: urlFor(name) });
    await client.connect();
    await client.query('VACUUM ANALYZE');
    await client.end();
  };
  try {
    const version = (await admin.query('SHOW server_version')).rows[0].server_version;
    notes.unshift(
      `PostgreSQL ${version}${pgServer ? ' (a throwaway cluster started as the tests start it, default durability settings)' : ' (TEST_DATABASE_URL)'}.`,
    );
    const [events, per, expired] = QUICK ? [10, 1000, 1000] : [1000, 1000, 100_000];
    const label = `${(events * per).toLocaleString('en-US')}/${expired.toLocaleString('en-US')}`;
    log(`PostgreSQL release ${label}`);
    await seeded('bench_release', events, per, expired);
    const psqlArgs = (url, sql) => [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql];
    const times = { quiet: [], json: [], floor: [], floorHistory: [] };
    for (let run = 0; run < RUNS; run++) {
      times.quiet.push(
        seatctl(['--db', await fresh('bench_release', 'bench_run'), 'release-expired-locks', '--quiet']),
      );
      times.json.push(
        seatctl(['--db', await fresh('bench_release', 'bench_run'), 'release-expired-locks', '--json'], {
          stdoutFile: join(work, 'pg.json'),
        }),
      );
      times.floor.push(
        timed('psql', psqlArgs(await fresh('bench_release', 'bench_run'), PG_FLOOR), {
          stdoutFile: join(work, 'pg-floor.out'),
        }),
      );
      const historyUrl = await fresh('bench_release', 'bench_run');
      times.floorHistory.push(
        timed('psql', [historyUrl, '-X', '-q', '-v', 'ON_ERROR_STOP=1'], {
          input: PG_FLOOR_HISTORY,
          stdoutFile: join(work, 'pg-floor-h.out'),
        }),
      );
    }
    const target = QUICK ? undefined : { label: '≤ 1.5× floor', ok: (_, r) => r <= 1.5 };
    addRow(
      `PostgreSQL release ${label}, --quiet`,
      median(times.quiet),
      median(times.floor),
      'psql UPDATE … RETURNING',
      target,
    );
    addRow(
      `PostgreSQL release ${label}, --json > file`,
      median(times.json),
      median(times.floor),
      'psql UPDATE … RETURNING',
      target,
    );
    addRow(
      `PostgreSQL release ${label}, --quiet`,
      median(times.quiet),
      median(times.floorHistory),
      'psql same SQL incl. history',
    );

    // Statistics that say no seat is locked (ANALYZE ran before the rush), then many expired
    // locks: the release must find each batch's rows by id, as fast as after a fresh ANALYZE.
    const [se, sx] = QUICK ? [30, 5_000] : [300, 50_000];
    const staleLabel = `${(se * 1000).toLocaleString('en-US')}/${sx.toLocaleString('en-US')}`;
    log(`PostgreSQL release ${staleLabel} under stale statistics`);
    await seeded('bench_stale', se, 1000, 0);
    {
      const client = new pg.Client({ connectionString: urlFor('bench_stale') });
      await client.connect();
      // Autoanalyze must not fix the statistics between the locks and the release.
      await client.query('ALTER TABLE seats SET (autovacuum_enabled = false)');
      await client.query('ANALYZE seats');
      await client.end();
    }
    const staleTimes = { stale: [], analysed: [] };
    for (let run = 0; run < RUNS; run++) {
      for (const kind of ['stale', 'analysed']) {
        const url = await fresh('bench_stale', 'bench_run');
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        await client.query(
          `UPDATE seats SET status = 'locked', locked_by = 'rush', locked_until = now() - interval '1 minute',
             locked_at = now() - interval '6 minutes', lock_token = lock_token + 1
           WHERE id % $1 = 0`,
          [Math.round((se * 1000) / sx)],
        );
        if (kind === 'analysed') await client.query('ANALYZE seats');
        await client.end();
        staleTimes[kind].push(seatctl(['--db', url, 'release-expired-locks', '--quiet']));
      }
    }
    addRow(
      `PostgreSQL release ${staleLabel} under stale statistics (ANALYZE saw no lock), --quiet`,
      median(staleTimes.stale),
      median(staleTimes.analysed),
      'the same release after ANALYZE',
      QUICK ? undefined : { label: '≤ 2×', ok: (_, r) => r <= 2 },
    );

    const [le, lp, lx] = QUICK ? [10, 1100, 10_000] : [1000, 1050, 1_000_000];
    log(`PostgreSQL lock latency during a ${lx}-lock release`);
    await seeded('bench_latency', le, lp, lx);
    const client = new pg.Client({ connectionString: urlFor('bench_latency') });
    await client.connect();
    const free = (
      await client.query(
        "SELECT e.name AS event, s.seat_number AS seat FROM seats s JOIN events e ON e.id = s.event_id WHERE s.status = 'available' ORDER BY s.id DESC LIMIT 100",
      )
    ).rows;
    await client.end();
    const urls = {};
    for (const name of ['idle', 'busy']) urls[name] = await fresh('bench_latency', `bench_latency_${name}`);
    await lockLatency('PostgreSQL', (name) => urls[name], free, lx.toLocaleString('en-US'));
  } finally {
    await admin.end();
  }
}

function machine() {
  const sqliteCli = spawnSync('sqlite3', ['--version'], { encoding: 'utf8' }).stdout.split(' ')[0];
  const db = new Database(':memory:');
  const embedded = db.prepare('SELECT sqlite_version() AS v').get().v;
  db.close();
  const cpu = cpus();
  return `${cpu.length} cores (${cpu[0]?.model ?? 'unknown CPU'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, SQLite ${embedded} in seatctl (better-sqlite3), sqlite3 shell ${sqliteCli}`;
}

async function main() {
  if (spawnSync('sqlite3', ['--version']).status !== 0) {
    throw new Error('the sqlite3 shell is needed for the floor: apt-get install sqlite3');
  }
  if (!existsSync(join(fileURLToPath(new URL('..', import.meta.url)), 'dist', 'cli.cjs')))
    throw new Error('run `npm run build` first');
  const started = Date.now();
  log(`working in ${work}, ${RUNS} runs per figure${QUICK ? ' (quick)' : ''}`);
  if (wanted('release')) {
    benchSqliteRelease('10,000/1,000', 10, 1000, 1000);
    if (!QUICK) {
      benchSqliteRelease('100,000/10,000', 100, 1000, 10_000);
      benchSqliteRelease('1,000,000/100,000', 1000, 1000, 100_000, 1.5);
    }
  }
  if (wanted('noop')) benchNoop();
  if (wanted('memory')) benchMemory();
  if (wanted('seed')) benchSeed();
  if (wanted('latency')) await benchSqliteLockLatency();
  if (wanted('postgres')) await benchPostgres();
  if (wanted('django')) {
    benchDjango({ work, RUNS, QUICK, log, timed, seatctl, sqliteFresh, addRow, median, notes, BIN });
  }
  let lagTables = '';
  if (wanted('lag')) lagTables = await benchLag({ work, QUICK, log, BIN, pgAdmin: lagPostgres, notes });
  if (wanted('hotpath')) {
    await benchHotpath({
      work,
      QUICK,
      log,
      seatctl,
      addRow,
      addTableRow: (row) => rows.push(row),
      median,
      notes,
      BIN,
      cores: cpus().length,
      postgres: postgresAdminUrl,
    });
  }

  const header = '| figure | seatctl | baseline | ratio | target | met |\n| --- | --- | --- | --- | --- | --- |';
  const table = rows
    .map((r) => `| ${r.figure} | ${r.ours} | ${r.base} | ${r.ratio} | ${r.target} | ${r.met} |`)
    .join('\n');
  const date = new Date().toISOString().slice(0, 10);
  console.log(`### seatctl benchmark, ${date}${QUICK ? ' (--quick)' : ''}\n`);
  console.log(
    `Machine: ${machine()}. Medians of ${RUNS} runs (no-op: ${QUICK ? 10 : 30}); every release on a fresh copy of the same seeded database.\n`,
  );
  if (rows.length > 0) {
    console.log(header);
    console.log(table);
  }
  if (lagTables) console.log(`\n${lagTables}`);
  if (notes.length > 0) console.log(`\n${notes.map((n) => `- ${n}`).join('\n')}`);
  console.log(`\nTook ${((Date.now() - started) / 1000).toFixed(0)} s.`);
}

try {
  await main();
} catch (error) {
  process.exitCode = 1;
  console.error(`bench: ${error instanceof Error ? error.message : error}`);
} finally {
  for (const client of lagClients) await client.end().catch(() => {});
  pgServer?.stop();
  rmSync(work, { recursive: true, force: true });
}
