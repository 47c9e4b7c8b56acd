import type { Knex } from 'knex';
import type pg from 'pg';
import type { BatchCount, ReleasedLock } from './engine.js';
import { cancelOnAbort, runStatement, withConnection, type Statement } from './query.js';
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
  const stmt = releaseStatement(store, scope.eventId !== undefined, true);
  return runRelease(knex, stmt, scope, (rows) => rows.map((row) => store.releasedLock(row, row.released_at as Date)));
}

/** The same batch, counted on the server: no seat travels back (release-expired-locks --quiet). */
export function releaseBatchCountPostgres(
  knex: Knex,
  store: SeatStore,
  scope: ReleaseScope & { cancel?: AbortSignal },
): Promise<BatchCount> {
  const stmt = releaseStatement(store, scope.eventId !== undefined, false);
  return runRelease(knex, stmt, scope, ([row]) => ({
    released: Number(row?.released ?? 0),
    lastSeatId: row?.last_seat_id == null ? scope.afterSeatId : Number(row.last_seat_id),
  }));
}

function releaseStatement(store: SeatStore, byEvent: boolean, returning: boolean) {
  const parts = store.releaseParts();
  return store.statementFor(`release:${byEvent}:${returning}`, (p) => {
    const grace = pgInterval(p('grace'));
    const logged = `INSERT INTO ${parts.history} ${parts.historyColumns}
      SELECT event_id, seat_id, seat_number, locked_by, locked_until, lock_token, locked_at, clock_timestamp(), 'expired'
      FROM picked`;
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
      )${
        returning
          ? `
      ${logged}
      RETURNING event_id, seat_id, seat_number, locked_by, locked_until, lock_token, released_at`
          : `, logged AS (
      ${logged}
      RETURNING seat_id
      )
      SELECT count(*) AS released, max(seat_id) AS last_seat_id FROM logged`
      }`;
  });
}

function runRelease<T>(
  knex: Knex,
  stmt: Statement,
  scope: ReleaseScope & { cancel?: AbortSignal },
  result: (rows: Record<string, unknown>[]) => T,
): Promise<T> {
  const values: Record<string, unknown> = { grace: scope.graceMs, after: scope.afterSeatId, limit: scope.batchSize };
  if (scope.eventId !== undefined) values.eventId = scope.eventId;
  return withConnection(knex, async (conn) => {
    const running = runStatement<Record<string, unknown>>(conn, stmt, values);
    const stopCancel = cancelOnAbort((backend) => knex.raw('SELECT pg_cancel_backend(?)', [backend]), conn as pg.ClientBase, scope.cancel);
    try {
      return result(await running);
    } finally {
      await stopCancel();
    }
  });
}
