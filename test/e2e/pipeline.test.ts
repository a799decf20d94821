// The whole pipeline on real parts: resources applied with kubectl, the operator (the local system's, as
// its ServiceAccount) rendering them, an enforcer in watch mode reading the operator's real output as the
// keystile-enforcer ServiceAccount (a Role naming only its objects), and a real Envoy asking it.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envoyWithEnforcer } from '../../enforcer/envoy/bootstrap.ts';
import { type EnvoyProcess, startEnvoy } from '../../enforcer/envoy/start.ts';
import { type EnforcerProcess, freePort, startEnforcerProcess } from '../../enforcer/src/launch.ts';
import { enforcerRbac } from '../../enforcer/src/kube/rbac.ts';
import { createNamespace, ground, kubectl } from '../ground/harness.ts';
import { serviceAccountKubeconfig } from '../ground/keystile.ts';
import { groundContext } from '../ground/local-system.ts';
import { untilDecided, waitFor } from '../ground/wait.ts';

const apply = (ns: string, manifest: unknown): Promise<string> =>
  kubectl(['-n', ns, 'apply', '-f', '-'], JSON.stringify(manifest));
const secretValue = async (ns: string, name: string): Promise<string> =>
  Buffer.from(
    await kubectl(['-n', ns, 'get', 'secret', name, '-o', 'jsonpath={.data.value}']),
    'base64',
  ).toString();

describe('operator -> enforcer -> Envoy', () => {
  let ns: string;
  let enforcer: EnforcerProcess | undefined;
  let envoy: EnvoyProcess | undefined;
  let url: string;
  const call = async (key?: string): Promise<Response> =>
    fetch(`${url}/v1/orders`, { ...(key !== undefined && { headers: { 'x-api-key': key } }) });

  beforeAll(async () => {
    ns = await createNamespace('pipeline');
    await apply(ns, {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'UsagePlan',
      metadata: { name: 'small' },
      spec: { throttle: { rateLimit: 5, burstLimit: 5 }, quota: { limit: 8, period: 'DAY' } },
    });
    // Bob's plan has room: the test of disabling him polls every 20 ms, and whatever it lets through
    // before the disable arrives must not use up a quota the test of enabling him needs.
    await apply(ns, {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'UsagePlan',
      metadata: { name: 'roomy' },
      spec: { throttle: { rateLimit: 100, burstLimit: 100 }, quota: { limit: 10_000, period: 'DAY' } },
    });
    for (const name of ['alice', 'bob']) {
      await apply(ns, { apiVersion: 'keystile.dev/v1alpha1', kind: 'ApiKey', metadata: { name }, spec: {} });
    }
    for (const [plan, key] of [
      ['small', 'alice'],
      ['roomy', 'bob'],
    ]) {
      await apply(ns, {
        apiVersion: 'keystile.dev/v1alpha1',
        kind: 'PlanBinding',
        metadata: { name: plan },
        spec: {
          planRef: { name: plan },
          keys: { names: [key] },
          apiStages: [{ api: 'shop', stage: 'live' }],
        },
      });
    }
    await kubectl([
      '-n',
      ns,
      'wait',
      '--for=condition=Ready',
      '--timeout=60s',
      'planbinding/small',
      'planbinding/roomy',
      'apikey/alice',
      'apikey/bob',
    ]);

    // The enforcer as its own ServiceAccount, allowed to read only its stage's objects, by name.
    const ctx = groundContext();
    await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: enforcerRbac({ namespace: ns, stages: [{ api: 'shop', stage: 'live' }], maxShards: 4 }),
      }),
    );
    const dir = mkdtempSync(join(tmpdir(), 'keystile-pipeline-'));
    const kubeconfig = serviceAccountKubeconfig(
      ctx,
      ground().kubeconfig,
      ns,
      'keystile-enforcer',
      join(dir, 'kubeconfig'),
    );
    enforcer = await startEnforcerProcess({
      watch: { namespace: ns, stages: ['shop/live'] },
      env: { KUBECONFIG: kubeconfig },
      logFile: join(dir, 'enforcer.log'),
    });
    const listenPort = await freePort();
    envoy = await startEnvoy({
      binary: ctx.bins.envoy,
      dir,
      config: envoyWithEnforcer({
        mode: 'http',
        listenPort,
        stage: `${ns}/shop/live`,
        adminPort: await freePort(),
        upstreamPort: ctx.ports.upstream,
        enforcerHttpPort: enforcer.httpPort,
      }),
    });
    url = `http://127.0.0.1:${listenPort}`;
    await untilDecided(`${url}/v1/orders`, () =>
      readFileSync(join(dir, 'enforcer.log'), 'utf8').slice(-4000),
    );
  });

  afterAll(async () => {
    await envoy?.stop();
    await enforcer?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  it('lets a key the operator generated through, and names it to the upstream by id, never by value', async () => {
    const alice = await secretValue(ns, 'keystile-key-alice');
    const keyId = (
      await kubectl(['-n', ns, 'get', 'apikey', 'alice', '-o', 'jsonpath={.status.keyId}'])
    ).trim();
    expect((await call()).status).toBe(403);
    const res = await call(alice);
    expect(res.status).toBe(200);
    const seen = (await res.json()) as { headers: Record<string, string> };
    expect(seen.headers['x-keystile-key-id']).toBe(keyId);
    expect(JSON.stringify(seen.headers)).not.toContain(alice);
  });

  // How soon (within a second) is a speed, for bench/; the deadlines here only bound a failing test.
  it('refuses a key once it is disabled, and lets it back when enabled', async () => {
    const bob = await secretValue(ns, 'keystile-key-bob');
    expect((await call(bob)).status).toBe(200);
    await kubectl(['-n', ns, 'patch', 'apikey/bob', '--type=merge', '-p', '{"spec":{"enabled":false}}']);
    await waitFor('bob refused', async () => (await call(bob)).status === 403, 30_000, 20);
    await kubectl(['-n', ns, 'patch', 'apikey/bob', '--type=merge', '-p', '{"spec":{"enabled":true}}']);
    await waitFor('bob allowed again', async () => (await call(bob)).status === 200, 30_000, 50);
  });

  it('keeps a rotated value working through its grace period, with the usage kept', async () => {
    const old = await secretValue(ns, 'keystile-key-alice');
    await kubectl([
      '-n',
      ns,
      'patch',
      'apikey/alice',
      '--type=merge',
      '-p',
      '{"spec":{"rotation":{"sequence":1,"gracePeriod":"1h"}}}',
    ]);
    let fresh = old;
    await waitFor(
      'a new value',
      async () => (fresh = await secretValue(ns, 'keystile-key-alice')) !== old,
      10_000,
      100,
    );
    await waitFor('the new value accepted', async () => (await call(fresh)).status === 200, 5_000, 50);
    expect((await call(old)).status).toBe(200);
    // Alice has had 3 requests of her quota of 8 let through (1 in the first case, 1 with each value here):
    // the quota is the key id's, not the value's. Five more pass, whichever value they carry.
    let allowed = 3;
    for (let i = 0; i < 12; i++) {
      const res = await call(i % 2 ? fresh : old);
      if (res.status !== 200) break;
      allowed++;
      await new Promise((r) => setTimeout(r, 250)); // under the plan's 5 requests a second
    }
    expect(allowed).toBe(8);
    const denied = await call(fresh);
    expect(denied.status).toBe(429);
    expect(await denied.json()).toEqual({ message: 'Limit Exceeded' });
  });
});
