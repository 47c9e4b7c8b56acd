import { once } from 'node:events';
import { Chalk, supportsColor, supportsColorStderr, type ChalkInstance } from 'chalk';

export interface OutputOptions {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  /** false when --no-color was given. */
  color: boolean;
}

/**
 * Color level for a stream: chalk's detection (a terminal, FORCE_COLOR,
 * --color/--no-color), then NO_COLOR, which chalk ignores. FORCE_COLOR wins
 * over NO_COLOR; --no-color over both.
 */
export function colorLevel(
  stream: 'stdout' | 'stderr',
  allowed: boolean,
  env: NodeJS.ProcessEnv = process.env,
): 0 | 1 | 2 | 3 {
  if (!allowed) return 0;
  const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  if (!forced && env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  const detected = stream === 'stdout' ? supportsColor : supportsColorStderr;
  return detected ? detected.level : 0;
}

/** Where a command's results go: human lines (colored on a terminal), or JSON Lines. */
export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
  /** Styles for stdout; plain when stdout is not a color terminal. */
  readonly style: ChalkInstance;
  /** Styles for stderr. */
  readonly errStyle: ChalkInstance;

  constructor(options: OutputOptions) {
    this.json = options.json;
    this.quiet = options.quiet;
    this.verbose = options.verbose;
    this.style = new Chalk({ level: colorLevel('stdout', options.color) });
    this.errStyle = new Chalk({ level: colorLevel('stderr', options.color) });
  }

  /**
   * Writes text to stdout as is; waits when the reader is slower than we are.
   * A reader that went away (`| head`) ends the printing, not the work.
   */
  async write(text: string): Promise<void> {
    if (text === '' || stdoutClosed) return;
    try {
      if (!process.stdout.write(text))
        await Promise.race([once(process.stdout, 'drain'), once(process.stdout, 'close')]);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EPIPE') throw error;
      stdoutClosed = true;
    }
  }

  line(text: string): Promise<void> {
    return this.write(`${text}\n`);
  }

  /** One JSON Lines record. */
  record(value: Record<string, unknown>): Promise<void> {
    return this.write(`${jsonLine(value)}\n`);
  }

  /** A line for the operator on stderr: warnings and notes, never data. */
  note(text: string): void {
    process.stderr.write(`${text}\n`);
  }
}

let stdoutClosed = false;
/** `seatctl … | head` closes the pipe early: stop writing, don't crash. */
export function watchStdout(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') stdoutClosed = true;
    else throw error;
  });
}

// C0 controls, DEL, C1 controls, line and paragraph separators, and the
// bidirectional overrides that can make text read differently than it is.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\x1b': '\\e' };

/**
 * A name from the database as a terminal may show it: every control
 * character (ESC, BEL, CR, backspace, C1 CSI…) is written as an escape, so a
 * crafted name can't move the cursor, retitle the window or hide text.
 */
export function safe(text: string): string {
  return text.replace(UNSAFE, (ch) => {
    const named = NAMED[ch];
    if (named !== undefined) return named;
    const code = ch.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

// What JSON.stringify leaves raw but a terminal may act on (it already escapes C0).
const UNSAFE_IN_JSON = /[\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * JSON text (one or many lines) with the characters a terminal would act on
 * written as \u escapes: the strings it carries are still exactly the same.
 */
export function terminalSafeJson(json: string): string {
  return json.replace(UNSAFE_IN_JSON, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const HAS_UNSAFE_IN_JSON = /[\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** A string as a terminal-safe JSON string literal. */
export function jsonString(text: string): string {
  const json = JSON.stringify(text);
  return HAS_UNSAFE_IN_JSON.test(json) ? terminalSafeJson(json) : json;
}

/** One JSON Lines record, without the newline. */
export function jsonLine(value: unknown): string {
  return terminalSafeJson(JSON.stringify(value));
}

const secrets = new Set<string>();

/** Remembers a secret (a database password) so that no message ever shows it. */
export function addSecret(secret: string | undefined): void {
  // Very short strings would blank out ordinary words; messages never carry
  // the URL anyway, so this is the second line of defence.
  if (secret === undefined || secret.length < 4) return;
  secrets.add(secret);
  secrets.add(encodeURIComponent(secret));
}

export function redact(text: string): string {
  let result = text;
  // Longest first, so a secret containing another is hidden whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) result = result.split(secret).join('***');
  return result;
}

/**
 * A count with thousands separators: 100,000. Not toLocaleString('en-US'),
 * whose first call sets up ICU's number formatting (about 20 ms of a run).
 */
export function thousands(count: number): string {
  return String(count).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** `n seat(s)` */
export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${thousands(count)} ${count === 1 ? noun : nouns}`;
}

const isoMinutes = new Map<number, string>();
/**
 * `date.toISOString()`, several times faster for instants that share a
 * minute, as the thousands of lines of one release mostly do.
 */
export function isoTime(date: Date): string {
  const ms = date.getTime();
  const minute = Math.floor(ms / 60_000);
  let prefix = isoMinutes.get(minute);
  if (prefix === undefined) {
    const full = date.toISOString();
    if (full.length !== 24) return full; // a year beyond 9999, or before 0
    if (isoMinutes.size >= 10_000) isoMinutes.clear();
    isoMinutes.set(minute, (prefix = full.slice(0, 17)));
  }
  const rest = ms - minute * 60_000;
  const seconds = Math.floor(rest / 1000);
  const millis = rest % 1000;
  return `${prefix}${seconds < 10 ? '0' : ''}${seconds}.${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
}

/** Columns as wide as their widest cell (capped at 60), two spaces apart. */
export class Table {
  private readonly widths: number[];

  /** `rows` size the columns; rows printed later keep the same widths. `right` marks numeric columns. */
  constructor(
    readonly header: string[],
    rows: string[][],
    private readonly right: boolean[] = [],
  ) {
    this.widths = header.map((title, i) =>
      Math.min(60, rows.reduce((width, cells) => Math.max(width, cells[i]!.length), title.length)),
    );
  }

  format(cells: string[]): string {
    return cells
      .map((cell, i) => (this.right[i] ? cell.padStart(this.widths[i]!) : cell.padEnd(this.widths[i]!)))
      .join('  ')
      .trimEnd();
  }

  /** The bold header and every row, one per line. */
  render(bold: (text: string) => string, rows: string[][]): string {
    return [bold(this.format(this.header)), ...rows.map((cells) => this.format(cells))].join('\n') + '\n';
  }
}
