// The enforcer behind a real Envoy, over HTTP ext_authz and over gRPC ext_authz, on config written by
// the real `keystile render`: every answer of DESIGN.md's table, key pairs, routes, rotation, a config
// change without restart, fuzzed requests, and the enforcer stopped mid-traffic.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, hashKey } from '../../contract/src/key-format.ts';
import { imfFixdate, signRequest } from '../../enforcer/src/decision/key-pair-signature.ts';
import { call, keySecret, keyValue, render, type Stack, startStack } from '../../enforcer/testing/e2e.ts';
import { fuzzRandom } from '../../enforcer/testing/seeded.ts';
import { waitFor } from '../ground/wait.ts';

const NS = 'keystile-e2e';
const PROD = `${NS}/orders/prod`;
const BETA = `${NS}/orders/beta`;

function resources(disabled: readonly string[] = []): string {
  const key = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'ApiKey',
    metadata: { name },
    spec: { customer: 'acme', ...(disabled.includes(name) && { enabled: false }), ...extra },
  });
  const plan = (name: string, spec: Record<string, unknown>): Record<string, unknown> => ({
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'UsagePlan',
    metadata: { name },
    spec,
  });
  const binding = (
    name: string,
    planName: string,
    keys: string[],
    stages: string[],
  ): Record<string, unknown> => ({
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'PlanBinding',
    metadata: { name },
    spec: {
      planRef: { name: planName },
      keys: { names: keys },
      apiStages: stages.map((stage) => ({ api: 'orders', stage })),
    },
  });
  const docs = [
    plan('gold', {
      throttle: { rateLimit: 100, burstLimit: 100 },
      quota: { limit: 1000, period: 'DAY' },
      routes: [
        {
          name: 'order-writes',
          methods: ['POST'],
          path: '/v1/orders/**',
          throttle: { rateLimit: 0.1, burstLimit: 1 },
        },
      ],
    }),
    plan('tiny', { throttle: { rateLimit: 0.1, burstLimit: 3 } }),
    plan('small-quota', {
      throttle: { rateLimit: 100, burstLimit: 100 },
      quota: { limit: 3, period: 'DAY' },
    }),
    key('good'),
    key('disabled', { enabled: false }),
    key('expired', { expiresAt: '2020-01-01T00:00:00Z' }),
    key('beta-only'),
    key('pair', { type: 'KeyPair' }),
    key('rotated'),
    key('to-disable'),
    key('throttle-me'),
    key('quota-me'),
    binding('gold-prod', 'gold', ['good', 'disabled', 'expired', 'pair', 'rotated', 'to-disable'], ['prod']),
    binding('gold-beta', 'gold', ['beta-only'], ['beta']),
    binding('tiny-prod', 'tiny', ['throttle-me'], ['prod']),
    binding('small-prod', 'small-quota', ['quota-me'], ['prod']),
  ];
  return docs.map((d) => stringify(d)).join('---\n');
}

describe.each(['http', 'grpc'] as const)('the enforcer behind Envoy, %s ext_authz', (mode) => {
  let dir: string;
  let files: Awaited<ReturnType<typeof render>>;
  let stack: Stack;
  let prod: string;
  let beta: string;
  const value = (name: string): string => keyValue(files.keys, name);
  const get = (path: string, headers: Record<string, string> = {}, base = prod): ReturnType<typeof call> =>
    call(`${base}${path}`, { headers });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `keystile-e2e-enforcer-${mode}-`));
    files = await render(dir, resources(), { namespace: NS });
    stack = await startStack(
      mode,
      [PROD, BETA],
      // A query parameter as a second key source: the header comes first.
      {
        config: files.config,
        args: ['--poll-interval', '1', '--key-source', 'header:x-api-key,query:api_key'],
      },
      dir,
    );
    prod = stack.urls.get(PROD)!;
    beta = stack.urls.get(BETA)!;
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('lets a valid key through: the upstream sees the key id and plan, never the key, and no spoofed x-keystile-*', async () => {
    const res = await get('/v1/orders?page=2', {
      'x-api-key': value('good'),
      'x-keystile-key-id': 'spoofed',
      'x-keystile-shadow': 'spoofed',
    });
    expect(res.status).toBe(200);
    const seen = res.upstream!.headers;
    expect(res.upstream!.path).toBe('/v1/orders?page=2');
    expect(seen['x-keystile-key-id']).toBe(keySecret(files.keys, 'good')['keyId']);
    expect(seen['x-keystile-plan']).toBe('gold');
    expect(seen['x-keystile-customer']).toBe('acme');
    expect(seen['x-keystile-shadow']).toBeUndefined();
    expect(seen['x-api-key']).toBeUndefined();
    expect(res.text).not.toContain(value('good'));
    // The client is told its limits (RateLimit fields of draft-ietf-httpapi-ratelimit-headers-11).
    expect(res.headers.get('ratelimit-policy')).toMatch(/^"burst";q=100;w=1, "quota";q=1000;w=86400$/);
    expect(res.headers.get('ratelimit')).toMatch(/^"burst";r=99;t=1, "quota";r=999;t=\d+$/);
  });

  it('takes a key from the api_key query parameter: over gRPC Envoy removes it from the URL, over HTTP it stays', async () => {
    const res = await get(`/v1/orders?api_key=${value('good')}&page=2`);
    expect(res.status).toBe(200);
    expect(res.upstream!.headers['x-keystile-key-id']).toBe(keySecret(files.keys, 'good')['keyId']);
    // HTTP ext_authz cannot change the URL (docs/enforcer.md: prefer a header); gRPC's ok_response can.
    if (mode === 'grpc') expect(res.upstream!.path).toBe('/v1/orders?page=2');
    else expect(res.upstream!.path).toBe(`/v1/orders?api_key=${value('good')}&page=2`);
    // Envoy removes a parameter by its name as sent: under an encoded name the key would reach the
    // upstream, so it presents no key.
    const encoded = await get(`/v1/orders?api%5Fkey=${value('good')}&page=2`);
    expect(encoded.status).toBe(403);
    expect(encoded.upstream).toBeUndefined();
  });

  it.each([
    ['no key', {}],
    ['an unknown key', { 'x-api-key': generateKey().value }],
    ['a malformed key', { 'x-api-key': 'ks_short' }],
    ['a key with a bad checksum', { 'x-api-key': 'ks_aaaaaaaaaaaa_' + 'A'.repeat(49) }],
  ])('refuses %s with 403 Forbidden', async (_name, headers) => {
    const res = await get('/v1/orders', headers);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.text)).toEqual({ message: 'Forbidden' });
  });

  it.each(['disabled', 'expired'])('refuses a %s key with 403', async (name) => {
    const res = await get('/v1/orders', { 'x-api-key': value(name) });
    expect(res.status).toBe(403);
    expect(res.text).toBe('{"message":"Forbidden"}');
  });

  it('refuses a key on a stage it is not bound to, and admits it on its own', async () => {
    expect((await get('/v1/orders', { 'x-api-key': value('beta-only') })).status).toBe(403);
    expect((await get('/v1/orders', { 'x-api-key': value('beta-only') }, beta)).status).toBe(200);
    expect((await get('/v1/orders', { 'x-api-key': value('good') }, beta)).status).toBe(403);
  });

  it('answers a burst over the bucket with 429 Too Many Requests and Retry-After', async () => {
    const key = { 'x-api-key': value('throttle-me') };
    for (let i = 0; i < 3; i++) expect((await get('/v1/orders', key)).status).toBe(200);
    const res = await get('/v1/orders', key);
    expect(res.status).toBe(429);
    expect(JSON.parse(res.text)).toEqual({ message: 'Too Many Requests' });
    const retry = Number(res.headers.get('retry-after'));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(10);
  });

  it('answers quota + 1 with 429 Limit Exceeded and Retry-After at the end of the period', async () => {
    const key = { 'x-api-key': value('quota-me') };
    for (let i = 0; i < 3; i++) expect((await get('/v1/orders', key)).status).toBe(200);
    const res = await get('/v1/orders', key);
    expect(res.status).toBe(429);
    expect(JSON.parse(res.text)).toEqual({ message: 'Limit Exceeded' });
    const now = Date.now();
    const midnight = Date.UTC(
      new Date(now).getUTCFullYear(),
      new Date(now).getUTCMonth(),
      new Date(now).getUTCDate() + 1,
    );
    const expected = Math.ceil((midnight - now) / 1000);
    expect(Math.abs(Number(res.headers.get('retry-after')) - expected)).toBeLessThanOrEqual(5);
    expect(res.headers.get('ratelimit')).toContain('"quota";r=0;');
  });

  it("applies a route's throttle instead of the plan's", async () => {
    const key = { 'x-api-key': value('good') };
    const post = (): ReturnType<typeof call> =>
      call(`${prod}/v1/orders/7`, { method: 'POST', headers: key, body: '{}' });
    expect((await post()).status).toBe(200);
    const second = await post();
    expect(second.status).toBe(429);
    expect(second.headers.get('ratelimit-policy')).toContain('"burst";q=1;w=10');
    // GET is not on the route: the plan's bucket of 100 applies.
    for (let i = 0; i < 3; i++) expect((await get('/v1/orders/7', key)).status).toBe(200);
  });

  it('verifies key-pair signatures: valid passes; a bad signature and a stale date get 403', async () => {
    const { secretId, secretKey } = keySecret(files.keys, 'pair') as { secretId: string; secretKey: string };
    const signed = (date: number, key = secretKey): Record<string, string> => {
      const headers = { 'x-date': imfFixdate(date), source: 'e2e' };
      return { ...headers, authorization: signRequest({ secretId, secretKey: key, headers }) };
    };
    const ok = await get('/v1/orders', signed(Date.now()));
    expect(ok.status).toBe(200);
    expect(ok.upstream!.headers['x-keystile-key-id']).toBe(keySecret(files.keys, 'pair')['keyId']);
    // --strip-key (the default): the signature, replayable while its date is fresh, never reaches it.
    expect(ok.upstream!.headers['authorization']).toBeUndefined();
    expect(ok.upstream!.headers['x-date']).toBeDefined();
    expect((await get('/v1/orders', signed(Date.now(), 'x'.repeat(40)))).status).toBe(403);
    expect((await get('/v1/orders', signed(Date.now() - 20 * 60_000))).status).toBe(403);
    expect((await get('/v1/orders', { ...signed(Date.now()), source: 'tampered' })).status).toBe(403);
  });

  it('takes a config change without a restart: a disabled key is refused', async () => {
    const key = { 'x-api-key': value('to-disable') };
    expect((await get('/v1/orders', key)).status).toBe(200);
    await render(dir, resources(['to-disable']), { namespace: NS });
    await waitFor(
      'the disabled key to be refused',
      async () => (await get('/v1/orders', key)).status === 403,
      10_000,
      100,
    );
    expect((await get('/v1/orders', { 'x-api-key': value('good') })).status).toBe(200);
  });

  it("accepts a rotated key's old value through the grace period and not after, keeping its usage", async () => {
    const old = value('rotated');
    const keyId = keySecret(files.keys, 'rotated')['keyId']!;
    expect((await get('/v1/orders', { 'x-api-key': old })).status).toBe(200);
    // Rotate as the operator does: a new value, the old one's hash kept until the end of the grace period.
    const fresh = generateKey(keyId).value;
    const until = new Date(Date.now() + 4000).toISOString();
    const text = readFileSync(files.keys, 'utf8');
    const docs = parseAllDocuments(text).map(
      (d) => d.toJS() as { metadata: { name: string }; stringData: Record<string, string> },
    );
    for (const d of docs) {
      if (d.metadata.name === 'keystile-key-rotated') {
        d.stringData = {
          ...d.stringData,
          value: fresh,
          'previous-sha256': hashKey(old),
          'previous-valid-until': until,
        };
      }
    }
    writeFileSync(files.keys, docs.map((d) => stringify(d)).join('---\n'));
    await render(dir, resources(['to-disable']), { namespace: NS });
    await waitFor(
      'the new value to be accepted',
      async () => (await get('/v1/orders', { 'x-api-key': fresh })).status === 200,
      10_000,
      100,
    );
    const viaOld = await get('/v1/orders', { 'x-api-key': old });
    expect(viaOld.status).toBe(200);
    expect(viaOld.upstream!.headers['x-keystile-key-id']).toBe(keyId);
    // Usage stays with the key id: the old and the new value draw on one quota.
    const remaining = (r: Awaited<ReturnType<typeof call>>): number =>
      Number(/"quota";r=(\d+)/.exec(r.headers.get('ratelimit') ?? '')?.[1]);
    const viaNew = await get('/v1/orders', { 'x-api-key': fresh });
    expect(remaining(viaNew)).toBe(remaining(viaOld) - 1);
    await sleep(Math.max(0, Date.parse(until) - Date.now() + 200));
    expect((await get('/v1/orders', { 'x-api-key': old })).status).toBe(403);
    expect((await get('/v1/orders', { 'x-api-key': fresh })).status).toBe(200);
  });

  it('never answers a fuzzed request with a 5xx, nor crashes', async () => {
    const port = Number(new URL(prod).port);
    const statuses = new Map<number, number>();
    const count = (s: number): void => void statuses.set(s, (statuses.get(s) ?? 0) + 1);
    const random = fuzzRandom();
    const junk = (n: number): string => random.bytes(n).toString('base64').replace(/[+/=]/g, '-');
    const printable = (n: number): string =>
      Array.from(random.bytes(n), (b) => String.fromCharCode(0x21 + (b % 94))).join('');
    // Well-formed HTTP with hostile content, through node:http.
    for (let i = 0; i < 120; i++) {
      const headers: Record<string, string> = {};
      switch (i % 8) {
        case 0:
          headers['x-api-key'] = printable(1 + (i % 200));
          break;
        case 1:
          headers['x-api-key'] = `ks_${junk(60)}`;
          break;
        case 2:
          headers['x-api-key'] = 'k'.repeat(40_000);
          break;
        case 3:
          headers['authorization'] =
            `hmac id="${printable(20).replace(/["\\]/g, 'x')}", algorithm="hmac-sha256", headers="x-date source", signature="${random.bytes(32).toString('base64')}"`;
          headers['x-date'] = printable(29);
          break;
        case 4:
          headers['authorization'] = `hmac ${printable(300)}`;
          break;
        case 5:
          headers['authorization'] = `Bearer ${printable(50)}`;
          headers['x-date'] = 'Mon, 99 Foo 2026 25:61:61 GMT';
          break;
        case 6:
          for (let h = 0; h < 50; h++) headers[`x-f${h}`] = printable(100);
          headers['x-api-key'] = value('good');
          break;
        default:
          headers['x-api-key'] = `${value('good')}, ${value('good')}`;
      }
      const path =
        i % 3 === 0
          ? `/${encodeURIComponent(printable(1 + i * 20))}`
          : `/v1/${junk(i % 40)}?${printable(i % 30).replace(/[#\s]/g, '')}`;
      const method = ['GET', 'POST', 'DELETE', 'PROPFIND', 'OPTIONS', 'PATCH'][i % 6]!;
      count(await rawNodeRequest(port, method, path, headers));
    }
    // Malformed HTTP on the wire.
    const wire = [
      `GET /v1/orders HTTP/1.1\r\nHost: x\r\nx-api-key: ${value('good')}\r\n\r\n`,
      'GET /v1/%zz%00 HTTP/1.1\r\nHost: x\r\n\r\n',
      `GET /${'a/'.repeat(5000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      'FOO /v1 HTTP/1.1\r\nHost: x\r\nx-api-key: \x01\x02\r\n\r\n',
      'GET /v1 HTTP/1.1\r\nHost: x\r\nx-api-key: a\r\nx-api-key: b\r\n\r\n',
      `GET /v1 HTTP/1.1\r\nHost: x\r\nauthorization: hmac ${'x'.repeat(70_000)}\r\n\r\n`,
      'GARBAGE\r\n\r\n',
    ];
    for (const w of wire) count(await rawWire(port, w));
    const seen = `statuses ${JSON.stringify([...statuses])}`;
    const fiveXX = [...statuses].filter(([s]) => s >= 500);
    expect(fiveXX, seen).toEqual([]);
    // Answers, not connections that failed (0): a run of resets would show no 5xx either.
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    expect(statuses.get(0) ?? 0, seen).toBeLessThanOrEqual(Math.floor(total * 0.05));
    expect(stack.enforcer.running()).toBe(true);
    expect((await get('/v1/orders', { 'x-api-key': value('good') })).status).toBe(200);
  });

  it('answers 503 once the enforcer is stopped mid-traffic, never letting a request through', async () => {
    const key = { 'x-api-key': value('good') };
    // 0: the connection failed (not an answer, and not a pass either).
    const status = (path: string): Promise<number> =>
      get(path, key).then(
        (r) => r.status,
        () => 0,
      );
    const during: number[] = [];
    let stopped = false;
    const traffic = (async (): Promise<void> => {
      while (!stopped) during.push(await status('/v1/catalog'));
    })();
    await waitFor('traffic to flow', () => during.filter((s) => s === 200).length >= 5, 10_000, 10);
    await stack.enforcer.stop();
    const after: number[] = [];
    for (let i = 0; i < 20; i++) after.push(await status('/v1/catalog'));
    stopped = true;
    await traffic;
    const unexpected = during.filter((s) => s !== 200 && s !== 503 && s !== 0);
    expect(unexpected, `answers while stopping: ${JSON.stringify(during)}`).toEqual([]);
    expect(after).toEqual(Array.from({ length: 20 }, () => 503));
  });
});

/** A request with node:http (which, unlike fetch, sends any method and long headers); its status. */
function rawNodeRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<number> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0)); // Envoy closing the connection: not an answer, not a 5xx
    req.end();
  });
}

/** Bytes on a socket; the status of the answer, or 0 when the connection closed without one. */
function rawWire(port: number, bytes: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes, 'latin1'));
    let data = '';
    socket.setTimeout(5000, () => socket.destroy());
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      if (data.includes('\r\n')) socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
  });
}
