// The Helm chart (charts/keystile), offline: `helm lint` and `helm template` of every value set in
// charts/keystile/ci/, each compared with its golden file test/golden/helm/<set>.yaml, and the rendered
// objects checked against the sources they must agree with: the operator's RBAC file, enforcerRbac,
// envoyWithEnforcer, the operator's and the enforcer's settings.
//   UPDATE_GOLDEN=1 npx vitest run test/golden/helm.test.ts   rewrites the golden files; review the diff.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, get as httpGet } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CHART_DIR, generatedFiles, withDnsUpstream } from '../../charts/generate.ts';
import { TARGET_COMPONENT } from '../../charts/observability/names.ts';
import { DEFAULT_ALLOWED_HEADERS, envoyWithEnforcer } from '../../enforcer/envoy/bootstrap.ts';
import {
  SETTINGS as ENFORCER_SETTINGS,
  loadConfig as loadEnforcerConfig,
  parseKeySources,
} from '../../enforcer/src/config.ts';
import { enforcerRbac } from '../../enforcer/src/kube/rbac.ts';
import { SETTINGS as OPERATOR_SETTINGS, loadConfig as loadOperatorConfig } from '../../operator/src/config.ts';
import { ENFORCER_MALLOC_ARENA_MAX, ENFORCER_NODE_OPTIONS } from '../../enforcer/src/runtime-settings.ts';
import { OPERATOR_MALLOC_ARENA_MAX, OPERATOR_NODE_OPTIONS } from '../../operator/src/runtime-settings.ts';
import { binaries, groundVersions, repoRoot } from '../ground/paths.ts';

const goldenDir = join(import.meta.dirname, 'helm');
const ciDir = join(CHART_DIR, 'ci');
const update = process.env['UPDATE_GOLDEN'] === '1';
const helm = binaries().helm;
/** `helm template` renders for the Kubernetes the test ground runs (a self-built helm defaults to 1.20). */
const kubeVersion = groundVersions()['KUBE_VERSION'] ?? '';

/** A Kubernetes object as rendered. */
interface Obj {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  securityContext?: Record<string, unknown>;
  lifecycle?: { preStop?: { sleep?: { seconds: number }; exec?: { command: string[] } } };
}

function run(args: readonly string[]): { ok: boolean; out: string } {
  if (!existsSync(helm)) throw new Error(`no helm at ${helm}: run 'bash test/ground/install.sh helm'`);
  try {
    const out = execFileSync(helm, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { ok: true, out };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** `helm template keystile charts/keystile` with these flags; throws helm's message when it refuses. */
function template(flags: readonly string[]): string {
  const r = run([
    'template',
    'keystile',
    CHART_DIR,
    '--namespace',
    'keystile-system',
    '--kube-version',
    kubeVersion,
    ...flags,
  ]);
  if (!r.ok) throw new Error(r.out);
  return r.out;
}

/**
 * NOTES.txt as `helm install` prints it with these flags. `helm template` leaves NOTES out, so a copy of
 * the chart renders the file through `tpl` into one object of its own.
 */
function notes(flags: readonly string[]): string {
  const chart = join(mkdtempSync(join(tmpdir(), 'keystile-notes-')), 'keystile');
  cpSync(CHART_DIR, chart, { recursive: true });
  mkdirSync(join(chart, 'notes'));
  cpSync(join(chart, 'templates', 'NOTES.txt'), join(chart, 'notes', 'NOTES.txt'));
  writeFileSync(
    join(chart, 'templates', 'notes-test.yaml'),
    'notes: {{ tpl (.Files.Get "notes/NOTES.txt") . | toJson }}\n',
  );
  const r = run([
    'template',
    'keystile',
    chart,
    '--namespace',
    'keystile-system',
    '--kube-version',
    kubeVersion,
    '--show-only',
    'templates/notes-test.yaml',
    ...flags,
  ]);
  if (!r.ok) throw new Error(r.out);
  return (parseAllDocuments(r.out)[0]?.toJS() as { notes: string }).notes;
}

const objects = (text: string): Obj[] =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);

const find = (objs: readonly Obj[], kind: string, name: string): Obj => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name} in ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`);
  return o;
};

const podSpec = (d: Obj): { containers: Container[]; securityContext: Record<string, unknown> } =>
  (d['spec'] as { template: { spec: { containers: Container[]; securityContext: Record<string, unknown> } } })
    .template.spec;

const container = (d: Obj, name: string): Container => {
  const c = podSpec(d).containers.find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name} in ${d.metadata.name}`);
  return c;
};

/**
 * A container's environment as the kubelet gives it: references resolved (a Secret's value made up, the
 * pod's name and namespace), then `$(VAR)` expanded from the variables before it.
 */
function environment(c: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    const from = e.valueFrom as
      { secretKeyRef?: { key: string }; fieldRef?: { fieldPath: string } } | undefined;
    let value = e.value ?? '';
    // A Secret's key reads as `a-<key>`: 'a-redis-password' for the key redis-password.
    if (from?.secretKeyRef) value = `a-${from.secretKeyRef.key}`;
    else if (from?.fieldRef?.fieldPath === 'metadata.namespace') value = 'keystile-system';
    else if (from?.fieldRef?.fieldPath === 'metadata.name') value = 'keystile-operator-abc12';
    else if (from) throw new Error(`${e.name}: a valueFrom this test does not resolve`);
    env[e.name] = value.replace(/\$\((\w+)\)/g, (whole, name: string) => env[name] ?? whole);
  }
  return env;
}

/** `envoy --mode validate` of the bootstrap in a rendering's ConfigMap keystile-gateway-envoy: Envoy's output. */
function validateEnvoy(objs: readonly Obj[]): { file: string; out: string } {
  const cm = find(objs, 'ConfigMap', 'keystile-gateway-envoy');
  const dir = mkdtempSync(join(tmpdir(), 'keystile-helm-envoy-'));
  const file = join(dir, 'envoy.yaml');
  writeFileSync(file, (cm['data'] as Record<string, string>)['envoy.yaml'] ?? '');
  const out = execFileSync(binaries().envoy, ['--mode', 'validate', '-c', file, '--disable-hot-restart'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { file, out };
}

/** The request headers each listener's ext_authz filter lets through to the enforcer. */
function extAuthzAllowedHeaders(objs: readonly Obj[]): string[][] {
  const cm = find(objs, 'ConfigMap', 'keystile-gateway-envoy');
  const config = objects((cm['data'] as Record<string, string>)['envoy.yaml'] ?? '')[0] as unknown as {
    static_resources: {
      listeners: {
        filter_chains: {
          filters: {
            typed_config: {
              http_filters: { name: string; typed_config: { allowed_headers?: { patterns: { exact: string }[] } } }[];
            };
          }[];
        }[];
      }[];
    };
  };
  return config.static_resources.listeners.map((l) => {
    const filter = l.filter_chains[0]?.filters[0]?.typed_config.http_filters.find(
      (f) => f.name === 'envoy.filters.http.ext_authz',
    );
    return (filter?.typed_config.allowed_headers?.patterns ?? []).map((p) => p.exact);
  });
}

/**
 * How a gateway pod stops, as rendered: Envoy's preStop sleep, the enforcer's preStop (a Node script that
 * starts Envoy's drain, then waits), the flags of Envoy's drain, the grace period.
 */
function gatewayShutdown(d: Obj): {
  envoySleep: number | undefined;
  envoyFlag: (name: string) => string | undefined;
  enforcerCommand: string[];
  enforcerWaitMs: number;
  grace: number;
} {
  const envoy = container(d, 'envoy');
  const args = envoy.args ?? [];
  const command = container(d, 'enforcer').lifecycle?.preStop?.exec?.command ?? [];
  const wait = /setTimeout\(\(\) => process\.exit\(0\), (\d+)\)/.exec(command[2] ?? '');
  return {
    envoySleep: envoy.lifecycle?.preStop?.sleep?.seconds,
    envoyFlag: (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined),
    enforcerCommand: command,
    enforcerWaitMs: wait ? Number(wait[1]) : NaN,
    grace: (d['spec'] as { template: { spec: { terminationGracePeriodSeconds: number } } }).template.spec
      .terminationGracePeriodSeconds,
  };
}

/** A TCP port free on 127.0.0.1 now. */
const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => {
        resolve(port);
      });
    });
  });

/**
 * A GET on a new connection asking to keep it alive: its status and the Connection header of the answer
 * (`close` when the server will not keep it), or the connection's error code.
 */
const probe = (port: number): Promise<{ status?: number; connection?: string; error?: string }> =>
  new Promise((resolve) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const req = httpGet({ host: '127.0.0.1', port, path: '/', agent, timeout: 2000 }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, connection: res.headers.connection ?? '' });
      agent.destroy();
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => {
      resolve({ error: err.code ?? err.message });
      agent.destroy();
    });
  });

const sets = readdirSync(ciDir)
  .filter((f) => f.endsWith('-values.yaml'))
  .map((f) => f.slice(0, -'-values.yaml'.length))
  .sort();
const valuesFile = (set: string): string => join(ciDir, `${set}-values.yaml`);
const rendered = new Map<string, string>();
/** `helm template` of a value set, once. */
const render = (set: string): string => {
  let text = rendered.get(set);
  if (text === undefined) {
    text = template(['-f', valuesFile(set)]);
    rendered.set(set, text);
  }
  return text;
};
const renderedObjects = (set: string): Obj[] => objects(render(set));

describe('the chart', () => {
  it('has the value sets the issue names', () => {
    expect(sets).toEqual(expect.arrayContaining(['default', 'gateway', 'monitoring', 'redis']));
  });

  it.each(sets)('lints clean with ci/%s-values.yaml', (set) => {
    const r = run(['lint', '--strict', CHART_DIR, '-f', valuesFile(set)]);
    expect(r.out).not.toMatch(/\[(WARNING|ERROR)\]/);
    expect(r.ok, r.out).toBe(true);
  });

  it.each(sets)('renders ci/%s-values.yaml as its golden file', (set) => {
    const text = `# Generated by test/golden/helm.test.ts: helm template keystile charts/keystile -n keystile-system -f charts/keystile/ci/${set}-values.yaml (UPDATE_GOLDEN=1 rewrites).\n${render(set)}`;
    const file = join(goldenDir, `${set}.yaml`);
    if (update) writeFileSync(file, text);
    expect(text).toBe(readFileSync(file, 'utf8'));
  });

  it('has no stale generated file (npm run gen)', async () => {
    for (const { file, content } of await generatedFiles()) {
      expect(readFileSync(file, 'utf8'), `${file}: run npm run gen`).toBe(content);
    }
  });

  it("binds the operator's ServiceAccount to exactly the rules of operator/deploy/rbac.yaml", () => {
    const source = objects(readFileSync(join(repoRoot, 'operator/deploy/rbac.yaml'), 'utf8'));
    const objs = renderedObjects('default');
    const role = find(objs, 'ClusterRole', 'keystile-operator');
    expect(role['rules']).toEqual(find(source, 'ClusterRole', 'keystile-operator')['rules']);
    const binding = find(objs, 'ClusterRoleBinding', 'keystile-operator');
    expect(binding['roleRef']).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'keystile-operator' });
    expect(binding['subjects']).toEqual([{ kind: 'ServiceAccount', name: 'keystile-operator', namespace: 'keystile-system' }]);
    const deployment = find(objs, 'Deployment', 'keystile-operator');
    expect((deployment['spec'] as { template: { spec: { serviceAccountName: string } } }).template.spec.serviceAccountName).toBe(
      'keystile-operator',
    );
    // No Lease cluster-wide: a Role in the release namespace names the operator's own Lease.
    const clusterRules = role['rules'] as { resources: string[] }[];
    expect(clusterRules.flatMap((r) => r.resources)).not.toContain('leases');
    const leaseName = new Map(container(deployment, 'operator').env?.map((e) => [e.name, e.value])).get('KEYSTILE_LEASE_NAME');
    const leaseRole = find(objs, 'Role', 'keystile-operator-lease');
    expect((leaseRole['metadata'] as { namespace: string }).namespace).toBe('keystile-system');
    const sourceRules = find(source, 'Role', 'keystile-operator-lease')['rules'] as { resourceNames?: string[] }[];
    expect(leaseRole['rules']).toEqual(
      sourceRules.map((r) => (r.resourceNames ? { ...r, resourceNames: [leaseName] } : r)),
    );
    expect(find(objs, 'RoleBinding', 'keystile-operator-lease')['subjects']).toEqual([
      { kind: 'ServiceAccount', name: 'keystile-operator', namespace: 'keystile-system' },
    ]);
  });

  it('grants the operator its rules only in operator.watchNamespaces when it lists some: Roles, no ClusterRole', () => {
    const source = objects(readFileSync(join(repoRoot, 'operator/deploy/rbac.yaml'), 'utf8'));
    const rules = find(source, 'ClusterRole', 'keystile-operator')['rules'];
    const objs = objects(template(['--set', 'operator.watchNamespaces={shop,billing,shop}']));
    expect(objs.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')).toEqual([]);
    const roles = objs.filter((o) => o.kind === 'Role' && o.metadata.name === 'keystile-operator');
    expect(roles.map((r) => r.metadata.namespace).sort()).toEqual(['billing', 'shop']);
    for (const role of roles) expect(role['rules']).toEqual(rules);
    const bindings = objs.filter((o) => o.kind === 'RoleBinding' && o.metadata.name === 'keystile-operator');
    expect(bindings.map((b) => b.metadata.namespace).sort()).toEqual(['billing', 'shop']);
    for (const b of bindings) {
      expect(b['roleRef']).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'keystile-operator' });
      expect(b['subjects']).toEqual([{ kind: 'ServiceAccount', name: 'keystile-operator', namespace: 'keystile-system' }]);
    }
    // The Lease stays the release namespace's.
    expect(find(objs, 'Role', 'keystile-operator-lease').metadata.namespace).toBe('keystile-system');
  });

  it("names the Lease the operator is given in its Role, whatever its name", () => {
    const objs = objects(template(['--set', 'operator.leaderElection.leaseName=my-lease']));
    const d = find(objs, 'Deployment', 'keystile-operator');
    const env = new Map(container(d, 'operator').env?.map((e) => [e.name, e.value]));
    expect(env.get('KEYSTILE_LEASE_NAME')).toBe('my-lease');
    const rules = find(objs, 'Role', 'keystile-operator-lease')['rules'] as { resourceNames?: string[] }[];
    expect(rules.flatMap((r) => r.resourceNames ?? [])).toEqual(['my-lease']);
  });

  it('takes lease timings whose renewal comes before the 0.8 x duration deadline, and any without leader election', () => {
    const env = (flags: string[]) =>
      new Map(container(find(objects(template(flags)), 'Deployment', 'keystile-operator'), 'operator').env?.map((e) => [e.name, e.value]));
    expect(
      env(['--set', 'operator.leaderElection.renewSeconds=7', '--set', 'operator.leaderElection.leaseDurationSeconds=10']).get(
        'KEYSTILE_LEASE_RENEW_SECONDS',
      ),
    ).toBe('7');
    expect(
      env([
        '--set',
        'operator.leaderElection.enabled=false',
        '--set',
        'operator.replicas=1',
        '--set',
        'operator.leaderElection.renewSeconds=15',
        '--set',
        'operator.leaderElection.leaseDurationSeconds=15',
      ]).get('KEYSTILE_LEADER_ELECT'),
    ).toBe('false');
  });

  it.each([
    [[], 'curl -i -H "x-api-key: $KEY" http://127.0.0.1:8080/'],
    [['--set', 'gateway.enforcer.keySource=bearer'], 'curl -i -H "Authorization: Bearer $KEY" http://127.0.0.1:8080/'],
    [['--set', 'gateway.enforcer.keySource=query:api_key\\,bearer'], 'curl -i "http://127.0.0.1:8080/?api_key=$KEY"'],
    [['--set', 'gateway.enforcer.keySource= Header:X-My-Key\\,bearer'], 'curl -i -H "X-My-Key: $KEY" http://127.0.0.1:8080/'],
  ])('shows in NOTES a curl carrying the key where gateway.enforcer.keySource says first: %j', (flags, curl) => {
    const text = notes(['-f', valuesFile('gateway'), ...flags]);
    expect(text).toContain(`  ${curl}\n`);
    expect(text.match(/curl [^\n]*/g)).toEqual([curl]);
  });

  it('speaks of the Lease in NOTES only with leader election', () => {
    expect(notes([])).toMatch(/one holding the Lease keystile-system\/keystile-operator[\s\S]*get lease keystile-operator/);
    const text = notes(['--set', 'operator.leaderElection.enabled=false', '--set', 'operator.replicas=1']);
    expect(text).not.toMatch(/\bLease\b|get lease/);
    expect(text).toContain('The operator (1 replica, without leader election) watches every namespace.');
  });

  it('runs the operator with leader election, 2 replicas, the heap caps and settings it knows', () => {
    const d = find(renderedObjects('default'), 'Deployment', 'keystile-operator');
    expect((d['spec'] as { replicas: number }).replicas).toBe(2);
    const env = new Map(container(d, 'operator').env?.map((e) => [e.name, e.value]));
    expect(env.get('KEYSTILE_LEADER_ELECT')).toBe('true');
    expect(env.get('NODE_OPTIONS')).toBe(OPERATOR_NODE_OPTIONS);
    expect(env.get('MALLOC_ARENA_MAX')).toBe(OPERATOR_MALLOC_ARENA_MAX);
    const known = new Set([
      ...OPERATOR_SETTINGS.map((s) => s.env),
      'POD_NAME',
      'POD_NAMESPACE',
      'NODE_OPTIONS',
      'MALLOC_ARENA_MAX',
    ]);
    for (const set of sets) {
      const op = container(find(renderedObjects(set), 'Deployment', 'keystile-operator'), 'operator');
      const unknown = (op.env ?? []).map((e) => e.name).filter((n) => !known.has(n));
      expect(unknown, `${set}: variables operator/src/config.ts does not read`).toEqual([]);
    }
  });

  it("gives the gateway enforcer only flags and variables enforcer/src/config.ts knows, and the image's Node settings", () => {
    const flags = new Set(ENFORCER_SETTINGS.map((s) => `--${s.flag}`));
    // Node's and glibc's own variables besides the enforcer's.
    const vars = new Set([...ENFORCER_SETTINGS.map((s) => s.env), 'NODE_OPTIONS', 'MALLOC_ARENA_MAX']);
    for (const set of ['gateway', 'redis']) {
      const enforcer = container(find(renderedObjects(set), 'Deployment', 'keystile-gateway'), 'enforcer');
      const unknownFlags = (enforcer.args ?? []).filter((a) => a.startsWith('--') && !flags.has(a));
      expect(unknownFlags, `${set}: flags enforcer/src/config.ts does not take`).toEqual([]);
      const unknownVars = (enforcer.env ?? []).map((e) => e.name).filter((n) => !vars.has(n));
      expect(unknownVars, `${set}: variables enforcer/src/config.ts does not read`).toEqual([]);
      const env = new Map(enforcer.env?.map((e) => [e.name, e.value]));
      expect(env.get('NODE_OPTIONS')).toBe(ENFORCER_NODE_OPTIONS);
      expect(env.get('MALLOC_ARENA_MAX')).toBe(ENFORCER_MALLOC_ARENA_MAX);
    }
  });

  it.each(sets)('gives the operator and the enforcer of ci/%s-values.yaml settings they accept', (set) => {
    const objs = renderedObjects(set);
    const op = container(find(objs, 'Deployment', 'keystile-operator'), 'operator');
    const opConfig = loadOperatorConfig(environment(op), op.args ?? []);
    expect(opConfig.lease).toMatchObject({ namespace: 'keystile-system', name: 'keystile-operator' });
    expect(opConfig.identity).toBe('keystile-operator-abc12');
    // The gateway and redis sets run the gateway enforcer (its Deployment must be there); the others do not.
    if (set !== 'gateway' && set !== 'redis') return;
    const enforcer = container(find(objs, 'Deployment', 'keystile-gateway'), 'enforcer');
    const config = loadEnforcerConfig(enforcer.args ?? [], environment(enforcer));
    expect(config.source.kind).toBe('kube');
    expect(config.checkHost).toBe('127.0.0.1');
    expect(config.adminHost).toBe('0.0.0.0');
    expect(config.store).toBe(set === 'redis' ? 'redis' : 'memory');
    expect(config.metricsKeyId).toBe(true);
    if (set === 'redis') {
      expect(config.redisTimeoutMs).toBe(250);
      expect(config.redis).toMatchObject({
        kind: 'standalone',
        url: 'redis://:a-redis-password@redis-master.redis.svc.cluster.local:6379/0',
      });
      expect(opConfig.usage.redis).toEqual({
        kind: 'url',
        url: 'redis://:a-redis-password@redis-master.redis.svc.cluster.local:6379/0',
      });
    } else {
      expect(opConfig.usage.endpoints).toEqual(['dns+http://keystile-gateway-admin.keystile-system.svc.cluster.local:9190']);
    }
  });

  it('turns the key id label of the enforcer metrics off with gateway.enforcer.metricsKeyId', () => {
    const objs = objects(template(['-f', valuesFile('gateway'), '--set', 'gateway.enforcer.metricsKeyId=false']));
    const enforcer = container(find(objs, 'Deployment', 'keystile-gateway'), 'enforcer');
    expect(loadEnforcerConfig(enforcer.args ?? [], environment(enforcer)).metricsKeyId).toBe(false);
  });

  it.each([
    ['clusterNodes', ['--set', 'counters.redis.clusterNodes={redis-0.redis:6379,redis-1.redis:6379}']],
    [
      'sentinels',
      ['--set', 'counters.redis.sentinels={sentinel-0:26379,sentinel-1:26379}', '--set', 'counters.redis.sentinelName=main'],
    ],
    [
      'sentinels with a password of their own',
      [
        '--set',
        'counters.redis.sentinels={sentinel-0:26379,sentinel-1:26379}',
        '--set',
        'counters.redis.sentinelName=main',
        '--set',
        'counters.redis.existingSecretSentinelKey=sentinel-password',
      ],
    ],
  ])('passes Redis %s, with the password from the Secret, in a form both parts accept', (kind, flags) => {
    const objs = objects(template(['-f', valuesFile('redis'), '--set', 'counters.redis.url=', ...flags]));
    const enforcer = container(find(objs, 'Deployment', 'keystile-gateway'), 'enforcer');
    const config = loadEnforcerConfig(enforcer.args ?? [], environment(enforcer));
    const opContainer = container(find(objs, 'Deployment', 'keystile-operator'), 'operator');
    const op = loadOperatorConfig(environment(opContainer));
    const known = new Set([...OPERATOR_SETTINGS, ...ENFORCER_SETTINGS].map((s) => s.env));
    const names = [...(enforcer.env ?? []), ...(opContainer.env ?? [])].map((e) => e.name);
    expect(names.filter((n) => n.includes('REDIS') && !known.has(n))).toEqual([]);
    expect(config.redisPassword).toBe('a-redis-password');
    if (kind === 'clusterNodes') {
      const nodes = [
        { host: 'redis-0.redis', port: 6379 },
        { host: 'redis-1.redis', port: 6379 },
      ];
      expect(config.redis).toEqual({ kind: 'cluster', nodes });
      expect(op.usage.redis).toEqual({ kind: 'cluster', nodes, password: 'a-redis-password' });
    } else {
      const sentinels = [
        { host: 'sentinel-0', port: 26379 },
        { host: 'sentinel-1', port: 26379 },
      ];
      const sentinelPassword = kind === 'sentinels' ? undefined : 'a-sentinel-password';
      expect(config.redis).toEqual({ kind: 'sentinel', sentinels, name: 'main' });
      expect(config.redisSentinelPassword).toBe(sentinelPassword);
      expect(op.usage.redis).toEqual({
        kind: 'sentinel',
        sentinels,
        name: 'main',
        password: 'a-redis-password',
        ...(sentinelPassword && { sentinelPassword }),
      });
    }
  });

  it.each([
    ['redis://keystile@redis:6379/0', 'redis://keystile:a-redis-password@redis:6379/0'],
    ['rediss://keystile@[fd00::1]:6379/0', 'rediss://keystile:a-redis-password@[fd00::1]:6379/0'],
    ['redis://redis:6379', 'redis://:a-redis-password@redis:6379'],
  ])('puts the password of the Secret into the Redis URL %s, after its user', (url, expected) => {
    const objs = objects(template(['-f', valuesFile('redis'), '--set', `counters.redis.url=${url}`]));
    const enforcer = container(find(objs, 'Deployment', 'keystile-gateway'), 'enforcer');
    expect(loadEnforcerConfig(enforcer.args ?? [], environment(enforcer)).redis).toEqual({ kind: 'standalone', url: expected });
    const op = container(find(objs, 'Deployment', 'keystile-operator'), 'operator');
    // The operator reads a URL's password from the URL only.
    expect(loadOperatorConfig(environment(op)).usage.redis).toEqual({ kind: 'url', url: expected });
    const parsed = new URL(expected);
    expect(decodeURIComponent(parsed.password)).toBe('a-redis-password');
    expect(parsed.username).toBe(url.includes('keystile@') ? 'keystile' : '');
  });

  it('refuses a Redis URL with a password of its own besides the Secret', () => {
    expect(() =>
      template(['-f', valuesFile('redis'), '--set', 'counters.redis.url=redis://keystile:hunter2@redis:6379/0']),
    ).toThrow(/counters.redis.url carries a password, and counters.redis.existingSecret gives one too/);
  });

  it.each(['redis://:hunter2@redis:6379/0', 'redis://keystile:hunter2@redis:6379/0', 'rediss://:hunter2@[fd00::1]:6379'])(
    'refuses a password in the Redis URL %s without a Secret: it would be in clear in the pod spec',
    (url) => {
      expect(() =>
        template(['--set', 'gateway.enabled=true', '--set', 'gateway.stages[0].api=a', '--set', 'gateway.stages[0].stage=s',
          '--set', 'gateway.stages[0].port=8080', '--set', 'gateway.upstream.service=a', '--set', 'counters.store=redis',
          '--set', `counters.redis.url=${url}`]),
      ).toThrow(/counters.redis.url carries a password, which would be written in clear in the pod spec: .*counters.redis.existingSecret/);
    },
  );

  it('takes a Redis URL with a user and no password, without a Secret, as it is', () => {
    const objs = objects(template(['-f', valuesFile('redis'), '--set', 'counters.redis.existingSecret=', '--set', 'counters.redis.url=redis://keystile@redis:6379/0']));
    const enforcer = container(find(objs, 'Deployment', 'keystile-gateway'), 'enforcer');
    expect(loadEnforcerConfig(enforcer.args ?? [], environment(enforcer)).redis).toEqual({ kind: 'standalone', url: 'redis://keystile@redis:6379/0' });
  });

  it('refuses a sentinel password key without the Secret that holds it', () => {
    expect(() =>
      template([
        '--set',
        'gateway.enabled=true',
        '--set',
        'counters.store=redis',
        '--set',
        'counters.redis.sentinels={s:26379}',
        '--set',
        'counters.redis.existingSecretSentinelKey=sentinel-password',
      ]),
    ).toThrow(/counters.redis.existingSecretSentinelKey names a key of counters.redis.existingSecret/);
  });

  it('runs every container non-root, read-only, without privilege escalation or capabilities, seccomp on', () => {
    for (const set of sets) {
      for (const d of renderedObjects(set).filter((o) => o.kind === 'Deployment')) {
        const spec = podSpec(d);
        expect(spec.securityContext, d.metadata.name).toMatchObject({
          runAsNonRoot: true,
          seccompProfile: { type: 'RuntimeDefault' },
        });
        for (const c of spec.containers) {
          expect(c.securityContext, `${d.metadata.name}/${c.name}`).toEqual({
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          });
        }
      }
    }
  });

  it.each(['gateway', 'redis'])(
    "gives only the gateway's enforcer a ServiceAccount token, not Envoy (ci/%s-values.yaml)",
    (set) => {
      const d = find(renderedObjects(set), 'Deployment', 'keystile-gateway');
      const spec = (d['spec'] as { template: { spec: Record<string, unknown> } }).template.spec as {
        automountServiceAccountToken?: boolean;
        containers: (Container & { volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[] })[];
        volumes: { name: string; projected?: { sources: Record<string, unknown>[] } }[];
      };
      expect(spec.automountServiceAccountToken).toBe(false);
      const dir = '/var/run/secrets/kubernetes.io/serviceaccount';
      const mountsOf = (name: string) => spec.containers.find((c) => c.name === name)?.volumeMounts ?? [];
      expect(mountsOf('envoy').filter((m) => m.mountPath.startsWith('/var/run/secrets'))).toEqual([]);
      const mount = mountsOf('enforcer').find((m) => m.mountPath === dir);
      expect(mount?.readOnly).toBe(true);
      const volume = spec.volumes.find((v) => v.name === mount?.name);
      // What @kubernetes/client-node's in-cluster config reads there: token, ca.crt and namespace.
      expect(volume?.projected?.sources).toEqual([
        { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ]);
    },
  );

  it('renders a gateway whose namespace the operator watches', () => {
    const objs = objects(template(['-f', valuesFile('gateway'), '--set', 'operator.watchNamespaces={billing,shop}']));
    const roles = objs.filter((o) => o.kind === 'Role' && o.metadata.name === 'keystile-operator');
    expect(roles.map((r) => r.metadata.namespace).sort()).toEqual(['billing', 'shop']);
  });

  it('takes the pod and container security contexts from values: keys dropped with null (OpenShift restricted-v2), others added', () => {
    const objs = objects(
      template([
        '-f',
        valuesFile('gateway'),
        '--set',
        'podSecurityContext.runAsUser=null',
        '--set',
        'podSecurityContext.runAsGroup=null',
        '--set',
        'podSecurityContext.fsGroup=null',
        '--set',
        'containerSecurityContext.runAsUser=1000700000',
      ]),
    );
    const pods = objs.flatMap((o) =>
      o.kind === 'Deployment'
        ? [podSpec(o)]
        : o.kind === 'Pod'
          ? [o['spec'] as { containers: Container[]; securityContext: Record<string, unknown> }]
          : [],
    );
    expect(pods).toHaveLength(3); // the operator, the gateway and the helm test pod
    for (const spec of pods) {
      expect(spec.securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      for (const c of spec.containers) {
        expect(c.securityContext, c.name).toEqual({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          runAsUser: 1000700000,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
      }
    }
  });

  it("gives the gateway's enforcer the Role enforcerRbac makes for its stages", () => {
    const stages = [
      { api: 'orders', stage: 'prod' },
      { api: 'orders', stage: 'beta' },
    ];
    const expected = (maxShards?: number): unknown =>
      (enforcerRbac({ namespace: 'shop', stages, ...(maxShards && { maxShards }) })[1] as { rules: unknown }).rules;
    const role = find(renderedObjects('gateway'), 'Role', 'keystile-gateway');
    expect(role.metadata.namespace).toBe('shop');
    expect(role['rules']).toEqual(expected(4));
    // The default: every shard a stage may grow to.
    const full = objects(template(['-f', valuesFile('gateway'), '--set', 'gateway.maxShards=256']));
    expect(find(full, 'Role', 'keystile-gateway')['rules']).toEqual(expected());
    expect(find(full, 'RoleBinding', 'keystile-gateway')['subjects']).toEqual([
      { kind: 'ServiceAccount', name: 'keystile-gateway', namespace: 'keystile-system' },
    ]);
  });

  it("refuses stages whose Role would be over what the API server stores, and renders them with fewer shards", () => {
    // 60 stages of every shard (256) name 30,780 objects: a Role of about 1.2 MB.
    const dir = mkdtempSync(join(tmpdir(), 'keystile-helm-stages-'));
    const file = join(dir, 'stages.yaml');
    const stages = Array.from({ length: 60 }, (_, i) => ({ api: 'orders', stage: `s${String(i).padStart(2, '0')}`, port: 9000 + i }));
    writeFileSync(file, JSON.stringify({ gateway: { stages } }));
    expect(() => template(['-f', valuesFile('gateway'), '-f', file, '--set', 'gateway.maxShards=256'])).toThrow(
      /gateway: its Role would name 30780 objects \(about \d+ kB\), more than the API server stores in one object: lower gateway.maxShards/,
    );
    // With 64 shards a stage (128,000 keys) it renders, and the estimate was not below the real size.
    const role = find(objects(template(['-f', valuesFile('gateway'), '-f', file, '--set', 'gateway.maxShards=64'])), 'Role', 'keystile-gateway');
    const names = (role['rules'] as { resourceNames: string[] }[]).flatMap((r) => r.resourceNames);
    expect(names).toHaveLength(60 * 129);
    expect(JSON.stringify(role).length).toBeLessThan(60 * 129 * ('orders'.length + 3 + 30));
  });

  it.each([
    ['gateway', 'http'],
    ['redis', 'grpc'],
  ] as const)("gives the %s set's Envoy the bootstrap envoyWithEnforcer makes (%s ext_authz)", (set, mode) => {
    const values = objects(readFileSync(valuesFile(set), 'utf8'))[0] as unknown as {
      gateway: {
        watchNamespace?: string;
        stages: { api: string; stage: string; port: number }[];
        upstream: { service: string; namespace?: string; port: number };
        allowedHeaders?: string[];
      };
    };
    const g = values.gateway;
    const ns = g.watchNamespace ?? 'keystile-system';
    const expected = withDnsUpstream(
      envoyWithEnforcer({
        mode,
        listeners: g.stages.map((s) => ({ port: s.port, stage: `${ns}/${s.api}/${s.stage}` })),
        listenHost: '0.0.0.0',
        adminPort: 9901,
        upstreamPort: g.upstream.port,
        enforcerHttpPort: 9191,
        enforcerGrpcPort: 9192,
        timeout: '0.5s',
        allowedHeaders: g.allowedHeaders ?? [],
      }),
      `${g.upstream.service}.${g.upstream.namespace ?? 'keystile-system'}.svc.cluster.local`,
    );
    const cm = find(renderedObjects(set), 'ConfigMap', 'keystile-gateway-envoy');
    const config = objects((cm['data'] as Record<string, string>)['envoy.yaml'] ?? '')[0];
    expect(config).toEqual(expected);
    const enforcer = container(find(renderedObjects(set), 'Deployment', 'keystile-gateway'), 'enforcer');
    const args = enforcer.args ?? [];
    const flag = (name: string): string | undefined => args[args.indexOf(name) + 1];
    expect(flag('--check-host')).toBe('127.0.0.1');
    expect(flag('--watch-namespace')).toBe(ns);
    expect(flag('--stages')).toBe(g.stages.map((s) => `${s.api}/${s.stage}`).join(','));
    expect(flag(mode === 'http' ? '--grpc-port' : '--http-port')).toBe('off');
  });

  it.each(['gateway', 'redis'])("gives Envoy a bootstrap it accepts (ci/%s-values.yaml, envoy --mode validate)", (set) => {
    const { file, out } = validateEnvoy(renderedObjects(set));
    expect(out).toContain(`configuration '${file}' OK`);
  });

  // gateway.timeout goes to Envoy as a protobuf Duration in JSON: seconds, at most 9 decimals, one 's'.
  it.each(['0s', '2s', '0.25s', '1.123456789s'])('accepts gateway.timeout %s, and so does Envoy', (timeout) => {
    const objs = objects(template(['-f', valuesFile('gateway'), '--set-string', `gateway.timeout=${timeout}`]));
    const { file, out } = validateEnvoy(objs);
    expect(out).toContain(`configuration '${file}' OK`);
  });

  it.each(['500ms', '1', '1.5', '1.1234567891s', '2m', '1ss', '.5s'])(
    'refuses gateway.timeout %s, a Duration Envoy refuses',
    (timeout) => {
      expect(() => template(['-f', valuesFile('gateway'), '--set-string', `gateway.timeout=${timeout}`])).toThrow(
        /gateway\/timeout.*does not match pattern/s,
      );
    },
  );

  // The sources as keystile inject passes them (cli/src/inject-sidecars.ts): every header a key is read
  // from reaches the enforcer; bearer reads authorization, a default; a query parameter is no header.
  it.each([
    ['header:x-my-key', ['x-tenant', 'x-my-key']],
    ['Header:X-My-Key, bearer', ['x-tenant', 'x-my-key']],
    ['bearer', ['x-tenant']],
    ['query:api_key', ['x-tenant']],
    ['query:api_key,header:x-tenant,header:authorization,header:x-other', ['x-tenant', 'x-other']],
  ])("lets the headers of gateway.enforcer.keySource %s through Envoy's ext_authz", (keySource, extra) => {
    const dir = mkdtempSync(join(tmpdir(), 'keystile-helm-keysource-'));
    const values = join(dir, 'values.yaml');
    writeFileSync(values, JSON.stringify({ gateway: { enforcer: { keySource } } }));
    for (const set of ['gateway', 'redis']) {
      const flags = ['-f', valuesFile(set), '-f', values, ...(set === 'redis' ? ['--set', 'gateway.allowedHeaders={x-tenant}'] : [])];
      const objs = objects(template(flags));
      const enforcer = container(find(objs, 'Deployment', 'keystile-gateway'), 'enforcer');
      const config = loadEnforcerConfig(enforcer.args ?? [], environment(enforcer));
      expect(config.keySources).toEqual(parseKeySources(keySource));
      // What the enforcer reads, from its own parsing of the flag.
      const read = config.keySources.flatMap((k) => (k.kind === 'header' ? [k.name] : k.kind === 'bearer' ? ['authorization'] : []));
      const allowed = extAuthzAllowedHeaders(objs);
      expect(allowed.length, set).toBeGreaterThan(0);
      for (const headers of allowed) {
        expect(headers, set).toEqual([...DEFAULT_ALLOWED_HEADERS, ...extra]);
        expect(headers, set).toEqual(expect.arrayContaining(read));
      }
      const { file, out } = validateEnvoy(objs);
      expect(out).toContain(`configuration '${file}' OK`);
    }
  });

  it('keeps the check port private: the NetworkPolicy opens the stages to traffic, the admin port to Prometheus, the operator and the helm test pod', () => {
    const np = find(renderedObjects('gateway'), 'NetworkPolicy', 'keystile-gateway');
    const ingress = (np['spec'] as { ingress: { ports: { port: number }[]; from?: unknown[] }[] }).ingress;
    const open = ingress.flatMap((r) => r.ports.map((p) => p.port)).sort();
    expect(open).toEqual([8080, 8081, 9190]);
    expect(ingress.find((r) => r.ports[0]?.port === 9190)?.from).toEqual([
      {
        podSelector: {
          matchLabels: {
            'app.kubernetes.io/name': 'keystile',
            'app.kubernetes.io/instance': 'keystile',
            'app.kubernetes.io/component': 'operator',
          },
        },
      },
      {
        podSelector: {
          matchLabels: {
            'app.kubernetes.io/name': 'keystile',
            'app.kubernetes.io/instance': 'keystile',
            'app.kubernetes.io/component': 'test',
          },
        },
      },
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
    ]);
  });

  it("lets the helm test pod reach the admin port it asks for /readyz, and no other pod's labels", () => {
    const objs = renderedObjects('gateway');
    const pod = find(objs, 'Pod', 'keystile-test-readyz');
    const urls = (pod['spec'] as { containers: Container[] }).containers[0]?.env?.find((e) => e.name === 'URLS')?.value;
    expect(urls).toContain('keystile-gateway-admin.keystile-system.svc.cluster.local:9190/readyz');
    const np = find(objs, 'NetworkPolicy', 'keystile-gateway');
    const ingress = (np['spec'] as { ingress: { ports: { port: number }[]; from?: { podSelector?: { matchLabels: Record<string, string> } }[] }[] })
      .ingress;
    const selects = (labels: Record<string, string> | undefined): boolean =>
      (ingress.find((r) => r.ports[0]?.port === 9190)?.from ?? []).some(
        (peer) =>
          peer.podSelector !== undefined &&
          Object.entries(peer.podSelector.matchLabels).every(([k, v]) => labels?.[k] === v),
      );
    expect(selects(pod.metadata.labels)).toBe(true);
    // The rule admits this release's operator and test pod only: not the gateway's own pods.
    const gateway = find(objs, 'Deployment', 'keystile-gateway');
    const gatewayLabels = (gateway['spec'] as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    expect(selects(gatewayLabels)).toBe(false);
  });

  it('tells how to upgrade the CRDs as docs/install.md does: server-side, taking the fields Helm set (--force-conflicts)', () => {
    const notes = readFileSync(join(CHART_DIR, 'templates', 'NOTES.txt'), 'utf8');
    const install = readFileSync(join(repoRoot, 'docs', 'install.md'), 'utf8');
    const command = 'kubectl apply --server-side --force-conflicts -f <chart>/crds/';
    expect(notes).toContain(command);
    expect(install).toContain(command.replace('<chart>', 'charts/keystile'));
    expect(notes.match(/kubectl apply[^\n]*/g)).toEqual([command]);
  });

  it('chooses the counter store: memory for one enforcer, redis (shared with the operator) for several', () => {
    const store = (objs: Obj[]): string | undefined =>
      container(find(objs, 'Deployment', 'keystile-gateway'), 'enforcer').env?.find((e) => e.name === 'KEYSTILE_STORE')
        ?.value;
    expect(store(renderedObjects('gateway'))).toBe('memory');
    expect(store(renderedObjects('redis'))).toBe('redis');
    const opEnv = container(find(renderedObjects('redis'), 'Deployment', 'keystile-operator'), 'operator').env ?? [];
    expect(opEnv.find((e) => e.name === 'KEYSTILE_COUNTER_STORE')?.value).toBe('redis');
    // The password is a reference to the Secret, never a value in the pod spec.
    expect(opEnv.find((e) => e.name === 'KEYSTILE_USAGE_REDIS_PASSWORD')).toEqual({
      name: 'KEYSTILE_USAGE_REDIS_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'keystile-redis', key: 'redis-password' } },
    });
    // One gateway pod plus one sidecar are two enforcers: auto wants Redis, and says how to give it.
    expect(() => template(['-f', valuesFile('gateway'), '--set', 'counters.sidecarEnforcers=1'])).toThrow(
      /counters.store is auto and 2 enforcers serve the same plans.*set counters.redis.url/,
    );
  });

  it("keeps the gateway's counters across pods on a claim, replacing the pod only after the old one let go", () => {
    const spec = (d: Obj): Record<string, unknown> => d['spec'] as Record<string, unknown>;
    const countersVolume = (d: Obj): Record<string, unknown> | undefined =>
      (spec(d)['template'] as { spec: { volumes: { name: string }[] } }).spec.volumes.find(
        (v) => v.name === 'counters',
      );
    // Without it: an emptyDir (a new pod starts from zero), the rolling update's overlap.
    const plain = renderedObjects('gateway');
    expect(countersVolume(find(plain, 'Deployment', 'keystile-gateway'))).toMatchObject({ emptyDir: {} });
    expect(spec(find(plain, 'Deployment', 'keystile-gateway'))['strategy']).toBeUndefined();
    expect(plain.filter((o) => o.kind === 'PersistentVolumeClaim')).toEqual([]);

    const persisted = (...flags: string[]): Obj[] =>
      objects(template(['-f', valuesFile('gateway'), '--set', 'counters.persistence.enabled=true', ...flags]));
    const kept = persisted(
      '--set',
      'counters.persistence.storageClassName=standard',
      '--set',
      'counters.persistence.size=2Gi',
    );
    const gateway = find(kept, 'Deployment', 'keystile-gateway');
    expect(spec(gateway)['strategy']).toEqual({ type: 'Recreate' });
    expect(countersVolume(gateway)).toEqual({
      name: 'counters',
      persistentVolumeClaim: { claimName: 'keystile-gateway-counters' },
    });
    expect(spec(find(kept, 'PersistentVolumeClaim', 'keystile-gateway-counters'))).toEqual({
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'standard',
      resources: { requests: { storage: '2Gi' } },
    });
    // The enforcer checkpoints onto it, writable by the pod's fsGroup.
    expect(environment(container(gateway, 'enforcer'))['KEYSTILE_COUNTERS_FILE']).toMatch(/^\/var\/lib\/keystile\//);
    expect(podSpec(gateway).securityContext['fsGroup']).toBe(65532);

    // A claim of the user's own: used, not created.
    const own = persisted('--set', 'counters.persistence.existingClaim=gateway-counters');
    expect(countersVolume(find(own, 'Deployment', 'keystile-gateway'))).toEqual({
      name: 'counters',
      persistentVolumeClaim: { claimName: 'gateway-counters' },
    });
    expect(own.filter((o) => o.kind === 'PersistentVolumeClaim')).toEqual([]);
  });

  it('embeds the rule groups and dashboards of charts/keystile/files', () => {
    const objs = renderedObjects('monitoring');
    const rule = find(objs, 'PrometheusRule', 'keystile');
    expect((rule['spec'] as { groups: unknown[] }).groups.length).toBeGreaterThan(0);
    const dashboards = find(objs, 'ConfigMap', 'keystile-dashboards');
    expect(dashboards.metadata.labels?.['grafana_dashboard']).toBe('1');
    for (const [name, json] of Object.entries(dashboards['data'] as Record<string, string>)) {
      expect(() => JSON.parse(json) as unknown, name).not.toThrow();
    }
    expect(find(objs, 'ServiceMonitor', 'keystile')['spec']).toMatchObject({
      selector: { matchLabels: { 'keystile.dev/metrics': 'true' } },
      endpoints: [{ port: 'metrics', path: '/metrics' }],
    });
  });

  it("labels each scrape target with its Service's component, as KeystileEnforcerDown expects", () => {
    const objs = objects(template(['-f', valuesFile('monitoring'), '-f', valuesFile('gateway')]));
    const endpoints = (find(objs, 'ServiceMonitor', 'keystile')['spec'] as { endpoints: unknown[] }).endpoints;
    expect(endpoints).toEqual([
      expect.objectContaining({
        relabelings: [
          {
            sourceLabels: ['__meta_kubernetes_service_label_app_kubernetes_io_component'],
            targetLabel: TARGET_COMPONENT.label,
          },
        ],
      }),
    ]);
    // The Services it scrapes: the gateway's is an enforcer's target, the operator's is not.
    const scraped = objs.filter((o) => o.kind === 'Service' && o.metadata.labels?.['keystile.dev/metrics'] === 'true');
    const component = (name: string): string | undefined =>
      scraped.find((o) => o.metadata.name === name)?.metadata.labels?.['app.kubernetes.io/component'];
    expect(scraped.map((o) => o.metadata.name).sort()).toEqual(['keystile-gateway-admin', 'keystile-operator']);
    expect(TARGET_COMPONENT.enforcers).toContain(component('keystile-gateway-admin'));
    expect(TARGET_COMPONENT.enforcers).not.toContain(component('keystile-operator'));
  });

  // Rolling the gateway: Envoy keeps serving while the endpoints drop the pod, draining (every response
  // closes its connection) from the start, since SIGTERM stops it at once; the enforcer outlives it.
  it.each(['gateway', 'redis'])(
    'stops the gateway of ci/%s-values.yaml in order: Envoy serves and drains, the enforcer outlives it, the grace period covers both',
    (set) => {
      const d = find(renderedObjects(set), 'Deployment', 'keystile-gateway');
      const s = gatewayShutdown(d);
      // Kubernetes' own sleep action (GA in 1.32; the chart needs 1.33): no shell in Envoy's image needed.
      expect(container(d, 'envoy').lifecycle).toEqual({ preStop: { sleep: { seconds: 10 } } });
      expect(s.envoyFlag('--drain-time-s')).toBe('10');
      expect(s.envoyFlag('--drain-strategy')).toBe('immediate');
      // The enforcer's image has Node and no shell: Node starts Envoy's drain on its admin, then waits.
      // Its Node by the image's own path (distroless: /nodejs/bin is not on PATH), as its ENTRYPOINT has it.
      const entrypoint = /^ENTRYPOINT \["([^"]+)"/m.exec(readFileSync(join(repoRoot, 'enforcer/Dockerfile'), 'utf8'));
      expect(s.enforcerCommand.slice(0, 2)).toEqual([entrypoint?.[1], '-e']);
      expect(entrypoint?.[1]).toBe('/nodejs/bin/node');
      expect(s.enforcerCommand[2]).toContain("fetch('http://127.0.0.1:9901/drain_listeners?graceful', { method: 'POST'");
      expect(s.enforcerWaitMs).toBe(15_000);
      expect(s.enforcerWaitMs).toBeGreaterThan((s.envoySleep ?? Infinity) * 1000);
      // The grace period counts from the start of the preStops: the enforcer's wait, then its own shutdown.
      expect(s.grace).toBe(25);
      expect(s.grace).toBeGreaterThan(s.enforcerWaitMs / 1000);
      // The pod's containers are these two, each with its hook.
      expect(podSpec(d).containers.map((c) => c.name)).toEqual(['envoy', 'enforcer']);
    },
  );

  it('derives every delay of the gateway shutdown from gateway.drainSeconds and the enforcer\'s settings', () => {
    const objs = objects(
      template([
        '-f',
        valuesFile('gateway'),
        '--set',
        'gateway.drainSeconds=30,gateway.envoy.drainStrategy=gradual,gateway.envoy.adminPort=9902',
        '--set',
        'gateway.enforcer.stopAfterEnvoySeconds=2,gateway.enforcer.shutdownSeconds=20',
      ]),
    );
    const s = gatewayShutdown(find(objs, 'Deployment', 'keystile-gateway'));
    expect(s.envoySleep).toBe(30);
    expect(s.envoyFlag('--drain-time-s')).toBe('30');
    expect(s.envoyFlag('--drain-strategy')).toBe('gradual');
    expect(s.enforcerCommand[2]).toContain('http://127.0.0.1:9902/drain_listeners?graceful');
    expect(s.enforcerWaitMs).toBe(32_000);
    expect(s.grace).toBe(52);
  });

  // What the rendered pieces do together, on the real Envoy: the enforcer's preStop (run by this Node)
  // starts the drain Envoy's flags shape; every response then closes its connection; at the end of
  // drainSeconds Envoy's listeners close, and only after that does the preStop return.
  it("drains Envoy with the enforcer's preStop: responses close their connections, the hook outlasts the drain", async () => {
    const [stage0, stage1, admin, check] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const objs = objects(
      template([
        '-f',
        valuesFile('gateway'),
        '--set',
        `gateway.stages[0].port=${stage0},gateway.stages[1].port=${stage1},gateway.envoy.adminPort=${admin}`,
        '--set',
        // The check port has no enforcer behind it: Envoy answers 503 itself (fail closed), which is enough.
        `gateway.enforcer.ports.http=${check},gateway.drainSeconds=2,gateway.enforcer.stopAfterEnvoySeconds=1`,
      ]),
    );
    const d = find(objs, 'Deployment', 'keystile-gateway');
    const { file } = validateEnvoy(objs);
    const args = (container(d, 'envoy').args ?? []).map((a) => (a === '/etc/envoy/envoy.yaml' ? file : a));
    const envoy = spawn(binaries().envoy, args, { stdio: 'ignore' });
    try {
      let before = await probe(stage0);
      for (let i = 0; i < 100 && before.status === undefined; i++) {
        await new Promise((r) => setTimeout(r, 100));
        before = await probe(stage0);
      }
      expect(before).toEqual({ status: 503, connection: '' });

      const [node, ...hookArgs] = gatewayShutdown(d).enforcerCommand;
      expect(node).toBe('/nodejs/bin/node');
      const started = Date.now();
      const hook = spawn(process.execPath, hookArgs, { stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => hook.on('exit', resolve));
      // Draining once the hook has asked Envoy to: still serving new connections (the endpoints may still
      // send them), each closed after its response. Polled until the answer changes (the hook's request
      // takes a moment), within the drain.
      let draining = await probe(stage0);
      for (let i = 0; i < 100 && draining.status === 503 && draining.connection === ''; i++) {
        await new Promise((r) => setTimeout(r, 20));
        draining = await probe(stage0);
      }
      expect(draining).toEqual({ status: 503, connection: 'close' });
      expect(await probe(stage1)).toEqual({ status: 503, connection: 'close' });
      expect(await exited).toBe(0);
      expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
      // drainSeconds over: the listeners are closed (so --drain-time-s must not be shorter than Envoy's sleep).
      expect(await probe(stage0)).toEqual({ error: 'ECONNREFUSED' });
    } finally {
      envoy.kill('SIGTERM');
    }
  }, 30_000);

  it("waits out the enforcer's preStop even when Envoy's admin does not answer", async () => {
    const admin = await freePort();
    const objs = objects(
      template([
        '-f',
        valuesFile('gateway'),
        '--set',
        `gateway.envoy.adminPort=${admin},gateway.drainSeconds=1,gateway.enforcer.stopAfterEnvoySeconds=1`,
      ]),
    );
    const [, ...hookArgs] = gatewayShutdown(find(objs, 'Deployment', 'keystile-gateway')).enforcerCommand;
    const started = Date.now();
    const hook = spawn(process.execPath, hookArgs, { stdio: 'ignore' });
    expect(await new Promise<number | null>((resolve) => hook.on('exit', resolve))).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
  }, 30_000);

  it.each([
    [['--set', 'operator.replicas=0'], /operator\/replicas.*minimum/s],
    [['--set', 'gateway.drainSeconds=0'], /gateway\/drainSeconds.*minimum/s],
    [['--set', 'gateway.envoy.drainStrategy=never'], /gateway\/envoy\/drainStrategy.*(enum|must be one of)/s],
    [['--set', 'operator.replicaz=3'], /additional properties 'replicaz' not allowed/],
    [['--set', 'counters.store=sometimes'], /counters\/store.*(enum|must be one of)/s],
    [['--set', 'gateway.enabled=true'], /list the API stages it serves in gateway.stages/],
    [['--set', 'counters.store=redis'], /counters.store is redis: set counters.redis.url/],
    [['--set', 'operator.leaderElection.enabled=false'], /run one replica \(operator.replicas=1\)/],
    [['-f', valuesFile('gateway'), '--set', 'gateway.stages[1].servicePort=80'], /Service port 80 of orders\/beta/],
    [
      ['--set', 'counters.persistence.enabled=true'],
      /counters.persistence keeps the gateway's counters: enable the gateway/,
    ],
    [
      ['-f', valuesFile('redis'), '--set', 'counters.persistence.enabled=true'],
      /counters.persistence keeps the memory store's counters, and the store is redis/,
    ],
    [
      ['-f', valuesFile('gateway'), '--set', 'counters.persistence.enabled=true', '--set', 'counters.store=memory', '--set', 'gateway.replicas=2'],
      /one claim holds one enforcer's counters; run gateway.replicas=1/,
    ],
    [
      ['-f', valuesFile('gateway'), '--set', 'counters.persistence.enabled=true', '--set', 'counters.persistence.size=lots'],
      /counters\/persistence\/size.*pattern/s,
    ],
    [
      ['-f', valuesFile('gateway'), '--set', 'gateway.stages[1].port=9191'],
      /port 9191 of orders\/beta is taken/,
    ],
    [
      ['-f', valuesFile('gateway'), '--set', 'operator.watchNamespaces={billing}'],
      /the gateway watches the namespace shop .*which the operator does not watch \(operator.watchNamespaces: billing\)/,
    ],
    [
      ['-f', valuesFile('gateway'), '--set', 'gateway.watchNamespace=', '--set', 'operator.watchNamespaces={shop}'],
      /the gateway watches the namespace keystile-system .*which the operator does not watch/,
    ],
    [
      ['--set', 'operator.leaderElection.renewSeconds=15', '--set', 'operator.leaderElection.leaseDurationSeconds=15'],
      /renewSeconds \(15\) must be under 0.8 x leaseDurationSeconds \(15\)/,
    ],
    [
      ['--set', 'operator.leaderElection.renewSeconds=8', '--set', 'operator.leaderElection.leaseDurationSeconds=10'],
      /renewSeconds \(8\) must be under 0.8 x leaseDurationSeconds \(10\)/,
    ],
  ])('refuses bad values with a message naming them: %s', (flags, message) => {
    expect(() => template(flags)).toThrow(message);
  });
});
