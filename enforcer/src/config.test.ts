import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigUsageError, loadConfig, SETTINGS } from './config.ts';

describe('the enforcer config', () => {
  it('has a default for everything, loopback check ports, and fails closed', () => {
    const c = loadConfig([], {});
    expect(c).toMatchObject({
      source: { kind: 'none' },
      checkHost: '127.0.0.1',
      httpPort: 9191,
      grpcPort: 9192,
      adminPort: 9190,
      keySources: [{ kind: 'header', name: 'x-api-key' }],
      keyPairs: true,
      signatureMaxSkewMs: 900_000,
      failOpen: false,
      stripKey: true,
      countersFile: undefined,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads flags before variables', () => {
    const c = loadConfig(
      ['--config', 'a.json', '--http-port=0', '--grpc-port', 'off', '--strip-key', 'false', '--fail-open'],
      {
        KEYSTILE_CONFIG: 'b.json',
        KEYSTILE_HTTP_PORT: '1',
        KEYSTILE_KEY_SOURCE: 'bearer, header:X-Key ,query:api_key',
        KEYSTILE_SIGNATURE_MAX_SKEW: '60',
      },
    );
    expect(c).toMatchObject({
      source: { kind: 'file', path: 'a.json' },
      httpPort: 0,
      grpcPort: undefined,
      failOpen: true,
      stripKey: false,
      signatureMaxSkewMs: 60_000,
      keySources: [{ kind: 'bearer' }, { kind: 'header', name: 'x-key' }, { kind: 'query', name: 'api_key' }],
    });
  });

  it('parses watch mode', () => {
    expect(
      loadConfig(['--watch-namespace', 'shop', '--stages', 'orders/prod,orders/beta'], {}).source,
    ).toEqual({
      kind: 'kube',
      namespace: 'shop',
      stages: [
        { api: 'orders', stage: 'prod' },
        { api: 'orders', stage: 'beta' },
      ],
    });
  });

  it.each([
    [['--config', 'a', '--config-dir', 'b'], /one config source/],
    [['--watch-namespace', 'shop'], /needs --stages/],
    [['--watch-namespace', 'shop', '--stages', 'Orders/prod'], /not api\/stage/],
    [['--http-port', '70000'], /--http-port must be a number from 0 to 65535/],
    [['--fail-open=maybe'], /--fail-open must be true or false/],
    [['--key-source', 'cookie:x'], /not header:<name>, bearer or query:<name>/],
    [['--log-level', 'loud'], /--log-level/],
    [['--unknown'], /Unknown option/],
  ])('refuses %j, naming the setting', (argv, message) => {
    expect(() => loadConfig(argv, {})).toThrow(ConfigUsageError);
    expect(() => loadConfig(argv, {})).toThrow(message);
  });

  it('names a bad variable by its name', () => {
    expect(() => loadConfig([], { KEYSTILE_ADMIN_PORT: 'x' })).toThrow(/KEYSTILE_ADMIN_PORT must be/);
  });

  it('is documented: docs/enforcer.md lists every flag and variable with its default', () => {
    const doc = readFileSync(join(import.meta.dirname, '../../docs/enforcer.md'), 'utf8');
    for (const s of SETTINGS) {
      expect(doc, s.env).toContain(`\`--${s.flag}\``);
      expect(doc, s.env).toContain(`\`${s.env}\``);
    }
  });
});

describe('the counter store settings', () => {
  it('defaults to the memory store, closed on losing Redis, 250 ms, 90 days of daily usage', () => {
    expect(loadConfig([], {})).toMatchObject({
      store: 'memory',
      redis: undefined,
      redisUnavailable: 'closed',
      redisTimeoutMs: 250,
      usageRetentionDays: 90,
    });
  });

  it('reads a standalone Redis, a Cluster and Sentinel', () => {
    expect(
      loadConfig(['--store', 'redis', '--redis-unavailable', 'local', '--redis-timeout', '0.1'], {
        KEYSTILE_REDIS_URL: 'redis://:secret@10.0.0.1:6379/2',
      }),
    ).toMatchObject({
      store: 'redis',
      redis: { kind: 'standalone', url: 'redis://:secret@10.0.0.1:6379/2' },
      redisUnavailable: 'local',
      redisTimeoutMs: 100,
    });
    expect(
      loadConfig(['--store=redis', '--redis-cluster-nodes', 'a:7000, b:7001,[::1]:7002'], {
        KEYSTILE_REDIS_PASSWORD: 'pw',
      }),
    ).toMatchObject({
      redis: {
        kind: 'cluster',
        nodes: [
          { host: 'a', port: 7000 },
          { host: 'b', port: 7001 },
          { host: '::1', port: 7002 },
        ],
      },
      redisPassword: 'pw',
    });
    expect(
      loadConfig(
        ['--store=redis', '--redis-sentinels', 's1:26379,s2:26379', '--redis-sentinel-name', 'main'],
        { KEYSTILE_REDIS_PASSWORD: 'master-pw', KEYSTILE_REDIS_SENTINEL_PASSWORD: 'sentinel-pw' },
      ),
    ).toMatchObject({
      redisPassword: 'master-pw',
      redisSentinelPassword: 'sentinel-pw',
      redis: {
        kind: 'sentinel',
        name: 'main',
        sentinels: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26379 },
        ],
      },
    });
  });

  it.each([
    [['--store', 'etcd'], /--store must be memory or redis/],
    [['--store', 'redis'], /--store redis needs --redis-url/],
    [['--redis-url', 'redis://x:1'], /--redis-url applies only with --store redis/],
    [['--store', 'redis', '--redis-url', 'x:1'], /--redis-url must be redis:/],
    [['--store', 'redis', '--redis-url', 'redis://a:1', '--redis-cluster-nodes', 'b:2'], /give one Redis/],
    [['--store', 'redis', '--redis-cluster-nodes', 'a'], /'a' is not host:port/],
    [['--store', 'redis', '--redis-cluster-nodes', 'a:0'], /'a:0' is not host:port/],
    [['--store', 'redis', '--redis-sentinels', 'a:1'], /needs --redis-sentinel-name/],
    [
      ['--store', 'redis', '--redis-url', 'redis://a:1', '--redis-sentinel-name', 'm'],
      /only with --redis-sentinels/,
    ],
    [
      ['--store', 'redis', '--redis-url', 'redis://a:1', '--redis-sentinel-password', 'pw'],
      /--redis-sentinel-password applies only with --redis-sentinels/,
    ],
    [
      ['--store', 'redis', '--redis-url', 'redis://a:1', '--redis-unavailable', 'maybe'],
      /closed, open, local/,
    ],
    [['--store', 'redis', '--redis-url', 'redis://a:1', '--redis-timeout', '0'], /--redis-timeout must be/],
    [['--usage-retention-days', '1.5'], /whole number/],
    [['--usage-retention-days', '0'], /--usage-retention-days must be a number from 1/],
  ])('refuses %j, naming the setting', (argv, message) => {
    expect(() => loadConfig(argv, {})).toThrow(ConfigUsageError);
    expect(() => loadConfig(argv, {})).toThrow(message);
  });

  it('ignores a Redis URL from the environment with the memory store (a shell of the local system exports one)', () => {
    const config = loadConfig([], { KEYSTILE_REDIS_URL: 'redis://127.0.0.1:17637' });
    expect(config.store).toBe('memory');
    expect(config.redis).toBeUndefined();
  });

  it('never repeats a Redis URL (it may carry a password) in an error', () => {
    expect(() => loadConfig(['--store', 'redis', '--redis-url', 'http://:hunter2@host'], {})).toThrow(
      /^(?!.*hunter2)/s,
    );
  });
});
