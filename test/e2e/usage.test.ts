// Usage on real parts: two enforcers (memory store, watch mode, as the keystile-enforcer ServiceAccount)
// counting real checks, and an operator of this suite's own (as its ServiceAccount, under the shipped
// RBAC) polling their admin ports: ApiKey usage status, an alert Event once, a UsageAdjustment applied
// exactly once, and the per-replica warning on a plan served by two enforcers.
//
// The suite's operator watches only its namespace, with its own Lease. The local system's operator
// watches every namespace too; it must run this code (usage, adjustments), or the two would render
// different indexes for this namespace: the first test checks that and says what to do.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EnforcerProcess, freePort, startEnforcerProcess } from '../../enforcer/src/launch.ts';
import { enforcerRbac } from '../../enforcer/src/kube/rbac.ts';
import { USAGE_API_PATHS } from '../../contract/src/usage-api.ts';
import { createNamespace, ground, kubectl, kubectlJson } from '../ground/harness.ts';
import {
  leaseGrant,
  leaseGrantName,
  type OperatorProcess,
  operatorReady,
  serviceAccountKubeconfig,
  startOperatorProcess,
  SYSTEM_NAMESPACE,
} from '../ground/keystile.ts';
import { onOneUtcDay, utcDay } from '../ground/days.ts';
import { groundContext } from '../ground/local-system.ts';
import { waitFor } from '../ground/wait.ts';

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface Usage {
  plan: string;
  period: string;
  used: number;
  granted?: number;
  limit?: number;
  remaining?: number;
  alerted?: number;
}
interface Obj {
  metadata: { name: string; uid: string };
  status?: { conditions?: Condition[]; usage?: Usage[]; keyId?: string; period?: string; appliedAt?: string };
}

const apply = (ns: string, manifest: unknown): Promise<string> =>
  kubectl(['-n', ns, 'apply', '-f', '-'], JSON.stringify(manifest));
const get = (ns: string, what: string): Promise<Obj> => kubectlJson<Obj>(['-n', ns, 'get', what]);
const condition = (o: Obj, type: string): Condition | undefined =>
  o.status?.conditions?.find((c) => c.type === type);
const until = (what: string, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> =>
  waitFor(what, probe, timeoutMs, 250);

const plan = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'UsagePlan',
  metadata: { name },
  spec,
});
const binding = (name: string, keys: string[], stages: string[]) => ({
  apiVersion: 'keystile.dev/v1alpha1',
  kind: 'PlanBinding',
  metadata: { name },
  spec: {
    planRef: { name },
    keys: { names: keys },
    apiStages: stages.map((s) => ({ api: s.split('/')[0], stage: s.split('/')[1] })),
  },
});

describe('usage, alerts and adjustments', () => {
  let ns: string;
  let live: EnforcerProcess | undefined;
  let beta: EnforcerProcess | undefined;
  let redisEnforcer: EnforcerProcess | undefined;
  let operator: OperatorProcess | undefined;
  const ctx = groundContext();
  let alice = '';
  let keyId = '';

  /** One check through the enforcer's HTTP ext_authz port, as Envoy would send it (ADR 0002). */
  const check = async (e: EnforcerProcess, stage: string, key: string): Promise<number> =>
    (
      await fetch(`http://127.0.0.1:${e.httpPort}/keystile/${ns}/${stage}/v1/orders`, {
        headers: { 'x-api-key': key },
      })
    ).status;
  const secret = async (name: string): Promise<string> =>
    Buffer.from(
      await kubectl(['-n', ns, 'get', 'secret', `keystile-key-${name}`, '-o', 'jsonpath={.data.value}']),
      'base64',
    ).toString();
  const usageOf = async (name: string, planName: string): Promise<Usage | undefined> =>
    (await get(ns, `apikey/${name}`)).status?.usage?.find((u) => u.plan === planName);

  beforeAll(async () => {
    // The local system's operator reconciles this namespace too: it must render adjustments as this one
    // does, or the two would rewrite each other's index forever.
    const localOperator = await (await fetch(`${ground().operatorUrl}/metrics`)).text();
    if (!localOperator.includes('keystile_operator_usage_polls_total'))
      throw new Error(
        "the local system's operator runs code without usage support (it started before it): restart it (npm stop; npm start)",
      );
    ns = await createNamespace('usage');
    await apply(
      ns,
      plan('metered', { quota: { limit: 10, period: 'DAY' }, alerts: { thresholds: [50, 100] } }),
    );
    await apply(ns, plan('wide', { quota: { limit: 1000, period: 'DAY' } }));
    await apply(ns, plan('pooled', { quota: { limit: 100, period: 'WEEK' } }));
    for (const name of ['alice', 'bob', 'carol'])
      await apply(ns, { apiVersion: 'keystile.dev/v1alpha1', kind: 'ApiKey', metadata: { name }, spec: {} });
    await apply(ns, binding('metered', ['alice'], ['shop/live']));
    await apply(ns, binding('wide', ['bob'], ['shop/live', 'shop/beta']));
    await apply(ns, binding('pooled', ['carol'], ['shop/shared']));
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', '--timeout=60s', 'planbindings', '--all']);
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', '--timeout=60s', 'apikeys', '--all']);
    alice = await secret('alice');
    keyId = (await get(ns, 'apikey/alice')).status?.keyId ?? '';

    // Two enforcers, each counting in its own memory: one serves shop/live, the other shop/beta; and a
    // third counting in the local system's Redis, serving shop/shared.
    const stages = [
      { api: 'shop', stage: 'live' },
      { api: 'shop', stage: 'beta' },
      { api: 'shop', stage: 'shared' },
    ];
    await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: enforcerRbac({ namespace: ns, stages, maxShards: 4 }),
      }),
    );
    const dir = mkdtempSync(join(tmpdir(), 'keystile-usage-'));
    const kubeconfig = serviceAccountKubeconfig(
      ctx,
      ground().kubeconfig,
      ns,
      'keystile-enforcer',
      join(dir, 'kubeconfig'),
    );
    live = await startEnforcerProcess({
      watch: { namespace: ns, stages: ['shop/live'] },
      env: { KUBECONFIG: kubeconfig },
      logFile: join(dir, 'enforcer-live.log'),
    });
    beta = await startEnforcerProcess({
      watch: { namespace: ns, stages: ['shop/beta'] },
      env: { KUBECONFIG: kubeconfig },
      logFile: join(dir, 'enforcer-beta.log'),
    });

    redisEnforcer = await startEnforcerProcess({
      watch: { namespace: ns, stages: ['shop/shared'] },
      env: { KUBECONFIG: kubeconfig },
      args: ['--store', 'redis', '--redis-url', ground().redisUrl],
      logFile: join(dir, 'enforcer-shared.log'),
    });
    const answer = await fetch(`http://127.0.0.1:${live.adminPort}${USAGE_API_PATHS.quotas}`);
    if (answer.status !== 200) throw new Error(`the enforcer does not answer GET ${USAGE_API_PATHS.quotas}`);

    // This suite's operator: only this namespace, its own Lease, polling both enforcers every second.
    operator = {
      name: `operator-usage-${ground().runId}`,
      healthPort: await freePort(),
      kubeconfig: join(ctx.stateDir, 'operator.kubeconfig'),
      env: {
        KEYSTILE_NAMESPACES: ns,
        KEYSTILE_LEASE_NAME: `keystile-operator-usage-${ground().runId}`,
        KEYSTILE_USAGE_ENDPOINTS: [live, beta, redisEnforcer]
          .map((e) => `http://127.0.0.1:${e.adminPort}`)
          .join(','),
        KEYSTILE_USAGE_REDIS_URL: ground().redisUrl,
        KEYSTILE_USAGE_INTERVAL: '1',
      },
    };
    await kubectl(['apply', '-f', '-'], leaseGrant(`keystile-operator-usage-${ground().runId}`));
    startOperatorProcess(ctx, operator);
    await operatorReady(ctx, operator);
  }, 120_000);

  afterAll(async () => {
    if (operator) {
      await ctx.procs.stop(operator.name);
      await kubectl([
        '-n',
        SYSTEM_NAMESPACE,
        'delete',
        'lease',
        `keystile-operator-usage-${ground().runId}`,
        '--ignore-not-found',
      ]);
      await kubectl([
        '-n',
        SYSTEM_NAMESPACE,
        'delete',
        'role,rolebinding',
        leaseGrantName(`keystile-operator-usage-${ground().runId}`),
        '--ignore-not-found',
      ]);
    }
    await live?.stop();
    await beta?.stop();
    await redisEnforcer?.stop();
    if (ns) await kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  it("shows a key's usage in its status and in kubectl get, within seconds of the requests", async () => {
    const e = live as EnforcerProcess;
    // The plan's period is the day the requests are counted on (UTC); a run across midnight starts over
    // on the new day, whose counter starts at 0.
    await onOneUtcDay(async (now) => {
      for (let i = 0; i < 4; i++) expect(await check(e, 'shop/live', alice)).toBe(200);
      await until('alice used 4 today', async () => {
        const usage = await usageOf('alice', 'metered');
        return usage?.used === 4 && usage.period === utcDay(now);
      });
      expect(await usageOf('alice', 'metered')).toMatchObject({
        plan: 'metered',
        period: utcDay(now),
        used: 4,
        limit: 10,
        remaining: 6,
      });
    });
    expect(await kubectl(['-n', ns, 'get', 'apikey', 'alice'])).toMatch(
      new RegExp(`alice\\s+ApiKey\\s+true\\s+${keyId}\\s+metered:shop/live\\s+4\\s+6\\s+True`),
    );
    const metrics = await (await fetch(`http://127.0.0.1:${operator?.healthPort ?? 0}/metrics`)).text();
    expect(metrics).toContain(
      `keystile_operator_key_quota_used{namespace="${ns}",apikey="alice",plan="metered"} 4`,
    );
    expect(metrics).toContain(
      `keystile_operator_key_quota_limit{namespace="${ns}",apikey="alice",plan="metered"} 10`,
    );
    expect(metrics).not.toContain(alice);
  });

  it("records one Event when a plan's alert threshold is crossed, and no second one that period", async () => {
    const e = live as EnforcerProcess;
    expect(await check(e, 'shop/live', alice)).toBe(200); // 5 of 10: 50%
    const events = async (): Promise<{ message: string }[]> =>
      (
        await kubectlJson<{ items: { message: string }[] }>([
          '-n',
          ns,
          'get',
          'events',
          '--field-selector',
          'involvedObject.name=alice,reason=QuotaThresholdReached',
        ])
      ).items;
    await until('the alert Event', async () => (await events()).length > 0);
    // The period the operator reports the usage in (the first case checks it is the day's date).
    const period = (await usageOf('alice', 'metered'))?.period;
    expect(period).toMatch(/^\d{4}-\d\d-\d\d$/);
    expect((await events()).map((x) => x.message)).toEqual([
      `50% of plan metered's quota used in period ${period} (5 of 10)`,
    ]);
    expect((await usageOf('alice', 'metered'))?.alerted).toBe(50);
    expect(await check(e, 'shop/live', alice)).toBe(200); // 6 of 10: still past 50%, not yet 100%
    await until('alice used 6', async () => (await usageOf('alice', 'metered'))?.used === 6);
    expect(await events()).toHaveLength(1);
  });

  it('applies a UsageAdjustment once and reports it Applied; the key has that much more remaining', async () => {
    const before = await usageOf('alice', 'metered');
    await apply(ns, {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'UsageAdjustment',
      metadata: { name: 'grant-alice' },
      spec: { planRef: { name: 'metered' }, keyRef: { name: 'alice' }, amount: 20, reason: 'e2e' },
    });
    await kubectl([
      '-n',
      ns,
      'wait',
      '--for=condition=Applied',
      '--timeout=60s',
      'usageadjustment/grant-alice',
    ]);
    const adj = await get(ns, 'usageadjustment/grant-alice');
    expect(adj.status?.period).toBe(before?.period);
    expect(adj.status?.appliedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(condition(adj, 'Applied')).toMatchObject({ status: 'True', reason: 'Applied' });
    await until('the grant in alice usage', async () => (await usageOf('alice', 'metered'))?.granted === 20);
    expect(await usageOf('alice', 'metered')).toMatchObject({
      used: before?.used,
      granted: 20,
      limit: 30,
      remaining: (before?.remaining ?? 0) + 20,
    });
    // The enforcer lets alice use it: 10 were allowed before, now 30.
    const e = live as EnforcerProcess;
    let allowed = before?.used ?? 0;
    for (let i = 0; i < 30 && (await check(e, 'shop/live', alice)) === 200; i++) allowed++;
    expect(allowed).toBe(30);
    expect(await kubectl(['-n', ns, 'get', 'usageadjustment', 'grant-alice'])).toMatch(
      /grant-alice\s+metered\s+alice\s+20\s+\d{4}-\d{2}-\d{2}\s+True\s+Applied/,
    );
  });

  it('refuses an adjustment naming a customer on a per-key plan, saying why', async () => {
    await apply(ns, {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'UsageAdjustment',
      metadata: { name: 'wrong-kind' },
      spec: { planRef: { name: 'metered' }, customer: 'acme', amount: 5 },
    });
    await until(
      'the adjustment refused',
      async () =>
        condition(await get(ns, 'usageadjustment/wrong-kind'), 'Applied')?.reason === 'CustomerOnPerKeyPlan',
    );
    expect(condition(await get(ns, 'usageadjustment/wrong-kind'), 'Applied')?.status).toBe('False');
  });

  it('warns on a plan whose stages are served by two enforcers each counting in memory', async () => {
    await until(
      'wide: CountersShared False',
      async () =>
        condition(await get(ns, 'usageplan/wide'), 'CountersShared')?.reason === 'PerReplicaCounters',
    );
    const c = condition(await get(ns, 'usageplan/wide'), 'CountersShared');
    expect(c?.status).toBe('False');
    expect(c?.message).toMatch(/Redis store/);
    // Both enforcers really count alone: bob's quota is counted once on each.
    const bob = await secret('bob');
    expect(await check(live as EnforcerProcess, 'shop/live', bob)).toBe(200);
    expect(await check(beta as EnforcerProcess, 'shop/beta', bob)).toBe(200);
    await until('bob used 2, summed over both', async () => (await usageOf('bob', 'wide'))?.used === 2);
  });

  it('reads the Redis store itself: usage, an adjustment applied (its marker), one shared count', async () => {
    const e = redisEnforcer as EnforcerProcess;
    const carol = await secret('carol');
    for (let i = 0; i < 3; i++) expect(await check(e, 'shop/shared', carol)).toBe(200);
    await until('carol used 3, read from Redis', async () => (await usageOf('carol', 'pooled'))?.used === 3);
    expect(await usageOf('carol', 'pooled')).toMatchObject({ limit: 100, remaining: 97 });
    await apply(ns, {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'UsageAdjustment',
      metadata: { name: 'take-carol' },
      spec: { planRef: { name: 'pooled' }, keyRef: { name: 'carol' }, amount: -50 },
    });
    await kubectl([
      '-n',
      ns,
      'wait',
      '--for=condition=Applied',
      '--timeout=60s',
      'usageadjustment/take-carol',
    ]);
    await until(
      'the take-back in carol usage',
      async () => (await usageOf('carol', 'pooled'))?.granted === -50,
    );
    expect(await usageOf('carol', 'pooled')).toMatchObject({ used: 3, limit: 50, remaining: 47 });
    await until(
      'pooled: CountersShared True',
      async () => condition(await get(ns, 'usageplan/pooled'), 'CountersShared')?.reason === 'SharedStore',
    );
  });
});
