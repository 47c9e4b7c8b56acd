'use strict';
// `npm run build` runs this as `node --max-semi-space-size=8 scripts/warm-code-cache.cjs`
// — the bin's own flags, or V8 rejects the cache. It loads the bundled CLI the
// way bin/seatctl.cjs does, runs the commands a cron job and an operator run
// (so their functions are compiled), and writes dist/cli.cjs.cache.
const { mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { dirname, join } = require('node:path');
const Module = require('node:module');
const { Script } = require('node:vm');

const filename = join(__dirname, '..', 'dist', 'cli.cjs');
const script = new Script(Module.wrap(readFileSync(filename, 'latin1')), { filename });
globalThis[Symbol.for('seatctl.import')] = (url) => import(url);
const cli = { exports: {} };
script.runInThisContext()(cli.exports, Module.createRequire(filename), cli, filename, dirname(filename));

const dir = mkdtempSync(join(tmpdir(), 'seatctl-warm-'));
const db = join(dir, 'warm.db');
const quietly = async (argv, database = db) => {
  const write = process.stdout.write;
  process.stdout.write = () => true;
  try {
    return await cli.exports.main(['node', 'seatctl', '--db', database, ...argv]);
  } finally {
    process.stdout.write = write;
  }
};
(async () => {
  try {
    for (const argv of [
      ['seed'],
      ['release-expired-locks', '--quiet'],
      ['release-expired-locks', '--json'],
      ['list-locked'],
      ['stats'],
      ['lock', '1', 'D1', '--user', 'warm', '--ttl', '1m'],
      ['book', '1', 'D1', '--user', 'warm'],
      ['history'],
      ['migrate', '--quiet'],
    ]) {
      const code = await quietly(argv);
      if (code !== 0) throw new Error(`warming the code cache: seatctl ${argv.join(' ')} exited ${code}`);
    }
    // An app's own database (a Django app's tables, as its migrations write
    // them) through a config file: loading, validating and checking a mapping.
    const app = join(dir, 'app.db');
    const Database = Module.createRequire(filename)('better-sqlite3');
    const handle = new Database(app);
    handle.exec(`
      CREATE TABLE "auth_user" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "username" varchar(150) NOT NULL UNIQUE);
      CREATE TABLE "reservations_event" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "name" varchar(200) NOT NULL UNIQUE);
      CREATE TABLE "reservations_seat" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "seat_number" varchar(20) NOT NULL,
        "status" varchar(10) NOT NULL, "locked_until" datetime NULL,
        "event_id" integer NOT NULL REFERENCES "reservations_event" ("id") DEFERRABLE INITIALLY DEFERRED,
        "locked_by_id" integer NULL REFERENCES "auth_user" ("id") DEFERRABLE INITIALLY DEFERRED);
      INSERT INTO auth_user (username) VALUES ('warm');
      INSERT INTO reservations_event (name) VALUES ('Warm');
      INSERT INTO reservations_seat (seat_number, status, locked_until, event_id, locked_by_id)
        VALUES ('A1', 'locked', '2020-01-01 00:00:00', 1, 1), ('A2', 'available', NULL, 1, NULL);`);
    handle.close();
    const config = join(dir, 'seatctl.config.json');
    writeFileSync(config, JSON.stringify({ preset: 'django', app: 'reservations' }));
    for (const argv of [
      ['migrate', '--quiet'],
      ['release-expired-locks', '--quiet'],
      ['release-expired-locks', '--quiet'],
      ['list-locked'],
    ]) {
      const code = await quietly(['--config', config, ...argv], app);
      if (code !== 0) throw new Error(`warming the code cache: seatctl ${argv.join(' ')} on an app's database exited ${code}`);
    }
    writeFileSync(`${filename}.cache`, script.createCachedData());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})().catch((error) => {
  console.error(error.message);
  process.exitCode = 1;
});
