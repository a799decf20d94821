import { describe, expect, it } from 'vitest';
import type { BucketLimit, BucketState } from './token-bucket.ts';
import { MAX_BURST, checkBucketLimit, peekToken, takeToken } from './token-bucket.ts';

const T0 = 1_800_000_000_000;

describe('takeToken', () => {
  it('starts a new bucket full and takes one token', () => {
    expect(takeToken(undefined, { rate: 1, burst: 5 }, T0)).toEqual({
      allowed: true,
      state: { tokens: 4, updatedAt: T0 },
      remaining: 4,
      retryAfterMs: 0,
      fullInMs: 1000,
    });
  });

  it('allows the burst at once, then refuses with the time until the next token', () => {
    const limit = { rate: 1, burst: 5 };
    let state: BucketState | undefined;
    for (let i = 0; i < 5; i++) {
      const decision = takeToken(state, limit, T0);
      expect(decision.allowed).toBe(true);
      expect(decision.remaining).toBe(4 - i);
      state = decision.state;
    }
    expect(takeToken(state, limit, T0)).toEqual({
      allowed: false,
      state: { tokens: 0, updatedAt: T0 },
      remaining: 0,
      retryAfterMs: 1000,
      fullInMs: 5000,
    });
  });

  it('refills continuously at a fractional rate', () => {
    const limit = { rate: 0.5, burst: 1 }; // one request every two seconds
    const first = takeToken(undefined, limit, T0);
    expect(first.allowed).toBe(true);
    expect(first.fullInMs).toBe(2000);

    const early = takeToken(first.state, limit, T0 + 1000);
    expect(early).toEqual({
      allowed: false,
      state: { tokens: 0.5, updatedAt: T0 + 1000 },
      remaining: 0,
      retryAfterMs: 1000,
      fullInMs: 1000,
    });
    const almost = takeToken(early.state, limit, T0 + 1999);
    expect(almost.allowed).toBe(false);
    expect(almost.retryAfterMs).toBe(1); // 0.0005 tokens short at 0.5/s: 1 ms
    const onTime = takeToken(almost.state, limit, T0 + 2000);
    expect(onTime.allowed).toBe(true);
    expect(onTime.remaining).toBe(0);
    expect(onTime.fullInMs).toBe(2000);
  });

  it('rounds the wait up to whole milliseconds and admits exactly then', () => {
    const limit = { rate: 3, burst: 1 }; // a token every 333.33 ms
    const { state } = takeToken(undefined, limit, T0);
    const denied = takeToken(state, limit, T0);
    expect(denied.retryAfterMs).toBe(334);
    expect(denied.fullInMs).toBe(334);
    expect(takeToken(state, limit, T0 + 333).allowed).toBe(false);
    expect(takeToken(state, limit, T0 + 334).allowed).toBe(true);
  });

  it('never fills beyond the burst, however long the bucket rested', () => {
    const limit = { rate: 10, burst: 3 };
    const decision = takeToken({ tokens: 0, updatedAt: T0 }, limit, T0 + 86_400_000);
    expect(decision.state).toEqual({ tokens: 2, updatedAt: T0 + 86_400_000 });
    expect(decision.remaining).toBe(2);
    expect(decision.fullInMs).toBe(100);
  });

  it('clamps a stored state above a lowered burst', () => {
    const decision = peekToken({ tokens: 10, updatedAt: T0 }, { rate: 1, burst: 3 }, T0);
    expect(decision.state.tokens).toBe(3);
    expect(decision.remaining).toBe(3);
    expect(decision.fullInMs).toBe(0);
  });

  it('does not mint tokens when the clock goes backwards', () => {
    const limit = { rate: 1, burst: 10 };
    const stored = { tokens: 2, updatedAt: T0 + 10_000 };
    const back = takeToken(stored, limit, T0 + 5_000);
    // no refill, and updatedAt is not moved back (else the same 5 s would be refilled twice)
    expect(back.state).toEqual({ tokens: 1, updatedAt: T0 + 10_000 });
    const forward = takeToken(back.state, limit, T0 + 11_000);
    expect(forward.state).toEqual({ tokens: 1, updatedAt: T0 + 11_000 }); // +1 for 1 s, -1 taken

    // Swinging the clock back and forth many times yields no more than real elapsed time allows.
    let state: BucketState = { tokens: 0, updatedAt: T0 };
    let granted = 0;
    for (let i = 1; i <= 100; i++) {
      const now = T0 + (i % 2 === 0 ? i * 100 : -i * 100);
      const decision = takeToken(state, limit, now);
      if (decision.allowed) granted++;
      state = decision.state;
    }
    expect(granted).toBe(10); // the clock reached T0 + 10 s at most: 10 tokens at 1/s
  });

  it('does not take from the bucket when refusing', () => {
    const limit = { rate: 1, burst: 2 };
    const stored = { tokens: 0.25, updatedAt: T0 };
    const denied = takeToken(stored, limit, T0 + 500);
    expect(denied.allowed).toBe(false);
    expect(denied.state).toEqual({ tokens: 0.75, updatedAt: T0 + 500 });
    expect(denied.retryAfterMs).toBe(250);
    expect(denied.fullInMs).toBe(1250);
  });

  it('takes a weighted cost', () => {
    const limit = { rate: 2, burst: 10 };
    const decision = takeToken(undefined, limit, T0, 4);
    expect(decision.state.tokens).toBe(6);
    expect(decision.remaining).toBe(6);
    expect(decision.fullInMs).toBe(2000);
    const tooMuch = takeToken({ tokens: 3, updatedAt: T0 }, limit, T0, 4);
    expect(tooMuch.allowed).toBe(false);
    expect(tooMuch.retryAfterMs).toBe(500);
    expect(tooMuch.state.tokens).toBe(3);
  });

  it('says a cost above the burst can never pass', () => {
    const decision = takeToken(undefined, { rate: 100, burst: 5 }, T0, 6);
    expect(decision).toEqual({
      allowed: false,
      state: { tokens: 5, updatedAt: T0 },
      remaining: 5,
      retryAfterMs: Infinity,
      fullInMs: 0,
    });
  });

  it('lets a cost of 0 through without taking anything', () => {
    const decision = takeToken({ tokens: 0, updatedAt: T0 }, { rate: 1, burst: 1 }, T0, 0);
    expect(decision.allowed).toBe(true);
    expect(decision.state.tokens).toBe(0);
    expect(decision.retryAfterMs).toBe(0);
  });

  it('does not mutate the state it is given', () => {
    const stored = Object.freeze({ tokens: 3, updatedAt: T0 });
    const decision = takeToken(stored, { rate: 1, burst: 5 }, T0 + 1000);
    expect(stored).toEqual({ tokens: 3, updatedAt: T0 });
    expect(decision.state).toEqual({ tokens: 3, updatedAt: T0 + 1000 });
  });

  it('recovers from a corrupt stored state as from an empty bucket', () => {
    const limit = { rate: 1, burst: 5 };
    const noTokens = takeToken({ tokens: Number.NaN, updatedAt: T0 }, limit, T0 + 2000);
    expect(noTokens.state).toEqual({ tokens: 1, updatedAt: T0 + 2000 });
    const noTime = takeToken({ tokens: 2, updatedAt: Number.NaN }, limit, T0);
    expect(noTime.state).toEqual({ tokens: 1, updatedAt: T0 });
    const negative = peekToken({ tokens: -4, updatedAt: T0 }, limit, T0);
    expect(negative.state.tokens).toBe(0);
  });

  it('refuses a non-finite time and a negative or infinite cost', () => {
    const limit = { rate: 1, burst: 5 };
    expect(() => takeToken(undefined, limit, Number.NaN)).toThrow(RangeError);
    expect(() => takeToken(undefined, limit, T0, -1)).toThrow(/take must be/);
    expect(() => takeToken(undefined, limit, T0, Infinity)).toThrow(RangeError);
    expect(() => takeToken(undefined, limit, T0, Number.NaN)).toThrow(RangeError);
  });

  it('grants burst + rate * elapsed over a steady stream of requests', () => {
    // rate 2/s, burst 5, a request every 10 ms for 10 s (t = 0 .. 9990): the first 5 pass at once, then
    // one each 500 ms from t = 500 to t = 9500 (19 more); at t = 9990 only 0.98 of a token has built up.
    const limit = { rate: 2, burst: 5 };
    let state: BucketState | undefined;
    let granted = 0;
    for (let t = 0; t < 10_000; t += 10) {
      const decision = takeToken(state, limit, T0 + t);
      if (decision.allowed) granted++;
      state = decision.state;
    }
    expect(granted).toBe(24);
  });

  it('admits a client that waits exactly retryAfterMs (random limits)', () => {
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let i = 0; i < 2000; i++) {
      const limit: BucketLimit = { rate: 0.01 + random() * 500, burst: 1 + Math.floor(random() * 1000) };
      const take = 1 + Math.floor(random() * limit.burst);
      const state = { tokens: random() * take * 0.999, updatedAt: T0 };
      const denied = takeToken(state, limit, T0, take);
      expect(denied.allowed).toBe(false);
      expect(denied.retryAfterMs).toBeGreaterThanOrEqual(1);
      const retried = takeToken(denied.state, limit, T0 + denied.retryAfterMs, take);
      expect(retried.allowed, JSON.stringify({ limit, take, state })).toBe(true);
      expect(peekToken(denied.state, limit, T0 + denied.fullInMs).state.tokens).toBeCloseTo(limit.burst, 6);
    }
  });
});

describe('peekToken', () => {
  it('reports without taking', () => {
    const limit = { rate: 1, burst: 5 };
    const stored = { tokens: 1.5, updatedAt: T0 };
    expect(peekToken(stored, limit, T0 + 1000)).toEqual({
      allowed: true,
      state: { tokens: 2.5, updatedAt: T0 + 1000 },
      remaining: 2,
      retryAfterMs: 0,
      fullInMs: 2500,
    });
    expect(peekToken(stored, limit, T0, 3)).toMatchObject({
      allowed: false,
      retryAfterMs: 1500,
      remaining: 1,
    });
    expect(peekToken(undefined, limit, T0)).toMatchObject({ allowed: true, remaining: 5, fullInMs: 0 });
  });
});

describe('checkBucketLimit', () => {
  it('accepts sensible limits', () => {
    expect(checkBucketLimit({ rate: 0.5, burst: 1 })).toBeUndefined();
    expect(checkBucketLimit({ rate: 10_000, burst: MAX_BURST })).toBeUndefined();
  });

  it.each([
    [{ rate: 0, burst: 1 }, /^rate must be/],
    [{ rate: -1, burst: 1 }, /^rate must be/],
    [{ rate: Number.NaN, burst: 1 }, /^rate must be/],
    [{ rate: Infinity, burst: 1 }, /^rate must be/],
    [{ rate: '5', burst: 1 }, /^rate must be .*got 5$/],
    [{ rate: 1, burst: 0 }, /^burst must be an integer from 1 to 1000000000, got 0$/],
    [{ rate: 1, burst: 1.5 }, /^burst must be/],
    [{ rate: 1, burst: MAX_BURST + 1 }, /^burst must be/],
    [{ rate: 1 }, /^burst must be .*got undefined$/],
  ])('refuses %o', (limit, message) => {
    expect(checkBucketLimit(limit as unknown as BucketLimit)).toMatch(message);
  });
});
