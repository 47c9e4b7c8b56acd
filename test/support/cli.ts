import { fileURLToPath } from 'node:url';
import { run, start, type Child } from './processes.js';

export const BIN = fileURLToPath(new URL('../../bin/seatctl.cjs', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Added to a clean environment (no DATABASE_URL, NO_COLOR or FORCE_COLOR from the test runner). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  input?: string;
  timeoutMs?: number;
}

/** The environment a spawned seatctl sees: the runner's, minus whatever would change its output. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ['DATABASE_URL', 'NO_COLOR', 'FORCE_COLOR', 'TEST_DATABASE_URL', 'SEATCTL_CONFIG']) delete env[key];
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** Starts the real seatctl binary without waiting for it (see processes.ts: it dies with the test). */
export function startCli(args: readonly string[], options: Omit<CliOptions, 'timeoutMs'> = {}): Child {
  return start(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: cleanEnv(options.env),
    input: options.input ?? '',
    label: `seatctl ${args.join(' ')}`.slice(0, 200),
  });
}

/** Runs the real seatctl binary; kills it (and fails) if it outlives the timeout. */
export async function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).finished(options.timeoutMs ?? 30_000);
}

/** Runs a Node script with the clean environment; kills it (and fails) if it outlives the timeout. */
export function runNode(args: readonly string[], options: { timeoutMs?: number } = {}): Promise<CliResult> {
  return run(process.execPath, args, { env: cleanEnv(), timeoutMs: options.timeoutMs });
}

/** JSON Lines output, parsed. */
export function jsonLines(stdout: string): Array<Record<string, any>> {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
}
