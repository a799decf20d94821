import { describe, expect, it } from 'vitest';
import { parseIndex } from '../../../contract/src/validate.ts';
import type { ApiKey, PlanBinding, UsageAdjustment, UsagePlan } from '../../../crds/src/index.ts';
import { adjustmentStatus } from '../status/desired.ts';
import { render } from './render.ts';
import type { RenderInput } from './types.ts';

const ns = 'shop';
const plan: UsagePlan = {
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'UsagePlan',
  metadata: { name: 'gold', namespace: ns },
  spec: { quota: { limit: 100, period: 'MONTH', startDay: 15 } },
};
const key: ApiKey = {
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'ApiKey',
  metadata: { name: 'acme', namespace: ns },
  spec: {},
};
const binding: PlanBinding = {
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'PlanBinding',
  metadata: { name: 'gold', namespace: ns, uid: 'b' },
  spec: {
    planRef: { name: 'gold' },
    keys: { names: ['acme'] },
    apiStages: [
      { api: 'orders', stage: 'prod' },
      { api: 'orders', stage: 'beta' },
    ],
  },
};
const grant = (status?: UsageAdjustment['status']): UsageAdjustment => ({
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'UsageAdjustment',
  metadata: { name: 'grant', namespace: ns, uid: 'u-1', generation: 1 },
  spec: { planRef: { name: 'gold' }, keyRef: { name: 'acme' }, amount: 50 },
  ...(status && { status }),
});
const input = (now: string, adjustments: UsageAdjustment[]): RenderInput => ({
  namespace: ns,
  plans: [plan],
  keys: [key],
  bindings: [binding],
  adjustments,
  materials: new Map([['acme', { keyId: 'cbarucba7hks', hashes: [{ sha256: 'a'.repeat(64) }] }]]),
  now: new Date(now),
});

describe('adjustments in the render', () => {
  it("fixes the period at the first reconcile to the plan's current one, and renders it on every stage of the plan", () => {
    const out = render(input('2026-11-23T12:00:00Z', [grant()]));
    const r = out.adjustments.get('grant');
    expect(r).toMatchObject({
      period: '2026-11-15',
      apiStages: ['orders/beta', 'orders/prod'],
      rendered: { id: 'u-1', plan: 'gold', subject: 'key:cbarucba7hks', period: '2026-11-15', amount: 50 },
    });
    for (const s of out.stages) {
      const index = parseIndex(s.objects.at(-1)?.data['index.json'] ?? '');
      expect(index.ok && index.value.adjustments).toEqual([r?.rendered]);
    }
    const status = adjustmentStatus(grant(), r, undefined, new Date('2026-11-23T12:00:00Z'));
    expect(status.period).toBe('2026-11-15');
    expect(status.conditions?.[0]).toMatchObject({ type: 'Applied', status: 'Unknown', reason: 'Rendered' });
  });

  it('keeps the recorded period after a restart: once it is over, the adjustment leaves the index, Expired', () => {
    // The operator restarts in the next period; the status says which period the grant was for.
    const fixed = grant({ period: '2026-11-15' });
    const same = render(input('2026-12-14T23:00:00Z', [fixed])).adjustments.get('grant');
    expect(same?.rendered?.period).toBe('2026-11-15');
    const next = render(input('2026-12-15T00:00:00Z', [fixed]));
    expect(next.adjustments.get('grant')).toMatchObject({
      period: '2026-11-15',
      problem: { reason: 'Expired' },
    });
    for (const s of next.stages) expect(s.index.adjustments).toBeUndefined();
    const status = adjustmentStatus(
      fixed,
      next.adjustments.get('grant'),
      undefined,
      new Date('2026-12-15T00:00:00Z'),
    );
    expect(status.period).toBe('2026-11-15');
    expect(status.conditions?.[0]).toMatchObject({ status: 'False', reason: 'Expired' });
  });

  it('reports Applied once an enforcer applied it, and keeps it so whatever follows', () => {
    const at = '2026-11-23T12:00:15Z';
    const r = render(input('2026-11-23T12:00:15Z', [grant({ period: '2026-11-15' })])).adjustments.get(
      'grant',
    );
    const applied = adjustmentStatus(grant({ period: '2026-11-15' }), r, at, new Date(at));
    expect(applied).toMatchObject({ appliedAt: at, period: '2026-11-15' });
    expect(applied.conditions?.[0]).toMatchObject({ status: 'True', reason: 'Applied' });
    // Later, with its period over and no poller knowing anything: still applied.
    const later = render(input('2027-01-01T00:00:00Z', [grant(applied)])).adjustments.get('grant');
    const kept = adjustmentStatus(grant(applied), later, undefined, new Date('2027-01-01T00:00:00Z'));
    expect(kept.appliedAt).toBe(at);
    expect(kept.conditions?.[0]).toMatchObject({ status: 'True', reason: 'Applied' });
  });

  it('leaves an index without adjustments exactly as before they existed', () => {
    const without = render(input('2026-11-23T12:00:00Z', []));
    const none = render({ ...input('2026-11-23T12:00:00Z', []), adjustments: undefined });
    expect(without.stages.map((s) => s.index)).toEqual(none.stages.map((s) => s.index));
    expect(without.stages[0]?.index).not.toHaveProperty('adjustments');
    const withOne = render(input('2026-11-23T12:00:00Z', [grant()]));
    expect(withOne.stages[0]?.index.revision).not.toBe(without.stages[0]?.index.revision);
  });
});
