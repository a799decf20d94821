import { describe, expect, it } from 'vitest';
import type { StoreKind } from '../../../contract/src/usage-api.ts';
import { UsageView } from './view.ts';

const INTERVAL = 15_000;
const view = (): UsageView =>
  new UsageView({
    intervalMs: INTERVAL,
    endpoints: ['dns+http://keystile-gateway-admin:9190'],
    redis: undefined,
    counterStore: 'memory',
    writesPerSecond: 20,
    metricsPerKey: true,
    timeoutMs: 5000,
  });
const heard = (...instances: string[]): Map<string, Map<string, StoreKind>> =>
  new Map([['shop/orders/prod', new Map(instances.map((i) => [i, 'memory' as const]))]]);
const reason = (v: UsageView): string | undefined => v.sharing('shop', ['orders/prod'])?.reason;

describe('who serves a stage, as the usage polls heard it', () => {
  it('forgets a replaced enforcer after the first poll every endpoint answered', () => {
    const v = view();
    v.recordServed(heard('gateway-a'), 0, true);
    expect(reason(v)).toBe('SingleEnforcer');
    // A rolling update: old and new pod both answer (they do count separately, for now).
    v.recordServed(heard('gateway-a', 'gateway-b'), INTERVAL, true);
    expect(reason(v)).toBe('PerReplicaCounters');
    // The old pod is gone from the Service: one enforcer again, at once.
    expect(v.recordServed(heard('gateway-b'), 2 * INTERVAL, true)).toEqual(new Set(['shop']));
    expect(reason(v)).toBe('SingleEnforcer');
  });

  it('keeps an enforcer a poll did not hear through errors, for a few intervals', () => {
    const v = view();
    v.recordServed(heard('gateway-a', 'gateway-b'), 0, true);
    // gateway-b did not answer this poll (an error): still counted.
    v.recordServed(heard('gateway-a'), INTERVAL, false);
    expect(reason(v)).toBe('PerReplicaCounters');
    v.recordServed(heard('gateway-a'), 3 * INTERVAL, false);
    expect(reason(v)).toBe('PerReplicaCounters');
    v.recordServed(heard('gateway-a'), 3 * INTERVAL + 1, false);
    expect(reason(v)).toBe('SingleEnforcer');
  });
});
