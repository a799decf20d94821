import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('has the documented defaults: usage every 15 s, 20 status writes a second, memory counters', () => {
    const c = loadConfig({});
    expect(c.usage).toEqual({
      intervalMs: 15_000,
      endpoints: [],
      redis: undefined,
      counterStore: 'memory',
      writesPerSecond: 20,
      metricsPerKey: true,
      timeoutMs: 5000,
    });
    expect(c.workers).toBe(32);
    expect(c.lease.name).toBe('keystile-operator');
  });

  it('takes flags over variables', () => {
    const c = loadConfig({ KEYSTILE_USAGE_INTERVAL: '30', KEYSTILE_WORKERS: '4' }, [
      '--usage-interval',
      '5',
      '--usage-endpoints=http://10.0.0.1:9190,dns+http://enforcers.shop.svc:9190',
    ]);
    expect(c.usage.intervalMs).toBe(5000);
    expect(c.usage.endpoints).toEqual(['http://10.0.0.1:9190', 'dns+http://enforcers.shop.svc:9190']);
    expect(c.workers).toBe(4);
  });

  it('reads the Redis the enforcers count in, and then assumes the Redis store', () => {
    expect(loadConfig({}, ['--usage-redis-url', 'redis://127.0.0.1:6379']).usage).toMatchObject({
      redis: { kind: 'url', url: 'redis://127.0.0.1:6379' },
      counterStore: 'redis',
    });
    expect(
      loadConfig({ KEYSTILE_USAGE_REDIS_PASSWORD: 'pw' }, ['--usage-redis-cluster-nodes', 'a:7000,b:7001'])
        .usage.redis,
    ).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
      ],
      password: 'pw',
    });
    expect(
      loadConfig({}, ['--usage-redis-sentinels', 's:26379', '--usage-redis-sentinel-name', 'main']).usage
        .redis,
    ).toEqual({ kind: 'sentinel', sentinels: [{ host: 's', port: 26379 }], name: 'main' });
    expect(
      loadConfig(
        { KEYSTILE_USAGE_REDIS_PASSWORD: 'master-pw', KEYSTILE_USAGE_REDIS_SENTINEL_PASSWORD: 'sentinel-pw' },
        ['--usage-redis-sentinels', 's:26379', '--usage-redis-sentinel-name', 'main'],
      ).usage.redis,
    ).toEqual({
      kind: 'sentinel',
      sentinels: [{ host: 's', port: 26379 }],
      name: 'main',
      password: 'master-pw',
      sentinelPassword: 'sentinel-pw',
    });
  });

  it.each([
    [['--usage-interval', '0'], /--usage-interval must be a number from 1/],
    [['--usage-endpoints', 'ftp://x'], /--usage-endpoints: 'ftp:\/\/x' must be/],
    [['--usage-endpoints', 'dns+http://name'], /needs a port/],
    [['--usage-redis-url', 'http://x'], /--usage-redis-url must be redis:\/\//],
    [['--usage-redis-url', 'redis://a:1', '--usage-redis-cluster-nodes', 'b:2'], /give one Redis/],
    [['--usage-redis-sentinels', 's:1'], /needs --usage-redis-sentinel-name/],
    [
      ['--usage-redis-url', 'redis://a:1', '--usage-redis-sentinel-password', 'pw'],
      /--usage-redis-sentinel-password applies only with --usage-redis-sentinels/,
    ],
    [['--counter-store', 'disk'], /--counter-store must be memory or redis/],
    [['--usage-writes-per-second', 'lots'], /--usage-writes-per-second must be a number/],
    [['--no-such-flag'], /Unknown option/],
  ])('refuses %j with a message naming the setting', (argv, message) => {
    expect(() => loadConfig({}, argv)).toThrow(ConfigError);
    expect(() => loadConfig({}, argv)).toThrow(message);
  });

  it('names the variable when a variable is wrong', () => {
    expect(() => loadConfig({ KEYSTILE_USAGE_METRICS_PER_KEY: 'maybe' })).toThrow(
      /KEYSTILE_USAGE_METRICS_PER_KEY must be true or false/,
    );
  });

  it('refuses a Lease renewed too seldom to keep it: the leader would stop leading at every renewal', () => {
    expect(() => loadConfig({}, ['--lease-duration-seconds', '15', '--lease-renew-seconds', '12'])).toThrow(
      ConfigError,
    );
    expect(() =>
      loadConfig({ KEYSTILE_LEASE_DURATION_SECONDS: '15', KEYSTILE_LEASE_RENEW_SECONDS: '15' }),
    ).toThrow(
      /KEYSTILE_LEASE_RENEW_SECONDS \(15\) must be under 0.8 x KEYSTILE_LEASE_DURATION_SECONDS \(15\)/,
    );
    // Just under 0.8 x 15 = 12 s, and any timing without leader election.
    expect(
      loadConfig({}, ['--lease-duration-seconds', '15', '--lease-renew-seconds', '11']).lease,
    ).toMatchObject({
      durationSeconds: 15,
      renewSeconds: 11,
    });
    expect(
      loadConfig({}, [
        '--leader-elect=false',
        '--lease-duration-seconds',
        '15',
        '--lease-renew-seconds',
        '15',
      ]).lease.renewSeconds,
    ).toBe(15);
  });
});
