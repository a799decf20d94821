import { describe, expect, it } from 'vitest';
import { generateKey, generateKeyPair, hashKey } from '../../../contract/src/key-format.ts';
import { catalogOf, type FixtureKey, plan, stageDocuments } from '../../testing/fixtures.ts';
import type { Catalog } from '../catalog/catalog.ts';
import { MemoryStore } from '../store/memory-store.ts';
import type { CounterStore } from '../store/store.ts';
import { manualClock } from './clock.ts';
import {
  type CheckRequest,
  decide,
  decideContext,
  type Decision,
  type DecideOptions,
  identify,
  isDecision,
  sha256Hex,
} from './decide.ts';
import { EnforcerMetrics, METRIC_NAMES } from '../telemetry/metrics.ts';
import { imfFixdate, signRequest } from './key-pair-signature.ts';

const PROD = { namespace: 'shop', api: 'orders', stage: 'prod' };
const BETA = { namespace: 'shop', api: 'orders', stage: 'beta' };
const T0 = Date.UTC(2026, 0, 31, 23, 0, 0); // one hour before February

const OPTIONS: DecideOptions = {
  keySources: [{ kind: 'header', name: 'x-api-key' }],
  keyPairs: true,
  signature: {},
  problemJson: false,
  failOpen: false,
  stripKey: true,
};

const gold = generateKey('goldkey2abcd');
const other = generateKey('otherkey2abc');
const disabled = generateKey('disabledkey2');
const expired = generateKey('expiredkey2a');
const betaOnly = generateKey('betaonlykey2');
const pair = generateKeyPair();

function req(
  headers: Record<string, string>,
  path = '/v1/orders',
  method = 'GET',
  stage = 'shop/orders/prod',
): CheckRequest {
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { stage, method, path, header: (n) => lower.get(n) };
}

interface Fixture {
  catalog: Catalog;
  store: MemoryStore;
  clock: ReturnType<typeof manualClock>;
  run(r: CheckRequest, options?: Partial<DecideOptions>, store?: CounterStore): Decision;
}

async function fixture(
  plans: Parameters<typeof plan>[2][] = [
    { throttle: { rate: 1, burst: 2 }, quota: { limit: 5, period: 'MONTH', timeZone: 'UTC' } },
  ],
  extraKeys: FixtureKey[] = [],
): Promise<Fixture> {
  const renderedPlans = plans.map((p, i) => plan('shop', i === 0 ? 'gold' : `plan${i}`, p));
  const keys: FixtureKey[] = [
    { id: gold.keyId, plan: 'gold', values: [{ value: gold.value }], customer: 'acme' },
    { id: other.keyId, plan: 'gold', values: [{ value: other.value }] },
    { id: disabled.keyId, plan: 'gold', values: [{ value: disabled.value }], enabled: false },
    {
      id: expired.keyId,
      plan: 'gold',
      values: [{ value: expired.value }],
      expiresAt: new Date(T0 - 1).toISOString(),
    },
    { id: 'pairkey2abcd', plan: 'gold', secretId: pair.secretId, secretKeys: [{ value: pair.secretKey }] },
    ...extraKeys,
  ];
  const catalog = await catalogOf(
    stageDocuments(PROD, renderedPlans, keys),
    stageDocuments(BETA, renderedPlans, [
      { id: betaOnly.keyId, plan: 'gold', values: [{ value: betaOnly.value }] },
    ]),
  );
  const store = new MemoryStore();
  const clock = manualClock(T0);
  return {
    catalog,
    store,
    clock,
    run: (r, options = {}, s = store) => {
      const d = decide(catalog, r, s, clock, decideContext({ ...OPTIONS, ...options }));
      if (d instanceof Promise) throw new Error('the memory store decides synchronously');
      return d;
    },
  };
}

describe('decide: the answers of DESIGN.md', () => {
  it('allows a valid key: upstream headers name the key id and plan, never the key; RateLimit fields for the client', async () => {
    const f = await fixture();
    const d = f.run(req({ 'x-api-key': gold.value }));
    expect(d).toMatchObject({
      allowed: true,
      status: 200,
      reason: 'Allowed',
      keyId: gold.keyId,
      plan: 'shop/gold',
    });
    expect(d.upstreamHeaders).toEqual({
      'x-keystile-key-id': gold.keyId,
      'x-keystile-plan': 'gold',
      'x-keystile-customer': 'acme',
    });
    expect(JSON.stringify(d)).not.toContain(gold.value);
    // The key's header is stripped, and so is any x-keystile-* header the enforcer did not set.
    expect(d.removeHeaders).toEqual(['x-keystile-shadow', 'x-api-key']);
    // burst 2, rate 1/s: 1 left, full again in 1 s; quota 5 a month: 4 left, 3600 s to February.
    expect(d.clientHeaders).toEqual({
      'ratelimit-policy': '"burst";q=2;w=2, "quota";q=5;w=2678400',
      ratelimit: '"burst";r=1;t=1, "quota";r=4;t=3600',
    });
  });

  it.each([
    ['no key', {}, 'MissingKey'],
    ['an unknown key', { 'x-api-key': generateKey().value }, 'UnknownKey'],
    ['an unknown imported value', { 'x-api-key': 'imported-value-0123456789' }, 'UnknownKey'],
    [
      'a key with a bad checksum',
      { 'x-api-key': `${gold.value.slice(0, -1)}${gold.value.endsWith('A') ? 'B' : 'A'}` },
      'MalformedKey',
    ],
    ['a too short value', { 'x-api-key': 'short' }, 'MalformedKey'],
    ['an empty value', { 'x-api-key': '' }, 'MalformedKey'],
    ['a disabled key', { 'x-api-key': disabled.value }, 'KeyDisabled'],
    ['an expired key', { 'x-api-key': expired.value }, 'KeyExpired'],
    ['a key bound on another stage only', { 'x-api-key': betaOnly.value }, 'KeyNotBound'],
  ])('refuses %s with 403 Forbidden', async (_name, headers, reason) => {
    const f = await fixture();
    const d = f.run(req(headers));
    expect(d).toMatchObject({ allowed: false, status: 403, reason, body: '{"message":"Forbidden"}' });
    expect(d.clientHeaders['content-type']).toBe('application/json');
    expect(d.clientHeaders['ratelimit']).toBeUndefined();
  });

  it('refuses a check for a stage it has no config for, or naming none (UnknownStage)', async () => {
    const f = await fixture();
    expect(f.run(req({ 'x-api-key': gold.value }, '/', 'GET', 'shop/orders/dev')).reason).toBe(
      'UnknownStage',
    );
    const none = { ...req({ 'x-api-key': gold.value }), stage: undefined };
    expect(f.run(none)).toMatchObject({ status: 403, reason: 'UnknownStage' });
  });

  it('throttles a burst over the bucket with 429 Too Many Requests and Retry-After, using no quota', async () => {
    const f = await fixture();
    const key = { 'x-api-key': gold.value };
    expect(f.run(req(key)).status).toBe(200);
    expect(f.run(req(key)).status).toBe(200);
    const d = f.run(req(key));
    expect(d).toMatchObject({ status: 429, reason: 'Throttled', body: '{"message":"Too Many Requests"}' });
    expect(d.clientHeaders['retry-after']).toBe('1');
    expect(d.clientHeaders['ratelimit']).toBe('"burst";r=0;t=2, "quota";r=3;t=3600');
    f.clock.advance(1000);
    const after = f.run(req(key));
    // The throttled request used no quota: 5 - 3 allowed = 2 left.
    expect(after.status).toBe(200);
    expect(after.clientHeaders['ratelimit']).toContain('"quota";r=2;');
  });

  it('answers quota + 1 with 429 Limit Exceeded and Retry-After until the period ends; the refusal takes no token', async () => {
    const f = await fixture([
      { throttle: { rate: 100, burst: 100 }, quota: { limit: 3, period: 'MONTH', timeZone: 'UTC' } },
    ]);
    const key = { 'x-api-key': gold.value };
    for (let i = 0; i < 3; i++) expect(f.run(req(key)).status).toBe(200);
    const d = f.run(req(key));
    expect(d).toMatchObject({ status: 429, reason: 'QuotaExceeded', body: '{"message":"Limit Exceeded"}' });
    expect(d.clientHeaders['retry-after']).toBe('3600');
    // 3 tokens taken by the allowed requests, none by the refusal.
    expect(d.clientHeaders['ratelimit']).toBe('"burst";r=97;t=1, "quota";r=0;t=3600');
    // A new month: a new quota.
    f.clock.advance(3600_000);
    expect(f.run(req(key)).status).toBe(200);
  });

  it('counts by key: another key on the plan has its own bucket and quota', async () => {
    const f = await fixture();
    f.run(req({ 'x-api-key': gold.value }));
    f.run(req({ 'x-api-key': gold.value }));
    expect(f.run(req({ 'x-api-key': gold.value })).status).toBe(429);
    expect(f.run(req({ 'x-api-key': other.value })).status).toBe(200);
  });

  it('counts by customer when the plan says so: keys of one customer share the quota', async () => {
    const second = generateKey('secondacme22');
    const f = await fixture(
      [{ quota: { limit: 2, period: 'DAY', timeZone: 'UTC' }, countBy: 'Customer' }],
      [{ id: second.keyId, plan: 'gold', values: [{ value: second.value }], customer: 'acme' }],
    );
    expect(f.run(req({ 'x-api-key': gold.value })).status).toBe(200);
    expect(f.run(req({ 'x-api-key': second.value })).status).toBe(200);
    expect(f.run(req({ 'x-api-key': second.value })).reason).toBe('QuotaExceeded');
    // A key without a customer is counted alone.
    expect(f.run(req({ 'x-api-key': other.value })).status).toBe(200);
  });
});

describe('decide: routes', () => {
  const withRoutes = {
    throttle: { rate: 100, burst: 100 },
    quota: { limit: 25, period: 'DAY' as const, timeZone: 'UTC' },
    routes: [
      { name: 'reports', methods: ['*'], path: '/v1/reports/**', cost: 10 },
      {
        name: 'order-writes',
        methods: ['POST', 'PUT'],
        path: '/v1/orders/**',
        throttle: { rate: 1, burst: 1 },
        cost: 1,
      },
    ],
  };

  it('charges a route its weighted cost', async () => {
    const f = await fixture([withRoutes]);
    const key = { 'x-api-key': gold.value };
    expect(f.run(req(key, '/v1/reports/monthly?format=csv'))).toMatchObject({
      status: 200,
      route: 'reports',
    });
    expect(f.run(req(key, '/v1/reports')).clientHeaders['ratelimit']).toContain('"quota";r=5;');
    expect(f.run(req(key, '/v1/reports/')).reason).toBe('QuotaExceeded');
    // Cheaper requests still fit.
    expect(f.run(req(key, '/v1/catalog')).status).toBe(200);
  });

  it('lets no encoded slash dodge a route (an upstream may decode %2F into a separator)', async () => {
    const f = await fixture([withRoutes]);
    const key = { 'x-api-key': gold.value };
    expect(f.run(req(key, '/v1%2Freports%2fmonthly'))).toMatchObject({ status: 200, route: 'reports' });
    expect(f.run(req(key, '/v1/orders%2F1', 'POST'))).toMatchObject({ status: 200, route: 'order-writes' });
    expect(f.run(req(key, '/v1/orders%2F2', 'POST'))).toMatchObject({ status: 429, reason: 'Throttled' });
  });

  it('lets no doubled slash dodge a route (when the proxy does not merge slashes)', async () => {
    const f = await fixture([withRoutes]);
    const key = { 'x-api-key': gold.value };
    expect(f.run(req(key, '/v1//reports/monthly'))).toMatchObject({ status: 200, route: 'reports' });
    expect(f.run(req(key, '//v1/orders//1', 'POST'))).toMatchObject({ status: 200, route: 'order-writes' });
    expect(f.run(req(key, '/v1/orders///2', 'POST'))).toMatchObject({ status: 429, reason: 'Throttled' });
  });

  it("applies a route's throttle instead of the plan's, to matching methods only", async () => {
    const f = await fixture([withRoutes]);
    const key = { 'x-api-key': gold.value };
    expect(f.run(req(key, '/v1/orders/1', 'POST')).status).toBe(200);
    const d = f.run(req(key, '/v1/orders/2', 'post'));
    expect(d).toMatchObject({ status: 429, reason: 'Throttled', route: 'order-writes' });
    expect(d.clientHeaders['ratelimit-policy']).toContain('"burst";q=1;w=1');
    // GET is not on the route: the plan's bucket of 100 applies.
    for (let i = 0; i < 5; i++) expect(f.run(req(key, '/v1/orders/2', 'GET')).status).toBe(200);
  });
});

describe('decide: shadow mode', () => {
  it('decides and counts as enforcing would, and allows, reporting what it would have denied', async () => {
    const f = await fixture([
      {
        throttle: { rate: 1, burst: 1 },
        quota: { limit: 2, period: 'MONTH', timeZone: 'UTC' },
        shadow: true,
      },
    ]);
    const key = { 'x-api-key': gold.value };
    expect(f.run(req(key)).reason).toBe('Allowed');
    const throttled = f.run(req(key));
    expect(throttled).toMatchObject({
      allowed: true,
      status: 200,
      reason: 'ShadowThrottled',
      wouldDeny: 'Throttled',
    });
    expect(throttled.upstreamHeaders['x-keystile-shadow']).toBe('throttled');
    expect(throttled.clientHeaders['retry-after']).toBeUndefined();
    f.clock.advance(1000);
    expect(f.run(req(key)).reason).toBe('Allowed');
    f.clock.advance(1000);
    const over = f.run(req(key));
    expect(over).toMatchObject({ allowed: true, reason: 'ShadowQuotaExceeded', wouldDeny: 'QuotaExceeded' });
    // The counters are what enforcing would have left: 2 used, the refusals charged nothing.
    expect(over.clientHeaders['ratelimit']).toContain('"quota";r=0;');
    expect([...f.store.quotas()].map(([, q]) => q.used)).toEqual([2]);
  });
});

describe('decide: rotation', () => {
  it('accepts a rotated-out value until its validUntil, and not after; usage stays with the key id', async () => {
    const old = generateKey('rotatedkey22');
    const current = generateKey('rotatedkey22');
    const until = new Date(T0 + 60_000).toISOString();
    const f = await fixture(
      [{ quota: { limit: 10, period: 'MONTH', timeZone: 'UTC' } }],
      [
        {
          id: 'rotatedkey22',
          plan: 'gold',
          values: [{ value: current.value }, { value: old.value, validUntil: until }],
        },
      ],
    );
    expect(f.run(req({ 'x-api-key': old.value }))).toMatchObject({ status: 200, keyId: 'rotatedkey22' });
    const d = f.run(req({ 'x-api-key': current.value }));
    expect(d.clientHeaders['ratelimit']).toContain('"quota";r=8;');
    f.clock.advance(60_000);
    expect(f.run(req({ 'x-api-key': old.value }))).toMatchObject({ status: 403, reason: 'KeyRotatedOut' });
    expect(f.run(req({ 'x-api-key': current.value })).clientHeaders['ratelimit']).toContain('"quota";r=7;');
  });
});

describe('decide: key sources', () => {
  it('reads Authorization: Bearer, a query parameter, or another header when configured, in order', async () => {
    const f = await fixture();
    const bearer = f.run(req({ authorization: `Bearer ${gold.value}` }), {
      keySources: [{ kind: 'bearer' }],
    });
    expect(bearer).toMatchObject({
      status: 200,
      removeHeaders: expect.arrayContaining(['authorization']) as unknown,
    });
    const query = f.run(req({}, `/v1/orders?a=1&api_key=${encodeURIComponent(gold.value)}`), {
      keySources: [{ kind: 'query', name: 'api_key' }],
    });
    expect(query.status).toBe(200);
    expect(query.removeHeaders).not.toContain('x-api-key');
    const custom = f.run(req({ 'x-key': other.value, 'x-api-key': 'ignored' }), {
      keySources: [
        { kind: 'header', name: 'x-key' },
        { kind: 'header', name: 'x-api-key' },
      ],
    });
    expect(custom).toMatchObject({ status: 200, keyId: other.keyId });
    // Not configured: the default header only.
    expect(f.run(req({ authorization: `Bearer ${gold.value}` })).reason).toBe('MissingKey');
  });

  it('reads no key from a query parameter whose name is percent-encoded (Envoy would not strip it), nor from an empty bearer', async () => {
    const f = await fixture();
    const options = { keySources: [{ kind: 'query', name: 'api_key' }, { kind: 'bearer' }] } as const;
    for (const name of ['api%5Fkey', 'api%5fkey', '%61pi_key']) {
      expect(f.run(req({}, `/v1/orders?${name}=${gold.value}`), options).reason, name).toBe('MissingKey');
    }
    expect(f.run(req({ authorization: 'Bearer \t ' }), options).reason).toBe('MissingKey');
  });
});

describe('decide: key pairs', () => {
  function signed(
    extra: Record<string, string> = {},
    date = T0,
    secretKey = pair.secretKey,
    withMethodPath = false,
  ): Record<string, string> {
    const headers = { 'x-date': imfFixdate(date), source: 'test', ...extra };
    return {
      ...headers,
      authorization: signRequest({
        secretId: pair.secretId,
        secretKey,
        headers,
        ...(withMethodPath && { method: 'GET', path: '/v1/orders' }),
      }),
    };
  }

  it('allows a valid signature', async () => {
    const f = await fixture();
    const d = f.run(req(signed()));
    expect(d).toMatchObject({ status: 200, keyId: 'pairkey2abcd' });
    // The signature can be replayed while its date is fresh: Authorization is stripped as a key is.
    expect(d.removeHeaders).toContain('authorization');
    const kept = f.run(req(signed()), { stripKey: false });
    expect(kept).toMatchObject({ status: 200, keyId: 'pairkey2abcd' });
    expect(kept.removeHeaders).not.toContain('authorization');
  });

  it.each([
    ['a bad signature', () => signed({}, T0, 'x'.repeat(40)), 'BadSignature'],
    ['a stale date', () => signed({}, T0 - 16 * 60_000), 'StaleSignature'],
    ['a date from the future beyond the window', () => signed({}, T0 + 16 * 60_000), 'StaleSignature'],
    [
      'an unknown SecretId',
      () => ({ ...signed(), authorization: signed().authorization!.replace(pair.secretId, 'AKIDunknown') }),
      'UnknownKey',
    ],
    ['a malformed header', () => ({ authorization: 'hmac id="x", nonsense' }), 'MalformedSignature'],
    ['a tampered signed header', () => ({ ...signed(), source: 'other' }), 'BadSignature'],
  ])('refuses %s with 403', async (_name, headers, reason) => {
    const f = await fixture();
    expect(f.run(req(headers()))).toMatchObject({ status: 403, reason });
  });

  it('honours a configured freshness window and the method-and-path requirement', async () => {
    const f = await fixture();
    expect(f.run(req(signed({}, T0 - 120_000)), { signature: { maxSkewMs: 60_000 } }).reason).toBe(
      'StaleSignature',
    );
    expect(f.run(req(signed()), { signature: { requireMethodAndPath: true } }).reason).toBe(
      'MethodPathNotSigned',
    );
    expect(
      f.run(req(signed({}, T0, pair.secretKey, true)), { signature: { requireMethodAndPath: true } }).status,
    ).toBe(200);
    // Signed for GET /v1/orders: another path does not verify.
    expect(
      f.run(req(signed({}, T0, pair.secretKey, true), '/v1/admin'), {
        signature: { requireMethodAndPath: true },
      }).reason,
    ).toBe('BadSignature');
  });

  it('accepts a rotated-out SecretKey until its validUntil', async () => {
    const next = generateKeyPair();
    const f = await fixture(undefined, [
      {
        id: 'pairrotated2',
        plan: 'gold',
        secretId: next.secretId,
        secretKeys: [
          { value: next.secretKey },
          { value: pair.secretKey, validUntil: new Date(T0 + 1000).toISOString() },
        ],
      },
    ]);
    const sign = (secretKey: string): Record<string, string> => {
      const headers = { 'x-date': imfFixdate(f.clock.now()) };
      return { ...headers, authorization: signRequest({ secretId: next.secretId, secretKey, headers }) };
    };
    expect(f.run(req(sign(pair.secretKey))).status).toBe(200);
    expect(f.run(req(sign(next.secretKey))).status).toBe(200);
    f.clock.advance(1000);
    expect(f.run(req(sign(pair.secretKey))).reason).toBe('KeyRotatedOut');
    expect(f.run(req(sign(next.secretKey))).status).toBe(200);
  });

  it('ignores signatures when key pairs are turned off', async () => {
    const f = await fixture();
    expect(f.run(req(signed()), { keyPairs: false }).reason).toBe('MissingKey');
  });
});

/** Stores that fail: `consume` throwing, or rejecting. */
const down = (): Promise<never> => Promise.reject(new Error('down'));
const throwing: CounterStore = {
  consume: () => {
    throw new Error('down');
  },
  adjust: down,
  readQuotas: down,
  readDays: down,
  close: () => Promise.resolve(),
};
const rejecting: CounterStore = { ...throwing, consume: down };

describe('decide: configured answers, problem documents, failures', () => {
  it("answers with the plan's configured response for its denial type", async () => {
    const f = await fixture([
      {
        throttle: { rate: 1, burst: 1 },
        responses: [
          {
            type: 'Throttled',
            status: 503,
            body: 'slow down',
            contentType: 'text/plain',
            headers: { 'X-Plan': 'gold' },
          },
          { type: 'Forbidden', status: 401 },
        ],
      },
    ]);
    f.run(req({ 'x-api-key': gold.value }));
    const d = f.run(req({ 'x-api-key': gold.value }));
    expect(d).toMatchObject({ status: 503, reason: 'Throttled', body: 'slow down' });
    expect(d.clientHeaders).toMatchObject({
      'content-type': 'text/plain',
      'x-plan': 'gold',
      'retry-after': '1',
    });
    // The plan is known for a disabled key: its Forbidden answer applies, with the default body.
    expect(f.run(req({ 'x-api-key': disabled.value }))).toMatchObject({
      status: 401,
      body: '{"message":"Forbidden"}',
    });
    // An unknown key has no plan: the default answer.
    expect(f.run(req({ 'x-api-key': generateKey().value })).status).toBe(403);
  });

  it('writes application/problem+json bodies when configured', async () => {
    const f = await fixture();
    const d = f.run(req({}), { problemJson: true });
    expect(d.clientHeaders['content-type']).toBe('application/problem+json');
    expect(JSON.parse(d.body)).toEqual({
      type: 'https://keystile.dev/problems/forbidden',
      title: 'Forbidden',
      status: 403,
    });
  });

  it('fails closed with 503 when no config is loaded, or open when configured', async () => {
    const f = await fixture();
    const none = decide(
      undefined,
      req({ 'x-api-key': gold.value }),
      f.store,
      f.clock,
      decideContext(OPTIONS),
    );
    expect(none).toMatchObject({ allowed: false, status: 503, reason: 'NoConfig' });
    const open = decide(undefined, req({}), f.store, f.clock, decideContext({ ...OPTIONS, failOpen: true }));
    expect(open).toMatchObject({ allowed: true, status: 200, reason: 'FailOpen' });
    // Even failing open, a client's own x-keystile-* headers never reach the upstream.
    expect((open as Decision).removeHeaders).toContain('x-keystile-key-id');
  });

  it('fails closed with 503 when the store fails, synchronously or not', async () => {
    const f = await fixture();
    expect(f.run(req({ 'x-api-key': gold.value }), {}, throwing)).toMatchObject({
      status: 503,
      reason: 'InternalError',
    });
    const d = decide(f.catalog, req({ 'x-api-key': gold.value }), rejecting, f.clock, decideContext(OPTIONS));
    await expect(d).resolves.toMatchObject({ status: 503, reason: 'InternalError' });
  });
});

describe('decide: fail-open allows strip the key as a normal allow does', () => {
  const OPEN: DecideOptions = { ...OPTIONS, failOpen: true };
  /** The parts of an allow that reach the upstream. */
  const upstreamOf = (d: Decision) => ({
    allowed: d.allowed,
    upstreamHeaders: d.upstreamHeaders,
    removeHeaders: d.removeHeaders,
    removeQueryParameters: d.removeQueryParameters,
  });

  it('when the store fails: the key header or query parameter removed, the customer set', async () => {
    for (const stripKey of [true, false]) {
      const f = await fixture();
      const header = req({ 'x-api-key': gold.value });
      const normal = f.run(header, { stripKey });
      expect(normal.reason).toBe('Allowed');
      const failed = f.run(header, { ...OPEN, stripKey }, throwing);
      expect(failed.reason).toBe('FailOpen');
      expect(upstreamOf(failed)).toEqual(upstreamOf(normal));
      expect(failed.upstreamHeaders).toMatchObject({ 'x-keystile-customer': 'acme' });
      expect(failed.removeHeaders).not.toContain('x-keystile-customer');
      expect(failed.removeHeaders.includes('x-api-key')).toBe(stripKey);
      const later = decide(f.catalog, header, rejecting, f.clock, decideContext({ ...OPEN, stripKey }));
      expect(upstreamOf(await later)).toEqual(upstreamOf(normal));

      // A key in the query: its parameter is removed (a key without a customer: that header removed).
      const query = req({}, `/v1/orders?api_key=${other.value}`);
      const sources = { keySources: [{ kind: 'query', name: 'api_key' }] } as const;
      const normalQuery = f.run(query, { ...sources, stripKey });
      expect(normalQuery.reason).toBe('Allowed');
      const failedQuery = f.run(query, { ...OPEN, ...sources, stripKey }, throwing);
      expect(failedQuery.reason).toBe('FailOpen');
      expect(upstreamOf(failedQuery)).toEqual(upstreamOf(normalQuery));
      expect(failedQuery.removeQueryParameters).toEqual(stripKey ? ['api_key'] : []);
      expect(failedQuery.removeHeaders).toContain('x-keystile-customer');
    }
  });

  it('with no config, or a bug before the key is known: every configured key source removed', async () => {
    const f = await fixture();
    const keySources = [
      { kind: 'header', name: 'x-api-key' },
      { kind: 'header', name: 'x-other-key' },
      { kind: 'bearer' },
      { kind: 'query', name: 'api_key' },
    ] as const;
    const broken: CheckRequest = {
      ...req({}),
      header: () => {
        throw new Error('a bug');
      },
    };
    for (const stripKey of [true, false]) {
      const options = decideContext({ ...OPEN, keySources, stripKey });
      const none = decide(undefined, req({ 'x-api-key': gold.value }), f.store, f.clock, options);
      const bug = decide(f.catalog, broken, f.store, f.clock, options);
      for (const d of [none, bug] as Decision[]) {
        expect(d).toMatchObject({ allowed: true, reason: 'FailOpen', upstreamHeaders: {} });
        expect([...d.removeHeaders].sort()).toEqual(
          [
            'x-keystile-key-id',
            'x-keystile-plan',
            'x-keystile-customer',
            'x-keystile-shadow',
            ...(stripKey ? ['x-api-key', 'x-other-key', 'authorization'] : []),
          ].sort(),
        );
        expect(d.removeQueryParameters).toEqual(stripKey ? ['api_key'] : []);
      }
    }
    // Without a bearer source or key pairs, Authorization is left alone.
    const headerOnly = (options: Partial<DecideOptions>): Decision =>
      decide(undefined, req({}), f.store, f.clock, decideContext({ ...OPEN, ...options })) as Decision;
    expect(headerOnly({}).removeHeaders).toContain('x-api-key');
    expect(headerOnly({}).removeHeaders).toContain('authorization');
    expect(headerOnly({ keyPairs: false }).removeHeaders).toContain('x-api-key');
    expect(headerOnly({ keyPairs: false }).removeHeaders).not.toContain('authorization');
  });
});

describe('decide: usage per day and alert thresholds', () => {
  const DAY = 86_400_000;

  it("names the day counter by the plan's local day, kept for the retention, and passes the plan's thresholds", async () => {
    const f = await fixture([
      {
        quota: { limit: 10, period: 'MONTH', timeZone: 'America/New_York' },
        alertThresholds: [80, 100],
      },
    ]);
    const id = identify(
      f.catalog,
      req({ 'x-api-key': gold.value }),
      T0,
      decideContext({ ...OPTIONS, usageRetentionDays: 30 }),
    );
    if (isDecision(id)) throw new Error('not identified');
    // 2026-01-31T23:00Z is 18:00 on the 31st in New York; that day ends at 05:00Z on February 1st.
    expect(id.consume).toMatchObject({
      dayKey: `ks:{shop/gold|key:${gold.keyId}}:day:2026-01-31`,
      dayExpiresAt: Date.UTC(2026, 1, 1, 5) + 30 * DAY,
      thresholds: [80, 100],
    });
    // One hour later it is February in UTC but still January 31st in New York.
    const later = identify(
      f.catalog,
      req({ 'x-api-key': gold.value }),
      T0 + 3_600_000,
      decideContext(OPTIONS),
    );
    if (isDecision(later)) throw new Error('not identified');
    expect(later.consume.dayKey).toBe(`ks:{shop/gold|key:${gold.keyId}}:day:2026-01-31`);
    expect(later.consume.dayExpiresAt).toBe(Date.UTC(2026, 1, 1, 5) + 90 * DAY);
  });

  it('counts usage per UTC day for a plan without a quota, with no thresholds', async () => {
    const f = await fixture([{ throttle: { rate: 10, burst: 10 } }]);
    const id = identify(f.catalog, req({ 'x-api-key': gold.value }), T0 + 3_600_000, decideContext(OPTIONS));
    if (isDecision(id)) throw new Error('not identified');
    expect(id.consume).toMatchObject({
      dayKey: `ks:{shop/gold|key:${gold.keyId}}:day:2026-02-01`,
      dayExpiresAt: Date.UTC(2026, 1, 2) + 90 * DAY,
      thresholds: undefined,
    });
    f.run(req({ 'x-api-key': gold.value }));
    expect(await f.store.readDays([`ks:{shop/gold|key:${gold.keyId}}:day:2026-01-31`])).toEqual([1]);
  });

  it('puts the thresholds a request crossed on the decision, and the metric counts each once', async () => {
    const f = await fixture([
      { quota: { limit: 4, period: 'MONTH', timeZone: 'UTC' }, alertThresholds: [50, 100] },
    ]);
    const metrics = new EnforcerMetrics(true, false);
    const crossed: (readonly number[] | undefined)[] = [];
    for (let i = 0; i < 5; i++) {
      const d = f.run(req({ 'x-api-key': gold.value }));
      crossed.push(d.crossed);
      metrics.decided(d, 'http', 0.0001);
    }
    expect(crossed).toEqual([undefined, [50], undefined, [100], undefined]);
    const text = await metrics.registry.getSingleMetricAsString(METRIC_NAMES.quotaAlerts);
    for (const t of ['50', '100']) {
      expect(text).toContain(
        `keystile_quota_alerts_total{namespace="shop",api="orders",stage="prod",plan="shop/gold",key_id="${gold.keyId}",threshold="${t}"} 1`,
      );
    }
  });
});

describe('sha256Hex', () => {
  it('is hashKey, the one definition of a value hash (ADR 0001)', () => {
    for (const v of [gold.value, 'imported-value-0123456789', 'ünïcödé-value-0123456789', '']) {
      expect(sha256Hex(v)).toBe(hashKey(v));
    }
  });
});
