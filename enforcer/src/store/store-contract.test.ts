// One contract, every store (STYLE habit 4): the scenarios of store-contract.ts against the memory store,
// a real Redis (Debian's redis-server, started here on a free port) and a real Redis Cluster of three
// masters. The Redis stores are reached through three connections each, as three replicas would.
import { randomBytes } from 'node:crypto';
import { dayHashOf } from '../../../contract/src/identity.ts';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { RedisCluster } from '../../../test/ground/redis-cluster.ts';
import { RedisServer } from '../../../test/ground/redis.ts';
import { MemoryStore } from './memory-store.ts';
import { type RedisConnection, RedisStore } from './redis-store.ts';
import { type ContractStore, STORE_SCENARIOS } from './store-contract.ts';

/** How a store under test is made and put away. */
interface StoreKind {
  readonly name: string;
  open(): Promise<ContractStore>;
  close(): Promise<void>;
}

/** The memory store; a key's lifetime is read from what it stores (it forgets at that time). */
function memoryKind(): StoreKind {
  const store = new MemoryStore();
  return {
    name: 'memory',
    open: () =>
      Promise.resolve({
        store,
        peers: [store, store, store],
        lifetime: (key, now) => Promise.resolve(memoryLifetime(store, key, now)),
      }),
    close: () => Promise.resolve(),
  };
}

/** When the memory store forgets `key`, less `now`. */
function memoryLifetime(store: MemoryStore, key: string, now: number): number | undefined {
  for (const [k, b] of store.buckets()) if (k === key) return b.fullAt - now;
  for (const [k, d] of store.days()) if (k === key) return d.expiresAt - now;
  for (const [k, q] of store.quotas()) {
    if (k === key) return q.periodEnd - now;
    // Markers and alerts are kept in the counter's record, and go with it.
    const marker = key.startsWith(`${k}:adj:`) && q.adjustments.includes(key.slice(k.length + 5));
    const alerts = key === `${k}:alerts` && q.alerts.length > 0;
    if (marker || alerts) return q.periodEnd - now;
  }
  return undefined;
}

/**
 * Redis through `connect()`: three stores on three connections; a key's lifetime is its PTTL (a day
 * key's, its month hash's: `dayHashOf`).
 */
function redisKind(
  name: string,
  connect: () => Promise<{ connection: RedisConnection; stop: () => Promise<void> }>,
): StoreKind {
  let stores: RedisStore[] = [];
  let stop: (() => Promise<void>) | undefined;
  return {
    name,
    open: async () => {
      const server = await connect();
      stop = () => server.stop();
      stores = [0, 1, 2].map(() => new RedisStore({ connection: server.connection, commandTimeoutMs: 2000 }));
      const ready = await Promise.all(stores.map((s) => s.waitReady(10_000)));
      if (!ready.every(Boolean)) throw new Error(`${name}: the stores did not connect`);
      const [store] = stores as [RedisStore];
      return {
        store,
        peers: stores,
        lifetime: async (key) => {
          const ms = await store.client.pttl(dayHashOf(key)?.key ?? key);
          return ms >= 0 ? ms : undefined;
        },
      };
    },
    close: async () => {
      await Promise.all(stores.map((s) => s.close()));
      await stop?.();
    },
  };
}

const KINDS: readonly StoreKind[] = [
  memoryKind(),
  redisKind('Redis', async () => {
    const server = await RedisServer.start();
    return { connection: { kind: 'standalone', url: server.url }, stop: () => server.stop() };
  }),
  redisKind('Redis Cluster', async () => {
    const cluster = await RedisCluster.start(3);
    return { connection: { kind: 'cluster', nodes: cluster.seeds }, stop: () => cluster.stop() };
  }),
];

describe.each(KINDS)('the counter store contract: $name', (kind) => {
  let t: ContractStore;
  const run = randomBytes(3).toString('hex');
  beforeAll(async () => {
    t = await kind.open();
  }, 60_000);
  afterAll(async () => {
    await kind.close();
  });
  STORE_SCENARIOS.forEach((scenario, i) => {
    it(scenario.name, async () => {
      await scenario.run(t, `contract-${run}/plan-${i}`);
    });
  });
});
