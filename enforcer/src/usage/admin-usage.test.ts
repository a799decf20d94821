import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { counterKeys, dayKey } from '../../../contract/src/identity.ts';
import { DaysAnswer, QuotasAnswer, USAGE_API_PATHS } from '../../../contract/src/usage-api.ts';
import { catalogOf, plan, stageDocuments } from '../../testing/fixtures.ts';
import type { Catalog } from '../catalog/catalog.ts';
import { manualClock } from '../decision/clock.ts';
import { MemoryStore } from '../store/memory-store.ts';
import { buildAdminApp } from '../telemetry/admin.ts';
import { EnforcerMetrics } from '../telemetry/metrics.ts';
import { checkDaysQuestion, type UsageApiOptions } from './admin-usage.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ strict: true }));
const validQuotas = ajv.compile(QuotasAnswer);
const validDays = ajv.compile(DaysAnswer);

const T0 = Date.UTC(2026, 3, 15, 12);
const subject = { kind: 'key', id: 'k1' } as const;
const current = counterKeys('shop/gold', subject, '2026-04-01').quota;
const ended = counterKeys('shop/gold', subject, '2026-03-01').quota;
const today = dayKey('shop/gold', subject, '2026-04-15');
const yesterday = dayKey('shop/gold', subject, '2026-04-14');

describe('the admin usage API', () => {
  let catalog: Catalog;
  let store: MemoryStore;
  let app: ReturnType<typeof buildAdminApp>;
  const options = (over: Partial<UsageApiOptions> = {}): UsageApiOptions => ({
    catalog: { current: () => catalog },
    store,
    storeKind: 'memory',
    listing: store,
    clock: manualClock(T0),
    instance: 'test:1',
    ...over,
  });
  const admin = (over: Partial<UsageApiOptions> = {}): ReturnType<typeof buildAdminApp> =>
    buildAdminApp({
      catalog: { current: () => catalog },
      metrics: new EnforcerMetrics(true, false),
      usage: options(over),
    });

  beforeAll(async () => {
    catalog = await catalogOf(
      stageDocuments({ namespace: 'shop', api: 'orders', stage: 'prod' }, [plan('shop', 'gold')], []),
      stageDocuments({ namespace: 'shop', api: 'orders', stage: 'beta' }, [plan('shop', 'gold')], []),
    );
    store = new MemoryStore();
    const consume = (quotaKey: string, periodEnd: number, now: number, dk: string): void => {
      store.consume({
        quotaKey,
        quotaLimit: 100,
        cost: 2,
        periodEnd,
        now,
        dayKey: dk,
        dayExpiresAt: T0 + 86_400_000 * 90,
      });
    };
    consume(ended, Date.UTC(2026, 3, 1), Date.UTC(2026, 2, 20), yesterday);
    consume(current, Date.UTC(2026, 4, 1), T0, today);
    consume(current, Date.UTC(2026, 4, 1), T0, today);
    await store.adjust({
      quotaKey: current,
      id: 'adj-1',
      amount: 25,
      periodEnd: Date.UTC(2026, 4, 1),
      now: T0,
    });
    app = admin();
  });
  afterAll(async () => {
    await app.close();
  });

  it("lists the memory store's counters of current periods and the adjustments applied to them", async () => {
    const res = await app.inject({ url: USAGE_API_PATHS.quotas });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body: unknown = res.json();
    expect(validQuotas(body), JSON.stringify(validQuotas.errors)).toBe(true);
    expect(body).toEqual({
      store: 'memory',
      instance: 'test:1',
      stages: ['shop/orders/beta', 'shop/orders/prod'],
      now: new Date(T0).toISOString(),
      quotas: [{ key: current, used: 4, granted: 25, periodEnd: '2026-05-01T00:00:00.000Z' }],
      adjustments: ['adj-1'],
    });
  });

  it('answers empty lists for a shared store, whose readers read it directly', async () => {
    const redisLike = admin({ storeKind: 'redis', listing: undefined });
    const body = (await redisLike.inject({ url: USAGE_API_PATHS.quotas })).json<QuotasAnswer>();
    expect(validQuotas(body)).toBe(true);
    expect(body).toMatchObject({ store: 'redis', quotas: [], adjustments: [] });
    await redisLike.close();
  });

  it('reads usage per day, one value per key in order, 0 where nothing was counted', async () => {
    const other = dayKey('shop/gold', { kind: 'customer', name: 'acme' }, '2026-04-15');
    const res = await app.inject({
      method: 'POST',
      url: USAGE_API_PATHS.days,
      payload: { keys: [today, other, yesterday, today] },
    });
    expect(res.statusCode).toBe(200);
    expect(validDays(res.json())).toBe(true);
    expect(res.json()).toEqual({ values: [4, 0, 2, 4] });
    expect(
      (await app.inject({ method: 'POST', url: USAGE_API_PATHS.days, payload: { keys: [] } })).json(),
    ).toEqual({
      values: [],
    });
  });

  it.each([
    ['not JSON', 400, { payload: '{"keys": [', headers: { 'content-type': 'application/json' } }, /JSON/],
    ['no body', 400, { headers: {} }, /the body must be JSON/],
    ['an array', 400, { payload: [today] }, /must be object/],
    ['text', 400, { payload: 'keys=1', headers: { 'content-type': 'text/plain' } }, /must be object/],
    ['no keys', 400, { payload: {} }, /must have required property 'keys'/],
    ['another field', 400, { payload: { keys: [], from: 'x' } }, /must NOT have additional properties/],
    ['a number for a key', 400, { payload: { keys: [today, 7] } }, /\/keys\/1: must be string/],
    ['a quota key', 400, { payload: { keys: [today, current] } }, /keys\/1 is not a day counter's key/],
    [
      'too many keys',
      400,
      { payload: { keys: Array.from({ length: 10_001 }, () => today) } },
      /must NOT have more than 10000 items/,
    ],
    [
      'another media type',
      415,
      { payload: '<keys/>', headers: { 'content-type': 'application/xml' } },
      /must be application\/json/,
    ],
  ] as const)(
    'answers a bad days question (%s) with a %i naming it, never a 500',
    async (_name, status, request, message) => {
      const res = await app.inject({ method: 'POST', url: USAGE_API_PATHS.days, ...request });
      expect(res.statusCode).toBe(status);
      expect(res.json<{ message: string }>().message).toMatch(message);
    },
  );

  it('answers 503 naming the cause when the store cannot be read', async () => {
    const failing = admin({
      store: { readDays: () => Promise.reject(new Error('connection refused')) },
    });
    const res = await failing.inject({
      method: 'POST',
      url: USAGE_API_PATHS.days,
      payload: { keys: [today] },
    });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ message: 'the counter store could not be read: connection refused' });
    await failing.close();
  });

  it('answers a wrong method with 405 and an unknown path with 404, as JSON', async () => {
    const wrong = await app.inject({ method: 'GET', url: USAGE_API_PATHS.days });
    expect(wrong.statusCode).toBe(405);
    expect(wrong.json()).toEqual({ message: 'GET is not allowed here' });
    const unknown = await app.inject({ url: '/v1/usage/keys' });
    expect(unknown.statusCode).toBe(404);
    // The rest of the admin port is unchanged.
    expect((await app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
  });
});

describe('checkDaysQuestion', () => {
  it('returns the keys of a valid question', () => {
    expect(checkDaysQuestion({ keys: [today] })).toEqual([today]);
  });
  it.each([undefined, null, 'x', { keys: 'x' }, { keys: [''] }])('refuses %j with a message', (body) => {
    expect(typeof checkDaysQuestion(body)).toBe('string');
  });
});
