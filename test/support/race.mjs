// A separate process for the boundary test: books seats (each at its own
// instant) or releases expired locks in a tight loop, printing JSON Lines.
// Uses the built library, as a web server would.
import { bookSeats, openDatabase, releaseExpiredLocks } from '../../dist/src/index.js';

const [mode, url, until] = process.argv.slice(2);
const db = await openDatabase({ url });
const stopAt = Number(until);
const out = (record) => process.stdout.write(`${JSON.stringify(record)}\n`);
try {
  if (mode === 'release') {
    while (Date.now() < stopAt) {
      const report = await releaseExpiredLocks(db, { batchSize: 1 });
      for (const r of report.released)
        out({ type: 'released', seat: r.seat, lockToken: r.lockToken, releasedAt: r.releasedAt });
      // Runs every couple of milliseconds: often enough to meet every expiry, without starving the booker of CPU.
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  } else {
    // [{ seat, at, user }]: book each seat at that instant (epoch milliseconds).
    const plan = JSON.parse(process.argv[5]);
    for (const { seat, at, user } of plan) {
      const wait = at - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      try {
        const result = await bookSeats(db, { event: 'Boundary', seats: [seat], user });
        out({ type: 'booked', seat, bookedAt: result.seats[0].bookedAt });
      } catch (error) {
        out({ type: 'refused', seat, reason: error.conflicts?.[0]?.reason ?? error.message });
      }
    }
  }
} finally {
  await db.close();
}
