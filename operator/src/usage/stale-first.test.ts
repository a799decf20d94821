import { describe, expect, it } from 'vitest';
import { StaleFirstSchedule } from './stale-first.ts';

/** Drains a schedule with a fake clock stepping `stepMs`, for `forMs`: the ids taken and when. */
function drain<T>(
  s: StaleFirstSchedule<T>,
  from: number,
  forMs: number,
  stepMs = 10,
): { id: string; at: number }[] {
  const out: { id: string; at: number }[] = [];
  for (let t = from; t < from + forMs; t += stepMs) {
    for (let p = s.take(t); p; p = s.take(t)) out.push({ id: p.id, at: t });
  }
  return out;
}

describe('StaleFirstSchedule', () => {
  it('takes the longest-stale write first, keeping its place when its value changes', () => {
    const s = new StaleFirstSchedule<number>(1);
    s.upsert('b', 1, 1000);
    s.upsert('a', 1, 2000);
    s.upsert('c', 1, 3000);
    s.upsert('b', 2, 4000); // changed again: still the stalest
    expect(drain(s, 5000, 3000, 1000)).toEqual([
      { id: 'b', at: 5000 },
      { id: 'a', at: 6000 },
      { id: 'c', at: 7000 },
    ]);
  });

  it('never exceeds the rate: 10,000 changed keys at 20 a second take 500 s, each key once', () => {
    const s = new StaleFirstSchedule<null>(20);
    for (let i = 0; i < 10_000; i++) s.upsert(`k${String(i).padStart(5, '0')}`, null, i);
    const taken = drain(s, 10_000, 600_000, 50);
    expect(taken).toHaveLength(10_000);
    expect(new Set(taken.map((t) => t.id)).size).toBe(10_000);
    // The order is the order they became stale.
    expect(taken.map((t) => t.id)).toEqual([...taken.map((t) => t.id)].sort());
    // In any one second (after the first, which may spend the full bucket) at most 20 writes.
    const perSecond = new Map<number, number>();
    for (const t of taken)
      perSecond.set(Math.floor(t.at / 1000), (perSecond.get(Math.floor(t.at / 1000)) ?? 0) + 1);
    for (const [second, n] of perSecond) if (second > 10) expect(n).toBeLessThanOrEqual(20);
    const last = taken.at(-1)?.at ?? 0;
    expect(last - 10_000).toBeGreaterThanOrEqual(499_000);
    expect(last - 10_000).toBeLessThanOrEqual(500_100);
  });

  it('puts urgent writes (an alert to announce) first, and skips ids whose write is in flight', () => {
    const s = new StaleFirstSchedule<string>(100);
    s.upsert('old', 'x', 0);
    s.upsert('alert', 'y', 50, true);
    s.upsert('mid', 'z', 10);
    expect(s.take(100)?.id).toBe('alert');
    expect(s.take(100, new Set(['old']))?.id).toBe('mid');
    expect(s.take(100)?.id).toBe('old');
    expect(s.take(100)).toBeUndefined();
  });

  it('puts a failed write behind the others, and lets a newer value win', () => {
    const s = new StaleFirstSchedule<string>(100);
    s.upsert('a', 'v1', 0);
    s.upsert('b', 'v1', 10);
    const a = s.take(100);
    expect(a?.id).toBe('a');
    s.retry(a!, 100);
    expect(s.take(101)?.id).toBe('b');
    expect(s.take(102)).toMatchObject({ id: 'a', value: 'v1', since: 100 });
    s.upsert('c', 'v1', 200);
    const c = s.take(300)!;
    s.upsert('c', 'v2', 310);
    s.retry(c, 320);
    expect(s.take(400)).toMatchObject({ id: 'c', value: 'v2' });
  });

  it('says how long until the next write may go', () => {
    const s = new StaleFirstSchedule<null>(2);
    expect(s.waitMs(0)).toBe(Infinity);
    s.upsert('a', null, 0);
    s.upsert('b', null, 0);
    s.upsert('c', null, 0);
    expect(s.take(0)).toBeDefined();
    expect(s.take(0)).toBeDefined();
    expect(s.take(0)).toBeUndefined();
    expect(s.waitMs(0)).toBe(500);
    expect(s.waitMs(400)).toBe(100);
    expect(s.take(500)?.id).toBe('c');
  });

  it('refuses a rate of 0', () => {
    expect(() => new StaleFirstSchedule(0)).toThrow(RangeError);
  });
});
