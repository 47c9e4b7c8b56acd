import { usageError } from '../errors.js';
import type { SeatctlConfig } from './config.js';
import { STORAGES_BY_ENGINE, type InstantStorage } from './instant-storage.js';
import { preset, type PresetName, type StatusValue } from './presets.js';

export interface TableRef {
  /** PostgreSQL schema; unset: the connection's search_path (SQLite: always unset). */
  schema?: string;
  table: string;
}

/** Where the seats live: a preset, resolved against the config and the engine. */
export interface SeatMapping {
  /** `custom` when the config describes the tables without a preset. */
  preset: PresetName | 'custom';
  /** seatctl's own schema: created by seatctl migrate, which seed may fill. */
  owned: boolean;
  seats: TableRef & {
    id: string;
    event: string;
    seat: string;
    status: string;
    statusValues: { available: StatusValue; locked: StatusValue; booked: StatusValue };
    lockedUntil: string;
    /** How every instant column of the seats table stores its instant. */
    timeStorage: InstantStorage;
    /** Who holds a lock: a text column, or a key into a table that names the holder. */
    holder: { column: string; references: (TableRef & { id: string; name: string }) | null };
    lockToken: string | null;
    /** When the holder first locked the seat: the hold cap counts from it. */
    lockedAt: string | null;
    bookedBy: string | null;
    bookedAt: string | null;
    /** Set to the change's instant on every seat seatctl writes (Rails' updated_at). */
    touch: string[];
  };
  /** Event names; without it, events are known by their id only. */
  events: (TableRef & { id: string; name: string }) | null;
  /** Columns the preset named on the chance the table has them; dropped when it doesn't. */
  ifPresent: string[];
  /** seatctl's own tables: history, heartbeat, migrations. */
  own: {
    schema?: string;
    history: string;
    runs: string;
    migrations: string;
  };
  /** Where the mapping came from, for messages: a config file's path, or "the default schema". */
  source: string;
}

export const DEFAULT_OWN_SCHEMA = 'seatctl';

/** seatctl's own tables on a database it shares with an app: prefixed, and on PostgreSQL in a schema of their own. */
function ownTables(engine: 'sqlite' | 'postgres', schema: string | undefined): SeatMapping['own'] {
  return {
    schema: engine === 'postgres' ? (schema ?? DEFAULT_OWN_SCHEMA) : undefined,
    history: 'seatctl_release_history',
    runs: 'seatctl_release_runs',
    migrations: 'seatctl_migrations',
  };
}

/** The mapping of seatctl's own schema, used when there is no config. */
export function defaultMapping(engine: 'sqlite' | 'postgres'): SeatMapping {
  return resolveMapping({}, engine, 'the default schema');
}

/**
 * Resolves a validated config against its preset and the engine. Errors are
 * one sentence naming the key, prefixed with `source`.
 */
export function resolveMapping(config: SeatctlConfig, engine: 'sqlite' | 'postgres', source: string): SeatMapping {
  const fail = (message: string) => usageError(`${source}: ${message}`);
  const seatsConfig = config.seats ?? {};
  const presetName: PresetName | 'custom' = config.preset ?? (config.seats === undefined ? 'seatctl' : 'custom');

  if (presetName === 'seatctl') {
    const remapped = (['app', 'seats', 'events', 'seatctlSchema'] as const).find((key) => config[key] !== undefined);
    if (remapped !== undefined) {
      throw fail(
        `${remapped} can't be set with the seatctl preset, which is seatctl's own schema; to map an app's tables choose the preset "django", "rails" or "prisma", or describe the tables under "seats" without a preset`,
      );
    }
  }
  if (presetName === 'django' && config.app === undefined) {
    throw fail('the django preset needs app, the Django app label that names the tables (e.g. "reservations")');
  }
  if (presetName !== 'django' && config.app !== undefined) {
    throw fail('app is the Django app label: it only applies to the django preset');
  }
  if (presetName === 'custom') {
    for (const key of ['table', 'event', 'seat', 'lockedUntil', 'timeStorage', 'holder'] as const) {
      if (seatsConfig[key] === undefined) throw fail(`seats.${key} is missing (there is no preset to take it from)`);
    }
  }

  const base = presetName === 'custom' ? undefined : preset(presetName, config.app);
  const pick = <K extends keyof NonNullable<typeof base>['seats']>(key: K, fallback?: NonNullable<typeof base>['seats'][K]) =>
    (seatsConfig as Record<string, unknown>)[key] ?? base?.seats[key] ?? fallback;

  const timeStorage = (seatsConfig.timeStorage ?? base?.seats.timeStorage[engine]) as InstantStorage;
  if (!STORAGES_BY_ENGINE[engine].includes(timeStorage)) {
    throw fail(
      `seats.timeStorage "${timeStorage}" is not a way ${engine === 'sqlite' ? 'SQLite' : 'PostgreSQL'} stores instants (use ${STORAGES_BY_ENGINE[engine].map((s) => `"${s}"`).join(', ')})`,
    );
  }

  const holderConfig = seatsConfig.holder ?? base!.seats.holder;
  // A string is a text column; an object overrides the preset's key reference part by part.
  const holder: { column: string; table?: string; schema?: string; id?: string; name?: string } =
    typeof holderConfig === 'string'
      ? { column: holderConfig }
      : holderConfig.table === undefined && base?.seats.holder.table !== undefined
        ? { ...base.seats.holder, ...holderConfig }
        : holderConfig;
  if (holder.table === undefined && (holder.id !== undefined || holder.name !== undefined || holder.schema !== undefined)) {
    throw fail('seats.holder.table is missing: id and name describe the table that names the holder');
  }

  const statusValues = { available: 'available', locked: 'locked', booked: 'booked', ...base?.seats.statusValues, ...seatsConfig.statusValues };
  const distinct = new Set(Object.values(statusValues).map((value) => `${typeof value}:${value}`));
  if (distinct.size < 3) throw fail('seats.statusValues must be three different values');
  const kinds = new Set(Object.values(statusValues).map((value) => typeof value));
  if (kinds.size > 1) throw fail('seats.statusValues must be all strings or all whole numbers');

  const eventsConfig: { schema?: string; table?: string; id?: string; name?: string } | null =
    config.events === undefined ? (base?.events ?? null) : config.events;
  if (presetName === 'custom' && eventsConfig !== null && eventsConfig.table === undefined) {
    throw fail('events.table is missing (or set events to null when there is no events table)');
  }
  const baseEvents = base?.events ?? { table: '', id: 'id', name: 'name' };

  const optional = (key: 'lockToken' | 'lockedAt' | 'bookedBy' | 'bookedAt') => {
    const value = seatsConfig[key];
    return value === undefined ? (base?.seats[key] ?? null) : value;
  };

  return {
    preset: presetName,
    owned: presetName === 'seatctl',
    seats: {
      schema: engine === 'postgres' ? seatsConfig.schema : undefined,
      table: pick('table') as string,
      id: pick('id', 'id') as string,
      event: pick('event') as string,
      seat: pick('seat') as string,
      status: pick('status', 'status') as string,
      statusValues,
      lockedUntil: pick('lockedUntil') as string,
      timeStorage,
      holder: {
        column: holder.column,
        references:
          holder.table === undefined
            ? null
            : {
                schema: engine === 'postgres' ? holder.schema : undefined,
                table: holder.table,
                id: holder.id ?? 'id',
                name: holder.name ?? 'name',
              },
      },
      lockToken: optional('lockToken'),
      lockedAt: optional('lockedAt'),
      bookedBy: optional('bookedBy'),
      bookedAt: optional('bookedAt'),
      touch: seatsConfig.touch ?? base?.seats.touch ?? [],
    },
    events:
      eventsConfig === null
        ? null
        : {
            schema: engine === 'postgres' ? eventsConfig.schema : undefined,
            table: eventsConfig.table ?? baseEvents.table,
            id: eventsConfig.id ?? baseEvents.id,
            name: eventsConfig.name ?? baseEvents.name,
          },
    ifPresent: (base?.ifPresent ?? []).filter((column) => seatsConfig.touch === undefined || !seatsConfig.touch.includes(column)),
    own:
      presetName === 'seatctl'
        ? { history: 'release_history', runs: 'release_runs', migrations: 'knex_migrations' }
        : ownTables(engine, config.seatctlSchema),
    source,
  };
}
