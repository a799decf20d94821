import { describe, expect, it } from 'vitest';
import { PeriodCache } from '../../../contract/src/calendar-period.ts';
import { counterKeys, dayKey } from '../../../contract/src/identity.ts';
import { plan } from '../../testing/fixtures.ts';
import { compilePlan, type KeyEntry, type PlanEntry } from '../catalog/catalog.ts';
import { KeyCache } from './key-cache.ts';

const DAY = 86_400_000;
const RETENTION = 90 * DAY;
const T0 = Date.UTC(2026, 0, 31, 23, 0, 0); // one hour before February (UTC)

function compiled(spec: Parameters<typeof plan>[2]): PlanEntry {
  const p = compilePlan(plan('shop', 'gold', spec));
  if (typeof p === 'string') throw new Error(p);
  return p;
}

const key: KeyEntry = {
  id: 'goldkey2abcd',
  plan: 'gold',
  type: 'ApiKey',
  enabled: true,
  expiresAt: undefined,
  customer: 'acme',
};
const subject = { kind: 'key', id: key.id } as const;

describe('KeyCache', () => {
  const monthly = compiled({
    throttle: { rate: 1, burst: 2 },
    quota: { limit: 5, period: 'MONTH', timeZone: 'UTC' },
    routes: [
      { name: 'reports', methods: ['*'], path: '/v1/reports/**', cost: 10, throttle: { rate: 1, burst: 1 } },
      { name: 'cheap', methods: ['*'], path: '/v1/cheap', cost: 1 },
    ],
  });
  const [reports, cheap] = monthly.routes;

  it("names the counters of the key's period and day, and the upstream headers, as decisions need them", () => {
    const cache = new KeyCache();
    const s = cache.at(key, monthly, undefined, T0, new PeriodCache(), RETENTION);
    const keys = counterKeys('shop/gold', subject, '2026-01-01');
    expect(s).toMatchObject({
      bucket: keys.bucket,
      quota: keys.quota,
      dayKey: dayKey('shop/gold', subject, '2026-01-31'),
      dayExpiresAt: Date.UTC(2026, 1, 1) + RETENTION,
      from: Date.UTC(2026, 0, 31),
      until: Date.UTC(2026, 1, 1),
    });
    expect(s.window).toMatchObject({ id: '2026-01-01', end: Date.UTC(2026, 1, 1) });
    expect(s.upstream).toEqual({
      'x-keystile-key-id': key.id,
      'x-keystile-plan': 'gold',
      'x-keystile-customer': 'acme',
    });
    expect(Object.isFrozen(s.upstream)).toBe(true);
    // Within the day the same entry; a route without a throttle of its own shares the plan's bucket.
    expect(cache.at(key, monthly, undefined, T0 + 59 * 60_000, new PeriodCache(), RETENTION)).toBe(s);
    expect(cache.at(key, monthly, cheap, T0, new PeriodCache(), RETENTION)).toBe(s);
  });

  it('makes a new entry for a new day, period, route bucket or plan, keeping what did not change', () => {
    const cache = new KeyCache();
    const periods = new PeriodCache();
    const jan31 = cache.at(key, monthly, undefined, T0, periods, RETENTION);
    const feb1 = cache.at(key, monthly, undefined, T0 + 2 * 3_600_000, periods, RETENTION);
    expect(feb1).not.toBe(jan31);
    expect(feb1.quota).toBe(counterKeys('shop/gold', subject, '2026-02-01').quota);
    expect(feb1.dayKey).toBe(dayKey('shop/gold', subject, '2026-02-01'));
    expect(feb1.upstream).toBe(jan31.upstream);
    const feb1Later = cache.at(key, monthly, undefined, T0 + 3 * 3_600_000, periods, RETENTION);
    expect(feb1Later).toBe(feb1);
    // A clock that goes back finds the day and period it is in again.
    const back = cache.at(key, monthly, undefined, T0, periods, RETENTION);
    expect(back.dayKey).toBe(jan31.dayKey);
    expect(back.quota).toBe(jan31.quota);
    // The route with its own throttle has its own bucket; the quota and the day stay the key's.
    const routed = cache.at(key, monthly, reports, T0, periods, RETENTION);
    expect(routed.bucket).toBe(counterKeys('shop/gold', subject, '2026-01-01', 'reports').bucket);
    expect(routed.quota).toBe(jan31.quota);
    expect(routed.dayKey).toBe(jan31.dayKey);
    // A reloaded plan (a new object) makes new headers.
    const reloaded = compiled({ quota: { limit: 5, period: 'MONTH', timeZone: 'UTC' } });
    const after = cache.at(key, reloaded, undefined, T0, periods, RETENTION);
    expect(after.upstream).not.toBe(jan31.upstream);
    expect(after.upstream).toEqual(jan31.upstream);
  });

  it("counts a plan without a quota per UTC day, a DAY quota's day in its zone, and by customer", () => {
    const cache = new KeyCache();
    const periods = new PeriodCache();
    const noQuota = cache.at(key, compiled({ throttle: { rate: 1, burst: 1 } }), undefined, T0, periods, 0);
    expect(noQuota.window).toBeUndefined();
    expect(noQuota.dayKey).toBe(dayKey('shop/gold', subject, '2026-01-31'));
    expect(noQuota.until).toBe(Date.UTC(2026, 1, 1));
    const daily = compiled({ quota: { limit: 5, period: 'DAY', timeZone: 'America/New_York' } });
    const d = cache.at(key, daily, undefined, T0, periods, 0);
    // 18:00 on January 31st in New York: that day ends at 05:00Z on February 1st.
    expect(d.window).toBe(d.day);
    expect(d.dayKey).toBe(dayKey('shop/gold', subject, '2026-01-31'));
    expect(d.dayExpiresAt).toBe(Date.UTC(2026, 1, 1, 5));
    const byCustomer = compiled({
      quota: { limit: 5, period: 'MONTH', timeZone: 'UTC' },
      countBy: 'Customer',
    });
    const c = cache.at(key, byCustomer, undefined, T0, periods, 0);
    expect(c.quota).toBe(counterKeys('shop/gold', { kind: 'customer', name: 'acme' }, '2026-01-01').quota);
  });
});
