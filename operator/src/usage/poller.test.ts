import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ApiKey, UsagePlan } from '../../../crds/src/index.ts';
import { loadConfig } from '../config.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { Informers } from '../kube/informers.ts';
import type { Writer } from '../kube/writer.ts';
import { makeMetrics } from '../telemetry/metrics.ts';
import { UsagePoller } from './poller.ts';
import type { RedisCounters } from './redis-counters.ts';
import type { Counter } from './usage-status.ts';
import { UsageView } from './view.ts';

// The poller with fakes around it: a cache, a status writer that records (and, when asked, lags), an
// event recorder, and counters in a map standing in for Redis.
const plan: UsagePlan = {
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'UsagePlan',
  metadata: { name: 'gold', namespace: 'shop' },
  spec: { quota: { limit: 100, period: 'MONTH' }, alerts: { thresholds: [80, 100] } },
};
const key = (name: string, keyId: string): ApiKey => ({
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'ApiKey',
  metadata: { name, namespace: 'shop', uid: `uid-${name}` },
  spec: {},
  status: { keyId, plans: ['gold:orders/prod'] },
});
const list = <T>(items: () => T[]) => ({
  list: () => items(),
  get: (name: string) => items().find((o) => (o as { metadata: { name: string } }).metadata.name === name),
});

function world(opts: { lagging: boolean }) {
  const keys = [key('a', 'ka'), key('b', 'kb')];
  const counters = new Map<string, Counter>();
  const writes: { name: string; status: unknown }[] = [];
  const events: string[] = [];
  const informers = {
    keys: list(() => keys),
    plans: list(() => [plan]),
    adjustments: list(() => []),
  } as unknown as Informers;
  const writer = {
    writeStatus: (_plural: string, obj: ApiKey, status: ApiKey['status']) => {
      writes.push({ name: obj.metadata.name, status });
      if (!opts.lagging) obj.status = status; // the cache sees our write
      return Promise.resolve(true);
    },
  } as unknown as Writer;
  const recorder = {
    record: (t: { name: string }, _type: string, reason: string, note: string) => {
      events.push(`${t.name} ${reason}: ${note}`);
      return Promise.resolve();
    },
  } as unknown as EventRecorder;
  const redis: RedisCounters = {
    readQuotas: (ks) =>
      Promise.resolve(new Map(ks.flatMap((k) => (counters.has(k) ? [[k, counters.get(k)!] as const] : [])))),
    exist: (ks) => Promise.resolve(ks.map(() => false)),
    close: () => Promise.resolve(),
  };
  const config = loadConfig({
    KEYSTILE_USAGE_REDIS_URL: 'redis://127.0.0.1:1',
    KEYSTILE_USAGE_WRITES_PER_SECOND: '1000',
  });
  const metrics = makeMetrics();
  const poller = new UsagePoller({
    config: config.usage,
    informers,
    writer,
    events: recorder,
    metrics,
    log: pino({ level: 'silent' }),
    view: new UsageView(config.usage),
    redis,
    requeueNamespace: () => undefined,
    now: () => new Date('2026-11-23T12:00:00Z'),
  });
  return { poller, counters, writes, events, keys, metrics };
}

describe('UsagePoller', () => {
  for (const lagging of [false, true]) {
    it(`writes only the keys whose usage changed, and announces an alert once${lagging ? ' (with a lagging cache)' : ''}`, async () => {
      const w = world({ lagging });
      w.poller.start(); // the first poll runs now
      await w.poller.drained();
      // Both keys get their (zero) usage once.
      expect(w.writes.map((x) => x.name).sort()).toEqual(['a', 'b']);
      w.writes.length = 0;
      await w.poller.pollOnce();
      await w.poller.drained();
      expect(w.writes).toEqual([]);

      w.counters.set('ks:{shop/gold|key:ka}:quota:2026-11-01', { used: 85, granted: 0 });
      await w.poller.pollOnce();
      await w.poller.drained();
      expect(w.writes.map((x) => x.name)).toEqual(['a']);
      expect(w.writes[0]?.status).toMatchObject({
        keyId: 'ka',
        usage: [{ plan: 'gold', period: '2026-11-01', used: 85, limit: 100, remaining: 15, alerted: 80 }],
      });
      expect(w.events).toEqual([
        "a QuotaThresholdReached: 80% of plan gold's quota used in period 2026-11-01 (85 of 100)",
      ]);
      // Polls again with nothing new: no write, no second Event.
      await w.poller.pollOnce();
      await w.poller.pollOnce();
      await w.poller.drained();
      expect(w.writes.map((x) => x.name)).toEqual(['a']);
      expect(w.events).toHaveLength(1);
      await w.poller.stop();
    });
  }

  for (const lagging of [false, true]) {
    it(`gives an ApiKey created again under a deleted one's name none of its usage or alerts${lagging ? ' (with a lagging cache)' : ''}`, async () => {
      const w = world({ lagging });
      w.counters.set('ks:{shop/gold|key:ka}:quota:2026-11-01', { used: 85, granted: 0 });
      w.poller.start(); // the first poll runs now
      await w.poller.drained();
      expect(w.events).toEqual([
        "a QuotaThresholdReached: 80% of plan gold's quota used in period 2026-11-01 (85 of 100)",
      ]);
      // Deleted and created again between two polls: another uid, another key id, no status usage yet.
      w.keys[0] = { ...key('a', 'ka2'), metadata: { name: 'a', namespace: 'shop', uid: 'uid-a2' } };
      w.counters.set('ks:{shop/gold|key:ka2}:quota:2026-11-01', { used: 90, granted: 0 });
      w.writes.length = 0;
      await w.poller.pollOnce();
      await w.poller.drained();
      expect(w.writes.map((x) => x.name)).toEqual(['a']);
      expect(w.writes[0]?.status).toMatchObject({
        keyId: 'ka2',
        usage: [{ plan: 'gold', period: '2026-11-01', used: 90, limit: 100, remaining: 10, alerted: 80 }],
      });
      expect(w.events).toEqual([
        "a QuotaThresholdReached: 80% of plan gold's quota used in period 2026-11-01 (85 of 100)",
        "a QuotaThresholdReached: 80% of plan gold's quota used in period 2026-11-01 (90 of 100)",
      ]);
      await w.poller.stop();
    });
  }

  it('exports no quota gauges and no pending writes once stopped (a replica that lost the Lease)', async () => {
    const w = world({ lagging: false });
    w.counters.set('ks:{shop/gold|key:ka}:quota:2026-11-01', { used: 85, granted: 0 });
    w.poller.start(); // the first poll runs now
    await w.poller.drained();
    const exported = async (): Promise<string[]> =>
      (await w.metrics.registry.metrics())
        .split('\n')
        .filter((l) => /^keystile_operator_(key|plan)_quota_(used|limit)\{/.test(l));
    expect(await exported()).toEqual(
      expect.arrayContaining([
        'keystile_operator_key_quota_used{namespace="shop",apikey="a",plan="gold"} 85',
        'keystile_operator_plan_quota_used{namespace="shop",plan="gold"} 85',
      ]),
    );
    // As a poll leaves them with a write waiting: a follower must not keep them.
    w.metrics.usagePendingWrites.set(3);
    w.metrics.usageOldestPendingSeconds.set(42);
    await w.poller.stop();
    expect(await exported()).toEqual([]);
    const gauge = async (g: {
      get(): Promise<{ values: { value: number }[] }>;
    }): Promise<number | undefined> => (await g.get()).values[0]?.value;
    expect(await gauge(w.metrics.usagePendingWrites)).toBe(0);
    expect(await gauge(w.metrics.usageOldestPendingSeconds)).toBe(0);
  });
});
