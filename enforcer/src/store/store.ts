/**
 * The counter store: one small interface every backend implements (Limitador's `storage/mod.rs`
 * habit). One call applies ADR 0004's steps 4 and 5 together: the token bucket (one token) and the
 * quota (the route's cost) are decided at once and committed only if both allow. The memory store
 * does it in one synchronous step; a Redis store does it in one Lua script, one round trip, with the
 * same arithmetic (`decision/token-bucket.ts`, `decision/quota.ts`) and the same keys
 * (`contract/src/identity.ts`, `counterKeys`).
 */
import type { BucketLimit } from '../decision/token-bucket.ts';

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
  /** Units left in the period. */
  readonly remaining: number;
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
}

/** A counter store. */
export interface CounterStore {
  /**
   * Decides the bucket and the quota of one request together and commits only if both allow. The
   * memory store answers synchronously; others return a promise. Throws (or rejects) only when the
   * backend fails: the caller answers 503 (fail closed) unless configured to fail open.
   */
  consume(request: ConsumeRequest): ConsumeResult | Promise<ConsumeResult>;
  /** Persists what must survive a restart (if anything) and releases resources. */
  close(): Promise<void>;
}
