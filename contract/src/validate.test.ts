import { describe, expect, it } from 'vitest';
import { CONTRACT_VERSION } from './format.ts';
import { parseSecretsShard } from './validate.ts';

const shard = (secretId: string): string =>
  JSON.stringify({
    version: CONTRACT_VERSION,
    apiStage: { namespace: 'shop', api: 'orders', stage: 'prod' },
    shard: 0,
    credentials: [{ id: 'abcdefghijkl', type: 'KeyPair', secretId, secretKeys: [{ value: 'k'.repeat(40) }] }],
  });

describe('a secrets shard', () => {
  it('holds a KeyPair whose SecretId a client can send', () => {
    expect(parseSecretsShard(shard('AKIDabc123'))).toMatchObject({ ok: true });
  });

  it.each([['AKID"x'], ['AKID x'], ['AKID\\x'], [''], ['x'.repeat(129)]])(
    'refuses the SecretId %j, which no Authorization header can carry',
    (secretId) => {
      const parsed = parseSecretsShard(shard(secretId));
      expect(parsed.ok ? '' : parsed.error).toMatch(
        /^secrets.json is invalid at \/credentials\/0\/secretId: must match pattern/,
      );
      expect(parseSecretsShard(shard('AKIDfine'))).toMatchObject({ ok: true });
    },
  );
});
