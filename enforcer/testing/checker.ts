/** A Checker over a fixture catalog, for transport tests. */
import { manualClock, type ManualClock } from '../src/decision/clock.ts';
import { decideContext, type DecideOptions } from '../src/decision/decide.ts';
import type { Catalog } from '../src/catalog/catalog.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import type { CounterStore } from '../src/store/store.ts';
import { EnforcerMetrics } from '../src/telemetry/metrics.ts';
import { Checker } from '../src/transport/checker.ts';
import { silentLogger } from './fixtures.ts';

/** The default decision options. */
export const TEST_OPTIONS: DecideOptions = Object.freeze<DecideOptions>({
  keySources: [{ kind: 'header', name: 'x-api-key' }],
  keyPairs: true,
  signature: {},
  problemJson: false,
  failOpen: false,
  stripKey: true,
});

/**
 * A checker deciding on `catalog` (undefined: none loaded), with a manual clock and fresh metrics, over
 * `store` (default: a fresh memory store).
 */
export function testChecker(
  catalog: Catalog | undefined,
  now: number,
  options: Partial<DecideOptions> = {},
  store: CounterStore = new MemoryStore(),
): { checker: Checker; clock: ManualClock; metrics: EnforcerMetrics; store: CounterStore } {
  const clock = manualClock(now);
  const metrics = new EnforcerMetrics(true, false);
  const checker = new Checker({
    catalog: { current: () => catalog },
    store,
    clock,
    context: decideContext({ ...TEST_OPTIONS, ...options }),
    metrics,
    logger: silentLogger,
  });
  return { checker, clock, metrics, store };
}
