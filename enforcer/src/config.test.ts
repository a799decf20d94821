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
