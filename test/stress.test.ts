// The booking guarantees under load, with real processes: lockers, bookers
// and unlockers race several release-expired-locks loops over a few seats with
// sub-second TTLs; afterwards every command's JSON output and the database
// must tell one consistent story.
import { expect, it } from 'vitest';
import { jsonLines, runCli, type CliResult } from './support/cli.js';
import { describeEachEngine, useDatabase } from './support/engines.js';
import { createEvent, seatNumbers } from './support/fixtures.js';

const SECONDS = Number(process.env.STRESS_SECONDS ?? 20);
const WORKERS = 4;
const RELEASERS = 3;
const SEATS = seatNumbers(40, 'S');

interface Logged {
  command: string[];
  result: CliResult;
  records: Array<Record<string, any>>;
}

const random = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeEachEngine('stress', (engine) => {
  const t = useDatabase(engine);

  it(
    `${WORKERS} lockers/bookers and ${RELEASERS} releasers for ${SECONDS} s keep every promise`,
    { timeout: (SECONDS + 120) * 1000 },
    async () => {
      await createEvent(t.db, 'Stress', SEATS);
      const log: Logged[] = [];
      const run = async (command: string[]) => {
        const result = await runCli(['--db', t.url, ...command, '--json'], { timeoutMs: 60_000 });
        const entry = {
          command,
          result,
          records: result.code === 0 || result.code === 3 ? jsonLines(result.stdout) : [],
        };
        log.push(entry);
        expect([0, 3], `${command.join(' ')}: ${result.stderr}`).toContain(result.code);
        return entry;
      };
      const deadline = Date.now() + SECONDS * 1000;

      const worker = async (n: number) => {
        const user = `w${n}`;
        while (Date.now() < deadline) {
          const first = random(0, SEATS.length - 1);
          const seats = [...new Set([SEATS[first]!, SEATS[(first + random(0, 1)) % SEATS.length]!])];
          const locked = await run(['lock', 'Stress', ...seats, '--user', user, '--ttl', `${random(300, 1000)}ms`]);
          if (locked.result.code !== 0) continue;
          const dice = Math.random();
          if (dice < 0.4) {
            await run(['book', 'Stress', ...seats, '--user', user]); // at once: usually in time
          } else if (dice < 0.6) {
            await pause(random(0, 1000)); // around the expiry: in time or not
            await run(['book', 'Stress', ...seats, '--user', user]);
          } else if (dice < 0.85) {
            await pause(random(0, 500));
            await run(['unlock', 'Stress', ...seats, '--user', user]);
          }
          // else: walk away and let the lock expire
        }
      };
      const releaser = async () => {
        while (Date.now() < deadline) {
          await run(['release-expired-locks', '--batch-size', '3']);
          await pause(random(0, 250));
        }
      };
      await Promise.all([
        ...Array.from({ length: WORKERS }, (_, n) => worker(n)),
        ...Array.from({ length: RELEASERS }, releaser),
      ]);
      await run(['release-expired-locks']);

      const records = (command: string, type: string) =>
        log
          .filter((e) => e.command[0] === command && e.result.code === 0)
          .flatMap((e) => e.records.filter((r) => r.type === type));
      const locks = records('lock', 'locked');
      const bookings = records('book', 'booked');
      const releases = records('release-expired-locks', 'released');
      const totals = records('release-expired-locks', 'summary').map((r) => r.total as number);
      const history = (await t.db.knex('release_history').orderBy('id')).map((row: any) => ({
        seat: row.seat_number as string,
        lockedBy: row.locked_by as string,
        lockToken: Number(row.lock_token),
        lockedUntil: t.db.engine.readInstant(row.locked_until).getTime(),
        releasedAt: t.db.engine.readInstant(row.released_at).getTime(),
        reason: row.reason as string,
      }));
      const seats = new Map(
        (await t.db.knex('seats').select('seat_number', 'status', 'booked_by')).map((s: any) => [s.seat_number, s]),
      );
      const time = (iso: string) => Date.parse(iso);

      // The load was real: every kind of command succeeded many times.
      expect(locks.length).toBeGreaterThanOrEqual(2 * SECONDS);
      expect(bookings.length).toBeGreaterThanOrEqual(3);
      expect(releases.length).toBeGreaterThanOrEqual(5);
      console.log(
        `stress [${engine.name}]: ${log.length} commands, ${locks.length} seats locked, ${bookings.length} booked, ${releases.length} released by ${totals.length} release runs, ${history.length} history rows`,
      );

      // 1. No seat booked twice, and the database agrees with the bookings reported.
      const bookedSeats = bookings.map((b) => b.seat);
      expect(new Set(bookedSeats).size).toBe(bookedSeats.length);
      for (const [seat, row] of seats) {
        const booking = bookings.find((b) => b.seat === seat);
        if (booking) expect(row).toMatchObject({ status: 'booked', booked_by: booking.bookedBy });
        else expect(row.status).not.toBe('booked');
      }

      // 2. No booked seat was ever released (or re-locked) after its booking.
      for (const booking of bookings) {
        const after = (at: number) => at > time(booking.bookedAt);
        expect(history.filter((h) => h.seat === booking.seat && after(h.releasedAt))).toEqual([]);
        expect(locks.filter((l) => l.seat === booking.seat && after(time(l.lockedAt)))).toEqual([]);
      }

      // 3. A booking came from the booker's own lock, still valid at the instant of booking.
      for (const booking of bookings) {
        const own = locks
          .filter((l) => l.seat === booking.seat && l.lockedBy === booking.bookedBy)
          .sort((a, b) => a.lockToken - b.lockToken);
        const last = own.at(-1)!;
        expect(time(booking.bookedAt)).toBeLessThanOrEqual(time(last.lockedUntil));
        expect(locks.filter((l) => l.seat === booking.seat && l.lockToken > last.lockToken)).toEqual([]);
      }

      // 4. Every expiry release came after the lock's expiry; each lock was released once, in one report.
      for (const h of history.filter((h) => h.reason !== 'unlocked'))
        expect(h.releasedAt).toBeGreaterThanOrEqual(h.lockedUntil);
      for (const r of releases) expect(time(r.releasedAt)).toBeGreaterThanOrEqual(time(r.lockedUntil));
      const reported = releases.map((r) => `${r.seat}#${r.lockToken}`);
      expect(new Set(reported).size).toBe(reported.length);
      const expired = history.filter((h) => h.reason === 'expired').map((h) => `${h.seat}#${h.lockToken}`);
      expect([...reported].sort()).toEqual([...expired].sort());
      expect(totals.reduce((a, b) => a + b, 0)).toBe(expired.length);
      const released = history.map((h) => `${h.seat}#${h.lockToken}`);
      expect(new Set(released).size, 'no lock ends twice').toBe(released.length);

      // 5. No lock was handed to someone else while it was valid.
      const bySeat = new Map<string, typeof locks>();
      for (const l of locks) bySeat.set(l.seat, [...(bySeat.get(l.seat) ?? []), l]);
      for (const [seat, seatLocks] of bySeat) {
        seatLocks.sort((a, b) => a.lockToken - b.lockToken);
        for (let i = 1; i < seatLocks.length; i++) {
          const [previous, next] = [seatLocks[i - 1]!, seatLocks[i]!];
          if (next.lockedBy === previous.lockedBy && next.renewed) continue;
          const ended = history.find((h) => h.seat === seat && h.lockToken === previous.lockToken);
          const freedAt = Math.min(time(previous.lockedUntil), ended?.releasedAt ?? Infinity);
          expect(
            time(next.lockedAt),
            `${seat}: token ${next.lockToken} taken before token ${previous.lockToken} ended`,
          ).toBeGreaterThanOrEqual(freedAt);
        }
      }
    },
  );
});
