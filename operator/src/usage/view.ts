/**
 * What the usage poller learned that the namespace reconcile writes into statuses (status is written in
 * one place): who serves each stage, and which adjustments enforcers have applied. Kept in memory;
 * rebuilt by the first poll after a restart.
 */
import type { StoreKind } from '../../../contract/src/usage-api.ts';
import type { UsageConfig } from '../config.ts';
import { countersShared, type SharingCondition } from './sharing.ts';

/** How many poll intervals an enforcer stays counted after it was last heard from. */
export const SERVED_MEMORY_INTERVALS = 3;

/** The poller's findings, read by the reconciler. */
export class UsageView {
  readonly #config: UsageConfig;
  /** Stage key -> instance -> store and when it was last heard. */
  readonly #served = new Map<string, Map<string, { store: StoreKind; at: number }>>();
  readonly #applied = new Map<string, string>();
  #polled = false;

  constructor(config: UsageConfig) {
    this.#config = config;
  }

  /**
   * The CountersShared condition of a plan on `apiStages` (`api/stage`) in `namespace`; undefined while
   * enforcers are to be polled and no poll has ended yet (the condition is left as it is).
   */
  sharing(namespace: string, apiStages: readonly string[]): SharingCondition | undefined {
    const polling = this.#config.endpoints.length > 0;
    if (polling && !this.#polled) return undefined;
    return countersShared({
      namespace,
      apiStages,
      defaultStore: this.#config.counterStore,
      served: polling ? this.served() : undefined,
    });
  }

  /** Who serves each stage, as last heard. */
  served(): Map<string, Map<string, StoreKind>> {
    return new Map(
      [...this.#served].map(([s, m]) => [s, new Map([...m].map(([i, v]) => [i, v.store]))] as const),
    );
  }

  /**
   * Records who answered a poll at `now` and returns the namespaces whose picture changed (the first
   * poll: every namespace heard of). After a `complete` poll (every endpoint answered), what it did not
   * hear is gone: a replaced pod (a rolling update) no longer counts beside its successor. After a poll
   * with errors, those not heard are forgotten only after {@link SERVED_MEMORY_INTERVALS} intervals, so
   * one missed answer does not flip a condition.
   */
  recordServed(
    served: ReadonlyMap<string, ReadonlyMap<string, StoreKind>>,
    now: number,
    complete: boolean,
  ): Set<string> {
    const before = this.#fingerprints();
    for (const [stage, instances] of served) {
      const m = this.#served.get(stage) ?? new Map<string, { store: StoreKind; at: number }>();
      for (const [instance, store] of instances) m.set(instance, { store, at: now });
      this.#served.set(stage, m);
    }
    const horizon = complete ? now : now - SERVED_MEMORY_INTERVALS * this.#config.intervalMs;
    for (const [stage, m] of this.#served) {
      for (const [instance, v] of m) if (v.at < horizon) m.delete(instance);
      if (m.size === 0) this.#served.delete(stage);
    }
    const first = !this.#polled;
    this.#polled = true;
    const after = this.#fingerprints();
    const changed = new Set<string>();
    for (const ns of new Set([...before.keys(), ...after.keys()]))
      if (first || before.get(ns) !== after.get(ns)) changed.add(ns);
    return changed;
  }

  /** Whether any poll has ended. */
  get polled(): boolean {
    return this.#polled;
  }

  /** When an adjustment (by id) was first seen applied, if it was and its status does not say so yet. */
  appliedAt(id: string): string | undefined {
    return this.#applied.get(id);
  }

  /** Records that an adjustment was seen applied at `at` (the first sighting is kept). */
  markApplied(id: string, at: string): void {
    if (!this.#applied.has(id)) this.#applied.set(id, at);
  }

  /** Forgets adjustments whose status records it (or that are gone): `keep` says which to keep. */
  pruneApplied(keep: (id: string) => boolean): void {
    for (const id of this.#applied.keys()) if (!keep(id)) this.#applied.delete(id);
  }

  #fingerprints(): Map<string, string> {
    const byNs = new Map<string, string[]>();
    for (const [stage, m] of this.#served) {
      const ns = stage.split('/', 1)[0] ?? '';
      const list = byNs.get(ns) ?? [];
      list.push(
        `${stage}=${[...m]
          .map(([i, v]) => `${i}:${v.store}`)
          .sort()
          .join(',')}`,
      );
      byNs.set(ns, list);
    }
    return new Map([...byNs].map(([ns, l]) => [ns, l.sort().join(';')]));
  }
}
