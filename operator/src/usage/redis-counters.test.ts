// The operator's usage reader on a real Redis behind a real Sentinel, both requiring a password.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sentinelled, startSentinelled } from '../../../test/ground/redis.ts';
import { waitFor } from '../../../test/ground/wait.ts';
import type { RedisTarget } from '../config.ts';
import { connectRedis } from './redis-counters.ts';

describe('connectRedis behind Sentinels that require a password', () => {
  const password = 'master-pw';
  const sentinelPassword = 'sentinel-pw';
  let pair: Sentinelled;
  beforeAll(async () => {
    pair = await startSentinelled({ masterPassword: password, sentinelPassword });
    const direct = new Redis({ port: pair.master.port, password, maxRetriesPerRequest: 1 });
    await direct.hset('{q}:gold', 'used', '7', 'granted', '2');
    direct.disconnect();
  }, 30_000);
  afterAll(async () => {
    await pair.stop();
  });

  const target = (extra: Partial<RedisTarget>): RedisTarget =>
    ({
      kind: 'sentinel',
      sentinels: [{ host: '127.0.0.1', port: pair.sentinel.port }],
      name: 'keystile',
      password,
      ...extra,
    }) as RedisTarget;

  it("reads the master's counters with both passwords", async () => {
    const counters = connectRedis(target({ sentinelPassword }), 1000);
    try {
      let read = new Map<string, unknown>();
      await waitFor('the quota read through the sentinel', async () => {
        read = await counters.readQuotas(['{q}:gold', '{q}:never']);
        return true;
      });
      expect(read).toEqual(new Map([['{q}:gold', { used: 7, granted: 2 }]]));
    } finally {
      await counters.close();
    }
  });

  it("fails to read without the sentinels' password, for as long as a reader with it takes to read", async () => {
    // Two readers connecting at once, differing only in the sentinels' password. The one without must
    // fail for as long again as the one with it took to read (waited for as the case above waits): not
    // merely while it is still connecting; and its failure says why (the sentinels' refusal).
    const without = connectRedis(target({}), 1000);
    const control = connectRedis(target({ sentinelPassword }), 1000);
    try {
      const started = Date.now();
      await waitFor('the quota read through the sentinel with its password', async () => {
        await control.readQuotas(['{q}:gold']);
        return true;
      });
      const end = Date.now() + Math.max(Date.now() - started, 500);
      do {
        await expect(without.readQuotas(['{q}:gold'])).rejects.toThrow(/NOAUTH|WRONGPASS|auth/i);
        await new Promise((resolve) => setTimeout(resolve, 50));
      } while (Date.now() < end);
    } finally {
      await without.close();
      await control.close();
    }
  });
});
