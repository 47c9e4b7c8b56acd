// The schema mapping as users write it: presets resolved per engine, overrides,
// custom descriptions, the one-sentence errors (library level), and how the
// CLI finds the config file and the database it names (spawned bin).
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SeatctlError } from '../src/errors.js';
import { parseConfig } from '../src/mapping/config.js';
import { resolveMapping, type SeatMapping } from '../src/mapping/mapping.js';
import { migrate, openDatabase } from '../src/index.js';
import { jsonLines, runCli, type CliResult } from './support/cli.js';
import { tempDir } from './support/engines.js';

type EngineName = 'sqlite' | 'postgres';

const SOURCE = '/srv/app/seatctl.config.json';
const mapped = (raw: unknown, engine: EngineName): SeatMapping => resolveMapping(parseConfig(raw, SOURCE), engine, SOURCE);

const WORDS = { available: 'available', locked: 'locked', booked: 'booked' };
/** seatctl's own tables beside an app's: prefixed, and in a schema of their own on PostgreSQL. */
const SHARED_OWN = {
  sqlite: { history: 'seatctl_release_history', runs: 'seatctl_release_runs', migrations: 'seatctl_migrations' },
  postgres: { schema: 'seatctl', history: 'seatctl_release_history', runs: 'seatctl_release_runs', migrations: 'seatctl_migrations' },
};

function djangoMapping(engine: EngineName): SeatMapping {
  return {
    preset: 'django',
    owned: false,
    seats: {
      table: 'reservations_seat',
      id: 'id',
      event: 'event_id',
      seat: 'seat_number',
      status: 'status',
      statusValues: WORDS,
      lockedUntil: 'locked_until',
      timeStorage: engine === 'sqlite' ? 'text' : 'timestamptz',
      holder: { column: 'locked_by_id', references: { table: 'auth_user', id: 'id', name: 'username' } },
      lockToken: null,
      lockedAt: null,
      bookedBy: null,
      bookedAt: null,
      touch: [],
    },
    events: { table: 'reservations_event', id: 'id', name: 'name' },
    ifPresent: [],
    own: SHARED_OWN[engine],
    source: SOURCE,
  };
}

function railsMapping(engine: EngineName): SeatMapping {
  return {
    preset: 'rails',
    owned: false,
    seats: {
      table: 'seats',
      id: 'id',
      event: 'event_id',
      seat: 'seat_number',
      status: 'status',
      statusValues: { available: 0, locked: 1, booked: 2 },
      lockedUntil: 'locked_until',
      timeStorage: engine === 'sqlite' ? 'text' : 'timestamp',
      holder: { column: 'locked_by', references: null },
      lockToken: null,
      lockedAt: null,
      bookedBy: null,
      bookedAt: null,
      touch: ['updated_at'],
    },
    events: { table: 'events', id: 'id', name: 'name' },
    ifPresent: ['updated_at'],
    own: SHARED_OWN[engine],
    source: SOURCE,
  };
}

function prismaMapping(engine: EngineName): SeatMapping {
  return {
    preset: 'prisma',
    owned: false,
    seats: {
      table: 'Seat',
      id: 'id',
      event: 'eventId',
      seat: 'seatNumber',
      status: 'status',
      statusValues: WORDS,
      lockedUntil: 'lockedUntil',
      timeStorage: engine === 'sqlite' ? 'iso-text' : 'timestamp',
      holder: { column: 'lockedBy', references: null },
      lockToken: null,
      lockedAt: null,
      bookedBy: null,
      bookedAt: null,
      touch: ['updatedAt'],
    },
    events: { table: 'Event', id: 'id', name: 'name' },
    ifPresent: ['updatedAt'],
    own: SHARED_OWN[engine],
    source: SOURCE,
  };
}

function seatctlMapping(engine: EngineName): SeatMapping {
  return {
    preset: 'seatctl',
    owned: true,
    seats: {
      table: 'seats',
      id: 'id',
      event: 'event_id',
      seat: 'seat_number',
      status: 'status',
      statusValues: WORDS,
      lockedUntil: 'locked_until',
      timeStorage: engine === 'sqlite' ? 'epoch-ms' : 'timestamptz',
      holder: { column: 'locked_by', references: null },
      lockToken: 'lock_token',
      lockedAt: 'locked_at',
      bookedBy: 'booked_by',
      bookedAt: 'booked_at',
      touch: [],
    },
    events: { table: 'events', id: 'id', name: 'name' },
    ifPresent: [],
    // Its own database: the tables seatctl migrate has always created, unprefixed, in the search_path.
    own: { history: 'release_history', runs: 'release_runs', migrations: 'knex_migrations' },
    source: SOURCE,
  };
}

describe('presets', () => {
  it.each([
    ['django', { preset: 'django', app: 'reservations' }, djangoMapping],
    ['rails', { preset: 'rails' }, railsMapping],
    ['prisma', { preset: 'prisma' }, prismaMapping],
    ['seatctl (named)', { preset: 'seatctl' }, seatctlMapping],
    ['seatctl (an empty config)', {}, seatctlMapping],
  ] as const)('%s resolves to its defaults on SQLite and on PostgreSQL', (_name, raw, expected) => {
    for (const engine of ['sqlite', 'postgres'] as const) {
      expect(mapped(raw, engine), engine).toEqual(expected(engine));
    }
  });
});

describe('overrides', () => {
  // Each on the rails preset, on PostgreSQL (where schemas apply): the override
  // changes exactly its part of the mapping and nothing else.
  const cases: Array<[string, Record<string, unknown>, (m: SeatMapping) => void]> = [
    ['seats.schema', { seats: { schema: 'tickets' } }, (m) => (m.seats.schema = 'tickets')],
    ['seats.table', { seats: { table: 'ticket_seats' } }, (m) => (m.seats.table = 'ticket_seats')],
    ['seats.id', { seats: { id: 'seat_id' } }, (m) => (m.seats.id = 'seat_id')],
    ['seats.event', { seats: { event: 'show_id' } }, (m) => (m.seats.event = 'show_id')],
    ['seats.seat', { seats: { seat: 'label' } }, (m) => (m.seats.seat = 'label')],
    ['seats.status', { seats: { status: 'state' } }, (m) => (m.seats.status = 'state')],
    [
      'seats.statusValues (one of the three)',
      { seats: { statusValues: { locked: 5 } } },
      (m) => (m.seats.statusValues = { available: 0, locked: 5, booked: 2 }),
    ],
    [
      'seats.statusValues (all three, strings)',
      { seats: { statusValues: { available: 'free', locked: 'held', booked: 'sold' } } },
      (m) => (m.seats.statusValues = { available: 'free', locked: 'held', booked: 'sold' }),
    ],
    ['seats.lockedUntil', { seats: { lockedUntil: 'hold_until' } }, (m) => (m.seats.lockedUntil = 'hold_until')],
    ['seats.timeStorage', { seats: { timeStorage: 'epoch-s' } }, (m) => (m.seats.timeStorage = 'epoch-s')],
    ['seats.holder (a column)', { seats: { holder: 'owner' } }, (m) => (m.seats.holder = { column: 'owner', references: null })],
    [
      'seats.holder (a key into a table)',
      { seats: { holder: { column: 'owner_id', table: 'accounts', schema: 'auth', id: 'pk', name: 'email' } } },
      (m) => (m.seats.holder = { column: 'owner_id', references: { schema: 'auth', table: 'accounts', id: 'pk', name: 'email' } }),
    ],
    [
      'seats.holder (a key, id and name defaulted)',
      { seats: { holder: { column: 'owner_id', table: 'accounts' } } },
      (m) => (m.seats.holder = { column: 'owner_id', references: { table: 'accounts', id: 'id', name: 'name' } }),
    ],
    ['seats.lockToken', { seats: { lockToken: 'version' } }, (m) => (m.seats.lockToken = 'version')],
    ['seats.lockedAt', { seats: { lockedAt: 'held_since' } }, (m) => (m.seats.lockedAt = 'held_since')],
    ['seats.bookedBy', { seats: { bookedBy: 'buyer' } }, (m) => (m.seats.bookedBy = 'buyer')],
    ['seats.bookedAt', { seats: { bookedAt: 'sold_at' } }, (m) => (m.seats.bookedAt = 'sold_at')],
    ['seats.touch', { seats: { touch: ['modified_at', 'synced_at'] } }, (m) => (m.seats.touch = ['modified_at', 'synced_at'])],
    ['seats.touch (none)', { seats: { touch: [] } }, (m) => (m.seats.touch = [])],
    ['events (one key)', { events: { name: 'title' } }, (m) => (m.events = { table: 'events', id: 'id', name: 'title' })],
    [
      'events (all keys)',
      { events: { schema: 'catalog', table: 'shows', id: 'show_id', name: 'title' } },
      (m) => (m.events = { schema: 'catalog', table: 'shows', id: 'show_id', name: 'title' }),
    ],
    ['events (none)', { events: null }, (m) => (m.events = null)],
    ['seatctlSchema', { seatctlSchema: 'ops' }, (m) => (m.own = { ...m.own, schema: 'ops' })],
  ];

  it.each(cases)('%s', (_key, override, change) => {
    const expected = structuredClone(railsMapping('postgres'));
    change(expected);
    expect(mapped({ preset: 'rails', ...override }, 'postgres')).toEqual(expected);
  });

  it("django's app label names both tables", () => {
    const expected = djangoMapping('postgres');
    expected.seats.table = 'box_office_seat';
    expected.events = { table: 'box_office_event', id: 'id', name: 'name' };
    expect(mapped({ preset: 'django', app: 'box_office' }, 'postgres')).toEqual(expected);
  });

  it('schemas are a PostgreSQL notion: SQLite leaves them out', () => {
    expect(
      mapped(
        {
          preset: 'rails',
          seatctlSchema: 'ops',
          seats: { schema: 'tickets', holder: { column: 'owner_id', table: 'accounts', schema: 'auth' } },
          events: { schema: 'catalog' },
        },
        'sqlite',
      ),
    ).toEqual({
      ...railsMapping('sqlite'),
      seats: { ...railsMapping('sqlite').seats, holder: { column: 'owner_id', references: { table: 'accounts', id: 'id', name: 'name' } } },
    });
  });
});

describe('a custom config (no preset)', () => {
  const custom = {
    seats: {
      table: 'bookings_seat',
      event: 'show_id',
      seat: 'label',
      lockedUntil: 'hold_until',
      timeStorage: 'epoch-s',
      holder: 'holder',
    },
  };

  it('takes what it names, defaults id, status, status words and the optional columns, and has no events table', () => {
    expect(mapped(custom, 'postgres')).toEqual({
      preset: 'custom',
      owned: false,
      seats: {
        table: 'bookings_seat',
        id: 'id',
        event: 'show_id',
        seat: 'label',
        status: 'status',
        statusValues: WORDS,
        lockedUntil: 'hold_until',
        timeStorage: 'epoch-s',
        holder: { column: 'holder', references: null },
        lockToken: null,
        lockedAt: null,
        bookedBy: null,
        bookedAt: null,
        touch: [],
      },
      events: null,
      ifPresent: [],
      own: SHARED_OWN.postgres,
      source: SOURCE,
    });
  });

  it.each(['table', 'event', 'seat', 'lockedUntil', 'timeStorage', 'holder'])('names seats.%s when it is missing', (key) => {
    const seats: Record<string, unknown> = { ...custom.seats };
    delete seats[key];
    expectConfigError(() => mapped({ seats }, 'sqlite'), `seats.${key}`, `${SOURCE}: seats.${key} is missing (there is no preset to take it from)`);
  });

  it('names events.table when an events table is described without it', () => {
    expectConfigError(
      () => mapped({ ...custom, events: { name: 'title' } }, 'sqlite'),
      'events.table',
      `${SOURCE}: events.table is missing (or set events to null when there is no events table)`,
    );
  });
});

/** A usage error (exit code 2) whose message is exactly `message`: one sentence that names `key`. */
function expectConfigError(work: () => unknown, key: string, message: string | RegExp): void {
  let thrown: unknown;
  try {
    work();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(SeatctlError);
  const error = thrown as SeatctlError;
  expect(error.kind).toBe('usage');
  expect(error.exitCode).toBe(2);
  if (typeof message === 'string') expect(error.message).toBe(message);
  else expect(error.message).toMatch(message);
  expect(error.message).toContain(key);
  expectOneSentence(error.message);
}

function expectOneSentence(message: string): void {
  expect(message).not.toMatch(/\n/);
  expect(message, 'one sentence').not.toMatch(/[.!?]\s+[A-Z]/);
}

describe('config errors: one sentence that names the key, exit code 2', () => {
  const django = { preset: 'django', app: 'reservations' };
  const cases: Array<[string, unknown, EngineName, string, string | RegExp]> = [
    [
      'an unknown key',
      { ...django, seats: { lockedUntl: 'expires_at' } },
      'sqlite',
      'seats.lockedUntl',
      `${SOURCE}: unknown key seats.lockedUntl`,
    ],
    ['a wrong type', { ...django, seats: { table: 5 } }, 'sqlite', 'seats.table', `${SOURCE}: seats.table must be a name (a string) (got 5)`],
    // Not "(got 0)": the user wrote "", not 0.
    ['an empty name', { ...django, seats: { table: '' } }, 'sqlite', 'seats.table', /^\/srv\/app\/seatctl\.config\.json: seats\.table must not be empty( \(got ""\))?$/],
    [
      'a status value that is not a whole number',
      { preset: 'rails', seats: { statusValues: { locked: 1.5 } } },
      'sqlite',
      'seats.statusValues.locked',
      `${SOURCE}: seats.statusValues.locked must be a string or a whole number (got 1.5)`,
    ],
    [
      'a timeStorage that does not exist',
      { ...django, seats: { timeStorage: 'unix' } },
      'sqlite',
      'seats.timeStorage',
      `${SOURCE}: seats.timeStorage must be one of "timestamptz", "timestamp", "text", "iso-text", "epoch-ms", "epoch-s" (got "unix")`,
    ],
    [
      'a timeStorage PostgreSQL cannot hold (text)',
      { ...django, seats: { timeStorage: 'text' } },
      'postgres',
      'seats.timeStorage',
      `${SOURCE}: seats.timeStorage "text" is not a way PostgreSQL stores instants (use "timestamptz", "timestamp", "epoch-ms", "epoch-s")`,
    ],
    [
      'a timeStorage SQLite cannot hold (timestamptz)',
      { preset: 'rails', seats: { timeStorage: 'timestamptz' } },
      'sqlite',
      'seats.timeStorage',
      `${SOURCE}: seats.timeStorage "timestamptz" is not a way SQLite stores instants (use "text", "iso-text", "epoch-ms", "epoch-s")`,
    ],
    [
      'django without app',
      { preset: 'django' },
      'sqlite',
      'app',
      `${SOURCE}: the django preset needs app, the Django app label that names the tables (e.g. "reservations")`,
    ],
    [
      'app with the rails preset',
      { preset: 'rails', app: 'reservations' },
      'sqlite',
      'app',
      `${SOURCE}: app is the Django app label: it only applies to the django preset`,
    ],
    [
      'app with a custom config',
      { app: 'reservations', seats: { table: 't', event: 'e', seat: 's', lockedUntil: 'u', timeStorage: 'text', holder: 'h' } },
      'sqlite',
      'app',
      `${SOURCE}: app is the Django app label: it only applies to the django preset`,
    ],
    ...(['seats', 'events', 'seatctlSchema', 'app'] as const).map(
      (key): [string, unknown, EngineName, string, string] => [
        `the seatctl preset with ${key}`,
        { preset: 'seatctl', [key]: key === 'seats' ? { table: 'tickets' } : key === 'events' ? { table: 'shows' } : 'x' },
        'postgres',
        key,
        `${SOURCE}: ${key} can't be set with the seatctl preset, which is seatctl's own schema; to map an app's tables choose the preset "django", "rails" or "prisma", or describe the tables under "seats" without a preset`,
      ],
    ),
    [
      'two equal status values',
      { preset: 'rails', seats: { statusValues: { available: 1 } } },
      'sqlite',
      'seats.statusValues',
      `${SOURCE}: seats.statusValues must be three different values`,
    ],
    [
      'mixed string and number status values',
      { preset: 'rails', seats: { statusValues: { available: 'free' } } },
      'sqlite',
      'seats.statusValues',
      `${SOURCE}: seats.statusValues must be all strings or all whole numbers`,
    ],
    [
      'holder.id without holder.table',
      { preset: 'rails', seats: { holder: { column: 'user_id', id: 'id' } } },
      'sqlite',
      'seats.holder.table',
      `${SOURCE}: seats.holder.table is missing: id and name describe the table that names the holder`,
    ],
  ];

  it.each(cases)('%s', (_label, raw, engine, key, message) => {
    expectConfigError(() => mapped(raw, engine), key, message);
  });

  it('openDatabase reports a bad mapping option the same way, before it connects', async () => {
    const mapping = { preset: 'django', app: 'reservations', seats: { timeStorage: 'text' } } as const;
    const error = await openDatabase({ url: 'postgres://nobody@127.0.0.1:1/none', mapping }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expectConfigError(
      () => {
        throw error;
      },
      'seats.timeStorage',
      'the mapping option: seats.timeStorage "text" is not a way PostgreSQL stores instants (use "timestamptz", "timestamp", "epoch-ms", "epoch-s")',
    );
  });
});

// --- the CLI: finding the config, and the database it names ---------------------------------

/** A new directory (real path: what the process sees as its working directory). */
function newDir(): string {
  return realpathSync(tempDir('seatctl-config-'));
}

function write(path: string, content: string): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  return path;
}

async function migratedDatabase(path: string): Promise<string> {
  mkdirSync(dirname(path), { recursive: true });
  const db = await openDatabase({ url: path, create: true });
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
  return path;
}

/** `seatctl doctor --json` succeeded; which config it used, and which database. */
function usedBy(result: CliResult): { source: string; database: string } {
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const summary = jsonLines(result.stdout).find((record) => record.type === 'summary')!;
  return { source: summary.source, database: summary.database };
}

const doctor = (cwd: string, args: string[] = [], env: Record<string, string> = {}) =>
  runCli([...args, 'doctor', '--json'], { cwd, env });

describe('the CLI finds the config', () => {
  let database: string;
  beforeAll(async () => {
    database = await migratedDatabase(join(newDir(), 'seats.db'));
  });

  // Each file names the same seatctl database: the mapping's source tells which file was read.
  const files: Array<[string, (config: object) => string]> = [
    ['seatctl.config.json', (config) => JSON.stringify(config)],
    ['seatctl.config.mjs', (config) => `export default ${JSON.stringify(config)};\n`],
    ['seatctl.config.cjs', (config) => `module.exports = ${JSON.stringify(config)};\n`],
    ['package.json', (config) => JSON.stringify({ name: 'box-office', private: true, seatctl: config })],
  ];

  it.each(files)('%s in the working directory', async (name, content) => {
    const dir = newDir();
    const file = write(join(dir, name), content({ database }));
    expect(usedBy(await doctor(dir))).toEqual({ source: file, database });
  });

  it('seatctl.config.json in a parent directory, past a package.json without a "seatctl" key', async () => {
    const root = newDir();
    const file = write(join(root, 'seatctl.config.json'), JSON.stringify({ database }));
    const cwd = join(root, 'packages', 'web');
    write(join(cwd, 'package.json'), JSON.stringify({ name: 'web', private: true }));
    expect(usedBy(await doctor(cwd))).toEqual({ source: file, database });
  });

  it('--config, else SEATCTL_CONFIG, else the search', async () => {
    const dir = newDir();
    const searched = write(join(dir, 'seatctl.config.json'), JSON.stringify({ database }));
    const fromEnv = write(join(dir, 'env', 'seatctl.config.json'), JSON.stringify({ database }));
    const fromFlag = write(join(dir, 'flag', 'seatctl.config.json'), JSON.stringify({ database }));
    expect(usedBy(await doctor(dir, ['--config', 'flag/seatctl.config.json'], { SEATCTL_CONFIG: fromEnv })).source).toBe(fromFlag);
    expect(usedBy(await doctor(dir, [], { SEATCTL_CONFIG: 'env/seatctl.config.json' })).source).toBe(fromEnv);
    expect(usedBy(await doctor(dir)).source).toBe(searched);
  });

  it('--config naming a missing file is a usage error (exit 2)', async () => {
    const dir = newDir();
    write(join(dir, 'seatctl.config.json'), JSON.stringify({ database }));
    expect(await runCli(['--config', 'missing.json', 'doctor'], { cwd: dir })).toEqual({
      code: 2,
      signal: null,
      stdout: '',
      stderr: `error: the config file ${join(dir, 'missing.json')} does not exist\n`,
    });
  });
});

describe("the config's database", () => {
  it("is relative to the config file's directory, wherever seatctl starts; --db and DATABASE_URL override it", async () => {
    const app = newDir();
    const config = write(join(app, 'seatctl.config.json'), JSON.stringify({ database: 'var/seats.db' }));
    const database = await migratedDatabase(join(app, 'var', 'seats.db'));
    const cron = newDir(); // where a cron job starts: no config anywhere above it

    mkdirSync(join(app, 'deploy'));
    expect(usedBy(await doctor(join(app, 'deploy')))).toEqual({ source: config, database }); // found upwards
    expect(usedBy(await doctor(cron, [], { SEATCTL_CONFIG: config }))).toEqual({ source: config, database });
    expect(usedBy(await doctor(cron, ['--config', config]))).toEqual({ source: config, database });

    const flagDb = await migratedDatabase(join(cron, 'flag.db'));
    const envDb = await migratedDatabase(join(cron, 'env.db'));
    // --db relative to the working directory, like any path on the command line; it beats DATABASE_URL.
    expect(usedBy(await doctor(cron, ['--config', config, '--db', 'flag.db'], { DATABASE_URL: envDb }))).toEqual({
      source: config,
      database: flagDb,
    });
    expect(usedBy(await doctor(cron, ['--config', config], { DATABASE_URL: `sqlite:${envDb}` }))).toEqual({
      source: config,
      database: envDb,
    });
  });
});

describe('a broken config file ends the run: exit 2, one line naming the file, nothing on stdout', () => {
  const run = async (name: string, content: string): Promise<{ result: CliResult; file: string }> => {
    const dir = newDir();
    const file = write(join(dir, name), content);
    return { result: await runCli(['release-expired-locks'], { cwd: dir }), file };
  };

  it('an unknown key', async () => {
    const { result, file } = await run(
      'seatctl.config.json',
      JSON.stringify({ preset: 'django', app: 'reservations', seats: { lockedUntl: 'expires_at' } }),
    );
    expect(result).toEqual({ code: 2, signal: null, stdout: '', stderr: `error: ${file}: unknown key seats.lockedUntl\n` });
  });

  it('invalid JSON', async () => {
    const { result, file } = await run('seatctl.config.json', '{ "preset": "django", "app": "reservations", }\n');
    expect(result).toMatchObject({ code: 2, signal: null, stdout: '' });
    expect(result.stderr.startsWith(`error: ${file} is not valid JSON: `)).toBe(true);
    expect(result.stderr).toMatch(/^[^\n]+\n$/);
  });

  it('a .mjs config that throws', async () => {
    const { result, file } = await run(
      'seatctl.config.mjs',
      "if (!process.env.BOX_OFFICE_DB) throw new Error('BOX_OFFICE_DB is not set');\nexport default { database: process.env.BOX_OFFICE_DB };\n",
    );
    expect(result).toEqual({
      code: 2,
      signal: null,
      stdout: '',
      stderr: `error: cannot load the config ${file}: BOX_OFFICE_DB is not set\n`,
    });
  });
});
