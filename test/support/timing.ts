// Time on a shared machine. A duration is only meaningful next to what the
// same operation takes on the same machine at the same moment: bounds are
// multiples of such an idle measurement, never constants. And a test waits for
// a condition to hold, with a deadline, rather than for a guessed duration.

/** How long `operation` takes here and now: the median of `runs` runs, in milliseconds. */
export async function idleTime(operation: () => Promise<unknown>, runs = 3): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await operation();
    times.push(performance.now() - started);
  }
  return median(times);
}

/** Runs `operation` and returns its result and how long it took, in milliseconds. */
export async function timed<T>(operation: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await operation();
  return { result, ms: performance.now() - started };
}

/**
 * A wall-clock bound derived from an idle measurement: `factor` times it, and
 * never less than `floorMs` (a fast machine's measurement is mostly noise).
 */
export function boundFrom(idleMs: number, factor: number, floorMs: number): number {
  return Math.round(Math.max(factor * idleMs, floorMs));
}

export function median(values: readonly number[]): number {
  return percentile(values, 0.5);
}

/** The value below which this fraction of the values lie (linear interpolation; NaN for none). */
export function percentile(values: readonly number[], fraction: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * fraction;
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below]! + (sorted[above]! - sorted[below]!) * (position - below);
}

/**
 * Resolves once `condition` returns true (checked again every few
 * milliseconds: for state a test can only poll, such as a database's);
 * fails saying what it waited for, and what `describe` reports then, when
 * `timeoutMs` has passed.
 */
export async function eventually(
  what: string,
  condition: () => Promise<boolean> | boolean,
  options: { timeoutMs?: number; describe?: () => Promise<string> | string } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      const state = options.describe ? `\n${await options.describe()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${state}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
