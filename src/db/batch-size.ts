/** Locks per release batch (one transaction) by default. */
export const DEFAULT_BATCH_SIZE = 1000;
/** On a SQLite database in a rollback-journal mode, where each commit syncs a journal as well. */
export const ROLLBACK_JOURNAL_BATCH_SIZE = 10_000;
export const MAX_BATCH_SIZE = 100_000;
