/**
 * How an app stores an instant in a column:
 * - `timestamptz`: PostgreSQL `timestamp with time zone` (Django on PostgreSQL);
 * - `timestamp`: PostgreSQL `timestamp without time zone` holding UTC (Rails, Prisma on PostgreSQL);
 * - `text`: SQLite text `YYYY-MM-DD HH:MM:SS.ffffff` in UTC, the fraction left out when it is zero (Django, Rails on SQLite);
 * - `iso-text`: SQLite text `YYYY-MM-DDTHH:MM:SS.sss+00:00` (Prisma's SQLite driver adapters);
 * - `epoch-ms`: whole milliseconds since 1970 (seatctl's own SQLite schema; Prisma's older SQLite engine);
 * - `epoch-s`: whole seconds since 1970.
 */
export const INSTANT_STORAGES = ['timestamptz', 'timestamp', 'text', 'iso-text', 'epoch-ms', 'epoch-s'] as const;
export type InstantStorage = (typeof INSTANT_STORAGES)[number];

/** The storages each engine can hold. */
export const STORAGES_BY_ENGINE: Record<'sqlite' | 'postgres', readonly InstantStorage[]> = {
  sqlite: ['text', 'iso-text', 'epoch-ms', 'epoch-s'],
  postgres: ['timestamptz', 'timestamp', 'epoch-ms', 'epoch-s'],
};
