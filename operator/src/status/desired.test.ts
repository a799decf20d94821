import { describe, expect, it } from 'vitest';
import type { ApiKey, PlanBinding, UsagePlan } from '../../../crds/src/index.ts';
import { Reason } from './reasons.ts';
import { bindingStatus, keyStatus, planStatus } from './desired.ts';

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

// Bindings are not limited in number, each names up to 64 stages: a key or plan can be on more stages
// than the status lists hold (256), and its messages grow with them. The API server refuses a status
// over a bound, so nothing of it would ever be written.
describe('statuses of keys and plans on very many stages', () => {
  const stages = Array.from(
    { length: 300 },
    // Names of 63 characters, the longest a DNS label has.
    (_, i) => `api-${String(i).padStart(3, '0')}${'a'.repeat(56)}/${'s'.repeat(63)}`,
  );
  const placements = stages.map((s) => `gold-plan-with-a-long-name${'e'.repeat(200)}:${s}`);

  it("list the first 256 stages and keep every condition message within the API server's 32768", () => {
    const ks = keyStatus(key(), { secretName: 'x', data }, { placements }, now);
    expect(ks.plans).toEqual(placements.slice(0, 256));
    const ready = ks.conditions?.[0];
    expect(ready).toMatchObject({ status: 'True', reason: 'KeyReady' });
    expect(ready?.message.length).toBeLessThanOrEqual(32768);
    expect(ready?.message).toMatch(/^the key works on gold-plan-with-a-long-name.*…$/);

    const plan: UsagePlan = {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'UsagePlan',
      metadata: { name: 'gold', namespace: 'shop', generation: 1 },
      spec: {},
    };
    const message = `300 keys on 300 API stages: ${stages.join(', ')}`;
    expect(message.length).toBeGreaterThan(32768);
    const ps = planStatus(
      plan,
      { keyCount: 300, apiStages: stages, ready: { status: 'True', reason: Reason.InUse, message } },
      now,
    );
    expect(ps.apiStages).toEqual(stages.slice(0, 256));
    expect(ps.conditions?.[0]?.message).toHaveLength(32768);
  });

  it("cut a binding problem's message to the 1024 characters the CRD admits", () => {
    const binding: PlanBinding = {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'PlanBinding',
      metadata: { name: 'b', namespace: 'shop', generation: 1 },
      spec: { planRef: { name: 'gold' }, keys: { names: ['acme'] }, apiStages: [{ api: 'a', stage: 'b' }] },
    };
    const problem = { key: 'acme', reason: Reason.KeyNotReady, message: `ApiKey acme: ${'x'.repeat(2000)}` };
    const s = bindingStatus(
      binding,
      { boundKeys: 0, problems: [problem], ready: { status: 'False', ...problem } },
      now,
    );
    expect(s.problems?.[0]?.message).toHaveLength(1024);
    expect(s.problems?.[0]?.message.endsWith('…')).toBe(true);
  });
});
