import type { InstantStorage } from '../mapping/instant-storage.js';

/**
 * SQL that converts between an instant column in its app's storage and the
 * engine's canonical instant: integer epoch milliseconds on SQLite,
 * timestamptz on PostgreSQL (what seatctl's own tables hold, and what the
 * JavaScript side reads). Comparisons are written against the column in its
 * own storage, so an index on it serves them.
 */
export interface InstantCodec {
  /** The stored column as a canonical instant. */
  read(column: string): string;
  /** A canonical instant as the app would store it. */
  store(canonical: string): string;
  /** A canonical instant in the column's storage, at full precision, to compare the column with. */
  compare(canonical: string): string;
}

const identity: InstantCodec = { read: (c) => c, store: (x) => x, compare: (x) => x };

// SQLite: canonical instants are integer milliseconds (X). Text forms are built
// with integer arithmetic, never from a float, so no millisecond is lost.
const sqliteSeconds = (x: string) => `strftime('%Y-%m-%d %H:%M:%S', (${x}) / 1000, 'unixepoch')`;
const sqliteMillis = (x: string) => `printf('%03d', (${x}) % 1000)`;
// Both text forms keep the fraction at the same place ('YYYY-MM-DD HH:MM:SS.ffffff',
// 'YYYY-MM-DDTHH:MM:SS.sss+00:00'): whole seconds from unixepoch(), which reads
// either form (and any zone suffix), plus the first three digits of the
// fraction, truncated as PostgreSQL truncates microseconds to milliseconds.
const sqliteTextToMs = (c: string) =>
  `(unixepoch(${c}) * 1000 + CASE WHEN substr(${c}, 20, 1) = '.' THEN CAST(substr(${c} || '00', 21, 3) AS INTEGER) ELSE 0 END)`;

const SQLITE: Partial<Record<InstantStorage, InstantCodec>> = {
  'epoch-ms': identity,
  'epoch-s': {
    read: (c) => `(${c} * 1000)`,
    // Whole seconds, truncated: `column <= now` and `column > now` keep their meaning.
    store: (x) => `((${x}) / 1000)`,
    compare: (x) => `((${x}) / 1000)`,
  },
  // Django and Rails: 'YYYY-MM-DD HH:MM:SS.ffffff', no fraction when it is zero.
  // Compared as text: a value without a fraction is a prefix of the same second with one, so it sorts first.
  text: {
    read: sqliteTextToMs,
    store: (x) =>
      `(CASE WHEN (${x}) % 1000 = 0 THEN ${sqliteSeconds(x)} ELSE ${sqliteSeconds(x)} || '.' || ${sqliteMillis(x)} || '000' END)`,
    compare: (x) => `(${sqliteSeconds(x)} || '.' || ${sqliteMillis(x)} || '000')`,
  },
  // Prisma's SQLite driver adapters: 'YYYY-MM-DDTHH:MM:SS.sss+00:00'.
  'iso-text': {
    read: sqliteTextToMs,
    store: (x) => `(replace(${sqliteSeconds(x)}, ' ', 'T') || '.' || ${sqliteMillis(x)} || '+00:00')`,
    compare: (x) => `(replace(${sqliteSeconds(x)}, ' ', 'T') || '.' || ${sqliteMillis(x)} || '+00:00')`,
  },
};

// PostgreSQL: canonical instants are timestamptz.
const POSTGRES: Partial<Record<InstantStorage, InstantCodec>> = {
  timestamptz: identity,
  // UTC wall-clock time: never compared with now(), which the session's time zone would shift.
  timestamp: {
    read: (c) => `(${c} AT TIME ZONE 'UTC')`,
    store: (x) => `((${x}) AT TIME ZONE 'UTC')`,
    compare: (x) => `((${x}) AT TIME ZONE 'UTC')`,
  },
  'epoch-ms': {
    read: (c) => `to_timestamp(${c} / 1000.0)`,
    store: (x) => `CAST(floor(extract(epoch FROM ${x}) * 1000) AS bigint)`,
    compare: (x) => `CAST(floor(extract(epoch FROM ${x}) * 1000) AS bigint)`,
  },
  'epoch-s': {
    read: (c) => `to_timestamp(${c})`,
    store: (x) => `CAST(floor(extract(epoch FROM ${x})) AS bigint)`,
    compare: (x) => `CAST(floor(extract(epoch FROM ${x})) AS bigint)`,
  },
};

export function instantCodec(engine: 'sqlite' | 'postgres', storage: InstantStorage): InstantCodec {
  const codec = (engine === 'sqlite' ? SQLITE : POSTGRES)[storage];
  if (codec === undefined) throw new TypeError(`no ${engine} codec for ${storage}`);
  return codec;
}
