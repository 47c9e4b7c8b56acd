// date-fns is loaded only by commands that print times (release reports don't).
import { format } from 'date-fns/format';
import { spoken } from './durations.js';

/** Local wall-clock time; with the date when it isn't today's. */
export function clockTime(date: Date, now: Date): string {
  return format(date, format(date, 'yyyy-MM-dd') === format(now, 'yyyy-MM-dd') ? 'HH:mm:ss' : 'yyyy-MM-dd HH:mm:ss');
}

/** "in 5 minutes" / "12 minutes ago", judged against the database clock. */
export function relativeTime(date: Date, now: Date): string {
  const ms = date.getTime() - now.getTime();
  return ms >= 0 ? `in ${spoken(ms)}` : `${spoken(ms)} ago`;
}

/** "14:05:03, in 5 minutes" */
export function whenWithRelative(date: Date, now: Date): string {
  return `${clockTime(date, now)}, ${relativeTime(date, now)}`;
}
