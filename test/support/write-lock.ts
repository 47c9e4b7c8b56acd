import { createRequire } from 'node:module';
import { cleanEnv } from './cli.js';
import { start, type Child } from './processes.js';

const BETTER_SQLITE3 = createRequire(import.meta.url).resolve('better-sqlite3');

// Takes the write lock, says so, and keeps it until its stdin closes.
const HOLDER = `
const Database = require(${JSON.stringify(BETTER_SQLITE3)});
const db = new Database(process.argv[1]);
db.exec('BEGIN IMMEDIATE');
console.log('holding');
process.stdin.resume();
process.stdin.on('end', () => { db.exec('ROLLBACK'); db.close(); console.log('let go'); });
`;

export interface WriteLockHolder {
  child: Child;
  /** Rolls back, which frees the write lock, and waits until the holder says it did. */
  letGo(): Promise<void>;
}

/**
 * Another process holding a SQLite database's write lock (BEGIN IMMEDIATE), as
 * a long transaction in production would, for as long as the test wants: until
 * `letGo`, never a guessed duration. Resolves once the lock is held.
 */
export async function holdWriteLock(file: string): Promise<WriteLockHolder> {
  const child = start(process.execPath, ['-e', HOLDER, file], {
    env: cleanEnv(),
    keepStdinOpen: true,
    label: 'the write-lock holder',
  });
  await child.waitForLine('holding');
  return {
    child,
    async letGo() {
      child.endInput();
      await child.waitForLine('let go');
    },
  };
}
