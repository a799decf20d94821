import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Decision } from '../decision/answers.ts';
import { plan, stageDocuments, stageTexts } from '../../testing/fixtures.ts';
import { CatalogLoader } from '../catalog/loader.ts';
import { ThresholdParser } from '../catalog/parser.ts';
import { EnforcerMetrics, MAX_DECISION_SERIES, METRIC_NAMES } from './metrics.ts';

const gold = plan('shop', 'gold', { throttle: { rate: 10, burst: 10 } });
const stage = (name: string) => ({ namespace: 'shop', api: 'orders', stage: name });
const docs = (name: string) =>
  stageDocuments(
    stage(name),
    [gold],
    [{ id: 'key0abcdefgh', plan: 'gold', values: [{ value: `v-${name}-0123456789abcdef` }] }],
  );

/** The value of an unlabelled gauge. */
async function gauge(metrics: EnforcerMetrics, name: string): Promise<number | undefined> {
  const m = metrics.registry.getSingleMetric(name);
  return (await m?.get())?.values[0]?.value;
}

/** A loader wired to the metrics as the enforcer's main is, on a clock that says `now()` seconds. */
function wired(now: () => number): { metrics: EnforcerMetrics; loader: CatalogLoader } {
  const metrics = new EnforcerMetrics(true, false);
  const loader = new CatalogLoader(new ThresholdParser(Infinity), {
    swapped: (catalog, ms) => metrics.swapped(catalog, ms / 1000),
    refused: (_origin, error) => metrics.refused(error.code, now()),
    upToDate: () => metrics.upToDate(now()),
  });
  return { metrics, loader };
}

describe("the enforcer's config metrics", () => {
  it('say when a load last refused nothing, 0 while none has: a first load that refused a stage is never', async () => {
    let now = 1_700_000_000;
    const { metrics, loader } = wired(() => now);
    expect(await gauge(metrics, METRIC_NAMES.configLastReload)).toBe(0);

    // The first load swaps one stage in and refuses another: ready, serving one stage, never complete.
    const broken = { ...docs('beta'), keys: ['{'] };
    await loader.load({ kind: 'stages', stages: [stageTexts(docs('prod')), stageTexts(broken)] });
    expect(await gauge(metrics, METRIC_NAMES.configLoaded)).toBe(1);
    expect(await gauge(metrics, METRIC_NAMES.configStages)).toBe(1);
    expect(await gauge(metrics, METRIC_NAMES.configLastReload)).toBe(0);
    expect(await gauge(metrics, METRIC_NAMES.configLastReloadError)).toBe(now);

    // Fixed: the next load refuses nothing, and says so with its time.
    now += 600;
    await loader.load({ kind: 'stages', stages: [stageTexts(docs('prod')), stageTexts(docs('beta'))] });
    expect(await gauge(metrics, METRIC_NAMES.configStages)).toBe(2);
    expect(await gauge(metrics, METRIC_NAMES.configLastReload)).toBe(now);
    await loader.close();
  });

  it('keep at most MAX_DECISION_SERIES decision label sets, then start over, as docs/enforcer.md says', async () => {
    const metrics = new EnforcerMetrics(true, false);
    const decision = (keyId: string): Decision =>
      ({ reason: 'Allowed', stage: 'shop/orders/prod', plan: 'shop/gold', keyId }) as unknown as Decision;
    const series = async (): Promise<number> =>
      (await metrics.registry.getSingleMetric(METRIC_NAMES.decisions)?.get())?.values.length ?? 0;
    for (let i = 0; i < MAX_DECISION_SERIES; i++) metrics.decided(decision(`k${i}`), 'http', 0.00001);
    metrics.decided(decision('k0'), 'http', 0.00001); // a known label set: counted in place
    expect(await series()).toBe(MAX_DECISION_SERIES);
    expect(await gauge(metrics, METRIC_NAMES.decisionSeriesResets)).toBe(0);
    metrics.decided(decision('one-more'), 'http', 0.00001);
    expect(await series()).toBe(1);
    expect(await gauge(metrics, METRIC_NAMES.decisionSeriesResets)).toBe(1);
    const doc = readFileSync(join(import.meta.dirname, '../../../docs/enforcer.md'), 'utf8');
    expect(doc).toContain(MAX_DECISION_SERIES.toLocaleString('en-US'));
  });
});
