import { ListWatch, type KubernetesObject, type Watch } from '@kubernetes/client-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { counted } from './informers.ts';
import { RESTART_BASE_MS, supervise } from './supervise.ts';

type List = { items: KubernetesObject[]; metadata?: { resourceVersion?: string } };
type Done = (err: unknown) => void;

/** client-node's real ListWatch over a scripted list and a watch whose end the test decides. */
function harness(lists: (() => Promise<List>)[]) {
  const watches: { params: Record<string, unknown>; done: Done }[] = [];
  const watch = {
    watch: (_path: string, params: Record<string, unknown>, _h: unknown, done: Done) => {
      watches.push({ params, done });
      return Promise.resolve({ abort: () => undefined });
    },
  } as unknown as Watch;
  let calls = 0;
  const inf = counted(
    (l) => new ListWatch<KubernetesObject>('/apis/keystile.dev/v1alpha1/apikeys', watch, l, false),
    () => {
      const next = lists[Math.min(calls, lists.length - 1)];
      calls += 1;
      if (!next) throw new Error('no list scripted');
      return next();
    },
  );
  const timers: { fn: () => void; ms: number; cleared: boolean }[] = [];
  const supervised = supervise(inf, {
    name: 'keys',
    log: pino({ level: 'silent' }),
    setTimer: (fn, ms) => {
      const t = { fn, ms, cleared: false };
      timers.push(t);
      return t;
    },
    clearTimer: (t) => {
      (t as { cleared: boolean }).cleared = true;
    },
  });
  return { inf, supervised, timers, watches, listCalls: () => calls };
}

const tooMany = (): Promise<List> =>
  Promise.reject(Object.assign(new Error('HTTP-Code: 429 Too Many Requests'), { code: 429 }));
const oneKey = (): Promise<List> =>
  Promise.resolve({
    items: [
      { apiVersion: 'keystile.dev/v1alpha1', kind: 'ApiKey', metadata: { name: 'k1', namespace: 'a' } },
    ],
    metadata: { resourceVersion: '42' },
  });
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('supervise', () => {
  it('is not listed after a failed list (client-node resolves start() with an empty cache), and retries with a backoff until a list succeeds', async () => {
    const h = harness([tooMany, tooMany, oneKey]);
    let listed = false;
    void h.supervised.listed.then(() => (listed = true));
    await settle();
    expect(h.listCalls()).toBe(1);
    expect(h.inf.list()).toEqual([]);
    expect(listed).toBe(false);
    expect(h.supervised.hasListed()).toBe(false);
    expect(h.timers.map((t) => t.ms)).toEqual([RESTART_BASE_MS]);

    h.timers[0]?.fn();
    await settle();
    expect(h.listCalls()).toBe(2);
    expect(listed).toBe(false);
    expect(h.timers.map((t) => t.ms)).toEqual([RESTART_BASE_MS, 2 * RESTART_BASE_MS]);

    h.timers[1]?.fn();
    await settle();
    expect(h.listCalls()).toBe(3);
    expect(listed).toBe(true);
    expect(h.inf.list().map((o) => o.metadata?.name)).toEqual(['k1']);
    expect(h.watches.at(-1)?.params.resourceVersion).toBe('42');
  });

  it('restarts a watch that ended with an error from where it was, waiting 1 s again after a success', async () => {
    const h = harness([tooMany, oneKey]);
    await settle();
    h.timers[0]?.fn();
    await settle();
    expect(h.supervised.hasListed()).toBe(true);

    h.watches.at(-1)?.done(Object.assign(new Error('connection reset'), { code: 'ECONNRESET' }));
    await settle();
    expect(h.timers.at(-1)?.ms).toBe(RESTART_BASE_MS);
    h.timers.at(-1)?.fn();
    await settle();
    // Resumed from the last resourceVersion: no second list, the cache kept.
    expect(h.listCalls()).toBe(2);
    expect(h.watches.at(-1)?.params.resourceVersion).toBe('42');
    expect(h.inf.list()).toHaveLength(1);

    // Failing again and again doubles the wait, up to the cap.
    for (let i = 0; i < 8; i++) {
      h.watches.at(-1)?.done(new Error('gone away'));
      await settle();
      h.timers.at(-1)?.fn();
      await settle();
    }
    expect(h.timers.slice(-3).map((t) => t.ms)).toEqual([30_000, 30_000, 30_000]);
  });

  it('schedules one restart for one failure, and none after stop', async () => {
    const h = harness([tooMany]);
    await settle();
    expect(h.timers).toHaveLength(1);
    h.supervised.stop();
    expect(h.timers[0]?.cleared).toBe(true);
    h.timers[0]?.fn();
    await settle();
    expect(h.listCalls()).toBe(1);
  });
});
