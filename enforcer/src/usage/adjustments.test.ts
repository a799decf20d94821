import { describe, expect, it } from 'vitest';
import type { RenderedAdjustment, StageDocuments } from '../../../contract/src/format.ts';
import { counterKeys } from '../../../contract/src/identity.ts';
import { PeriodCache } from '../../../contract/src/calendar-period.ts';
import { catalogOf, plan, silentLogger, stageDocuments } from '../../testing/fixtures.ts';
import type { Catalog } from '../catalog/catalog.ts';
import { manualClock } from '../decision/clock.ts';
import { MemoryStore } from '../store/memory-store.ts';
import type { AdjustRequest } from '../store/store.ts';
import { EnforcerMetrics, METRIC_NAMES } from '../telemetry/metrics.ts';
import { AdjustmentApplier, parseSubject, planAdjustments } from './adjustments.ts';

// 2026-04-15T12:00Z: the MONTH period is 2026-04-01, the DAY period 2026-04-15.
const T0 = Date.UTC(2026, 3, 15, 12);
const PROD = { namespace: 'shop', api: 'orders', stage: 'prod' };
const BETA = { namespace: 'shop', api: 'orders', stage: 'beta' };

const plans = [
  plan('shop', 'gold', { quota: { limit: 100, period: 'MONTH', timeZone: 'UTC' } }),
  plan('shop', 'daily', { quota: { limit: 10, period: 'DAY', timeZone: 'UTC' } }),
  plan('shop', 'free', { throttle: { rate: 1, burst: 1 } }),
];

function adj(id: string, spec: Partial<RenderedAdjustment> = {}): RenderedAdjustment {
  return { id, plan: 'gold', subject: 'key:k1', period: '2026-04-01', amount: 50, ...spec };
}

function withAdjustments(docs: StageDocuments, adjustments: RenderedAdjustment[]): StageDocuments {
  return { ...docs, index: { ...docs.index, adjustments } };
}

async function catalog(prod: RenderedAdjustment[], beta: RenderedAdjustment[] = []): Promise<Catalog> {
  const keys = [{ id: 'k1', plan: 'gold', values: [{ value: 'an-imported-key-of-enough-length-1' }] }];
  return catalogOf(
    withAdjustments(stageDocuments(PROD, plans, keys), prod),
    withAdjustments(stageDocuments(BETA, plans, []), beta),
  );
}

const quotaKey = (planName: string, subject: string, period: string): string =>
  counterKeys(
    `shop/${planName}`,
    subject.startsWith('key:')
      ? { kind: 'key', id: subject.slice(4) }
      : { kind: 'customer', name: subject.slice(9) },
    period,
  ).quota;

describe('parseSubject', () => {
  it.each([
    ['key:k1', { kind: 'key', id: 'k1' }],
    ['customer:acme:eu', { kind: 'customer', name: 'acme:eu' }],
    ['key:', undefined],
    ['team:x', undefined],
    ['k1', undefined],
    ['key:a{b}', undefined],
  ])('%s', (text, expected) => {
    expect(parseSubject(text)).toEqual(expected);
  });
});

describe('planAdjustments', () => {
  it("applies those of the plan's current period, once across stages; a past one is ignored, a future one waits", async () => {
    const c = await catalog(
      [
        adj('now'),
        adj('past', { period: '2026-03-01' }),
        adj('future', { period: '2026-05-01' }),
        adj('daily-now', { plan: 'daily', period: '2026-04-15', subject: 'customer:acme', amount: -3 }),
        adj('daily-yesterday', { plan: 'daily', period: '2026-04-14' }),
      ],
      // The plan is bound on both stages: the same adjustment is listed twice, applied once.
      [adj('now')],
    );
    const plan = planAdjustments(c, T0, new PeriodCache());
    expect(plan.due.map((d) => d.request)).toEqual([
      {
        quotaKey: quotaKey('gold', 'key:k1', '2026-04-01'),
        id: 'now',
        amount: 50,
        periodEnd: Date.UTC(2026, 4, 1),
        now: T0,
      },
      {
        quotaKey: quotaKey('daily', 'customer:acme', '2026-04-15'),
        id: 'daily-now',
        amount: -3,
        periodEnd: Date.UTC(2026, 3, 16),
        now: T0,
      },
    ]);
    expect(plan.due.map((d) => d.planId)).toEqual(['shop/gold', 'shop/daily']);
    expect(plan.waiting).toBe(1);
    expect(plan.nextCheckAt).toBe(Date.UTC(2026, 4, 1));
    expect(plan.skipped.map((s) => [s.adjustment.id, s.why])).toEqual([
      ['past', 'past-period'],
      ['daily-yesterday', 'past-period'],
    ]);
  });

  it('skips an adjustment naming a plan the stage lacks, a plan without a quota, or a bad subject', async () => {
    const c = await catalog([
      adj('a', { plan: 'nope' }),
      adj('b', { plan: 'free' }),
      adj('c', { subject: 'team:x' }),
    ]);
    const plan = planAdjustments(c, T0, new PeriodCache());
    expect(plan.due).toEqual([]);
    expect(plan.skipped.map((s) => [s.adjustment.id, s.why])).toEqual([
      ['a', 'unknown-plan'],
      ['b', 'no-quota'],
      ['c', 'bad-subject'],
    ]);
  });

  it('has nothing to do without a catalog', () => {
    expect(planAdjustments(undefined, T0, new PeriodCache())).toEqual({
      due: [],
      waiting: 0,
      nextCheckAt: undefined,
      skipped: [],
    });
  });
});

describe('AdjustmentApplier', () => {
  const metric = async (metrics: EnforcerMetrics): Promise<string> =>
    (await metrics.registry.getSingleMetricAsString(METRIC_NAMES.adjustmentsApplied)).trim();

  it('applies each due adjustment exactly once: again, and by a new applier on the same store (a restart)', async () => {
    const c = await catalog([adj('g1'), adj('g2', { amount: -20 })], [adj('g1')]);
    const store = new MemoryStore();
    const metrics = new EnforcerMetrics(true, false);
    const clock = manualClock(T0);
    const deps = {
      catalog: { current: () => c },
      store,
      clock,
      logger: silentLogger,
      applied: (p: string) => {
        metrics.adjustmentApplied(p);
      },
    };
    const applier = new AdjustmentApplier(deps);
    expect(await applier.trigger()).toEqual({
      applied: 2,
      alreadyApplied: 0,
      failed: 0,
      waiting: 0,
      skipped: 0,
    });
    const key = quotaKey('gold', 'key:k1', '2026-04-01');
    expect(await store.readQuotas([key])).toEqual([{ used: 0, granted: 30 }]);
    // Asked again (another config swap): nothing more.
    expect(await applier.trigger()).toEqual({
      applied: 0,
      alreadyApplied: 0,
      failed: 0,
      waiting: 0,
      skipped: 0,
    });
    // A new applier (as after a restart) asks the store, which has the markers.
    const again = new AdjustmentApplier(deps);
    expect(await again.trigger()).toEqual({
      applied: 0,
      alreadyApplied: 2,
      failed: 0,
      waiting: 0,
      skipped: 0,
    });
    expect(await store.readQuotas([key])).toEqual([{ used: 0, granted: 30 }]);
    expect(await metric(metrics)).toContain('keystile_adjustments_applied_total{plan="shop/gold"} 2');
    await applier.stop();
    await again.stop();
  });

  it('retries what the store failed on, and never counts it twice', async () => {
    const c = await catalog([adj('r1')]);
    const memory = new MemoryStore();
    let failures = 1;
    const calls: AdjustRequest[] = [];
    const store = {
      adjust: (r: AdjustRequest): Promise<boolean> => {
        calls.push(r);
        if (failures-- > 0) return Promise.reject(new Error('the store is down'));
        return memory.adjust(r);
      },
    };
    const applier = new AdjustmentApplier({
      catalog: { current: () => c },
      store,
      clock: manualClock(T0),
      logger: silentLogger,
      retryMs: 20,
    });
    expect((await applier.trigger()).failed).toBe(1);
    await expect
      .poll(async () => (await memory.readQuotas([quotaKey('gold', 'key:k1', '2026-04-01')]))[0]?.granted)
      .toBe(50);
    expect(calls.map((r) => r.id)).toEqual(['r1', 'r1']);
    await applier.stop();
  });

  it('applies a waiting adjustment once its period starts', async () => {
    const c = await catalog([adj('next-day', { plan: 'daily', period: '2026-04-16', amount: 5 })]);
    const memory = new MemoryStore();
    const midnight = Date.UTC(2026, 3, 16);
    const clock = manualClock(midnight - 30);
    const applier = new AdjustmentApplier({
      catalog: { current: () => c },
      store: memory,
      clock,
      logger: silentLogger,
    });
    expect(await applier.trigger()).toMatchObject({ applied: 0, waiting: 1 });
    // The applier set a timer for just after midnight; the clock gets there before it fires.
    clock.set(midnight + 5);
    await expect
      .poll(async () => (await memory.readQuotas([quotaKey('daily', 'key:k1', '2026-04-16')]))[0])
      .toEqual({ used: 0, granted: 5 });
    await applier.stop();
  });

  it('runs one at a time: triggers during a run make one more run', async () => {
    const c = await catalog([adj('s1')]);
    let inFlight = 0;
    let most = 0;
    const memory = new MemoryStore();
    const store = {
      adjust: async (r: AdjustRequest): Promise<boolean> => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight--;
        return memory.adjust(r);
      },
    };
    const applier = new AdjustmentApplier({
      catalog: { current: () => c },
      store,
      clock: manualClock(T0),
      logger: silentLogger,
    });
    const reports = await Promise.all([applier.trigger(), applier.trigger(), applier.trigger()]);
    expect(most).toBe(1);
    expect(reports[0]?.applied).toBe(1);
    expect(reports[1]).toEqual(reports[2]);
    expect(reports[1]?.applied).toBe(0);
    await applier.stop();
    expect(await applier.trigger()).toEqual({
      applied: 0,
      alreadyApplied: 0,
      failed: 0,
      waiting: 0,
      skipped: 0,
    });
  });
});
