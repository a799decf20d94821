import { describe, expect, it } from 'vitest';
import { TurnBatcher } from './turn-batch.ts';

/** A batcher whose sender records the batches it was given and answers each call with call * 10. */
function recording(
  groupOf: (n: number) => string = () => '',
  maxSize?: number,
): { batcher: TurnBatcher<number, number>; batches: number[][] } {
  const batches: number[][] = [];
  const batcher = new TurnBatcher<number, number>(
    (calls) => {
      batches.push([...calls]);
      return Promise.resolve(calls.map((c) => c * 10));
    },
    groupOf,
    maxSize,
  );
  return { batcher, batches };
}

describe('TurnBatcher', () => {
  it('sends the calls of one turn together, in order, and answers each with its own result', async () => {
    const { batcher, batches } = recording();
    const results = await Promise.all([1, 2, 3].map((n) => batcher.add(n)));
    expect(results).toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('sends calls of later turns in batches of their own', async () => {
    const { batcher, batches } = recording();
    await batcher.add(1);
    await batcher.add(2);
    expect(batches).toEqual([[1], [2]]);
  });

  it('keeps groups apart and splits a group at the maximum size', async () => {
    const { batcher, batches } = recording((n) => (n % 2 === 0 ? 'even' : 'odd'), 2);
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => batcher.add(n)));
    expect(results).toEqual([10, 20, 30, 40, 50, 60]);
    expect(batches.map((b) => [...b].sort()).sort()).toEqual([[1, 3], [2, 4], [5], [6]]);
  });

  it('rejects every call of a batch whose sending failed, and only those', async () => {
    const batcher = new TurnBatcher<number, number>(
      (calls) => (calls.includes(13) ? Promise.reject(new Error('down')) : Promise.resolve(calls)),
      (n) => String(n),
    );
    const settled = await Promise.allSettled([batcher.add(13), batcher.add(7)]);
    expect(settled[0]).toMatchObject({ status: 'rejected', reason: { message: 'down' } });
    expect(settled[1]).toEqual({ status: 'fulfilled', value: 7 });
  });

  it('rejects calls a sender that throws or answers too few results leaves unanswered', async () => {
    const throwing = new TurnBatcher<number, number>(
      () => {
        throw new Error('bug');
      },
      () => '',
    );
    await expect(throwing.add(1)).rejects.toThrow('bug');
    const short = new TurnBatcher<number, number>(
      (calls) => Promise.resolve(calls.slice(1)),
      () => '',
    );
    const settled = await Promise.allSettled([short.add(1), short.add(2)]);
    expect(settled[0]).toEqual({ status: 'fulfilled', value: 2 });
    expect(settled[1]).toMatchObject({ status: 'rejected', reason: { message: /answered 1 times/ } });
  });
});
