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
const script = new Script(Module.wrap(readFileSync(filename, 'utf8')), { filename });
globalThis[Symbol.for('seatctl.import')] = (url) => import(url);
const cli = { exports: {} };
script.runInThisContext()(cli.exports, Module.createRequire(filename), cli, filename, dirname(filename));

const dir = mkdtempSync(join(tmpdir(), 'seatctl-warm-'));
const db = join(dir, 'warm.db');
const quietly = async (argv) => {
  const write = process.stdout.write;
  process.stdout.write = () => true;
  try {
    return await cli.exports.main(['node', 'seatctl', '--db', db, ...argv]);
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
    writeFileSync(`${filename}.cache`, script.createCachedData());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})().catch((error) => {
  console.error(error.message);
  process.exitCode = 1;
});
