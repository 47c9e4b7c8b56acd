import type { Knex } from 'knex';
import type pg from 'pg';
import type { ReleasedLock } from './engine.js';
import { cancelOnAbort, runStatement, withConnection } from './query.js';
import type { ReleaseScope, SeatStore } from './seat-store.js';

/** Milliseconds (SQL evaluating to a number) as an interval. */
export const pgInterval = (ms: string) => `(CAST(${ms} AS double precision) * interval '1 millisecond')`;

/**
 * One release batch on PostgreSQL, one statement:
 * - `picked` takes the batch's expired locks in id order, FOR UPDATE SKIP
 *   LOCKED: a seat another transaction is booking right now is left for the
 *   next run, and neither side waits. statement_timestamp() is stable, so the
 *   pick is planned on an index of the locked seats.
 * - the UPDATE finds its rows by id (= ANY of the picked ids), never by a join
 *   the planner could turn into a nested loop over every locked seat when the
 *   statistics say none are locked; it re-checks against the running clock.
 * - the history rows come from `picked`: the rows are ours until commit, so
 *   every picked lock is the one released, and its holder is the one it had.
 */
export function releaseBatchPostgres(
  knex: Knex,
  store: SeatStore,
  scope: ReleaseScope & { cancel?: AbortSignal },
): Promise<ReleasedLock[]> {
  const byEvent = scope.eventId !== undefined;
  const parts = store.releaseParts();
  const stmt = store.statementFor(`release:${byEvent}`, (p) => {
    const grace = pgInterval(p('grace'));
    return `WITH picked AS (
        SELECT ${parts.pickColumns}
        FROM ${parts.from}
        WHERE s.${parts.status} = ${parts.locked} AND ${parts.expiredBefore(`(statement_timestamp() - ${grace})`, 's')}
          AND s.${parts.id} > ${p('after')}${byEvent ? ` AND ${parts.event} = ${p('eventId')}` : ''}
        ORDER BY s.${parts.id}
        LIMIT ${parts.int(p('limit'))}
        FOR UPDATE OF s SKIP LOCKED
      ), released AS (
        UPDATE ${parts.seats} SET ${parts.clear('clock_timestamp()')}
        WHERE ${parts.id} = ANY(ARRAY(SELECT seat_id FROM picked))
          AND ${parts.status} = ${parts.locked} AND ${parts.expiredBefore(`(clock_timestamp() - ${grace})`)}
      )
      INSERT INTO ${parts.history} ${parts.historyColumns}
      SELECT event_id, seat_id, seat_number, locked_by, locked_until, lock_token, locked_at, clock_timestamp(), 'expired'
      FROM picked
      RETURNING event_id, seat_id, seat_number, locked_by, locked_until, lock_token, released_at`;
  });
  const values: Record<string, unknown> = { grace: scope.graceMs, after: scope.afterSeatId, limit: scope.batchSize };
  if (byEvent) values.eventId = scope.eventId;
  return withConnection(knex, async (conn) => {
    const running = runStatement<Record<string, unknown>>(conn, stmt, values);
    const stopCancel = cancelOnAbort((backend) => knex.raw('SELECT pg_cancel_backend(?)', [backend]), conn as pg.ClientBase, scope.cancel);
    try {
      const rows = await running;
      return rows.map((row) => store.releasedLock(row, row.released_at as Date));
    } finally {
      await stopCancel();
    }
  });
}
