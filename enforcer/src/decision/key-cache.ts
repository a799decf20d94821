/**
 * What a key's decisions share from one request to the next, remembered per key so that the hot path
 * computes none of it again: the quota's current period and the plan's local day (each a
 * {@link PeriodCache} lookup otherwise), the counter keys of ADR 0003 (`counterKeys` and `dayKey`: the
 * same strings every time, so the store's maps hash them once), when the day counter may be forgotten,
 * and the headers an allow sets on the upstream request. An entry is reused only while the plan object
 * and the route with its own throttle are the ones it was made for and the time is inside both its
 * period and its day: a reload compiles new plan objects, and a new period or day is a new entry.
 * Holds key ids, plan names and customers, never a key value.
 */
import type { PeriodCache, PeriodWindow } from '../../../contract/src/calendar-period.ts';
import { counterKeys, dayKey } from '../../../contract/src/identity.ts';
import { type KeyEntry, type PlanEntry, type RouteEntry, subjectOf } from '../catalog/catalog.ts';
import { UPSTREAM_HEADERS } from './answers.ts';

/** One key's entry. */
export interface KeyState {
  readonly plan: PlanEntry;
  /** The matched route when it has a throttle of its own (its bucket is the route's), else undefined. */
  readonly route: RouteEntry | undefined;
  /** The quota's current period; undefined when the plan has no quota. */
  readonly window: PeriodWindow | undefined;
  /** The plan's local day (the quota's own window for a DAY quota). */
  readonly day: PeriodWindow;
  /** The entry holds from this instant (epoch ms, inclusive)... */
  readonly from: number;
  /** ...to this one (exclusive): the period and the day both hold in between. */
  readonly until: number;
  /** The bucket's counter key (the route's when it has its own throttle). */
  readonly bucket: string;
  /** The quota's counter key in {@link window}. */
  readonly quota: string;
  /** The usage-per-day counter key of {@link day}. */
  readonly dayKey: string;
  /** When the day counter may be forgotten: the day's end plus the retention. */
  readonly dayExpiresAt: number;
  /** The headers an allow sets on the upstream request (frozen: decisions share it). */
  readonly upstream: Readonly<Record<string, string>>;
}

/** A bounded cache of {@link KeyState} by key. */
export class KeyCache {
  #states = new Map<KeyEntry, KeyState>();
  readonly #max: number;

  /** At most `max` keys are remembered (then the cache starts over). */
  constructor(max = 100_000) {
    this.#max = max;
  }

  /**
   * The state of `key` on `plan` at `now` for a request matching `route` (undefined: none), the windows
   * from `periods`; `retentionMs` is how long a day counter is kept after its day (the same on every
   * call: it is the decision options'). Throws as {@link PeriodCache.window} (a time out of range).
   */
  at(
    key: KeyEntry,
    plan: PlanEntry,
    route: RouteEntry | undefined,
    now: number,
    periods: PeriodCache,
    retentionMs: number,
  ): KeyState {
    const own = route?.throttle ? route : undefined;
    const known = this.#states.get(key);
    if (
      known !== undefined &&
      known.plan === plan &&
      known.route === own &&
      now >= known.from &&
      now < known.until
    ) {
      return known;
    }
    const quota = plan.quota;
    const window = quota === undefined ? undefined : periods.window(quota.spec, now);
    const day = quota?.spec.period === 'DAY' && window !== undefined ? window : periods.window(plan.day, now);
    const periodId = window?.id ?? '';
    // Unchanged names are kept (same strings, hashed once by the store's maps): a new day alone makes a new day key.
    const same = known !== undefined && known.plan === plan;
    let bucket: string;
    let quotaKey: string;
    if (same && known.route === own && known.window?.id === window?.id) {
      bucket = known.bucket;
      quotaKey = known.quota;
    } else {
      const keys = counterKeys(plan.id, subjectOf(plan, key), periodId, own?.name);
      bucket = keys.bucket;
      quotaKey = keys.quota;
    }
    const state: KeyState = {
      plan,
      route: own,
      window,
      day,
      from: window === undefined ? day.start : Math.max(window.start, day.start),
      until: window === undefined ? day.end : Math.min(window.end, day.end),
      bucket,
      quota: quotaKey,
      dayKey: same && known.day.id === day.id ? known.dayKey : dayKey(plan.id, subjectOf(plan, key), day.id),
      dayExpiresAt: day.end + retentionMs,
      upstream: same ? known.upstream : upstreamHeaders(key, plan),
    };
    if (known === undefined && this.#states.size >= this.#max) this.#states = new Map();
    this.#states.set(key, state);
    return state;
  }
}

/** The upstream headers of an allow for `key` on `plan`: key id, plan name, and the customer if any. */
function upstreamHeaders(key: KeyEntry, plan: PlanEntry): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {
    [UPSTREAM_HEADERS.keyId]: key.id,
    [UPSTREAM_HEADERS.plan]: plan.name,
  };
  if (key.customer !== undefined) headers[UPSTREAM_HEADERS.customer] = key.customer;
  return Object.freeze(headers);
}
