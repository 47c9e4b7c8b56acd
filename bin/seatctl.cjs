#!/usr/bin/env -S node --max-semi-space-size=8
'use strict';
// The shebang caps V8's young generation at 8 MB (Node's default lets it grow
// to 48 MB): a release of a million locks then peaks near 80 MB instead of 150.
// Loads the bundled CLI (dist/cli.cjs) with the V8 code cache `npm run build`
// made beside it (scripts/warm-code-cache.cjs, under these same flags: V8
// rejects a cache made under others), so a cron run every minute doesn't pay
// to compile seatctl and its dependencies again. A cache this Node rejects is
// ignored; nothing is ever written into the install directory at run time.
const { readFileSync } = require('node:fs');
const { dirname, join } = require('node:path');
const Module = require('node:module');
const { Script } = require('node:vm');

const filename = join(__dirname, '..', 'dist', 'cli.cjs');
let cachedData;
try {
  cachedData = readFileSync(`${filename}.cache`);
} catch {}
// esbuild writes ASCII only: read as latin1, which skips UTF-8 decoding.
const script = new Script(Module.wrap(readFileSync(filename, 'latin1')), { filename, cachedData });
// Code compiled through vm can't import() on Node 20 without an experimental
// flag; the CLI loads an .mjs config file through this importer instead.
globalThis[Symbol.for('seatctl.import')] = (url) => import(url);
if (process.env.SEATCTL_CODE_CACHE_REPORT) {
  process.stderr.write(`code cache: ${cachedData === undefined ? 'missing' : script.cachedDataRejected ? 'rejected' : 'accepted'}\n`);
}
const cli = { exports: {} };
script.runInThisContext()(cli.exports, Module.createRequire(filename), cli, filename, dirname(filename));
cli.exports.run();
