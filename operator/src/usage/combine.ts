/**
 * Adding up what enforcers with the memory store answered (GET /v1/usage/quotas): every enforcer counts
 * its own requests, so a counter's `used` is the sum over enforcers; an adjustment is applied by each
 * enforcer to its own counter, so `granted` is taken once (the enforcer that applied the most), not
 * summed: what a UsageAdjustment grants is granted once in the report. Pure.
 */
import type { QuotasAnswer, StoreKind } from '../../../contract/src/usage-api.ts';
import type { Counter } from './usage-status.ts';

/** What the answers of one poll say together. */
export interface Combined {
  /** Counters of the memory stores, by quota key. */
  readonly counters: Map<string, Counter>;
  /** Ids of adjustments some enforcer applied. */
  readonly adjustments: Set<string>;
  /** Who serves each stage (`<namespace>/<api>/<stage>`): instances and their stores. */
  readonly served: Map<string, Map<string, StoreKind>>;
}

/** Combines the answers (one per distinct instance). */
export function combineAnswers(answers: readonly QuotasAnswer[]): Combined {
  const counters = new Map<string, Counter>();
  const adjustments = new Set<string>();
  const served = new Map<string, Map<string, StoreKind>>();
  for (const a of answers) {
    for (const s of a.stages) {
      const m = served.get(s) ?? new Map<string, StoreKind>();
      served.set(s, m.set(a.instance, a.store));
    }
    for (const id of a.adjustments) adjustments.add(id);
    if (a.store !== 'memory') continue;
    for (const q of a.quotas) {
      const before = counters.get(q.key);
      counters.set(q.key, {
        used: (before?.used ?? 0) + q.used,
        granted:
          before === undefined || Math.abs(q.granted) > Math.abs(before.granted) ? q.granted : before.granted,
      });
    }
  }
  return { counters, adjustments, served };
}
