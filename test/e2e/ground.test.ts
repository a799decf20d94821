// Smoke tests of the test ground: each part is the real thing and behaves as it does in production.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, ground, kubectl, kubectlJson } from '../ground/harness.ts';
import { get } from '../ground/http-probe.ts';
import { groundVersions } from '../ground/paths.ts';
import { waitFor } from '../ground/wait.ts';

const execFileAsync = promisify(execFile);

interface KubeconfigView {
  clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
}

describe('the Kubernetes control plane', () => {
  let ns: string;
  let server: string;
  let caFile: string;

  beforeAll(async () => {
    ns = await createNamespace('ground');
    const view = await kubectlJson<KubeconfigView>(['config', 'view', '--raw', '--minify']);
    const cluster = view.clusters[0]?.cluster;
    if (!cluster) throw new Error('the kubeconfig names no cluster');
    server = cluster.server;
    caFile = join(mkdtempSync(join(tmpdir(), 'keystile-ca-')), 'ca.crt');
    writeFileSync(caFile, Buffer.from(cluster['certificate-authority-data'], 'base64'));
  });

  afterAll(async () => {
    // The namespace controller really deletes namespaces: wait for it to finish.
    await kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=120s']);
  });

  it.runIf(ground().localControlPlane)(
    'reports the version it was built as (local control plane only: another cluster has its own)',
    async () => {
      const version = await kubectlJson<{
        serverVersion: { gitVersion: string };
        clientVersion: { gitVersion: string };
      }>(['version']);
      expect(version.serverVersion.gitVersion).toBe(`v${groundVersions().KUBE_VERSION}`);
      expect(version.clientVersion.gitVersion).toBe(`v${groundVersions().KUBE_VERSION}`);
    },
  );

  it('refuses an anonymous request', async () => {
    const res = await get(`${server}/api/v1/namespaces/${ns}/configmaps`, { tls: { ca: caFile } });
    expect([401, 403]).toContain(res.status);
    if (res.status === 403) expect(res.body).toContain('system:anonymous');
  });

  it('refuses a service-account token without RBAC rights, and admits it once a Role grants them', async () => {
    await kubectl(['-n', ns, 'create', 'serviceaccount', 'reader']);
    const token = (await kubectl(['-n', ns, 'create', 'token', 'reader', '--duration=10m'])).trim();
    expect(token.split('.')).toHaveLength(3);
    const url = `${server}/api/v1/namespaces/${ns}/configmaps`;
    const asReader = { tls: { ca: caFile }, headers: { authorization: `Bearer ${token}` } };

    const denied = await get(url, asReader);
    expect(denied.status).toBe(403);
    expect(denied.body).toContain(`system:serviceaccount:${ns}:reader`);

    await kubectl([
      '-n',
      ns,
      'create',
      'role',
      'configmap-reader',
      '--verb=get,list',
      '--resource=configmaps',
    ]);
    await kubectl([
      '-n',
      ns,
      'create',
      'rolebinding',
      'reader',
      '--role=configmap-reader',
      `--serviceaccount=${ns}:reader`,
    ]);
    // RBAC is read from the API server's informer cache: the grant takes effect within moments.
    await waitFor(
      'the RoleBinding to take effect',
      async () => (await get(url, asReader)).status === 200,
      10_000,
    );
  });

  it('garbage-collects an object whose owner is deleted', async () => {
    await kubectl(['-n', ns, 'create', 'configmap', 'owner', '--from-literal=a=b']);
    const owner = await kubectlJson<{ metadata: { uid: string } }>(['-n', ns, 'get', 'configmap', 'owner']);
    const child = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'child',
        namespace: ns,
        ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata.uid }],
      },
      data: { c: 'd' },
    };
    await kubectl(['apply', '-f', '-'], JSON.stringify(child));
    await kubectl(['-n', ns, 'delete', 'configmap', 'owner', '--cascade=background']);
    await waitFor(
      'the garbage collector to delete the child',
      async () =>
        (
          await kubectl(['-n', ns, 'get', 'configmap', 'child', '--ignore-not-found', '-o', 'name'])
        ).trim() === '',
      30_000,
      200,
    );
  });
});

describe('Envoy', () => {
  it('forwards a request to the upstream', async () => {
    const res = await fetch(`${ground().envoyUrl}/hello?x=1`, { headers: { 'x-probe': 'ground' } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { upstream: string; path: string; headers: Record<string, string> };
    expect(body.upstream).toBe('keystile-local');
    expect(body.path).toBe('/hello?x=1');
    expect(body.headers['x-probe']).toBe('ground');
    // Envoy, not the upstream directly, answered: it adds a request id and its timeout header.
    expect(body.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('server')).toBe('envoy');
  });
});

describe('Redis', () => {
  it('answers commands', async () => {
    const redis = new Redis(ground().redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      const key = `ground:${ground().runId}`;
      expect(await redis.incrby(key, 5)).toBe(5);
      expect(await redis.incrby(key, 2)).toBe(7);
      await redis.del(key);
    } finally {
      redis.disconnect();
    }
  });
});

describe('Prometheus', () => {
  it('scrapes a target', async () => {
    const url = `${ground().prometheusUrl}/api/v1/query?query=${encodeURIComponent('up{job="envoy"}')}`;
    let value: string | undefined;
    await waitFor(
      'Prometheus to scrape Envoy',
      async () => {
        const res = (await (await fetch(url)).json()) as { data: { result: { value: [number, string] }[] } };
        value = res.data.result[0]?.value[1];
        return value !== undefined;
      },
      20_000,
      500,
    );
    expect(value).toBe('1');
  });

  it('runs promtool on a config and on rules', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keystile-promtool-'));
    const rules = join(dir, 'rules.yml');
    writeFileSync(
      rules,
      'groups:\n- name: ground\n  rules:\n  - alert: EnvoyDown\n    expr: up{job="envoy"} == 0\n    for: 1m\n',
    );
    const config = join(ground().stateDir, 'prometheus', 'prometheus.yml');
    const checked = await execFileAsync(ground().promtool, ['check', 'config', config]);
    expect(checked.stdout + checked.stderr).toContain('SUCCESS');
    const ruled = await execFileAsync(ground().promtool, ['check', 'rules', rules]);
    expect(ruled.stdout + ruled.stderr).toContain('SUCCESS: 1 rules found');
    await expect(
      execFileAsync(ground().promtool, ['check', 'rules', join(dir, 'missing.yml')]),
    ).rejects.toThrow();
  });
});
