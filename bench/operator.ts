// Operator targets (issue 5), measured on the local system's real control plane with its operator, compiled as its image runs it
// (as its ServiceAccount). Run with `npm run bench -- operator` after `npm start`; nothing here is a test.
//   1. 10,000 ApiKeys, 100 UsagePlans and 100 PlanBindings in one namespace converge (all rendered, all
//      Ready): the time, and the operator's peak resident memory.
//   2. A key disabled shows in the rendered keys shard: the median and worst of 20 changes.
//   3. One more key added to a stage of 10,000 keys: what is rewritten, in objects and bytes, and how long.
//   4. What a render costs in memory (no cluster; `node bench/operator.ts --render-only` runs only this):
//      a full render, and the operator's incremental render after one key changed, at 1,000 and 10,000
//      keys. The second should stay nearly flat: its work is that of the key that changed.
// Phase 1 also says where the time went: the operator's writes by kind, its renders, the CPU of the
// operator, the API server and etcd, and the API server's requests and 429s.
// The test etcd runs with --unsafe-no-fsync (test/ground/controlplane.ts): writes are faster than on a
// durable etcd. The machine's load average is printed beside the figures: other work on it slows them.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import {
  CustomObjectsApi,
  CoreV1Api,
  type Informer,
  KubeConfig,
  type KubernetesObject,
  makeInformer,
  type ObjectCache,
} from '@kubernetes/client-node';
import { objectNames } from '../contract/src/identity.ts';
import type { ApiKey, PlanBinding, UsagePlan } from '../crds/src/index.ts';
import { forEachLimit } from '../operator/src/controllers/pool.ts';
import { reuseConnections } from '../operator/src/kube/clients.ts';
import { IncrementalRenderer } from '../operator/src/render/incremental.ts';
import { render } from '../operator/src/render/render.ts';
import type { KeyMaterial, RenderInput } from '../operator/src/render/types.ts';
import { operatorReady, startOperatorProcess } from '../test/ground/keystile.ts';
import { groundContext, localOperator, readLocalEnv } from '../test/ground/local-system.ts';
import { buildAsImagesRun } from './built.ts';

const KEYS = Number(process.env['BENCH_KEYS'] ?? 10_000);
const PLANS = 100;
const BINDINGS = 100;
const STAGES = 10;
const group = 'keystile.dev';
const version = 'v1alpha1';

const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/**
 * Phase 4: the cost of rendering one namespace in memory, as phase 1's: `keys` keys over 100 plans and
 * 100 bindings on 10 stages. A full render (the pure renderer), then the operator's incremental renderer
 * after one key is disabled or enabled (median of 200, keys in turn), and after nothing changed.
 */
function renderCost(keys: number): { full: number; incremental: number; unchanged: number } {
  const stamp = '2026-11-01T00:00:00Z';
  const plans: UsagePlan[] = Array.from({ length: PLANS }, (_, i) => ({
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'UsagePlan',
    metadata: { name: `plan-${i}`, namespace: 'bench', uid: `p${i}`, creationTimestamp: stamp },
    spec: { throttle: { rateLimit: 10, burstLimit: 20 }, quota: { limit: 10_000, period: 'MONTH' } },
  }));
  const bindings: PlanBinding[] = Array.from({ length: BINDINGS }, (_, i) => ({
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'PlanBinding',
    metadata: { name: `binding-${i}`, namespace: 'bench', uid: `b${i}`, creationTimestamp: stamp },
    spec: {
      planRef: { name: `plan-${i}` },
      keys: { selector: { matchLabels: { group: String(i) } } },
      apiStages: [{ api: 'bench', stage: `s${i % STAGES}` }],
    },
  }));
  const keyList: ApiKey[] = [];
  const materials = new Map<string, KeyMaterial>();
  for (let i = 0; i < keys; i++) {
    const name = `key-${i}`;
    keyList.push({
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'ApiKey',
      metadata: {
        name,
        namespace: 'bench',
        uid: `k${i}`,
        creationTimestamp: stamp,
        labels: { group: String(i % BINDINGS) },
      },
      spec: { type: 'ApiKey' },
    });
    const id = createHash('sha256').update(name).digest('hex');
    materials.set(name, {
      keyId: id.slice(0, 12),
      hashes: [{ sha256: createHash('sha256').update(id).digest('hex') }],
    });
  }
  const input = (): RenderInput => ({
    namespace: 'bench',
    plans,
    keys: keyList,
    bindings,
    materials,
    now: new Date('2026-11-23T00:00:00Z'),
  });
  const time = (fn: () => void): number => {
    const t = performance.now();
    fn();
    return performance.now() - t;
  };
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const fulls = Array.from({ length: 5 }, () => time(() => render(input())));
  const renderer = new IncrementalRenderer();
  renderer.render(input());
  const incremental: number[] = [];
  for (let i = 0; i < 200; i++) {
    const j = (i * 37) % keys;
    const k = keyList[j];
    if (k) keyList[j] = { ...k, spec: { ...k.spec, enabled: k.spec.enabled === false } };
    incremental.push(time(() => renderer.render(input())));
    if (renderer.stats.mode !== 'incremental' || renderer.stats.changedKeys !== 1)
      throw new Error(`expected an incremental render of one key, got ${JSON.stringify(renderer.stats)}`);
  }
  const unchanged = Array.from({ length: 200 }, () => time(() => renderer.render(input())));
  return { full: median(fulls), incremental: median(incremental), unchanged: median(unchanged) };
}

/** Prints phase 4. */
function printRenderCost(): void {
  console.log(
    `\n4. rendering one namespace in memory (100 plans, 100 bindings, 10 stages); load average ${load()}`,
  );
  console.log('   keys     full render   after one key changed   nothing changed');
  for (const n of [1_000, 10_000]) {
    const c = renderCost(n);
    console.log(
      `   ${String(n).padStart(6)} ${c.full.toFixed(1).padStart(11)} ms ${c.incremental.toFixed(2).padStart(19)} ms ${c.unchanged.toFixed(2).padStart(14)} ms`,
    );
  }
}

if (process.argv.includes('--render-only')) {
  printRenderCost();
  process.exit(0);
}

const env = readLocalEnv();
const kubeconfig = env.get('KUBECONFIG');
if (!kubeconfig) throw new Error('the local system is not running: run `npm start` first');
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
reuseConnections(kc);
const custom = kc.makeApiClient(CustomObjectsApi);
const core = kc.makeApiClient(CoreV1Api);
const ctx = groundContext();
if (!ctx.procs.running('operator')) throw new Error('the operator is not running: run `npm start` first');
// A namespace of an earlier run still being deleted (10,000 keys and their Secrets) would load the API
// server, and the operator measured would start with it in its caches: wait until it is gone.
const terminating = async (): Promise<number> =>
  (await core.listNamespace({ labelSelector: 'keystile.dev/bench=true' })).items.length;
for (let waited = 0; (await terminating()) > 0; waited++) {
  if (waited === 0) console.log('waiting for the namespace of an earlier run to be deleted');
  if (waited > 600) throw new Error('an earlier bench namespace is still there after 10 minutes');
  await new Promise((r) => setTimeout(r, 1000));
}
// The operator measured runs as its image runs it, compiled (bench/built.ts says why): the local system's
// operator, run from its sources, gives way to it (the Lease passes on SIGTERM) and comes back at the end.
const operatorSpec = localOperator(ctx);
const built = buildAsImagesRun();
await ctx.procs.stop('operator');
startOperatorProcess(ctx, { ...operatorSpec, entry: built.operator });
await operatorReady(ctx, operatorSpec);
const operator = ctx.procs.running('operator');
if (!operator) throw new Error('the compiled operator did not start: see .keystile/logs/operator.log');
/** Puts the local system's own operator (from its sources) back. */
const restoreOperator = async (): Promise<void> => {
  await ctx.procs.stop('operator');
  startOperatorProcess(ctx, operatorSpec);
  await operatorReady(ctx, operatorSpec);
};
const operatorUrl = env.get('KEYSTILE_OPERATOR_URL') ?? '';

const apiserver = ctx.procs.running('kube-apiserver');
const etcd = ctx.procs.running('etcd');
const controllerManager = ctx.procs.running('kube-controller-manager');

const rss = (): number =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${operator.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
/** The sum of a metric's series on the operator, leaving out the series whose labels match `except`. */
const metric = async (name: string, except?: RegExp): Promise<number> => {
  const text = await (await fetch(`${operatorUrl}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm'))) {
    if (except !== undefined && except.test(m[1] ?? '')) continue;
    sum += Number(m[2]);
  }
  return sum;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat (clock ticks of 10 ms). */
const cpuSeconds = (pid: number | undefined): number => {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
};
/** Every sample of a Prometheus text exposition, by series (name and labels as printed). */
const scrape = async (url: string): Promise<Map<string, number>> =>
  parseMetrics(await (await fetch(url)).text());
const parseMetrics = (text: string): Map<string, number> => {
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/gm))
    out.set(m[1] ?? '', Number(m[2]));
  return out;
};
/** The API server's own metrics, read with the admin kubeconfig (kubectl get --raw). */
const apiserverMetrics = (): Map<string, number> => {
  try {
    return parseMetrics(
      execFileSync(ctx.bins.kubectl, ['get', '--raw', '/metrics'], {
        encoding: 'utf8',
        env: { ...process.env, KUBECONFIG: kubeconfig },
        maxBuffer: 256 * 1024 * 1024,
      }),
    );
  } catch {
    return new Map();
  }
};
const sumOf = (m: Map<string, number>, name: string, labels: RegExp = /.*/): number => {
  let n = 0;
  for (const [k, v] of m) if ((k === name || k.startsWith(`${name}{`)) && labels.test(k)) n += v;
  return n;
};

/** What the operator, the API server and etcd did between two instants. */
interface Snapshot {
  readonly t: number;
  readonly cpu: { operator: number; apiserver: number; etcd: number; kcm: number; bench: number };
  readonly operator: Map<string, number>;
  readonly apiserver: Map<string, number>;
}
const snapshot = async (): Promise<Snapshot> => ({
  t: performance.now(),
  cpu: {
    operator: cpuSeconds(operator.pid),
    apiserver: cpuSeconds(apiserver?.pid),
    etcd: cpuSeconds(etcd?.pid),
    kcm: cpuSeconds(controllerManager?.pid),
    bench: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6,
  },
  operator: await scrape(`${operatorUrl}/metrics`),
  apiserver: apiserverMetrics(),
});
/** Prints where the time between two snapshots went: writes by kind, renders, CPU by process, 429s. */
const account = (a: Snapshot, b: Snapshot): void => {
  const seconds = (b.t - a.t) / 1000;
  const delta = (m: 'operator' | 'apiserver', name: string, labels?: RegExp): number =>
    sumOf(b[m], name, labels) - sumOf(a[m], name, labels);
  const writes = new Map<string, number>();
  for (const [k, v] of b.operator) {
    if (!k.startsWith('keystile_operator_writes_total{')) continue;
    const d = v - (a.operator.get(k) ?? 0);
    if (d > 0) writes.set(k.slice('keystile_operator_writes_total'.length), d);
  }
  const totalWrites = [...writes.values()].reduce((x, y) => x + y, 0);
  console.log(`   operator writes: ${totalWrites} (${(totalWrites / seconds).toFixed(0)}/s)`);
  for (const [k, v] of [...writes].sort((x, y) => y[1] - x[1]))
    console.log(`     ${v.toString().padStart(7)} ${k}`);
  const heap = (name: string): string =>
    (sumOf(b.operator, `keystile_operator_nodejs_${name}`) / 1e6).toFixed(0);
  console.log(
    `   operator heap at the end: ${heap('heap_size_used_bytes')} MB used of ${heap('heap_size_total_bytes')} MB, ${heap('external_memory_bytes')} MB external; GC ${delta('operator', 'keystile_operator_nodejs_gc_duration_seconds_sum').toFixed(1)} s`,
  );
  const mb = delta('operator', 'keystile_operator_rendered_bytes_written_total') / 1e6;
  console.log(`   rendered bytes written: ${mb.toFixed(1)} MB`);
  const nsRenders = delta('operator', 'keystile_operator_reconciles_total', /kind="namespace"/);
  const nsSeconds = delta('operator', 'keystile_operator_reconcile_duration_seconds_sum', /kind="namespace"/);
  const keyRuns = delta('operator', 'keystile_operator_reconciles_total', /kind="key"/);
  const keySeconds = delta('operator', 'keystile_operator_reconcile_duration_seconds_sum', /kind="key"/);
  const renderSeconds = delta('operator', 'keystile_operator_render_duration_seconds_sum');
  const renders = delta('operator', 'keystile_operator_render_duration_seconds_count');
  console.log(
    `   namespace reconciles: ${nsRenders} (${nsSeconds.toFixed(1)} s in them${renders > 0 ? `; ${renders} renders, ${renderSeconds.toFixed(1)} s rendering` : ''}); key reconciles: ${keyRuns} (${keySeconds.toFixed(1)} s)`,
  );
  const cpu = (k: keyof Snapshot['cpu']): string =>
    `${(b.cpu[k] - a.cpu[k]).toFixed(1)} s (${((100 * (b.cpu[k] - a.cpu[k])) / seconds).toFixed(0)} %)`;
  console.log(
    `   CPU over ${seconds.toFixed(1)} s: operator ${cpu('operator')}, kube-apiserver ${cpu('apiserver')}, etcd ${cpu('etcd')}, kube-controller-manager ${cpu('kcm')}, this benchmark ${cpu('bench')}`,
  );
  const requests = delta('apiserver', 'apiserver_request_total');
  const throttled = delta('apiserver', 'apiserver_request_total', /code="429"/);
  const rejected = delta('apiserver', 'apiserver_flowcontrol_rejected_requests_total');
  console.log(
    `   API server: ${requests} requests, ${throttled} answered 429 (${rejected} rejected by API Priority and Fairness)`,
  );
  const byKind = new Map<string, number>();
  for (const [k, v] of b.apiserver) {
    if (!k.startsWith('apiserver_request_total{')) continue;
    const label = (l: string): string => new RegExp(`${l}="([^"]*)"`).exec(k)?.[1] ?? '';
    const kind = `${label('verb')} ${label('resource')}${label('subresource') ? `/${label('subresource')}` : ''}`;
    byKind.set(kind, (byKind.get(kind) ?? 0) + v - (a.apiserver.get(k) ?? 0));
  }
  console.log(
    `     ${[...byKind]
      .filter(([, v]) => v >= 50)
      .sort((x, y) => y[1] - x[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
};

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
    async (i) => {
      await create(plural, kind, make(i));
      if (kind === 'ApiKey') keysCreated++;
    },
  );
}
await core.createNamespace({ body: { metadata: { name: ns, labels: { 'keystile.dev/bench': 'true' } } } });
console.log(`namespace ${ns}; operator pid ${operator.pid}, ${rss().toFixed(0)} MB resident before`);

let watching = true;
/** Watches a Keystile kind in the bench namespace (restarting the watch if it ends). */
const watch = async (plural: string): Promise<Informer<KubernetesObject> & ObjectCache<KubernetesObject>> => {
  const informer = makeInformer<KubernetesObject>(
    kc,
    `/apis/${group}/${version}/namespaces/${ns}/${plural}`,
    () =>
      custom.listNamespacedCustomObject({ group, version, namespace: ns, plural }) as Promise<{
        items: KubernetesObject[];
      }>,
  );
  informer.on('error', () => {
    if (!watching) return;
    setTimeout(() => void informer.start().catch(() => undefined), 1000);
  });
  await informer.start();
  return informer;
};
const watchedKeys = await watch('apikeys');
const watchedBindings = await watch('planbindings');

// 1. Convergence.
console.log(`load average ${load()}`);
const s0 = await snapshot();
let peak = rss();
const sampler = setInterval(() => (peak = Math.max(peak, rss())), 200);
// BENCH_TRACE=1 prints, every 5 s, how far each step has got: the pipeline's shape over time.
let keysCreated = 0;
const tracer =
  process.env['BENCH_TRACE'] === '1'
    ? setInterval(() => {
        void (async () => {
          const m = await scrape(`${operatorUrl}/metrics`);
          const at = (k: string): number => sumOf(m, 'keystile_operator_writes_total', new RegExp(k));
          const ready = watchedKeys
            .list(ns)
            .filter((k) =>
              (
                k as { status?: { conditions?: { type: string; status: string }[] } }
              ).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
            ).length;
          console.log(
            `   t=${((performance.now() - t0) / 1000).toFixed(0).padStart(3)} s: ${keysCreated} keys created, ${at('resource="secrets",verb="create"') - at0.secrets} key Secrets, ${at('resource="apikeys",verb="status"') - at0.statuses} key statuses, ${ready} Ready; ${sumOf(m, 'keystile_operator_reconciles_total', /kind="namespace"/) - at0.renders} namespace reconciles; queue ${sumOf(m, 'keystile_operator_queue_depth')}; load ${load()}`,
          );
        })();
      }, 5000)
    : undefined;
const at0 = {
  secrets: sumOf(s0.operator, 'keystile_operator_writes_total', /resource="secrets",verb="create"/),
  statuses: sumOf(s0.operator, 'keystile_operator_writes_total', /resource="apikeys",verb="status"/),
  renders: sumOf(s0.operator, 'keystile_operator_reconciles_total', /kind="namespace"/),
};
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

// Convergence is watched (an informer per kind), not polled: listing 10,000 ApiKeys every half second
// would load the API server more than the operator does.
const converged = async (): Promise<boolean> => {
  const ready = (o: { status?: { conditions?: { type: string; status: string }[] } }): boolean =>
    o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  const keys = watchedKeys.list(ns) as {
    status?: { conditions?: { type: string; status: string }[]; plans?: string[] };
  }[];
  if (keys.filter((k) => ready(k) && (k.status?.plans?.length ?? 0) > 0).length < KEYS) return false;
  const bindings = watchedBindings.list(ns) as {
    status?: { conditions?: { type: string; status: string }[] };
  }[];
  if (bindings.length < BINDINGS || !bindings.every(ready)) return false;
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
  await sleep(250);
}
const convergedAt = (performance.now() - t0) / 1000;
clearInterval(sampler);
clearInterval(tracer);
console.log(
  `\n1. ${KEYS} ApiKeys, ${PLANS} UsagePlans, ${BINDINGS} PlanBindings (${STAGES} stages of ${KEYS / STAGES} keys) in one namespace`,
);
console.log(
  `   all created in ${created.toFixed(1)} s; all rendered and Ready ${convergedAt.toFixed(1)} s after the first create (target < 60 s)`,
);
console.log(`   operator peak resident memory ${peak.toFixed(0)} MB (target < 256 MB)`);
account(s0, await snapshot());
console.log(`   load average ${load()}`);

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
// Let the relabelling's work finish (an empty work queue, no render writes for 3 s), so the one key does
// not wait behind it and the counters below see only its writes. ApiKey status writes
// are left out: besides the key's own, they include the usage writer's, which writes each new key's first
// usage at its bounded rate (20 a second: 10,000 keys take minutes) and would never let this settle.
const KEY_STATUS = /resource="apikeys",verb="status"/;
const renderWrites = (): Promise<number> => metric('keystile_operator_writes_total', KEY_STATUS);
let settled = await renderWrites();
for (;;) {
  await sleep(3000);
  const now = await renderWrites();
  if (now === settled && (await metric('keystile_operator_queue_depth')) === 0) break;
  settled = now;
}
const writesBefore = await renderWrites();
const bytesBefore = await metric('keystile_operator_rendered_bytes_written_total');
const t3 = performance.now();
await create('apikeys', 'ApiKey', {
  metadata: { name: 'one-more', labels: { all: 'yes' } },
  spec: {},
});
while ((await allCount()) < KEYS + 1) await sleep(5);
const added = (performance.now() - t3) / 1000;
await sleep(2000);
const writes = (await renderWrites()) - writesBefore;
const bytes = (await metric('keystile_operator_rendered_bytes_written_total')) - bytesBefore;
console.log(
  `\n3. one more key on a stage of ${KEYS}: in the index after ${added.toFixed(2)} s; ${bytes} bytes of rendered data written`,
);
console.log(
  `   ${writes} writes besides ApiKey statuses (its key Secret, the keys and secrets shards it lands in, the index, and the binding's and plan's statuses if their counts show)`,
);

printRenderCost();

console.log(`\ncleaning up namespace ${ns}`);
watching = false;
await watchedKeys.stop();
await watchedBindings.stop();
await core.deleteNamespace({ name: ns });
const t9 = performance.now();
while ((await terminating()) > 0) await sleep(1000);
console.log(`   deleted in ${((performance.now() - t9) / 1000).toFixed(0)} s`);
await restoreOperator();
