// seatctl as a library: the same operations the CLI runs, for a web server to
// call itself. Every function takes an open database and plain options,
// returns data, and throws SeatctlError (with a `kind`) for what went wrong.
export { openDatabase, withDatabase, DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS } from './db/open.js';
export type { CallOptions, DatabaseOptions, SeatDatabase } from './db/open.js';
export { parseDatabaseUrl } from './db/url.js';
export { findConfig, CONFIG_FILES } from './mapping/find-config.js';
export type { FindConfigOptions, FoundConfig } from './mapping/find-config.js';
export { parseConfig } from './mapping/config.js';
export type { SeatctlConfig } from './mapping/config.js';
export { resolveMapping, defaultMapping } from './mapping/mapping.js';
export type { SeatMapping } from './mapping/mapping.js';
export { PRESET_NAMES } from './mapping/presets.js';
export type { PresetName } from './mapping/presets.js';
export { INSTANT_STORAGES } from './mapping/instant-storage.js';
export type { InstantStorage } from './mapping/instant-storage.js';
export { doctor } from './core/doctor.js';
export type { DoctorReport, Finding, IndexAdvice } from './core/doctor.js';
export type { DatabaseTarget, SqliteTarget, PostgresTarget } from './db/url.js';
export { migrate, ensureSchema, MIGRATION_NAMES } from './db/schema.js';
export type { MigrateResult } from './db/schema.js';

export { releaseExpiredLocks, releaseExpiredLocksCounting, releaseExpiredLocksInBatches, DEFAULT_BATCH_SIZE } from './core/release.js';
export type { ReleaseOptions, ReleasedLock, ReleaseReport, ReleaseSummary } from './core/release.js';
export {
  startSweeper,
  runSweeper,
  databaseBackend,
  isStatementTimeout,
  DEFAULT_SWEEP_INTERVAL_MS,
  DEFAULT_MAX_LAG_MS,
  MIN_BATCH_SIZE,
} from './core/sweeper.js';
export type {
  Sweeper,
  SweeperOptions,
  SweeperClock,
  SweeperEvents,
  SweeperHealth,
  SweeperStatus,
  SweepBackend,
  SweepCheck,
  SweepCycle,
  SweepFailure,
  SweepFailureKind,
} from './core/sweeper.js';
export { lockSeats, DEFAULT_TTL_MS, MAX_TTL_MS, DEFAULT_MAX_HOLD_MS } from './core/lock.js';
export type { LockOptions, LockResult, LockedSeat } from './core/lock.js';
export { bookSeats } from './core/book.js';
export type { BookOptions, BookResult } from './core/book.js';
export { unlockSeats } from './core/unlock.js';
export type { UnlockOptions, UnlockResult, UnlockedSeat } from './core/unlock.js';
export { listLocked, listLockedPages } from './core/list.js';
export type { ListLockedOptions, LockedPage, LockedSeatRow } from './core/list.js';
export { history, countHistory } from './core/history.js';
export type { HistoryEntry, HistoryOptions, ReleaseReason } from './core/history.js';
export { stats, availableSeats, DEFAULT_STALE_AFTER_MS } from './core/stats.js';
export type { StatsOptions, StatsReport, EventStats, ReleaseRun, AvailableSeats } from './core/stats.js';
export { seedDemo, seedSynthetic } from './core/seed.js';
export type { DemoSeedResult, SyntheticSeedOptions, SyntheticSeedResult } from './core/seed.js';
export type { EventRef } from './core/events.js';

export { SeatctlError, SeatConflictError, EXIT_CODES } from './errors.js';
export type { ErrorKind, SeatConflict, SeatConflictReason } from './errors.js';
