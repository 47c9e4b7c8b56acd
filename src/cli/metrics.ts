import { importOptional } from './optional-package.js';
import type { ReleasedLock } from '../core/release.js';
import type { SweepCycle, SweepFailure, SweeperStatus } from '../core/sweeper.js';

/** Release lag buckets, seconds: 10 ms to 5 min. */
export const LAG_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2.5, 5, 10, 30, 60, 120, 300];
/** Cycle duration buckets, seconds. */
export const CYCLE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface SweeperMetrics {
  /** Prometheus text format. */
  render(): Promise<string>;
  readonly contentType: string;
  batch(locks: ReleasedLock[]): void;
  cycle(cycle: SweepCycle): void;
  failure(failure: SweepFailure): void;
}

export interface MetricsOptions {
  /** Label released locks by event (one time series per event: only when events are few). */
  byEvent: boolean;
  /** Expired locks waiting now: asked at each scrape; undefined when it can't be known. */
  countWaiting(): Promise<number | undefined>;
}

/**
 * The sweeper's Prometheus metrics, with prom-client (loaded only when
 * --metrics asks for it), in a registry of their own with Node's process
 * metrics.
 */
export async function sweeperMetrics(status: () => SweeperStatus, options: MetricsOptions): Promise<SweeperMetrics> {
  const client = await importOptional<typeof import('prom-client')>('prom-client');
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const released = new client.Counter({
    name: 'seatctl_locks_released_total',
    help: 'Expired locks released by this sweeper',
    labelNames: options.byEvent ? ['event'] : [],
    registers: [registry],
  });
  new client.Gauge({
    name: 'seatctl_expired_locks_waiting',
    help: 'Locks that have expired and wait for release, counted at scrape time',
    registers: [registry],
    async collect() {
      const waiting = await options.countWaiting();
      if (waiting !== undefined) this.set(waiting);
    },
  });
  const lag = new client.Histogram({
    name: 'seatctl_release_lag_seconds',
    help: 'Release lag: released at minus locked until, per released lock (database clock)',
    buckets: LAG_BUCKETS,
    registers: [registry],
  });
  const duration = new client.Histogram({
    name: 'seatctl_cycle_duration_seconds',
    help: 'Duration of release cycles, failed ones included',
    buckets: CYCLE_BUCKETS,
    registers: [registry],
  });
  const errors = new client.Counter({
    name: 'seatctl_errors_total',
    help: 'Failed cycles and checks, by kind (unavailable, statement-timeout, schema, unexpected…)',
    labelNames: ['kind'],
    registers: [registry],
  });
  new client.Gauge({
    name: 'seatctl_last_success_timestamp_seconds',
    help: 'Unix time of the last cycle, batch or check the database answered',
    registers: [registry],
    collect() {
      const at = status().lastSuccessAt;
      if (at !== null) this.set(at.getTime() / 1000);
    },
  });
  new client.Gauge({
    name: 'seatctl_database_up',
    help: '1 when the last attempt reached the database, 0 when it was unavailable',
    registers: [registry],
    collect() {
      this.set(status().databaseUp ? 1 : 0);
    },
  });
  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),
    batch(locks) {
      for (const lock of locks) {
        if (lock.releasedAt === null) continue;
        lag.observe((lock.releasedAt.getTime() - lock.lockedUntil.getTime()) / 1000);
        if (options.byEvent) released.inc({ event: lock.event });
      }
      if (!options.byEvent) released.inc(locks.filter((lock) => lock.releasedAt !== null).length);
    },
    cycle(cycle) {
      duration.observe(cycle.durationMs / 1000);
    },
    failure(failure) {
      errors.inc({ kind: failure.kind });
    },
  };
}
