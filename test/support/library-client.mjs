// A web server's use of seatctl, through the package's own entry point (what
// `import … from 'seatctl'` resolves to once installed). Prints what it saw as JSON.
import * as seatctl from 'seatctl';

const {
  openDatabase,
  migrate,
  seedDemo,
  availableSeats,
  lockSeats,
  bookSeats,
  unlockSeats,
  listLocked,
  releaseExpiredLocks,
  history,
  stats,
  SeatctlError,
} = seatctl;
const url = process.argv[2];
const seen = { exports: Object.keys(seatctl).sort() };
const db = await openDatabase({ url, create: true });
try {
  seen.migrated = (await migrate(db)).applied;
  await seedDemo(db);
  const event = 'Taylor Swift - Eras Tour';
  seen.availableBefore = (await availableSeats(db, event)).seats.length;
  const lock = await lockSeats(db, { event, seats: ['D1', 'D2'], user: 'web', ttlMs: 60_000 });
  seen.locked = lock.seats.map((s) => ({
    seat: s.seat,
    token: s.lockToken,
    ms: s.lockedUntil.getTime() - lock.now.getTime(),
  }));
  try {
    await lockSeats(db, { event, seats: ['D1'], user: 'other' });
  } catch (error) {
    seen.conflict = {
      isSeatctlError: error instanceof SeatctlError,
      kind: error.kind,
      reasons: error.conflicts.map((c) => c.reason),
    };
  }
  seen.booked = (await bookSeats(db, { event, seats: ['D1'], user: 'web' })).seats.map((s) => s.seat);
  seen.unlocked = (await unlockSeats(db, { event, seats: ['D2'], user: 'web' })).seats.map((s) => s.seat);
  seen.lockedNow = (await listLocked(db)).seats.length;
  const report = await releaseExpiredLocks(db);
  seen.released = { total: report.total, holders: [...new Set(report.released.map((r) => r.lockedBy))] };
  seen.history = (await history(db, { limit: 1000 })).map((h) => h.reason).sort();
  const s = await stats(db);
  seen.stats = { ...s.events[0], stale: s.stale, lastRun: s.lastRun?.released };
  seen.availableAfter = (await availableSeats(db, event)).seats.length;
} finally {
  await db.close();
}
console.log(JSON.stringify(seen));
