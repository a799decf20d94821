import { describe, expect, it } from 'vitest';
import {
  counterKeys,
  dayHashKey,
  dayHashOf,
  dayHashReads,
  dayKey,
  objectNames,
  parseCounterKey,
  parseStageKey,
  shardCount,
  shardOf,
  stageKey,
} from './identity.ts';

describe('identities', () => {
  it('doubles the shard count only when the average shard would pass 2000 keys', () => {
    expect([0, 1, 2000, 2001, 4000, 4001, 10_000, 100_000, 10_000_000].map((n) => shardCount(n))).toEqual([
      1, 1, 1, 2, 2, 4, 8, 64, 256,
    ]);
  });

  it('spreads key ids evenly over shards', () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[shardOf(`key${i}`, 8)]! += 1;
    for (const c of counts) expect(c).toBeGreaterThan(850);
  });

  it('names the objects of two stages differently even when their names share hyphens', () => {
    const a = { namespace: 'shop', api: 'a-b', stage: 'c' };
    const b = { namespace: 'shop', api: 'a', stage: 'b-c' };
    expect(objectNames.index(a)).toBe('keystile-a-b.c');
    expect(objectNames.index(b)).toBe('keystile-a.b-c');
    expect(objectNames.keys(a, 0)).not.toBe(objectNames.keys(b, 0));
    expect(objectNames.secrets(a, 3)).toBe('keystile-a-b.c.secrets-3');
  });

  it('round-trips stage keys and refuses malformed ones', () => {
    const s = { namespace: 'shop', api: 'orders', stage: 'prod' };
    expect(parseStageKey(stageKey(s))).toEqual(s);
    for (const bad of ['shop/orders', 'shop/orders/prod/x', 'Shop/orders/prod', 'shop//prod', '']) {
      expect(parseStageKey(bad)).toBeUndefined();
    }
  });

  it('puts one subject counters under one Redis Cluster hash tag', () => {
    const k = counterKeys('shop/gold', { kind: 'key', id: 'cbarucba7hks' }, '2026-11-01');
    expect(k).toEqual({
      bucket: 'ks:{shop/gold|key:cbarucba7hks}:bucket',
      quota: 'ks:{shop/gold|key:cbarucba7hks}:quota:2026-11-01',
    });
    expect(counterKeys('shop/gold', { kind: 'key', id: 'x' }, '2026-11-01', 'search').bucket).toBe(
      'ks:{shop/gold|key:x}:bucket:search',
    );
    expect(counterKeys('shop/gold', { kind: 'customer', name: 'acme' }, '2026-11-01').quota).toBe(
      'ks:{shop/gold|customer:acme}:quota:2026-11-01',
    );
  });
});

describe('parseCounterKey', () => {
  it('reads back every kind of counter key', () => {
    const key = { kind: 'key', id: 'cbarucba7hks' } as const;
    const customer = { kind: 'customer', name: 'acme-corp' } as const;
    const k = counterKeys('shop/gold', key, '2026-11-01', 'search');
    expect(parseCounterKey(k.quota)).toEqual({
      plan: 'shop/gold',
      subject: key,
      kind: 'quota',
      suffix: '2026-11-01',
    });
    expect(parseCounterKey(k.bucket)).toEqual({
      plan: 'shop/gold',
      subject: key,
      kind: 'bucket',
      suffix: 'search',
    });
    expect(parseCounterKey(counterKeys('shop/gold', customer, '2026-11-01').bucket)).toEqual({
      plan: 'shop/gold',
      subject: customer,
      kind: 'bucket',
      suffix: undefined,
    });
    expect(parseCounterKey(dayKey('shop/gold', customer, '2026-11-23'))).toEqual({
      plan: 'shop/gold',
      subject: customer,
      kind: 'day',
      suffix: '2026-11-23',
    });
  });

  it('refuses what is not a counter key', () => {
    expect(parseCounterKey('ks:{shop/gold|key:x}:quota:2026-11-01:alerts')).toBeUndefined();
    expect(parseCounterKey('other')).toBeUndefined();
    expect(parseCounterKey('ks:{shop/gold|team:x}:quota:2026-11-01')).toBeUndefined();
  });
});

describe('day counters in Redis: one hash per subject and month', () => {
  const key = { kind: 'key', id: 'cbarucba7hks' } as const;
  const acme = { kind: 'customer', name: 'acme' } as const;

  it("puts a day in its month's hash, under the subject's hash tag, its field the day of the month", () => {
    expect(dayHashOf(dayKey('shop/gold', key, '2026-06-10'))).toEqual({
      key: 'ks:{shop/gold|key:cbarucba7hks}:days:2026-06',
      field: '10',
      laterDays: 20,
    });
    expect(dayHashOf(dayKey('shop/gold', acme, '2026-12-31'))).toEqual({
      key: 'ks:{shop/gold|customer:acme}:days:2026-12',
      field: '31',
      laterDays: 0,
    });
    expect(dayHashKey('shop/gold', acme, '2026-12')).toBe('ks:{shop/gold|customer:acme}:days:2026-12');
    // Same hash tag as the bucket and the quota: one Cluster slot.
    const tag = (k: string): string | undefined => /\{[^}]+\}/.exec(k)?.[0];
    expect(tag(dayHashOf(dayKey('shop/gold', key, '2026-06-10'))?.key ?? '')).toBe(
      tag(counterKeys('shop/gold', key, '2026-06-01').quota),
    );
  });

  it('knows the length of every month, leap years too', () => {
    const later = (day: string): number | undefined => dayHashOf(dayKey('p/q', key, day))?.laterDays;
    expect(
      ['2026-01-01', '2026-02-01', '2026-04-01', '2028-02-01', '2100-02-01', '2000-02-01'].map(later),
    ).toEqual([30, 27, 29, 28, 27, 28]);
    expect(later('2028-02-29')).toBe(0);
    expect(later('2026-02-29')).toBeUndefined();
  });

  it('places nothing that is not a calendar day of a day counter', () => {
    for (const bad of [
      dayKey('p/q', key, '2026-02-30'),
      dayKey('p/q', key, '2026-13-01'),
      dayKey('p/q', key, '2026-00-10'),
      dayKey('p/q', key, '2026-06-00'),
      dayKey('p/q', key, '2026-6-1'),
      dayKey('p/q', key, '2026-06-10:x'),
      counterKeys('p/q', key, '2026-06-01').quota,
      'ks:{p/q|key:x}:days:2026-06',
      'other',
    ]) {
      expect(dayHashOf(bad), bad).toBeUndefined();
    }
  });

  it("groups day keys by their month's hash, one read each, remembering where each answer goes", () => {
    const days = ['2026-06-29', '2026-07-01', '2026-06-30', '2026-02-30', '2026-07-02'].map((d) =>
      dayKey('shop/gold', key, d),
    );
    expect(dayHashReads(days)).toEqual({
      reads: [
        { key: 'ks:{shop/gold|key:cbarucba7hks}:days:2026-06', fields: ['29', '30'], positions: [0, 2] },
        { key: 'ks:{shop/gold|key:cbarucba7hks}:days:2026-07', fields: ['01', '02'], positions: [1, 4] },
      ],
      invalid: [3],
    });
    expect(dayHashReads([])).toEqual({ reads: [], invalid: [] });
  });
});
