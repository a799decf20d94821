// A key holder's own view through a real Envoy (HTTP and gRPC ext_authz): `GET /keystile/usage` with the
// key shows the plan, usage and remaining quota and costs nothing; a bad key gets the check's 403; the
// client cannot choose another stage. And a quota adjustment written into the standalone config raises
// what is left, once, across an enforcer restart with --counters-file.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { periodWindow } from '../../contract/src/calendar-period.ts';
import type { RenderedAdjustment, StandaloneConfig } from '../../contract/src/format.ts';
import { generateKey } from '../../contract/src/key-format.ts';
import { parseStandalone } from '../../contract/src/validate.ts';
import {
  QuotasAnswer,
  SELF_SERVICE_PUBLIC_PATH,
  SelfServiceAnswer,
  USAGE_API_PATHS,
} from '../../contract/src/usage-api.ts';
import { envoyWithEnforcer } from '../../enforcer/envoy/bootstrap.ts';
import { imfFixdate, signRequest } from '../../enforcer/src/decision/key-pair-signature.ts';
import { type EnvoyProcess, startEnvoy } from '../../enforcer/envoy/start.ts';
import { type EnforcerProcess, freePort, startEnforcerProcess } from '../../enforcer/src/launch.ts';
import { envoyBinary, keySecret, keyValue, render, startEchoUpstream } from '../../enforcer/testing/e2e.ts';
import { waitFor } from '../ground/wait.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ strict: true }));
const validView = ajv.compile(SelfServiceAnswer);
const validQuotas = ajv.compile(QuotasAnswer);

const NS = 'keystile-e2e-self';
const PROD = `${NS}/orders/prod`;
const BETA = `${NS}/orders/beta`;

function resources(): string {
  const doc = (kind: string, name: string, spec: Record<string, unknown>): Record<string, unknown> => ({
    apiVersion: 'keystile.dev/v1alpha1',
    kind,
    metadata: { name },
    spec,
  });
  return [
    doc('UsagePlan', 'gold', {
      throttle: { rateLimit: 100, burstLimit: 100 },
      quota: { limit: 1000, period: 'MONTH' },
    }),
    doc('UsagePlan', 'small', {
      throttle: { rateLimit: 100, burstLimit: 100 },
      quota: { limit: 3, period: 'MONTH' },
    }),
    doc('ApiKey', 'good', { customer: 'acme' }),
    doc('ApiKey', 'disabled', { enabled: false }),
    doc('ApiKey', 'beta-only', {}),
    doc('ApiKey', 'small', {}),
    doc('ApiKey', 'pair', { type: 'KeyPair' }),
    doc('PlanBinding', 'gold-prod', {
      planRef: { name: 'gold' },
      keys: { names: ['good', 'disabled', 'pair'] },
      apiStages: [{ api: 'orders', stage: 'prod' }],
    }),
    doc('PlanBinding', 'gold-beta', {
      planRef: { name: 'gold' },
      keys: { names: ['beta-only'] },
      apiStages: [{ api: 'orders', stage: 'beta' }],
    }),
    doc('PlanBinding', 'small-prod', {
      planRef: { name: 'small' },
      keys: { names: ['small'] },
      apiStages: [{ api: 'orders', stage: 'prod' }],
    }),
  ]
    .map((d) => stringify(d))
    .join('---\n');
}

/** An enforcer (with its self-service port) behind Envoy, on ports kept across a restart of the enforcer. */
interface Stack {
  readonly urls: ReadonlyMap<string, string>;
  readonly adminUrl: string;
  enforcer: EnforcerProcess;
  readonly envoy: EnvoyProcess;
  /** Stops the enforcer (SIGTERM: it checkpoints) and starts it again on the same ports and files. */
  restartEnforcer(): Promise<void>;
  stop(): Promise<void>;
}

async function startStack(mode: 'http' | 'grpc', dir: string, config: string): Promise<Stack> {
  const upstream = await startEchoUpstream();
  const ports = {
    httpPort: await freePort(),
    grpcPort: await freePort(),
    adminPort: await freePort(),
    selfService: await freePort(),
  };
  const launch = (): Promise<EnforcerProcess> =>
    startEnforcerProcess({
      config,
      countersFile: join(dir, 'counters.ndjson'),
      httpPort: ports.httpPort,
      grpcPort: ports.grpcPort,
      adminPort: ports.adminPort,
      args: ['--self-service-port', String(ports.selfService), '--poll-interval', '1'],
      logFile: join(dir, `enforcer-${mode}.log`),
    });
  let enforcer = await launch();
  const listeners = [
    { stage: PROD, port: await freePort() },
    { stage: BETA, port: await freePort() },
  ];
  const envoy = await startEnvoy({
    binary: envoyBinary(),
    dir: mkdtempSync(join(dir, `envoy-${mode}-`)),
    config: envoyWithEnforcer({
      mode,
      listeners,
      adminPort: await freePort(),
      upstreamPort: upstream.port,
      enforcerHttpPort: ports.httpPort,
      enforcerGrpcPort: ports.grpcPort,
      enforcerSelfServicePort: ports.selfService,
      timeout: '2s',
    }),
  }).catch(async (err: unknown) => {
    await enforcer.stop();
    await upstream.close();
    throw err;
  });
  const stack: Stack = {
    urls: new Map(listeners.map((l) => [l.stage, `http://127.0.0.1:${l.port}`])),
    adminUrl: `http://127.0.0.1:${ports.adminPort}`,
    enforcer,
    envoy,
    restartEnforcer: async () => {
      await stack.enforcer.stop();
      enforcer = await launch();
      stack.enforcer = enforcer;
    },
    stop: async () => {
      await envoy.stop();
      await stack.enforcer.stop();
      await upstream.close();
    },
  };
  return stack;
}

interface Got {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Got> {
  const res = await fetch(url, { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function view(got: Got): SelfServiceAnswer {
  expect(got.status, got.text).toBe(200);
  const body: unknown = JSON.parse(got.text);
  expect(validView(body), JSON.stringify(validView.errors)).toBe(true);
  return body as SelfServiceAnswer;
}

/** A GET with node:http, which sends the path as given; its status. */
function rawGet(base: string, path: string, headers: Record<string, string>): Promise<number> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The quota's remaining units in a RateLimit field. */
const quotaLeft = (got: Got): number =>
  Number(/"quota";r=(\d+)/.exec(got.headers.get('ratelimit') ?? '')?.[1]);

describe.each(['http', 'grpc'] as const)("a key holder's own view through Envoy, %s ext_authz", (mode) => {
  let dir: string;
  let keys: string;
  let stack: Stack;
  let prod: string;
  const value = (name: string): string => keyValue(keys, name);
  const usage = (key: string | undefined, base = prod): Promise<Got> =>
    get(`${base}${SELF_SERVICE_PUBLIC_PATH}`, key === undefined ? {} : { 'x-api-key': key });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `keystile-e2e-self-${mode}-`));
    const files = await render(dir, resources(), { namespace: NS });
    keys = files.keys;
    stack = await startStack(mode, dir, files.config);
    prod = stack.urls.get(PROD)!;
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it("shows the key's plan, usage and remaining quota, without reaching the upstream", async () => {
    const got = await usage(value('good'));
    const body = view(got);
    const month = periodWindow({ period: 'MONTH', timeZone: 'UTC' }, Date.now());
    expect(body).toMatchObject({
      keyId: keySecret(keys, 'good')['keyId'],
      apiStage: PROD,
      plan: 'gold',
      customer: 'acme',
      countBy: 'Key',
      throttle: { rate: 100, burst: 100 },
      quota: {
        limit: 1000,
        period: 'MONTH',
        periodId: month.id,
        periodStart: new Date(month.start).toISOString(),
        periodEnd: new Date(month.end).toISOString(),
        granted: 0,
      },
    });
    expect(body.quota!.used + body.quota!.remaining).toBe(1000);
    expect(got.text).not.toContain(value('good'));
  });

  it('costs nothing: usage moves with real requests only', async () => {
    const key = value('good');
    const before = view(await usage(key)).quota!;
    for (let i = 0; i < 5; i++) view(await usage(key));
    const request = await get(`${prod}/v1/orders`, { 'x-api-key': key });
    expect(request.status).toBe(200);
    const after = view(await usage(key)).quota!;
    expect(after.used).toBe(before.used + 1);
    expect(after.remaining).toBe(before.remaining - 1);
    // What the real request was told is what the view says.
    expect(quotaLeft(request)).toBe(after.remaining);
    expect(view(await usage(key)).quota!.used).toBe(after.used);
  });

  it('identifies a key pair that signed the public path it asked on (Envoy keeps it when it rewrites)', async () => {
    const { secretId, secretKey } = keySecret(keys, 'pair') as { secretId: string; secretKey: string };
    const signed = (path: string): Record<string, string> => {
      const headers = { 'x-date': imfFixdate(Date.now()), source: 'e2e' };
      return {
        ...headers,
        authorization: signRequest({ secretId, secretKey, headers, method: 'GET', path }),
      };
    };
    const url = `${prod}${SELF_SERVICE_PUBLIC_PATH}`;
    expect(view(await get(url, signed(SELF_SERVICE_PUBLIC_PATH)))).toMatchObject({
      keyId: keySecret(keys, 'pair')['keyId'],
      plan: 'gold',
    });
    // Signed for the path Envoy rewrites to, or another one: refused.
    expect((await get(url, signed(`/v1/usage/${PROD}`))).status).toBe(403);
    expect((await get(url, signed('/v1/orders'))).status).toBe(403);
  });

  it.each([
    ['no key', undefined],
    ['an unknown key', generateKey().value],
    ['a malformed key', 'ks_short'],
    ['a disabled key', 'disabled'],
    ['a key bound on another stage only', 'beta-only'],
  ])('refuses %s with 403 Forbidden, as a check does', async (_name, key) => {
    const presented = key === 'disabled' || key === 'beta-only' ? value(key) : key;
    const got = await usage(presented);
    expect(got.status).toBe(403);
    expect(JSON.parse(got.text)).toEqual({ message: 'Forbidden' });
    const checked = await get(`${prod}/v1/orders`, presented === undefined ? {} : { 'x-api-key': presented });
    expect(checked.status).toBe(403);
    expect(checked.text).toBe(got.text);
  });

  it("serves each listener's own stage: the client cannot name another", async () => {
    // The beta key on the beta listener: its view.
    expect(view(await usage(value('beta-only'), stack.urls.get(BETA))).apiStage).toBe(BETA);
    // The enforcer's own path through Envoy is an ordinary (checked) route to the upstream, not the view.
    const direct = await get(`${prod}/v1/usage/${BETA}`, { 'x-api-key': value('good') });
    expect(direct.status).toBe(200);
    expect(JSON.parse(direct.text)).toMatchObject({ path: `/v1/usage/${BETA}` });
    // Neither do a query, a longer path nor a dot segment reach another stage's view.
    expect(
      view(await get(`${prod}${SELF_SERVICE_PUBLIC_PATH}?stage=beta`, { 'x-api-key': value('good') }))
        .apiStage,
    ).toBe(PROD);
    // A dot segment sent as is (fetch would resolve it): Envoy normalises the path before routing, so it
    // is the checked route, and beta's key is not bound on prod.
    const dotted = await rawGet(prod, `${SELF_SERVICE_PUBLIC_PATH}/../../v1/usage/${BETA}`, {
      'x-api-key': value('beta-only'),
    });
    expect(dotted).toBe(403);
  });
});

describe('a quota adjustment in the standalone config', () => {
  let dir: string;
  let keys: string;
  let config: string;
  let stack: Stack;
  let prod: string;
  const period = periodWindow({ period: 'MONTH', timeZone: 'UTC' }, Date.now()).id;

  /** Adds adjustments to the prod stage's index of the rendered config (a new revision), validated by the contract. */
  function addAdjustments(adjustments: RenderedAdjustment[]): void {
    const parsed = JSON.parse(readFileSync(config, 'utf8')) as StandaloneConfig;
    for (const stage of parsed.stages) {
      if (
        `${stage.index.apiStage.namespace}/${stage.index.apiStage.api}/${stage.index.apiStage.stage}` !== PROD
      ) {
        continue;
      }
      stage.index.adjustments = adjustments;
      stage.index.revision = createHash('sha256')
        .update(JSON.stringify({ revision: stage.index.revision, adjustments }))
        .digest('hex');
    }
    const text = JSON.stringify(parsed, null, 2);
    const checked = parseStandalone(text);
    expect(checked.ok, checked.ok ? '' : checked.error).toBe(true);
    // One rename, as a careful deployment would: the watcher never reads half a file.
    writeFileSync(`${config}.next`, text);
    renameSync(`${config}.next`, config);
  }

  const remaining = async (): Promise<SelfServiceAnswer['quota']> =>
    view(await get(`${prod}${SELF_SERVICE_PUBLIC_PATH}`, { 'x-api-key': keyValue(keys, 'small') })).quota;
  const appliedMetric = async (): Promise<number> => {
    const text = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    return Number(
      /^keystile_adjustments_applied_total\{plan="keystile-e2e-self\/small"\} (\d+)$/m.exec(text)?.[1] ?? 0,
    );
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keystile-e2e-adjust-'));
    const files = await render(dir, resources(), { namespace: NS });
    keys = files.keys;
    config = files.config;
    stack = await startStack('http', dir, config);
    prod = stack.urls.get(PROD)!;
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('raises what is left, once, also across an enforcer restart with --counters-file', async () => {
    const key = { 'x-api-key': keyValue(keys, 'small') };
    const call = (): Promise<Got> => get(`${prod}/v1/orders`, key);
    // Use up the quota of 3.
    for (let i = 0; i < 3; i++) expect((await call()).status).toBe(200);
    expect((await call()).status).toBe(429);
    expect(await remaining()).toMatchObject({ limit: 3, used: 3, granted: 0, remaining: 0 });

    const subject = `key:${keySecret(keys, 'small')['keyId']}`;
    addAdjustments([{ id: 'grant-two', plan: 'small', subject, period, amount: 2 }]);
    await waitFor(
      'the adjustment to be applied',
      async () => (await remaining())?.granted === 2,
      15_000,
      100,
    );
    expect(await remaining()).toMatchObject({ used: 3, granted: 2, remaining: 2 });
    expect(await appliedMetric()).toBe(1);
    const quotas: unknown = await (await fetch(`${stack.adminUrl}${USAGE_API_PATHS.quotas}`)).json();
    expect(validQuotas(quotas)).toBe(true);
    expect(quotas).toMatchObject({ store: 'memory', adjustments: ['grant-two'] });

    // The enforcer stops (and checkpoints) and starts again on the same config: not applied twice.
    await stack.restartEnforcer();
    expect(await remaining()).toMatchObject({ used: 3, granted: 2, remaining: 2 });
    expect(await appliedMetric()).toBe(0);
    // The grant is real: two more requests pass, the third does not.
    expect((await call()).status).toBe(200);
    expect((await call()).status).toBe(200);
    const refused = await call();
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.text)).toEqual({ message: 'Limit Exceeded' });
    expect(await remaining()).toMatchObject({ used: 5, granted: 2, remaining: 0 });

    // A config with a second adjustment (and the first still listed) applies only the new one.
    addAdjustments([
      { id: 'grant-two', plan: 'small', subject, period, amount: 2 },
      { id: 'take-one', plan: 'small', subject, period, amount: -1 },
    ]);
    await waitFor(
      'the second adjustment to be applied',
      async () => (await remaining())?.granted === 1,
      15_000,
      100,
    );
    expect(await remaining()).toMatchObject({ used: 5, granted: 1, remaining: 0 });
    expect(await appliedMetric()).toBe(1);
  });
});
