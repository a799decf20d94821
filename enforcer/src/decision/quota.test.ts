import { describe, expect, it } from 'vitest';
import { takeQuota } from './quota.ts';

describe('takeQuota', () => {
  it.each([
    // used, limit, cost -> allowed, used after, remaining
    { used: 0, limit: 10, cost: 1, allowed: true, after: 1, remaining: 9 },
    { used: 9, limit: 10, cost: 1, allowed: true, after: 10, remaining: 0 },
    { used: 10, limit: 10, cost: 1, allowed: false, after: 10, remaining: 0 },
    { used: 7, limit: 10, cost: 3, allowed: true, after: 10, remaining: 0 },
    { used: 8, limit: 10, cost: 3, allowed: false, after: 8, remaining: 2 },
    { used: 0, limit: 0, cost: 1, allowed: false, after: 0, remaining: 0 },
    { used: 4, limit: 10, cost: 0, allowed: true, after: 4, remaining: 6 },
    { used: 10, limit: 10, cost: 0, allowed: true, after: 10, remaining: 0 },
    // more used than the limit (quota taken back by an adjustment)
    { used: 12, limit: 10, cost: 1, allowed: false, after: 12, remaining: 0 },
    { used: 12, limit: 10, cost: 0, allowed: false, after: 12, remaining: 0 },
    // one big request larger than the whole limit
    { used: 0, limit: 5, cost: 6, allowed: false, after: 0, remaining: 5 },
  ])(
    'used $used of $limit, cost $cost -> allowed $allowed',
    ({ used, limit, cost, allowed, after, remaining }) => {
      expect(takeQuota(used, limit, cost)).toEqual({ allowed, used: after, remaining });
    },
  );

  it('refuses rather than grants on nonsense input', () => {
    expect(takeQuota(Number.NaN, 10, 1)).toEqual({ allowed: false, used: Number.NaN, remaining: 0 });
    expect(takeQuota(0, Number.NaN, 1).allowed).toBe(false);
    expect(takeQuota(0, 10, Number.NaN).allowed).toBe(false);
    expect(takeQuota(5, 10, -3)).toEqual({ allowed: false, used: 5, remaining: 5 });
  });

  it('counts a run of requests up to the limit exactly', () => {
    let used = 0;
    let granted = 0;
    for (let i = 0; i < 25; i++) {
      const decision = takeQuota(used, 20, 1);
      if (decision.allowed) granted++;
      used = decision.used;
    }
    expect(granted).toBe(20);
    expect(used).toBe(20);
  });
});
