// Operator targets (issue 5), measured on the local system's real control plane with the operator it runs
// (as its ServiceAccount). Run with `npm run bench -- operator` after `npm start`; nothing here is a test.
//   1. 10,000 ApiKeys, 100 UsagePlans and 100 PlanBindings in one namespace converge (all rendered, all
//      Ready): the time, and the operator's peak resident memory.
//   2. A key disabled shows in the rendered keys shard: the median and worst of 20 changes.
//   3. One more key added to a stage of 10,000 keys: what is rewritten, in objects and bytes, and how long.
// The test etcd runs with --unsafe-no-fsync (test/ground/controlplane.ts): writes are faster than on a
// durable etcd.
import { readFileSync } from 'node:fs';
import { CustomObjectsApi, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { objectNames } from '../contract/src/identity.ts';
import { forEachLimit } from '../operator/src/controllers/pool.ts';
import { reuseConnections } from '../operator/src/kube/clients.ts';
import { groundContext, readLocalEnv } from '../test/ground/local-system.ts';

const KEYS = Number(process.env['BENCH_KEYS'] ?? 10_000);
const PLANS = 100;
const BINDINGS = 100;
const STAGES = 10;
const group = 'keystile.dev';
const version = 'v1alpha1';

const env = readLocalEnv();
const kubeconfig = env.get('KUBECONFIG');
if (!kubeconfig) throw new Error('the local system is not running: run `npm start` first');
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
reuseConnections(kc);
const custom = kc.makeApiClient(CustomObjectsApi);
const core = kc.makeApiClient(CoreV1Api);
const ctx = groundContext();
const operator = ctx.procs.running('operator');
if (!operator) throw new Error('the operator is not running: run `npm start` first');
const operatorUrl = env.get('KEYSTILE_OPERATOR_URL') ?? '';

const rss = (): number =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${operator.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const metric = async (name: string): Promise<number> => {
  const text = await (await fetch(`${operatorUrl}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const ns = `bench-${Date.now().toString(36)}`;

type Made = { metadata: Record<string, unknown>; spec: Record<string, unknown> };

/** Creates one Keystile resource. */
async function create(plural: string, kind: string, made: Made): Promise<void> {
  await custom.createNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural,
    body: { apiVersion: `${group}/${version}`, kind, ...made },
  });
}

/** Creates `count` Keystile resources of a kind, 32 at a time. */
async function createAll(
  plural: string,
  kind: string,
  count: number,
  make: (i: number) => Made,
): Promise<void> {
  await forEachLimit(
    Array.from({ length: count }, (_, i) => i),
    32,
    (i) => create(plural, kind, make(i)),
  );
}
await core.createNamespace({ body: { metadata: { name: ns, labels: { 'keystile.dev/bench': 'true' } } } });
console.log(`namespace ${ns}; operator pid ${operator.pid}, ${rss().toFixed(0)} MB resident before`);

// 1. Convergence.
let peak = rss();
const sampler = setInterval(() => (peak = Math.max(peak, rss())), 200);
const t0 = performance.now();
await createAll('usageplans', 'UsagePlan', PLANS, (i) => ({
  metadata: { name: `plan-${i}` },
  spec: { throttle: { rateLimit: 10, burstLimit: 20 }, quota: { limit: 10_000, period: 'MONTH' } },
}));
await createAll('planbindings', 'PlanBinding', BINDINGS, (i) => ({
  metadata: { name: `binding-${i}` },
  spec: {
    planRef: { name: `plan-${i}` },
    keys: { selector: { matchLabels: { group: String(i) } } },
    apiStages: [{ api: 'bench', stage: `s${i % STAGES}` }],
  },
}));
await createAll('apikeys', 'ApiKey', KEYS, (i) => ({
  metadata: { name: `key-${i}`, labels: { group: String(i % BINDINGS) } },
  spec: {},
}));
const created = (performance.now() - t0) / 1000;

const converged = async (): Promise<boolean> => {
  const keys = (await custom.listNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural: 'apikeys',
  })) as { items: { status?: { conditions?: { type: string; status: string }[]; plans?: string[] } }[] };
  const readyKeys = keys.items.filter(
    (k) =>
      k.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') &&
      (k.status.plans?.length ?? 0) > 0,
  ).length;
  if (readyKeys < KEYS) return false;
  const bindings = (await custom.listNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural: 'planbindings',
  })) as { items: { status?: { boundKeys?: number; conditions?: { type: string; status: string }[] } }[] };
  if (
    !bindings.items.every((b) => b.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
  )
    return false;
  let rendered = 0;
  for (let s = 0; s < STAGES; s++) {
    try {
      const cm = await core.readNamespacedConfigMap({
        name: objectNames.index({ namespace: ns, api: 'bench', stage: `s${s}` }),
        namespace: ns,
      });
      rendered += (JSON.parse(cm.data?.['index.json'] ?? '{}') as { keyCount?: number }).keyCount ?? 0;
    } catch {
      return false;
    }
  }
  return rendered === KEYS;
};
while (!(await converged())) {
  if (performance.now() - t0 > 600_000) throw new Error('did not converge in 10 minutes');
  await sleep(500);
}
const convergedAt = (performance.now() - t0) / 1000;
clearInterval(sampler);
console.log(
  `\n1. ${KEYS} ApiKeys, ${PLANS} UsagePlans, ${BINDINGS} PlanBindings (${STAGES} stages of ${KEYS / STAGES} keys) in one namespace`,
);
console.log(
  `   all created in ${created.toFixed(1)} s; all rendered and Ready ${convergedAt.toFixed(1)} s after the first create (target < 60 s)`,
);
console.log(`   operator peak resident memory ${peak.toFixed(0)} MB (target < 256 MB)`);

// 2. Disable latency: from the patch to the rendered keys shard saying enabled: false.
const keysShardOf = async (stage: string, name: string): Promise<boolean | undefined> => {
  const index = JSON.parse(
    (
      await core.readNamespacedConfigMap({
        name: objectNames.index({ namespace: ns, api: 'bench', stage }),
        namespace: ns,
      })
    ).data?.['index.json'] ?? '{}',
  ) as { shards: { keys: { name: string } }[] };
  for (const s of index.shards) {
    const shard = JSON.parse(
      (await core.readNamespacedConfigMap({ name: s.keys.name, namespace: ns })).data?.['keys.json'] ?? '{}',
    ) as { keys: { name: string; enabled: boolean }[] };
    const k = shard.keys.find((x) => x.name === name);
    if (k) return k.enabled;
  }
  return undefined;
};
const latencies: number[] = [];
for (let i = 0; i < 20; i++) {
  const name = `key-${(i * 37) % KEYS}`;
  const stage = `s${(((i * 37) % KEYS) % BINDINGS) % STAGES}`;
  const start = performance.now();
  await custom.patchNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural: 'apikeys',
    name,
    body: [{ op: 'replace', path: '/spec/enabled', value: false }],
  });
  while ((await keysShardOf(stage, name)) !== false) await sleep(5);
  latencies.push(performance.now() - start);
}
latencies.sort((a, b) => a - b);
console.log(
  `\n2. a key disabled shows in the rendered keys shard: median ${(latencies[10] ?? 0).toFixed(0)} ms, worst ${(latencies.at(-1) ?? 0).toFixed(0)} ms of 20 (target median < 1 s)`,
);

// 3. One more key on a stage of KEYS keys: a binding putting every key on stage "all", then one more.
await create('usageplans', 'UsagePlan', { metadata: { name: 'all' }, spec: {} });
await create('planbindings', 'PlanBinding', {
  metadata: { name: 'all' },
  spec: {
    planRef: { name: 'all' },
    keys: { selector: { matchLabels: { all: 'yes' } } },
    apiStages: [{ api: 'bench', stage: 'all' }],
  },
});
await forEachLimit(
  Array.from({ length: KEYS }, (_, i) => i),
  32,
  async (i) => {
    await custom.patchNamespacedCustomObject({
      group,
      version,
      namespace: ns,
      plural: 'apikeys',
      name: `key-${i}`,
      body: [{ op: 'add', path: '/metadata/labels/all', value: 'yes' }],
    });
  },
);
const allCount = async (): Promise<number> => {
  try {
    return (
      JSON.parse(
        (
          await core.readNamespacedConfigMap({
            name: objectNames.index({ namespace: ns, api: 'bench', stage: 'all' }),
            namespace: ns,
          })
        ).data?.['index.json'] ?? '{}',
      ) as { keyCount: number }
    ).keyCount;
  } catch {
    return 0;
  }
};
while ((await allCount()) < KEYS) await sleep(200);
// Let the relabelling's status writes finish, so the counters below see only the one key's writes.
let settled = await metric('keystile_operator_writes_total');
for (;;) {
  await sleep(3000);
  const now = await metric('keystile_operator_writes_total');
  if (now === settled) break;
  settled = now;
}
const writesBefore = await metric('keystile_operator_writes_total');
const bytesBefore = await metric('keystile_operator_rendered_bytes_written_total');
const t3 = performance.now();
await create('apikeys', 'ApiKey', {
  metadata: { name: 'one-more', labels: { all: 'yes' } },
  spec: {},
});
while ((await allCount()) < KEYS + 1) await sleep(5);
const added = (performance.now() - t3) / 1000;
await sleep(2000);
const writes = (await metric('keystile_operator_writes_total')) - writesBefore;
const bytes = (await metric('keystile_operator_rendered_bytes_written_total')) - bytesBefore;
console.log(
  `\n3. one more key on a stage of ${KEYS}: in the index after ${added.toFixed(2)} s; ${bytes} bytes of rendered data written`,
);
console.log(
  `   ${writes} writes in all (its key Secret, one keys shard, one secrets shard, the index, and the statuses of the key, its binding and its plan)`,
);

console.log(`\ncleaning up namespace ${ns}`);
await core.deleteNamespace({ name: ns });
