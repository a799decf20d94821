/**
 * The counter store: one small interface every backend implements (Limitador's `storage/mod.rs`
 * habit). One call applies ADR 0004's steps 4 and 5 together: the token bucket (one token) and the
 * quota (the route's cost) are decided at once and committed only if both allow. The memory store
 * does it in one synchronous step; a Redis store does it in one Lua script, one round trip, with the
 * same arithmetic (`decision/token-bucket.ts`, `decision/quota.ts`) and the same keys
 * (`contract/src/identity.ts`, `counterKeys`).
 */
import type { BucketLimit } from '../decision/token-bucket.ts';

/**
 * How long both stores keep a quota counter after its period's end: a day. A plan's time zone changed
 * in the period moves the end by hours and keeps the counter's key (its id is the period's first
 * local day), so the count carries over; usage readers read the period just ended.
 */
export const QUOTA_KEPT_AFTER_END_MS = 86_400_000;

/** One decision's counters. A part that does not apply (no throttle, no quota) is left out. */
export interface ConsumeRequest {
  /** The bucket's counter key (`ks:{plan|subject}:bucket[:route]`), when a throttle applies. */
  readonly bucketKey?: string;
  /** The throttle, with `bucketKey`. */
  readonly bucketLimit?: BucketLimit;
  /** The quota's counter key (`ks:{plan|subject}:quota:<period>`), when a quota applies. */
  readonly quotaKey?: string;
  /** The quota's limit, with `quotaKey`. */
  readonly quotaLimit?: number;
  /** Quota units this request uses (the route's cost, at least 1). */
  readonly cost: number;
  /** When the quota period ends (epoch ms): the counter may be forgotten after it. */
  readonly periodEnd: number;
  /** The decision's time (epoch ms). */
  readonly now: number;
  /**
   * The usage-per-day counter (`dayKey`: the plan's local day), charged the cost when the request is
   * allowed, whether or not a quota applies. Kept at least until `dayExpiresAt` (the retention; the Redis
   * store keeps a month of days in one hash, `dayHashOf`, until the month's last day's retention ends).
   */
  readonly dayKey?: string;
  /** When the day counter may be forgotten (epoch ms): the day's end plus the usage retention. */
  readonly dayExpiresAt?: number;
  /**
   * The plan's alert thresholds, percent of the quota (with `quotaKey`). The result names the ones this
   * request crossed; each is reported once per counter and period, however many replicas count.
   */
  readonly thresholds?: readonly number[];
}

/** What the bucket says after the request. */
export interface BucketOutcome {
  /** Whole tokens left. */
  readonly remaining: number;
  /** 0 when allowed; else ms until a token is available. */
  readonly retryAfterMs: number;
  /** Ms until the bucket is full. */
  readonly fullInMs: number;
}

/** What the quota says after the request. */
export interface QuotaOutcome {
  /** Units used in the period (unchanged when refused). */
  readonly used: number;
  /** Units left in the period: the limit, plus what adjustments granted, less what was used (never below 0). */
  readonly remaining: number;
}

/** A quota counter as read back (usage reports, the customer's own view). */
export interface QuotaCount {
  /** Units used in the period. */
  readonly used: number;
  /** Units granted (positive) or taken back (negative) by adjustments in the period. */
  readonly granted: number;
}

/** One adjustment to apply (a rendered UsageAdjustment). */
export interface AdjustRequest {
  /** The quota counter of the adjusted subject and period. */
  readonly quotaKey: string;
  /** The adjustment's id (the UsageAdjustment's uid): applied at most once per counter. */
  readonly id: string;
  /** Units granted (positive) or taken back (negative). */
  readonly amount: number;
  /** The period's end (epoch ms): the counter and the marker may be forgotten after it. */
  readonly periodEnd: number;
  readonly now: number;
}

/** The outcome of {@link CounterStore.consume}. */
export interface ConsumeResult {
  /** Whether both the bucket and the quota allowed: then, and only then, both were charged. */
  readonly allowed: boolean;
  /** The first refusal in ADR 0004's order: the throttle before the quota. */
  readonly deniedBy: 'throttle' | 'quota' | undefined;
  /** Present when a bucket applied. */
  readonly bucket: BucketOutcome | undefined;
  /** Present when a quota applied. */
  readonly quota: QuotaOutcome | undefined;
  /** Alert thresholds (percent) this request crossed first in the period; usually none. */
  readonly crossed?: readonly number[];
}

/** A counter store. */
export interface CounterStore {
  /**
   * Decides the bucket and the quota of one request together and commits only if both allow. The
   * memory store answers synchronously; others return a promise. Throws (or rejects) only when the
   * backend fails: the caller answers 503 (fail closed) unless configured to fail open.
   */
  consume(request: ConsumeRequest): ConsumeResult | Promise<ConsumeResult>;
  /**
   * Applies an adjustment to a quota counter unless one with its id was already applied there (a marker
   * set if absent beside the counter, in the same atomic step): true when applied now, false when it
   * had been. Safe to call again after any restart.
   */
  adjust(request: AdjustRequest): Promise<boolean>;
  /** Reads quota counters (undefined where nothing was counted); costs nothing. */
  readQuotas(quotaKeys: readonly string[]): Promise<(QuotaCount | undefined)[]>;
  /** Reads usage-per-day counters (0 where nothing was counted). */
  readDays(dayKeys: readonly string[]): Promise<number[]>;
  /** Persists what must survive a restart (if anything) and releases resources. */
  close(): Promise<void>;
}
