import { setImmediate } from 'node:timers/promises';
import type { Knex } from 'knex';
import * as demo from '../../seeds/demo.js';
import { guard, type SeatDatabase } from '../db/open.js';
import { ensureSchema } from '../db/schema.js';
import { SeatctlError, usageError } from '../errors.js';

export const MAX_SEED_EVENTS = 100_000;
export const MAX_SEATS_PER_EVENT = 100_000;
export const MAX_SEED_SEATS = 20_000_000;

export interface DemoSeedResult {
  event: string;
  seats: number;
  expired: number;
  active: number;
  booked: number;
}

/** Seeds write demo data into seatctl's own schema, never into an app's tables. */
export function assertSeedable(db: SeatDatabase): void {
  if (!db.mapping.owned) {
    throw usageError(
      `seed only fills seatctl's own schema, and ${db.target.display} is an app's database (mapped by ${db.mapping.source}): nothing was written`,
    );
  }
}

/** Restores the demo event of the Quick start: 100 seats, 19 expired locks, 3 active locks, 5 bookings. */
export async function seedDemo(db: SeatDatabase, options: { reset?: boolean } = {}): Promise<DemoSeedResult> {
  assertSeedable(db);
  return guard(db, async () => {
    await ensureSchema(db);
    await db.engine.writeTransaction(db.knex, async (trx) => {
      if (options.reset) await emptyAll(trx);
      await demo.seed(trx, db.engine);
    });
    return {
      event: demo.DEMO_EVENT,
      seats: demo.DEMO_ROWS.length * demo.DEMO_SEATS_PER_ROW,
      expired: demo.DEMO_EXPIRED.length,
      active: demo.DEMO_ACTIVE.length,
      booked: demo.DEMO_BOOKED.length,
    };
  });
}

export interface SyntheticSeedOptions {
  events: number;
  seatsPerEvent: number;
  /** Locks held by `admin` that expired between 1 minute and 1 hour ago. */
  expired?: number;
  /** Locks held by `alice` that expire in 1 to 11 minutes. */
  active?: number;
  /** Seats booked by `bob`. */
  booked?: number;
  /** Empty every table first. */
  reset?: boolean;
  /** Called after each chunk of seats is written (inside the transaction). */
  onProgress?: (seatsWritten: number, seatsTotal: number) => void;
  /** Stops between chunks; the whole seed is then rolled back. */
  signal?: AbortSignal;
}

export interface SyntheticSeedResult {
  events: number;
  seats: number;
  expired: number;
  active: number;
  booked: number;
}

const SEATS_PER_CHUNK = 50_000;
const EVENTS_PER_CHUNK = 5_000;

/**
 * Seeds synthetic events `Event 0001`… with `seatsPerEvent` seats each (A1…A20,
 * B1…), replacing events of the same names, in one transaction. The locked and
 * booked seats are spread evenly over all seats; which are which is fixed by
 * the sizes, so a seed can be repeated exactly.
 */
export async function seedSynthetic(db: SeatDatabase, options: SyntheticSeedOptions): Promise<SyntheticSeedResult> {
  const { events, seatsPerEvent } = options;
  const expired = options.expired ?? 0;
  const active = options.active ?? 0;
  const booked = options.booked ?? 0;
  checkCount('--events', events, 1, MAX_SEED_EVENTS);
  checkCount('--seats-per-event', seatsPerEvent, 1, MAX_SEATS_PER_EVENT);
  const total = events * seatsPerEvent;
  if (total > MAX_SEED_SEATS)
    throw usageError(`at most ${MAX_SEED_SEATS} seats can be seeded at once (asked for ${total})`);
  checkCount('--expired', expired, 0, total);
  checkCount('--active', active, 0, total);
  checkCount('--booked', booked, 0, total);
  if (expired + active + booked > total) {
    throw usageError(
      `--expired, --active and --booked add up to ${expired + active + booked}, more than the ${total} seats`,
    );
  }
  assertSeedable(db);
  const { engine } = db;

  return guard(db, async () => {
    await ensureSchema(db);
    await engine.writeTransaction(db.knex, async (trx) => {
      if (options.reset) await emptyAll(trx);
      const width = String(events).length < 4 ? 4 : String(events).length;
      const names = Array.from({ length: events }, (_, i) => `Event ${String(i + 1).padStart(width, '0')}`);
      for (let i = 0; i < names.length; i += EVENTS_PER_CHUNK) {
        const chunk = names.slice(i, i + EVENTS_PER_CHUNK);
        const old = trx('events').select('id').whereIn('name', chunk);
        await trx('release_history').whereIn('event_id', old.clone()).delete();
        await trx('seats').whereIn('event_id', old.clone()).delete();
        await trx('events').whereIn('name', chunk).delete();
      }

      const [clock] = engine.rows<{ now: unknown }>(await trx.raw(`SELECT ${engine.now} AS now`));
      const now = engine.bindInstant(engine.readInstant(clock!.now));
      const prime = coprimeStride(total);
      const eventsPerChunk = Math.max(1, Math.min(EVENTS_PER_CHUNK, Math.floor(SEATS_PER_CHUNK / seatsPerEvent)));
      let written = 0;
      for (let first = 0; first < events; first += eventsPerChunk) {
        await setImmediate(); // a turn for the event loop: signals, timers, other requests
        if (options.signal?.aborted)
          throw new SeatctlError('interrupted', 'seeding was interrupted; nothing was written');
        const chunk = names.slice(first, first + eventsPerChunk);
        const inserted: Array<{ id: number; name: string }> = await trx('events')
          .insert(chunk.map((name) => ({ name })))
          .returning(['id', 'name']);
        const ordinal = new Map(names.slice(first, first + eventsPerChunk).map((name, i) => [name, first + i]));
        await insertSeats(trx, engine, {
          events: inserted.map((event) => [event.id, ordinal.get(event.name)!]),
          seatsPerEvent,
          total,
          prime,
          expired,
          active,
          booked,
          now,
        });
        written += chunk.length * seatsPerEvent;
        options.onProgress?.(written, total);
      }
    });
    return { events, seats: total, expired, active, booked };
  });
}

interface SeatChunk {
  events: Array<[id: number, ordinal: number]>;
  seatsPerEvent: number;
  total: number;
  prime: number;
  expired: number;
  active: number;
  booked: number;
  now: unknown;
}

/** One INSERT … SELECT for the seats of a chunk of events: the database generates the rows. */
async function insertSeats(trx: Knex.Transaction, engine: SeatDatabase['engine'], chunk: SeatChunk): Promise<void> {
  const { chr } = engine;
  const NOW = engine.castInstant(':now');
  // Seats come in rows of 20: A1…A20, B1…, Z20, AA1…, ZZ20, AAA1…
  const r = 'CAST(seq.n / 20 AS INTEGER)';
  const rowLabel = `CASE
      WHEN ${r} < 26 THEN ${chr(`65 + ${r}`)}
      WHEN ${r} < 702 THEN ${chr(`65 + (${r} - 26) / 26`)} || ${chr(`65 + (${r} - 26) % 26`)}
      ELSE ${chr(`65 + (${r} - 702) / 676`)} || ${chr(`65 + ((${r} - 702) / 26) % 26`)} || ${chr(`65 + (${r} - 702) % 26`)}
    END`;
  // A permutation of 0…total-1 that spreads each kind of seat over all events.
  const j = '((CAST(ev.ord AS BIGINT) * :seatsPerEvent + seq.n) * :prime % :total)';
  const kind = (a: string, b: string, c: string, d: string) =>
    `CASE WHEN j < :expiredEnd THEN ${a} WHEN j < :activeEnd THEN ${b} WHEN j < :bookedEnd THEN ${c} ELSE ${d} END`;
  // Ids and ordinals are integers this function was handed, never user input.
  const values = chunk.events
    .map(([id, ord]) => {
      if (!Number.isSafeInteger(id) || !Number.isSafeInteger(ord)) throw new TypeError('event ids must be integers');
      return `(${id}, ${ord})`;
    })
    .join(', ');
  const sql = `
    WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < :seatsPerEvent),
    ev(id, ord) AS (VALUES ${values}),
    gen AS (SELECT ev.id AS event_id, ${rowLabel} || CAST(seq.n % 20 + 1 AS TEXT) AS seat_number, ${j} AS j
            FROM ev CROSS JOIN seq)
    INSERT INTO seats (event_id, seat_number, status, locked_by, locked_until, locked_at, lock_token, booked_by, booked_at)
    SELECT event_id, seat_number,
      ${kind("'locked'", "'locked'", "'booked'", "'available'")},
      ${kind("'admin'", "'alice'", 'NULL', 'NULL')},
      ${kind(engine.addMs(NOW, '-60000 - (j % 3540) * 1000'), engine.addMs(NOW, '60000 + (j % 600) * 1000'), 'NULL', 'NULL')},
      ${kind(engine.addMs(NOW, '-360000 - (j % 3540) * 1000'), engine.addMs(NOW, '-60000'), 'NULL', 'NULL')},
      ${kind('1', '1', '1', '0')},
      ${kind('NULL', 'NULL', "'bob'", 'NULL')},
      ${kind('NULL', 'NULL', engine.addMs(NOW, '-1800000'), 'NULL')}
    FROM gen`;
  await trx.raw(sql, {
    seatsPerEvent: chunk.seatsPerEvent,
    prime: chunk.prime,
    total: chunk.total,
    expiredEnd: chunk.expired,
    activeEnd: chunk.expired + chunk.active,
    bookedEnd: chunk.expired + chunk.active + chunk.booked,
    now: chunk.now,
  });
}

/** A stride coprime with `total`, so `(i * stride) % total` visits every seat once. */
function coprimeStride(total: number): number {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  for (const candidate of [7919, 7927, 7933, 7937, 7949, 7951, 104729]) {
    if (gcd(candidate % total || total, total) === 1) return candidate;
  }
  return 1;
}

async function emptyAll(trx: Knex.Transaction): Promise<void> {
  for (const table of ['release_history', 'release_runs', 'seats', 'events']) await trx(table).delete();
}

function checkCount(flag: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw usageError(`${flag} must be a whole number from ${min} to ${max}`);
  }
}
