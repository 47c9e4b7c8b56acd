import type { Command } from 'commander';
import { withDatabase, type DatabaseOptions, type SeatDatabase } from '../db/open.js';
import { addSecret, Output } from './output.js';

/** Options every command accepts (declared on the program). */
export interface GlobalOptions {
  db?: string;
  busyTimeout?: number;
  connectTimeout?: number;
  color: boolean;
  verbose: boolean;
}

export function globalOptions(command: Command): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions;
}

/** `--db`, else DATABASE_URL, else the embedded default. */
export function databaseOptions(command: Command, options: { create?: boolean } = {}): DatabaseOptions {
  const globals = globalOptions(command);
  const url = globals.db ?? (process.env.DATABASE_URL || undefined);
  if (url !== undefined) rememberPassword(url);
  return {
    url,
    busyTimeoutMs: globals.busyTimeout,
    connectTimeoutMs: globals.connectTimeout,
    create: options.create ?? false,
  };
}

/** Opens the command's database, runs `work`, and closes it so the process can end. */
export function withCommandDatabase<T>(
  command: Command,
  options: { create?: boolean },
  work: (db: SeatDatabase) => Promise<T>,
): Promise<T> {
  return withDatabase(databaseOptions(command, options), work);
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
