import { describe, expect, it } from 'vitest';
import type { ApiKey, UsagePlan } from '../../../crds/src/index.ts';
import { usageTargets } from './targets.ts';
import { type Counter, desiredUsage, type KeyUsage, usageChanged } from './usage-status.ts';

const now = new Date('2026-11-23T12:00:00Z');
const later = new Date('2026-11-23T12:00:15Z');
const plans: Record<string, UsagePlan> = {
  gold: {
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'UsagePlan',
    metadata: { name: 'gold', namespace: 'shop' },
    spec: { quota: { limit: 10_000, period: 'MONTH' }, alerts: { thresholds: [100, 80] } },
  },
  team: {
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'UsagePlan',
    metadata: { name: 'team', namespace: 'shop' },
    spec: { quota: { limit: 500, period: 'DAY', timeZone: 'Asia/Tokyo' }, countBy: 'Customer' },
  },
  fast: {
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'UsagePlan',
    metadata: { name: 'fast', namespace: 'shop' },
    spec: { throttle: { rateLimit: 10, burstLimit: 10 } },
  },
};
const key: ApiKey = {
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'ApiKey',
  metadata: { name: 'acme', namespace: 'shop' },
  spec: { customer: 'acme' },
  status: { keyId: 'cbarucba7hks', plans: ['gold:orders/beta', 'gold:orders/prod', 'team:x/y', 'fast:z/w'] },
};
const targets = usageTargets([key], (_ns, name) => plans[name], now).get('shop/acme') ?? [];
const counters = (m: Record<string, Counter>) => (k: string) => m[k];

describe('usageTargets', () => {
  it("names each plan's counter as the enforcers count it: per key, or per customer; plans with a quota only", () => {
    expect(targets.map((t) => [t.plan, t.quotaKey, t.limit, t.thresholds])).toEqual([
      ['gold', 'ks:{shop/gold|key:cbarucba7hks}:quota:2026-11-01', 10_000, [80, 100]],
      ['team', 'ks:{shop/team|customer:acme}:quota:2026-11-23', 500, []],
    ]);
  });

  it('skips keys without a key id yet', () => {
    const fresh = { ...key, status: { plans: ['gold:orders/prod'] } };
    expect(usageTargets([fresh], (_ns, name) => plans[name], now).size).toBe(0);
  });
});

describe('desiredUsage', () => {
  const gold = 'ks:{shop/gold|key:cbarucba7hks}:quota:2026-11-01';

  it('reports used, granted, the effective limit and remaining per plan, sorted by plan', () => {
    const { usage, announce } = desiredUsage(
      targets,
      counters({ [gold]: { used: 120, granted: 500 } }),
      undefined,
      now,
    );
    expect(usage).toEqual([
      {
        plan: 'gold',
        period: '2026-11-01',
        used: 120,
        granted: 500,
        limit: 10_500,
        remaining: 10_380,
        updatedAt: '2026-11-23T12:00:00Z',
      },
      {
        plan: 'team',
        period: '2026-11-23',
        used: 0,
        limit: 500,
        remaining: 500,
        updatedAt: '2026-11-23T12:00:00Z',
      },
    ]);
    expect(announce).toEqual([]);
  });

  it('keeps updatedAt when nothing changed, so the key is not written; a change is', () => {
    const first = desiredUsage(targets, counters({ [gold]: { used: 5, granted: 0 } }), undefined, now);
    const same = desiredUsage(targets, counters({ [gold]: { used: 5, granted: 0 } }), first.usage, later);
    expect(same.usage).toEqual(first.usage);
    expect(usageChanged(first.usage, same.usage)).toBe(false);
    const more = desiredUsage(targets, counters({ [gold]: { used: 6, granted: 0 } }), first.usage, later);
    expect(usageChanged(first.usage, more.usage)).toBe(true);
    expect(more.usage[0]?.updatedAt).toBe('2026-11-23T12:00:15Z');
  });

  it('announces a crossed threshold once per period, recording it in status', () => {
    const a = desiredUsage(targets, counters({ [gold]: { used: 8000, granted: 0 } }), undefined, now);
    expect(a.announce).toEqual([
      { plan: 'gold', period: '2026-11-01', threshold: 80, used: 8000, limit: 10_000 },
    ]);
    expect(a.usage[0]?.alerted).toBe(80);
    // After a restart the status still says 80: nothing is announced again.
    const b = desiredUsage(targets, counters({ [gold]: { used: 8100, granted: 0 } }), a.usage, later);
    expect(b.announce).toEqual([]);
    expect(b.usage[0]?.alerted).toBe(80);
    // A new period starts afresh.
    const december: KeyUsage[] = a.usage.map((u) => ({ ...u, period: '2026-10-01' }));
    const c = desiredUsage(targets, counters({ [gold]: { used: 8000, granted: 0 } }), december, now);
    expect(c.announce).toHaveLength(1);
  });

  it('never lowers used within a period (a source that saw less), and starts afresh in a new one', () => {
    const a = desiredUsage(targets, counters({ [gold]: { used: 50, granted: 0 } }), undefined, now);
    const b = desiredUsage(targets, counters({ [gold]: { used: 20, granted: 0 } }), a.usage, later);
    expect(b.usage[0]?.used).toBe(50);
    const missing = desiredUsage(targets, counters({}), a.usage, later);
    expect(missing.usage[0]?.used).toBe(50);
    const october = a.usage.map((u) => ({ ...u, period: '2026-10-01' }));
    expect(desiredUsage(targets, counters({}), october, later).usage[0]?.used).toBe(0);
  });

  it('shows the first 64 plans by name (the most the CRD admits), and alerts only on those', () => {
    // A key on 100 plans, one per stage, every one at its alert threshold.
    const many = Array.from({ length: 100 }, (_, i) => ({
      ...targets[0]!,
      plan: `p${String(99 - i).padStart(2, '0')}`,
      quotaKey: `q${i}`,
    }));
    const { usage, announce } = desiredUsage(many, () => ({ used: 10_000, granted: 0 }), undefined, now);
    expect(usage.map((u) => u.plan)).toEqual(
      Array.from({ length: 64 }, (_, i) => `p${String(i).padStart(2, '0')}`),
    );
    expect(announce.map((a) => a.plan)).toEqual(usage.map((u) => u.plan));
  });

  it('shows remaining below 0 after a take-back larger than what is left', () => {
    const { usage } = desiredUsage(
      targets,
      counters({ [gold]: { used: 9000, granted: -2000 } }),
      undefined,
      now,
    );
    expect(usage[0]).toMatchObject({ used: 9000, granted: -2000, limit: 8000, remaining: -1000 });
  });
});

describe('usageChanged', () => {
  it('sees an entry added or removed', () => {
    const u: KeyUsage = {
      plan: 'gold',
      period: '2026-11-01',
      used: 1,
      limit: 2,
      remaining: 1,
      updatedAt: 'x',
    };
    expect(usageChanged(undefined, [])).toBe(false);
    expect(usageChanged(undefined, [u])).toBe(true);
    expect(usageChanged([u], [])).toBe(true);
    expect(usageChanged([u], [{ ...u, updatedAt: 'y' }])).toBe(false);
  });
});
