/**
 * Milliseconds since the Unix epoch. Everything that decides by time (token
 * expiry, key windows, revocation cutoffs, cache ages) reads it from the one
 * clock the app is started with, so tests can move time instead of waiting.
 */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();
