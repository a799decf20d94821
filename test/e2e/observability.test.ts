// The dashboard and the alerts on the real Prometheus of the local system (Debian's), scraping real
// enforcers and a real operator under test traffic.
//
// The suite makes a namespace with two plans, keys for every outcome and a UsageAdjustment, rendered by
// the local operator, and starts processes of its own, each registered as a Prometheus scrape target
// (file-based discovery, test/ground/prometheus.ts):
//   A  an enforcer in watch mode on the memory store: the traffic (allowed, every denial, throttled,
//      over quota), usage alerts, the adjustment, a malformed check;
//   B  the same stages on a Redis store of its own, which the suite then freezes (`--redis-unavailable
//      local`): store errors, store lost, decisions by the loss policy;
//   C  an enforcer with no config (later a broken one), answering 503, finally stopped: not ready,
//      refusing config, failing closed, down;
//   D  an operator for the namespace only (its own Lease) polling A's usage, and an endpoint that is not
//      there: key quota metrics, usage poll errors.
// Then every dashboard query (its variables set to this namespace, API and stage; plan All) and every
// alert expression runs through Prometheus's HTTP API. Alerts the scenario provokes must return series
// from their expression (`for` aside: the expression is what Prometheus evaluates); the others must
// return series from their probe: the expression without its threshold, the series it watches
// (charts/observability/alerts.ts). A query without series fails the suite with the list of such
// queries, the metrics each needs, and whether Prometheus has those metrics at all.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allAlerts } from '../../charts/observability/alerts.ts';
import { TARGET_COMPONENT } from '../../charts/observability/names.ts';
import { dashboardQueries, LABEL_VARIABLES } from '../../charts/observability/dashboard.ts';
import { metricsIn, substitute, type VariableValues } from '../../charts/observability/promql.ts';
import { type EnforcerProcess, freePort, startEnforcerProcess } from '../../enforcer/src/launch.ts';
import { enforcerRbac } from '../../enforcer/src/kube/rbac.ts';
import { createNamespace, ground, kubectl } from '../ground/harness.ts';
import {
  leaseGrant,
  leaseGrantName,
  operatorReady,
  serviceAccountKubeconfig,
  startOperatorProcess,
  SYSTEM_NAMESPACE,
} from '../ground/keystile.ts';
import { groundContext } from '../ground/local-system.ts';
import { addPrometheusTarget, prometheusTargetsDir } from '../ground/prometheus.ts';
import { RedisServer } from '../ground/redis.ts';
import { waitFor } from '../ground/wait.ts';

/** One series of an instant query's answer. */
interface Series {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

/** Runs an instant query; rejects with Prometheus's error for a query it refuses. */
async function query(expr: string): Promise<Series[]> {
  const url = `${ground().prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`;
  const res = await fetch(url);
  const body = (await res.json()) as {
    status: string;
    error?: string;
    data?: { resultType: string; result: Series[] | [number, string] };
  };
  if (body.status !== 'success') throw new Error(`Prometheus refused ${expr}: ${body.error ?? res.status}`);
  const result = body.data?.result ?? [];
  // A scalar (time(), vector(0)) is one value: count it as one series.
  return body.data?.resultType === 'scalar'
    ? [{ metric: {}, value: result as [number, string] }]
    : (result as Series[]);
}

/** A label's values on the series `match` selects (what Grafana's label_values() asks). */
async function labelValues(label: string, match: string): Promise<string[]> {
  const url = `${ground().prometheusUrl}/api/v1/label/${label}/values?match[]=${encodeURIComponent(match)}`;
  const body = (await (await fetch(url)).json()) as { status: string; data?: string[]; error?: string };
  if (body.status !== 'success')
    throw new Error(`Prometheus refused label values of ${match}: ${body.error}`);
  return body.data ?? [];
}

/** Polls `probe` until it holds, for a scrape or a poll to happen; fails naming `what`. */
const until = (what: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> =>
  waitFor(what, probe, timeoutMs, 500);

const apply = (ns: string, manifest: unknown): Promise<string> =>
  kubectl(['-n', ns, 'apply', '-f', '-'], JSON.stringify(manifest));

/** A check on an enforcer's HTTP ext_authz port, as Envoy sends it; resolves with the status. */
async function check(port: number, stage: string, key?: string, path = '/v1/things'): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/keystile/${stage}${path}`, {
    headers: key === undefined ? {} : { 'x-api-key': key },
  });
  await res.arrayBuffer();
  return res.status;
}

/**
 * A check Node's HTTP parser refuses (a header with no colon): answered 403 on the socket and counted as
 * a check error of class malformed. (A path the router cannot percent-decode is decided, not an error.)
 */
async function malformedCheck(port: number, stage: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.end(`GET /keystile/${stage}/v1/things HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n`);
    });
    let data = '';
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
  });
}

describe('the dashboard and the alerts on a real Prometheus', () => {
  const ctx = groundContext();
  const runId = ground().runId;
  const jobs = {
    a: `obs-${runId}-enforcer-a`,
    b: `obs-${runId}-enforcer-b`,
    c: `obs-${runId}-enforcer-c`,
    operator: `obs-${runId}-operator`,
    // A gateway target (labelled as the chart's ServiceMonitor labels it) that never answers a scrape:
    // a pod of a bad rollout crashing before its first one.
    never: `obs-${runId}-enforcer-never`,
  };
  const operatorName = `operator-obs-${runId}`;
  const leaseName = `keystile-operator-obs-${runId}`;
  let ns = '';
  let dir = '';
  let a: EnforcerProcess | undefined;
  let b: EnforcerProcess | undefined;
  let c: EnforcerProcess | undefined;
  let redis: RedisServer | undefined;
  let operatorStarted = false;
  let values: VariableValues;

  const up = async (job: string): Promise<boolean> => (await query(`up{job="${job}"} == 1`)).length > 0;
  const value = async (expr: string): Promise<number> => Number((await query(expr))[0]?.value[1] ?? NaN);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keystile-observability-'));
    ns = await createNamespace('obs');
    values = { namespace: ns, api: 'shop', stage: 'live', plan: '.*', rateInterval: '1m', range: '1h' };
    const plan = (name: string, spec: Record<string, unknown>) => ({
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'UsagePlan',
      metadata: { name },
      spec,
    });
    await apply(
      ns,
      plan('metered', {
        throttle: { rateLimit: 50, burstLimit: 50 },
        quota: { limit: 20, period: 'DAY' },
        alerts: { thresholds: [50, 90] },
      }),
    );
    await apply(
      ns,
      plan('tight', { throttle: { rateLimit: 0.1, burstLimit: 2 }, quota: { limit: 1000, period: 'DAY' } }),
    );
    const keys: Record<string, Record<string, unknown>> = {
      alice: {},
      bob: {},
      carol: { enabled: false },
      dave: {},
      erin: {},
      frank: { expiresAt: '2020-01-01T00:00:00Z' },
      gina: {},
    };
    for (const [name, spec] of Object.entries(keys)) {
      await apply(ns, { apiVersion: 'keystile.dev/v1alpha1', kind: 'ApiKey', metadata: { name }, spec });
    }
    const binding = (name: string, planName: string, names: string[], stage: string) => ({
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'PlanBinding',
      metadata: { name },
      spec: { planRef: { name: planName }, keys: { names }, apiStages: [{ api: 'shop', stage }] },
    });
    await apply(ns, binding('metered-live', 'metered', ['alice', 'bob', 'carol', 'frank', 'gina'], 'live'));
    await apply(ns, binding('metered-test', 'metered', ['dave'], 'test'));
    await apply(ns, binding('tight-live', 'tight', ['erin'], 'live'));
    await apply(ns, {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'UsageAdjustment',
      metadata: { name: 'gina-bonus' },
      spec: {
        planRef: { name: 'metered' },
        keyRef: { name: 'gina' },
        amount: 5,
        reason: 'observability test',
      },
    });
    await kubectl([
      '-n',
      ns,
      'wait',
      '--for=condition=Ready',
      '--timeout=60s',
      ...['alice', 'bob', 'dave', 'erin', 'gina'].map((k) => `apikey/${k}`),
    ]);

    // Enforcers A and B as the keystile-enforcer ServiceAccount, which reads only its stages' objects.
    await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: enforcerRbac({
          namespace: ns,
          stages: [
            { api: 'shop', stage: 'live' },
            { api: 'shop', stage: 'test' },
          ],
          maxShards: 4,
        }),
      }),
    );
    const kubeconfig = serviceAccountKubeconfig(
      ctx,
      ground().kubeconfig,
      ns,
      'keystile-enforcer',
      join(dir, 'kubeconfig'),
    );
    const watch = { namespace: ns, stages: ['shop/live', 'shop/test'] };
    a = await startEnforcerProcess({
      watch,
      env: { KUBECONFIG: kubeconfig },
      logFile: join(dir, 'enforcer-a.log'),
    });
    redis = await RedisServer.start();
    b = await startEnforcerProcess({
      watch,
      env: { KUBECONFIG: kubeconfig },
      args: [
        '--store',
        'redis',
        '--redis-url',
        redis.url,
        '--redis-unavailable',
        'local',
        '--redis-timeout',
        '0.1',
      ],
      logFile: join(dir, 'enforcer-b.log'),
    });
    c = await startEnforcerProcess({
      config: join(dir, 'c-config.json'),
      waitReady: false,
      logFile: join(dir, 'enforcer-c.log'),
    });

    // Operator D: only this namespace, its own Lease, usage from A and from an endpoint nobody answers.
    const healthPort = await freePort();
    const noEnforcer = await freePort();
    const operator = {
      name: operatorName,
      healthPort,
      kubeconfig: ground().operatorKubeconfig,
      env: {
        KEYSTILE_NAMESPACES: ns,
        KEYSTILE_LEASE_NAME: leaseName,
        KEYSTILE_USAGE_ENDPOINTS: `http://127.0.0.1:${a.adminPort},http://127.0.0.1:${noEnforcer}`,
        KEYSTILE_USAGE_INTERVAL: '2',
      },
    };
    await kubectl(['apply', '-f', '-'], leaseGrant(leaseName));
    startOperatorProcess(ctx, operator);
    operatorStarted = true;
    await operatorReady(ctx, operator);

    addPrometheusTarget(ctx, jobs.a, a.adminPort);
    addPrometheusTarget(ctx, jobs.b, b.adminPort);
    addPrometheusTarget(ctx, jobs.c, c.adminPort);
    addPrometheusTarget(ctx, jobs.operator, healthPort);
    addPrometheusTarget(ctx, jobs.never, await freePort(), '/metrics', {
      [TARGET_COMPONENT.label]: 'gateway',
    });
    for (const job of Object.values(jobs)) {
      if (job !== jobs.never) await until(`Prometheus scraping ${job}`, () => up(job));
    }

    // Both stages rendered and loaded by A and B.
    const secret = async (name: string): Promise<string> =>
      Buffer.from(
        await kubectl(['-n', ns, 'get', 'secret', `keystile-key-${name}`, '-o', 'jsonpath={.data.value}']),
        'base64',
      ).toString();
    const key = Object.fromEntries(
      await Promise.all(Object.keys(keys).map(async (k) => [k, await secret(k)] as const)),
    );
    const live = `${ns}/shop/live`;
    const test = `${ns}/shop/test`;
    for (const e of [a, b]) {
      await until(
        'gina allowed on shop/live',
        async () => (await check(e.httpPort, live, key['gina'])) === 200,
      );
      await until(
        'dave allowed on shop/test',
        async () => (await check(e.httpPort, test, key['dave'])) === 200,
      );
    }

    // A: every outcome.
    const statuses = async (n: number, k: string | undefined, stage = live): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push(await check(a?.httpPort ?? 0, stage, k));
      return out;
    };
    expect(await statuses(19, key['alice'])).toEqual(Array<number>(19).fill(200)); // 95% of 20
    expect(await statuses(22, key['bob'])).toEqual([...Array<number>(20).fill(200), 429, 429]); // over quota
    expect(await statuses(4, key['erin'])).toEqual([200, 200, 429, 429]); // a bucket of 2: throttled
    expect(await statuses(2, key['carol'])).toEqual([403, 403]); // KeyDisabled
    expect(await statuses(2, key['frank'])).toEqual([403, 403]); // KeyExpired
    expect(await statuses(2, key['dave'])).toEqual([403, 403]); // KeyNotBound: bound on shop/test only
    expect(await statuses(2, undefined)).toEqual([403, 403]); // MissingKey
    expect(await statuses(2, 'short')).toEqual([403, 403]); // MalformedKey
    expect(await statuses(2, 'an-unknown-but-well-formed-key-value-0123456789')).toEqual([403, 403]); // UnknownKey
    expect(await statuses(2, key['alice'], `${ns}/shop/nowhere`)).toEqual([403, 403]); // UnknownStage
    expect(await malformedCheck(a.httpPort, live)).toBe(403); // a check error, class malformed

    // C: no config; phase 1 of its 503s, then a broken config once Prometheus has seen it without one.
    for (let i = 0; i < 3; i++) expect(await check(c.httpPort, live, key['alice'])).toBe(503);
    writeFileSync(join(dir, 'c-config.json'), '{"this is": not a config');
    // A and B: a refused index (the operator writes it again).
    await kubectl([
      '-n',
      ns,
      'patch',
      'configmap',
      'keystile-shop.live',
      '--type=merge',
      '-p',
      '{"data":{"index.json":"{}"}}',
    ]);

    // B: its Redis hangs (SIGSTOP): the first call times out (a store error), then the local policy
    // decides; phase 1. (A Redis that exits is noticed by the closed connection, before any call fails.)
    redis.pause();
    for (let i = 0; i < 3; i++) expect(await check(b.httpPort, live, key['gina'])).toBe(200);

    // Phase 2 once Prometheus has the counters, so that their rates are not 0.
    await until(
      'C answering 503 scraped',
      async () => (await value(`sum(keystile_decisions_total{job="${jobs.c}"})`)) >= 3,
    );
    await until(
      'B deciding without Redis scraped',
      async () => (await value(`sum(keystile_store_fallback_decisions_total{job="${jobs.b}"})`)) >= 3,
    );
    await until(
      "A's UnknownStage checks scraped",
      async () => (await value(`sum(keystile_decisions_total{job="${jobs.a}", reason="UnknownStage"})`)) >= 2,
    );
    for (let i = 0; i < 3; i++) expect(await check(c.httpPort, live, key['alice'])).toBe(503);
    for (let i = 0; i < 3; i++) expect(await check(b.httpPort, live, key['gina'])).toBe(200);
    expect(await statuses(2, key['alice'], `${ns}/shop/nowhere`)).toEqual([403, 403]); // UnknownStage again
    await until(
      'the second UnknownStage checks scraped',
      async () => (await value(`sum(keystile_decisions_total{job="${jobs.a}", reason="UnknownStage"})`)) >= 4,
    );
    await until(
      'the second 503s scraped',
      async () => (await value(`sum(keystile_decisions_total{job="${jobs.c}"})`)) >= 6,
    );
    await until(
      'the second fallbacks scraped',
      async () => (await value(`sum(keystile_store_fallback_decisions_total{job="${jobs.b}"})`)) >= 6,
    );
  }, 300_000);

  afterAll(async () => {
    for (const job of Object.values(jobs))
      rmSync(join(prometheusTargetsDir(ctx), `${job}.json`), { force: true });
    await Promise.all([a?.stop(), b?.stop(), c?.stop(), redis?.stop()]);
    if (operatorStarted) await ctx.procs.stop(operatorName);
    await kubectl(['-n', SYSTEM_NAMESPACE, 'delete', 'lease', leaseName, '--ignore-not-found']);
    await kubectl([
      '-n',
      SYSTEM_NAMESPACE,
      'delete',
      'role,rolebinding',
      leaseGrantName(leaseName),
      '--ignore-not-found',
    ]);
    if (ns !== '') await kubectl(['delete', 'namespace', ns, '--wait=false']);
    // The enforcers' logs stay in `dir` for a failed run; their ServiceAccount token does not.
    if (dir !== '') rmSync(join(dir, 'kubeconfig'), { force: true });
  });

  /** Polls every query until each returns series, or the deadline; resolves with those that never did. */
  async function withoutSeries(
    queries: readonly { where: string; expr: string; accept?: (s: readonly Series[]) => boolean }[],
    timeoutMs = 90_000,
  ): Promise<{ where: string; expr: string; error?: string }[]> {
    const deadline = Date.now() + timeoutMs;
    let pending = [...queries];
    let errors = new Map<string, string>();
    for (;;) {
      const still: typeof pending = [];
      errors = new Map();
      for (const q of pending) {
        try {
          const series = await query(q.expr);
          if (series.length === 0 || (q.accept !== undefined && !q.accept(series))) still.push(q);
        } catch (err) {
          errors.set(q.where, (err as Error).message);
          still.push(q);
        }
      }
      pending = still;
      if (pending.length === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 2_000));
    }
    return pending.map((q) => ({
      where: q.where,
      expr: q.expr,
      ...(errors.has(q.where) && { error: errors.get(q.where) }),
    }));
  }

  /** A failure message naming each query, its metrics, and whether Prometheus has them at all. */
  async function explain(
    missing: readonly { where: string; expr: string; error?: string }[],
  ): Promise<string> {
    const lines: string[] = [];
    for (const m of missing) {
      const metrics = await Promise.all(
        metricsIn(m.expr).map(async (name) => {
          const n = (await query(`count({__name__=~"${name}(_bucket)?"})`))[0]?.value[1] ?? '0';
          return n === '0' ? `${name} (NO SERIES AT ALL: not exported yet, or never counted?)` : name;
        }),
      );
      lines.push(
        `- ${m.where}${m.error ? ` [error: ${m.error}]` : ''}\n    ${m.expr}\n    metrics: ${metrics.join(', ')}`,
      );
    }
    return `${missing.length} queries returned no series (the lead reruns after the metrics' helpers land):\n${lines.join('\n')}`;
  }

  it('offers this namespace, API, stages and plans in the dashboard variables', async () => {
    const offered = async (name: string): Promise<string[]> => {
      const v = LABEL_VARIABLES.find((x) => x.name === name);
      if (v === undefined) throw new Error(`no variable ${name}`);
      const raw = await labelValues(v.label, substitute(v.selector, { ...values, api: 'shop', stage: '.*' }));
      if (v.regex === undefined) return raw;
      const re = new RegExp(v.regex.slice(1, -1));
      return raw.map((x) => re.exec(x)?.[1] ?? x);
    };
    expect(await offered('namespace')).toContain(ns);
    expect(await offered('api')).toContain('shop');
    expect(await offered('stage')).toEqual(expect.arrayContaining(['live', 'test']));
    expect(await offered('plan')).toEqual(expect.arrayContaining(['metered', 'tight']));
  });

  it('answers every dashboard query with series', async () => {
    const missing = await withoutSeries(
      dashboardQueries().map((q) => ({ where: q.where, expr: substitute(q.expr, values) })),
    );
    if (missing.length > 0) throw new Error(await explain(missing));
  });

  it("narrows to a plan: the plan variable's filter matches the enforcer's plan ids and the operator's names", async () => {
    const perPlan = await query(
      substitute(
        'sum by (plan) (rate(keystile_decisions_total{namespace=~"$namespace", api=~"$api", stage=~"$stage", plan=~"(.+/)?$plan"}[$__rate_interval]))',
        { ...values, plan: 'metered' },
      ),
    );
    expect(perPlan.map((s) => s.metric['plan'])).toEqual([`${ns}/metered`]);
    const keysOfPlan = await query(
      substitute('keystile_operator_key_quota_used{namespace=~"$namespace", plan=~"(.+/)?$plan"}', {
        ...values,
        plan: 'metered',
      }),
    );
    expect(keysOfPlan.map((s) => s.metric['apikey'])).toEqual(expect.arrayContaining(['alice', 'bob']));
    expect(keysOfPlan.every((s) => /(^|\/)metered$/.test(s.metric['plan'] ?? ''))).toBe(true);
  });

  /** The alerts the scenario provokes, and the series (job, labels) that must be among their answers. */
  const provoked: Record<string, (s: Series) => boolean> = {
    KeystileEnforcerNotReady: (s) => s.metric['job'] === jobs.c,
    KeystileEnforcerConfigRefused: (s) => s.metric['job'] === jobs.c,
    KeystileEnforcerFailingClosed: (s) => s.metric['job'] === jobs.c && s.metric['reason'] === 'NoConfig',
    KeystileEnforcerUnknownStage: (s) => s.metric['job'] === jobs.a,
    KeystileStoreUnavailable: (s) => s.metric['job'] === jobs.b,
    KeystileStoreFallback: (s) => s.metric['job'] === jobs.b,
    // The errors stop once the enforcer has marked Redis down (it then probes, uncounted): no sustained
    // rate, so KeystileStoreErrors is checked by its probe.
    KeystileKeyNearQuota: (s) => s.metric['job'] === jobs.operator && s.metric['apikey'] === 'alice',
    KeystileKeyQuotaExhausted: (s) => s.metric['job'] === jobs.operator && s.metric['apikey'] === 'bob',
    KeystileQuotaThresholdCrossed: (s) => s.metric['job'] === jobs.a && s.metric['threshold'] === '90',
    KeystileUsagePollFailing: (s) => s.metric['job'] === jobs.operator,
  };

  it('fires every alert the scenario provokes: its expression returns the series', async () => {
    const missing = await withoutSeries(
      allAlerts()
        .filter((al) => provoked[al.alert] !== undefined)
        .map((al) => ({
          where: `alert ${al.alert} (expected to fire)`,
          expr: al.expr,
          accept: (series: readonly Series[]) => series.some((s) => provoked[al.alert]?.(s) === true),
        })),
    );
    if (missing.length > 0) throw new Error(await explain(missing));
  });

  it('has series under every other alert: its probe returns the series it watches', async () => {
    const quiet = allAlerts().filter((al) => provoked[al.alert] === undefined);
    expect(quiet.map((al) => al.alert)).toEqual(
      expect.arrayContaining([
        'KeystileEnforcerDown',
        'KeystileEnforcerConfigStale',
        'KeystileOperatorNoLeader',
      ]),
    );
    const missing = await withoutSeries(
      quiet.map((al) => ({ where: `probe of ${al.alert}`, expr: al.probe })),
    );
    if (missing.length > 0) throw new Error(await explain(missing));
  });

  it('sees a gateway target that never answered a scrape as KeystileEnforcerDown', async () => {
    const down = allAlerts().find((al) => al.alert === 'KeystileEnforcerDown');
    if (down === undefined) throw new Error('no KeystileEnforcerDown alert');
    await until('the never-answering gateway target down', async () =>
      (await query(down.expr)).some((s) => s.metric['job'] === jobs.never),
    );
  });

  it('sees an enforcer that stops answering scrapes as KeystileEnforcerDown', async () => {
    const down = allAlerts().find((al) => al.alert === 'KeystileEnforcerDown');
    if (down === undefined || c === undefined)
      throw new Error('no KeystileEnforcerDown alert, or no enforcer C');
    expect((await query(down.expr)).some((s) => s.metric['job'] === jobs.c)).toBe(false);
    await c.stop();
    await until('C scraped as down', async () =>
      (await query(down.expr)).some((s) => s.metric['job'] === jobs.c),
    );
  });
});
