import type { Knex } from 'knex';
import type Database from 'better-sqlite3';
import type { BatchCount, ReleasedLock } from './engine.js';
import { prepare } from './query.js';
import type { ReleaseScope, SeatStore } from './seat-store.js';

// Integer milliseconds since the epoch (UTC), from SQLite's own clock.
export const SQLITE_NOW = "CAST(ROUND(unixepoch('subsec') * 1000) AS INTEGER)";

type LoggedRow = [
  id: number,
  eventId: number,
  seatId: number,
  seat: string,
  lockedBy: string,
  lockedUntil: number,
  lockToken: number | null,
  releasedAt: number,
];

/**
 * A release batch's two statements on SQLite, run inside one BEGIN IMMEDIATE
 * transaction: the history rows are written from the seats as they are
 * (holder and expiry as they were), then the seats they name are released,
 * re-checked as they are written. The write lock is held throughout, so
 * nothing can change between the two. Prepared once per connection.
 */
function releaseStatements(store: SeatStore, byEvent: boolean, returning: boolean) {
  const parts = store.releaseParts();
  const cutoff = (p: (name: string) => string) => `(${SQLITE_NOW} - ${parts.int(p('grace'))})`;
  const pick = store.statementFor(
    `release:pick:${byEvent}:${returning}`,
    (p) => `INSERT INTO ${parts.history} ${parts.historyColumns}
      SELECT ${parts.pickColumns}, ${SQLITE_NOW}, 'expired'
      FROM ${parts.from}
      WHERE s.${parts.status} = ${parts.locked} AND ${parts.expiredBefore(cutoff(p), 's')} AND s.${parts.id} > ${p('after')}${byEvent ? ` AND ${parts.event} = ${p('eventId')}` : ''}
      ORDER BY s.${parts.id}
      LIMIT ${parts.int(p('limit'))}${returning ? '\n      RETURNING id, event_id, seat_id, seat_number, locked_by, locked_until, lock_token, released_at' : ''}`,
  );
  const release = store.statementFor(
    'release:seats',
    // Found by id: nothing can change between the two statements under the
    // write lock, and a condition on the expiry would tempt the planner to walk
    // every locked seat through an index on it, once per batch.
    () => `UPDATE ${parts.seats} SET ${parts.clear(SQLITE_NOW)}
      WHERE ${parts.status} = ${parts.locked}
        AND ${parts.id} IN (SELECT seat_id FROM ${parts.history} WHERE id BETWEEN @first AND @last)`,
  );
  return { pick, release };
}

function batchArgs(scope: ReleaseScope): Record<string, unknown> {
  const args: Record<string, unknown> = { grace: scope.graceMs, after: scope.afterSeatId, limit: scope.batchSize };
  if (scope.eventId !== undefined) args.eventId = scope.eventId;
  return args;
}

/**
 * One release batch on SQLite, its locks read back from the history rows
 * (RETURNING, as arrays: this is the hot path of a big release).
 */
export function releaseBatchSqlite(knex: Knex, store: SeatStore, scope: ReleaseScope): Promise<ReleasedLock[]> {
  const { pick, release } = releaseStatements(store, scope.eventId !== undefined, true);
  return knex.transaction(async (trx) => {
    const conn: Database.Database = await trx.client.acquireConnection();
    const logged = prepare(conn, pick.text).raw(true).all(batchArgs(scope)) as LoggedRow[];
    if (logged.length === 0) return [];
    let first = logged[0]![0];
    let last = first;
    const released = new Array<ReleasedLock>(logged.length);
    for (let i = 0; i < logged.length; i++) {
      const row = logged[i]!;
      if (row[0] < first) first = row[0];
      if (row[0] > last) last = row[0];
      released[i] = {
        event: '',
        eventId: row[1],
        seatId: row[2],
        seat: row[3],
        lockedBy: row[4],
        lockedUntil: new Date(row[5]),
        lockToken: row[6],
        releasedAt: new Date(row[7]),
      };
    }
    prepare(conn, release.text).run({ first, last });
    return released;
  });
}

/**
 * The same batch without reading the locks back: one INSERT … SELECT writes
 * the history rows, whose ids are consecutive (one statement under the write
 * lock: each new id is the largest plus one), so the seats are found by that
 * id range; the last row names the last seat, where the next batch starts.
 * Turning 10,000 rows into JavaScript objects costs more than writing them.
 */
export function releaseBatchCountSqlite(knex: Knex, store: SeatStore, scope: ReleaseScope): Promise<BatchCount> {
  const { pick, release } = releaseStatements(store, scope.eventId !== undefined, false);
  const lastSeat = store.statementFor('release:last-seat', () => `SELECT seat_id FROM ${store.releaseParts().history} WHERE id = @last`);
  return knex.transaction(async (trx) => {
    const conn: Database.Database = await trx.client.acquireConnection();
    const { changes, lastInsertRowid } = prepare(conn, pick.text).run(batchArgs(scope));
    if (changes === 0) return { released: 0, lastSeatId: scope.afterSeatId };
    const last = Number(lastInsertRowid);
    prepare(conn, release.text).run({ first: last - changes + 1, last });
    const lastSeatId = prepare(conn, lastSeat.text).pluck().get({ last }) as number;
    return { released: changes, lastSeatId };
  });
}
