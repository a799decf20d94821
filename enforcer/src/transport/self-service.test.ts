import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { LightMyRequestResponse } from 'fastify';
import { connect } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RenderedResponse } from '../../../contract/src/format.ts';
import { counterKeys } from '../../../contract/src/identity.ts';
import { generateKey, generateKeyPair } from '../../../contract/src/key-format.ts';
import { SelfServiceAnswer, selfServicePath } from '../../../contract/src/usage-api.ts';
import { TEST_OPTIONS, testChecker } from '../../testing/checker.ts';
import { catalogOf, plan, silentLogger, stageDocuments } from '../../testing/fixtures.ts';
import { buildApp } from '../app.ts';
import type { Catalog } from '../catalog/catalog.ts';
import { type ManualClock } from '../decision/clock.ts';
import { decideContext, type DecideOptions } from '../decision/decide.ts';
import { imfFixdate, signRequest } from '../decision/key-pair-signature.ts';
import type { CounterStore } from '../store/store.ts';
import { buildSelfServiceApp, ORIGINAL_PATH_HEADER } from './self-service.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const validAnswer = addFormats(new Ajv({ strict: true })).compile(SelfServiceAnswer);

const T0 = Date.UTC(2026, 3, 15, 12);
const PROD = 'shop/orders/prod';
const VIEW = selfServicePath(PROD);
const good = generateKey('goodgoodgood');
const disabled = generateKey('disableddisa');
const expired = generateKey('expiredexpir');
const betaOnly = generateKey('betaonlybeta');
const member = generateKey('membermember');
const unknown = generateKey('unknownunkno');
const loner = generateKey('lonerlonerlo');
const pair = generateKeyPair();

async function fixture(): Promise<Catalog> {
  const gold = plan('shop', 'gold', {
    throttle: { rate: 1, burst: 1 },
    quota: { limit: 1000, period: 'MONTH', timeZone: 'UTC' },
  });
  const team = plan('shop', 'team', {
    quota: { limit: 10, period: 'DAY', timeZone: 'UTC' },
    countBy: 'Customer',
    responses: [{ type: 'Forbidden', status: 401, body: '{"error":"no"}' }],
  });
  return catalogOf(
    stageDocuments(
      { namespace: 'shop', api: 'orders', stage: 'prod' },
      [gold, team],
      [
        { id: good.keyId, plan: 'gold', customer: 'acme', values: [{ value: good.value }] },
        { id: disabled.keyId, plan: 'team', enabled: false, values: [{ value: disabled.value }] },
        {
          id: expired.keyId,
          plan: 'gold',
          expiresAt: '2020-01-01T00:00:00Z',
          values: [{ value: expired.value }],
        },
        { id: member.keyId, plan: 'team', customer: 'initech', values: [{ value: member.value }] },
        { id: loner.keyId, plan: 'team', values: [{ value: loner.value }] },
        {
          id: 'pairpairpair',
          plan: 'gold',
          secretId: pair.secretId,
          secretKeys: [{ value: pair.secretKey }],
        },
      ],
    ),
    stageDocuments(
      { namespace: 'shop', api: 'orders', stage: 'beta' },
      [gold],
      [{ id: betaOnly.keyId, plan: 'gold', values: [{ value: betaOnly.value }] }],
    ),
  );
}

describe('the self-service view', () => {
  let catalog: Catalog;
  let store: CounterStore;
  let clock: ManualClock;
  let view: ReturnType<typeof buildSelfServiceApp>;
  let check: ReturnType<typeof buildApp>;
  const selfService = (
    over: {
      store?: Pick<CounterStore, 'readQuotas'>;
      catalog?: Catalog;
      options?: Partial<DecideOptions>;
    } = {},
  ): ReturnType<typeof buildSelfServiceApp> =>
    buildSelfServiceApp({
      catalog: { current: () => ('catalog' in over ? over.catalog : catalog) },
      store: over.store ?? store,
      clock,
      context: decideContext({ ...TEST_OPTIONS, ...over.options }),
      logger: silentLogger,
    });
  const ask = (headers: Record<string, string>, url = VIEW): Promise<LightMyRequestResponse> =>
    view.inject({ url, headers });
  const checkOf = (headers: Record<string, string>): Promise<LightMyRequestResponse> =>
    check.inject({ url: `/keystile/${PROD}/v1/orders`, headers });

  beforeAll(async () => {
    catalog = await fixture();
    const t = testChecker(catalog, T0);
    store = t.store;
    clock = t.clock;
    check = buildApp({ checker: t.checker });
    view = selfService();
  });
  afterAll(async () => {
    await view.close();
    await check.close();
  });

  it('shows a key its plan, usage and remaining quota, and asking uses neither quota nor token', async () => {
    expect((await checkOf({ 'x-api-key': good.value })).statusCode).toBe(200);
    for (let i = 0; i < 5; i++) {
      const res = await ask({ 'x-api-key': good.value });
      expect(res.statusCode).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      const body: unknown = res.json();
      expect(validAnswer(body), JSON.stringify(validAnswer.errors)).toBe(true);
      expect(body).toEqual({
        keyId: good.keyId,
        apiStage: PROD,
        plan: 'gold',
        customer: 'acme',
        countBy: 'Key',
        throttle: { rate: 1, burst: 1 },
        quota: {
          limit: 1000,
          period: 'MONTH',
          periodId: '2026-04-01',
          periodStart: '2026-04-01T00:00:00.000Z',
          periodEnd: '2026-05-01T00:00:00.000Z',
          used: 1,
          granted: 0,
          remaining: 999,
        },
      });
      expect(res.body).not.toContain(good.value);
    }
    const quotaKey = counterKeys('shop/gold', { kind: 'key', id: good.keyId }, '2026-04-01').quota;
    expect(await store.readQuotas([quotaKey])).toEqual([{ used: 1, granted: 0 }]);
    // The bucket (burst 1) was emptied by the check, not by the questions: a second later it has a token.
    clock.advance(1000);
    expect((await checkOf({ 'x-api-key': good.value })).statusCode).toBe(200);
    clock.advance(1000);
  });

  it('shows what adjustments granted', async () => {
    const quotaKey = counterKeys('shop/gold', { kind: 'key', id: good.keyId }, '2026-04-01').quota;
    await store.adjust({
      quotaKey,
      id: 'grant-1',
      amount: 500,
      periodEnd: Date.UTC(2026, 4, 1),
      now: clock.now(),
    });
    const body = (await ask({ 'x-api-key': good.value })).json<SelfServiceAnswer>();
    expect(body.quota).toMatchObject({ used: 2, granted: 500, remaining: 1498 });
  });

  it("counts a plan's customers across their keys", async () => {
    expect((await checkOf({ 'x-api-key': member.value })).statusCode).toBe(200);
    const body = (await ask({ 'x-api-key': member.value })).json<SelfServiceAnswer>();
    expect(body).toMatchObject({ plan: 'team', customer: 'initech', countBy: 'Customer' });
    expect(body.quota).toMatchObject({ period: 'DAY', periodId: '2026-04-15', used: 1, remaining: 9 });
    expect(body.throttle).toBeUndefined();
  });

  it('identifies key pairs as checks do, with the path the client signed (Envoy keeps it when it rewrites)', async () => {
    const signed = (path: string): Record<string, string> => {
      const headers = { 'x-date': imfFixdate(clock.now()), source: 'test' };
      return {
        ...headers,
        authorization: signRequest({
          secretId: pair.secretId,
          secretKey: pair.secretKey,
          headers,
          method: 'GET',
          path,
        }),
      };
    };
    const ok = await ask({ ...signed('/keystile/usage'), [ORIGINAL_PATH_HEADER]: '/keystile/usage' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ keyId: 'pairpairpair', plan: 'gold' });
    // Signed for another path than the one sent: refused, as a check would.
    const replayed = await ask({ ...signed('/v1/orders'), [ORIGINAL_PATH_HEADER]: '/keystile/usage' });
    expect(replayed.statusCode).toBe(403);
  });

  it('verifies signed headers with non-ASCII values over a socket (Node reads their bytes as latin1)', async () => {
    const own = selfService();
    try {
      await own.listen({ port: 0, host: '127.0.0.1' });
      const { port } = own.server.address() as { port: number };
      for (const [source, sent, expected] of [
        ['café ✓', 'café ✓', 200],
        ['café ✓', 'cafe ✓', 403],
      ] as const) {
        const headers = { 'x-date': imfFixdate(clock.now()), source };
        const authorization = signRequest({ secretId: pair.secretId, secretKey: pair.secretKey, headers });
        const socket = connect(port, '127.0.0.1');
        let received = '';
        await new Promise<void>((resolve, reject) => {
          socket.on('data', (chunk: Buffer) => {
            received += chunk.toString('latin1');
          });
          socket.on('error', reject);
          socket.on('close', () => {
            resolve();
          });
          const head =
            `GET ${VIEW} HTTP/1.1\r\nhost: x\r\nx-date: ${headers['x-date']}\r\nsource: ${sent}\r\n` +
            `authorization: ${authorization}\r\nconnection: close\r\n\r\n`;
          socket.write(Buffer.from(head, 'utf8'));
        });
        expect(received, sent).toMatch(new RegExp(`^HTTP/1\\.1 ${expected} `));
      }
    } finally {
      await own.close();
    }
  });

  it.each([
    ['no key', {}],
    ['an unknown key', { 'x-api-key': unknown.value }],
    ['a malformed key', { 'x-api-key': 'ks_short' }],
    ['a disabled key', { 'x-api-key': disabled.value }],
    ['an expired key', { 'x-api-key': expired.value }],
    ['a key bound on another stage only', { 'x-api-key': betaOnly.value }],
    [
      'a bad signature',
      {
        authorization: `hmac id="${pair.secretId}", algorithm="hmac-sha256", headers="x-date", signature="AAAA"`,
        'x-date': imfFixdate(T0),
      },
    ],
  ])(
    'refuses %s exactly as a check does, revealing nothing more',
    async (_name, headers: Record<string, string>) => {
      const res = await ask(headers);
      const checked = await checkOf(headers);
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expect(res.statusCode).toBeLessThan(500);
      expect(res.statusCode).toBe(checked.statusCode);
      expect(res.body).toBe(checked.body);
      expect(res.headers['content-type']).toBe(checked.headers['content-type']);
    },
  );

  it("answers a disabled key with its plan's configured answer, as a check does", async () => {
    const res = await ask({ 'x-api-key': disabled.value });
    expect(res.statusCode).toBe(401);
    expect(res.body).toBe('{"error":"no"}');
  });

  it('answers problem documents when configured so', async () => {
    const problems = selfService({ options: { problemJson: true } });
    const res = await problems.inject({ url: VIEW });
    expect(res.statusCode).toBe(403);
    expect(res.headers['content-type']).toBe('application/problem+json');
    await problems.close();
  });

  it('refuses a stage it does not serve with 403, and a path that names no stage with 404', async () => {
    const other = await ask({ 'x-api-key': good.value }, selfServicePath('shop/orders/dev'));
    expect(other.statusCode).toBe(403);
    expect(other.json()).toEqual({ message: 'Forbidden' });
    for (const url of [
      '/v1/usage',
      '/v1/usage/shop/orders',
      '/v1/usage/Shop/orders/prod',
      '/v1/usage/shop/orders/prod/x',
      '/',
      '/keystile/usage',
      '/v1/usage/a%zz/b/c',
    ]) {
      const res = await ask({ 'x-api-key': good.value }, url);
      expect(res.statusCode, url).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, url).toBeLessThan(500);
      expect(res.body).not.toContain(good.value);
    }
    expect((await ask({}, '/v1/usage/Shop/orders/prod')).statusCode).toBe(404);
  });

  it('answers HEAD, refuses other methods with 405, and ignores a body and a query', async () => {
    expect(
      (await view.inject({ method: 'HEAD', url: VIEW, headers: { 'x-api-key': good.value } })).statusCode,
    ).toBe(200);
    const post = await view.inject({
      method: 'POST',
      url: VIEW,
      headers: { 'x-api-key': good.value },
      payload: 'x',
    });
    expect(post.statusCode).toBe(405);
    expect(post.headers['allow']).toBe('GET, HEAD');
    const query = await view.inject({ url: `${VIEW}?stage=other`, headers: { 'x-api-key': good.value } });
    expect(query.json()).toMatchObject({ apiStage: PROD });
    for (const method of ['TRACE', 'PROPFIND', 'MKCOL', 'LOCK'] as const) {
      const other = await view.inject({ method, url: VIEW, headers: { 'x-api-key': good.value } });
      expect(other.statusCode, method).toBe(405);
      expect(other.headers['allow'], method).toBe('GET, HEAD');
    }
  });

  it('answers a URL it cannot decode with 400, never quoting it (its query may hold a key)', async () => {
    const res = await view.inject({ url: `${VIEW}/%E0%A4%A?api_key=${good.value}` });
    expect(res.statusCode).toBe(400);
    expect(res.body).not.toContain(good.value);
  });

  it('says a key without a customer on a plan counting by Customer is counted alone', async () => {
    const res = await view.inject({ url: VIEW, headers: { 'x-api-key': loner.value } });
    expect(res.json()).toMatchObject({ plan: 'team', countBy: 'Key' });
    expect(res.json()).not.toHaveProperty('customer');
  });

  it('answers 503 with no config loaded (also when failing open: there is nothing to show) and when the store fails', async () => {
    for (const failOpen of [false, true]) {
      const empty = selfService({ catalog: undefined, options: { failOpen } });
      const res = await empty.inject({ url: VIEW, headers: { 'x-api-key': good.value } });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      await empty.close();
    }
    const broken = selfService({ store: { readQuotas: () => Promise.reject(new Error('down')) } });
    const res = await broken.inject({ url: VIEW, headers: { 'x-api-key': good.value } });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ message: 'Service Unavailable' });
    await broken.close();
  });

  it('answers a plain 503 and logs it when Node refuses a header of the answer, and keeps serving', async () => {
    // The contract schema refuses such a header; a plan that got past it anyway must not hang the port.
    const odd = await fixture();
    const team = odd.stages.get(PROD)?.plans.get('team');
    if (team === undefined) throw new Error('fixture has no team plan');
    (team.responses as Map<string, RenderedResponse>).set('Forbidden', {
      type: 'Forbidden',
      status: 401,
      body: '{"error":"no"}',
      headers: { 'x-help': 'two\nlines' },
    });
    const lines: string[] = [];
    const app = buildSelfServiceApp({
      catalog: { current: () => odd },
      store,
      clock,
      context: decideContext(TEST_OPTIONS),
      logger: pino({ level: 'error' }, { write: (line: string) => void lines.push(line) }),
    });
    const refused = await app.inject({ url: VIEW, headers: { 'x-api-key': disabled.value } });
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.headers['x-help']).toBeUndefined();
    expect(refused.json()).toEqual({ message: 'Service Unavailable' });
    expect(lines.join('')).toContain('self-service: an answer could not be sent; answered 503');
    expect((await app.inject({ url: VIEW, headers: { 'x-api-key': good.value } })).statusCode).toBe(200);
    await app.close();
  });
});
