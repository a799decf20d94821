// The operator's usage reader on a real Redis behind a real Sentinel, both requiring a password.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '../../../test/ground/redis.ts';
import { waitFor } from '../../../test/ground/wait.ts';
import type { RedisTarget } from '../config.ts';
import { connectRedis } from './redis-counters.ts';

describe('connectRedis behind Sentinels that require a password', () => {
  const password = 'master-pw';
  const sentinelPassword = 'sentinel-pw';
  let master: RedisServer;
  let sentinel: RedisServer;
  beforeAll(async () => {
    master = await RedisServer.start({ args: ['--requirepass', password] });
    sentinel = await RedisServer.start({
      sentinel: [
        `requirepass ${sentinelPassword}`,
        `sentinel monitor keystile 127.0.0.1 ${master.port} 1`,
        `sentinel auth-pass keystile ${password}`,
        'sentinel down-after-milliseconds keystile 5000',
      ].join('\n'),
    });
    const direct = new Redis({ port: master.port, password, maxRetriesPerRequest: 1 });
    await direct.hset('{q}:gold', 'used', '7', 'granted', '2');
    direct.disconnect();
  }, 30_000);
  afterAll(async () => {
    await sentinel.stop();
    await master.stop();
  });

  const target = (extra: Partial<RedisTarget>): RedisTarget =>
    ({
      kind: 'sentinel',
      sentinels: [{ host: '127.0.0.1', port: sentinel.port }],
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

  it("fails to read without the sentinels' password", async () => {
    const counters = connectRedis(target({}), 1000);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await expect(counters.readQuotas(['{q}:gold'])).rejects.toThrow();
    } finally {
      await counters.close();
    }
  });
});
