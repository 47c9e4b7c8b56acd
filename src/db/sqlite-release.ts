import type { Knex } from 'knex';
import type Database from 'better-sqlite3';
import type { ReleasedLock } from './engine.js';
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
 * One release batch on SQLite, inside one BEGIN IMMEDIATE transaction: the
 * history rows are written from the seats as they are (holder and expiry as
 * they were), then the seats they name are released, re-checked as they are
 * written. The write lock is held throughout, so nothing can change between
 * the two statements. Both are prepared once per connection and read as arrays:
 * this is the hot path of a big release.
 */
export function releaseBatchSqlite(knex: Knex, store: SeatStore, scope: ReleaseScope): Promise<ReleasedLock[]> {
  const byEvent = scope.eventId !== undefined;
  const parts = store.releaseParts();
  const cutoff = (p: (name: string) => string) => `(${SQLITE_NOW} - ${parts.int(p('grace'))})`;
  const pick = store.statementFor(
    `release:pick:${byEvent}`,
    (p) => `INSERT INTO ${parts.history} ${parts.historyColumns}
      SELECT ${parts.pickColumns}, ${SQLITE_NOW}, 'expired'
      FROM ${parts.from}
      WHERE s.${parts.status} = ${parts.locked} AND ${parts.expiredBefore(cutoff(p), 's')} AND s.${parts.id} > ${p('after')}${byEvent ? ` AND ${parts.event} = ${p('eventId')}` : ''}
      ORDER BY s.${parts.id}
      LIMIT ${parts.int(p('limit'))}
      RETURNING id, event_id, seat_id, seat_number, locked_by, locked_until, lock_token, released_at`,
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
  return knex.transaction(async (trx) => {
    const conn: Database.Database = await trx.client.acquireConnection();
    const args: Record<string, unknown> = { grace: scope.graceMs, after: scope.afterSeatId, limit: scope.batchSize };
    if (byEvent) args.eventId = scope.eventId;
    const logged = prepare(conn, pick.text).raw(true).all(args) as LoggedRow[];
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
