/**
 * Milliseconds since the epoch, as Date.now. Passed in wherever time decides behaviour
 * (cache lifetimes, readiness's interval, the JWKS refresh, token expiry, step-use counts),
 * so tests move time instead of sleeping through it.
 */
export type Clock = () => number;

/** The real clock, the default wherever a Clock is optional. */
export const systemClock: Clock = Date.now;
