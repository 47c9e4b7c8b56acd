// node bench/release-in-process.mjs <database> <config.json>
//
// One `release-expired-locks --quiet`, timed inside its own process, as the
// Django app's per-row management command is timed inside Django
// (call_command): from opening the database to the last batch, the start-up
// of the runtime left out on both sides. The library is imported as an app
// imports it (the package's bundled entry), and loads its database engine (Knex
// and the driver) inside the timing, when the database is opened. Prints {"ms", "released"}.
import { readFileSync } from 'node:fs';
import { openDatabase, releaseExpiredLocksCounting } from 'seatctl';

const [url, configFile] = process.argv.slice(2);
const mapping = JSON.parse(readFileSync(configFile, 'utf8'));
const started = performance.now();
const db = await openDatabase({ url, mapping, mappingSource: configFile });
let released = 0;
try {
  for await (const count of releaseExpiredLocksCounting(db)) released += count;
} finally {
  await db.close();
}
console.log(JSON.stringify({ ms: performance.now() - started, released }));
