// `keystile inject` against the real control plane. No kubelet runs here, so no pod starts: what the
// injected containers would do is proven by running the same processes out of cluster with exactly the
// injected arguments (the kubelet's `$(POD_NAMESPACE)` expansion applied, each volume a directory):
// the enforcer as the injected ServiceAccount (a TokenRequest token), against the stage the local
// system's operator renders, and Envoy on the injected bootstrap in front of the app. Every golden output
// passes a server-side dry run.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InjectIo, injectCommand } from '../../cli/src/inject-command.ts';
import { enforcerRbac } from '../../enforcer/src/kube/rbac.ts';
import { ENFORCER_MAIN, freePort } from '../../enforcer/src/launch.ts';
import { createNamespace, ground, kubectl, kubectlJson } from '../ground/harness.ts';
import { serviceAccountKubeconfig } from '../ground/keystile.ts';
import { groundContext } from '../ground/local-system.ts';
import { untilDecided, waitFor } from '../ground/wait.ts';

type Json = Record<string, unknown>;
interface Container {
  name: string;
  command?: string[];
  args: string[];
  env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  serviceAccountName?: string;
  containers: Container[];
  volumes?: {
    name: string;
    projected?: { sources: Record<string, { name: string; items: { key: string; path: string }[] }>[] };
  }[];
}

const GOLDEN = join(import.meta.dirname, '../golden/inject');

/** Runs `keystile inject` on `input`; fails the test on anything but success. */
function injectYaml(args: readonly string[], input: string): string {
  let out = '';
  const log: string[] = [];
  const io: InjectIo = {
    readFile: () => {
      throw new Error('no files');
    },
    readStdin: () => input,
    out: (t) => (out += t),
    log: (l) => log.push(l),
  };
  const code = injectCommand(args, io);
  if (code !== 0) throw new Error(`keystile inject exited ${code}: ${log.join('\n')}`);
  return out;
}

/** What the kubelet does to a container's arguments: `$(VAR)` from the container's env, `$$` for `$`. */
function expand(args: readonly string[], env: Readonly<Record<string, string>>): string[] {
  return args.map((a) =>
    a.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v?: string) =>
      v === undefined ? '$' : (env[v] ?? m),
    ),
  );
}

/** The container's environment as the kubelet resolves it (only the downward API's namespace is used). */
function containerEnv(c: Container, namespace: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = namespace;
  }
  return env;
}

/** Replaces each volume's mount path in the arguments with a directory of this machine. */
function mountVolumes(
  args: readonly string[],
  c: Container,
  dirs: Readonly<Record<string, string>>,
): string[] {
  return args.map((a) =>
    (c.volumeMounts ?? []).reduce((s, m) => {
      const dir = dirs[m.name];
      return dir === undefined ? s : s.split(m.mountPath).join(dir);
    }, a),
  );
}

/** A started process, its log kept; stopped at the end. */
const children: ChildProcess[] = [];
function start(
  command: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  log: string,
): ChildProcess {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = createWriteStream(log);
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  children.push(child);
  return child;
}
async function stopAll(): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) {
            resolve();
            return;
          }
          c.on('exit', () => resolve());
          c.kill('SIGTERM');
        }),
    ),
  );
}

async function status(url: string, init: RequestInit = {}): Promise<number> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return res.status;
}

/** The Deployment as the API server stored it: its pod spec. */
async function storedPod(ns: string, name: string): Promise<PodSpec> {
  const d = await kubectlJson<{ spec: { template: { spec: PodSpec } } }>([
    '-n',
    ns,
    'get',
    'deployment',
    name,
  ]);
  return d.spec.template.spec;
}

const container = (pod: PodSpec, name: string): Container => {
  const c = pod.containers.find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name}`);
  return c;
};

describe('keystile inject on the control plane', () => {
  let ns: string;
  let work: string;
  const ctx = groundContext();

  beforeAll(async () => {
    ns = await createNamespace('inject');
    work = mkdtempSync(join(tmpdir(), 'keystile-inject-'));
    const apply = (m: Json): Promise<string> => kubectl(['-n', ns, 'apply', '-f', '-'], JSON.stringify(m));
    await apply({
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'UsagePlan',
      metadata: { name: 'gold' },
      spec: { throttle: { rateLimit: 50, burstLimit: 50 }, quota: { limit: 1000, period: 'DAY' } },
    });
    await apply({
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'ApiKey',
      metadata: { name: 'acme' },
      spec: {},
    });
    await apply({
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'PlanBinding',
      metadata: { name: 'gold' },
      spec: {
        planRef: { name: 'gold' },
        keys: { names: ['acme'] },
        apiStages: [{ api: 'orders', stage: 'prod' }],
      },
    });
    await kubectl([
      '-n',
      ns,
      'wait',
      '--for=condition=Ready',
      '--timeout=60s',
      'planbinding/gold',
      'apikey/acme',
    ]);
  });

  afterAll(async () => {
    await stopAll();
    await kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  const keyValue = async (): Promise<string> =>
    Buffer.from(
      await kubectl(['-n', ns, 'get', 'secret', 'keystile-key-acme', '-o', 'jsonpath={.data.value}']),
      'base64',
    ).toString();

  /** The app: a Deployment whose container port is the local system's echo upstream, and its Service. */
  const app = (): string =>
    [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'orders' },
        spec: {
          selector: { matchLabels: { app: 'orders' } },
          template: {
            metadata: { labels: { app: 'orders' } },
            spec: {
              containers: [
                {
                  name: 'api',
                  image: 'example.com/orders:1',
                  ports: [{ name: 'http', containerPort: ctx.ports.upstream }],
                },
              ],
            },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'orders' },
        spec: { selector: { app: 'orders' }, ports: [{ port: 80, targetPort: 'http' }] },
      },
    ]
      .map((d) => stringify(d))
      .join('---\n');

  it('every golden output passes a server-side dry run', async () => {
    const cases = readdirSync(GOLDEN).filter((f) => f.endsWith('.out.yaml'));
    expect(cases.length).toBeGreaterThanOrEqual(6);
    for (const file of cases) {
      const objects = parseAllDocuments(readFileSync(join(GOLDEN, file), 'utf8'))
        .map((d) => d.toJS() as Json | null)
        .flatMap((o) => (o?.['kind'] === 'List' ? (o['items'] as Json[]) : o ? [o] : []))
        .filter((o) => o['kind'] !== 'Namespace')
        .map((o) => {
          // Into this suite's namespace, whatever the case names.
          const copy = structuredClone(o) as Json & { metadata: Json; subjects?: Json[] };
          copy.metadata = { ...copy.metadata, namespace: ns };
          if (copy.subjects) copy.subjects = copy.subjects.map((s) => ({ ...s, namespace: ns }));
          return copy;
        });
      // A pod names its ServiceAccount, which must exist at admission even in a dry run; and a
      // ServiceAccount of a case's own that no RBAC names (list, StatefulSet's) is created as the user's would be.
      const accounts = new Set(
        objects.flatMap((o) => {
          const spec =
            o['kind'] === 'Pod'
              ? (o['spec'] as PodSpec)
              : (o['spec'] as { template?: { spec: PodSpec } } | undefined)?.template?.spec;
          return spec?.serviceAccountName === undefined ? [] : [spec.serviceAccountName];
        }),
      );
      for (const name of accounts) {
        await kubectl(['-n', ns, 'create', 'serviceaccount', name]).catch((err: unknown) => {
          if (!/already exists/i.test(String(err))) throw err;
        });
      }
      const out = await kubectl(
        ['-n', ns, 'apply', '--dry-run=server', '-f', '-'],
        JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
      );
      expect(out, file).toMatch(/\(server dry run\)/);
      expect(out.trim().split('\n')).toHaveLength(objects.length);
    }
  });

  it('the enforcer manifests of docs/envoy-gateway-istio.md pass a server-side dry run, with the RBAC rbac.ts makes', async () => {
    const doc = readFileSync(join(import.meta.dirname, '../../docs/envoy-gateway-istio.md'), 'utf8');
    const block = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)]
      .map((m) => m[1] ?? '')
      .find((b) => b.startsWith('# The enforcer for Envoy Gateway or Istio'));
    expect(block).toBeDefined();
    const objects = parseAllDocuments(block ?? '')
      .map((d) => d.toJS() as Json & { metadata: Json })
      .map((o): Json => ({ ...o, metadata: { ...o.metadata, namespace: ns } }));
    expect(objects.map((o) => o['kind'])).toEqual(['Deployment', 'Service', 'NetworkPolicy']);
    const rbac = enforcerRbac({
      namespace: ns,
      stages: [
        { api: 'orders', stage: 'prod' },
        { api: 'orders', stage: 'beta' },
      ],
    });
    const out = await kubectl(
      ['-n', ns, 'apply', '--dry-run=server', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...rbac, ...objects] }),
    );
    expect(out.trim().split('\n')).toHaveLength(rbac.length + objects.length);
  });

  it.each(['http', 'grpc'])(
    'watch mode, %s check: the injected enforcer, as the injected ServiceAccount, becomes ready and decides behind the injected Envoy',
    async (check) => {
      const ports = {
        proxy: await freePort(),
        admin: await freePort(),
        ready: await freePort(),
        check: await freePort(),
        enforcerAdmin: await freePort(),
      };
      const yaml = injectYaml(
        [
          '--api',
          'orders',
          '--stage',
          'prod',
          '--max-shards',
          '4',
          '--check',
          check,
          '--proxy-port',
          String(ports.proxy),
          '--proxy-admin-port',
          String(ports.admin),
          '--proxy-ready-port',
          String(ports.ready),
          '--check-port',
          String(ports.check),
          '--enforcer-admin-port',
          String(ports.enforcerAdmin),
        ],
        app(),
      );
      await kubectl(['-n', ns, 'apply', '-f', '-'], yaml);
      const svc = await kubectlJson<{ spec: { ports: { targetPort: unknown }[] } }>([
        '-n',
        ns,
        'get',
        'service',
        'orders',
      ]);
      expect(svc.spec.ports[0]?.targetPort).toBe('keystile-proxy');

      // What the API server stored is what a kubelet would run.
      const pod = await storedPod(ns, 'orders');
      const account = pod.serviceAccountName;
      expect(account).toBe('keystile-enforcer-orders.prod');
      const kubeconfig = serviceAccountKubeconfig(
        ctx,
        ground().kubeconfig,
        ns,
        account ?? '',
        join(work, `enforcer-${check}.kubeconfig`),
      );

      // The enforcer container: its arguments, expanded as the kubelet does, its counters volume a directory.
      const enforcer = container(pod, 'keystile-enforcer');
      const counters = join(work, `counters-${check}`);
      mkdirSync(counters);
      const enforcerArgs = mountVolumes(expand(enforcer.args, containerEnv(enforcer, ns)), enforcer, {
        'keystile-counters': counters,
      });
      expect(enforcerArgs).toContain(`--watch-namespace=${ns}`);
      expect(enforcerArgs).toContain(
        check === 'grpc' ? `--grpc-port=${ports.check}` : `--http-port=${ports.check}`,
      );
      start(
        process.execPath,
        [ENFORCER_MAIN, ...enforcerArgs],
        { KUBECONFIG: kubeconfig },
        join(work, `enforcer-${check}.log`),
      );
      await waitFor(
        'the injected enforcer',
        async () => (await status(`http://127.0.0.1:${ports.enforcerAdmin}/readyz`)) === 200,
        30_000,
      );

      // The Envoy container: the injected bootstrap, in front of the app's port (the echo upstream).
      const envoy = container(pod, 'keystile-envoy');
      expect(envoy.command).toEqual(['envoy']);
      start(
        ctx.bins.envoy,
        expand(envoy.args, containerEnv(envoy, ns)),
        {},
        join(work, `envoy-${check}.log`),
      );
      // The kubelet's readiness probe: /ready on the ready listener.
      await waitFor(
        'the injected Envoy',
        async () => (await status(`http://127.0.0.1:${ports.ready}/ready`)) === 200,
        30_000,
      );
      expect(await status(`http://127.0.0.1:${ports.ready}/config_dump`)).toBe(404); // the admin stays private

      const url = `http://127.0.0.1:${ports.proxy}/v1/orders`;
      await untilDecided(url, () =>
        ['enforcer', 'envoy']
          .map((n) => {
            const log = join(work, `${n}-${check}.log`);
            return `${log}:\n${existsSync(log) ? readFileSync(log, 'utf8').slice(-4000) : '(none)'}`;
          })
          .join('\n'),
      );
      expect(await status(url)).toBe(403);
      const key = await keyValue();
      const res = await fetch(url, { headers: { 'x-api-key': key } });
      expect(res.status).toBe(200);
      const seen = (await res.json()) as { headers: Record<string, string> };
      const keyId = (
        await kubectl(['-n', ns, 'get', 'apikey', 'acme', '-o', 'jsonpath={.status.keyId}'])
      ).trim();
      expect(seen.headers['x-keystile-key-id']).toBe(keyId);
      expect(JSON.stringify(seen.headers)).not.toContain(key);

      // The injected identity reads its stage's objects, and nothing else: not a customer's key Secret.
      const asEnforcer = async (args: string[]): Promise<string> =>
        kubectl(['--kubeconfig', kubeconfig, '-n', ns, ...args]);
      await expect(asEnforcer(['get', 'configmap', 'keystile-orders.prod', '-o', 'name'])).resolves.toContain(
        'keystile-orders.prod',
      );
      await expect(asEnforcer(['get', 'secret', 'keystile-key-acme'])).rejects.toThrow(
        /Error from server \(Forbidden\): secrets "keystile-key-acme" is forbidden: User "system:serviceaccount:[^:]+:keystile-enforcer-orders\.prod" cannot get resource "secrets"/,
      );
      // The raw answer of the API server: HTTP 403.
      await expect(
        asEnforcer(['get', '--raw', `/api/v1/namespaces/${ns}/secrets/keystile-key-acme`, '-v=6']),
      ).rejects.toThrow(/403 Forbidden/);
      await expect(asEnforcer(['get', 'secrets'])).rejects.toThrow(/Forbidden/);
    },
  );

  it("mounted mode: the projected volume's items are what the enforcer reads", async () => {
    const ports = { check: await freePort(), enforcerAdmin: await freePort() };
    const yaml = injectYaml(
      [
        '--api',
        'orders',
        '--stage',
        'prod',
        '--mode',
        'mounted',
        '--max-shards',
        '4',
        '--check-port',
        String(ports.check),
        '--enforcer-admin-port',
        String(ports.enforcerAdmin),
      ],
      app(),
    );
    const docs = parseAllDocuments(yaml).map((d) => d.toJS() as Json);
    expect(docs.map((d) => d['kind'])).toEqual(['Deployment', 'Service']); // no RBAC: it reads no API
    const pod = (docs[0] as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
    // The kubelet's part: each projected item written at its path (optional ones that do not exist skipped).
    const volume = pod.volumes?.find((v) => v.name === 'keystile-config');
    const dir = join(work, 'mounted');
    let written = 0;
    for (const source of volume?.projected?.sources ?? []) {
      const [kind, ref] = Object.entries(source)[0] ?? [];
      if (ref === undefined) continue;
      const obj = await kubectlJson<{ data?: Record<string, string> }>([
        '-n',
        ns,
        'get',
        kind === 'secret' ? 'secret' : 'configmap',
        ref.name,
        '--ignore-not-found',
      ]).catch(() => undefined);
      for (const item of ref.items) {
        const value = obj?.data?.[item.key];
        if (value === undefined) continue;
        mkdirSync(dirname(join(dir, item.path)), { recursive: true });
        writeFileSync(join(dir, item.path), kind === 'secret' ? Buffer.from(value, 'base64') : value);
        written++;
      }
    }
    expect(written).toBe(3); // the index, one keys shard, one secrets shard
    const enforcer = container(pod, 'keystile-enforcer');
    const counters = join(work, 'counters-mounted');
    mkdirSync(counters);
    const args = mountVolumes(expand(enforcer.args, containerEnv(enforcer, ns)), enforcer, {
      'keystile-counters': counters,
      'keystile-config': dir,
    });
    start(process.execPath, [ENFORCER_MAIN, ...args], {}, join(work, 'enforcer-mounted.log'));
    await waitFor(
      'the mounted enforcer',
      async () => (await status(`http://127.0.0.1:${ports.enforcerAdmin}/readyz`)) === 200,
      30_000,
    );
    const check = (headers: Record<string, string>): Promise<number> =>
      status(`http://127.0.0.1:${ports.check}/keystile/${ns}/orders/prod/v1/orders`, { headers });
    expect(await check({ 'x-api-key': await keyValue() })).toBe(200);
    expect(await check({})).toBe(403);
  });
});
