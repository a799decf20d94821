import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { RetryAfter, WorkQueue } from './queue.ts';

describe('WorkQueue', () => {
  it('processes a key queued many times once, and never two runs of one key at once', async () => {
    const runs: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const q = new WorkQueue(
      async (key) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        runs.push(key);
        await sleep(20);
        inFlight--;
      },
      { concurrency: 4 },
    );
    for (let i = 0; i < 10; i++) q.add('a');
    q.start();
    await sleep(5);
    q.add('a'); // while 'a' runs: runs once more afterwards
    q.add('a');
    await sleep(80);
    await q.stop();
    expect(runs).toEqual(['a', 'a']);
    expect(maxInFlight).toBe(1);
  });

  it('keeps the earlier of two delays for one key', async () => {
    const runs: number[] = [];
    const q = new WorkQueue(() => {
      runs.push(performance.now());
      return Promise.resolve();
    });
    q.start();
    const t0 = performance.now();
    q.addAfter('k', 20);
    q.addAfter('k', 60_000); // a far deadline must not postpone the near one
    await sleep(80);
    await q.stop();
    expect(runs).toHaveLength(1);
    expect(runs[0]! - t0).toBeLessThan(1000);
  });

  it('runs different keys concurrently', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const q = new WorkQueue(
      async () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await sleep(20);
        inFlight--;
      },
      { concurrency: 3 },
    );
    q.start();
    for (const k of ['a', 'b', 'c']) q.add(k);
    await sleep(50);
    await q.stop();
    expect(maxInFlight).toBe(3);
  });

  it('retries a failing key with growing backoff, and honours a requested delay', async () => {
    const times: number[] = [];
    const q = new WorkQueue(
      () => {
        times.push(performance.now());
        if (times.length === 1) return Promise.reject(new Error('boom'));
        if (times.length === 2) return Promise.reject(new RetryAfter(60, 'throttled'));
        return Promise.resolve();
      },
      { baseDelayMs: 10, concurrency: 1 },
    );
    q.start();
    q.add('k');
    await sleep(200);
    await q.stop();
    expect(times).toHaveLength(3);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(9);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(59);
  });
});
