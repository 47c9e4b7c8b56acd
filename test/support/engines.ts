import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, inject } from 'vitest';
import { migrate, openDatabase, type SeatDatabase } from '../../src/index.js';

export type EngineName = 'sqlite' | 'postgres';

export interface TestEngine {
  name: EngineName;
  skipReason: string | null;
  /** A URL for a new, empty database of this engine. */
  newDatabaseUrl(): Promise<string>;
}

const tempDirs: string[] = [];
export function tempDir(prefix = 'seatctl-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const createdDatabases: string[] = [];

export const sqlite: TestEngine = {
  name: 'sqlite',
  skipReason: null,
  newDatabaseUrl: async () => join(tempDir(), 'seatctl.db'),
};

export const postgres: TestEngine = {
  name: 'postgres',
  skipReason: inject('pgSkipReason'),
  async newDatabaseUrl() {
    const admin = inject('pgAdminUrl');
    if (admin === null) throw new Error('no PostgreSQL server for the tests');
    const name = `seatctl_test_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
    const client = new pg.Client({ connectionString: admin });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE "${name}"`);
    } finally {
      await client.end();
    }
    createdDatabases.push(name);
    const url = new URL(admin);
    url.pathname = `/${name}`;
    return url.toString();
  },
};

// Databases live as long as the cluster in a throwaway server; on a server
// from TEST_DATABASE_URL they are dropped after each file.
afterAll(async () => {
  const admin = inject('pgAdminUrl');
  if (admin === null || createdDatabases.length === 0 || !process.env.TEST_DATABASE_URL) return;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    for (const name of createdDatabases.splice(0)) await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
});

export const ENGINES: TestEngine[] = [sqlite, postgres];

/** describe() once per engine; an engine without a server is skipped, visibly, with its reason in the title. */
export function describeEachEngine(title: string, body: (engine: TestEngine) => void): void {
  for (const engine of ENGINES) {
    const label = engine.skipReason
      ? `${title} [${engine.name}: skipped, ${engine.skipReason}]`
      : `${title} [${engine.name}]`;
    describe.skipIf(engine.skipReason !== null)(label, () => body(engine));
  }
}

export interface TestDatabase {
  url: string;
  db: SeatDatabase;
}

/**
 * One migrated database for the enclosing describe block, emptied before each
 * test. `db` is a library handle on it.
 */
export function useDatabase(engine: TestEngine): TestDatabase {
  const handle = {} as TestDatabase;
  beforeAll(async () => {
    handle.url = await engine.newDatabaseUrl();
    handle.db = await openDatabase({ url: handle.url, create: true });
    await migrate(handle.db);
  });
  beforeEach(async () => {
    await emptyTables(handle.db);
  });
  afterAll(async () => {
    await handle.db?.close();
  });
  return handle;
}

export async function emptyTables(db: SeatDatabase): Promise<void> {
  for (const table of ['release_history', 'release_runs', 'seats', 'events']) await db.knex(table).delete();
}
