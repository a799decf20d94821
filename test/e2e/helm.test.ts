// The Helm chart on the real control plane: every value set passes a server-side dry run; `helm install`
// (no --wait: no kubelet runs here, so no pod starts) makes the chart's objects; what its pods would run
// is run out of cluster with the chart's identities and the chart's own settings, read back from the
// release's manifest: the operator as the chart's ServiceAccount (a TokenRequest token) reconciling the
// examples, and the gateway's enforcer and Envoy deciding requests; then `helm upgrade` and
// `helm uninstall`.
//
// The local system's operator watches every namespace, so it reconciles this suite's namespace too. The
// suite stops nothing: the chart's operator watches only its own namespace (operator.watchNamespaces) and
// holds a Lease of its own (<release namespace>/<fullname>-operator), and its own metrics show that it
// rendered that namespace: keystile_operator_leader 1 and keystile_operator_rendered_keys{namespace}.
import { execFile } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHART_DIR } from '../../charts/generate.ts';
import { ENFORCER_MAIN, freePort } from '../../enforcer/src/launch.ts';
import { waitReady } from '../ground/context.ts';
import { createNamespace, ground, kubectl, kubectlJson } from '../ground/harness.ts';
import { get } from '../ground/http-probe.ts';
import { operatorReady, serviceAccountKubeconfig, startOperatorProcess } from '../ground/keystile.ts';
import { groundContext } from '../ground/local-system.ts';
import { groundVersions, repoRoot } from '../ground/paths.ts';
import { untilDecided, waitFor } from '../ground/wait.ts';

const execFileAsync = promisify(execFile);

/** A Kubernetes object as the release's manifest holds it. */
interface Obj {
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  volumeMounts?: { name: string; mountPath: string }[];
}

interface PodSpec {
  serviceAccountName: string;
  containers: Container[];
  volumes?: { name: string; configMap?: { name: string }; emptyDir?: unknown }[];
}

/** Runs helm against the test cluster, as a user would; rejects with helm's stderr. */
async function helm(args: readonly string[]): Promise<string> {
  const g = ground();
  try {
    const { stdout, stderr } = await execFileAsync(g.helm, args, {
      env: { ...process.env, KUBECONFIG: g.kubeconfig },
      maxBuffer: 64 << 20,
    });
    return `${stdout}${stderr}`;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`helm ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

const objects = (text: string): Obj[] =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);

const find = (objs: readonly Obj[], kind: string, name: string): Obj => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`the manifest has no ${kind} ${name}`);
  return o;
};

const podSpec = (deployment: Obj): PodSpec =>
  (deployment.spec as { template: { spec: PodSpec } }).template.spec;

const containerOf = (deployment: Obj, name: string): Container => {
  const c = podSpec(deployment).containers.find((x) => x.name === name);
  if (!c) throw new Error(`${deployment.metadata.name} has no container ${name}`);
  return c;
};

/**
 * A container's environment as the kubelet would give it: the pod's name and namespace from the
 * downward API, `$(VAR)` expanded. Any other reference fails the test (it would need this suite's care).
 */
function environment(c: Container, pod: { name: string; namespace: string }): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    let value = e.value ?? '';
    const path = e.valueFrom?.fieldRef?.fieldPath;
    if (path === 'metadata.name') value = pod.name;
    else if (path === 'metadata.namespace') value = pod.namespace;
    else if (e.valueFrom)
      throw new Error(`${c.name}: ${e.name} comes from a reference this suite does not resolve`);
    env[e.name] = value.replace(/\$\((\w+)\)/g, (whole, name: string) => env[name] ?? whole);
  }
  return env;
}

/** Rewrites a container's paths under its volume mounts to local directories (a volume is a folder). */
function localPaths(c: Container, dirs: ReadonlyMap<string, string>): (text: string) => string {
  const mounts = (c.volumeMounts ?? []).map((m) => {
    const dir = dirs.get(m.name);
    if (dir === undefined) throw new Error(`${c.name}: no local folder for the volume ${m.name}`);
    return [m.mountPath, dir] as const;
  });
  return (text) => {
    for (const [mountPath, dir] of mounts) {
      if (text === mountPath || text.startsWith(`${mountPath}/`)) return dir + text.slice(mountPath.length);
    }
    return text;
  };
}

/** Where `bash test/ground/install.sh promcrds` put the prometheus-operator CRDs. */
function prometheusOperatorCrds(): string {
  const out = execFileSync('bash', [join(repoRoot, 'test/ground/install.sh'), 'paths'], { encoding: 'utf8' });
  const dir = /^PROMETHEUS_OPERATOR_CRDS=(.+)$/m.exec(out)?.[1];
  if (dir === undefined || !existsSync(dir)) {
    throw new Error(
      `no prometheus-operator CRDs at ${dir ?? '?'}: run 'bash test/ground/install.sh promcrds'`,
    );
  }
  return dir;
}

const metric = (text: string, pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? 'NaN');

describe('the Helm chart on the control plane', () => {
  const ctx = groundContext();
  const kubeVersion = groundVersions()['KUBE_VERSION'] ?? '';
  let ns: string;
  let release: string;
  let dir: string;
  const started: string[] = [];
  const ports = { envoy: 0, envoyAdmin: 0, http: 0, grpc: 0, admin: 0, operatorHealth: 0 };
  let manifest: Obj[] = [];

  beforeAll(async () => {
    ns = await createNamespace('helm');
    release = `keystile-${ground().runId}`;
    dir = mkdtempSync(join(tmpdir(), 'keystile-helm-'));
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
    // The ServiceMonitor and PrometheusRule kinds: prometheus-operator's own CRDs (cluster-wide; left
    // installed, like Keystile's: applying them again is a no-op).
    const crds = prometheusOperatorCrds();
    await kubectl([
      'apply',
      '--server-side',
      '-f',
      join(crds, 'monitoring.coreos.com_servicemonitors.yaml'),
      '-f',
      join(crds, 'monitoring.coreos.com_prometheusrules.yaml'),
    ]);
    await kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/servicemonitors.monitoring.coreos.com',
      'crd/prometheusrules.monitoring.coreos.com',
    ]);
  });

  afterAll(async () => {
    for (const name of started) await ctx.procs.stop(name);
    await helm(['uninstall', release, '-n', ns]).catch(() => undefined);
    await kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  it.each([
    ['default', []],
    ['gateway', []],
    ['redis', []],
    ['monitoring', []],
    // The counters' PersistentVolumeClaim and the Recreate strategy.
    ['gateway', ['--set', 'counters.persistence.enabled=true']],
  ])(
    'renders ci/%s-values.yaml %j into objects the API server accepts (server-side dry run)',
    async (set, flags: string[]) => {
      const rendered = await helm([
        'template',
        release,
        CHART_DIR,
        '--namespace',
        ns,
        '--kube-version',
        kubeVersion,
        '-f',
        join(CHART_DIR, 'ci', `${set}-values.yaml`),
        // The gateway set names the namespace `shop`; here, the suite's own.
        ...(set === 'gateway'
          ? ['--set', `gateway.watchNamespace=${ns}`, '--set', `gateway.upstream.namespace=${ns}`]
          : []),
        ...flags,
      ]);
      const out = await kubectl(['apply', '--dry-run=server', '-n', ns, '-f', '-'], rendered);
      const kinds = objects(rendered).length;
      expect(out.trim().split('\n')).toHaveLength(kinds);
      expect(out).toMatch(/\(server dry run\)/);
    },
  );

  it('installs (no --wait), skipping the CRDs the cluster already has and leaving them untouched', async () => {
    const values = {
      operator: { watchNamespaces: [ns] },
      gateway: {
        enabled: true,
        stages: [{ api: 'orders', stage: 'prod', port: ports.envoy }],
        upstream: { host: '127.0.0.1', port: Number(new URL(ground().upstreamUrl).port) },
        enforcer: { ports: { http: ports.http, grpc: ports.grpc, admin: ports.admin } },
        envoy: { adminPort: ports.envoyAdmin, concurrency: 1 },
        maxShards: 8,
      },
      monitoring: {
        serviceMonitor: { enabled: true },
        prometheusRule: { enabled: true },
        dashboards: { enabled: true },
      },
    };
    const valuesFile = join(dir, 'values.json');
    writeFileSync(valuesFile, JSON.stringify(values));
    const out = await helm(['install', release, CHART_DIR, '--namespace', ns, '-f', valuesFile]);
    expect(out).toMatch(/STATUS: deployed/);
    expect(out).toMatch(/Counters: memory/); // NOTES.txt
    manifest = objects(await helm(['get', 'manifest', release, '-n', ns]));
    // Helm leaves existing CRDs out of the release: not in its manifest, not annotated, never written by it
    // (no field of theirs is managed by helm; the local system applies them, server-side, as `kubectl`).
    expect(manifest.filter((o) => o.kind === 'CustomResourceDefinition')).toEqual([]);
    for (const name of ['apikeys', 'usageplans', 'planbindings', 'usageadjustments']) {
      const crd = await kubectlJson<Obj & { metadata: { managedFields?: { manager: string }[] } }>([
        'get',
        'crd',
        `${name}.keystile.dev`,
        '--show-managed-fields',
      ]);
      expect(crd.metadata.annotations?.['meta.helm.sh/release-name']).toBeUndefined();
      expect(crd.metadata.managedFields?.map((f) => f.manager)).not.toContain('helm');
    }
    // Every object of the release exists.
    for (const o of manifest) {
      const where = o.metadata.namespace ? ['-n', o.metadata.namespace] : [];
      const name = (await kubectl([...where, 'get', `${o.kind}/${o.metadata.name}`, '-o', 'name'])).trim();
      expect(name.toLowerCase()).toContain(o.metadata.name);
    }
    // operator.watchNamespaces lists the namespace: the operator's rules are a Role there, none cluster-wide.
    expect(manifest.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')).toEqual([]);
    expect(
      manifest
        .filter((o) => o.kind === 'Role' && o.metadata.name === `${release}-operator`)
        .map((o) => o.metadata.namespace),
    ).toEqual([ns]);
    expect(manifest.map((o) => o.kind).sort()).toEqual(
      expect.arrayContaining([
        'ConfigMap',
        'Deployment',
        'NetworkPolicy',
        'PrometheusRule',
        'Role',
        'RoleBinding',
        'Service',
        'ServiceAccount',
        'ServiceMonitor',
      ]),
    );
    // The test hook is the release's too (it runs only where pods do: `helm test`).
    expect(await helm(['get', 'hooks', release, '-n', ns])).toMatch(/helm.sh\/hook: test/);
  });

  it("runs the chart's operator, as the chart's ServiceAccount with the Deployment's settings, and it reconciles the examples", async () => {
    const deployment = find(manifest, 'Deployment', `${release}-operator`);
    const op = containerOf(deployment, 'operator');
    // startOperatorProcess runs `node operator/src/main.ts` with an environment: the chart configures it
    // only through the environment, which this reads back whole.
    expect(op.args ?? []).toEqual([]);
    const name = `helm-operator-${ground().runId}`;
    const kubeconfig = serviceAccountKubeconfig(
      ctx,
      ground().kubeconfig,
      ns,
      podSpec(deployment).serviceAccountName,
      join(dir, 'operator.kubeconfig'),
    );
    const env = environment(op, { name, namespace: ns });
    expect(env['KEYSTILE_NAMESPACES']).toBe(ns);
    // A pod has a network namespace of its own; here the health port must be a free one on loopback.
    const p = {
      name,
      healthPort: ports.operatorHealth,
      kubeconfig,
      env: { ...env, KEYSTILE_HEALTH_HOST: '127.0.0.1', KEYSTILE_HEALTH_PORT: String(ports.operatorHealth) },
    };
    startOperatorProcess(ctx, p);
    started.push(name);
    await operatorReady(ctx, p);

    for (const d of ['examples/aws-style', 'examples/tencent-style'])
      await kubectl(['-n', ns, 'apply', '-f', join(repoRoot, d)]);
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', '--timeout=60s', 'planbindings', '--all']);
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', '--timeout=60s', 'apikeys', '--all']);
    const indexes = (
      await kubectlJson<{ items: Obj[] }>(['-n', ns, 'get', 'configmaps', '-l', 'keystile.dev/role=index'])
    ).items;
    expect(indexes.map((c) => c.metadata.name).sort()).toEqual([
      'keystile-orders.beta',
      'keystile-orders.prod',
      'keystile-payments.prepub',
      'keystile-payments.release',
      'keystile-payments.test',
    ]);
    const keyCount = indexes.reduce(
      (n, c) => n + (JSON.parse(c.data?.['index.json'] ?? '{}') as { keyCount: number }).keyCount,
      0,
    );

    // It holds its own Lease, and its own metrics say it rendered the namespace's keys.
    const leaseName = env['KEYSTILE_LEASE_NAME'] ?? '';
    expect(leaseName).toBe(`${release}-operator`);
    await waitFor(
      'the Lease held by the chart operator',
      async () =>
        (await kubectlJson<{ spec: { holderIdentity?: string } }>(['-n', ns, 'get', 'lease', leaseName])).spec
          .holderIdentity === name,
      30_000,
      200,
    );
    await waitFor(
      'the chart operator rendering the namespace',
      async () => {
        const text = (await get(`http://127.0.0.1:${ports.operatorHealth}/metrics`)).body;
        return (
          metric(text, /^keystile_operator_leader (\d+)$/m) === 1 &&
          metric(text, new RegExp(`^keystile_operator_rendered_keys\\{namespace="${ns}"\\} (\\d+)$`, 'm')) ===
            keyCount &&
          metric(text, /^keystile_operator_reconciles_total\{kind="namespace",result="ok"\} (\d+)$/m) > 0
        );
      },
      30_000,
      200,
    );
  });

  it("runs the gateway's enforcer and Envoy, as the gateway's ServiceAccount with the Deployment's settings, and they decide", async () => {
    const deployment = find(manifest, 'Deployment', `${release}-gateway`);
    const spec = podSpec(deployment);
    // Each volume a local folder: the Envoy ConfigMap's files written into its own.
    const dirs = new Map<string, string>();
    for (const v of spec.volumes ?? []) {
      const local = join(dir, 'volumes', v.name);
      mkdirSync(local, { recursive: true });
      if (v.configMap) {
        for (const [file, text] of Object.entries(find(manifest, 'ConfigMap', v.configMap.name).data ?? {}))
          writeFileSync(join(local, file), text);
      }
      dirs.set(v.name, local);
    }
    const kubeconfig = serviceAccountKubeconfig(
      ctx,
      ground().kubeconfig,
      ns,
      spec.serviceAccountName,
      join(dir, 'gateway.kubeconfig'),
    );

    const enforcer = containerOf(deployment, 'enforcer');
    const enforcerPaths = localPaths(enforcer, dirs);
    const enforcerName = `helm-enforcer-${ground().runId}`;
    const env = Object.fromEntries(
      Object.entries(environment(enforcer, { name: enforcerName, namespace: ns })).map(([k, v]) => [
        k,
        enforcerPaths(v),
      ]),
    );
    ctx.procs.start({
      name: enforcerName,
      command: process.execPath,
      args: [ENFORCER_MAIN, ...(enforcer.args ?? []).map(enforcerPaths)],
      env: { ...process.env, ...env, KUBECONFIG: kubeconfig },
    });
    started.push(enforcerName);
    await waitReady(
      ctx,
      enforcerName,
      async () => (await get(`http://127.0.0.1:${ports.admin}/readyz`)).status === 200,
    );

    const envoy = containerOf(deployment, 'envoy');
    expect(envoy.command).toEqual(['envoy']);
    const envoyPaths = localPaths(envoy, dirs);
    const envoyName = `helm-envoy-${ground().runId}`;
    ctx.procs.start({
      name: envoyName,
      command: ctx.bins.envoy,
      args: (envoy.args ?? []).map(envoyPaths),
    });
    started.push(envoyName);
    await waitReady(
      ctx,
      envoyName,
      async () => (await get(`http://127.0.0.1:${ports.envoyAdmin}/ready`)).status === 200,
    );

    const url = `http://127.0.0.1:${ports.envoy}/v1/orders`;
    await untilDecided(url, () =>
      [enforcerName, envoyName].map((n) => `${n}:\n${ctx.procs.tail(n)}`).join('\n'),
    );
    expect((await fetch(url)).status).toBe(403);
    const key = Buffer.from(
      await kubectl(['-n', ns, 'get', 'secret', 'keystile-key-acme-prod', '-o', 'jsonpath={.data.value}']),
      'base64',
    ).toString();
    const keyId = (
      await kubectl(['-n', ns, 'get', 'apikey', 'acme-prod', '-o', 'jsonpath={.status.keyId}'])
    ).trim();
    const res = await fetch(url, { headers: { 'x-api-key': key } });
    expect(res.status).toBe(200);
    const seen = (await res.json()) as { headers: Record<string, string> };
    expect(seen.headers['x-keystile-key-id']).toBe(keyId);
    expect(seen.headers['x-keystile-plan']).toBe('gold');
    expect(JSON.stringify(seen.headers)).not.toContain(key);
    // Its identity reads the stage's rendered objects by name, and nothing else: not a key Secret.
    await expect(
      kubectl(['--kubeconfig', kubeconfig, '-n', ns, 'get', 'secret', 'keystile-key-acme-prod']),
    ).rejects.toThrow(/forbidden/);
  });

  it('upgrades: changed values change the Deployment; the CRDs are applied first, server-side', async () => {
    const before = await kubectlJson<Obj>(['-n', ns, 'get', 'deployment', `${release}-operator`]);
    // The documented upgrade: Helm never upgrades crds/, so they are applied first (here a dry run: the
    // shared cluster's CRDs belong to the local system).
    const crds = await kubectl([
      'apply',
      '--server-side',
      '--force-conflicts',
      '--dry-run=server',
      '-f',
      join(CHART_DIR, 'crds'),
    ]);
    expect(crds).toMatch(
      /customresourcedefinition.apiextensions.k8s.io\/apikeys.keystile.dev serverside-applied/,
    );
    const out = await helm([
      'upgrade',
      release,
      CHART_DIR,
      '--namespace',
      ns,
      '--reuse-values',
      '--set',
      'operator.replicas=3',
      '--set',
      'operator.logLevel=debug',
    ]);
    expect(out).toMatch(/REVISION: 2/);
    const after = await kubectlJson<Obj>(['-n', ns, 'get', 'deployment', `${release}-operator`]);
    expect(after.spec?.['replicas']).toBe(3);
    expect(after.metadata.generation).toBeGreaterThan(before.metadata.generation ?? 0);
    const env = (after.spec as { template: { spec: PodSpec } }).template.spec.containers[0]?.env ?? [];
    expect(env.find((e) => e.name === 'KEYSTILE_LOG_LEVEL')?.value).toBe('debug');
  });

  it("uninstalls: the chart's objects go; the CRDs, ApiKeys and key Secrets stay", async () => {
    for (const name of started.splice(0)) await ctx.procs.stop(name);
    await helm(['uninstall', release, '--namespace', ns]);
    for (const o of manifest) {
      const where = o.metadata.namespace ? ['-n', o.metadata.namespace] : [];
      const left = await kubectl([
        ...where,
        'get',
        `${o.kind}/${o.metadata.name}`,
        '--ignore-not-found',
        '-o',
        'name',
      ]);
      expect(left.trim(), `${o.kind}/${o.metadata.name}`).toBe('');
    }
    await kubectl([
      'get',
      'crd',
      'apikeys.keystile.dev',
      'usageplans.keystile.dev',
      'planbindings.keystile.dev',
    ]);
    const kept = await kubectl(['-n', ns, 'get', 'apikeys,usageplans,planbindings,secrets', '-o', 'name']);
    for (const name of [
      'apikey.keystile.dev/acme-prod',
      'usageplan.keystile.dev/gold',
      'planbinding.keystile.dev/gold-orders',
      'secret/keystile-key-acme-prod',
    ])
      expect(kept).toContain(name);
  });
});
