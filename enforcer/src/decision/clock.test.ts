import { describe, expect, it, vi } from 'vitest';
import { manualClock, systemClock } from './clock.ts';

describe('systemClock', () => {
  it('reads Date.now()', () => {
    vi.useFakeTimers({ now: 1_790_000_000_123 });
    try {
      expect(systemClock.now()).toBe(1_790_000_000_123);
    } finally {
      vi.useRealTimers();
    }
  });

  it('cannot be replaced by a caller', () => {
    expect(Object.isFrozen(systemClock)).toBe(true);
  });
});

describe('manualClock', () => {
  it('starts at 0 by default and at the given time otherwise', () => {
    expect(manualClock().now()).toBe(0);
    expect(manualClock(1_700_000_000_000).now()).toBe(1_700_000_000_000);
  });

  it('moves only when advanced or set, backwards too', () => {
    const clock = manualClock(1000);
    expect(clock.now()).toBe(1000);
    clock.advance(250);
    expect(clock.now()).toBe(1250);
    clock.advance(-2000);
    expect(clock.now()).toBe(-750);
    clock.set(42);
    expect(clock.now()).toBe(42);
  });

  it('keeps separate clocks separate', () => {
    const a = manualClock(0);
    const b = manualClock(0);
    a.advance(5);
    expect(b.now()).toBe(0);
  });

  it('refuses non-finite times', () => {
    expect(() => manualClock(Number.NaN)).toThrow(RangeError);
    const clock = manualClock(7);
    expect(() => {
      clock.advance(Infinity);
    }).toThrow(/ms must be a finite number/);
    expect(() => {
      clock.set(Number.NaN);
    }).toThrow(RangeError);
    expect(clock.now()).toBe(7);
  });
});
