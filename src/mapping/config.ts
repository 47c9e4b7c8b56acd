import * as v from 'valibot';
import { usageError, type SeatctlError } from '../errors.js';
import { INSTANT_STORAGES } from './instant-storage.js';
import { PRESET_NAMES } from './presets.js';

// The config file as users write it: every key optional except where a
// preset can't guess (Django's app label). Validation says what is wrong in
// one sentence that names the key; resolving it against a preset and an
// engine is mapping.ts's job.

const identifier = v.pipe(
  v.string('must be a name (a string)'),
  v.minLength(1, 'must not be empty'),
  v.maxLength(63, 'is longer than 63 characters (the PostgreSQL limit)'),
  v.check((name) => !name.includes('\0'), 'must not contain a NUL character'),
);

const statusValue = v.union(
  [
    v.pipe(v.string(), v.minLength(1, 'must not be empty'), v.maxLength(100, 'is longer than 100 characters')),
    v.pipe(v.number(), v.safeInteger('must be a string or a whole number')),
  ],
  'must be a string or a whole number',
);

const storage = v.picklist(INSTANT_STORAGES, `must be one of ${INSTANT_STORAGES.map((s) => `"${s}"`).join(', ')}`);

const holderReference = v.strictObject(
  {
    column: identifier,
    table: v.optional(identifier),
    schema: v.optional(identifier),
    id: v.optional(identifier),
    name: v.optional(identifier),
  },
  'must be a column name, or an object {"column", "table", "id", "name"}',
);

const optionalColumn = v.nullable(identifier);

const seatsSchema = v.strictObject(
  {
    schema: v.optional(identifier),
    table: v.optional(identifier),
    id: v.optional(identifier),
    event: v.optional(identifier),
    seat: v.optional(identifier),
    status: v.optional(identifier),
    statusValues: v.optional(
      v.strictObject(
        { available: v.optional(statusValue), locked: v.optional(statusValue), booked: v.optional(statusValue) },
        'must be an object {"available", "locked", "booked"}',
      ),
    ),
    lockedUntil: v.optional(identifier),
    timeStorage: v.optional(storage),
    holder: v.optional(v.union([identifier, holderReference], 'must be a column name, or an object {"column", "table", "id", "name"}')),
    lockToken: v.optional(optionalColumn),
    lockedAt: v.optional(optionalColumn),
    bookedBy: v.optional(optionalColumn),
    bookedAt: v.optional(optionalColumn),
    touch: v.optional(v.array(identifier, 'must be a list of column names')),
  },
  'must be an object',
);

const eventsSchema = v.nullable(
  v.strictObject(
    { schema: v.optional(identifier), table: v.optional(identifier), id: v.optional(identifier), name: v.optional(identifier) },
    'must be an object {"table", "id", "name"}, or null when there is no events table',
  ),
);

const configSchema = v.strictObject(
  {
    $schema: v.optional(v.string()),
    preset: v.optional(
      v.picklist(PRESET_NAMES, `must be one of ${PRESET_NAMES.map((p) => `"${p}"`).join(', ')}`),
    ),
    app: v.optional(identifier),
    database: v.optional(v.pipe(v.string('must be a database URL or path (a string)'), v.minLength(1, 'must not be empty'))),
    seats: v.optional(seatsSchema),
    events: v.optional(eventsSchema),
    seatctlSchema: v.optional(identifier),
  },
  'must be an object',
);

/** The config file's contents, validated but not yet resolved against a preset. */
export type SeatctlConfig = v.InferOutput<typeof configSchema>;
export type SeatsConfig = NonNullable<SeatctlConfig['seats']>;
export type HolderConfig = NonNullable<SeatsConfig['holder']>;

/**
 * Validates a config object. `source` names where it came from (a file
 * path, or "the mapping option") for the one-sentence error.
 */
export function parseConfig(raw: unknown, source: string): SeatctlConfig {
  if (Array.isArray(raw)) throw usageError(`${source}: the config must be an object, not a list`);
  const result = v.safeParse(configSchema, raw, { abortEarly: true });
  if (result.success) return result.output;
  throw configError(source, result.issues[0]);
}

function configError(source: string, issue: v.BaseIssue<unknown>): SeatctlError {
  const path = (issue.path ?? []).map((item) => String(item.key)).join('.');
  if (issue.type === 'strict_object' && issue.expected === 'never') {
    return usageError(`${source}: unknown key ${path}`);
  }
  if (issue.type === 'strict_object' && issue.input === undefined && path !== '') {
    return usageError(`${source}: ${path} is missing`);
  }
  // Length checks report the length as "received": show what was written instead.
  const shown = issue.type === 'min_length' || issue.type === 'max_length' ? JSON.stringify(issue.input) : issue.received;
  const got = shown && shown !== 'undefined' && issue.message !== 'must not be empty' ? ` (got ${shown})` : '';
  return usageError(`${source}: ${path === '' ? 'the config' : path} ${issue.message}${got}`);
}
