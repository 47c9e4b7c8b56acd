import { InvalidArgumentError } from 'commander';
import { thousands } from './output.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:ms|s|m|h|d))+$/;

/**
 * A duration as milliseconds: `90s`, `5m`, `1h`, `1h30m`, `250ms`, `2d`, or a
 * plain number of seconds. Ranges are checked by the library; this only reads.
 */
export function parseDuration(text: string, options: { allowZero?: boolean } = {}): number {
  const trimmed = text.trim();
  let ms: number;
  if (/^\d+$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else if (DURATION.test(trimmed)) {
    ms = 0;
    for (const [, amount, unit] of trimmed.matchAll(/(\d+)(ms|s|m|h|d)/g)) ms += Number(amount) * UNITS[unit!]!;
  } else {
    throw new InvalidArgumentError('Use a whole number with a unit (90s, 5m, 1h, 1h30m) or plain seconds.');
  }
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError('It is too long.');
  if (ms === 0 && !options.allowZero) throw new InvalidArgumentError('It must be longer than zero.');
  return ms;
}

export const durationArg = (text: string) => parseDuration(text);
export const durationOrZeroArg = (text: string) => parseDuration(text, { allowZero: true });

/** A whole number; the library checks its range. */
export function countArg(text: string): number {
  if (!/^\s*-?\d+\s*$/.test(text)) throw new InvalidArgumentError('It must be a whole number.');
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new InvalidArgumentError('It is too large.');
  return value;
}

/** A whole number within a range, checked where the other malformed values are, so every message reads alike. */
export function countInRange(min: number, max: number): (text: string) => number {
  return (text) => {
    const value = /^\s*-?\d+\s*$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`It must be a whole number from ${thousands(min)} to ${thousands(max)}.`);
    }
    return value;
  };
}

const ISO = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/** `--since`: a duration back from now (`2h`), or an ISO 8601 instant (local time without a zone). */
export function sinceArg(text: string): { agoMs: number } | { at: Date } {
  const trimmed = text.trim();
  if (ISO.test(trimmed)) {
    const at = new Date(trimmed.length === 10 ? `${trimmed}T00:00` : trimmed.replace(' ', 'T'));
    if (Number.isNaN(at.getTime())) throw new InvalidArgumentError('It is not a valid date.');
    return { at };
  }
  try {
    return { agoMs: parseDuration(trimmed) };
  } catch {
    throw new InvalidArgumentError('Use a duration (30m, 2h, 7d) or an ISO 8601 date (2026-11-24T14:00).');
  }
}

/** `--metrics [host:]port`: 9465, 0.0.0.0:9465, [::1]:9465; the host defaults to 127.0.0.1. */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:(\[[^\]]+\]|[^:[\]]+):)?(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new InvalidArgumentError('Use a port (9465) or host:port (0.0.0.0:9465, [::1]:9465).');
  const host = match[1] === undefined ? '127.0.0.1' : match[1].replace(/^\[(.*)\]$/, '$1');
  return { host, port };
}
