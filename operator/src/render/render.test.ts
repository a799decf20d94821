import { describe, expect, it } from 'vitest';
import { DATA_KEYS } from '../../../contract/src/identity.ts';
import { generateKey, hashKey } from '../../../contract/src/key-format.ts';
import { parseIndex, parseKeysShard, parseSecretsShard } from '../../../contract/src/validate.ts';
import type { ApiKey, PlanBinding, UsagePlan } from '../../../crds/src/index.ts';
import { render } from './render.ts';
import type { KeyMaterial, RenderInput } from './types.ts';

const ns = 'shop';
const plan: UsagePlan = {
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'UsagePlan',
  metadata: { name: 'gold', namespace: ns },
  spec: { throttle: { rateLimit: 10, burstLimit: 20 }, quota: { limit: 100, period: 'DAY' } },
};
const binding: PlanBinding = {
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'PlanBinding',
  metadata: { name: 'gold', namespace: ns, uid: 'b-uid' },
  spec: { planRef: { name: 'gold' }, keys: { selector: {} }, apiStages: [{ api: 'orders', stage: 'prod' }] },
};

/** n keys with generated values; returns the input and the values. */
function world(n: number): { input: RenderInput; values: string[] } {
  const keys: ApiKey[] = [];
  const materials = new Map<string, KeyMaterial>();
  const values: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `k${i}`;
    const { value, keyId } = generateKey();
    values.push(value);
    keys.push({
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'ApiKey',
      metadata: { name, namespace: ns },
      spec: {},
    });
    materials.set(name, { keyId, hashes: [{ sha256: hashKey(value) }] });
  }
  return {
    input: {
      namespace: ns,
      plans: [plan],
      keys,
      bindings: [binding],
      materials,
      now: new Date('2026-11-23T00:00:00Z'),
    },
    values,
  };
}

describe('render', () => {
  it('writes documents the contract schema accepts, and no key value anywhere', () => {
    const { input, values } = world(50);
    const out = render(input);
    expect(out.stages).toHaveLength(1);
    const stage = out.stages[0]!;
    const checked = { [DATA_KEYS.index]: 0, [DATA_KEYS.keys]: 0, [DATA_KEYS.secrets]: 0 };
    for (const o of stage.objects) {
      for (const [dataKey, text] of Object.entries(o.data)) {
        for (const v of values) expect(text).not.toContain(v);
        // The parser by data key: every document the enforcer reads is checked against its schema.
        if (dataKey === DATA_KEYS.index) expect(parseIndex(text)).toMatchObject({ ok: true });
        else if (dataKey === DATA_KEYS.keys) expect(parseKeysShard(text)).toMatchObject({ ok: true });
        else if (dataKey === DATA_KEYS.secrets) expect(parseSecretsShard(text)).toMatchObject({ ok: true });
        else expect.unreachable(`unexpected data key ${dataKey} in ${o.name}`);
        checked[dataKey]++;
      }
    }
    expect(checked).toEqual({ [DATA_KEYS.index]: 1, [DATA_KEYS.keys]: 1, [DATA_KEYS.secrets]: 1 });
    expect(stage.objects.map((o) => o.owners)).toEqual(
      stage.objects.map(() => [{ name: 'gold', uid: 'b-uid' }]),
    );
  });

  it('one more key in a stage of 3000 rewrites one shard and the index, nothing else', () => {
    const { input } = world(3001);
    const before = render({ ...input, keys: input.keys.slice(0, 3000) }).stages[0]!;
    const after = render(input).stages[0]!;
    expect(before.index.shards).toHaveLength(2);
    const changed = after.objects.filter(
      (o, i) => JSON.stringify(o.data) !== JSON.stringify(before.objects[i]?.data),
    );
    expect(changed.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'ConfigMap', 'Secret']);
    expect(changed.map((o) => o.name)).toContain('keystile-orders.prod');
  });

  it('keeps every shard well under the 1 MiB object limit at 2000 keys a shard', () => {
    const { input } = world(4000);
    const stage = render(input).stages[0]!;
    for (const o of stage.objects) {
      const bytes = Object.values(o.data).reduce((n, v) => n + Buffer.byteLength(v), 0);
      // Secrets are base64-encoded when stored: 4/3 of this.
      expect(bytes * (o.kind === 'Secret' ? 4 / 3 : 1)).toBeLessThan(512 * 1024);
    }
  });

  it('reports a key whose expiry cannot be read and leaves it out, and renders the rest of the namespace', () => {
    const { input } = world(6);
    // Admitted by the API server's date-time check before the CRD had a pattern and a range: Date cannot
    // read the first two, and the last two are years the contract cannot hold once in UTC.
    const unreadable = [
      '2030-01-01T00:00:00,5Z',
      '2030-01-01T00:00:00+99:99',
      '9999-12-31T23:59:59-05:00',
      '0000-01-01T00:00:00+01:00',
    ];
    const keys = input.keys.map((k, i) => ({
      ...k,
      spec: { expiresAt: unreadable[i] ?? (i === 4 ? '2030-01-01T00:00:00+02:00' : undefined) },
    }));
    const out = render({ ...input, keys });
    const stage = out.stages[0]!;
    const shards = stage.documents.keys.map((text) => parseKeysShard(text));
    const rendered = shards.flatMap((s) => (s.ok ? s.value.keys : expect.fail(s.error)));
    expect(rendered.map((k) => [k.name, k.expiresAt]).sort()).toEqual([
      ['k4', '2029-12-31T22:00:00.000Z'],
      ['k5', undefined],
    ]);
    for (const text of stage.documents.secrets) expect(parseSecretsShard(text)).toMatchObject({ ok: true });
    for (const [i, at] of unreadable.entries()) {
      const problem = out.keys.get(`k${i}`)?.problem;
      expect(problem?.reason).toBe('InvalidExpiry');
      expect(problem?.message).toContain(`spec.expiresAt ${at} cannot be read`);
    }
    expect(out.bindings.get('gold')?.problems.map((p) => [p.key, p.reason])).toEqual(
      unreadable.map((_, i) => [`k${i}`, 'KeyNotReady']),
    );
    expect(out.bindings.get('gold')?.problems[0]?.message).toContain('cannot be read');
  });

  it('gives the same bytes for the same input, whatever the order of the resources', () => {
    const { input } = world(20);
    const a = render(input);
    const b = render({ ...input, keys: [...input.keys].reverse() });
    expect(b.stages.map((s) => s.objects)).toEqual(a.stages.map((s) => s.objects));
  });
});
