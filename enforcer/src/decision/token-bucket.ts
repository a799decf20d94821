/**
 * A token bucket (the throttle of a usage plan): `burst` tokens of capacity, refilled continuously at
 * `rate` tokens per second, one token (or a route's cost) taken per request. Pure: the caller stores the
 * returned state and passes the time in; the same arithmetic must be mirrored by any store that applies
 * it atomically elsewhere (e.g. a Redis script).
 */

/** The throttle of a plan or route. Validate with {@link checkBucketLimit} when the config is loaded. */
export interface BucketLimit {
  /** Tokens added per second; may be fractional (0.5 is one request every two seconds). Must be > 0. */
  readonly rate: number;
  /** Capacity of the bucket: an integer >= 1, the most requests allowed at once. */
  readonly burst: number;
}

/** What is stored per subject between requests. */
export interface BucketState {
  /** Tokens in the bucket at `updatedAt`, fractional, between 0 and the burst. */
  readonly tokens: number;
  /** Epoch milliseconds up to which refill has been counted. */
  readonly updatedAt: number;
}

/** The outcome of {@link takeToken} or {@link peekToken}. */
export interface BucketDecision {
  /** Whether the request may pass (for a peek: whether it would). */
  readonly allowed: boolean;
  /** The state to store: tokens refilled up to now, minus what was taken if allowed. */
  readonly state: BucketState;
  /** Whole tokens left in the bucket after this request (rounded down). */
  readonly remaining: number;
  /**
   * 0 when allowed; otherwise milliseconds until `take` tokens are available (rounded up, >= 1), or
   * `Infinity` when `take` exceeds the burst and so can never be satisfied.
   */
  readonly retryAfterMs: number;
  /** Milliseconds until the bucket would be full again (rounded up; 0 when full). */
  readonly fullInMs: number;
}

/** Largest burst accepted by {@link checkBucketLimit}: keeps the token arithmetic exact enough. */
export const MAX_BURST = 1_000_000_000;

/**
 * Tolerance on token counts, absorbing floating-point error so that a client which waits exactly
 * `retryAfterMs` is admitted. It admits a request at most a millionth of a token early.
 */
const EPSILON = 1e-6;

/**
 * Checks a throttle from configuration: `rate` a finite number > 0 (and at most 1e9), `burst` an
 * integer from 1 to {@link MAX_BURST}. Returns a message naming the field, or undefined when valid.
 */
export function checkBucketLimit(limit: BucketLimit): string | undefined {
  const { rate, burst } = limit as { rate: unknown; burst: unknown };
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0 || rate > 1e9) {
    return `rate must be a number of tokens per second greater than 0 and at most 1e9, got ${String(rate)}`;
  }
  if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 1 || burst > MAX_BURST) {
    return `burst must be an integer from 1 to ${MAX_BURST}, got ${String(burst)}`;
  }
  return undefined;
}

/**
 * Takes `take` tokens (default 1) from the bucket at time `now` (epoch ms). A missing state is a new,
 * full bucket. Refill is continuous (`min(burst, tokens + elapsed * rate / 1000)`); a clock that went
 * backwards refills nothing and never moves `updatedAt` back, so it cannot mint tokens later. A denied
 * request takes nothing. `limit` must pass {@link checkBucketLimit}. Throws a RangeError when `now` is
 * not finite or `take` is negative or not finite.
 */
export function takeToken(
  state: BucketState | undefined,
  limit: BucketLimit,
  now: number,
  take = 1,
): BucketDecision {
  return decide(state, limit, now, take, true);
}

/**
 * What {@link takeToken} would answer for `take` tokens (default 1) at `now`, without taking anything:
 * the returned state is only refilled. For showing a key holder their throttle. Throws as takeToken.
 */
export function peekToken(
  state: BucketState | undefined,
  limit: BucketLimit,
  now: number,
  take = 1,
): BucketDecision {
  return decide(state, limit, now, take, false);
}

function decide(
  state: BucketState | undefined,
  limit: BucketLimit,
  now: number,
  take: number,
  consume: boolean,
): BucketDecision {
  if (!Number.isFinite(now)) throw new RangeError(`token bucket: now must be a finite number, got ${now}`);
  if (!(take >= 0) || take === Infinity) {
    throw new RangeError(`token bucket: take must be a finite number >= 0, got ${take}`);
  }
  const { rate, burst } = limit;
  let tokens: number;
  let updatedAt: number;
  if (state === undefined) {
    tokens = burst;
    updatedAt = now;
  } else {
    // A corrupt stored state fails towards an empty bucket, which refills, rather than towards NaN.
    tokens = state.tokens >= 0 ? state.tokens : 0;
    updatedAt = Number.isFinite(state.updatedAt) ? state.updatedAt : now;
    const elapsed = now - updatedAt;
    if (elapsed > 0) {
      tokens += (elapsed * rate) / 1000;
      updatedAt = now;
    }
    if (tokens > burst) tokens = burst;
  }

  const allowed = tokens + EPSILON >= take;
  if (allowed && consume) {
    tokens -= take;
    if (tokens < 0) tokens = 0;
  }
  let retryAfterMs = 0;
  if (!allowed) retryAfterMs = take > burst ? Infinity : Math.ceil(((take - tokens) * 1000) / rate);
  const deficit = burst - tokens;
  return {
    allowed,
    state: { tokens, updatedAt },
    remaining: Math.floor(tokens + EPSILON),
    retryAfterMs,
    fullInMs: deficit <= EPSILON ? 0 : Math.ceil((deficit * 1000) / rate),
  };
}
