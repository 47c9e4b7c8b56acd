import { Chalk } from 'chalk';
import { Command, CommanderError, Option } from 'commander';
import { EXIT_CODES, SeatctlError, usageError } from '../errors.js';
import { registerBook } from './commands/book.js';
import { registerDoctor } from './commands/doctor.js';
import { registerHistory } from './commands/history.js';
import { registerListLocked } from './commands/list-locked.js';
import { registerLock } from './commands/lock.js';
import { registerMigrate } from './commands/migrate.js';
import { registerReleaseExpiredLocks } from './commands/release-expired-locks.js';
import { registerSeed } from './commands/seed.js';
import { registerStats } from './commands/stats.js';
import { registerUnlock } from './commands/unlock.js';
import { receivedSignal, requestStop, signalExitCode } from './interrupt.js';
import { colorLevel, redact, safe, watchStdout } from './output.js';
import { durationArg } from './parse.js';

export const VERSION = '0.1.0';

const EXIT_CODE_LINES: Record<number, string> = {
  0: '0    success (also when there was nothing to release)',
  1: '1    unexpected failure',
  2: '2    bad usage or input (unknown option, bad duration, unknown event, seat or user, a bad config)',
  3: '3    conflict: the request was refused and nothing changed',
  4: "4    database unavailable (can't open or connect, busy past the timeout): try again later",
  5: '5    database not set up (run seatctl migrate), not a seatctl database, or the mapping does not fit it',
  6: '6    --check: expired locks are waiting and no release ran recently',
  130: '130  interrupted (Ctrl-C); 143 on SIGTERM',
};

/** The exit codes each command can end with (every one can end 0, 1, 2, 4 and 5). */
const COMMAND_EXIT_CODES: Record<string, number[]> = {
  'release-expired-locks': [130],
  'list-locked': [],
  lock: [3],
  book: [3],
  unlock: [3],
  history: [],
  stats: [6],
  seed: [130],
  migrate: [],
  doctor: [],
};

function exitCodesHelp(codes: number[]): string {
  return `\nExit codes:\n${[0, 1, 2, 3, 4, 5, 6, 130]
    .filter((code) => code < 3 || code === 4 || code === 5 || codes.includes(code))
    .map((code) => `  ${EXIT_CODE_LINES[code]}`)
    .join('\n')}`;
}

const EXIT_CODES_HELP = exitCodesHelp([3, 6, 130]);

const DATABASE_HELP = `
Database: --db, else $DATABASE_URL, else ./seatctl.db. Accepted: a file path,
sqlite:<path>, file:<path>, postgres://user:password@host:5432/database.`;

export function buildProgram(): Command {
  const program = new Command('seatctl')
    .description('Release expired seat locks atomically, and see, place, book and release seat locks.')
    .version(VERSION, '-V, --version')
    .option(
      '--db <url>',
      'database: a SQLite path, sqlite:<path>, file:<path> or postgres://… (default: $DATABASE_URL, else ./seatctl.db)',
    )
    .option(
      '--config <file>',
      'where the seats live (default: $SEATCTL_CONFIG, else the nearest seatctl.config.json upwards)',
    )
    .addOption(
      new Option(
        '--busy-timeout <duration>',
        'SQLite: how long to wait for another writer before giving up (default: 5s)',
      ).argParser(durationArg),
    )
    .addOption(
      new Option(
        '--connect-timeout <duration>',
        'PostgreSQL: how long to wait for the server to answer (default: 5s)',
      ).argParser(durationArg),
    )
    .option('--no-color', 'never color the output (also: NO_COLOR=1)')
    .option('--verbose', 'show details of unexpected errors')
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      `
Examples:
  $ seatctl seed && seatctl release-expired-locks
  $ seatctl list-locked --expired
  $ seatctl lock "Taylor Swift - Eras Tour" A1 A2 --user alice --ttl 10m
  $ DATABASE_URL=postgres://seatctl:secret@db:5432/tickets seatctl release-expired-locks --quiet
${EXIT_CODES_HELP}
${DATABASE_HELP}`,
    );

  // Set before the commands are added: they copy their parent's output and help settings.
  program.configureOutput({
    outputError: (message, write) => write(oneLine(message)),
  });
  // Each command's help lists the global options too (--db, --config…): how to pick the database.
  program.configureHelp({ showGlobalOptions: true });
  for (const register of [
    registerReleaseExpiredLocks,
    registerListLocked,
    registerLock,
    registerBook,
    registerUnlock,
    registerHistory,
    registerStats,
    registerSeed,
    registerMigrate,
    registerDoctor,
  ]) {
    register(program);
  }

  // Every command reports errors the same way, as one line, and leaves the
  // exit code to us.
  program.exitOverride();
  for (const command of program.commands) {
    command.exitOverride();
    command.addHelpText('after', exitCodesHelp(COMMAND_EXIT_CODES[command.name()] ?? [3, 6, 130]));
  }
  return program;
}

/** Commander's "error: …\n(Did you mean …?)" as one line. */
function oneLine(message: string): string {
  const flat = message
    .trim()
    .replace(/\n\(Did you mean (.*)\?\)/, ' (did you mean $1?)')
    .replace(/\s*\n\s*/g, ' ');
  return `${flat}\n`;
}

/** Runs the CLI and returns its exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    // `seatctl help <command>`: commander shows the whole help for a name it doesn't know.
    const [first, second] = argv.slice(2);
    if (first === 'help' && second !== undefined && !program.commands.some((c) => c.name() === second)) {
      throw usageError(`unknown command '${second}' (see seatctl --help)`);
    }
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    const verbose = Boolean(program.opts().verbose) || argv.includes('--verbose');
    return reportError(error, verbose, !argv.includes('--no-color'));
  }
}

/** The one place that turns an error into a line on stderr and an exit code. */
function reportError(error: unknown, verbose: boolean, color: boolean): number {
  if (error instanceof CommanderError) {
    // Help and --version "fail" with code 0; the message is already written.
    return error.exitCode === 0 ? 0 : EXIT_CODES.usage;
  }
  const label = new Chalk({ level: colorLevel('stderr', color) }).red('error:');
  if (error instanceof SeatctlError) {
    process.stderr.write(`${label} ${safe(redact(error.message))}\n`);
    if (verbose && error.cause instanceof Error)
      process.stderr.write(`${redact(error.cause.stack ?? String(error.cause))}\n`);
    return error.kind === 'interrupted' ? signalExitCode(receivedSignal()) : error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  // A server error carries its SQLSTATE: show the server's sentence, never SQL a driver put before it.
  const sqlstate = (error as { code?: unknown })?.code;
  const text = typeof sqlstate === 'string' && /^[0-9A-Z]{5}$/.test(sqlstate) ? message.slice(message.lastIndexOf(' - ') + 1).replace(/^- /, '') : message;
  const firstLine = `${text.split('\n')[0] ?? ''}${typeof sqlstate === 'string' && /^[0-9A-Z]{5}$/.test(sqlstate) ? ` (SQLSTATE ${sqlstate})` : ''}`;
  process.stderr.write(
    `${label} unexpected failure: ${safe(redact(firstLine))}${verbose ? '' : ' (run with --verbose for details)'}\n`,
  );
  if (verbose && error instanceof Error) process.stderr.write(`${redact(error.stack ?? '')}\n`);
  return EXIT_CODES.failure;
}

/** How long a command may take to reach a safe point after Ctrl-C or SIGTERM. */
const FORCE_STOP_AFTER_MS = 3000;

/**
 * The first Ctrl-C or SIGTERM asks the command to stop (see interrupt.ts); a
 * command that doesn't stop within a few seconds, or a second signal, ends the
 * process at once. Either way the database rolls back what was not committed.
 */
function handleSignals(): void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (!requestStop(signal)) process.exit(signalExitCode(signal));
    setTimeout(() => process.exit(signalExitCode(signal)), FORCE_STOP_AFTER_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** The bin's entry point: signals, a closed stdout, and the exit code. */
export async function run(argv: readonly string[] = process.argv): Promise<void> {
  watchStdout();
  handleSignals();
  const code = await main(argv);
  process.exitCode = code;
  // Node's own way out tears the whole heap down first (about 4 ms of a 210 ms
  // cron run): once everything written has reached stdout and stderr, leave.
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

/** Resolves once `stream` has handed everything written to the OS (at once when it already has, or is gone). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.writableLength === 0 || stream.destroyed || stream.writableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done).off('close', done).off('error', done);
      resolve();
    };
    stream.on('drain', done).on('close', done).on('error', done);
  });
}
