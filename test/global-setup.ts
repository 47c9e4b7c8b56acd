import { existsSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { findServerBinaries, startPostgres } from './support/postgres-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL URL that may create databases, or null when PostgreSQL tests are skipped. */
    pgAdminUrl: string | null;
    pgSkipReason: string | null;
  }
}

let stop: (() => void) | undefined;

export async function setup(project: TestProject): Promise<void> {
  if (!existsSync(new URL('../dist/src/cli/main.js', import.meta.url))) {
    throw new Error('dist/ is missing: run the tests with `npm test` (it builds first)');
  }
  if (process.env.TEST_DATABASE_URL) {
    console.log('PostgreSQL tests: using the server at TEST_DATABASE_URL');
    project.provide('pgAdminUrl', process.env.TEST_DATABASE_URL);
    project.provide('pgSkipReason', null);
    return;
  }
  if (findServerBinaries() === undefined) {
    const reason =
      "PostgreSQL server binaries (initdb, postgres) are not installed; install Debian's postgresql package or set TEST_DATABASE_URL";
    if (process.env.CI === 'true') throw new Error(`CI must run the PostgreSQL tests, but ${reason}`);
    console.log(`\n*** PostgreSQL tests SKIPPED: ${reason} ***\n`);
    project.provide('pgAdminUrl', null);
    project.provide('pgSkipReason', reason);
    return;
  }
  const server = await startPostgres({ fast: true });
  stop = server.stop;
  console.log(`PostgreSQL tests: throwaway cluster on 127.0.0.1:${server.port} (${server.version})`);
  project.provide('pgAdminUrl', server.adminUrl);
  project.provide('pgSkipReason', null);
}

export function teardown(): void {
  stop?.();
}
