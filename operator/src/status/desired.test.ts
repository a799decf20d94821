import { describe, expect, it } from 'vitest';
import type { ApiKey } from '../../../crds/src/index.ts';
import { keyStatus } from './desired.ts';

const now = new Date('2026-11-23T12:00:00Z');
const key = (spec: ApiKey['spec'] = {}, status?: ApiKey['status']): ApiKey => ({
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'ApiKey',
  metadata: { name: 'acme', namespace: 'shop', generation: 3 },
  spec,
  ...(status && { status }),
});
const data = { keyId: 'cbarucba7hks', value: 'ks_secret_value_never_in_status' };

describe('keyStatus', () => {
  it('reports a usable key Ready with where it works, and never its value', () => {
    const s = keyStatus(
      key(),
      { secretName: 'keystile-key-acme', data },
      { placements: ['gold:orders/prod'] },
      now,
    );
    expect(s).toMatchObject({
      observedGeneration: 3,
      keyId: 'cbarucba7hks',
      secretName: 'keystile-key-acme',
      plans: ['gold:orders/prod'],
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'KeyReady',
          message: 'the key works on gold:orders/prod',
          observedGeneration: 3,
        },
      ],
    });
    expect(JSON.stringify(s)).not.toContain(data.value);
  });

  it.each([
    ['disabled', key({ enabled: false }), 'Disabled'],
    ['expired', key({ expiresAt: '2026-11-01T00:00:00Z' }), 'Expired'],
  ])('reports a %s key not Ready', (_, k, reason) => {
    const s = keyStatus(k, { secretName: 'x', data }, { placements: [] }, now);
    expect(s.conditions?.[0]).toMatchObject({ status: 'False', reason });
  });

  it('prefers the problem with its Secret, and says the value is coming when there is none yet', () => {
    const problem = { reason: 'SecretNotFound', message: 'Secret legacy does not exist in namespace shop' };
    expect(keyStatus(key(), { secretName: 'x', problem }, undefined, now).conditions?.[0]).toMatchObject({
      status: 'False',
      ...problem,
    });
    expect(keyStatus(key(), { secretName: 'x' }, undefined, now).conditions?.[0]).toMatchObject({
      reason: 'KeyNotReady',
    });
  });

  it('shows a rotated-out value until its grace ends, and keeps usage written by others', () => {
    const rotated = { ...data, 'previous-valid-until': '2026-11-23T13:00:00Z', 'rotation-sequence': '2' };
    const usage = [{ plan: 'gold', period: '2026-11-01', used: 5, updatedAt: '2026-11-23T11:59:00Z' }];
    const s = keyStatus(key({}, { usage }), { secretName: 'x', data: rotated }, undefined, now);
    expect(s.rotation).toEqual({ sequence: 2, previousValidUntil: '2026-11-23T13:00:00Z' });
    expect(s.usage).toEqual(usage);
    expect(
      keyStatus(key(), { secretName: 'x', data: rotated }, undefined, new Date('2026-11-23T14:00:00Z'))
        .rotation,
    ).toEqual({ sequence: 2 });
  });

  it('reports no rotation sequence for an imported key, whatever its spec says (it is never rotated by one)', () => {
    const imported = { keyId: 'cbarucba7hks', sha256: 'a'.repeat(64) };
    // Admitted before the CRD refused a sequence on an imported key.
    const k = key({ valueFrom: 'Secret', secretRef: { name: 'legacy' }, rotation: { sequence: 4 } });
    expect(keyStatus(k, { secretName: 'x', data: imported }, undefined, now).rotation).toEqual({
      sequence: 0,
    });
  });

  it('reports a grace end past year 9999 (an older operator wrote it) as the last instant the API server takes', () => {
    const far = { ...data, 'previous-valid-until': '+010012-01-01T00:00:00.000Z', 'rotation-sequence': '1' };
    expect(keyStatus(key(), { secretName: 'x', data: far }, undefined, now).rotation).toEqual({
      sequence: 1,
      previousValidUntil: '9999-12-31T23:59:59Z',
    });
  });

  it('holds observedGeneration while a raised rotation sequence has no value yet, and moves it once it has', () => {
    const made = { ...data, 'rotation-sequence': '0' };
    // Generation 3 raised the sequence to 1; the status last observed generation 2.
    const raised = key({ rotation: { sequence: 1 } }, { observedGeneration: 2 });
    const before = keyStatus(raised, { secretName: 'x', data: made }, undefined, now);
    expect(before.observedGeneration).toBe(2);
    expect(before.conditions?.[0]?.observedGeneration).toBe(2);
    const after = keyStatus(
      raised,
      { secretName: 'x', data: { ...made, 'rotation-sequence': '1' } },
      undefined,
      now,
    );
    expect(after.observedGeneration).toBe(3);
    // An imported key has no sequence to wait for.
    const imported = key({ valueFrom: 'Secret', secretRef: { name: 'legacy' }, rotation: { sequence: 1 } });
    expect(keyStatus(imported, { secretName: 'x', data: made }, undefined, now).observedGeneration).toBe(3);
  });
});
