import { usageError } from '../errors.js';

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export const MAX_USER_LENGTH = 200;

/** A lock holder's name: what `--user` and `locked_by` hold. */
export function checkUser(user: string): void {
  if (typeof user !== 'string' || user === '') throw usageError('the user name is empty');
  if (user.length > MAX_USER_LENGTH) {
    throw usageError(`the user name is too long (${user.length} characters; at most ${MAX_USER_LENGTH})`);
  }
}
