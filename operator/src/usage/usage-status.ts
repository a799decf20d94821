/**
 * The `status.usage[]` an ApiKey should show (AWS's GetUsage), from its targets and the counters read,
 * and whether it differs from what it shows. Pure.
 */
import { ApiKeyStatus } from '../../../crds/src/api-key.ts';
import { alertFor } from './alerts.ts';
import type { UsageTarget } from './targets.ts';

/** One plan's usage, as ApiKey status shows it. */
export type KeyUsage = NonNullable<ApiKeyStatus['usage']>[number];

/**
 * The most plans whose usage an ApiKey's status shows (the CRD's bound): a key on more plans (one per API
 * stage at most, and stages are not limited) shows the first ones by name, and only those are alerted.
 */
export const MAX_USAGE_IN_STATUS = ApiKeyStatus.properties.usage.maxItems ?? 64;

/** A quota counter as read: units used and units adjustments granted (negative: taken back). */
export interface Counter {
  readonly used: number;
  readonly granted: number;
}

/** An alert to announce once the status recording it is written. */
export interface Announcement {
  readonly plan: string;
  readonly period: string;
  readonly threshold: number;
  readonly used: number;
  readonly limit: number;
}

/**
 * A key's desired usage, one entry per target (sorted by plan: `usage[0]`, which the `Used` and `Remaining` columns
 * show, is the `Plan` column's plan when that plan has a quota; at most {@link MAX_USAGE_IN_STATUS}), and the alerts it newly crosses. A counter not found counts as nothing used.
 * `used` never goes down within a period: what was served was served, and a lower reading means a
 * source that saw less (an enforcer that did not answer, or restarted without its checkpoint; a Redis
 * that lost data; another operator reading another source), never fewer requests.
 * Figures equal to `previous` keep its `updatedAt`, so an unchanged key compares equal and is not written.
 */
export function desiredUsage(
  targets: readonly UsageTarget[],
  counter: (quotaKey: string) => Counter | undefined,
  previous: readonly KeyUsage[] | undefined,
  now: Date,
): { usage: KeyUsage[]; announce: Announcement[] } {
  const usage: KeyUsage[] = [];
  const announce: Announcement[] = [];
  const at = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const shown = [...targets]
    .sort((a, b) => (a.plan < b.plan ? -1 : a.plan > b.plan ? 1 : 0))
    .slice(0, MAX_USAGE_IN_STATUS);
  for (const t of shown) {
    const c = counter(t.quotaKey);
    const before = previous?.find((u) => u.plan === t.plan && u.period === t.period.id);
    const used = Math.max(c?.used ?? 0, before?.used ?? 0);
    const granted = c?.granted ?? 0;
    const limit = Math.max(0, t.limit + granted);
    const alert = alertFor(t.thresholds, used, limit, before?.alerted);
    if (alert.announce !== undefined)
      announce.push({ plan: t.plan, period: t.period.id, threshold: alert.announce, used, limit });
    const entry: KeyUsage = {
      plan: t.plan,
      period: t.period.id,
      used,
      ...(granted !== 0 && { granted }),
      limit,
      remaining: t.limit + granted - used,
      ...(alert.alerted !== undefined && { alerted: alert.alerted }),
      updatedAt: at,
    };
    usage.push(before && sameFigures(before, entry) ? { ...entry, updatedAt: before.updatedAt } : entry);
  }
  return { usage, announce };
}

/** Whether two usage entries say the same, `updatedAt` aside. */
export function sameFigures(a: KeyUsage, b: KeyUsage): boolean {
  return (
    a.plan === b.plan &&
    a.period === b.period &&
    a.used === b.used &&
    (a.granted ?? 0) === (b.granted ?? 0) &&
    a.limit === b.limit &&
    a.remaining === b.remaining &&
    a.alerted === b.alerted
  );
}

/** Whether a key's usage list changed, `updatedAt` aside: only then is its status written. */
export function usageChanged(
  current: readonly KeyUsage[] | undefined,
  desired: readonly KeyUsage[],
): boolean {
  const a = current ?? [];
  if (a.length !== desired.length) return true;
  return a.some((u, i) => {
    const d = desired[i];
    return d === undefined || !sameFigures(u, d);
  });
}
