import { describe, expect, it } from 'vitest';
import { hashKey } from '../../contract/src/key-format.ts';
import type { ImportRow } from './import-csv.ts';
import {
  type ClusterState,
  type ExistingBinding,
  fingerprint,
  parsePlanIds,
  parseStageOptions,
  planImport,
  withOwner,
} from './import-plan.ts';

const V1 = 'apikey1234abcdefghij0123456789';
const V2 = 'apikey1234abcdefghij0123456780';

const row = (line: number, name: string, value: string, plans: string[] = [], extra = {}): ImportRow => ({
  line,
  name,
  value,
  enabled: true,
  plans,
  ...extra,
});

const state = (over: Partial<ClusterState> = {}): ClusterState => ({
  namespace: 'shop',
  plans: new Set(['gold', 'silver']),
  keys: new Map(),
  bindings: new Map(),
  valueHashes: new Map(),
  ...over,
});

describe('planImport', () => {
  it('makes a labelled Secret and an ApiKey importing it, and one binding per plan', () => {
    const plan = planImport(
      [row(2, 'acme', V1, ['gold', 'silver'], { description: 'Acme', enabled: false })],
      state(),
      {
        stages: [
          { api: 'orders', stage: 'prod' },
          { plan: 'silver', api: 'orders', stage: 'beta' },
        ],
        planIds: new Map(),
      },
    );
    expect(plan.problems).toEqual([]);
    expect(plan.fatal).toEqual([]);
    const [w] = plan.writes;
    expect(w?.secret).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name: 'keystile-import-acme',
        namespace: 'shop',
        labels: {
          'app.kubernetes.io/managed-by': 'keystile-import',
          'keystile.dev/key-material': 'true',
          'keystile.dev/apikey': 'acme',
        },
      },
      data: { value: Buffer.from(V1).toString('base64') },
    });
    expect(w?.apiKey).toEqual({
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'ApiKey',
      metadata: {
        name: 'acme',
        namespace: 'shop',
        labels: {
          'app.kubernetes.io/managed-by': 'keystile-import',
          'plan.import.keystile.dev/gold': 'true',
          'plan.import.keystile.dev/silver': 'true',
        },
      },
      spec: {
        valueFrom: 'Secret',
        secretRef: { name: 'keystile-import-acme', key: 'value' },
        enabled: false,
        description: 'Acme',
      },
    });
    expect(JSON.stringify(w?.apiKey)).not.toContain(V1);
    expect(plan.bindings.map((b) => [b.name, b.create?.spec])).toEqual([
      [
        'gold-imported',
        {
          planRef: { name: 'gold' },
          keys: { selector: { matchLabels: { 'plan.import.keystile.dev/gold': 'true' } } },
          apiStages: [{ api: 'orders', stage: 'prod' }],
        },
      ],
      [
        'silver-imported',
        {
          planRef: { name: 'silver' },
          keys: { selector: { matchLabels: { 'plan.import.keystile.dev/silver': 'true' } } },
          apiStages: [
            { api: 'orders', stage: 'prod' },
            { api: 'orders', stage: 'beta' },
          ],
        },
      ],
    ]);
  });

  it('leaves an existing binding as it is, and needs --stage only to create one', () => {
    const s = state({
      bindings: new Map<string, ExistingBinding>([
        [
          'gold-imported',
          { plan: 'gold', matchLabels: { 'plan.import.keystile.dev/gold': 'true' }, names: [] },
        ],
        ['silver-imported', { plan: 'silver', matchLabels: {}, names: ['x'] }],
      ]),
    });
    const plan = planImport([row(2, 'a', V1, ['gold', 'silver'])], s, { stages: [], planIds: new Map() });
    expect(plan.fatal).toEqual([]);
    expect(plan.bindings).toEqual([
      { plan: 'gold', name: 'gold-imported' },
      {
        plan: 'silver',
        name: 'silver-imported',
        warning: expect.stringMatching(/does not select plan\.import\.keystile\.dev\/silver=true/) as string,
      },
    ]);
    const missing = planImport([row(2, 'a', V1, ['gold'])], state(), { stages: [], planIds: new Map() });
    expect(missing.fatal).toEqual([
      expect.stringMatching(/PlanBinding gold-imported does not exist: give .*--stage/),
    ]);
  });

  it('maps AWS usage plan ids, and refuses a plan that does not exist', () => {
    const plan = planImport([row(2, 'a', V1, ['c7y23b']), row(3, 'b', V2, ['nope', 'gold'])], state(), {
      stages: [{ api: 'orders', stage: 'prod' }],
      planIds: new Map([['c7y23b', 'gold']]),
    });
    expect(plan.writes.map((w) => [w.row.name, w.plans])).toEqual([['a', ['gold']]]);
    expect(plan.problems).toEqual([
      { line: 3, name: 'b', reason: 'usage plan nope does not exist in namespace shop' },
    ]);
  });

  it('never overwrites a value: another value, a key not imported by us, a value held by another key', () => {
    const s = state({
      keys: new Map([
        ['same', { uid: 'u1', valueFrom: 'Secret', secretRefName: 'keystile-import-same' }],
        ['changed', { uid: 'u2', valueFrom: 'Secret', secretRefName: 'keystile-import-changed' }],
        ['generated', { uid: 'u3', valueFrom: 'Generated' }],
        ['theirs', { uid: 'u4', valueFrom: 'Secret', secretRefName: 'their-secret' }],
      ]),
      valueHashes: new Map([
        ['same', hashKey(V1)],
        ['changed', hashKey('apikey1234abcdefghij-old-value')],
        ['other', hashKey(V2)],
      ]),
    });
    const plan = planImport(
      [
        row(2, 'same', V1),
        row(3, 'changed', 'apikey1234abcdefghij-new-value'),
        row(4, 'generated', 'apikey1234abcdefghij-generated'),
        row(5, 'theirs', 'apikey1234abcdefghij-theirs000'),
        row(6, 'fresh', V2),
      ],
      s,
      { stages: [], planIds: new Map() },
    );
    expect(plan.writes.map((w) => [w.row.name, w.existingUid])).toEqual([['same', 'u1']]);
    expect(plan.problems.map((p) => [p.line, p.reason])).toEqual([
      [3, expect.stringMatching(/^ApiKey changed already exists with a different value; not overwritten/)],
      [
        4,
        expect.stringMatching(
          /^ApiKey generated already exists and is not a key imported by keystile import \(its value is generated\)/,
        ),
      ],
      [5, expect.stringMatching(/its value is in Secret their-secret/)],
      [6, 'the key value is already held by ApiKey other in namespace shop (keys are unique by value)'],
    ]);
    for (const p of plan.problems) expect(p.reason).not.toMatch(/apikey1234/);
  });

  it('owns the Secret by the ApiKey once its uid is known', () => {
    const plan = planImport([row(2, 'a', V1)], state(), { stages: [], planIds: new Map() });
    const owned = withOwner(plan.writes[0]!.secret, 'a', 'uid-1');
    expect(owned.metadata.ownerReferences).toEqual([
      { apiVersion: 'keystile.dev/v1alpha1', kind: 'ApiKey', name: 'a', uid: 'uid-1' },
    ]);
    expect(plan.writes[0]!.secret.metadata.ownerReferences).toBeUndefined();
  });
});

describe('options', () => {
  it('parses --stage with and without a plan', () => {
    expect(parseStageOptions(['orders/prod', 'gold=orders/beta'])).toEqual([
      { api: 'orders', stage: 'prod' },
      { plan: 'gold', api: 'orders', stage: 'beta' },
    ]);
    expect(() => parseStageOptions(['orders'])).toThrow(/--stage orders: expected api\/stage/);
    expect(() => parseStageOptions(['Orders/prod'])).toThrow(/DNS labels/);
  });

  it('parses --plan-id', () => {
    expect(parsePlanIds(['c7y23b=gold'])).toEqual(new Map([['c7y23b', 'gold']]));
    expect(() => parsePlanIds(['c7y23b'])).toThrow(/expected AWSID=PLAN/);
  });
});

describe('fingerprint', () => {
  it('ignores what the server adds, and sees what a person would call a change', () => {
    const a = { metadata: { name: 'a', resourceVersion: '1', labels: { x: '1' } }, spec: { enabled: true } };
    const b = {
      metadata: { name: 'a', resourceVersion: '2', uid: 'u', labels: { x: '1' } },
      spec: { enabled: true },
    };
    expect(fingerprint(a)).toBe(fingerprint(b));
    expect(fingerprint(a)).not.toBe(fingerprint({ ...b, spec: { enabled: false } }));
    expect(fingerprint(undefined)).toBe('');
  });
});
