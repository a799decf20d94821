/**
 * The counter keys of a key's requests (ADR 0003, `counterKeys` and `dayKey`), remembered per key so
 * that the hot path does not build the same strings on every request (and the store's maps hash them
 * once). An entry is reused only while the plan object, the route, the period and the day are the ones
 * it was made for: a reload compiles new plan objects, a new period or day has a new id.
 */
import { counterKeys, dayKey } from '../../../contract/src/identity.ts';
import { type KeyEntry, type PlanEntry, type RouteEntry, subjectOf } from '../catalog/catalog.ts';

interface Names {
  readonly plan: PlanEntry;
  readonly route: RouteEntry | undefined;
  readonly periodId: string;
  readonly dayId: string;
  readonly bucket: string;
  readonly quota: string;
  readonly day: string;
}

/** A bounded cache of counter keys by key. */
export class CounterNames {
  #names = new Map<KeyEntry, Names>();
  readonly #max: number;

  /** At most `max` keys are remembered (then the cache starts over). */
  constructor(max = 100_000) {
    this.#max = max;
  }

  /**
   * The bucket, quota and day keys of `key` on `plan`, for `route` (its own bucket if it has a
   * throttle), in period `periodId` and on the plan's local day `dayId`.
   */
  of(
    key: KeyEntry,
    plan: PlanEntry,
    route: RouteEntry | undefined,
    periodId: string,
    dayId: string,
  ): { bucket: string; quota: string; day: string } {
    const own = route?.throttle ? route : undefined;
    const known = this.#names.get(key);
    if (
      known !== undefined &&
      known.plan === plan &&
      known.route === own &&
      known.periodId === periodId &&
      known.dayId === dayId
    )
      return known;
    const subject = subjectOf(plan, key);
    const keys = counterKeys(plan.id, subject, periodId, own?.name);
    if (known === undefined && this.#names.size >= this.#max) this.#names = new Map();
    const names: Names = {
      plan,
      route: own,
      periodId,
      dayId,
      bucket: keys.bucket,
      quota: keys.quota,
      day: dayKey(plan.id, subject, dayId),
    };
    this.#names.set(key, names);
    return names;
  }
}
