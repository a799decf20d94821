import { describe, expect, it } from 'vitest';
import { hashKey, parseKey } from '../../../contract/src/key-format.ts';
import { parseSecretsShard } from '../../../contract/src/validate.ts';
import type { ApiKey } from '../../../crds/src/index.ts';
import { graceEnds, materialFromSecret } from './key-secret.ts';
import { planKeySecret } from './key-plan.ts';

const now = new Date('2026-11-23T12:00:00Z');
const apiKey = (spec: ApiKey['spec'] = {}): ApiKey => ({
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'ApiKey',
  metadata: { name: 'acme', namespace: 'shop' },
  spec,
});

describe('planKeySecret', () => {
  it('generates a value once, and keeps it after', () => {
    const first = planKeySecret({ key: apiKey(), existing: undefined, now });
    expect(first.kind).toBe('write');
    if (first.kind !== 'write') return;
    const parsed = parseKey(first.data.value ?? '');
    expect(parsed).toEqual({ kind: 'keystile', keyId: first.data.keyId });
    expect(planKeySecret({ key: apiKey(), existing: first.data, now })).toEqual({ kind: 'keep' });
  });

  it('makes a key Secret deleted by hand again with the key id of the status, and a new value', () => {
    const first = planKeySecret({ key: apiKey(), existing: undefined, now });
    if (first.kind !== 'write') throw new Error('expected a write');
    const keyId = first.data.keyId ?? '';
    const withStatus = (id: string): ApiKey => ({ ...apiKey(), status: { keyId: id } });
    const again = planKeySecret({ key: withStatus(keyId), existing: undefined, now });
    if (again.kind !== 'write') throw new Error('expected a write');
    expect(again.data.keyId).toBe(keyId);
    expect(again.data.value).not.toBe(first.data.value);
    expect(parseKey(again.data.value ?? '')).toEqual({ kind: 'keystile', keyId });
    // So does a KeyPair (a new pair, the same id), and an imported key.
    const pair = planKeySecret({
      key: { ...withStatus(keyId), spec: { type: 'KeyPair' } },
      existing: undefined,
      now,
    });
    expect(pair.kind === 'write' && pair.data.keyId).toBe(keyId);
    const imported = planKeySecret({
      key: { ...withStatus(keyId), spec: { valueFrom: 'Secret', secretRef: { name: 'src' } } },
      existing: undefined,
      imported: { value: 'imported-value-0123456789abcdef' },
      now,
    });
    expect(imported.kind === 'write' && imported.data.keyId).toBe(keyId);
    // A status key id that is not one (a hand-edited status) is not used.
    const odd = planKeySecret({ key: withStatus('NOT-AN-ID'), existing: undefined, now });
    expect(odd.kind === 'write' && odd.data.keyId).toMatch(/^[a-z2-7]{12}$/);
  });

  it('rotates when the sequence is raised: same key id, new value, old hash valid for the grace period', () => {
    const first = planKeySecret({ key: apiKey(), existing: undefined, now });
    if (first.kind !== 'write') throw new Error('expected a write');
    const rotated = planKeySecret({
      key: apiKey({ rotation: { sequence: 1, gracePeriod: '1h' } }),
      existing: first.data,
      now,
    });
    expect(rotated.kind).toBe('write');
    if (rotated.kind !== 'write') return;
    expect(rotated.data.keyId).toBe(first.data.keyId);
    expect(rotated.data.value).not.toBe(first.data.value);
    expect(rotated.data['previous-sha256']).toBe(hashKey(first.data.value ?? ''));
    expect(rotated.data['previous-valid-until']).toBe('2026-11-23T13:00:00Z');
    expect(rotated.rotated).toEqual({ previousValidUntil: '2026-11-23T13:00:00Z' });
    // Applied once: the same sequence again changes nothing.
    expect(
      planKeySecret({ key: apiKey({ rotation: { sequence: 1 } }), existing: rotated.data, now }),
    ).toEqual({ kind: 'keep' });
    // The renderer sees both hashes until the grace ends, then only the new one.
    expect(materialFromSecret('ApiKey', rotated.data, now)?.hashes).toHaveLength(2);
    expect(materialFromSecret('ApiKey', rotated.data, new Date('2026-11-23T13:00:01Z'))?.hashes).toHaveLength(
      1,
    );
  });

  it('keeps each replaced value until its own grace ends when rotations come within a grace period', () => {
    const first = planKeySecret({ key: apiKey(), existing: undefined, now });
    if (first.kind !== 'write') throw new Error('expected a write');
    const v1 = first.data.value ?? '';
    // Rotation 1 at noon with a 24 h grace: v1 until tomorrow noon.
    const r1 = planKeySecret({ key: apiKey({ rotation: { sequence: 1 } }), existing: first.data, now });
    if (r1.kind !== 'write') throw new Error('expected a write');
    const v2 = r1.data.value ?? '';
    // Rotation 2 an hour later with a 1 h grace: v2 until 14:00, and v1 still until tomorrow noon.
    const later = new Date('2026-11-23T13:00:00Z');
    const r2 = planKeySecret({
      key: apiKey({ rotation: { sequence: 2, gracePeriod: '1h' } }),
      existing: r1.data,
      now: later,
    });
    if (r2.kind !== 'write') throw new Error('expected a write');
    const v3 = r2.data.value ?? '';
    const hashes = (at: Date) =>
      materialFromSecret('ApiKey', r2.data, at)?.hashes?.map((h) => [h.sha256, h.validUntil]);
    expect(hashes(later)).toEqual([
      [hashKey(v3), undefined],
      [hashKey(v2), '2026-11-23T14:00:00.000Z'],
      [hashKey(v1), '2026-11-24T12:00:00.000Z'],
    ]);
    expect(hashes(new Date('2026-11-23T15:00:00Z'))).toEqual([
      [hashKey(v3), undefined],
      [hashKey(v1), '2026-11-24T12:00:00.000Z'],
    ]);
    expect(hashes(new Date('2026-11-24T12:00:01Z'))).toEqual([[hashKey(v3), undefined]]);
    expect(JSON.stringify(r2.data)).not.toContain(v1);
    // A rotation once every grace has ended carries nothing over.
    const r3 = planKeySecret({
      key: apiKey({ rotation: { sequence: 3 } }),
      existing: r2.data,
      now: new Date('2026-11-25T00:00:00Z'),
    });
    if (r3.kind !== 'write') throw new Error('expected a write');
    expect(r3.data['previous-earlier']).toBeUndefined();
    expect(graceEnds(r2.data)).toEqual([
      Date.parse('2026-11-23T14:00:00Z'),
      Date.parse('2026-11-24T12:00:00Z'),
    ]);

    // Rotations one after another within the grace: never more values than the contract's four.
    let data = first.data;
    for (let seq = 1; seq <= 6; seq++) {
      const r = planKeySecret({ key: apiKey({ rotation: { sequence: seq } }), existing: data, now });
      if (r.kind !== 'write') throw new Error('expected a write');
      data = r.data;
    }
    expect(materialFromSecret('ApiKey', data, now)?.hashes).toHaveLength(4);

    // A key pair's SecretKeys likewise.
    const pair = planKeySecret({ key: apiKey({ type: 'KeyPair' }), existing: undefined, now });
    if (pair.kind !== 'write') throw new Error('expected a write');
    const p1 = planKeySecret({
      key: apiKey({ type: 'KeyPair', rotation: { sequence: 1 } }),
      existing: pair.data,
      now,
    });
    if (p1.kind !== 'write') throw new Error('expected a write');
    const p2 = planKeySecret({
      key: apiKey({ type: 'KeyPair', rotation: { sequence: 2 } }),
      existing: p1.data,
      now: later,
    });
    if (p2.kind !== 'write') throw new Error('expected a write');
    expect(materialFromSecret('KeyPair', p2.data, later)?.secretKeys?.map((k) => k.value)).toEqual([
      p2.data.secretKey,
      p1.data.secretKey,
      pair.data.secretKey,
    ]);
  });

  it('rotates with a grace period longer than the CRD admits (an older CRD did) as with the longest it admits', () => {
    const first = planKeySecret({ key: apiKey(), existing: undefined, now });
    if (first.kind !== 'write') throw new Error('expected a write');
    // 9999999999h is past what Date can hold; 70000000h would end in year 10012, which the contract refuses.
    for (const gracePeriod of ['9999999999h', '70000000h', '8761h', '99999999999999999999999999h']) {
      const rotated = planKeySecret({
        key: apiKey({ rotation: { sequence: 1, gracePeriod } }),
        existing: first.data,
        now,
      });
      expect(rotated, gracePeriod).toMatchObject({
        kind: 'write',
        rotated: { previousValidUntil: '2027-11-23T12:00:00Z' },
      });
    }
  });

  it("renders a grace end past the contract's years (written by an older operator) as its last instant", () => {
    const data = {
      keyId: 'cbarucba7hks',
      sha256: hashKey('apikey1234abcdefghij0123456789'),
      'previous-sha256': hashKey('apikey1234abcdefghij0123456788'),
      'previous-valid-until': '+010012-01-01T00:00:00.000Z',
      'previous-earlier': JSON.stringify([
        { sha256: hashKey('apikey1234abcdefghij0123456787'), validUntil: '+275760-09-13T00:00:00.000Z' },
      ]),
    };
    const hashes = materialFromSecret('ApiKey', data, now)?.hashes ?? [];
    expect(hashes.map((h) => h.validUntil)).toEqual([
      undefined,
      '9999-12-31T23:59:59.999Z',
      '9999-12-31T23:59:59.999Z',
    ]);
    const shard = JSON.stringify({
      version: 'keystile.dev/contract/v1',
      apiStage: { namespace: 'shop', api: 'orders', stage: 'prod' },
      shard: 0,
      credentials: [{ id: data.keyId, type: 'ApiKey', hashes }],
    });
    expect(parseSecretsShard(shard)).toMatchObject({ ok: true });
  });

  it('generates Tencent-style key pairs and rotates the SecretKey, keeping the SecretId', () => {
    const key = apiKey({ type: 'KeyPair' });
    const first = planKeySecret({ key, existing: undefined, now });
    if (first.kind !== 'write') throw new Error('expected a write');
    expect(first.data.secretId).toMatch(/^AKID/);
    const rotated = planKeySecret({
      key: apiKey({ type: 'KeyPair', rotation: { sequence: 2 } }),
      existing: first.data,
      now,
    });
    if (rotated.kind !== 'write') throw new Error('expected a write');
    expect(rotated.data.secretId).toBe(first.data.secretId);
    expect(rotated.data.secretKey).not.toBe(first.data.secretKey);
    expect(rotated.data['previous-secret-key']).toBe(first.data.secretKey);
  });

  it('imports a value by its hash, and treats a changed Secret as a rotation', () => {
    const key = apiKey({ valueFrom: 'Secret', secretRef: { name: 'legacy' } });
    const value = 'apikey1234abcdefghij0123456789';
    const first = planKeySecret({ key, existing: undefined, imported: { value }, now });
    if (first.kind !== 'write') throw new Error('expected a write');
    expect(first.data).toEqual({ keyId: first.data.keyId, sha256: hashKey(value) });
    expect(JSON.stringify(first.data)).not.toContain(value);
    expect(planKeySecret({ key, existing: first.data, imported: { value }, now })).toEqual({ kind: 'keep' });
    const changed = planKeySecret({ key, existing: first.data, imported: { value: `${value}X` }, now });
    if (changed.kind !== 'write') throw new Error('expected a write');
    expect(changed.data['previous-sha256']).toBe(hashKey(value));
    expect(changed.data.keyId).toBe(first.data.keyId);
  });

  it('reports a missing Secret, a missing data key and a bad value', () => {
    const key = apiKey({ valueFrom: 'Secret', secretRef: { name: 'legacy', key: 'token' } });
    expect(planKeySecret({ key, existing: undefined, imported: 'missing', now })).toMatchObject({
      kind: 'problem',
      reason: 'SecretNotFound',
    });
    expect(planKeySecret({ key, existing: undefined, imported: { value: 'x' }, now })).toMatchObject({
      kind: 'problem',
      reason: 'SecretNotFound',
      message: 'Secret legacy has no data key token',
    });
    const bad = planKeySecret({ key, existing: undefined, imported: { token: 'short' }, now });
    expect(bad).toMatchObject({ kind: 'problem', reason: 'InvalidValue' });
    expect(JSON.stringify(bad)).not.toContain('"short"');
  });

  it("never imports from, nor withdraws into, a Secret named as the operator's (an ApiKey stored before the CRD refused it)", () => {
    const value = 'apikey1234abcdefghij0123456789';
    for (const name of ['keystile-key-acme', 'keystile-key-other']) {
      const key = apiKey({ valueFrom: 'Secret', secretRef: { name } });
      // The user's value, as read from that Secret, and a hash the key held before: neither is used.
      const held = { keyId: 'k1', sha256: hashKey(value) };
      expect(planKeySecret({ key, existing: held, imported: { value }, now })).toEqual({
        kind: 'problem',
        reason: 'SecretNameReserved',
        message: `secretRef.name ${name} is named as the Secrets the operator writes for ApiKeys (keystile-key-<name>): import the value from a Secret of another name`,
      });
    }
  });

  it('withdraws an imported value whose Secret is deleted or made bad: fixing it brings back no grace period', () => {
    const key = apiKey({ valueFrom: 'Secret', secretRef: { name: 'legacy' } });
    const leaked = 'apikey1234abcdefghij0123456789';
    const first = planKeySecret({ key, existing: undefined, imported: { value: leaked }, now });
    if (first.kind !== 'write') throw new Error('expected a write');
    const keyId = first.data.keyId;
    for (const imported of ['missing', { value: 'short' }] as const) {
      const gone = planKeySecret({ key, existing: first.data, imported, now });
      expect(gone).toMatchObject({ kind: 'problem', withdraw: { keyId } });
      if (gone.kind !== 'problem' || !gone.withdraw) throw new Error('expected a withdrawal');
      expect(materialFromSecret('ApiKey', gone.withdraw, now)).toBeUndefined();
      // Withdrawn once: nothing more to write while the problem lasts.
      expect(planKeySecret({ key, existing: gone.withdraw, imported, now })).not.toHaveProperty('withdraw');
      // A new value: the same key id, and the withdrawn value is not kept for a grace period.
      const fixed = planKeySecret({ key, existing: gone.withdraw, imported: { value: `${leaked}X` }, now });
      expect(fixed).toEqual({ kind: 'write', data: { keyId, sha256: hashKey(`${leaked}X`) } });
    }
    // An imported pair likewise.
    const pairKey = apiKey({ type: 'KeyPair', valueFrom: 'Secret', secretRef: { name: 'pair' } });
    const pair = planKeySecret({
      key: pairKey,
      existing: undefined,
      imported: { secretId: 'AKIDok', secretKey: 'k'.repeat(40) },
      now,
    });
    if (pair.kind !== 'write') throw new Error('expected a write');
    expect(planKeySecret({ key: pairKey, existing: pair.data, imported: 'missing', now })).toMatchObject({
      withdraw: { keyId: pair.data.keyId },
    });
  });

  it.each([
    ['with a double quote (it is sent quoted)', 'AKID"x'],
    ['with a space', 'AKID x'],
    ['over 128 characters', `AKID${'x'.repeat(125)}`],
  ])('reports an imported KeyPair whose SecretId is unusable: %s', (_what, secretId) => {
    const key = apiKey({ type: 'KeyPair', valueFrom: 'Secret', secretRef: { name: 'pair' } });
    const secretKey = 'k'.repeat(40);
    const bad = planKeySecret({ key, existing: undefined, imported: { secretId, secretKey }, now });
    expect(bad).toEqual({
      kind: 'problem',
      reason: 'InvalidValue',
      message:
        'Secret pair, data key secretId: the SecretId must be 1 to 128 visible ASCII characters other than " and \\',
    });
    expect(JSON.stringify(bad)).not.toContain(secretKey);
    // One that is fine is written.
    const good = planKeySecret({
      key,
      existing: undefined,
      imported: { secretId: 'AKIDok', secretKey },
      now,
    });
    expect(good.kind).toBe('write');
  });
});
