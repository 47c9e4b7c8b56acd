// A sweeper in a process of its own, for bench/lag.js: the library's loop,
// as `release-expired-locks --watch` runs it, with every statement the
// database driver executes counted. On SIGTERM it stops, then prints
// {"cpuMs", "wallMs", "queries", "cycles", "wakes"} and exits.
//   node bench/sweeper-child.js <db url> <precise|poll> <intervalMs> <maxLagMs>
import { createRequire } from 'node:module';
import { openDatabase, startSweeper } from 'seatctl';

const [url, mode, intervalMs, maxLagMs] = process.argv.slice(2);
const require = createRequire(import.meta.url);
let queries = 0;

// Count at the drivers, below Knex and seatctl: what the database sees.
const pg = require('pg');
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (...args) {
  queries++;
  return query.apply(this, args);
};
const Database = require('better-sqlite3');
const probe = new Database(':memory:');
const Statement = Object.getPrototypeOf(probe.prepare('SELECT 1'));
probe.close();
for (const method of ['all', 'get', 'run', 'iterate']) {
  const original = Statement[method];
  Statement[method] = function (...args) {
    queries++;
    return original.apply(this, args);
  };
}
const exec = Database.prototype.exec;
Database.prototype.exec = function (...args) {
  queries++;
  return exec.apply(this, args);
};

const db = await openDatabase({ url });
const stop = new AbortController();
const sweeper = startSweeper(db, {
  precise: mode === 'precise',
  intervalMs: Number(intervalMs),
  maxLagMs: Number(maxLagMs),
  signal: stop.signal,
});
let cycles = 0;
let wakes = 0;
sweeper.on('cycle', () => {
  cycles++;
  wakes++;
});
sweeper.on('check', () => wakes++);
sweeper.on('failure', (failure) => process.stderr.write(`sweeper: ${failure.error.message}\n`));
// Counted from the first cycle on: the start-up (schema checks) is not the sweeper's steady cost.
await new Promise((resolve) => sweeper.once('cycle', resolve));
const cpu = process.cpuUsage();
const started = performance.now();
queries = 0;
cycles = 0;
wakes = 0;
process.stdout.write('ready\n');
process.on('SIGTERM', () => stop.abort());
await sweeper.done;
const used = process.cpuUsage(cpu);
const wallMs = performance.now() - started;
await db.close();
process.stdout.write(`${JSON.stringify({ cpuMs: (used.user + used.system) / 1000, wallMs, queries, cycles, wakes })}\n`);
