// The operator on the real control plane, driven as a user would: kubectl apply, get, wait, patch,
// delete. The operator is the local system's, running as the keystile-operator ServiceAccount with
// exactly operator/deploy/rbac.yaml (test/ground/keystile.ts), so every case also proves that RBAC is
// enough.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIndex, parseKeysShard, parseSecretsShard } from '../../contract/src/validate.ts';
import { generateKey, hashKey } from '../../contract/src/key-format.ts';
import { apiserverReady, startApiserver } from '../ground/controlplane.ts';
import { createNamespace, ground, kubectl, kubectlJson } from '../ground/harness.ts';
import { operatorReady, startOperatorProcess, SYSTEM_NAMESPACE } from '../ground/keystile.ts';
import { groundContext } from '../ground/local-system.ts';
import { repoRoot } from '../ground/paths.ts';
import { waitFor } from '../ground/wait.ts';

interface Obj {
  metadata: {
    name: string;
    uid: string;
    creationTimestamp?: string;
    ownerReferences?: { kind: string; name: string; uid?: string }[];
  };
  data?: Record<string, string>;
  status?: {
    keyId?: string;
    conditions?: {
      type: string;
      status: string;
      reason: string;
      message: string;
      lastTransitionTime: string;
    }[];
    problems?: { key: string; reason: string; apiStage?: string }[];
    boundKeys?: number;
    plans?: string[];
    rotation?: { sequence: number; previousValidUntil?: string };
  };
}

const b64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');
const apply = (ns: string, manifest: unknown): Promise<string> =>
  kubectl(['-n', ns, 'apply', '-f', '-'], JSON.stringify(manifest));
const get = (ns: string, what: string): Promise<Obj> => kubectlJson<Obj>(['-n', ns, 'get', what]);
const exists = async (ns: string, what: string): Promise<boolean> =>
  (await kubectl(['-n', ns, 'get', what, '--ignore-not-found', '-o', 'name'])).trim() !== '';
const ready = (o: Obj): { status: string; reason: string; message: string } | undefined =>
  o.status?.conditions?.find((c) => c.type === 'Ready');
/** The uid of an object's first owner. */
const ownerUid = (o: Obj): string | undefined => o.metadata.ownerReferences?.[0]?.uid;

/**
 * Runs a kubectl watch (`args`) until `count` distinct lines of its output match `line`; rejects if they
 * do not within `timeoutMs`. Started before the change it waits for: a watch lists what exists first,
 * then streams.
 */
function watchFor(args: readonly string[], line: RegExp, count: number, timeoutMs: number): Promise<void> {
  const g = ground();
  const child = spawn(g.kubectl, args, {
    env: { ...process.env, KUBECONFIG: g.kubeconfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let timer: NodeJS.Timeout | undefined;
  return new Promise<void>((resolve, reject) => {
    timer = setTimeout(() => {
      reject(
        new Error(
          `kubectl ${args.join(' ')}: no ${count} lines matching ${line} within ${timeoutMs} ms\n${out}${err}`,
        ),
      );
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (new Set(out.split('\n').filter((l) => line.test(l))).size >= count) resolve();
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.on('exit', (code) => reject(new Error(`kubectl ${args.join(' ')} exited (${code}): ${err}`)));
    child.on('error', reject);
  }).finally(() => {
    clearTimeout(timer);
    child.kill();
  });
}

/** Waits until `probe` holds, re-reading the cluster; the operator converges within seconds. */
async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  await waitFor(what, probe, timeoutMs, 200);
}

/** The rendered documents of a stage, parsed and checked against the contract. */
async function stage(ns: string, api: string, stageName: string) {
  const index = parseIndex(
    (await get(ns, `configmap/keystile-${api}.${stageName}`)).data?.['index.json'] ?? '',
  );
  if (!index.ok) throw new Error(index.error);
  const keys = [];
  const credentials = [];
  for (const s of index.value.shards) {
    const k = parseKeysShard((await get(ns, `configmap/${s.keys.name}`)).data?.['keys.json'] ?? '');
    const c = parseSecretsShard(
      b64((await get(ns, `secret/${s.secrets.name}`)).data?.['secrets.json'] ?? ''),
    );
    if (!k.ok || !c.ok) throw new Error(`bad shard ${s.index}`);
    keys.push(...k.value.keys);
    credentials.push(...c.value.credentials);
  }
  return { index: index.value, keys, credentials };
}

const plan = (name: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'UsagePlan',
  metadata: { name },
  spec: { throttle: { rateLimit: 10, burstLimit: 20 }, quota: { limit: 1000, period: 'DAY' }, ...spec },
});
const key = (name: string, spec: Record<string, unknown> = {}, labels: Record<string, string> = {}) => ({
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'ApiKey',
  metadata: { name, labels },
  spec,
});
const binding = (
  name: string,
  planName: string,
  keys: Record<string, unknown>,
  apiStages = [{ api: 'orders', stage: 'prod' }],
) => ({
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'PlanBinding',
  metadata: { name },
  spec: { planRef: { name: planName }, keys, apiStages },
});

describe('the operator', () => {
  let ns: string;

  beforeAll(async () => {
    ns = await createNamespace('operator');
    for (const dir of ['examples/aws-style', 'examples/tencent-style'])
      await kubectl(['-n', ns, 'apply', '-f', join(repoRoot, dir)]);
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', '--timeout=60s', 'planbindings', '--all']);
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', '--timeout=60s', 'apikeys', '--all']);
  });

  afterAll(async () => {
    await kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  it('renders the examples into the ConfigMaps and Secrets of each stage, hashes only', async () => {
    const acme = await get(ns, 'apikey/acme-prod');
    const value = b64((await get(ns, 'secret/keystile-key-acme-prod')).data?.['value'] ?? '');
    expect(value).toMatch(new RegExp(`^ks_${acme.status?.keyId ?? 'missing'}_`));
    for (const s of ['prod', 'beta']) {
      const rendered = await stage(ns, 'orders', s);
      expect(rendered.index.plans.map((p) => p.id)).toEqual([`${ns}/gold`]);
      expect(rendered.keys.map((k) => k.name).sort()).toEqual(['acme-prod', 'globex']);
      const cred = rendered.credentials.find((c) => c.id === acme.status?.keyId);
      expect(cred).toEqual({ id: acme.status?.keyId, type: 'ApiKey', hashes: [{ sha256: hashKey(value) }] });
    }
    const payments = await stage(ns, 'payments', 'release');
    const pair = payments.credentials.find((c) => c.type === 'KeyPair');
    const pairSecret = await get(ns, 'secret/keystile-key-payments-partner');
    expect(pair).toMatchObject({
      secretId: b64(pairSecret.data?.['secretId'] ?? ''),
      secretKeys: [{ value: b64(pairSecret.data?.['secretKey'] ?? '') }],
    });
    // The imported key is looked up by the hash of the value in the user's Secret.
    const imported = b64((await get(ns, 'secret/legacy-value')).data?.['value'] ?? '');
    expect(
      payments.credentials.some((c) => c.type === 'ApiKey' && c.hashes[0]?.sha256 === hashKey(imported)),
    ).toBe(true);
  });

  it('reports status kubectl can show and wait on', async () => {
    const out = await kubectl(['-n', ns, 'get', 'apikeys,usageplans,planbindings']);
    expect(out).toMatch(
      /apikey.keystile.dev\/acme-prod\s+ApiKey\s+true\s+[a-z2-7]{12}\s+acme\s+gold:orders\/beta\s+True/,
    );
    expect(out).toMatch(/planbinding.keystile.dev\/gold-orders\s+gold\s+2\s+0\s+True\s+Bound/);
    const b = await get(ns, 'planbinding/gold-orders');
    expect(b.status).toMatchObject({ boundKeys: 2 });
    expect(ready(b)).toMatchObject({
      status: 'True',
      reason: 'Bound',
      message: '2 keys bound on 2 API stages',
    });
  });

  it('updates the index when a plan is edited', async () => {
    await kubectl([
      '-n',
      ns,
      'patch',
      'usageplan/gold',
      '--type=merge',
      '-p',
      '{"spec":{"throttle":{"rateLimit":50,"burstLimit":100}}}',
    ]);
    await until(
      'the new throttle in the index',
      async () => (await stage(ns, 'orders', 'prod')).index.plans[0]?.throttle?.rate === 50,
    );
    expect((await stage(ns, 'orders', 'beta')).index.plans[0]?.throttle).toEqual({ rate: 50, burst: 100 });
  });

  it('marks a disabled key in the keys shard and in its status, without touching its value', async () => {
    const before = (await get(ns, 'secret/keystile-key-globex')).data?.['value'];
    await kubectl(['-n', ns, 'patch', 'apikey/globex', '--type=merge', '-p', '{"spec":{"enabled":false}}']);
    await until(
      'globex disabled in the shard',
      async () =>
        (await stage(ns, 'orders', 'prod')).keys.find((k) => k.name === 'globex')?.enabled === false,
    );
    await until(
      'globex Ready=False Disabled',
      async () => ready(await get(ns, 'apikey/globex'))?.reason === 'Disabled',
    );
    expect((await get(ns, 'secret/keystile-key-globex')).data?.['value']).toBe(before);
    const b = await get(ns, 'planbinding/gold-orders');
    expect(ready(b)).toMatchObject({ status: 'False', reason: 'KeyDisabled' });
    await kubectl(['-n', ns, 'patch', 'apikey/globex', '--type=merge', '-p', '{"spec":{"enabled":true}}']);
    await until(
      'the binding Ready again',
      async () => ready(await get(ns, 'planbinding/gold-orders'))?.reason === 'Bound',
    );
  });

  it('rotates a key on request: a new value, the old one valid for the grace period, the same key id', async () => {
    const k0 = await get(ns, 'apikey/acme-prod');
    const old = b64((await get(ns, 'secret/keystile-key-acme-prod')).data?.['value'] ?? '');
    await kubectl([
      '-n',
      ns,
      'patch',
      'apikey/acme-prod',
      '--type=merge',
      '-p',
      '{"spec":{"rotation":{"sequence":1,"gracePeriod":"1h"}}}',
    ]);
    let fresh = old;
    await until('a new value', async () => {
      fresh = b64((await get(ns, 'secret/keystile-key-acme-prod')).data?.['value'] ?? '');
      return fresh !== old;
    });
    await until('both hashes rendered', async () => {
      const cred = (await stage(ns, 'orders', 'prod')).credentials.find((c) => c.id === k0.status?.keyId);
      return cred?.type === 'ApiKey' && cred.hashes.length === 2;
    });
    const cred = (await stage(ns, 'orders', 'prod')).credentials.find((c) => c.id === k0.status?.keyId);
    expect(cred?.type === 'ApiKey' && cred.hashes.map((h) => h.sha256)).toEqual([
      hashKey(fresh),
      hashKey(old),
    ]);
    const k1 = await get(ns, 'apikey/acme-prod');
    expect(k1.status?.keyId).toBe(k0.status?.keyId);
    expect(Date.parse(k1.status?.rotation?.previousValidUntil ?? '') - Date.now()).toBeGreaterThan(
      50 * 60_000,
    );
    const events = await kubectl([
      '-n',
      ns,
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=acme-prod,reason=KeyRotated',
      '-o',
      'name',
    ]);
    expect(events.trim()).not.toBe('');
  });

  it('lets the older binding win a key both claim for one stage, and reports the conflict on the newer', async () => {
    await apply(ns, plan('silver'));
    await apply(ns, binding('silver-orders', 'silver', { names: ['acme-prod'] }));
    await until(
      'the conflict reported',
      async () => ready(await get(ns, 'planbinding/silver-orders'))?.reason === 'KeyAlreadyBound',
    );
    const b = await get(ns, 'planbinding/silver-orders');
    expect(b.status?.problems).toEqual([
      expect.objectContaining({ key: 'acme-prod', apiStage: 'orders/prod', reason: 'KeyAlreadyBound' }),
    ]);
    expect((await stage(ns, 'orders', 'prod')).keys.find((k) => k.name === 'acme-prod')?.plan).toBe('gold');
    const events = await kubectl([
      '-n',
      ns,
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=silver-orders,reason=KeyAlreadyBound',
      '-o',
      'name',
    ]);
    expect(events.trim()).not.toBe('');
  });

  it.each([
    [
      'PlanNotFound',
      [binding('b-no-plan', 'missing', { names: ['acme-prod'] }, [{ api: 'shop', stage: 'a' }])],
    ],
    ['KeyNotFound', [binding('b-no-key', 'gold', { names: ['ghost'] }, [{ api: 'shop', stage: 'b' }])]],
    [
      'PlanFull',
      [
        plan('tiny', { maxKeys: 1 }),
        key('tiny-1'),
        key('tiny-2'),
        binding('b-full', 'tiny', { names: ['tiny-1', 'tiny-2'] }, [{ api: 'shop', stage: 'c' }]),
      ],
    ],
    [
      'KeyExpired',
      [
        key('old', { expiresAt: '2020-01-01T00:00:00Z' }),
        binding('b-expired', 'gold', { names: ['old'] }, [{ api: 'shop', stage: 'd' }]),
      ],
    ],
    [
      'KeyNotReady',
      [
        key('lost', { valueFrom: 'Secret', secretRef: { name: 'no-such-secret' } }),
        binding('b-not-ready', 'gold', { names: ['lost'] }, [{ api: 'shop', stage: 'e' }]),
      ],
    ],
  ])('reports %s on the binding', async (reason, manifests) => {
    for (const m of manifests) await apply(ns, m);
    const name = manifests.at(-1)?.metadata.name ?? '';
    await until(
      `${name} Ready=False ${reason}`,
      async () => ready(await get(ns, `planbinding/${name}`))?.reason === reason,
    );
    expect(ready(await get(ns, `planbinding/${name}`))?.status).toBe('False');
  });

  it('reports a missing imported Secret on the key, and picks the value up when the Secret appears', async () => {
    await until(
      'lost reports SecretNotFound',
      async () => ready(await get(ns, 'apikey/lost'))?.reason === 'SecretNotFound',
    );
    await kubectl([
      '-n',
      ns,
      'create',
      'secret',
      'generic',
      'no-such-secret',
      '--from-literal=value=imported-value-0123456789abcdef',
    ]);
    await until('lost Ready', async () => ready(await get(ns, 'apikey/lost'))?.reason === 'KeyReady');
  });

  it('refuses an imported key once its Secret is deleted, not serving its last value, and serves it again when the Secret is back', async () => {
    const first = 'imported-first-0123456789abcdef';
    const second = 'imported-second-0123456789abcdef';
    const secret = (value: string) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'revocable-source' },
      stringData: { value },
    });
    await apply(ns, secret(first));
    await apply(ns, key('revocable', { valueFrom: 'Secret', secretRef: { name: 'revocable-source' } }));
    await apply(
      ns,
      binding('b-revocable', 'gold', { names: ['revocable'] }, [{ api: 'revocable', stage: 'x' }]),
    );
    // The stage's only key: without a usable value the stage is not rendered at all (UnknownStage).
    const hashes = async (): Promise<string[]> =>
      (await exists(ns, 'configmap/keystile-revocable.x'))
        ? (await stage(ns, 'revocable', 'x')).credentials.flatMap((c) =>
            c.type === 'ApiKey' ? c.hashes.map((h) => h.sha256) : [],
          )
        : [];
    await until('the imported value rendered', async () => (await hashes()).includes(hashKey(first)));

    await kubectl(['-n', ns, 'delete', 'secret/revocable-source']);
    await until(
      'the key reports SecretNotFound and its value is no longer rendered',
      async () =>
        ready(await get(ns, 'apikey/revocable'))?.reason === 'SecretNotFound' &&
        !(await hashes()).includes(hashKey(first)),
      30_000,
    );
    expect(ready(await get(ns, 'planbinding/b-revocable'))?.reason).toBe('KeyNotReady');

    await apply(ns, secret(second));
    await until('the new value rendered', async () => (await hashes()).includes(hashKey(second)), 30_000);
    expect(await hashes()).not.toContain(hashKey(first));
  });

  it('makes a key Secret deleted by hand again with the same key id and a new value', async () => {
    await apply(ns, key('handdeleted'));
    await until('Ready', async () => ready(await get(ns, 'apikey/handdeleted'))?.reason === 'KeyReady');
    const keyId = (await get(ns, 'apikey/handdeleted')).status?.keyId ?? '';
    const before = await get(ns, 'secret/keystile-key-handdeleted');
    await kubectl(['-n', ns, 'delete', 'secret/keystile-key-handdeleted']);
    await until('the Secret made again', async () => {
      const s = (
        await kubectlJson<{ items: Obj[] }>([
          '-n',
          ns,
          'get',
          'secrets',
          '--field-selector',
          'metadata.name=keystile-key-handdeleted',
        ])
      ).items[0];
      return s !== undefined && s.metadata.uid !== before.metadata.uid;
    });
    const after = await get(ns, 'secret/keystile-key-handdeleted');
    expect(b64(after.data?.['keyId'] ?? '')).toBe(keyId);
    const value = b64(after.data?.['value'] ?? '');
    expect(value).not.toBe(b64(before.data?.['value'] ?? ''));
    expect(value.startsWith(`ks_${keyId}_`)).toBe(true);
    await until('Ready, with the same key id', async () => {
      const k = await get(ns, 'apikey/handdeleted');
      return ready(k)?.reason === 'KeyReady' && k.status?.keyId === keyId;
    });
  });

  it('imports the value of an immutable Secret: labelling it keeps it immutable, and the key gets Ready', async () => {
    const value = 'imported-immutable-0123456789abcdef';
    await apply(ns, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'frozen-source' },
      immutable: true,
      stringData: { value },
    });
    await apply(ns, key('frozen', { valueFrom: 'Secret', secretRef: { name: 'frozen-source' } }));
    await until('frozen Ready', async () => ready(await get(ns, 'apikey/frozen'))?.reason === 'KeyReady');
    const source = await kubectlJson<{ immutable?: boolean; metadata: { labels?: Record<string, string> } }>([
      '-n',
      ns,
      'get',
      'secret/frozen-source',
    ]);
    expect(source.immutable).toBe(true);
    expect(source.metadata.labels?.['keystile.dev/key-material']).toBe('true');
    expect(b64((await get(ns, 'secret/keystile-key-frozen')).data?.['sha256'] ?? '')).toBe(hashKey(value));
  });

  it('reports an imported Secret the API server will not let it label on the key (SecretNotWritable), and recovers once it may', async () => {
    // An admission policy refuses every update of this one Secret: the operator's label is refused.
    const policy = `e2e-no-label-${ns}`;
    await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          {
            apiVersion: 'admissionregistration.k8s.io/v1',
            kind: 'ValidatingAdmissionPolicy',
            metadata: { name: policy },
            spec: {
              failurePolicy: 'Fail',
              matchConstraints: {
                resourceRules: [
                  { apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['secrets'] },
                ],
              },
              validations: [
                { expression: "object.metadata.name != 'locked-source'", message: 'locked by the e2e test' },
              ],
            },
          },
          {
            apiVersion: 'admissionregistration.k8s.io/v1',
            kind: 'ValidatingAdmissionPolicyBinding',
            metadata: { name: policy },
            spec: {
              policyName: policy,
              validationActions: ['Deny'],
              matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } },
            },
          },
        ],
      }),
    );
    try {
      await apply(ns, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'locked-source', labels: { probe: 'before' } },
        stringData: { value: 'imported-locked-0123456789abcdef' },
      });
      // The policy is in force once an update is refused (it takes effect within moments). Each probe
      // changes the label: an update that changes nothing is not sent.
      let probe = 0;
      await until('the policy in force', async () => {
        try {
          await kubectl(['-n', ns, 'label', '--overwrite', 'secret/locked-source', `probe=p${++probe}`]);
          return false;
        } catch {
          return true;
        }
      });
      await apply(ns, key('locked', { valueFrom: 'Secret', secretRef: { name: 'locked-source' } }));
      await until('locked reports SecretNotWritable', async () => {
        const r = ready(await get(ns, 'apikey/locked'));
        return r?.reason === 'SecretNotWritable' && r.message.includes('locked-source');
      });
    } finally {
      await kubectl(['delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy', policy]);
    }
    await until(
      'locked Ready',
      async () => ready(await get(ns, 'apikey/locked'))?.reason === 'KeyReady',
      30_000,
    );
  });

  it('labels a key Secret again when its key-material label is removed, keeping its value', async () => {
    await apply(ns, key('unlabelled'));
    await until('Ready', async () => ready(await get(ns, 'apikey/unlabelled'))?.reason === 'KeyReady');
    const before = await get(ns, 'secret/keystile-key-unlabelled');
    await kubectl(['-n', ns, 'label', 'secret/keystile-key-unlabelled', 'keystile.dev/key-material-']);
    await until('the label back', async () => {
      const s = await kubectlJson<{ metadata: { labels?: Record<string, string> } }>([
        '-n',
        ns,
        'get',
        'secret/keystile-key-unlabelled',
      ]);
      return s.metadata.labels?.['keystile.dev/key-material'] === 'true';
    });
    const after = await get(ns, 'secret/keystile-key-unlabelled');
    expect(after.data).toEqual(before.data);
    await until('Ready', async () => ready(await get(ns, 'apikey/unlabelled'))?.reason === 'KeyReady');
  });

  it('adopts an unlabelled key Secret nobody owns that was there before the key, keeping its value', async () => {
    const value = generateKey('bbbbbbbbbbbb').value;
    await apply(ns, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'keystile-key-prepared' },
      stringData: { keyId: 'bbbbbbbbbbbb', value, 'rotation-sequence': '0' },
    });
    await apply(ns, key('prepared'));
    const fresh = await get(ns, 'apikey/prepared');
    await until(
      'the Secret owned by the ApiKey',
      async () => ownerUid(await get(ns, 'secret/keystile-key-prepared')) === fresh.metadata.uid,
    );
    expect(b64((await get(ns, 'secret/keystile-key-prepared')).data?.['value'] ?? '')).toBe(value);
    await until('Ready', async () => {
      const k = await get(ns, 'apikey/prepared');
      return ready(k)?.reason === 'KeyReady' && k.status?.keyId === 'bbbbbbbbbbbb';
    });
  });

  it('reports a key Secret another controller owns (SecretNotWritable), and never writes over it', async () => {
    await apply(ns, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'other-controller' } });
    const owner = await get(ns, 'configmap/other-controller');
    const data = { note: Buffer.from('not a key').toString('base64') };
    await apply(ns, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'keystile-key-taken',
        ownerReferences: [
          {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            name: 'other-controller',
            uid: owner.metadata.uid,
            controller: true,
          },
        ],
      },
      data,
    });
    await apply(ns, key('taken'));
    await until('taken reports SecretNotWritable', async () => {
      const r = ready(await get(ns, 'apikey/taken'));
      return r?.reason === 'SecretNotWritable' && r.message.includes('ConfigMap other-controller');
    });
    const s = await get(ns, 'secret/keystile-key-taken');
    expect(s.data).toEqual(data);
    expect(s.metadata.ownerReferences?.map((r) => r.kind)).toEqual(['ConfigMap']);
  });

  it("gives an ApiKey created under a deleted one's name a value of its own, never the Secret the deleted one left", async () => {
    // The Secret a deleted ApiKey leaves until the garbage collector removes it, made deterministic: its
    // controller is another ApiKey (which exists, so the collector leaves it alone).
    await apply(ns, key('previous-owner'));
    const owner = await get(ns, 'apikey/previous-owner');
    const left = generateKey('aaaaaaaaaaaa').value;
    await apply(ns, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'keystile-key-recreated',
        labels: {
          'app.kubernetes.io/managed-by': 'keystile',
          'keystile.dev/key-material': 'true',
          'keystile.dev/apikey': 'recreated',
        },
        ownerReferences: [
          {
            apiVersion: 'keystile.dev/v1alpha1',
            kind: 'ApiKey',
            name: 'previous-owner',
            uid: owner.metadata.uid,
            controller: true,
          },
        ],
      },
      stringData: { keyId: 'aaaaaaaaaaaa', value: left, 'rotation-sequence': '0' },
    });
    await apply(ns, key('recreated'));
    await apply(
      ns,
      binding('b-recreated', 'gold', { names: ['recreated'] }, [{ api: 'recreated', stage: 'x' }]),
    );
    const fresh = await get(ns, 'apikey/recreated');
    await until('the Secret replaced and owned by the new ApiKey', async () => {
      const s = await get(ns, 'secret/keystile-key-recreated');
      return ownerUid(s) === fresh.metadata.uid && b64(s.data?.['value'] ?? '') !== left;
    });
    await until('Ready', async () => ready(await get(ns, 'apikey/recreated'))?.reason === 'KeyReady');
    const value = b64((await get(ns, 'secret/keystile-key-recreated')).data?.['value'] ?? '');
    const keyId = (await get(ns, 'apikey/recreated')).status?.keyId;
    expect(keyId).not.toBe('aaaaaaaaaaaa');
    await until('the new value rendered', async () => {
      const cred = (await stage(ns, 'recreated', 'x')).credentials.find((c) => c.id === keyId);
      return cred?.type === 'ApiKey' && cred.hashes.length === 1 && cred.hashes[0]?.sha256 === hashKey(value);
    });
    const all = (await stage(ns, 'recreated', 'x')).credentials.flatMap((c) =>
      c.type === 'ApiKey' ? c.hashes.map((h) => h.sha256) : [],
    );
    expect(all).not.toContain(hashKey(left));
  });

  it('adopts the Secret an ApiKey deleted with --cascade=orphan left: the key created again keeps its value and owns it', async () => {
    await apply(ns, key('orphaned'));
    await until('its Secret', () => exists(ns, 'secret/keystile-key-orphaned'));
    const value = b64((await get(ns, 'secret/keystile-key-orphaned')).data?.['value'] ?? '');
    await kubectl(['-n', ns, 'delete', 'apikey/orphaned', '--cascade=orphan']);
    await until(
      'the Secret orphaned',
      async () =>
        ((await get(ns, 'secret/keystile-key-orphaned')).metadata.ownerReferences ?? []).length === 0,
    );
    await apply(ns, key('orphaned'));
    const again = await get(ns, 'apikey/orphaned');
    await until(
      'the Secret owned by the new ApiKey',
      async () => ownerUid(await get(ns, 'secret/keystile-key-orphaned')) === again.metadata.uid,
    );
    expect(b64((await get(ns, 'secret/keystile-key-orphaned')).data?.['value'] ?? '')).toBe(value);
  });

  it('refuses a key as soon as its deletion is asked, not when its finalizers are done', async () => {
    await apply(ns, {
      ...key('held'),
      metadata: { name: 'held', finalizers: ['e2e.keystile.dev/hold'] },
    });
    await apply(
      ns,
      binding('b-held', 'gold', { names: ['held'] }, [
        { api: 'held', stage: 'x' },
        { api: 'orders', stage: 'prod' },
      ]),
    );
    await until('held rendered', async () =>
      (await stage(ns, 'orders', 'prod')).keys.some((k) => k.name === 'held'),
    );
    await kubectl(['-n', ns, 'delete', 'apikey/held', '--wait=false']);
    try {
      await until(
        'held gone from the rendered stage while its finalizer holds it',
        async () => !(await stage(ns, 'orders', 'prod')).keys.some((k) => k.name === 'held'),
      );
      expect(await exists(ns, 'apikey/held')).toBe(true);
    } finally {
      await kubectl([
        '-n',
        ns,
        'patch',
        'apikey/held',
        '--type=merge',
        '-p',
        '{"metadata":{"finalizers":null}}',
      ]);
      await kubectl(['-n', ns, 'delete', 'planbinding/b-held', '--ignore-not-found']);
    }
  });

  it('removes a stage when its last binding is deleted', async () => {
    await apply(ns, binding('b-temp', 'gold', { names: ['acme-prod'] }, [{ api: 'temp', stage: 'x' }]));
    await until('the temp stage rendered', () => exists(ns, 'configmap/keystile-temp.x'));
    const owners = (await get(ns, 'configmap/keystile-temp.x')).metadata.ownerReferences ?? [];
    expect(owners.map((o) => `${o.kind}/${o.name}`)).toEqual(['PlanBinding/b-temp']);
    await kubectl(['-n', ns, 'delete', 'planbinding/b-temp']);
    await until(
      'the temp stage gone',
      async () =>
        !(await exists(ns, 'configmap/keystile-temp.x')) &&
        !(await exists(ns, 'secret/keystile-temp.x.secrets-0')),
    );
  });

  it("removes an ApiKey's Secret with the key, through the garbage collector", async () => {
    await apply(ns, key('short-lived'));
    await until('its Secret', () => exists(ns, 'secret/keystile-key-short-lived'));
    await kubectl(['-n', ns, 'delete', 'apikey/short-lived']);
    await until('its Secret collected', async () => !(await exists(ns, 'secret/keystile-key-short-lived')));
  });

  it('changes no key value when killed (-9) mid-reconcile and restarted', async () => {
    const ctx = groundContext();
    const values = async (): Promise<Map<string, string>> => {
      const list = await kubectlJson<{ items: Obj[] }>([
        '-n',
        ns,
        'get',
        'secrets',
        '-l',
        'keystile.dev/key-material=true,app.kubernetes.io/managed-by=keystile',
      ]);
      return new Map(list.items.map((s) => [s.metadata.name, JSON.stringify(s.data)]));
    };
    const burst = (secrets: Map<string, string>): string[] =>
      [...secrets.keys()].filter((name) => name.startsWith('keystile-key-burst-'));
    // The 20 keys and their binding in one apply. The operator is killed while they are still being
    // applied, as soon as the API server announces the fifth key's value: mid-reconcile, some values
    // made and some not. (A watch, not a poll: polling is too slow to catch it before all 20 exist.)
    const fiveValues = watchFor(
      ['-n', ns, 'get', 'secrets', '-l', 'keystile.dev/key-material=true', '--watch', '-o', 'name'],
      /secret\/keystile-key-burst-/,
      5,
      30_000,
    );
    fiveValues.catch(() => undefined); // awaited below
    const applied = apply(ns, {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        ...Array.from({ length: 20 }, (_, i) => key(`burst-${i}`, {}, { burst: 'yes' })),
        binding('b-burst', 'gold', { selector: { matchLabels: { burst: 'yes' } } }, [
          { api: 'burst', stage: 'x' },
        ]),
      ],
    });
    applied.catch(() => undefined); // awaited below
    await fiveValues;
    const record = ctx.procs.running('operator');
    if (!record) throw new Error('the operator is not running');
    process.kill(record.pid, 'SIGKILL');
    await applied;
    await waitFor('the operator to die', () => !ctx.procs.running('operator'), 5_000, 50);
    const before = await values();
    // What the restarted operator must keep: the values made before the kill (the five seen, or a few more).
    expect(burst(before).length).toBeGreaterThanOrEqual(5);
    const op = {
      name: 'operator',
      healthPort: ctx.ports.operator,
      kubeconfig: join(ctx.stateDir, 'operator.kubeconfig'),
    };
    startOperatorProcess(ctx, op);
    await operatorReady(ctx, op);
    await until(
      'the burst binding Ready with 20 keys',
      async () => (await get(ns, 'planbinding/b-burst')).status?.boundKeys === 20,
      60_000,
    );
    const after = await values();
    expect(burst(after)).toHaveLength(20);
    for (const [name, data] of before) expect(after.get(name), name).toBe(data);
  });

  it("keeps a broken key's status and records no Event for it when the operator restarts", async () => {
    const ctx = groundContext();
    await apply(ns, key('broken', { valueFrom: 'Secret', secretRef: { name: 'never-made' } }));
    await until('broken reports SecretNotFound', async () => {
      const k = await get(ns, 'apikey/broken');
      return ready(k)?.reason === 'SecretNotFound';
    });
    const brokenEvents = async (): Promise<string[]> =>
      (
        await kubectl([
          '-n',
          ns,
          'get',
          'events',
          '--field-selector',
          'involvedObject.name=broken,involvedObject.kind=ApiKey',
          '-o',
          'jsonpath={range .items[*]}{.reason}{"\\n"}{end}',
        ])
      )
        .split('\n')
        .filter(Boolean);
    const eventsBefore = await brokenEvents();
    // Every status the key has from now on, as the API server announces them.
    const g = ground();
    const watch = spawn(
      g.kubectl,
      ['-n', ns, 'get', 'apikey/broken', '--watch', '-o', 'jsonpath={.status.conditions[0].reason}{"\\n"}'],
      { env: { ...process.env, KUBECONFIG: g.kubeconfig }, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let seen = '';
    watch.stdout.setEncoding('utf8').on('data', (chunk: string) => (seen += chunk));
    try {
      const record = ctx.procs.running('operator');
      if (!record) throw new Error('the operator is not running');
      process.kill(record.pid, 'SIGKILL');
      await waitFor('the operator to die', () => !ctx.procs.running('operator'), 5_000, 50);
      const op = {
        name: 'operator',
        healthPort: ctx.ports.operator,
        kubeconfig: join(ctx.stateDir, 'operator.kubeconfig'),
      };
      startOperatorProcess(ctx, op);
      await operatorReady(ctx, op);
      // The restarted operator has reconciled the namespace: a key applied now gets Ready.
      await apply(ns, key('after-restart'));
      await until('after-restart Ready', async () => {
        return ready(await get(ns, 'apikey/after-restart'))?.reason === 'KeyReady';
      });
      await until('broken reconciled again', async () => {
        const k = await get(ns, 'apikey/broken');
        return ready(k)?.reason === 'SecretNotFound';
      });
    } finally {
      watch.kill();
    }
    expect(seen.split('\n').filter(Boolean)).not.toContain('KeyNotReady');
    expect(await brokenEvents()).toEqual(eventsBefore);
  });

  it.runIf(ground().localControlPlane)(
    'converges after the API server restarts mid-reconcile (local control plane only: it restarts the API server)',
    async () => {
      const ctx = groundContext();
      for (let i = 0; i < 10; i++) await apply(ns, key(`restart-${i}`, {}, { restart: 'yes' }));
      await apply(
        ns,
        binding('b-restart', 'gold', { selector: { matchLabels: { restart: 'yes' } } }, [
          { api: 'restart', stage: 'x' },
        ]),
      );
      await ctx.procs.stop('kube-apiserver');
      const cp = startApiserver(ctx);
      await apiserverReady(ctx, cp);
      await until(
        'the restart binding Ready with 10 keys',
        async () => (await get(ns, 'planbinding/b-restart')).status?.boundKeys === 10,
        90_000,
      );
      expect((await stage(ns, 'restart', 'x')).keys).toHaveLength(10);
    },
  );

  it('never lets two replicas both reconcile: one holds the Lease, the other waits', async () => {
    const ctx = groundContext();
    const second = {
      name: 'operator-2',
      healthPort: ctx.ports.operator + 1,
      kubeconfig: join(ctx.stateDir, 'operator.kubeconfig'),
    };
    startOperatorProcess(ctx, second);
    try {
      await operatorReady(ctx, second);
      const leaderGauge = async (port: number): Promise<number> => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return Number(/^keystile_operator_leader (\d+)/m.exec(text)?.[1] ?? 'NaN');
      };
      const lease = await kubectlJson<{ spec: { holderIdentity: string } }>([
        '-n',
        SYSTEM_NAMESPACE,
        'get',
        'lease',
        'keystile-operator',
      ]);
      expect(lease.spec.holderIdentity).toBe('operator');
      expect(await leaderGauge(ctx.ports.operator)).toBe(1);
      expect(await leaderGauge(second.healthPort)).toBe(0);
      // The follower writes nothing even while resources change.
      await apply(ns, key('while-two-run'));
      await until(
        'the new key Ready',
        async () => ready(await get(ns, 'apikey/while-two-run'))?.reason === 'KeyReady',
      );
      const text = await (await fetch(`http://127.0.0.1:${second.healthPort}/metrics`)).text();
      expect(text).not.toMatch(/^keystile_operator_writes_total\{/m);
      expect(text).not.toMatch(/^keystile_operator_reconciles_total\{/m);
    } finally {
      await ctx.procs.stop('operator-2');
    }
  });

  it('never puts a key value in a ConfigMap, an Event, a status or a log line', async () => {
    const secrets = await kubectlJson<{ items: Obj[] }>([
      'get',
      'secrets',
      '-A',
      '-l',
      'keystile.dev/key-material=true',
    ]);
    const values = secrets.items.flatMap((s) =>
      ['value', 'secretKey']
        .map((k) => s.data?.[k])
        .filter((v): v is string => v !== undefined)
        .map(b64),
    );
    expect(values.length).toBeGreaterThan(20);
    const haystacks = [
      await kubectl(['get', 'configmaps', '-A', '-o', 'json']),
      await kubectl(['get', 'events', '-A', '-o', 'json']),
      await kubectl(['get', 'apikeys,usageplans,planbindings', '-A', '-o', 'json']),
      readFileSync(join(ground().stateDir, 'logs', 'operator.log'), 'utf8'),
    ];
    for (const v of values)
      for (const h of haystacks) expect(h.includes(v), 'a key value leaked').toBe(false);
  });
});

describe('a stage the API server will not store', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await createNamespace('operator-big');
  });
  afterAll(async () => {
    await kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  it("(an index over the 1 MiB object limit) holds back neither the namespace's other stages nor its statuses, and its bindings say why", async () => {
    // 16 plans of about 90 kB each (every answer at its largest), all on the stage big/x.
    const bigPlan = (i: number) =>
      plan(`big-${i}`, {
        routes: Array.from({ length: 64 }, (_, r) => ({ path: `/r${r}/${'p'.repeat(190)}` })),
        responses: ['Forbidden', 'Throttled', 'QuotaExceeded'].map((type) => ({
          type,
          status: 429,
          body: 'b'.repeat(4096),
          headers: Object.fromEntries(Array.from({ length: 16 }, (_, h) => [`x-h${h}`, 'v'.repeat(1000)])),
        })),
      });
    const big = Array.from({ length: 16 }, (_, i) => i);
    await kubectl(
      ['-n', ns, 'apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: big.flatMap((i) => [
          bigPlan(i),
          key(`big-${i}`),
          binding(`big-${i}`, `big-${i}`, { names: [`big-${i}`] }, [{ api: 'big', stage: 'x' }]),
        ]),
      }),
    );
    // The big keys have their values, so the namespace has been reconciled (and the big stage refused).
    // A render made while the objects were still arriving may have stored a smaller big stage; never the
    // whole of it.
    const bigPlansStored = async (): Promise<number> =>
      (await exists(ns, 'configmap/keystile-big.x')) ? (await stage(ns, 'big', 'x')).index.plans.length : 0;
    await until('the big keys given values', async () =>
      (await Promise.all(big.map((i) => exists(ns, `secret/keystile-key-big-${i}`)))).every(Boolean),
    );

    // A small stage added after it: rendered, and its key and binding get their statuses.
    await apply(ns, plan('small'));
    await apply(ns, key('small-key'));
    await apply(ns, binding('small', 'small', { names: ['small-key'] }, [{ api: 'ok', stage: 'x' }]));
    await until('the small stage rendered', () => exists(ns, 'configmap/keystile-ok.x'));
    expect((await stage(ns, 'ok', 'x')).keys.map((k) => k.name)).toEqual(['small-key']);
    await until('the small key and binding Ready', async () => {
      const k = ready(await get(ns, 'apikey/small-key'));
      const b = ready(await get(ns, 'planbinding/small'));
      return k?.status === 'True' && b?.status === 'True';
    });
    // The whole big stage is still refused, and each of its bindings says why.
    expect(await bigPlansStored()).toBeLessThan(big.length);
    await until('the big bindings reporting their stage', async () =>
      (await Promise.all(big.map(async (i) => ready(await get(ns, `planbinding/big-${i}`))?.reason))).every(
        (r) => r === 'StageNotWritten',
      ),
    );
    expect(ready(await get(ns, 'planbinding/big-0'))).toMatchObject({
      status: 'False',
      message: expect.stringMatching(
        /^the config of big\/x could not be written \(.*Too long: may not be more than 1048576 bytes.*\): its enforcers keep the previous one$/,
      ) as string,
    });

    // A key disabled on the big stage: its status keeps describing what that stage's enforcers have
    // (the key accepted), not the config they never got. A key disabled on the small stage after it
    // shows the namespace reconciled meanwhile.
    const before = await get(ns, 'apikey/big-0');
    await kubectl(['-n', ns, 'patch', 'apikey/big-0', '--type=merge', '-p', '{"spec":{"enabled":false}}']);
    await kubectl([
      '-n',
      ns,
      'patch',
      'apikey/small-key',
      '--type=merge',
      '-p',
      '{"spec":{"enabled":false}}',
    ]);
    await until(
      'the small key Disabled',
      async () => ready(await get(ns, 'apikey/small-key'))?.reason === 'Disabled',
    );
    const after = (await get(ns, 'apikey/big-0')) as Obj & { status?: { observedGeneration?: number } };
    expect(ready(after)?.reason).toBe(ready(before)?.reason);
    expect(after.status?.observedGeneration).toBe(
      (before as Obj & { status?: { observedGeneration?: number } }).status?.observedGeneration,
    );
  });
});
