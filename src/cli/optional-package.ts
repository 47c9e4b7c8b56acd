/** Set by bin/seatctl.cjs, whose vm-compiled bundle can't import() on Node 20 (see find-config.ts). */
const hostImport = (globalThis as Record<symbol, unknown>)[Symbol.for('seatctl.import')] as
  | ((specifier: string) => Promise<unknown>)
  | undefined;

/**
 * Loads a dependency only a flag needs (pino for --log-format json,
 * prom-client for --metrics), so a cron run never pays to load it. They are
 * left out of the bundle and resolved from seatctl's own install.
 */
export async function importOptional<T>(name: 'pino' | 'prom-client'): Promise<T> {
  return (hostImport ? hostImport(name) : import(name)) as Promise<T>;
}
