import type { Knex } from 'knex';
import type { SeatMapping, TableRef } from '../mapping/mapping.js';
import type { InstantStorage } from '../mapping/instant-storage.js';
import { tableColumns, type ColumnInfo } from './introspect.js';

export type FindingLevel = 'ok' | 'warning' | 'error';

/** One line of what a check found: right (`ok`), worth fixing (`warning`), or in the way (`error`). */
export interface Finding {
  level: FindingLevel;
  message: string;
}

export interface MappingFit {
  /** The mapping as it applies here: preset columns the table lacks are left out. */
  mapping: SeatMapping;
  findings: Finding[];
  /** The seats table's columns, when it exists. */
  seatColumns?: Map<string, ColumnInfo>;
}

const INTEGER_TYPES = /^(smallint|integer|bigint|int|int2|int4|int8|numeric(\(\d+(,\s*0)?\))?)$/;
const TEXT_TYPES = /^(text|character varying(\(\d+\))?|character(\(\d+\))?|varchar(\(\d+\))?|citext|name)$/;

/** Does a column's declared type hold instants the way the mapping says? Null when it fits. */
function storageMismatch(engine: 'sqlite' | 'postgres', storage: InstantStorage, column: ColumnInfo): string | null {
  if (engine === 'sqlite') {
    // SQLite keeps what it is given whatever the declaration; only a REAL column would mangle text or integers.
    return /real|floa|doub/.test(column.type) ? `declared ${column.type}, which would turn instants into floating point` : null;
  }
  const fits: Record<InstantStorage, RegExp> = {
    timestamptz: /^timestamp(\(\d\))? with time zone$/,
    timestamp: /^timestamp(\(\d\))? without time zone$/,
    'epoch-ms': INTEGER_TYPES,
    'epoch-s': INTEGER_TYPES,
    text: TEXT_TYPES,
    'iso-text': TEXT_TYPES,
  };
  return fits[storage].test(column.type) ? null : `its type is ${column.type}, not what "${storage}" needs`;
}

export function tableName(ref: TableRef): string {
  return ref.schema === undefined ? ref.table : `${ref.schema}.${ref.table}`;
}

/**
 * Checks the mapping against the live database's catalog: the tables and
 * columns exist, their types fit the declared storage and status values, and
 * the columns seatctl clears can be NULL. Cheap (a catalog read per table):
 * every command runs it before it writes; `seatctl doctor` adds the costly checks.
 */
export async function fitMapping(knex: Knex, engine: 'sqlite' | 'postgres', declared: SeatMapping): Promise<MappingFit> {
  const findings: Finding[] = [];
  const ok = (message: string) => findings.push({ level: 'ok', message });
  const error = (message: string) => findings.push({ level: 'error', message });
  const m = declared.seats;
  const seatsName = tableName(m);
  const columns = await tableColumns(knex, engine, m);
  const mapping: SeatMapping = { ...declared, seats: { ...m, touch: [...m.touch] } };
  if (columns === undefined) {
    error(`there is no table ${seatsName} (seats.table)${engine === 'postgres' ? ', or this role cannot see it' : ''}`);
    return { mapping, findings };
  }
  ok(`table ${seatsName} exists (${columns.size} columns)`);

  const column = (key: string, name: string) => {
    const info = columns.get(name);
    if (info === undefined) error(`${seatsName} has no column ${name} (seats.${key})`);
    return info;
  };
  const id = column('id', m.id);
  const event = column('event', m.event);
  const seat = column('seat', m.seat);
  const status = column('status', m.status);
  const until = column('lockedUntil', m.lockedUntil);
  const holder = column('holder', m.holder.column);

  for (const [key, info] of [['id', id], ['event', event]] as const) {
    if (info && engine === 'postgres' && !INTEGER_TYPES.test(info.type)) {
      error(`${seatsName}.${info.name} is ${info.type}: seatctl needs whole-number ids (seats.${key})`);
    }
  }
  if (seat && engine === 'postgres' && !TEXT_TYPES.test(seat.type)) {
    error(`${seatsName}.${seat.name} is ${seat.type}: seat labels must be text (seats.seat)`);
  }

  if (status) {
    const values = Object.values(m.statusValues);
    const numeric = typeof values[0] === 'number';
    if (status.enumLabels) {
      const missing = values.filter((value) => !status.enumLabels!.includes(String(value)));
      if (missing.length > 0) {
        error(`${seatsName}.${status.name} is the enum ${status.type}, whose labels (${status.enumLabels.join(', ')}) lack ${missing.map((v) => `'${v}'`).join(', ')} (seats.statusValues)`);
      }
    } else if (engine === 'postgres' && numeric !== INTEGER_TYPES.test(status.type)) {
      error(`${seatsName}.${status.name} is ${status.type}, but seats.statusValues are ${numeric ? 'numbers' : 'strings'}`);
    }
  }

  const instantColumns: Array<[string, ColumnInfo | undefined]> = [['lockedUntil', until]];
  for (const key of ['lockToken', 'lockedAt', 'bookedBy', 'bookedAt'] as const) {
    const name = m[key];
    if (name === null) continue;
    const info = columns.get(name);
    if (info === undefined) {
      if (declared.ifPresent.includes(name)) mapping.seats[key] = null;
      else error(`${seatsName} has no column ${name} (seats.${key}; set it to null if the table has none)`);
      continue;
    }
    if (key === 'lockedAt' || key === 'bookedAt') instantColumns.push([key, info]);
  }
  for (const name of m.touch) {
    const info = columns.get(name);
    if (info === undefined) {
      if (declared.ifPresent.includes(name)) mapping.seats.touch = mapping.seats.touch.filter((t) => t !== name);
      else error(`${seatsName} has no column ${name} (seats.touch)`);
    } else instantColumns.push(['touch', info]);
  }
  for (const [key, info] of instantColumns) {
    if (info === undefined) continue;
    const mismatch = storageMismatch(engine, m.timeStorage, info);
    if (mismatch) error(`${seatsName}.${info.name}: ${mismatch} (seats.${key}, seats.timeStorage)`);
  }

  // A lock ends by clearing these: they must be able to hold NULL.
  for (const [key, info] of [
    ['lockedUntil', until],
    ['holder', holder],
    ['lockedAt', mapping.seats.lockedAt === null ? undefined : columns.get(mapping.seats.lockedAt)],
  ] as const) {
    if (info && !info.nullable) {
      error(`${seatsName}.${info.name} is NOT NULL, but seatctl clears it when a lock ends (seats.${key})`);
    }
  }

  const ref = m.holder.references;
  if (ref !== null) {
    const holders = await tableColumns(knex, engine, ref);
    const name = tableName(ref);
    if (holders === undefined) error(`there is no table ${name} (seats.holder.table)`);
    else {
      if (!holders.has(ref.id)) error(`${name} has no column ${ref.id} (seats.holder.id)`);
      if (!holders.has(ref.name)) error(`${name} has no column ${ref.name} (seats.holder.name)`);
    }
  }
  const events = declared.events;
  if (events !== null) {
    const eventColumns = await tableColumns(knex, engine, events);
    const name = tableName(events);
    if (eventColumns === undefined) error(`there is no table ${name} (events.table; set events to null if there is none)`);
    else {
      if (!eventColumns.has(events.id)) error(`${name} has no column ${events.id} (events.id)`);
      if (!eventColumns.has(events.name)) error(`${name} has no column ${events.name} (events.name)`);
    }
  }
  if (!findings.some((finding) => finding.level === 'error')) {
    ok(`the columns of ${seatsName} fit the mapping (instants stored as ${m.timeStorage})`);
  }
  return { mapping, findings, seatColumns: columns };
}
