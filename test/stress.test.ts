// The booking guarantees under load, with real processes: lockers, bookers
// and unlockers race several release-expired-locks loops over a few seats with
// short TTLs; afterwards every command's JSON output and the database must tell
// one consistent story. The TTLs follow how long a command takes on this
// machine right now, so bookings in time and too late both stay frequent
// however busy it is; and the run goes on until enough of each happened.
import { expect, it } from 'vitest';
import type { SeatDatabase } from '../src/index.js';
import { jsonLines, runCli, type CliResult } from './support/cli.js';
import { describeEachEngine, useDatabase } from './support/engines.js';
import { createEvent, seatNumbers } from './support/fixtures.js';
import { median } from './support/timing.js';

/** The run lasts at least this long... */
const SECONDS = Number(process.env.STRESS_SECONDS ?? 20);
/** ...and until every kind of command succeeded often enough, unless this much time has passed: then it fails. */
const DEADLINE_SECONDS = Math.max(6 * SECONDS, 120);
const WORKERS = 4;
const RELEASERS = 3;
const SEATS = seatNumbers(40, 'S');

interface Logged {
  command: string[];
  result: CliResult;
  records: Array<Record<string, any>>;
  /** This process's clock when the command was started, and when it had exited. */
  startedAt: number;
  endedAt: number;
}

const random = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * How far ahead of this process's clock the database's can be: the least
 * difference between its clock and ours just before we asked (about zero on
 * one machine; a remote server may differ).
 */
async function databaseClockLead(db: SeatDatabase): Promise<number> {
  let lead = Infinity;
  for (let i = 0; i < 5; i++) {
    const before = Date.now();
    const [row] = db.engine.rows<{ now: unknown }>(await db.knex.raw(`SELECT ${db.engine.now} AS now`));
    lead = Math.min(lead, db.engine.readInstant(row!.now).getTime() - before);
  }
  return Math.max(lead, 0);
}

describeEachEngine('stress', (engine) => {
  const t = useDatabase(engine);

  it(
    `${WORKERS} lockers/bookers and ${RELEASERS} releasers for at least ${SECONDS} s keep every promise`,
    { timeout: (DEADLINE_SECONDS + 120) * 1000 },
    async () => {
      await createEvent(t.db, 'Stress', SEATS);
      const log: Logged[] = [];
      const counts = { locked: 0, booked: 0, released: 0, late: 0 };
      const run = async (command: string[]) => {
        const startedAt = Date.now();
        const result = await runCli(['--db', t.url, ...command, '--json'], { timeoutMs: 60_000 });
        const entry: Logged = {
          command,
          result,
          records: result.code === 0 || result.code === 3 ? jsonLines(result.stdout) : [],
          startedAt,
          endedAt: Date.now(),
        };
        log.push(entry);
        expect([0, 3], `${command.join(' ')}: ${result.stderr}`).toContain(result.code);
        for (const record of entry.records) {
          if (record.type === 'locked' || record.type === 'booked' || record.type === 'released')
            counts[record.type as 'locked' | 'booked' | 'released']++;
        }
        // A worker books only seats it has just locked: a refusal means its lock had expired by then.
        if (command[0] === 'book' && result.code === 3) counts.late++;
        return entry;
      };
      /** How long a command takes here and now: the median of the last 30, all kinds together. */
      const pace = () => median(log.slice(-30).map((e) => e.endedAt - e.startedAt));
      // The first TTLs follow an unhindered command.
      await run(['release-expired-locks']);

      // Floors that prove the load was real: every kind of command succeeded many times, and
      // bookings were refused for coming too late (the TTLs are short, so some must).
      const enough = () =>
        counts.locked >= 2 * SECONDS && counts.booked >= 3 && counts.released >= 5 && counts.late >= 3;
      const started = Date.now();
      let failed = false;
      const going = () =>
        !failed &&
        (Date.now() < started + SECONDS * 1000 || (!enough() && Date.now() < started + DEADLINE_SECONDS * 1000));
      const pairs: Array<{ lock: Logged; book: Logged }> = [];

      const worker = async (n: number) => {
        const user = `w${n}`;
        while (going()) {
          const first = random(0, SEATS.length - 1);
          const seats = [...new Set([SEATS[first]!, SEATS[(first + random(0, 1)) % SEATS.length]!])];
          // Between half and three times a command's time: a booking right after the lock is
          // usually in time, one after a pause of up to the TTL is in time or not.
          const ttl = Math.min(Math.max(Math.round(pace() * (0.5 + 2.5 * Math.random())), 100), 60_000);
          const locked = await run(['lock', 'Stress', ...seats, '--user', user, '--ttl', `${ttl}ms`]);
          if (locked.result.code !== 0) continue;
          const dice = Math.random();
          if (dice < 0.4) {
            pairs.push({ lock: locked, book: await run(['book', 'Stress', ...seats, '--user', user]) }); // at once
          } else if (dice < 0.6) {
            await pause(random(0, ttl)); // around the expiry: in time or not
            pairs.push({ lock: locked, book: await run(['book', 'Stress', ...seats, '--user', user]) });
          } else if (dice < 0.85) {
            await pause(random(0, ttl / 2));
            await run(['unlock', 'Stress', ...seats, '--user', user]);
          }
          // else: walk away and let the lock expire
        }
      };
      const releaser = async () => {
        while (going()) {
          await run(['release-expired-locks', '--batch-size', '3']);
          await pause(random(0, 250));
        }
      };
      // One failed command fails the test: the other loops then stop starting commands.
      await Promise.all([
        ...Array.from({ length: WORKERS }, (_, n) => worker(n)),
        ...Array.from({ length: RELEASERS }, releaser),
      ]).catch((error) => {
        failed = true;
        throw error;
      });
      await run(['release-expired-locks']);
      const seconds = Math.round((Date.now() - started) / 1000);

      const records = (command: string, type: string) =>
        log
          .filter((e) => e.command[0] === command && e.result.code === 0)
          .flatMap((e) => e.records.filter((r) => r.type === type));
      // A lock's own instant is its expiry less the TTL asked for (the hold cap, far off here,
      // never shortens it); `lockedAt` is the start of the hold, which a re-lock within the
      // cool-down carries over from an earlier lock of the same holder.
      const ttlOf = (command: string[]) => Number(/^(\d+)ms$/.exec(command[command.indexOf('--ttl') + 1]!)![1]);
      const locks = log
        .filter((e) => e.command[0] === 'lock' && e.result.code === 0)
        .flatMap((e) =>
          e.records
            .filter((r) => r.type === 'locked')
            .map((r) => ({ ...r, takenAt: Date.parse(r.lockedUntil as string) - ttlOf(e.command) })),
        );
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
      // Bookings whose command had ended while their lock was still valid, by the database's clock.
      const lead = await databaseClockLead(t.db);
      const inTime = pairs.filter(
        ({ lock, book }) => book.endedAt + lead + 2 < Math.min(...lock.records.map((l) => time(l.lockedUntil))),
      );
      const refusals = log
        .filter((e) => e.command[0] === 'book')
        .flatMap((e) => e.records.filter((r) => r.type === 'conflict').map((r) => r.reason as string));
      const why = [...new Set(refusals)].map((reason) => `${refusals.filter((r) => r === reason).length} ${reason}`);
      const commandMs = Math.round(median(log.map((e) => e.endedAt - e.startedAt)));
      console.log(
        `stress [${engine.name}]: ${seconds} s, ${log.length} commands (median ${commandMs} ms), ` +
          `${locks.length} seats locked, ${bookings.length} booked, ${releases.length} released ` +
          `by ${totals.length} release runs, ${history.length} history rows; ` +
          `bookings refused: ${why.join(', ') || 'none'}; ${inTime.length} surely in time`,
      );
      // The load was real: every kind of command succeeded many times, and late bookings were refused.
      expect(locks.length, `seats locked in ${seconds} s`).toBeGreaterThanOrEqual(2 * SECONDS);
      expect(bookings.length, `seats booked in ${seconds} s`).toBeGreaterThanOrEqual(3);
      expect(releases.length, `locks released in ${seconds} s`).toBeGreaterThanOrEqual(5);
      expect(counts.late, `bookings refused as too late in ${seconds} s`).toBeGreaterThanOrEqual(3);

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
        expect(locks.filter((l) => l.seat === booking.seat && after(l.takenAt))).toEqual([]);
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

      // 3b. And a booking whose command had ended while its lock was still valid was not refused
      //     (its holder's own lock, which nobody else may take or release before it expires).
      for (const { book } of inTime) {
        expect(book.result.code, `${book.command.join(' ')}: ${book.result.stdout}`).toBe(0);
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
          // The same holder again (a renewal, or a hold continued within the cool-down) is not a hand-over.
          if (next.lockedBy === previous.lockedBy) continue;
          const ended = history.find((h) => h.seat === seat && h.lockToken === previous.lockToken);
          const freedAt = Math.min(time(previous.lockedUntil), ended?.releasedAt ?? Infinity);
          expect(
            next.takenAt,
            `${seat}: token ${next.lockToken} taken before token ${previous.lockToken} ended`,
          ).toBeGreaterThanOrEqual(freedAt);
        }
      }
    },
  );
});
