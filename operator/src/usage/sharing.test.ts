import { describe, expect, it } from 'vitest';
import type { StoreKind } from '../../../contract/src/usage-api.ts';
import { combineAnswers } from './combine.ts';
import { countersShared } from './sharing.ts';

const served = (m: Record<string, Record<string, StoreKind>>) =>
  new Map(Object.entries(m).map(([s, i]) => [s, new Map(Object.entries(i))]));

describe('countersShared', () => {
  it('reports a plan served by two enforcers counting in memory: its quota is multiplied', () => {
    const c = countersShared({
      namespace: 'shop',
      apiStages: ['orders/prod', 'orders/beta'],
      defaultStore: 'memory',
      served: served({
        'shop/orders/prod': { 'pod-a:1': 'memory' },
        'shop/orders/beta': { 'pod-b:1': 'memory' },
      }),
    });
    expect(c).toMatchObject({ status: 'False', reason: 'PerReplicaCounters' });
    expect(c.message).toMatch(
      /^2 enforcers serve orders\/beta, orders\/prod.*up to 2 times its quota.*Redis store/,
    );
  });

  it('counts the replicas of one stage (sidecars in several pods) too', () => {
    const c = countersShared({
      namespace: 'shop',
      apiStages: ['orders/prod'],
      defaultStore: 'memory',
      served: served({ 'shop/orders/prod': { a: 'memory', b: 'memory', c: 'memory' } }),
    });
    expect(c).toMatchObject({ status: 'False', reason: 'PerReplicaCounters' });
    expect(c.message).toContain('up to 3 times');
  });

  it('is content with one enforcer serving every stage, or with Redis', () => {
    expect(
      countersShared({
        namespace: 'shop',
        apiStages: ['orders/prod', 'orders/beta'],
        defaultStore: 'memory',
        served: served({ 'shop/orders/prod': { a: 'memory' }, 'shop/orders/beta': { a: 'memory' } }),
      }),
    ).toMatchObject({ status: 'True', reason: 'SingleEnforcer' });
    expect(
      countersShared({
        namespace: 'shop',
        apiStages: ['orders/prod'],
        defaultStore: 'memory',
        served: served({ 'shop/orders/prod': { a: 'redis', b: 'redis' } }),
      }),
    ).toMatchObject({ status: 'True', reason: 'SharedStore' });
    expect(
      countersShared({
        namespace: 'shop',
        apiStages: ['a/b', 'c/d'],
        defaultStore: 'redis',
        served: undefined,
      }),
    ).toMatchObject({ status: 'True', reason: 'SharedStore' });
  });

  it('without polls, warns about a plan on several stages and admits not knowing about one', () => {
    expect(
      countersShared({
        namespace: 'shop',
        apiStages: ['a/b', 'c/d'],
        defaultStore: 'memory',
        served: undefined,
      }),
    ).toMatchObject({ status: 'False', reason: 'PerReplicaCounters' });
    expect(
      countersShared({ namespace: 'shop', apiStages: ['a/b'], defaultStore: 'memory', served: undefined }),
    ).toMatchObject({ status: 'Unknown', reason: 'EnforcersUnknown' });
  });

  it('does not mix namespaces: the same api/stage elsewhere is another stage', () => {
    expect(
      countersShared({
        namespace: 'shop',
        apiStages: ['orders/prod'],
        defaultStore: 'memory',
        served: served({ 'shop/orders/prod': { a: 'memory' }, 'other/orders/prod': { b: 'memory' } }),
      }),
    ).toMatchObject({ status: 'True', reason: 'SingleEnforcer' });
  });
});

describe('combineAnswers', () => {
  const answer = (instance: string, used: number, granted: number, adjustments: string[] = []) => ({
    store: 'memory' as const,
    instance,
    stages: ['shop/orders/prod'],
    now: '2026-11-23T12:00:00Z',
    quotas: [
      { key: 'ks:{shop/gold|key:k}:quota:2026-11-01', used, granted, periodEnd: '2026-12-01T00:00:00Z' },
    ],
    adjustments,
  });

  it('adds up what each enforcer counted, and counts a grant once', () => {
    const c = combineAnswers([answer('a', 10, 500, ['u1']), answer('b', 7, 500, ['u1']), answer('c', 1, 0)]);
    expect(c.counters.get('ks:{shop/gold|key:k}:quota:2026-11-01')).toEqual({ used: 18, granted: 500 });
    expect([...c.adjustments]).toEqual(['u1']);
    expect([...(c.served.get('shop/orders/prod')?.keys() ?? [])]).toEqual(['a', 'b', 'c']);
  });

  it('takes no counters from a Redis enforcer (readers read Redis)', () => {
    const c = combineAnswers([{ ...answer('a', 10, 0), store: 'redis' }]);
    expect(c.counters.size).toBe(0);
    expect(c.served.get('shop/orders/prod')?.get('a')).toBe('redis');
  });
});
