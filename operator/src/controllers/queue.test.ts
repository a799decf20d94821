import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RetryAfter, WorkQueue } from './queue.ts';

/** Values pushed by callbacks, taken in order; `next()` fails if none comes within a (generous) deadline. */
function channel<T>(what: string) {
  const items: T[] = [];
  let taken = 0;
  return {
    items,
    push: (item: T): void => {
      items.push(item);
    },
    async next(): Promise<T> {
      // performance and setImmediate are not faked (see beforeEach): this deadline is real time.
      const end = performance.now() + 5000;
      while (items.length <= taken) {
        if (performance.now() > end) throw new Error(`no ${what} (#${taken + 1}) within 5 s`);
        await new Promise((resolve) => setImmediate(resolve));
      }
      return items[taken++]!;
    },
  };
}

/** One handler run, which waits until the test settles it. */
interface Run {
  readonly key: string;
  /** When it started, by the fake clock. */
  readonly at: number;
  resolve(): void;
  reject(err: Error): void;
}

/** A handler whose runs the test settles, and which counts how many run at once. */
function scripted() {
  const runs = channel<Run>('handler run');
  let inFlight = 0;
  let maxInFlight = 0;
  const handler = (key: string): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      runs.push({
        key,
        at: Date.now(),
        resolve: () => {
          inFlight--;
          resolve();
        },
        reject: (err) => {
          inFlight--;
          reject(err);
        },
      });
    });
  return {
    handler,
    runs,
    inFlight: () => inFlight,
    maxInFlight: () => maxInFlight,
  };
}

/** Lets every pending promise continuation run (one turn of the real event loop). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

// The queue's delays run on a fake clock (setTimeout and Date), so a delay is measured exactly; the
// handler runs are settled by the test, not by sleeps.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('WorkQueue', () => {
  it('processes a key queued many times once, and never two runs of one key at once', async () => {
    const h = scripted();
    const done = channel<string>('finished run');
    const q = new WorkQueue(h.handler, { concurrency: 4, onDone: (key) => done.push(key) });
    for (let i = 0; i < 10; i++) q.add('a');
    q.start();
    const first = await h.runs.next();
    q.add('a'); // while 'a' runs: runs once more afterwards, not now on another worker
    q.add('a');
    await settle();
    expect(h.runs.items).toHaveLength(1);
    first.resolve();
    await done.next();
    const second = await h.runs.next();
    expect(second.key).toBe('a');
    second.resolve();
    await done.next();
    // Nothing queued or waiting: the ten adds before the start and the two during the run were one each.
    expect(q.depth).toBe(0);
    await settle();
    expect(h.runs.items.map((r) => r.key)).toEqual(['a', 'a']);
    expect(h.maxInFlight()).toBe(1);
    await q.stop();
  });

  it('keeps the earlier of two delays for one key', async () => {
    const h = scripted();
    const q = new WorkQueue(h.handler);
    q.start();
    const t0 = Date.now();
    q.addAfter('k', 20);
    q.addAfter('k', 60_000); // a far deadline must not postpone the near one
    await vi.advanceTimersByTimeAsync(19);
    await settle();
    expect(h.runs.items).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    const run = await h.runs.next();
    expect(run.at - t0).toBe(20);
    run.resolve();
    await q.stop();
  });

  it('runs different keys concurrently', async () => {
    const h = scripted();
    const q = new WorkQueue(h.handler, { concurrency: 3 });
    q.start();
    for (const k of ['a', 'b', 'c']) q.add(k);
    // All three start before any finishes.
    const runs = [await h.runs.next(), await h.runs.next(), await h.runs.next()];
    expect(runs.map((r) => r.key).sort()).toEqual(['a', 'b', 'c']);
    expect(h.inFlight()).toBe(3);
    for (const r of runs) r.resolve();
    await q.stop();
  });

  /**
   * Fails the key's runs with `errors` in turn (then lets it succeed), and returns the delay before each
   * retry, by the fake clock. Each retry is waited for by moving the clock to the queue's next timer.
   */
  async function retryDelays(
    errors: readonly Error[],
    options: { baseDelayMs: number; maxDelayMs?: number },
  ): Promise<number[]> {
    const h = scripted();
    const failed = channel<number>('failure');
    const q = new WorkQueue(h.handler, {
      ...options,
      concurrency: 1,
      onError: (_key, _err, attempt) => failed.push(attempt),
    });
    q.start();
    q.add('k');
    const delays: number[] = [];
    let run = await h.runs.next();
    for (const err of errors) {
      run.reject(err);
      await failed.next(); // the retry is scheduled when onError returns
      await vi.advanceTimersToNextTimerAsync();
      const retry = await h.runs.next();
      delays.push(retry.at - run.at);
      run = retry;
    }
    run.resolve();
    await q.stop();
    return delays;
  }

  it('retries a failing key with backoff that doubles from its base, up to the maximum', async () => {
    const boom = (): Error => new Error('boom');
    expect(await retryDelays([boom(), boom(), boom()], { baseDelayMs: 10 })).toEqual([10, 20, 40]);
    expect(await retryDelays([boom(), boom(), boom(), boom()], { baseDelayMs: 10, maxDelayMs: 25 })).toEqual([
      10, 20, 25, 25,
    ]);
  });

  it('starts the backoff again from its base once the key succeeds', async () => {
    const h = scripted();
    const q = new WorkQueue(h.handler, { baseDelayMs: 10, concurrency: 1 });
    q.start();
    q.add('k');
    for (let i = 0; i < 2; i++) {
      const run = await h.runs.next();
      run.reject(new Error('boom'));
      await settle();
      await vi.advanceTimersToNextTimerAsync();
    }
    (await h.runs.next()).resolve(); // after 10 and 20 ms: succeeds
    await settle();
    q.add('k');
    const run = await h.runs.next();
    run.reject(new Error('boom'));
    await settle();
    await vi.advanceTimersToNextTimerAsync();
    const retry = await h.runs.next();
    expect(retry.at - run.at).toBe(10);
    retry.resolve();
    await q.stop();
  });

  it('retries after the delay a RetryAfter asks for, or the backoff if that is longer', async () => {
    expect(
      await retryDelays([new RetryAfter(60, 'throttled'), new RetryAfter(5, 'throttled')], {
        baseDelayMs: 10,
      }),
    ).toEqual([60, 20]);
  });
});
