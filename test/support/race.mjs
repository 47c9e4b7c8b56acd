// Separate processes for the boundary test, using the built library as a web
// server would. Each prints JSON Lines, starting with {"type":"ready"} once it
// has reached the database.
//   race.mjs release <url>: releases expired locks in a tight loop, one lock
//     per batch, printing each release, until its stdin closes.
//   race.mjs book <url> <event>: reads one plan per line on stdin, an array of
//     { seat, at, user }; books each seat at its instant (epoch milliseconds)
//     and prints what happened and when it started, then {"type":"round-done"};
//     ends when its stdin closes.
import { createInterface } from 'node:readline';
import { bookSeats, openDatabase, releaseExpiredLocks } from '../../dist/src/index.js';

const [mode, url, event] = process.argv.slice(2);
// A mapped schema (a Django app's tables) comes as the config object in SEATCTL_TEST_MAPPING.
const mapping = process.env.SEATCTL_TEST_MAPPING ? JSON.parse(process.env.SEATCTL_TEST_MAPPING) : undefined;
const db = await openDatabase({ url, mapping });
const out = (record) => process.stdout.write(`${JSON.stringify(record)}\n`);
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
try {
  if (mode === 'release') {
    let open = true;
    process.stdin.on('end', () => (open = false)).resume();
    let ready = false;
    while (open) {
      const report = await releaseExpiredLocks(db, { batchSize: 1 });
      for (const r of report.released)
        out({ type: 'released', seat: r.seat, lockToken: r.lockToken, lockedUntil: r.lockedUntil, releasedAt: r.releasedAt });
      if (!ready) out({ type: 'ready' });
      ready = true;
      // Runs every couple of milliseconds: often enough to meet every expiry, without starving the booker of CPU.
      await pause(2);
    }
  } else {
    await db.knex.raw('SELECT 1');
    out({ type: 'ready' });
    for await (const line of createInterface({ input: process.stdin })) {
      for (const { seat, at, user } of JSON.parse(line)) {
        const wait = at - Date.now();
        if (wait > 0) await pause(wait);
        const startedAt = Date.now();
        const clock = performance.now();
        try {
          const result = await bookSeats(db, { event, seats: [seat], user });
          out({ type: 'booked', seat, startedAt, took: performance.now() - clock, bookedAt: result.seats[0].bookedAt });
        } catch (error) {
          const reason = error.conflicts?.[0]?.reason ?? error.message;
          out({ type: 'refused', seat, startedAt, took: performance.now() - clock, reason });
        }
      }
      out({ type: 'round-done' });
    }
  }
} finally {
  await db.close();
}
