// The Redis store on real Redis (Debian's redis-server, started here): what the contract suite cannot
// say for every store. The scripts are loaded once and called by SHA; the key layout is the documented
// one; Sentinel works through ioredis; and losing Redis (killed, or hung with SIGSTOP) does what
// --redis-unavailable says: closed rejects (503), open allows and counts nowhere, local counts here and
// adds its counts to Redis when Redis returns.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../../contract/src/key-format.ts';
import {
  alertsKey,
  adjustmentMarkerKey,
  counterKeys,
  dayHashOf,
  dayKey,
} from '../../../contract/src/identity.ts';
import { RedisServer, type Sentinelled, startSentinelled } from '../../../test/ground/redis.ts';
import { waitFor } from '../../../test/ground/wait.ts';
import { catalogOf, plan, silentLogger, stageDocuments } from '../../testing/fixtures.ts';
import { fuzzRandom } from '../../testing/seeded.ts';
import { manualClock } from '../decision/clock.ts';
import { decide, decideContext } from '../decision/decide.ts';
import { EnforcerMetrics, METRIC_NAMES } from '../telemetry/metrics.ts';
import { type LossPolicy, RedisLossPolicy, StoreUnavailableError } from './redis-loss-policy.ts';
import { CounterRequestError, type RedisConnection, RedisStore } from './redis-store.ts';
import { WHOLE } from './redis-scripts.ts';
import type { ConsumeRequest } from './store.ts';

const T0 = Date.UTC(2026, 5, 10);
const JUNE_END = Date.UTC(2026, 6, 1);
const DAY = 86_400_000;
let serial = 0;

/**
 * A request on a subject of its own: bucket (1/s, burst 100), quota of `limit` in June, the day counter
 * (its key, and `days`, the June hash that holds it in Redis).
 */
function request(limit = 10): {
  r: (now?: number) => ConsumeRequest;
  quota: string;
  day: string;
  days: string;
  bucket: string;
  subject: { kind: 'key'; id: string };
} {
  const subject = { kind: 'key', id: `k${serial++}` } as const;
  const keys = counterKeys('redis-test/gold', subject, '2026-06-01');
  const day = dayKey('redis-test/gold', subject, '2026-06-10');
  return {
    ...keys,
    day,
    days: dayHashOf(day)?.key ?? '',
    subject,
    r: (now = T0) => ({
      bucketKey: keys.bucket,
      bucketLimit: { rate: 1, burst: 100 },
      quotaKey: keys.quota,
      quotaLimit: limit,
      cost: 1,
      periodEnd: JUNE_END,
      now,
      dayKey: day,
      dayExpiresAt: T0 + 91 * 86_400_000,
      thresholds: [50],
    }),
  };
}

async function connected(store: RedisStore): Promise<RedisStore> {
  if (!(await store.waitReady(10_000))) throw new Error('the store did not connect to Redis');
  return store;
}

async function metric(metrics: EnforcerMetrics, name: string): Promise<string> {
  return (await metrics.registry.getSingleMetricAsString(name)).trim();
}

describe('the Redis store', () => {
  let server: RedisServer;
  let store: RedisStore;
  beforeAll(async () => {
    server = await RedisServer.start();
    store = await connected(new RedisStore({ connection: { kind: 'standalone', url: server.url } }));
  }, 30_000);
  afterAll(async () => {
    await store.close();
    await server.stop();
  });

  it('loads each script once per connection and then calls it by its SHA', async () => {
    await store.client.config('RESETSTAT');
    const other = await connected(new RedisStore({ connection: { kind: 'standalone', url: server.url } }));
    try {
      const { r } = request();
      for (let i = 0; i < 10; i++) await other.consume(r());
      const stats = await store.client.info('commandstats');
      const calls = (command: string): number =>
        Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
      expect(calls('eval')).toBe(1);
      expect(calls('evalsha')).toBe(9);
    } finally {
      await other.close();
    }
  });

  it('lays its keys out as docs/counters.md says', async () => {
    const { r, quota, day, days, bucket } = request(2);
    await store.consume({ ...r(), thresholds: [50] });
    await store.adjust({ quotaKey: quota, id: 'uid-1', amount: 3, periodEnd: JUNE_END, now: T0 });
    const c = store.client;
    expect(await c.type(bucket)).toBe('string');
    expect(await c.get(bucket)).toBe(`99 ${T0}`);
    expect(await c.type(quota)).toBe('hash');
    expect(await c.hgetall(quota)).toEqual({ used: '1', granted: '3' });
    // The day is a field of its month's hash; no key per day.
    expect(days).toMatch(/^ks:\{redis-test\/gold\|key:k\d+\}:days:2026-06$/);
    expect(await c.hgetall(days)).toEqual({ '10': '1' });
    expect(await c.exists(day)).toBe(0);
    expect(await c.smembers(alertsKey(quota))).toEqual(['50']);
    expect(await c.get(adjustmentMarkerKey(quota, 'uid-1'))).toBe('3');
    // One hash tag, so one Cluster slot (the Cluster contract suite runs the script across every slot).
    const tags = [bucket, quota, days, alertsKey(quota), adjustmentMarkerKey(quota, 'uid-1')].map(
      (k) => /\{[^}]+\}/.exec(k)?.[0],
    );
    expect(new Set(tags).size).toBe(1);
  });

  it("keeps a month of days in one compact hash (listpack) that expires with the month's last day", async () => {
    const { subject } = request();
    const c = store.client;
    const retention = 90 * DAY;
    // Every day of July 2026 (31 days, the most a month has), a large count on one of them.
    for (let d = 1; d <= 31; d++) {
      const start = Date.UTC(2026, 6, d);
      const result = await store.consume({
        cost: d === 31 ? 1_000_000_000 : d,
        periodEnd: start + DAY,
        now: start,
        dayKey: dayKey('redis-test/gold', subject, `2026-07-${String(d).padStart(2, '0')}`),
        dayExpiresAt: start + DAY + retention,
      });
      expect(result.allowed).toBe(true);
    }
    const july = dayHashOf(dayKey('redis-test/gold', subject, '2026-07-01'))?.key ?? '';
    expect(await c.hlen(july)).toBe(31);
    expect(await c.hget(july, '07')).toBe('7');
    expect(await c.object('ENCODING', july)).toBe('listpack');
    // The requests' clock went through July while Redis's stood still: the first request set the end
    // of July 31 plus the retention, 31 days and the retention after it, and no later day moved it.
    const pttl = await c.pttl(july);
    expect(pttl).toBeGreaterThan(31 * DAY + retention - 60_000);
    expect(pttl).toBeLessThanOrEqual(31 * DAY + retention);
  });

  it("sets a month hash's expiry to the month's end plus the retention, and only ever moves it later", async () => {
    const { subject } = request();
    const c = store.client;
    const june = (day: number): string =>
      dayKey('redis-test/gold', subject, `2026-06-${String(day).padStart(2, '0')}`);
    const hash = dayHashOf(june(1))?.key ?? '';
    const charge = (day: number, retentionDays: number): Promise<unknown> =>
      store.consume({
        cost: 1,
        periodEnd: JUNE_END,
        now: T0,
        dayKey: june(day),
        dayExpiresAt: Date.UTC(2026, 5, day + 1) + retentionDays * DAY,
      });
    const life = async (): Promise<number> => (await c.pttl(hash)) + T0;
    // June 10 with a retention of 90 days: June 30's end + 90 days, whichever day is counted.
    await charge(10, 90);
    const monthEnd = JUNE_END + 90 * DAY;
    expect(await life()).toBeGreaterThan(monthEnd - 60_000);
    expect(await life()).toBeLessThanOrEqual(monthEnd);
    // An earlier day counted late, and a shorter retention (an enforcer configured differently): no
    // shorter; a longer one: later.
    await charge(3, 90);
    await charge(12, 30);
    expect(await life()).toBeGreaterThan(monthEnd - 60_000);
    await charge(11, 100);
    expect(await life()).toBeGreaterThan(monthEnd + 10 * DAY - 60_000);
    expect(await store.readDays([june(3), june(10), june(11), june(12), june(13)])).toEqual([1, 1, 1, 1, 0]);
    // Counts added back after an outage (the 'local' policy) follow the same rule.
    await store.add('day', june(2), 5, Date.UTC(2026, 5, 3) + DAY, T0);
    expect(await life()).toBeGreaterThan(monthEnd + 10 * DAY - 60_000);
    expect(await store.readDays([june(2)])).toEqual([5]);
    const fresh = request().subject;
    const freshDay = dayKey('redis-test/gold', fresh, '2026-06-30');
    await store.add('day', freshDay, 2, JUNE_END + DAY, T0);
    const freshLife = await c.pttl(dayHashOf(freshDay)?.key ?? '');
    expect(freshLife).toBeGreaterThan(JUNE_END + DAY - T0 - 60_000);
    expect(freshLife).toBeLessThanOrEqual(JUNE_END + DAY - T0);
  });

  it("writes every whole number of CONSUME's reply with its exact digits, whatever a C long holds", async () => {
    // The split path is the one a 32-bit build takes; here it runs for every value beyond 2^31.
    const values = [0, 1, -1, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 999_999_999, 1e9];
    values.push(1e12, 1_999_999_999_999, 2 ** 53 - 1, -(2 ** 53) + 1, 2 ** 53, 1e17, 1.8e19);
    // Just below and at multiples of 10^9, where dividing by 10^9 may round up.
    for (let k = 1; k < 9_000_000; k += 987_653) values.push(k * 1e9 - 1, k * 1e9);
    const random = fuzzRandom();
    for (let i = 0; i < 200; i++) values.push(Math.floor((random.next() - 0.5) * 2 ** 54));
    const script = `${WHOLE}
local out = {}
for i = 1, #ARGV do out[i] = whole(tonumber(ARGV[i])) end
return table.concat(out, ' ')`;
    const args = values.map((v) => BigInt(v).toString());
    const written = (await store.client.eval(script, 0, ...args)) as string;
    expect(written.split(' ')).toEqual(args);
  });

  it('refuses a decision with a figure that is not finite, alone, before it reaches Redis', async () => {
    const metrics = new EnforcerMetrics(false, false);
    const guarded = new RedisLossPolicy(store, { policy: 'local', now: () => T0, telemetry: metrics });
    const a = request();
    const b = request();
    // One turn: the two would share a CONSUME call; NaN would reach the script as JSON null.
    const [good, bad, badCost] = await Promise.allSettled([
      guarded.consume(a.r()),
      guarded.consume(b.r(Number.NaN)),
      guarded.consume({ ...b.r(), cost: Number.POSITIVE_INFINITY }),
    ]);
    expect(good).toMatchObject({ status: 'fulfilled', value: { allowed: true, quota: { used: 1 } } });
    expect(bad).toMatchObject({ status: 'rejected', reason: { name: 'CounterRequestError' } });
    expect(badCost).toMatchObject({ status: 'rejected', reason: { name: 'CounterRequestError' } });
    expect(guarded.available).toBe(true);
    expect(await store.readQuotas([b.quota])).toEqual([undefined]);
  });

  it('refuses a day key that names no day, as an error of the request and not an outage', async () => {
    const metrics = new EnforcerMetrics(false, false);
    const guarded = new RedisLossPolicy(store, { policy: 'local', now: () => T0, telemetry: metrics });
    const { r } = request();
    const bad = { ...r(), dayKey: 'ks:{redis-test/gold|key:x}:day:2026-02-30' };
    await expect(store.consume(bad)).rejects.toThrow(
      "ks:{redis-test/gold|key:x}:day:2026-02-30 is not a day counter's key",
    );
    await expect(guarded.consume(bad)).rejects.toThrow(CounterRequestError);
    expect(guarded.available).toBe(true);
    await expect(store.add('day', 'ks:{redis-test/gold|key:x}:day:June', 1, T0, T0)).rejects.toThrow(
      CounterRequestError,
    );
    // Read, a day that names no day was never counted.
    expect(await store.readDays(['ks:{redis-test/gold|key:x}:day:2026-02-30'])).toEqual([0]);
  });

  it('answers an error Redis itself returned (not an outage) with a rejection, and stays available', async () => {
    const metrics = new EnforcerMetrics(false, false);
    const guarded = new RedisLossPolicy(store, { policy: 'local', now: () => T0, telemetry: metrics });
    const { r, quota } = request();
    await store.client.set(quota, 'not a hash');
    await expect(guarded.consume(r())).rejects.toThrow(/WRONGTYPE/);
    expect(guarded.available).toBe(true);
    expect(await metric(metrics, METRIC_NAMES.storeErrors)).toContain(
      'keystile_store_errors_total{op="consume"} 1',
    );
  });
});

describe('the Redis store behind Sentinel', () => {
  let pair: Sentinelled;
  beforeAll(async () => {
    pair = await startSentinelled();
  }, 30_000);
  afterAll(async () => {
    await pair.stop();
  });

  it('finds the master through the sentinel and counts there', async () => {
    const store = await connected(
      new RedisStore({
        connection: {
          kind: 'sentinel',
          sentinels: [{ host: '127.0.0.1', port: pair.sentinel.port }],
          name: 'keystile',
        },
      }),
    );
    try {
      const { r, quota } = request(2);
      expect((await store.consume(r())).allowed).toBe(true);
      expect((await store.consume(r())).allowed).toBe(true);
      expect(await store.consume(r())).toMatchObject({ allowed: false, deniedBy: 'quota' });
      const direct = await connected(
        new RedisStore({ connection: { kind: 'standalone', url: pair.master.url } }),
      );
      try {
        expect(await direct.client.hget(quota, 'used')).toBe('2');
      } finally {
        await direct.close();
      }
    } finally {
      await store.close();
    }
  });
});

describe('losing Redis: --redis-unavailable', () => {
  /** A Redis with an append-only file (so a restart keeps its counts), a store on it, and its policy. */
  async function setup(policy: LossPolicy): Promise<{
    server: RedisServer;
    guarded: RedisLossPolicy;
    metrics: EnforcerMetrics;
    cleanup: () => Promise<void>;
  }> {
    const server = await RedisServer.start({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    const metrics = new EnforcerMetrics(false, false);
    const redis = await connected(new RedisStore({ connection: { kind: 'standalone', url: server.url } }));
    const guarded = new RedisLossPolicy(redis, {
      policy,
      now: () => T0,
      probeIntervalMs: 50,
      telemetry: metrics,
      logger: silentLogger,
    });
    return {
      server,
      guarded,
      metrics,
      cleanup: async () => {
        await guarded.close();
        await server.stop();
      },
    };
  }

  const waitDown = (g: RedisLossPolicy): Promise<void> =>
    waitFor('the store to notice Redis is gone', () => !g.available, 10_000, 10);
  const waitUp = (g: RedisLossPolicy): Promise<void> =>
    waitFor('the store to notice Redis is back', () => g.available, 20_000, 20);

  it('closed: rejects while Redis is gone, so the decision is 503; counts again when it returns', async () => {
    const { server, guarded, metrics, cleanup } = await setup('closed');
    try {
      const { r, quota } = request();
      await guarded.consume(r());
      await server.stop('SIGKILL');
      await expect(guarded.consume(r())).rejects.toThrow();
      await waitDown(guarded);
      await expect(guarded.consume(r())).rejects.toThrow(StoreUnavailableError);
      await expect(guarded.readQuotas([quota])).rejects.toThrow(StoreUnavailableError);
      await expect(
        guarded.adjust({ quotaKey: quota, id: 'a', amount: 1, periodEnd: JUNE_END, now: T0 }),
      ).rejects.toThrow();

      // Through the decision: 503, fail closed.
      const key = generateKey('redislosskey');
      const catalog = await catalogOf(
        stageDocuments(
          { namespace: 'shop', api: 'orders', stage: 'prod' },
          [plan('shop', 'gold', { quota: { limit: 5, period: 'MONTH', timeZone: 'UTC' } })],
          [{ id: key.keyId, plan: 'gold', values: [{ value: key.value }] }],
        ),
      );
      const options = {
        keySources: [{ kind: 'header', name: 'x-api-key' }] as const,
        keyPairs: false,
        signature: {},
        problemJson: false,
        failOpen: false,
        stripKey: true,
      };
      const check = {
        stage: 'shop/orders/prod',
        method: 'GET',
        path: '/v1/orders',
        header: (n: string) => (n === 'x-api-key' ? key.value : undefined),
      };
      const d = await decide(catalog, check, guarded, manualClock(T0), decideContext(options));
      expect(d).toMatchObject({ allowed: false, status: 503, reason: 'InternalError' });

      expect(await metric(metrics, METRIC_NAMES.storeAvailable)).toContain('keystile_store_available 0');
      // closed decides nothing in Redis's place: no fallback decision (KeystileStoreFallback stays
      // quiet); the checks are counted as unavailable decisions.
      const fallback = await metric(metrics, METRIC_NAMES.storeFallbackDecisions);
      expect(fallback).toContain('keystile_store_fallback_decisions_total{policy="open"} 0');
      expect(fallback).toContain('keystile_store_fallback_decisions_total{policy="local"} 0');
      expect(fallback).not.toContain('policy="closed"');
      await server.restart();
      await waitUp(guarded);
      expect(await guarded.consume(r())).toMatchObject({ allowed: true, quota: { used: 2 } });
      expect(await guarded.readQuotas([quota])).toEqual([{ used: 2, granted: 0 }]);
      expect(await metric(metrics, METRIC_NAMES.storeAvailable)).toContain('keystile_store_available 1');
    } finally {
      await cleanup();
    }
  }, 60_000);

  it('closed: a hung Redis (SIGSTOP) fails the request after --redis-timeout, and it recovers once thawed', async () => {
    const { server, guarded, metrics, cleanup } = await setup('closed');
    try {
      const { r } = request();
      await guarded.consume(r());
      server.pause();
      await expect(guarded.consume(r())).rejects.toThrow(/timed out/i);
      expect(guarded.available).toBe(false);
      await expect(guarded.consume(r())).rejects.toThrow(StoreUnavailableError);
      server.resume();
      await waitUp(guarded);
      expect(await guarded.consume(r())).toMatchObject({ allowed: true });
      expect(await metric(metrics, METRIC_NAMES.storeErrors)).toContain(
        'keystile_store_errors_total{op="consume"} 1',
      );
    } finally {
      server.resume();
      await cleanup();
    }
  }, 60_000);

  it('open: allows while Redis is gone and counts nowhere', async () => {
    const { server, guarded, metrics, cleanup } = await setup('open');
    try {
      const { r, quota } = request(3);
      await guarded.consume(r());
      await server.stop('SIGKILL');
      await Promise.resolve(guarded.consume(r())).catch(() => undefined);
      await waitDown(guarded);
      for (let i = 0; i < 5; i++) {
        expect(await guarded.consume(r())).toEqual({
          allowed: true,
          deniedBy: undefined,
          bucket: undefined,
          quota: undefined,
        });
      }
      expect(await metric(metrics, METRIC_NAMES.storeFallbackDecisions)).toMatch(
        /keystile_store_fallback_decisions_total\{policy="open"\} [5-6]/,
      );
      await server.restart();
      await waitUp(guarded);
      expect(await guarded.readQuotas([quota])).toEqual([{ used: 1, granted: 0 }]);
    } finally {
      await cleanup();
    }
  }, 60_000);

  it('local: counts here while Redis is gone, then adds those counts to Redis and decides there again', async () => {
    const { server, guarded, cleanup } = await setup('local');
    try {
      const { r, quota, day, days, bucket } = request(10);
      for (let i = 0; i < 3; i++) expect((await guarded.consume(r())).allowed).toBe(true);
      await server.stop('SIGKILL');
      // A request in flight when Redis went may fail before the loss is noticed: it is counted locally.
      await guarded.consume(r());
      await waitDown(guarded);
      const local = [];
      for (let i = 0; i < 4; i++) local.push(await guarded.consume(r()));
      // The local count starts from zero: this enforcer alone is not the whole quota.
      expect(local.map((x) => x.quota?.used)).toEqual([2, 3, 4, 5]);
      expect(guarded.pendingCounts).toBe(2); // one quota counter, one day counter
      await server.restart();
      await waitUp(guarded);
      await guarded.reconciled();
      expect(guarded.pendingCounts).toBe(0);
      // 3 counted in Redis + 5 counted here = 8; the bucket was dropped, the day counted too.
      expect(await guarded.readQuotas([quota])).toEqual([{ used: 8, granted: 0 }]);
      expect(await guarded.readDays([day])).toEqual([8]);
      const redis = await connected(new RedisStore({ connection: { kind: 'standalone', url: server.url } }));
      try {
        expect(await redis.client.pttl(quota)).toBeGreaterThan(0);
        expect(await redis.client.hget(days, '10')).toBe('8');
        expect(await redis.client.pttl(days)).toBeGreaterThan(0);
        expect(await redis.client.get(bucket)).toBe(`97 ${T0}`);
      } finally {
        await redis.close();
      }
      // Back on Redis: 2 more allowed, then the quota of 10 holds.
      const after = [];
      for (let i = 0; i < 3; i++) after.push(await guarded.consume(r()));
      expect(after.map((x) => x.allowed)).toEqual([true, true, false]);
    } finally {
      await cleanup();
    }
  }, 60_000);
});

describe('the Redis store behind Sentinels that require a password, before a master that does too', () => {
  const masterPassword = 'master-pw';
  const sentinelPassword = 'sentinel-pw';
  let pair: Sentinelled;
  beforeAll(async () => {
    pair = await startSentinelled({ masterPassword, sentinelPassword });
  }, 30_000);
  afterAll(async () => {
    await pair.stop();
  });

  const connection = (): RedisConnection => ({
    kind: 'sentinel',
    sentinels: [{ host: '127.0.0.1', port: pair.sentinel.port }],
    name: 'keystile',
  });

  it('asks the sentinels with their password and counts on the master with its own', async () => {
    const store = await connected(
      new RedisStore({ connection: connection(), password: masterPassword, sentinelPassword }),
    );
    try {
      const { r } = request(1);
      expect((await store.consume(r())).allowed).toBe(true);
      expect(await store.consume(r())).toMatchObject({ allowed: false, deniedBy: 'quota' });
    } finally {
      await store.close();
    }
  });

  it("never gets ready without the sentinels' password (the sentinels refuse it)", async () => {
    const store = new RedisStore({ connection: connection(), password: masterPassword });
    try {
      expect(await store.waitReady(1500)).toBe(false);
    } finally {
      await store.close();
    }
  });
});
