/**
 * The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers-11): `RateLimit-Policy` states
 * the plan's policies, `RateLimit` what is left of them now, both Structured Field Lists (RFC 9651) of
 * Items whose value is the policy name as an sf-string (the draft: "The Item value MUST be a String").
 * Also the `Retry-After` seconds.
 */

/** The throttle (token bucket) of the request's plan or route, as of this decision. */
export interface ThrottleStatus {
  /** Tokens per second (may be fractional). */
  readonly rate: number;
  /** Bucket capacity. */
  readonly burst: number;
  /** Whole tokens left after this request. */
  readonly remaining: number;
  /** Seconds until the bucket is full again (may be fractional; rounded up). */
  readonly fullInSeconds: number;
  /** Policy name; default "burst". */
  readonly name?: string;
}

/** The calendar quota of the request's plan, as of this decision. */
export interface QuotaStatus {
  /** Units allowed per period. */
  readonly limit: number;
  /** Units left in the period after this request. */
  readonly remaining: number;
  /** Seconds until the period ends (may be fractional; rounded up). */
  readonly resetInSeconds: number;
  /** Length of the current period in seconds (a DAY may be 23 or 25 hours; rounded up). */
  readonly windowSeconds: number;
  /** Policy name; default "quota". */
  readonly name?: string;
  /** Quota unit, sent as `qu` when given; the draft's default is "requests". */
  readonly unit?: string;
}

/** The two response header fields, by lower-case name. */
export interface RateLimitHeaders {
  /** `RateLimit-Policy`: each policy's quota `q` per window `w` seconds. */
  readonly 'ratelimit-policy': string;
  /** `RateLimit`: each policy's remaining `r` and seconds `t` until it is restored. */
  readonly ratelimit: string;
}

/** Largest value an sf-integer can carry (RFC 9651: at most 15 digits). */
export const SF_INTEGER_MAX = 999_999_999_999_999;

/**
 * The RateLimit fields describing the throttle and the quota, either of which may be absent; undefined
 * when both are (the fields must not be empty lists). The token bucket is stated as `q` = burst per
 * `w` = burst / rate seconds (rounded up, at least 1), its `t` being the seconds until it is full; the
 * quota as `q` = limit per `w` = the period's length, its `t` the seconds until the period ends. Counts
 * are rounded down and times up, all clamped to sf-integers >= 0. Throws an Error when a policy name or
 * unit is not an sf-string (printable ASCII), or when both policies have the same name.
 */
export function rateLimitHeaders(
  throttle: ThrottleStatus | undefined,
  quota: QuotaStatus | undefined,
): RateLimitHeaders | undefined {
  const policies: string[] = [];
  const limits: string[] = [];
  let throttleName: string | undefined;
  if (throttle !== undefined) {
    throttleName = throttle.name ?? 'burst';
    const name = throttle.name === undefined ? '"burst"' : sfString(throttleName, 'throttle policy name');
    const window = Math.max(1, ceilInteger(throttle.burst / throttle.rate));
    policies.push(`${name};q=${floorInteger(throttle.burst)};w=${window}`);
    limits.push(`${name};r=${floorInteger(throttle.remaining)};t=${ceilInteger(throttle.fullInSeconds)}`);
  }
  if (quota !== undefined) {
    const quotaName = quota.name ?? 'quota';
    if (quotaName === throttleName) {
      throw new Error(`RateLimit: two policies are named ${JSON.stringify(quotaName)}`);
    }
    const name = quota.name === undefined ? '"quota"' : sfString(quotaName, 'quota policy name');
    const unit = quota.unit === undefined ? '' : `;qu=${sfString(quota.unit, 'quota unit')}`;
    const window = Math.max(1, ceilInteger(quota.windowSeconds));
    policies.push(`${name};q=${floorInteger(quota.limit)}${unit};w=${window}`);
    limits.push(`${name};r=${floorInteger(quota.remaining)};t=${ceilInteger(quota.resetInSeconds)}`);
  }
  if (policies.length === 0) return undefined;
  return { 'ratelimit-policy': policies.join(', '), ratelimit: limits.join(', ') };
}

/**
 * `Retry-After` delay-seconds for a wait of `ms` milliseconds: whole seconds rounded up, at least 1 (a
 * client told 0 would retry at once), at most {@link SF_INTEGER_MAX} (also for `Infinity`); NaN gives 1.
 */
export function retryAfterSeconds(ms: number): number {
  const seconds = Math.ceil(ms / 1000);
  if (!(seconds >= 1)) return 1;
  return seconds > SF_INTEGER_MAX ? SF_INTEGER_MAX : seconds;
}

/** RFC 9651 section 4.1.6: a quoted string of printable ASCII with `"` and `\` escaped. */
function sfString(value: string, what: string): string {
  if (!/^[\x20-\x7e]*$/.test(value)) {
    throw new Error(
      `RateLimit: ${what} must be printable ASCII (an sf-string), got ${JSON.stringify(value)}`,
    );
  }
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

function floorInteger(value: number): number {
  return clampInteger(Math.floor(value));
}

function ceilInteger(value: number): number {
  return clampInteger(Math.ceil(value));
}

/** An sf-integer >= 0: NaN and negatives give 0, too large gives {@link SF_INTEGER_MAX}. */
function clampInteger(value: number): number {
  if (!(value > 0)) return 0;
  return value > SF_INTEGER_MAX ? SF_INTEGER_MAX : value;
}

/**
 * The `RateLimit` field alone, for the default policy names ("burst", "quota"): the value
 * {@link rateLimitHeaders} gives as `ratelimit`, built without its checks and lists, for the hot path
 * (the `RateLimit-Policy` field changes only with the period and is cached by the caller). Undefined
 * when both policies are absent.
 */
export function rateLimitField(
  throttle: Omit<ThrottleStatus, 'name'> | undefined,
  quota: Omit<QuotaStatus, 'name' | 'unit'> | undefined,
): string | undefined {
  const t =
    throttle === undefined
      ? undefined
      : `"burst";r=${floorInteger(throttle.remaining)};t=${ceilInteger(throttle.fullInSeconds)}`;
  const q =
    quota === undefined
      ? undefined
      : `"quota";r=${floorInteger(quota.remaining)};t=${ceilInteger(quota.resetInSeconds)}`;
  return t === undefined ? q : q === undefined ? t : `${t}, ${q}`;
}
