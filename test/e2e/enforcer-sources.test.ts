// Where the enforcer's config comes from, against real servers: watch mode on the Kubernetes API (by
// name, under a Role with resourceNames: a disabled or deleted key refused once the change is applied),
// mounted volumes (the kubelet's atomic `..data` swap), and counters that survive a restart. How soon a
// change takes effect (within a second in watch mode) is a speed, measured in bench/, not here.
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enforcerRbacYaml } from '../../enforcer/src/kube/rbac.ts';
import { type EnforcerProcess, startEnforcerProcess } from '../../enforcer/src/launch.ts';
import { keyValue, render } from '../../enforcer/testing/e2e.ts';
import { createNamespace, ground, kubectl, kubectlJson } from '../ground/harness.ts';
import { serviceAccountKubeconfig } from '../ground/keystile.ts';
import { groundContext } from '../ground/local-system.ts';
import { waitFor } from '../ground/wait.ts';

/** Three keys on a plan of the orders API's prod stage (a quota of 3: count the checks that pass). */
function resources(opts: { disabled?: string[]; without?: string[] } = {}): string {
  const keys = ['alpha', 'beta', 'gamma'].filter((k) => !opts.without?.includes(k));
  return [
    {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'UsagePlan',
      metadata: { name: 'basic' },
      spec: { throttle: { rateLimit: 100, burstLimit: 100 }, quota: { limit: 3, period: 'MONTH' } },
    },
    ...keys.map((name) => ({
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'ApiKey',
      metadata: { name },
      spec: opts.disabled?.includes(name) ? { enabled: false } : {},
    })),
    {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'PlanBinding',
      metadata: { name: 'basic-prod' },
      spec: {
        planRef: { name: 'basic' },
        keys: { names: keys },
        apiStages: [{ api: 'orders', stage: 'prod' }],
      },
    },
  ]
    .map((d) => stringify(d))
    .join('---\n');
}

/** A kubeconfig in `dir` authenticating as the enforcer's ServiceAccount in `ns` (enforcerRbacYaml's). */
function enforcerKubeconfig(ns: string, dir: string): string {
  return serviceAccountKubeconfig(
    groundContext(),
    ground().kubeconfig,
    ns,
    'keystile-enforcer',
    join(dir, 'enforcer.kubeconfig'),
  );
}

/** Asks the enforcer's HTTP check port directly (the transports are covered by enforcer-envoy). */
async function check(e: EnforcerProcess, stage: string, key: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${e.httpPort}/keystile/${stage}/v1/orders`, {
    headers: { 'x-api-key': key },
  });
  await res.arrayBuffer();
  return res.status;
}

/** Polls until `stage`'s check with `key` answers `status`; the deadline only bounds a test that fails. */
async function until(e: EnforcerProcess, stage: string, key: string, status: number): Promise<void> {
  await waitFor(
    `the enforcer to answer ${status}`,
    async () => (await check(e, stage, key)) === status,
    30_000,
    20,
  );
}

/** The enforcer's keystile_config_reload_errors_total for `reason` (0 before the first). */
async function reloadErrors(e: EnforcerProcess, reason: string): Promise<number> {
  const metrics = await (await fetch(`http://127.0.0.1:${e.adminPort}/metrics`)).text();
  const m = new RegExp(`^keystile_config_reload_errors_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(
    metrics,
  );
  return m ? Number(m[1]) : 0;
}

describe('watch mode: the rendered objects watched by name through the Kubernetes API', () => {
  let ns: string;
  let dir: string;
  let enforcer: EnforcerProcess;
  let files: Awaited<ReturnType<typeof render>>;
  let stage: string;

  // The renderer's objects, applied as the operator writes them (shards first, the index last), but
  // labelled as this suite's: an operator running against the same cluster removes rendered objects no
  // binding owns, and finds them by that label. The enforcer reads them by name, never by label.
  const apply = async (): Promise<void> => {
    const docs = parseAllDocuments(readFileSync(join(files.manifests, `${ns}.orders.prod.yaml`), 'utf8')).map(
      (d) => d.toJS() as { metadata: { labels?: Record<string, string> } },
    );
    for (const d of docs)
      d.metadata.labels = { ...d.metadata.labels, 'app.kubernetes.io/managed-by': 'keystile-e2e' };
    await kubectl(['apply', '-f', '-'], docs.map((d) => stringify(d)).join('---\n'));
  };

  beforeAll(async () => {
    ns = await createNamespace('enforcer-watch');
    stage = `${ns}/orders/prod`;
    dir = mkdtempSync(join(tmpdir(), 'keystile-e2e-watch-'));
    files = await render(dir, resources(), { namespace: ns, manifests: true });
    await apply();
    // A key Secret of a customer, in the same namespace: the enforcer must never be able to read it.
    await kubectl([
      '-n',
      ns,
      'create',
      'secret',
      'generic',
      'keystile-key-alpha',
      '--from-literal=value=secret',
    ]);
    await kubectl(
      ['apply', '-f', '-'],
      enforcerRbacYaml({ namespace: ns, stages: [{ api: 'orders', stage: 'prod' }] }),
    );
    const kubeconfig = enforcerKubeconfig(ns, dir);
    enforcer = await startEnforcerProcess({
      watch: { namespace: ns, stages: ['orders/prod'] },
      env: { KUBECONFIG: kubeconfig },
      logFile: join(dir, 'enforcer.log'),
    });
  });

  afterAll(async () => {
    await enforcer?.stop();
    if (ns) await kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  it("holds only its own objects' rights: it cannot read a key Secret, nor list Secrets", async () => {
    // `kubectl auth can-i` exits 0 for yes and 1 for no.
    const can = (verb: string, what: string): Promise<boolean> =>
      kubectl([
        'auth',
        'can-i',
        verb,
        what,
        '--as',
        `system:serviceaccount:${ns}:keystile-enforcer`,
        '-n',
        ns,
      ]).then(
        () => true,
        () => false,
      );
    expect(await can('get', 'secrets/keystile-orders.prod.secrets-0')).toBe(true);
    expect(await can('watch', 'configmaps/keystile-orders.prod')).toBe(true);
    expect(await can('get', 'secrets/keystile-key-alpha')).toBe(false);
    expect(await can('list', 'secrets')).toBe(false);
    expect(await can('list', 'configmaps')).toBe(false);
  });

  it('loads the stage and admits its keys', async () => {
    expect(await check(enforcer, stage, keyValue(files.keys, 'alpha'))).toBe(200);
    expect(await check(enforcer, stage, keyValue(files.keys, 'beta'))).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${enforcer.adminPort}/metrics`)).text();
    expect(metrics).toMatch(
      new RegExp(`keystile_config_keys\\{namespace="${ns}",api="orders",stage="prod"\\} 3`),
    );
  });

  it('refuses a disabled key once the change is applied, and still admits the others', async () => {
    files = await render(dir, resources({ disabled: ['beta'] }), { namespace: ns, manifests: true });
    await apply();
    await until(enforcer, stage, keyValue(files.keys, 'beta'), 403);
    expect(await check(enforcer, stage, keyValue(files.keys, 'alpha'))).toBe(200);
  });

  it('refuses a deleted key once the change is applied', async () => {
    const gamma = keyValue(files.keys, 'gamma');
    files = await render(dir, resources({ disabled: ['beta'], without: ['gamma'] }), {
      namespace: ns,
      manifests: true,
    });
    await apply();
    await until(enforcer, stage, gamma, 403);
  });

  it('keeps the last good config when the index names a shard that has not arrived', async () => {
    const alpha = keyValue(files.keys, 'alpha');
    const index = await kubectlJson<{ data: Record<string, string> }>([
      '-n',
      ns,
      'get',
      'configmap',
      'keystile-orders.prod',
    ]);
    const doc = JSON.parse(index.data['index.json']!) as {
      revision: string;
      shards: { keys: { sha256: string } }[];
    };
    doc.revision = '1'.repeat(64);
    doc.shards[0]!.keys.sha256 = '0'.repeat(64);
    const refused = await reloadErrors(enforcer, 'Incomplete');
    const beta = keyValue(files.keys, 'beta');
    const betaBefore = await check(enforcer, stage, beta);
    await kubectl([
      '-n',
      ns,
      'create',
      'configmap',
      'keystile-orders.prod',
      `--from-literal=index.json=${JSON.stringify(doc)}`,
      '--dry-run=client',
      '-o',
      'yaml',
    ]).then((y) => kubectl(['apply', '-f', '-'], y));
    // The enforcer has seen the new index (and refused it) before the last good config is checked.
    await waitFor(
      'the enforcer to refuse the index as Incomplete',
      async () => (await reloadErrors(enforcer, 'Incomplete')) > refused,
      30_000,
      20,
    );
    expect(await check(enforcer, stage, alpha)).toBe(200);
    expect(await check(enforcer, stage, beta)).toBe(betaBefore);
  });

  it('refuses every key of a stage whose objects are deleted', async () => {
    await kubectl(['-n', ns, 'delete', 'configmap', 'keystile-orders.prod']);
    await until(enforcer, stage, keyValue(files.keys, 'alpha'), 403);
  });
});

/** Writes a projected volume the way the kubelet's atomic writer does: a new dir, then `..data` renamed onto it. */
function writeVolume(dir: string, manifestsFile: string, generation: number): void {
  const data = join(dir, `..2026_11_23_00_00_0${generation}`);
  mkdirSync(data, { recursive: true });
  const names: string[] = [];
  for (const doc of parseAllDocuments(readFileSync(manifestsFile, 'utf8'))) {
    const o = doc.toJS() as { kind: string; metadata: { name: string }; data: Record<string, string> };
    mkdirSync(join(data, o.metadata.name), { recursive: true });
    for (const [k, v] of Object.entries(o.data)) {
      writeFileSync(join(data, o.metadata.name, k), o.kind === 'Secret' ? Buffer.from(v, 'base64') : v);
    }
    names.push(o.metadata.name);
  }
  symlinkSync(`..2026_11_23_00_00_0${generation}`, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const name of names) {
    try {
      symlinkSync(join('..data', name), join(dir, name));
    } catch {
      // the link exists from the last generation: it follows ..data
    }
  }
  if (generation > 1)
    rmSync(join(dir, `..2026_11_23_00_00_0${generation - 1}`), { recursive: true, force: true });
}

describe('watch mode, started before its rights are granted', () => {
  let ns: string;
  let dir: string;
  let enforcer: EnforcerProcess | undefined;

  afterAll(async () => {
    await enforcer?.stop();
    if (ns) await kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  it('stays unready and answers 503 while its lists are refused (not an empty config refusing every key), then loads once granted', async () => {
    ns = await createNamespace('enforcer-norights');
    const stage = `${ns}/orders/prod`;
    dir = mkdtempSync(join(tmpdir(), 'keystile-e2e-norights-'));
    const files = await render(dir, resources(), { namespace: ns, manifests: true });
    const docs = parseAllDocuments(readFileSync(join(files.manifests, `${ns}.orders.prod.yaml`), 'utf8')).map(
      (d) => d.toJS() as { metadata: { labels?: Record<string, string> } },
    );
    for (const d of docs)
      d.metadata.labels = { ...d.metadata.labels, 'app.kubernetes.io/managed-by': 'keystile-e2e' };
    await kubectl(['apply', '-f', '-'], docs.map((d) => stringify(d)).join('---\n'));
    const rbac = enforcerRbacYaml({ namespace: ns, stages: [{ api: 'orders', stage: 'prod' }] });
    await kubectl(['apply', '-f', '-'], rbac);
    const kubeconfig = enforcerKubeconfig(ns, dir);
    // The ServiceAccount exists, its Role is not bound yet: every list is refused (403).
    await kubectl(['-n', ns, 'delete', 'rolebinding', 'keystile-enforcer']);
    const e = await startEnforcerProcess({
      watch: { namespace: ns, stages: ['orders/prod'] },
      env: { KUBECONFIG: kubeconfig },
      logFile: join(dir, 'enforcer.log'),
      waitReady: false,
    });
    enforcer = e;
    const readyz = async (): Promise<number> =>
      (await fetch(`http://127.0.0.1:${e.adminPort}/readyz`)).status;
    const key = keyValue(files.keys, 'alpha');
    // Long enough for a few refused lists and their retries.
    await waitFor(
      'a refused list in its log',
      () =>
        Promise.resolve(readFileSync(join(dir, 'enforcer.log'), 'utf8').includes('watch failed; retrying')),
      10_000,
      100,
    );
    await sleep(1500);
    expect(await readyz()).toBe(503);
    expect(await check(e, stage, key)).toBe(503);

    await kubectl(['apply', '-f', '-'], rbac);
    await waitFor('ready once granted', async () => (await readyz()) === 200, 40_000, 100);
    expect(await check(e, stage, key)).toBe(200);
  });
});

describe('mounted mode: the rendered objects as a projected volume', () => {
  let dir: string;
  let volume: string;
  let enforcer: EnforcerProcess;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'keystile-e2e-mounted-'));
    volume = join(dir, 'volume');
    mkdirSync(volume);
  });

  afterAll(async () => {
    await enforcer?.stop();
  });

  it('loads the volume, and a change when the kubelet swaps the `..data` link (no poll: the watch sees it)', async () => {
    let files = await render(dir, resources(), { namespace: 'shop', manifests: true });
    writeVolume(volume, join(files.manifests, 'shop.orders.prod.yaml'), 1);
    enforcer = await startEnforcerProcess({
      configDir: volume,
      args: ['--poll-interval', '600'],
      logFile: join(dir, 'enforcer.log'),
    });
    const beta = keyValue(files.keys, 'beta');
    expect(await check(enforcer, 'shop/orders/prod', beta)).toBe(200);
    files = await render(dir, resources({ disabled: ['beta'] }), { namespace: 'shop', manifests: true });
    writeVolume(volume, join(files.manifests, 'shop.orders.prod.yaml'), 2);
    await until(enforcer, 'shop/orders/prod', beta, 403);
    expect(await check(enforcer, 'shop/orders/prod', keyValue(files.keys, 'alpha'))).toBe(200);
  });
});

describe('the counters across a restart', () => {
  it("keep a period's quota used: a restart does not hand out a fresh month", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keystile-e2e-counters-'));
    const files = await render(dir, resources(), { namespace: 'shop' });
    const countersFile = join(dir, 'counters.ndjson');
    const alpha = keyValue(files.keys, 'alpha');
    const start = (): Promise<EnforcerProcess> =>
      startEnforcerProcess({ config: files.config, countersFile, logFile: join(dir, 'enforcer.log') });
    let e = await start();
    expect(await check(e, 'shop/orders/prod', alpha)).toBe(200);
    expect(await check(e, 'shop/orders/prod', alpha)).toBe(200);
    await e.stop(); // SIGTERM: a last checkpoint
    e = await start();
    try {
      expect(await check(e, 'shop/orders/prod', alpha)).toBe(200);
      expect(await check(e, 'shop/orders/prod', alpha)).toBe(429);
    } finally {
      await e.stop();
    }
  });
});
