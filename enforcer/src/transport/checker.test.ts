import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { generateKey } from '../../../contract/src/key-format.ts';
import type { Decision } from '../decision/answers.ts';
import type { CheckRequest } from '../decision/decide.ts';
import { testChecker } from '../../testing/checker.ts';
import { catalogOf, plan, stageDocuments } from '../../testing/fixtures.ts';
import { MemoryStore } from '../store/memory-store.ts';
import type { ConsumeRequest, ConsumeResult, CounterStore } from '../store/store.ts';
import type { EnforcerMetrics } from '../telemetry/metrics.ts';
import type { Checker } from './checker.ts';

const T0 = Date.UTC(2026, 3, 1, 12);
const key = generateKey('checkerkeyab');
const stage = { namespace: 'shop', api: 'orders', stage: 'prod' };

/** The memory store behind a promise, as the Redis store answers. */
function asyncStore(): CounterStore {
  const memory = new MemoryStore();
  return {
    consume: (request: ConsumeRequest): Promise<ConsumeResult> => Promise.resolve(memory.consume(request)),
    adjust: (request) => memory.adjust(request),
    readQuotas: (keys) => memory.readQuotas(keys),
    readDays: (keys) => memory.readDays(keys),
    close: () => memory.close(),
  };
}

async function checkerOver(store: CounterStore): Promise<{ checker: Checker; metrics: EnforcerMetrics }> {
  const catalog = await catalogOf(
    stageDocuments(
      stage,
      [plan('shop', 'gold', { throttle: { rate: 100, burst: 100 } })],
      [{ id: key.keyId, plan: 'gold', values: [{ value: key.value }] }],
    ),
  );
  return testChecker(catalog, T0, {}, store);
}

const request: CheckRequest = {
  stage: 'shop/orders/prod',
  method: 'GET',
  path: '/v1/orders',
  header: (name) => (name === 'x-api-key' ? key.value : undefined),
};

async function sendErrors(metrics: EnforcerMetrics): Promise<number> {
  const text = await metrics.registry.metrics();
  const m = /^keystile_check_errors_total\{transport="http",class="send"\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

describe('Checker.answer when the transport fails to send', () => {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown): void => {
    rejections.push(reason);
  };
  beforeEach(() => {
    rejections.length = 0;
    process.on('unhandledRejection', onRejection);
  });
  afterEach(() => {
    process.off('unhandledRejection', onRejection);
  });

  it.each([
    ['the memory store (synchronous)', () => new MemoryStore()],
    ['a store answering with a promise (as Redis)', asyncStore],
  ])(
    'with %s: sends once, counts the failure under class "send", and neither throws nor rejects',
    async (_what, store) => {
      const { checker, metrics } = await checkerOver(store());
      const sent: Decision[] = [];
      expect(() => {
        checker.answer(request, 'http', (d) => {
          sent.push(d);
          throw new Error('the socket is gone');
        });
      }).not.toThrow();
      // Until the failure is counted (the decision may come after the store's promise).
      await vi.waitFor(async () => {
        expect(await sendErrors(metrics)).toBe(1);
      });
      expect(sent).toHaveLength(1);
      expect(sent[0]?.allowed).toBe(true);
      // One turn of the event loop: a rejection nobody handled is reported by then.
      await new Promise((resolve) => setImmediate(resolve));
      expect(rejections).toEqual([]);
      expect(sent).toHaveLength(1);
    },
  );
});
