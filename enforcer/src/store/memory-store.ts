/**
 * The in-memory counter store (the default, for one enforcer): buckets, quotas and usage per day in
 * maps, decided and committed in one synchronous step, so nothing can interleave between the bucket and
 * the quota. Several enforcers each with a memory store would each grant the whole quota: use the Redis
 * store for replicas. Counters survive a restart through a checkpoint file (see checkpoint.ts).
 *
 * A quota counter keeps, beside the units used, what adjustments granted, the ids of the adjustments
 * applied to it and the alert thresholds already reported: one record, checkpointed as one line, so a
 * crash loses or keeps them together (an adjustment is applied exactly once relative to the restored
 * counter). Records are updated in place: a decision allocates only its result.
 */
import { takeQuota } from '../decision/quota.ts';
import { type BucketState, peekToken, takeToken } from '../decision/token-bucket.ts';
import {
  type AdjustRequest,
  type ConsumeRequest,
  type ConsumeResult,
  type CounterStore,
  QUOTA_KEPT_AFTER_END_MS,
  type QuotaCount,
  type QuotaOutcome,
} from './store.ts';

/** A bucket as stored: its state, and when it will be full again (then it may be forgotten). */
export interface StoredBucket extends BucketState {
  /** Epoch ms at which the bucket is full: a full bucket is the same as none. */
  readonly fullAt: number;
}

/** A quota counter as stored (and checkpointed, as one line). */
export interface StoredQuota {
  /** Units used in the period: the honest count, whatever adjustments did. */
  readonly used: number;
  /** Units adjustments granted (positive) or took back (negative) in the period. */
  readonly granted: number;
  /** The period's end (epoch ms): the counter is forgotten after it. */
  readonly periodEnd: number;
  /** Ids of the adjustments applied to this counter. */
  readonly adjustments: readonly string[];
  /** Alert thresholds (percent) already reported for this counter. */
  readonly alerts: readonly number[];
}

/** A usage-per-day counter as stored. */
export interface StoredDay {
  /** Units used on the day. */
  readonly count: number;
  /** When it may be forgotten (epoch ms): the day's end plus the retention. */
  readonly expiresAt: number;
}

/** A quota counter as listed for the admin usage endpoint. */
export interface ListedQuota extends QuotaCount {
  /** The counter's key (`counterKeys(...).quota`). */
  readonly key: string;
  /** The period's end (epoch ms). */
  readonly periodEnd: number;
  /** Ids of the adjustments applied to it. */
  readonly adjustments: readonly string[];
}

interface BucketRecord {
  tokens: number;
  updatedAt: number;
  fullAt: number;
}

interface QuotaRecord {
  used: number;
  granted: number;
  periodEnd: number;
  adjustments: string[] | undefined;
  alerts: number[] | undefined;
}

interface DayRecord {
  count: number;
  expiresAt: number;
}

const NONE: readonly never[] = Object.freeze([]);

/** The memory store. */
export class MemoryStore implements CounterStore {
  readonly #buckets = new Map<string, BucketRecord>();
  readonly #quotas = new Map<string, QuotaRecord>();
  readonly #days = new Map<string, DayRecord>();

  consume(r: ConsumeRequest): ConsumeResult {
    const now = r.now;
    let bucketState: BucketRecord | undefined;
    let bucket: ReturnType<typeof takeToken> | undefined;
    if (r.bucketKey !== undefined && r.bucketLimit !== undefined) {
      bucketState = this.#buckets.get(r.bucketKey);
      bucket = takeToken(bucketState, r.bucketLimit, now);
    }
    let record: QuotaRecord | undefined;
    let used = 0;
    let granted = 0;
    let quota: ReturnType<typeof takeQuota> | undefined;
    if (r.quotaKey !== undefined && r.quotaLimit !== undefined) {
      record = liveQuota(this.#quotas.get(r.quotaKey), r.periodEnd, now);
      if (record !== undefined) {
        // Counted until the later end, whatever this request's answer (a refused one too: see liveQuota).
        if (r.periodEnd > record.periodEnd) record.periodEnd = r.periodEnd;
        used = record.used;
        granted = record.granted;
      }
      quota = takeQuota(used, r.quotaLimit + granted, r.cost);
    }
    const deniedBy = bucket && !bucket.allowed ? 'throttle' : quota && !quota.allowed ? 'quota' : undefined;

    if (deniedBy === undefined) {
      if (bucket !== undefined && r.bucketKey !== undefined) {
        const fullAt = now + bucket.fullInMs;
        if (bucketState === undefined) {
          this.#buckets.set(r.bucketKey, {
            tokens: bucket.state.tokens,
            updatedAt: bucket.state.updatedAt,
            fullAt,
          });
        } else {
          bucketState.tokens = bucket.state.tokens;
          bucketState.updatedAt = bucket.state.updatedAt;
          bucketState.fullAt = fullAt;
        }
      }
      if (quota !== undefined && r.quotaKey !== undefined) {
        if (record === undefined) {
          record = {
            used: quota.used,
            granted: 0,
            periodEnd: r.periodEnd,
            adjustments: undefined,
            alerts: undefined,
          };
          this.#quotas.set(r.quotaKey, record);
        } else {
          record.used = quota.used;
        }
      }
      if (r.dayKey !== undefined && r.dayExpiresAt !== undefined) {
        const day = this.#days.get(r.dayKey);
        if (day === undefined) this.#days.set(r.dayKey, { count: r.cost, expiresAt: r.dayExpiresAt });
        else day.count += r.cost;
      }
    }
    // What is reported is what is stored: a refused request charged neither.
    const bucketReport =
      bucket === undefined || r.bucketLimit === undefined
        ? undefined
        : deniedBy === 'quota'
          ? peekToken(bucketState, r.bucketLimit, now)
          : bucket;
    let quotaReport: QuotaOutcome | undefined;
    if (quota !== undefined && r.quotaLimit !== undefined) {
      const after = deniedBy === undefined ? quota.used : used;
      const left = r.quotaLimit + granted - after;
      quotaReport = { used: after, remaining: left > 0 ? left : 0 };
    }
    const crossed =
      r.thresholds !== undefined && record !== undefined && r.quotaLimit !== undefined
        ? crossedThresholds(record, r.thresholds, r.quotaLimit)
        : undefined;
    return {
      allowed: deniedBy === undefined,
      deniedBy,
      bucket: bucketReport && {
        remaining: bucketReport.remaining,
        retryAfterMs: bucketReport.retryAfterMs,
        fullInMs: bucketReport.fullInMs,
      },
      quota: quotaReport,
      crossed,
    };
  }

  adjust(r: AdjustRequest): Promise<boolean> {
    try {
      return Promise.resolve(this.#adjust(r));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #adjust(r: AdjustRequest): boolean {
    checkAdjustment(r);
    let record = liveQuota(this.#quotas.get(r.quotaKey), r.periodEnd, r.now);
    if (record === undefined) {
      record = { used: 0, granted: 0, periodEnd: r.periodEnd, adjustments: undefined, alerts: undefined };
      this.#quotas.set(r.quotaKey, record);
    } else if (r.periodEnd > record.periodEnd) {
      record.periodEnd = r.periodEnd;
    }
    if (record.adjustments?.includes(r.id) === true) return false;
    record.granted += r.amount;
    (record.adjustments ??= []).push(r.id);
    return true;
  }

  readQuotas(quotaKeys: readonly string[]): Promise<(QuotaCount | undefined)[]> {
    return Promise.resolve(
      quotaKeys.map((key) => {
        const q = this.#quotas.get(key);
        return q === undefined ? undefined : { used: q.used, granted: q.granted };
      }),
    );
  }

  readDays(dayKeys: readonly string[]): Promise<number[]> {
    return Promise.resolve(dayKeys.map((key) => this.#days.get(key)?.count ?? 0));
  }

  /**
   * The quota counters of periods not yet ended at `now`, with the adjustments applied to each: what
   * the admin usage endpoint answers (`QuotasAnswer` of contract/src/usage-api.ts).
   */
  listQuotas(now: number): ListedQuota[] {
    const list: ListedQuota[] = [];
    for (const [key, q] of this.#quotas) {
      if (!(q.periodEnd > now)) continue;
      list.push({
        key,
        used: q.used,
        granted: q.granted,
        periodEnd: q.periodEnd,
        adjustments: q.adjustments ?? NONE,
      });
    }
    return list;
  }

  /**
   * Forgets full buckets, quotas of periods that ended more than {@link QUOTA_KEPT_AFTER_END_MS} ago
   * and days past their retention.
   */
  sweep(now: number): void {
    for (const [key, b] of this.#buckets) if (b.fullAt <= now) this.#buckets.delete(key);
    for (const [key, q] of this.#quotas) if (!quotaKept(q.periodEnd, now)) this.#quotas.delete(key);
    for (const [key, d] of this.#days) if (d.expiresAt <= now) this.#days.delete(key);
  }

  /** Every stored bucket (live records: read them at once), for the checkpoint. */
  *buckets(): IterableIterator<[string, StoredBucket]> {
    yield* this.#buckets.entries();
  }

  /** Every stored quota counter (live records: read each at once), for the checkpoint. */
  *quotas(): IterableIterator<[string, StoredQuota]> {
    for (const [key, q] of this.#quotas) yield [key, quotaView(q)];
  }

  /** Every stored usage-per-day counter (live records), for the checkpoint. */
  *days(): IterableIterator<[string, StoredDay]> {
    yield* this.#days.entries();
  }

  /** Puts back a checkpointed bucket. */
  restoreBucket(key: string, bucket: StoredBucket): void {
    this.#buckets.set(key, { tokens: bucket.tokens, updatedAt: bucket.updatedAt, fullAt: bucket.fullAt });
  }

  /**
   * Puts back a checkpointed quota counter, whole: its count, grants, applied adjustments and reported
   * alerts together (the larger count wins if one is already there).
   */
  restoreQuota(key: string, quota: StoredQuota): void {
    const present = this.#quotas.get(key);
    if (present !== undefined && present.used >= quota.used) return;
    this.#quotas.set(key, {
      used: quota.used,
      granted: quota.granted,
      periodEnd: quota.periodEnd,
      adjustments: quota.adjustments.length > 0 ? [...quota.adjustments] : undefined,
      alerts: quota.alerts.length > 0 ? [...quota.alerts] : undefined,
    });
  }

  /** Puts back a checkpointed usage-per-day counter (the larger count wins if one is already there). */
  restoreDay(key: string, day: StoredDay): void {
    const present = this.#days.get(key);
    if (present === undefined || present.count < day.count) {
      this.#days.set(key, { count: day.count, expiresAt: day.expiresAt });
    }
  }

  /** How many counters are stored. */
  get size(): { buckets: number; quotas: number; days: number } {
    return { buckets: this.#buckets.size, quotas: this.#quotas.size, days: this.#days.size };
  }

  close(): Promise<void> {
    // Nothing to release; the checkpointer persists the counters.
    return Promise.resolve();
  }
}

/**
 * A stored quota counter as a request ending its period at `periodEnd` sees it at `now`: the record,
 * or undefined when its period ended and the request's does not end later. One counter key can be
 * asked with two period ends: the period's id (the key's last part) is its first local day, so a
 * plan's time zone (or period kind) changed in the period keeps the key and moves the end. The record
 * then counts until the later end (the caller keeps that end on the record), as Redis keeps the key
 * past the first end (its TTL's margin). The sweep and the checkpoint keep an ended record as long
 * ({@link quotaKept}), so a record no request reached before its first end still counts after it.
 */
function liveQuota(record: QuotaRecord | undefined, periodEnd: number, now: number): QuotaRecord | undefined {
  if (record === undefined || record.periodEnd > now) return record;
  // Ended: live for a later end only within a day of its own (a time zone moves an end by hours), so
  // that an old period's record never counts in a new period that merely starts on the same day.
  return periodEnd > record.periodEnd && quotaKept(record.periodEnd, now) ? record : undefined;
}

/** Whether a quota record ending at `periodEnd` is still kept at `now` (swept, checkpointed, revived). */
export function quotaKept(periodEnd: number, now: number): boolean {
  return now < periodEnd + QUOTA_KEPT_AFTER_END_MS;
}

/**
 * The thresholds (percent of the quota: the limit plus what was granted) the counter has reached and
 * not yet reported: recorded as reported now. Undefined when none (no allocation on the usual path).
 */
function crossedThresholds(
  record: QuotaRecord,
  thresholds: readonly number[],
  limit: number,
): number[] | undefined {
  if (!(record.used > 0)) return undefined;
  const allowance = limit + record.granted;
  let crossed: number[] | undefined;
  for (const t of thresholds) {
    if (record.used * 100 < t * allowance) continue;
    if (record.alerts?.includes(t) === true) continue;
    (record.alerts ??= []).push(t);
    (crossed ??= []).push(t);
  }
  return crossed;
}

function quotaView(q: QuotaRecord): StoredQuota {
  return {
    used: q.used,
    granted: q.granted,
    periodEnd: q.periodEnd,
    adjustments: q.adjustments ?? NONE,
    alerts: q.alerts ?? NONE,
  };
}

/** Throws a RangeError naming the field when an adjustment is not applicable (both stores call it). */
export function checkAdjustment(r: AdjustRequest): void {
  if (typeof r.quotaKey !== 'string' || r.quotaKey === '') throw new RangeError('adjust: quotaKey is empty');
  if (typeof r.id !== 'string' || r.id === '' || r.id.length > 256) {
    throw new RangeError('adjust: id must be a non-empty string of at most 256 characters');
  }
  if (!Number.isSafeInteger(r.amount))
    throw new RangeError(`adjust: amount must be an integer, got ${r.amount}`);
  if (!Number.isFinite(r.periodEnd) || !Number.isFinite(r.now)) {
    throw new RangeError('adjust: periodEnd and now must be epoch milliseconds');
  }
}
