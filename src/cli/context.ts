import { dirname } from 'node:path';
import type { Command } from 'commander';
import { withDatabase, type DatabaseOptions, type SeatDatabase } from '../db/open.js';
import { findConfig } from '../mapping/find-config.js';
import { addSecret, Output } from './output.js';

/** Options every command accepts (declared on the program). */
export interface GlobalOptions {
  db?: string;
  config?: string;
  busyTimeout?: number;
  connectTimeout?: number;
  color: boolean;
  verbose: boolean;
}

export function globalOptions(command: Command): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions;
}

/**
 * The database and the mapping of its seats: `--db`, else DATABASE_URL, else
 * the config's `database`, else the embedded default; the config from
 * `--config`, else SEATCTL_CONFIG, else the nearest seatctl.config.json (or
 * .mjs, .cjs, package.json "seatctl" key) from the working directory up.
 */
export async function databaseOptions(command: Command, options: { create?: boolean } = {}): Promise<DatabaseOptions> {
  const globals = globalOptions(command);
  const found = await findConfig({ file: globals.config ?? (process.env.SEATCTL_CONFIG || undefined) });
  let url = globals.db ?? (process.env.DATABASE_URL || undefined);
  let cwd: string | undefined;
  if (url === undefined && found?.config.database !== undefined) {
    url = found.config.database;
    // A relative SQLite path in a config file is relative to the file, not to where cron starts.
    cwd = dirname(found.filepath);
  }
  if (url !== undefined) rememberPassword(url);
  return {
    url,
    cwd,
    busyTimeoutMs: globals.busyTimeout,
    connectTimeoutMs: globals.connectTimeout,
    create: options.create ?? false,
    // A command needs few connections (a release runs one statement at a time).
    pool: { max: 4, idleTimeoutMillis: 10_000 },
    ...(found === undefined ? {} : { mapping: found.config, mappingSource: found.filepath }),
  };
}

/** Opens the command's database, runs `work`, and closes it so the process can end. */
export function withCommandDatabase<T>(
  command: Command,
  options: { create?: boolean },
  work: (db: SeatDatabase) => Promise<T>,
): Promise<T> {
  return databaseOptions(command, options).then((resolved) => withDatabase(resolved, work));
}

export function outputFor(command: Command): Output {
  const globals = globalOptions(command);
  const own = command.opts() as { json?: boolean; quiet?: boolean };
  return new Output({
    json: own.json ?? false,
    quiet: own.quiet ?? false,
    verbose: globals.verbose,
    color: globals.color,
  });
}

/**
 * Keeps whatever stands where a URL's password would, even in a URL too
 * broken to parse, so that no message can show it.
 */
function rememberPassword(url: string): void {
  const match = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^:/?#@]*:(.*)@[^@]*$/s.exec(url);
  if (!match) return;
  const raw = match[1]!;
  addSecret(raw);
  try {
    addSecret(decodeURIComponent(raw));
  } catch {
    // A broken percent-encoding: the raw form is already hidden.
  }
}
