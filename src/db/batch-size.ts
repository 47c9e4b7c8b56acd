/** Locks per release batch (one transaction) by default. */
export const DEFAULT_BATCH_SIZE = 1000;
/**
 * On a SQLite database in a rollback-journal mode, where each commit writes
 * and syncs a journal as well (about 20 ms a commit on the benchmark machine):
 * 25,000 locks hold the write lock for about a quarter of a second there, less
 * than the app's own bulk UPDATE of as many rows.
 */
export const ROLLBACK_JOURNAL_BATCH_SIZE = 25_000;
export const MAX_BATCH_SIZE = 100_000;
