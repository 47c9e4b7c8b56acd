// Durations in words and in the flags' own syntax; no date library needed.

const unit = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;

/**
 * A span as people say it, exact where a TTL makes it exact: "90 seconds",
 * "5 minutes", "1 hour 30 minutes", "3 days 2 hours". Below two minutes in
 * seconds, below two days in hours and minutes, then days and hours.
 */
export function spoken(ms: number): string {
  const seconds = Math.round(Math.abs(ms) / 1000);
  if (seconds < 120) return unit(seconds, 'second');
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return unit(minutes, 'minute');
  if (minutes < 48 * 60) {
    const [h, m] = [Math.floor(minutes / 60), minutes % 60];
    return m === 0 ? unit(h, 'hour') : `${unit(h, 'hour')} ${unit(m, 'minute')}`;
  }
  const hours = Math.round(minutes / 60);
  const [d, h] = [Math.floor(hours / 24), hours % 24];
  return h === 0 ? unit(d, 'day') : `${unit(d, 'day')} ${unit(h, 'hour')}`;
}

/** A duration as the flags take it: 500ms, 30s, 5m, 1h30m, 2d. */
export function durationText(ms: number): string {
  if (ms % 1000 !== 0) return `${ms}ms`;
  let rest = ms / 1000;
  let text = '';
  for (const [size, suffix] of [
    [86_400, 'd'],
    [3600, 'h'],
    [60, 'm'],
    [1, 's'],
  ] as const) {
    if (rest >= size) {
      text += `${Math.floor(rest / size)}${suffix}`;
      rest %= size;
    }
  }
  return text || '0s';
}
