/**
 * The counter store contract: every scenario a {@link CounterStore} must pass, whatever keeps the
 * counters (Limitador's `tests/integration_tests.rs` habit, STYLE habit 4). store-contract.test.ts runs
 * them all, by `describe.each`, against the memory store, a real Redis and a real Redis Cluster, so the
 * Redis store cannot drift from the memory store's meaning. Times are injected (`now`), never read.
 */
import { expect } from 'vitest';
import {
  adjustmentMarkerKey,
  alertsKey,
  counterKeys,
  dayKey,
  type Subject,
} from '../../../contract/src/identity.ts';
import type { ConsumeRequest, ConsumeResult, CounterStore } from './store.ts';

/** A store under test. */
export interface ContractStore {
  /** The store under test. */
  readonly store: CounterStore;
  /** Clients of the same counters, as replicas have (the memory store: itself; Redis: other connections). */
  readonly peers: readonly CounterStore[];
  /**
   * How many ms the counter `key` has left to live, counted from `now` (undefined when it is not stored,
   * or stored without an expiry: a failure of the contract). For a day key, the life of what holds the
   * day (Redis: its month's hash).
   */
  lifetime(key: string, now: number): Promise<number | undefined>;
}

/** One scenario: `plan` is a plan id of its own (a fresh prefix per run), so scenarios never share counters. */
export interface StoreScenario {
  readonly name: string;
  run(t: ContractStore, plan: string): Promise<void>;
}

const DAY = 86_400_000;
/** 2026-06-10T00:00Z, in the month period 2026-06-01 that ends on 2026-07-01. */
export const T0 = Date.UTC(2026, 5, 10);
const JUNE = '2026-06-01';
const JUNE_END = Date.UTC(2026, 6, 1);
const JULY = '2026-07-01';
const JULY_END = Date.UTC(2026, 7, 1);

const key = (id: string): Subject => ({ kind: 'key', id });

/** The counter keys of `subject` on `plan`: bucket, June's quota, and the day 2026-06-10. */
function keysOf(
  plan: string,
  subject: Subject,
  period = JUNE,
): { bucket: string; quota: string; day: string } {
  return { ...counterKeys(plan, subject, period), day: dayKey(plan, subject, '2026-06-10') };
}

/** A request with a bucket (rate 1, burst 2) and a quota of 3 in June, at `now`. */
function request(
  plan: string,
  subject: Subject,
  now: number,
  overrides: Partial<ConsumeRequest> = {},
): ConsumeRequest {
  const k = keysOf(plan, subject);
  return {
    bucketKey: k.bucket,
    bucketLimit: { rate: 1, burst: 2 },
    quotaKey: k.quota,
    quotaLimit: 3,
    cost: 1,
    periodEnd: JUNE_END,
    now,
    ...overrides,
  };
}

/** A request with only a quota (no bucket): for scenarios about the quota alone. */
function quotaOnly(
  plan: string,
  subject: Subject,
  now: number,
  overrides: Partial<ConsumeRequest> = {},
): ConsumeRequest {
  return request(plan, subject, now, { bucketKey: undefined, bucketLimit: undefined, ...overrides });
}

async function consume(store: CounterStore, r: ConsumeRequest): Promise<ConsumeResult> {
  return await store.consume(r);
}

/** Consumes `n` times in order; returns the results. */
async function consumeTimes(store: CounterStore, n: number, r: ConsumeRequest): Promise<ConsumeResult[]> {
  const results: ConsumeResult[] = [];
  for (let i = 0; i < n; i++) results.push(await consume(store, r));
  return results;
}

/** Every scenario of the contract, in order. */
export const STORE_SCENARIOS: readonly StoreScenario[] = Object.freeze([
  {
    name: 'a bucket allows its burst, refuses the next with the wait for a token, and refills with time',
    async run({ store }, plan) {
      const bucketOnly = (now: number): ConsumeRequest =>
        request(plan, key('a'), now, {
          bucketLimit: { rate: 2, burst: 3 },
          quotaKey: undefined,
          quotaLimit: undefined,
        });
      const burst = await consumeTimes(store, 3, bucketOnly(T0));
      expect(burst.map((r) => [r.allowed, r.bucket?.remaining, r.bucket?.fullInMs])).toEqual([
        [true, 2, 500],
        [true, 1, 1000],
        [true, 0, 1500],
      ]);
      expect(burst[0]?.quota).toBeUndefined();
      expect(await consume(store, bucketOnly(T0))).toMatchObject({
        allowed: false,
        deniedBy: 'throttle',
        bucket: { remaining: 0, retryAfterMs: 500, fullInMs: 1500 },
      });
      expect(await consume(store, bucketOnly(T0 + 250))).toMatchObject({
        allowed: false,
        bucket: { retryAfterMs: 250 },
      });
      expect(await consume(store, bucketOnly(T0 + 500))).toMatchObject({
        allowed: true,
        bucket: { remaining: 0, retryAfterMs: 0, fullInMs: 1500 },
      });
      // A clock that went back refills nothing.
      expect(await consume(store, bucketOnly(T0 + 400))).toMatchObject({
        allowed: false,
        bucket: { retryAfterMs: 500 },
      });
      // Long after, full again: the burst less the one taken.
      expect(await consume(store, bucketOnly(T0 + 60_000))).toMatchObject({
        allowed: true,
        bucket: { remaining: 2, fullInMs: 500 },
      });
    },
  },
  {
    name: 'a quota allows exactly its limit, with a cost of 1 and with a larger cost',
    async run({ store }, plan) {
      const ones = await consumeTimes(store, 5, quotaOnly(plan, key('a'), T0, { quotaLimit: 5 }));
      expect(ones.map((r) => [r.allowed, r.quota?.used, r.quota?.remaining])).toEqual([
        [true, 1, 4],
        [true, 2, 3],
        [true, 3, 2],
        [true, 4, 1],
        [true, 5, 0],
      ]);
      expect(await consume(store, quotaOnly(plan, key('a'), T0, { quotaLimit: 5 }))).toEqual({
        allowed: false,
        deniedBy: 'quota',
        bucket: undefined,
        quota: { used: 5, remaining: 0 },
        crossed: undefined,
      });
      const costly = (cost: number): ConsumeRequest => quotaOnly(plan, key('b'), T0, { quotaLimit: 5, cost });
      expect(await consume(store, costly(2))).toMatchObject({
        allowed: true,
        quota: { used: 2, remaining: 3 },
      });
      expect(await consume(store, costly(2))).toMatchObject({
        allowed: true,
        quota: { used: 4, remaining: 1 },
      });
      // 4 + 2 > 5: refused, and nothing used; a cost of 1 still fits, exactly.
      expect(await consume(store, costly(2))).toMatchObject({
        allowed: false,
        deniedBy: 'quota',
        quota: { used: 4, remaining: 1 },
      });
      expect(await consume(store, costly(1))).toMatchObject({
        allowed: true,
        quota: { used: 5, remaining: 0 },
      });
      expect(await store.readQuotas([keysOf(plan, key('a')).quota, keysOf(plan, key('b')).quota])).toEqual([
        { used: 5, granted: 0 },
        { used: 5, granted: 0 },
      ]);
    },
  },
  {
    // The Redis store sends these through JSON and formats what it stores and answers: nothing may be
    // rounded on the way (a quota near the schema's 10^12, a grant of 10^12, a fraction of a ms).
    name: "the schemas' largest figures and a fractional clock come back exactly",
    async run({ store }, plan) {
      const big = quotaOnly(plan, key('a'), T0, { quotaLimit: 1_000_000_000_000, cost: 1_000_000 });
      expect(await consume(store, big)).toMatchObject({
        allowed: true,
        quota: { used: 1_000_000, remaining: 999_999_000_000 },
      });
      const quotaKey = keysOf(plan, key('a')).quota;
      expect(
        await store.adjust({
          quotaKey,
          id: 'grant',
          amount: 1_000_000_000_000,
          periodEnd: JUNE_END,
          now: T0,
        }),
      ).toBe(true);
      expect(await consume(store, big)).toMatchObject({
        allowed: true,
        quota: { used: 2_000_000, remaining: 1_999_998_000_000 },
      });
      // A bucket of the largest burst, refilled over half a ms: 9,999,999 + 0.5 * 3 / 1000 tokens, less
      // one, leaves 1.9985 to refill at 3/s: 667 ms. Had the first time been stored as a whole ms
      // (T0, not T0 + 0.25) the refill would be 0.00225 tokens and the wait 666 ms.
      const bucket = (now: number): ConsumeRequest =>
        request(plan, key('b'), now, {
          bucketLimit: { rate: 3, burst: 10_000_000 },
          quotaKey: undefined,
          quotaLimit: undefined,
        });
      expect(await consume(store, bucket(T0 + 0.25))).toMatchObject({
        allowed: true,
        bucket: { remaining: 9_999_999, fullInMs: 334 },
      });
      expect(await consume(store, bucket(T0 + 0.75))).toMatchObject({
        allowed: true,
        bucket: { remaining: 9_999_998, fullInMs: 667 },
      });
      // A rate so slow the bucket refills in 10^17 ms: past 2^53, a reply the Redis store writes with
      // %.0f, and a bucket TTL Redis takes.
      const slow = request(plan, key('c'), T0, {
        bucketLimit: { rate: 1e-14, burst: 2 },
        quotaKey: undefined,
        quotaLimit: undefined,
      });
      expect(await consume(store, slow)).toMatchObject({
        allowed: true,
        bucket: { remaining: 1, fullInMs: 1e17 },
      });
    },
  },
  {
    name: 'a request refused by the throttle uses no quota',
    async run({ store }, plan) {
      const r = request(plan, key('a'), T0, { bucketLimit: { rate: 1, burst: 1 } });
      expect(await consume(store, r)).toMatchObject({ allowed: true, quota: { used: 1, remaining: 2 } });
      expect(await consume(store, r)).toMatchObject({
        allowed: false,
        deniedBy: 'throttle',
        bucket: { remaining: 0, retryAfterMs: 1000 },
        quota: { used: 1, remaining: 2 },
      });
      expect(await store.readQuotas([keysOf(plan, key('a')).quota])).toEqual([{ used: 1, granted: 0 }]);
    },
  },
  {
    name: 'a request refused by the quota takes no token',
    async run({ store }, plan) {
      const r = (now: number): ConsumeRequest => request(plan, key('a'), now, { quotaLimit: 1 });
      expect(await consume(store, r(T0))).toMatchObject({ allowed: true, bucket: { remaining: 1 } });
      // The bucket still has its token, and reports so.
      expect(await consume(store, r(T0))).toMatchObject({
        allowed: false,
        deniedBy: 'quota',
        bucket: { remaining: 1, retryAfterMs: 0, fullInMs: 1000 },
        quota: { used: 1, remaining: 0 },
      });
      const bucketOnly = request(plan, key('a'), T0, { quotaKey: undefined, quotaLimit: undefined });
      expect(await consume(store, bucketOnly)).toMatchObject({ allowed: true, bucket: { remaining: 0 } });
    },
  },
  {
    name: 'a new period starts from zero, and the last one is still readable',
    async run({ store }, plan) {
      const june = quotaOnly(plan, key('a'), JUNE_END - 1);
      await consumeTimes(store, 3, june);
      expect(await consume(store, june)).toMatchObject({ allowed: false, deniedBy: 'quota' });
      const july = quotaOnly(plan, key('a'), JUNE_END, {
        quotaKey: keysOf(plan, key('a'), JULY).quota,
        periodEnd: JULY_END,
      });
      expect(await consume(store, july)).toMatchObject({ allowed: true, quota: { used: 1, remaining: 2 } });
      expect(
        await store.readQuotas([keysOf(plan, key('a')).quota, keysOf(plan, key('a'), JULY).quota]),
      ).toEqual([
        { used: 3, granted: 0 },
        { used: 1, granted: 0 },
      ]);
    },
  },
  {
    name: "a counter whose period end moves later (the plan's time zone changed) keeps counting until the later end",
    async run({ store, peers }, plan) {
      // A MONTH quota in UTC, then in America/Los_Angeles: the period's id, 2026-06-01, and so the
      // counter key, are the same; the period now ends 7 hours later. The count carries over.
      const LA_END = JUNE_END + 7 * 3_600_000;
      const k = keysOf(plan, key('a'));
      await consumeTimes(store, 2, quotaOnly(plan, key('a'), T0));
      // An adjustment after the first end, naming the later one, adds to the count there.
      expect(
        await store.adjust({
          quotaKey: k.quota,
          id: 'grant',
          amount: 1,
          periodEnd: LA_END,
          now: JUNE_END + 1,
        }),
      ).toBe(true);
      const later = (now: number): ConsumeRequest => quotaOnly(plan, key('a'), now, { periodEnd: LA_END });
      expect(await consume(store, later(JUNE_END + 3_600_000))).toMatchObject({
        allowed: true,
        quota: { used: 3, remaining: 1 },
      });
      expect(await consume(peers[1] as CounterStore, later(JUNE_END + 2 * 3_600_000))).toMatchObject({
        allowed: true,
        quota: { used: 4, remaining: 0 },
      });
      expect(await consume(store, later(LA_END - 1))).toMatchObject({
        allowed: false,
        deniedBy: 'quota',
        quota: { used: 4, remaining: 0 },
      });
      expect(await store.readQuotas([k.quota])).toEqual([{ used: 4, granted: 1 }]);
      // Without an adjustment: the first request after the first end counts on.
      const b = (now: number, periodEnd: number): ConsumeRequest =>
        quotaOnly(plan, key('b'), now, { periodEnd });
      await consumeTimes(store, 2, b(T0, JUNE_END));
      expect(await consume(store, b(JUNE_END, LA_END))).toMatchObject({
        allowed: true,
        quota: { used: 3, remaining: 0 },
      });
      expect(await consume(store, b(JUNE_END + 1, LA_END))).toMatchObject({
        allowed: false,
        deniedBy: 'quota',
      });
    },
  },
  {
    name: "the keys of a customer share one bucket and one quota; another subject's are its own",
    async run({ store }, plan) {
      // countBy: Customer makes every key of the customer ask with the customer's counters.
      const acme: Subject = { kind: 'customer', name: 'acme' };
      const fromKeyOne = request(plan, acme, T0, { bucketLimit: { rate: 1, burst: 10 } });
      const fromKeyTwo = request(plan, acme, T0 + 1, { bucketLimit: { rate: 1, burst: 10 } });
      expect(await consume(store, fromKeyOne)).toMatchObject({ allowed: true, quota: { used: 1 } });
      expect(await consume(store, fromKeyTwo)).toMatchObject({ allowed: true, quota: { used: 2 } });
      expect(await consume(store, fromKeyOne)).toMatchObject({
        allowed: true,
        bucket: { remaining: 7 },
        quota: { used: 3, remaining: 0 },
      });
      expect(await consume(store, fromKeyTwo)).toMatchObject({ allowed: false, deniedBy: 'quota' });
      expect(await consume(store, request(plan, key('loner'), T0))).toMatchObject({
        allowed: true,
        quota: { used: 1 },
      });
    },
  },
  {
    name: 'an adjustment applies exactly once: a grant raises what remains, a take-back lowers it, used stays honest',
    async run({ store, peers }, plan) {
      const quotaKey = keysOf(plan, key('a')).quota;
      const adjust = (id: string, amount: number, s: CounterStore = store): Promise<boolean> =>
        s.adjust({ quotaKey, id, amount, periodEnd: JUNE_END, now: T0 });
      const r = quotaOnly(plan, key('a'), T0, { quotaLimit: 5 });
      await consumeTimes(store, 3, r);
      expect(await adjust('grant-1', 4)).toBe(true);
      expect(await adjust('grant-1', 4)).toBe(false);
      expect(await store.readQuotas([quotaKey])).toEqual([{ used: 3, granted: 4 }]);
      expect(await consume(store, r)).toMatchObject({ allowed: true, quota: { used: 4, remaining: 5 } });
      expect(await adjust('take-1', -6)).toBe(true);
      expect(await store.readQuotas([quotaKey])).toEqual([{ used: 4, granted: -2 }]);
      // 5 + 4 - 6 = 3 allowed, 4 used: refused, nothing used, nothing remaining.
      expect(await consume(store, r)).toMatchObject({
        allowed: false,
        deniedBy: 'quota',
        quota: { used: 4, remaining: 0 },
      });
      // Applied by several replicas at once: once.
      const racing = await Promise.all(peers.map((p) => adjust('grant-2', 10, p)));
      expect(racing.filter(Boolean)).toHaveLength(1);
      expect(await store.readQuotas([quotaKey])).toEqual([{ used: 4, granted: 8 }]);
      // On a counter nothing has used yet.
      const fresh = keysOf(plan, key('b')).quota;
      expect(
        await store.adjust({ quotaKey: fresh, id: 'grant-3', amount: 2, periodEnd: JUNE_END, now: T0 }),
      ).toBe(true);
      expect(await store.readQuotas([fresh])).toEqual([{ used: 0, granted: 2 }]);
      const b = quotaOnly(plan, key('b'), T0, { quotaLimit: 1 });
      expect((await consumeTimes(store, 4, b)).map((x) => x.allowed)).toEqual([true, true, true, false]);
      await expect(
        store.adjust({ quotaKey: fresh, id: '', amount: 1, periodEnd: JUNE_END, now: T0 }),
      ).rejects.toThrow(/id/);
      await expect(
        store.adjust({ quotaKey: fresh, id: 'x', amount: 1.5, periodEnd: JUNE_END, now: T0 }),
      ).rejects.toThrow(/amount/);
    },
  },
  {
    name: 'alert thresholds are reported once per counter and period, also after a grant',
    async run({ store }, plan) {
      const thresholds = [50, 80, 100];
      const r = quotaOnly(plan, key('a'), T0, { quotaLimit: 10, thresholds });
      const crossed = (await consumeTimes(store, 11, r)).map((x) => x.crossed);
      expect(crossed).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
        [50],
        undefined,
        undefined,
        [80],
        undefined,
        [100],
        undefined,
      ]);
      // A grant drops usage to 50% of 20: nothing is reported again this period.
      const quotaKey = keysOf(plan, key('a')).quota;
      expect(await store.adjust({ quotaKey, id: 'more', amount: 10, periodEnd: JUNE_END, now: T0 })).toBe(
        true,
      );
      expect((await consumeTimes(store, 10, r)).map((x) => x.crossed).filter(Boolean)).toEqual([]);
      // One request past several thresholds reports them all; the next period reports afresh.
      const july = quotaOnly(plan, key('a'), JUNE_END, {
        quotaKey: keysOf(plan, key('a'), JULY).quota,
        periodEnd: JULY_END,
        quotaLimit: 10,
        thresholds,
        cost: 9,
      });
      expect(await consume(store, july)).toMatchObject({ allowed: true, crossed: [50, 80] });
      // Without thresholds nothing is reported.
      const plain = quotaOnly(plan, key('b'), T0, { quotaLimit: 1 });
      expect((await consume(store, plain)).crossed).toBeUndefined();
    },
  },
  {
    name: 'usage per day counts what was allowed, with or without a quota, and nothing refused',
    async run({ store }, plan) {
      const day = keysOf(plan, key('a')).day;
      const dayExpiresAt = T0 + DAY + 90 * DAY;
      const bucketOnly = request(plan, key('a'), T0, {
        quotaKey: undefined,
        quotaLimit: undefined,
        dayKey: day,
        dayExpiresAt,
      });
      const results = await consumeTimes(store, 3, bucketOnly);
      expect(results.map((x) => x.allowed)).toEqual([true, true, false]);
      const withQuota = quotaOnly(plan, key('a'), T0, { dayKey: day, dayExpiresAt, cost: 3 });
      expect(await consume(store, withQuota)).toMatchObject({ allowed: true });
      expect(await consume(store, withQuota)).toMatchObject({ allowed: false, deniedBy: 'quota' });
      expect(await store.readDays([day, keysOf(plan, key('nobody')).day])).toEqual([5, 0]);
    },
  },
  {
    name: 'days are counted apart, within a month and across months, and read back in the order asked',
    async run({ store, peers }, plan) {
      const a = key('a');
      const days = ['2026-06-10', '2026-06-11', '2026-06-30', '2026-07-01'].map((d) => dayKey(plan, a, d));
      const charge = (d: string, cost: number, s: CounterStore = store): Promise<ConsumeResult> =>
        consume(s, {
          cost,
          periodEnd: JULY_END,
          now: T0,
          dayKey: d,
          dayExpiresAt: T0 + 120 * DAY,
        });
      for (const [i, d] of days.entries()) await charge(d, i + 1);
      await charge(days[0] as string, 10, peers[1]);
      // Another subject's days in the same month are its own.
      await charge(dayKey(plan, key('b'), '2026-06-10'), 7);
      const asked = [days[3], days[0], dayKey(plan, a, '2026-06-12'), days[2], days[1]] as string[];
      expect(await store.readDays(asked)).toEqual([4, 11, 0, 3, 2]);
      expect(await (peers[2] as CounterStore).readDays([dayKey(plan, key('b'), '2026-06-10')])).toEqual([7]);
      // A day that is no calendar day was never counted.
      expect(await store.readDays([dayKey(plan, a, '2026-02-30'), days[0] as string])).toEqual([0, 11]);
    },
  },
  {
    name: 'reading costs nothing: unknown counters read as undefined and 0',
    async run({ store }, plan) {
      const k = keysOf(plan, key('a'));
      expect(await store.readQuotas([k.quota])).toEqual([undefined]);
      expect(await store.readDays([k.day])).toEqual([0]);
      await consume(store, quotaOnly(plan, key('a'), T0, { dayKey: k.day, dayExpiresAt: T0 + 2 * DAY }));
      for (let i = 0; i < 2; i++) {
        expect(await store.readQuotas([k.quota, keysOf(plan, key('b')).quota])).toEqual([
          { used: 1, granted: 0 },
          undefined,
        ]);
        expect(await store.readDays([k.day])).toEqual([1]);
      }
      expect(await store.readQuotas([])).toEqual([]);
      expect(await store.readDays([])).toEqual([]);
    },
  },
  {
    name: "every key it writes expires: the bucket when full, the quota after its period, the day after the retention (at most its month's), markers and alerts with their counter",
    async run(t, plan) {
      const k = keysOf(plan, key('a'));
      const dayExpiresAt = T0 + DAY + 90 * DAY;
      const r = request(plan, key('a'), T0, { dayKey: k.day, dayExpiresAt, thresholds: [1] });
      expect(await consume(t.store, r)).toMatchObject({
        allowed: true,
        bucket: { fullInMs: 1000 },
        crossed: [1],
      });
      expect(
        await t.store.adjust({ quotaKey: k.quota, id: 'adj', amount: 1, periodEnd: JUNE_END, now: T0 }),
      ).toBe(true);
      const bucket = await t.lifetime(k.bucket, T0);
      expect(bucket).toBeGreaterThan(0);
      expect(bucket).toBeLessThanOrEqual(1000);
      // The quota outlives its period by at most a day (usage readers read the last period after it ends).
      for (const quotaPart of [k.quota, adjustmentMarkerKey(k.quota, 'adj'), alertsKey(k.quota)]) {
        const life = await t.lifetime(quotaPart, T0);
        expect(life, quotaPart).toBeGreaterThan(JUNE_END - T0 - 60_000);
        expect(life, quotaPart).toBeLessThanOrEqual(JUNE_END - T0 + DAY);
      }
      // A day lives at least until its retention ends, at most until its month's last day's does (Redis
      // keeps a month of days in one hash).
      const monthLater = JUNE_END - (T0 + DAY);
      const day = await t.lifetime(k.day, T0);
      expect(day).toBeGreaterThan(dayExpiresAt - T0 - 60_000);
      expect(day).toBeLessThanOrEqual(dayExpiresAt - T0 + monthLater);
      // An earlier day of the month counted later (a count added back after an outage) keeps its own
      // retention and does not shorten the later day's.
      const early = dayKey(plan, key('a'), '2026-06-03');
      const earlyExpiresAt = Date.UTC(2026, 5, 4) + 90 * DAY;
      await consume(t.store, quotaOnly(plan, key('a'), T0, { dayKey: early, dayExpiresAt: earlyExpiresAt }));
      expect(await t.lifetime(early, T0)).toBeGreaterThan(earlyExpiresAt - T0 - 60_000);
      expect(await t.lifetime(k.day, T0)).toBeGreaterThan(dayExpiresAt - T0 - 60_000);
      expect(await t.store.readDays([early, k.day])).toEqual([1, 1]);
    },
  },
  {
    name: 'requests issued together are decided in the order issued, each with its own answer',
    async run({ store }, plan) {
      // One turn of the event loop: the Redis store sends these in one call, the memory store one by one.
      const a = request(plan, key('a'), T0, { bucketLimit: { rate: 1, burst: 10 }, thresholds: [50] });
      const b = request(plan, key('b'), T0, { bucketLimit: { rate: 1, burst: 10 }, cost: 2 });
      const all = await Promise.all([a, b, a, a, b, a].map((r) => consume(store, r)));
      expect(all.map((x) => x.allowed)).toEqual([true, true, true, true, false, false]);
      expect(all.map((x) => x.quota?.used)).toEqual([1, 2, 2, 3, 2, 3]);
      expect(all.map((x) => x.deniedBy)).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
        'quota',
        'quota',
      ]);
      // a's second request crossed 50% of 3; b's counters are its own.
      expect(all.map((x) => x.crossed ?? [])).toEqual([[], [], [50], [], [], []]);
      expect(all.map((x) => x.bucket?.remaining)).toEqual([9, 9, 8, 7, 9, 7]);
    },
  },
  {
    name: 'requests from several replicas at once allow exactly the quota, and report each threshold once',
    async run({ peers }, plan) {
      const QUOTA = 100;
      const r = request(plan, key('a'), T0, {
        bucketLimit: { rate: 1, burst: 1000 },
        quotaLimit: QUOTA,
        thresholds: [50, 100],
      });
      const all = await Promise.all(
        Array.from({ length: 240 }, (_, i) => consume(peers[i % peers.length] as CounterStore, r)),
      );
      expect(all.filter((x) => x.allowed)).toHaveLength(QUOTA);
      expect(all.filter((x) => x.deniedBy === 'quota')).toHaveLength(240 - QUOTA);
      expect(all.flatMap((x) => x.crossed ?? []).sort((a, b) => a - b)).toEqual([50, 100]);
      // Each allowed request saw a different count: no two replicas granted the same unit.
      const used = all.filter((x) => x.allowed).map((x) => x.quota?.used);
      expect(new Set(used).size).toBe(QUOTA);
      expect(await (peers[0] as CounterStore).readQuotas([keysOf(plan, key('a')).quota])).toEqual([
        { used: QUOTA, granted: 0 },
      ]);
    },
  },
]);
