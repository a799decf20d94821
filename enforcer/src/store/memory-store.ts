/**
 * The in-memory counter store (the default, for one enforcer): buckets and quotas in two maps, decided
 * and committed in one synchronous step, so nothing can interleave between the bucket and the quota.
 * Several enforcers each with a memory store would each grant the whole quota: use the Redis store for
 * replicas. Counters survive a restart through a checkpoint file (see checkpoint.ts).
 */
import { takeQuota } from '../decision/quota.ts';
import { type BucketState, peekToken, takeToken } from '../decision/token-bucket.ts';
import type { ConsumeRequest, ConsumeResult, CounterStore } from './store.ts';

/** A bucket as stored: its state, and when it will be full again (then it may be forgotten). */
export interface StoredBucket extends BucketState {
  /** Epoch ms at which the bucket is full: a full bucket is the same as none. */
  readonly fullAt: number;
}

/** A quota counter as stored. */
export interface StoredQuota {
  readonly used: number;
  /** The period's end (epoch ms): the counter is forgotten after it. */
  readonly periodEnd: number;
}

/** The memory store. */
export class MemoryStore implements CounterStore {
  readonly #buckets = new Map<string, StoredBucket>();
  readonly #quotas = new Map<string, StoredQuota>();

  consume(r: ConsumeRequest): ConsumeResult {
    const bucketState = r.bucketKey === undefined ? undefined : this.#buckets.get(r.bucketKey);
    const bucket =
      r.bucketKey !== undefined && r.bucketLimit !== undefined
        ? takeToken(bucketState, r.bucketLimit, r.now)
        : undefined;
    const stored = r.quotaKey === undefined ? undefined : this.#quotas.get(r.quotaKey);
    const used = stored !== undefined && stored.periodEnd > r.now ? stored.used : 0;
    const quota =
      r.quotaKey !== undefined && r.quotaLimit !== undefined
        ? takeQuota(used, r.quotaLimit, r.cost)
        : undefined;
    const deniedBy = bucket && !bucket.allowed ? 'throttle' : quota && !quota.allowed ? 'quota' : undefined;

    if (deniedBy === undefined) {
      if (bucket && r.bucketKey !== undefined) {
        this.#buckets.set(r.bucketKey, {
          tokens: bucket.state.tokens,
          updatedAt: bucket.state.updatedAt,
          fullAt: r.now + bucket.fullInMs,
        });
      }
      if (quota && r.quotaKey !== undefined) {
        this.#quotas.set(r.quotaKey, { used: quota.used, periodEnd: r.periodEnd });
      }
    }
    // What is reported is what is stored: a refused request charged neither.
    const bucketReport =
      bucket === undefined || r.bucketLimit === undefined
        ? undefined
        : deniedBy === 'quota'
          ? peekToken(bucketState, r.bucketLimit, r.now)
          : bucket;
    const quotaReport =
      quota === undefined || r.quotaLimit === undefined
        ? undefined
        : deniedBy === 'throttle'
          ? { used, remaining: Math.max(0, r.quotaLimit - used) }
          : { used: quota.used, remaining: quota.remaining };
    return {
      allowed: deniedBy === undefined,
      deniedBy,
      bucket: bucketReport && {
        remaining: bucketReport.remaining,
        retryAfterMs: bucketReport.retryAfterMs,
        fullInMs: bucketReport.fullInMs,
      },
      quota: quotaReport,
    };
  }

  /** Forgets full buckets and quotas of periods that ended: they are the same as none. */
  sweep(now: number): void {
    for (const [key, b] of this.#buckets) if (b.fullAt <= now) this.#buckets.delete(key);
    for (const [key, q] of this.#quotas) if (q.periodEnd <= now) this.#quotas.delete(key);
  }

  /** Every stored bucket, for the checkpoint. */
  buckets(): IterableIterator<[string, StoredBucket]> {
    return this.#buckets.entries();
  }

  /** Every stored quota counter, for the checkpoint. */
  quotas(): IterableIterator<[string, StoredQuota]> {
    return this.#quotas.entries();
  }

  /** Puts back a checkpointed bucket. */
  restoreBucket(key: string, bucket: StoredBucket): void {
    this.#buckets.set(key, bucket);
  }

  /** Puts back a checkpointed quota counter (the larger count wins if one is already there). */
  restoreQuota(key: string, quota: StoredQuota): void {
    const present = this.#quotas.get(key);
    if (present === undefined || present.used < quota.used) this.#quotas.set(key, quota);
  }

  /** How many counters are stored. */
  get size(): { buckets: number; quotas: number } {
    return { buckets: this.#buckets.size, quotas: this.#quotas.size };
  }

  async close(): Promise<void> {
    // Nothing to release; the checkpointer persists the counters.
  }
}
