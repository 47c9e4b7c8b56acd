// The library as a web server uses it: through the package entry point, in a
// separate Node process, against a real database.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { runNode } from './support/cli.js';
import { describeEachEngine } from './support/engines.js';

const CLIENT = fileURLToPath(new URL('./support/library-client.mjs', import.meta.url));

describeEachEngine('the library through its entry point', (engine) => {
  it("imports from 'seatctl' and runs every operation a web server needs", async () => {
    expect(
      existsSync(fileURLToPath(new URL('../dist/src/index.d.ts', import.meta.url))),
      'type declarations are built',
    ).toBe(true);
    const url = await engine.newDatabaseUrl();
    const run = await runNode([CLIENT, url], { timeoutMs: 60_000 });
    expect(run.code, run.stderr).toBe(0);
    const seen = JSON.parse(run.stdout);
    // The package entry is a bundle (dist/lib): it exports what src/index.ts does.
    expect(seen.exports).toEqual(Object.keys(await import('../src/index.js')).sort());
    expect(seen.exports).toEqual(
      expect.arrayContaining([
        'openDatabase',
        'withDatabase',
        'migrate',
        'releaseExpiredLocks',
        'releaseExpiredLocksInBatches',
        'lockSeats',
        'bookSeats',
        'unlockSeats',
        'listLocked',
        'history',
        'stats',
        'availableSeats',
        'seedDemo',
        'seedSynthetic',
        'SeatctlError',
        'SeatConflictError',
        'EXIT_CODES',
      ]),
    );
    expect(seen).toMatchObject({
      migrated: ['001_initial_schema', '002_history_hold_start'],
      availableBefore: 92, // the 19 expired locks count as available before any release ran
      locked: [
        { seat: 'D1', token: 1, ms: 60_000 },
        { seat: 'D2', token: 1, ms: 60_000 },
      ],
      conflict: { isSeatctlError: true, kind: 'conflict', reasons: ['held'] },
      booked: ['D1'],
      unlocked: ['D2'],
      lockedNow: 22,
      released: { total: 19, holders: ['admin'] },
      history: [...Array(19).fill('expired'), 'unlocked'],
      stats: { seats: 100, available: 91, locked: 3, expired: 0, booked: 6, stale: false, lastRun: 19 },
      availableAfter: 91,
    });
  });
});
