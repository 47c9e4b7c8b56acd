// The existing-database figures of `npm run bench` (--only django): seatctl on a
// SQLite database that Django (Debian's python3-django) created with its own
// migrations, next to the sqlite3 shell running seatctl's statements, Django's
// own bulk .update(), and the per-row management command seatctl replaces.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { ROLLBACK_JOURNAL_BATCH_SIZE } from '../dist/src/db/batch-size.js';

const DJANGO = fileURLToPath(new URL('../test/apps/django/app.py', import.meta.url));
const IN_PROCESS = fileURLToPath(new URL('./release-in-process.mjs', import.meta.url));
const PYTHON = '/usr/bin/python3';

// The sqlite3 shell (3.40) has no unixepoch('subsec'): the same clock through julianday.
const NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
const NOW_TEXT = "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'";
const READ_TEXT = (c) =>
  `(unixepoch(${c}) * 1000 + CASE WHEN substr(${c}, 20, 1) = '.' THEN CAST(substr(${c} || '00', 21, 3) AS INTEGER) ELSE 0 END)`;
// seatctl's statements on the Django tables. The whole release as one
// transaction, the history rows (with the holder's username) read back:
const FLOOR_ONE = `BEGIN IMMEDIATE;
  INSERT INTO seatctl_release_history (event_id, seat_id, seat_number, locked_by, locked_until, lock_token, locked_at, released_at, reason)
  SELECT s.event_id, s.id, s.seat_number, COALESCE(h.username, '#' || CAST(s.locked_by_id AS TEXT), '(none)'), ${READ_TEXT('s.locked_until')}, NULL, NULL, ${NOW_MS}, 'expired'
  FROM reservations_seat s LEFT JOIN auth_user h ON h.id = s.locked_by_id
  WHERE s.status = 'locked' AND s.locked_until <= ${NOW_TEXT} ORDER BY s.id
  RETURNING event_id, seat_id, seat_number, locked_by, locked_until, released_at;
  UPDATE reservations_seat SET status = 'available', locked_by_id = NULL, locked_until = NULL
  WHERE status = 'locked' AND id IN (SELECT seat_id FROM seatctl_release_history WHERE reason = 'expired');
  COMMIT;`;
// … and as `release-expired-locks --quiet` runs them: batch after batch, each
// its own transaction (history ids are consecutive, as in seatctl), nothing
// read back, one empty batch at the end.
const floorBatches = (expired, size) =>
  Array.from(
    { length: Math.floor(expired / size) + 1 },
    (_, i) => `BEGIN IMMEDIATE;
  INSERT INTO seatctl_release_history (event_id, seat_id, seat_number, locked_by, locked_until, lock_token, locked_at, released_at, reason)
  SELECT s.event_id, s.id, s.seat_number, COALESCE(h.username, '#' || CAST(s.locked_by_id AS TEXT), '(none)'), ${READ_TEXT('s.locked_until')}, NULL, NULL, ${NOW_MS}, 'expired'
  FROM reservations_seat s LEFT JOIN auth_user h ON h.id = s.locked_by_id
  WHERE s.status = 'locked' AND s.locked_until <= ${NOW_TEXT} AND s.id > (SELECT coalesce(max(seat_id), 0) FROM seatctl_release_history)
  ORDER BY s.id LIMIT ${size};
  UPDATE reservations_seat SET status = 'available', locked_by_id = NULL, locked_until = NULL
  WHERE status = 'locked' AND id IN (SELECT seat_id FROM seatctl_release_history WHERE id BETWEEN ${i * size + 1} AND ${(i + 1) * size});
  COMMIT;`,
  ).join('\n');

function django(url, args) {
  const result = spawnSync(PYTHON, [DJANGO, ...args], {
    env: { ...process.env, APP_DATABASE_URL: `sqlite:///${url.replace(/^\/+/, '')}` },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`django ${args.join(' ')} failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** Fills a Django-created database: `events` × `perEvent` seats, `expired` expired locks held by 100 users, 2% booked, a few active locks. */
function fill(file, events, perEvent, expired) {
  const db = new Database(file);
  const total = events * perEvent;
  const every = Math.max(1, Math.floor(total / expired));
  db.exec(`
    WITH RECURSIVE u(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM u WHERE n < 100)
    INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
    SELECT '', 0, 'user' || n, '', '', '', 0, 1, '2026-01-01 00:00:00' FROM u;
    WITH RECURSIVE e(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM e WHERE n < ${events})
    INSERT INTO reservations_event (name) SELECT printf('Event %05d', n) FROM e;
    WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < ${total - 1})
    INSERT INTO reservations_seat (event_id, seat_number, status, locked_until, locked_by_id)
    SELECT n / ${perEvent} + 1, 'S' || (n % ${perEvent} + 1),
      CASE WHEN n % ${every} = 0 AND n / ${every} < ${expired} THEN 'locked' WHEN n % 50 = 1 THEN 'booked'
           WHEN n % 1000 = 7 THEN 'locked' ELSE 'available' END,
      CASE WHEN n % ${every} = 0 AND n / ${every} < ${expired}
             THEN strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || (60 + n % 3600) || ' seconds') || '123'
           WHEN n % 1000 = 7 THEN strftime('%Y-%m-%d %H:%M:%f', 'now', '+1 day') || '456' END,
      CASE WHEN (n % ${every} = 0 AND n / ${every} < ${expired}) OR n % 1000 = 7 THEN n % 100 + 1 END
    FROM s;`);
  db.close();
}

/**
 * @param {object} ctx the benchmark's helpers: work, RUNS, QUICK, log, timed, seatctl, sqliteFresh, addRow, median, notes
 */
export function benchDjango(ctx) {
  const { work, RUNS, QUICK, log, timed, seatctl, sqliteFresh, addRow, median, notes } = ctx;
  if (spawnSync(PYTHON, ['-c', 'import django'], { stdio: 'ignore' }).status !== 0) {
    notes.push("Django: Debian's python3-django is not installed; the existing-database figures were skipped.");
    return;
  }
  const [events, perEvent, expired] = QUICK ? [10, 1000, 1000] : [1000, 1000, 100_000];
  const label = `${(events * perEvent).toLocaleString('en-US')}/${expired.toLocaleString('en-US')}`;
  log(`Django SQLite database ${label}`);
  const config = join(work, 'seatctl.config.json');
  writeFileSync(config, JSON.stringify({ preset: 'django', app: 'reservations' }));
  const cli = (file, args) => ['--config', config, '--db', file, ...args];

  // As Django creates it: its migrations, then seatctl's own tables.
  const plain = join(work, 'django.db');
  django(plain, ['migrate']);
  fill(plain, events, perEvent, expired);
  seatctl(cli(plain, ['migrate', '--quiet']));
  // With the index seatctl doctor suggests, taken from its own report.
  const doctor = spawnSync(ctx.BIN, cli(plain, ['doctor', '--json']), { encoding: 'utf8' });
  const advice = JSON.parse(doctor.stdout.trim().split('\n').pop()).index;
  const indexed = join(work, 'django-indexed.db');
  spawnSync('cp', [plain, indexed]);
  const db = new Database(indexed);
  db.exec(advice.sql.replace('CONCURRENTLY ', ''));
  db.close();
  // The legacy command saves one row at a time: measured on fewer locks, compared per lock.
  const legacyLocks = QUICK ? 200 : 2000;
  const legacyDb = join(work, 'django-legacy.db');
  django(legacyDb, ['migrate']);
  fill(legacyDb, events / 10 || 1, perEvent, legacyLocks);

  const times = { indexed: [], plain: [], plainInProcess: [], floor: [], floorOne: [], bulk: [], bulkProcess: [], noop: [], noopPlain: [], node: [] };
  const FLOOR = floorBatches(expired, ROLLBACK_JOURNAL_BATCH_SIZE);
  for (let run = 0; run < RUNS; run++) {
    times.indexed.push(seatctl(cli(sqliteFresh(indexed, 'dj-i.db'), ['release-expired-locks', '--quiet'])));
    times.floor.push(timed('sqlite3', [sqliteFresh(indexed, 'dj-f.db'), FLOOR], { stdoutFile: join(work, 'dj-floor.out') }));
    times.floorOne.push(timed('sqlite3', [sqliteFresh(indexed, 'dj-f.db'), FLOOR_ONE], { stdoutFile: join(work, 'dj-floor.out') }));
    const released = sqliteFresh(plain, 'dj-p.db');
    times.plain.push(seatctl(cli(released, ['release-expired-locks', '--quiet'])));
    const bulkDb = sqliteFresh(plain, 'dj-b.db');
    times.bulkProcess.push(
      timed(PYTHON, [DJANGO, 'bulk-release'], {
        env: { APP_DATABASE_URL: `sqlite:///${bulkDb.replace(/^\/+/, '')}` },
        stdoutFile: join(work, 'dj-bulk.json'),
      }),
    );
    times.bulk.push(JSON.parse(readFileSync(join(work, 'dj-bulk.json'), 'utf8')).ms);
    // Timed inside the process, as the legacy command is (below).
    const inProcess = spawnSync(process.execPath, [IN_PROCESS, sqliteFresh(plain, 'dj-n.db'), config], { encoding: 'utf8' });
    if (inProcess.status !== 0) throw new Error(`release-in-process failed: ${inProcess.stderr}`);
    times.plainInProcess.push(JSON.parse(inProcess.stdout).ms);
    // Nothing left to release: what a cron run costs on a quiet minute. With
    // doctor's index the search for expired locks is a probe; without it, a
    // read of the whole table (what doctor warns about).
    const releasedIndexed = join(work, 'dj-i.db');
    // The copies and releases above leave hundreds of megabytes for the kernel
    // to write back, and a no-op's one small commit (the heartbeat) would wait
    // behind them: flushed first, as on a cron minute with nothing else going on.
    spawnSync('sync');
    for (let i = 0; i < 4; i++) {
      times.node.push(timed(process.execPath, ['-e', '0']));
      times.noop.push(seatctl(cli(releasedIndexed, ['release-expired-locks', '--quiet'])));
      times.noopPlain.push(seatctl(cli(released, ['release-expired-locks', '--quiet'])));
    }
  }
  const legacy = [];
  for (let run = 0; run < (QUICK ? 1 : 2); run++) {
    legacy.push(django(sqliteFresh(legacyDb, 'dj-l.db'), ['legacy-release']).ms);
  }

  const floor = median(times.floor);
  // The targets are for the full size: at the quick size start-up is the whole figure.
  const target = (label, ok) => (QUICK ? undefined : { label, ok });
  addRow(`Django SQLite ${label}, with doctor's index: release --quiet`, median(times.indexed), floor, 'sqlite3 same statements, same batches', target('≤ 1.5× floor', (_, r) => r <= 1.5));
  addRow(`Django SQLite ${label}, with doctor's index: release --quiet`, median(times.indexed), median(times.floorOne), 'sqlite3 one transaction, rows read back');
  addRow(`Django SQLite ${label}, as Django creates it: release --quiet`, median(times.plain), median(times.bulkProcess), "Django's bulk .update(), whole command", target("≤ 1× Django's", (_, r) => r <= 1));
  addRow(`Django SQLite ${label}, as Django creates it: release --quiet`, median(times.plain), median(times.bulk), "Django's bulk .update(), the UPDATE alone");
  // Per lock, each timed inside its own process (call_command in Django; the
  // library's release in Node): the runtimes' start-up is left out of both.
  const legacyPerLock = median(legacy) / legacyLocks;
  addRow(
    `Django SQLite: per-row management command vs seatctl, time per lock (each timed inside its process)`,
    legacyPerLock,
    median(times.plainInProcess) / expired,
    `seatctl, ${expired.toLocaleString('en-US')} locks`,
    target('≥ 200× seatctl', (_, r) => r >= 200),
    'ms/lock',
  );
  addRow(
    `Django SQLite: per-row management command vs seatctl's whole command, time per lock`,
    legacyPerLock,
    median(times.plain) / expired,
    `seatctl, ${expired.toLocaleString('en-US')} locks, start-up included`,
    undefined,
    'ms/lock',
  );
  addRow("no-op release on the Django database, with doctor's index", median(times.noop), median(times.node), 'node -e 0', target('≤ 2× node -e 0', (_, r) => r <= 2));
  addRow('no-op release on the Django database, as Django creates it (reads the whole table)', median(times.noopPlain), median(times.node), 'node -e 0');
  notes.push(
    `Django ${spawnSync(PYTHON, ['-c', 'import django; print(django.get_version())'], { encoding: 'utf8' }).stdout.trim()} (Debian); the per-row command was timed on ${legacyLocks.toLocaleString('en-US')} expired locks (${(median(legacy) / 1000).toFixed(1)} s) and compared per lock.`,
  );
}
