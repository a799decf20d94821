/**
 * What to read for usage: for every ApiKey, each plan it is on (from its own `status.plans`, which the
 * namespace reconcile writes) that has a quota, with the counter the enforcers count it in (ADR 0003:
 * plan, subject, current period). Pure: the caches and the time in, the targets out.
 */
import type { ApiKey, UsagePlan } from '../../../crds/src/index.ts';
import { type PeriodWindow } from '../../../contract/src/calendar-period.ts';
import { counterKeys, planId, type Subject } from '../../../contract/src/identity.ts';
import { currentPeriod, keySubject } from '../render/adjustments.ts';

/** One key's usage on one plan: where its counter is, and what it is measured against. */
export interface UsageTarget {
  readonly namespace: string;
  /** The ApiKey's name. */
  readonly apiKey: string;
  /** The plan's name. */
  readonly plan: string;
  /** The plan's counter identity, `<namespace>/<plan>`. */
  readonly planId: string;
  readonly subject: Subject;
  /** The plan's current period. */
  readonly period: PeriodWindow;
  /** The quota counter's key (`counterKeys(...).quota`). */
  readonly quotaKey: string;
  /** The plan's quota limit (before adjustments). */
  readonly limit: number;
  /** The plan's alert thresholds, percent, ascending. */
  readonly thresholds: readonly number[];
}

/** The plan names in an ApiKey's `status.plans` (`plan:api/stage` each), distinct and sorted. */
export function plansOfKey(key: ApiKey): string[] {
  return [...new Set((key.status?.plans ?? []).map((p) => p.split(':', 1)[0] ?? '').filter(Boolean))].sort();
}

/** `<namespace>/<name>`: how the usage module names an ApiKey. */
export function keyRef(key: { metadata: { namespace?: string; name: string } }): string {
  return `${key.metadata.namespace ?? ''}/${key.metadata.name}`;
}

/**
 * The targets of every key, by {@link keyRef}; keys without a key id or a plan with a quota have none.
 * `plan(namespace, name)` looks a plan up in the cache.
 */
export function usageTargets(
  keys: readonly ApiKey[],
  plan: (namespace: string, name: string) => UsagePlan | undefined,
  now: Date,
): Map<string, UsageTarget[]> {
  const windows = new Map<string, PeriodWindow | undefined>();
  const out = new Map<string, UsageTarget[]>();
  for (const key of keys) {
    const keyId = key.status?.keyId;
    const namespace = key.metadata.namespace ?? '';
    if (!keyId || key.metadata.deletionTimestamp) continue;
    const targets: UsageTarget[] = [];
    for (const name of plansOfKey(key)) {
      const p = plan(namespace, name);
      if (!p?.spec.quota) continue;
      const id = planId(namespace, name);
      if (!windows.has(id)) {
        const c = currentPeriod(p, now);
        windows.set(id, 'window' in c ? c.window : undefined);
      }
      const period = windows.get(id);
      if (!period) continue;
      const subject = keySubject(p, key, keyId);
      targets.push({
        namespace,
        apiKey: key.metadata.name,
        plan: name,
        planId: id,
        subject,
        period,
        quotaKey: counterKeys(id, subject, period.id).quota,
        limit: p.spec.quota.limit,
        thresholds: [...(p.spec.alerts?.thresholds ?? [])].sort((a, b) => a - b),
      });
    }
    if (targets.length > 0) out.set(keyRef(key), targets);
  }
  return out;
}
