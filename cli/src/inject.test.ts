import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../enforcer/src/config.ts';
import { type InjectIo, injectCommand, parseInjectArgs } from './inject-command.ts';
import { inject, type InjectOptions } from './inject.ts';
import { DEFAULT_IMAGES, INJECTED, KEYSTILE_VERSION, sidecarBootstrap } from './inject-sidecars.ts';

const APP = `# the app
apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
  namespace: shop
spec:
  selector: { matchLabels: { app: orders } }
  template:
    metadata: { labels: { app: orders } }
    spec:
      containers:
        - name: api # keep this comment
          image: example.com/orders:1
          ports: [{ name: http, containerPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: orders, namespace: shop }
spec:
  selector: { app: orders }
  ports: [{ port: 80, targetPort: http }, { name: other, port: 81, targetPort: 9999 }]
---
apiVersion: v1
kind: Service
metadata: { name: elsewhere, namespace: other }
spec:
  selector: { app: orders }
  ports: [{ port: 80, targetPort: http }]
`;

const options = (args: string[]): InjectOptions => parseInjectArgs(args).options;
const objects = (text: string): Record<string, unknown>[] =>
  parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);

interface Container {
  name: string;
  image: string;
  command?: string[];
  args: string[];
  securityContext: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string }[];
}
function podOf(o: Record<string, unknown>): {
  containers: Container[];
  serviceAccountName?: string;
  volumes?: { name: string }[];
} {
  const spec = o['spec'] as { template: { spec: ReturnType<typeof podOf> } };
  return spec.template.spec;
}
function find(docs: Record<string, unknown>[], kind: string, name?: string): Record<string, unknown> {
  const d = docs.find(
    (x) => x['kind'] === kind && (name === undefined || (x['metadata'] as { name: string }).name === name),
  );
  if (!d) throw new Error(`no ${kind} ${name ?? ''}`);
  return d;
}
/** What the kubelet does to a container's arguments: $(VAR) from its env, $$ for a literal $. */
const expand = (args: readonly string[], env: Record<string, string>): string[] =>
  args.map((a) =>
    a.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v?: string) =>
      v === undefined ? '$' : (env[v] ?? m),
    ),
  );

describe('keystile inject', () => {
  it('adds Envoy and a watch-mode enforcer whose arguments the enforcer itself accepts', () => {
    const r = inject(APP, options(['--api', 'orders', '--stage', 'prod']));
    expect(r.errors).toEqual([]);
    const docs = objects(r.output);
    const pod = podOf(find(docs, 'Deployment'));
    expect(pod.containers.map((c) => c.name)).toEqual(['api', 'keystile-envoy', 'keystile-enforcer']);
    const enforcer = pod.containers[2]!;
    expect(enforcer.image).toBe(`ghcr.io/keystile/enforcer:${KEYSTILE_VERSION}`);
    const config = loadConfig(expand(enforcer.args, { POD_NAMESPACE: 'shop' }), {});
    expect(config.source).toEqual({
      kind: 'kube',
      namespace: 'shop',
      stages: [{ api: 'orders', stage: 'prod' }],
    });
    expect(config.httpPort).toBe(9191);
    expect(config.grpcPort).toBeUndefined();
    expect(config.checkHost).toBe('127.0.0.1'); // only the Envoy beside it asks
    expect(config.countersFile).toBe('/var/run/keystile/counters.ndjson');
    expect(enforcer.volumeMounts?.map((m) => m.mountPath)).toEqual(['/var/run/keystile']);
  });

  it("gives Envoy the stage of the pod's namespace, never a fixed one", () => {
    const docs = objects(inject(APP, options(['--api', 'orders', '--stage', 'prod'])).output);
    const envoy = podOf(find(docs, 'Deployment')).containers[1]!;
    expect(envoy.image).toBe(DEFAULT_IMAGES.envoy);
    expect(envoy.command).toEqual(['envoy']);
    const i = envoy.args.indexOf('--config-yaml');
    const bootstrap = parse(expand([envoy.args[i + 1]!], { POD_NAMESPACE: 'shop' })[0]!) as unknown;
    expect(JSON.stringify(bootstrap)).toContain('"path_prefix":"/keystile/shop/orders/prod"');
    expect(JSON.stringify(bootstrap)).not.toContain('$(');
    // The same bootstrap the function builds, the namespace aside.
    const built = sidecarBootstrap(
      { api: 'orders', stage: 'prod' },
      8080,
      options(['--api', 'orders', '--stage', 'prod']),
    );
    expect(parse(envoy.args[i + 1]!)).toEqual(built);
    expect(envoy.args).toContain('--disable-hot-restart');
  });

  it('runs both sidecars non-root, read-only, without privilege escalation or capabilities, under RuntimeDefault', () => {
    const docs = objects(inject(APP, options(['--api', 'orders', '--stage', 'prod'])).output);
    for (const c of podOf(find(docs, 'Deployment')).containers.slice(1)) {
      expect(c.securityContext).toMatchObject({
        runAsNonRoot: true,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(c.securityContext['runAsUser']).toBeGreaterThan(0);
    }
  });

  it('keeps Envoy serving while the pod leaves its endpoints, and the enforcer longer, within the grace period', () => {
    const docs = objects(inject(APP, options(['--api', 'orders', '--stage', 'prod'])).output);
    const pod = podOf(find(docs, 'Deployment'));
    const hook = (name: string): number | undefined =>
      (
        pod.containers.find((c) => c.name === name) as
          { lifecycle?: { preStop?: { sleep?: { seconds?: number } } } } | undefined
      )?.lifecycle?.preStop?.sleep?.seconds;
    const envoy = hook(INJECTED.envoy);
    const enforcer = hook(INJECTED.enforcer);
    expect(envoy).toBeGreaterThan(0);
    expect(enforcer).toBeGreaterThan(envoy ?? Infinity);
    // Kubernetes' default grace period, as the pod sets none.
    expect(enforcer).toBeLessThan(30);
  });

  it("points the Service's port that reached the app at Envoy, and leaves the rest alone", () => {
    const docs = objects(inject(APP, options(['--api', 'orders', '--stage', 'prod'])).output);
    type Svc = { spec: { ports: { targetPort: unknown }[] } };
    const svc = find(docs, 'Service', 'orders') as Svc;
    expect(svc.spec.ports.map((p) => p.targetPort)).toEqual(['keystile-proxy', 9999]);
    // Another namespace's Service with the same selector does not select these pods.
    const other = find(docs, 'Service', 'elsewhere') as Svc;
    expect(other.spec.ports[0]!.targetPort).toBe('http');
  });

  it('writes a ServiceAccount, and a Role naming only the stage objects, every shard the contract allows', () => {
    const docs = objects(inject(APP, options(['--api', 'orders', '--stage', 'prod'])).output);
    expect(podOf(find(docs, 'Deployment')).serviceAccountName).toBe('keystile-enforcer-orders.prod');
    find(docs, 'ServiceAccount', 'keystile-enforcer-orders.prod');
    const role = find(docs, 'Role') as {
      rules: { resources: string[]; resourceNames: string[]; verbs: string[] }[];
    };
    expect(role.rules.map((r) => [r.resources[0], r.resourceNames.length, r.verbs])).toEqual([
      ['configmaps', 257, ['get', 'list', 'watch']],
      ['secrets', 256, ['get', 'list', 'watch']],
    ]);
    expect(
      role.rules.flatMap((r) => r.resourceNames).every((n) => n.startsWith('keystile-orders.prod')),
    ).toBe(true);
    const binding = find(docs, 'RoleBinding') as { subjects: unknown[] };
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'keystile-enforcer-orders.prod', namespace: 'shop' },
    ]);
  });

  it('keeps the comments and layout of what it did not add', () => {
    const out = inject(APP, options(['--api', 'orders', '--stage', 'prod'])).output;
    expect(out).toContain('# the app\n');
    expect(out).toContain('- name: api # keep this comment\n');
  });

  it('mounted mode: a projected volume the enforcer reads with --config-dir, and no RBAC', () => {
    const r = inject(APP, options(['--api', 'orders', '--stage', 'prod', '--mode', 'mounted']));
    const docs = objects(r.output);
    expect(docs.map((d) => d['kind'])).toEqual(['Deployment', 'Service', 'Service']);
    const pod = podOf(find(docs, 'Deployment'));
    expect(pod.serviceAccountName).toBeUndefined();
    const enforcer = pod.containers[2]!;
    expect(loadConfig(enforcer.args, {}).source).toEqual({ kind: 'dir', path: '/etc/keystile' });
    expect(pod.volumes?.map((v) => v.name)).toEqual(['keystile-counters', 'keystile-config']);
    const sources = (
      pod.volumes?.[1] as unknown as {
        projected: { sources: Record<string, { items: { path: string }[] }>[] };
      }
    ).projected.sources;
    expect(sources).toHaveLength(1 + 2 * 8);
    expect(sources[0]!['configMap']!.items[0]!.path).toBe('keystile-orders.prod/index.json');
  });

  it('gives the enforcer environment from Secrets, never a value', () => {
    const docs = objects(
      inject(
        APP,
        options([
          '--api',
          'orders',
          '--stage',
          'prod',
          '--enforcer-secret-env',
          'KEYSTILE_REDIS_PASSWORD=redis/password',
        ]),
      ).output,
    );
    const enforcer = podOf(find(docs, 'Deployment')).containers[2] as unknown as { env: unknown[] };
    expect(enforcer.env).toContainEqual({
      name: 'KEYSTILE_REDIS_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'redis', key: 'password' } },
    });
  });

  it('gRPC: the enforcer serves gRPC on 9192 and Envoy names the stage in context extensions', () => {
    const docs = objects(
      inject(APP, options(['--api', 'orders', '--stage', 'prod', '--check', 'grpc'])).output,
    );
    const [, envoy, enforcer] = podOf(find(docs, 'Deployment')).containers;
    const config = loadConfig(expand(enforcer!.args, { POD_NAMESPACE: 'shop' }), {});
    expect([config.httpPort, config.grpcPort]).toEqual([undefined, 9192]);
    const bootstrap = envoy!.args[envoy!.args.indexOf('--config-yaml') + 1]!;
    expect(bootstrap).toContain('keystile.dev/api-stage: $(POD_NAMESPACE)/orders/prod');
  });

  it('injecting its own output again, with the same or other options, is injecting the original with those', () => {
    const variants = [
      ['--api', 'orders', '--stage', 'prod', '--max-shards', '4'],
      ['--api', 'orders', '--stage', 'prod', '--mode', 'mounted', '--max-shards', '2'],
      ['--api', 'orders', '--stage', 'beta', '--check', 'grpc', '--max-shards', '3'],
      ['--api', 'orders', '--stage', 'prod', '--envoy-image', 'envoyproxy/envoy:v1.41.0', '--rbac', 'false'],
    ];
    // Once run as a ServiceAccount given by name, the pod keeps it: only the same options give the same bytes.
    const sticky = ['--api', 'orders', '--stage', 'prod', '--service-account', 'mine'];
    const inputs = [
      APP,
      ...readdirSync(join(import.meta.dirname, '../../test/golden/inject'))
        .filter((f) => f.endsWith('.in.yaml'))
        .map((f) => readFileSync(join(import.meta.dirname, '../../test/golden/inject', f), 'utf8')),
    ];
    for (const input of inputs) {
      const once = inject(input, options(sticky)).output;
      expect(inject(once, options(sticky)).output).toBe(once);
      const direct = variants.map((a) => inject(input, options(a)).output);
      direct.forEach((out, a) => {
        expect(inject(out, options(variants[a]!)).output).toBe(out);
        // (An input injected before may hold inject's ServiceAccount anywhere in its pod spec: a removed
        // one comes back at the end, so this holds for inputs inject has not touched.)
        if (input.includes('keystile-envoy')) return;
        variants.forEach((b, i) => {
          expect(inject(out, options(b)).output).toBe(direct[i]);
        });
      });
    }
  }, 60_000);

  it('takes the stage from the annotation, and keeps workloads out that ask to be', () => {
    const annotated = APP.replace(
      'namespace: shop\nspec:\n  selector: { matchLabels',
      'namespace: shop\n  annotations: { keystile.dev/api-stage: payments/live }\nspec:\n  selector: { matchLabels',
    );
    const r = inject(annotated, options([]));
    expect(r.injected[0]).toMatch(/^Deployment shop\/orders for payments\/live/);
    const out = inject(
      annotated.replace('payments/live }', "payments/live, keystile.dev/inject: 'false' }"),
      options([]),
    );
    expect(out.injected).toEqual([]);
    expect(out.output).not.toContain('keystile-envoy');
  });

  it('refuses what it cannot do, naming the workload and what to change', () => {
    const noPort = APP.replace('          ports: [{ name: http, containerPort: 8080 }]\n', '');
    expect(inject(noPort, options(['--api', 'orders', '--stage', 'prod'])).errors).toEqual([
      'Deployment shop/orders: its containers declare no port for Envoy to forward to: give --port',
    ]);
    expect(inject(APP, options(['--api', 'orders', '--stage', 'prod', '--port', 'grpc'])).errors[0]).toBe(
      "Deployment shop/orders: no container port is named 'grpc' (--port)",
    );
    expect(
      inject(APP, options(['--api', 'orders', '--stage', 'prod', '--proxy-port', '8080'])).errors[0],
    ).toMatch(/uses port 8080, which the sidecars need: choose another with --proxy-port/);
    // The command refuses these flags itself (exit 2); inject() still does, for its other callers.
    const stageFlags = options(['--api', 'orders', '--stage', 'prod']);
    expect(inject(APP, { ...stageFlags, stage: undefined }).errors).toEqual([
      'give --api and --stage together',
    ]);
    expect(inject(APP, { ...stageFlags, api: 'Orders' }).errors[0]).toMatch(/DNS label/);
    const bad = APP.replace(
      'namespace: shop\nspec:\n  selector',
      'namespace: shop\n  annotations: { keystile.dev/api-stage: a/b/c }\nspec:\n  selector',
    );
    expect(inject(bad, options([])).errors[0]).toMatch(
      /annotation keystile.dev\/api-stage: 'a\/b\/c' is not api\/stage/,
    );
    expect(inject('a: [1\n', options([])).errors[0]).toMatch(/^document 1: /);
    const r = inject(noPort, options(['--api', 'orders', '--stage', 'prod']));
    expect(r.output).toBe('');
  });
});

describe('keystile inject, its defaults', () => {
  it("names the chart's images: the enforcer at the chart's appVersion, and the chart's Envoy", () => {
    const chart = join(import.meta.dirname, '../../charts/keystile');
    const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as {
      gateway: {
        envoy: { image: { repository: string; tag: string } };
        enforcer: { image: { repository: string } };
      };
    };
    const appVersion = (parse(readFileSync(join(chart, 'Chart.yaml'), 'utf8')) as { appVersion: string })
      .appVersion;
    expect(DEFAULT_IMAGES.enforcer).toBe(`${values.gateway.enforcer.image.repository}:${appVersion}`);
    expect(DEFAULT_IMAGES.envoy).toBe(
      `${values.gateway.envoy.image.repository}:${values.gateway.envoy.image.tag}`,
    );
  });
});

describe('keystile inject, the command', () => {
  const run = (args: string[], stdin: string | undefined): { code: number; out: string; log: string } => {
    let out = '';
    const log: string[] = [];
    const io: InjectIo = {
      readFile: (p) => readFileSync(p, 'utf8'),
      readStdin: () => stdin,
      out: (t) => (out += t),
      log: (l) => log.push(l),
    };
    return { code: injectCommand(args, io), out, log: log.join('\n') };
  };

  it('reads standard input, prints YAML, and says what it did on standard error', () => {
    const r = run(['--api', 'orders', '--stage', 'prod'], APP);
    expect(r.code).toBe(0);
    expect(r.out).toContain('name: keystile-envoy');
    expect(r.log).toContain('injected Deployment shop/orders for orders/prod');
    expect(r.out).not.toContain('injected Deployment');
  });

  it('passes input with nothing to inject through, and says so', () => {
    const r = run([], APP);
    expect(r.code).toBe(0);
    expect(r.out).not.toContain('keystile-envoy');
    expect(r.log).toMatch(/no workload injected/);
  });

  it('never quotes the source line of a YAML syntax error (it may hold a token)', () => {
    const r = run(
      ['--api', 'orders', '--stage', 'prod'],
      `${APP}---\ntoken: eyJhbGciOiJSUzI1NiJ9SECRET: x\n`,
    );
    expect(r).toMatchObject({ code: 1, out: '' });
    expect(r.log).toMatch(/error: document \d+: .*at line \d+, column \d+$/m);
    expect(r.log).not.toContain('eyJhbGciOiJSUzI1NiJ9SECRET');
  });

  it('answers bad usage with 2 and the usage text, and a problem with 1 and nothing printed', () => {
    expect(run(['--mode', 'sidecar'], APP)).toMatchObject({ code: 2, out: '' });
    expect(run(['--mode', 'sidecar'], APP).log).toMatch(
      /--mode must be watch or mounted, not 'sidecar'[\s\S]*usage: keystile inject/,
    );
    expect(run(['--nope'], APP).code).toBe(2);
    const help = run(['--help'], undefined);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^usage: keystile inject/);
    expect(help.log).toBe('');
    for (const args of [
      ['--api', 'orders'],
      ['--api', 'Orders', '--stage', 'prod'],
      ['--port', '70000'],
    ]) {
      const r = run(args, APP);
      expect(r).toMatchObject({ code: 2, out: '' });
      expect(r.log).toMatch(/usage: keystile inject/);
    }
    expect(run(['--api', 'orders'], APP).log).toMatch(/give --api and --stage together/);
    expect(run(['--port', '70000'], APP).log).toMatch(/--port must be a whole number from 1 to 65535/);
    expect(run(['--key-source', 'cookie:x'], APP).log).toMatch(/--key-source: 'cookie:x'/);
    expect(run(['--proxy-port', '0'], APP).log).toMatch(
      /--proxy-port must be a whole number from 1 to 65535/,
    );
    expect(run(['--enforcer-secret-env', 'X=abc'], APP).log).toMatch(/'X=abc' is not VAR=SECRET\/KEY/);
    const withPassword = run(['--enforcer-arg=--redis-url=redis://:s3cret@redis:6379/0'], APP);
    expect(withPassword).toMatchObject({ code: 2, out: '' });
    expect(withPassword.log).toMatch(/--redis-url carries a password in its URL/);
    expect(withPassword.log).not.toContain('s3cret');
    const split = run(['--enforcer-arg=--redis-url', '--enforcer-arg=redis://:hunter2pass@redis:6379'], APP);
    expect(split).toMatchObject({ code: 2, out: '' });
    expect(split.log).toMatch(/--enforcer-arg: --redis-url carries a password in its URL/);
    expect(split.log).not.toContain('hunter2');
    for (const flag of ['--redis-password', '--redis-sentinel-password']) {
      for (const args of [
        [`--enforcer-arg=${flag}=hunter2pass`],
        [`--enforcer-arg=${flag}`, '--enforcer-arg=hunter2pass'],
      ]) {
        const r = run([...args, '--api', 'orders', '--stage', 'prod'], APP);
        expect(r).toMatchObject({ code: 2, out: '' });
        expect(r.log).toMatch(
          /would write the password into the pod spec: give it from a Secret with --enforcer-secret-env KEYSTILE_REDIS_/,
        );
        expect(r.log).not.toContain('hunter2');
      }
    }
    expect(
      run(
        ['--enforcer-arg=--redis-url=redis://keystile@redis:6379/0', '--api', 'orders', '--stage', 'prod'],
        APP,
      ).code,
    ).toBe(0);
    expect(run(['--service-account', 'Bad_Name'], APP)).toMatchObject({ code: 2, out: '' });
    expect(run(['--service-account', 'Bad_Name'], APP).log).toMatch(
      /'Bad_Name' is not a ServiceAccount name/,
    );
    expect(run(['--service-account', 'orders.reader', '--api', 'orders', '--stage', 'prod'], APP).code).toBe(
      0,
    );
    expect(run([], undefined)).toMatchObject({ code: 2 });
    expect(run(['/no/such/file.yaml'], undefined)).toMatchObject({ code: 2, out: '' });
    expect(run(['--api', 'orders', '--stage', 'prod', '--port', 'nope'], APP)).toMatchObject({
      code: 1,
      out: '',
    });
    expect(run(['--help'], undefined).code).toBe(0);
  });
});
