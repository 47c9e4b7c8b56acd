#!/usr/bin/env -S node --max-semi-space-size=8
'use strict';
// The shebang caps V8's young generation at 8 MB (Node's default lets it grow
// to 48 MB): a release of a million locks then peaks near 80 MB instead of 150.
// Loads the bundled CLI (dist/cli.cjs) with a V8 code cache next to it, so a
// cron run every minute doesn't pay to compile seatctl and its dependencies
// again. The cache is written on the first run (and by `npm run build`); a
// cache that doesn't match this Node is ignored and rewritten if possible.
const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const { dirname, join } = require('node:path');
const Module = require('node:module');
const { Script } = require('node:vm');

const filename = join(__dirname, '..', 'dist', 'cli.cjs');
const cacheFile = `${filename}.cache`;
let cachedData;
try {
  cachedData = readFileSync(cacheFile);
} catch {}
const script = new Script(Module.wrap(readFileSync(filename, 'utf8')), { filename, cachedData });
if (cachedData === undefined || script.cachedDataRejected) {
  process.once('beforeExit', () => {
    try {
      // Written whole, then renamed: a run reading it meanwhile sees the old file or the new one.
      const partial = `${cacheFile}.${process.pid}`;
      writeFileSync(partial, script.createCachedData());
      renameSync(partial, cacheFile);
    } catch {} // a read-only install: run without the cache
  });
}
const cli = { exports: {} };
script.runInThisContext()(cli.exports, Module.createRequire(filename), cli, filename, dirname(filename));
cli.exports.run();
