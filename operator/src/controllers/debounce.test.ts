import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Debouncer } from './debounce.ts';

describe('Debouncer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires a lone change after the quiet time', () => {
    const fired: string[] = [];
    const d = new Debouncer((k) => fired.push(k), { quietMs: 50, maxWaitMs: 2000 });
    d.touch('ns:a');
    vi.advanceTimersByTime(49);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(['ns:a']);
    expect(d.size).toBe(0);
  });

  it('gathers changes that keep coming, but fires at the latest maxWait after the first', () => {
    const fired: number[] = [];
    const d = new Debouncer(() => fired.push(Date.now()), { quietMs: 50, maxWaitMs: 2000 });
    const start = Date.now();
    // A change every 10 ms for 5 s: fires every 2 s, not 500 times.
    for (let t = 0; t < 5000; t += 10) {
      d.touch('ns:a');
      vi.advanceTimersByTime(10);
    }
    vi.advanceTimersByTime(100);
    expect(fired.map((t) => t - start)).toEqual([2000, 4000, 5040]);
  });

  it('fires after a gap in the changes, before maxWait', () => {
    const fired: number[] = [];
    const d = new Debouncer(() => fired.push(Date.now()), { quietMs: 50, maxWaitMs: 2000 });
    const start = Date.now();
    d.touch('ns:a');
    vi.advanceTimersByTime(30);
    d.touch('ns:a');
    vi.advanceTimersByTime(200);
    expect(fired.map((t) => t - start)).toEqual([80]);
  });

  it('keeps namespaces apart, and fires nothing once stopped', () => {
    const fired: string[] = [];
    const d = new Debouncer((k) => fired.push(k), { quietMs: 50, maxWaitMs: 2000 });
    d.touch('ns:a');
    vi.advanceTimersByTime(25);
    d.touch('ns:b');
    vi.advanceTimersByTime(25);
    expect(fired).toEqual(['ns:a']);
    d.stop();
    vi.advanceTimersByTime(100);
    expect(fired).toEqual(['ns:a']);
    d.touch('ns:c');
    vi.advanceTimersByTime(100);
    expect(fired).toEqual(['ns:a']);
  });
});
