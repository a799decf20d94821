import { describe, expect, it } from 'vitest';
import { SF_INTEGER_MAX, rateLimitField, rateLimitHeaders, retryAfterSeconds } from './ratelimit-headers.ts';

describe('rateLimitHeaders', () => {
  it('states a throttle and a quota together', () => {
    expect(
      rateLimitHeaders(
        { rate: 10, burst: 20, remaining: 19, fullInSeconds: 0.1 },
        { limit: 1000, remaining: 250, resetInSeconds: 3599.2, windowSeconds: 86_400 },
      ),
    ).toEqual({
      'ratelimit-policy': '"burst";q=20;w=2, "quota";q=1000;w=86400',
      ratelimit: '"burst";r=19;t=1, "quota";r=250;t=3600',
    });
  });

  it('states only the throttle when the plan has no quota', () => {
    expect(rateLimitHeaders({ rate: 0.5, burst: 3, remaining: 0, fullInSeconds: 6 }, undefined)).toEqual({
      'ratelimit-policy': '"burst";q=3;w=6',
      ratelimit: '"burst";r=0;t=6',
    });
  });

  it('states only the quota when the plan has no throttle', () => {
    expect(
      rateLimitHeaders(undefined, {
        limit: 5000,
        remaining: 0,
        resetInSeconds: 90_000,
        windowSeconds: 90_000,
      }),
    ).toEqual({
      'ratelimit-policy': '"quota";q=5000;w=90000',
      ratelimit: '"quota";r=0;t=90000',
    });
  });

  it('gives nothing when there is nothing to state', () => {
    expect(rateLimitHeaders(undefined, undefined)).toBeUndefined();
  });

  it('rounds the bucket window up and to at least one second', () => {
    // 20 tokens at 3/s: 6.67 s -> 7; 5 tokens at 100/s: 0.05 s -> 1
    expect(rateLimitHeaders({ rate: 3, burst: 20, remaining: 20, fullInSeconds: 0 }, undefined)).toEqual({
      'ratelimit-policy': '"burst";q=20;w=7',
      ratelimit: '"burst";r=20;t=0',
    });
    expect(
      rateLimitHeaders({ rate: 100, burst: 5, remaining: 4, fullInSeconds: 0.01 }, undefined)?.[
        'ratelimit-policy'
      ],
    ).toBe('"burst";q=5;w=1');
  });

  it('writes only non-negative integers: counts down, times up', () => {
    expect(
      rateLimitHeaders(
        { rate: 1, burst: 5, remaining: 2.9, fullInSeconds: 2.001 },
        { limit: 100.7, remaining: -3, resetInSeconds: -1, windowSeconds: 0 },
      ),
    ).toEqual({
      'ratelimit-policy': '"burst";q=5;w=5, "quota";q=100;w=1',
      ratelimit: '"burst";r=2;t=3, "quota";r=0;t=0',
    });
  });

  it('clamps to the sf-integer range and never writes NaN or exponents', () => {
    const headers = rateLimitHeaders(
      { rate: 1e-9, burst: 1e9, remaining: Number.NaN, fullInSeconds: Infinity },
      { limit: 1e20, remaining: 1e16, resetInSeconds: Number.NaN, windowSeconds: 1e300 },
    );
    expect(headers).toEqual({
      'ratelimit-policy':
        '"burst";q=1000000000;w=999999999999999, "quota";q=999999999999999;w=999999999999999',
      ratelimit: '"burst";r=0;t=999999999999999, "quota";r=999999999999999;t=0',
    });
    expect(SF_INTEGER_MAX).toBe(999_999_999_999_999);
  });

  it('names policies as sf-strings, escaping quotes and backslashes', () => {
    expect(
      rateLimitHeaders(
        { rate: 1, burst: 1, remaining: 1, fullInSeconds: 0, name: 'route GET /a' },
        { limit: 1, remaining: 1, resetInSeconds: 1, windowSeconds: 1, name: 'say "hi" \\o/' },
      ),
    ).toEqual({
      'ratelimit-policy': '"route GET /a";q=1;w=1, "say \\"hi\\" \\\\o/";q=1;w=1',
      ratelimit: '"route GET /a";r=1;t=0, "say \\"hi\\" \\\\o/";r=1;t=1',
    });
  });

  it('adds the quota unit when given', () => {
    expect(
      rateLimitHeaders(undefined, {
        limit: 65535,
        remaining: 10,
        resetInSeconds: 10,
        windowSeconds: 10,
        unit: 'content-bytes',
      })?.['ratelimit-policy'],
    ).toBe('"quota";q=65535;qu="content-bytes";w=10');
  });

  it('refuses names that cannot be sf-strings and duplicate names', () => {
    const quota = { limit: 1, remaining: 1, resetInSeconds: 1, windowSeconds: 1 };
    expect(() => rateLimitHeaders(undefined, { ...quota, name: 'caf\u00e9' })).toThrow(
      /quota policy name must be printable ASCII/,
    );
    expect(() => rateLimitHeaders(undefined, { ...quota, name: 'a\nb' })).toThrow(/sf-string/);
    expect(() => rateLimitHeaders(undefined, { ...quota, unit: 'req\u0000' })).toThrow(/quota unit/);
    expect(() =>
      rateLimitHeaders({ rate: 1, burst: 1, remaining: 1, fullInSeconds: 0, name: 'x\tx' }, undefined),
    ).toThrow(/throttle policy name/);
    expect(() =>
      rateLimitHeaders({ rate: 1, burst: 1, remaining: 1, fullInSeconds: 0, name: 'quota' }, quota),
    ).toThrow(/two policies are named "quota"/);
  });

  it('produces fields that parse as RFC 9651 lists of string items with integer parameters', () => {
    // A small, independent parser for exactly the grammar the draft requires of these fields.
    const item =
      /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"((?:;[a-z*][a-z0-9_.*-]*=(?:-?\d{1,15}|"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"))*)$/;
    const headers = rateLimitHeaders(
      { rate: 7.3, burst: 44, remaining: 12, fullInSeconds: 4.4 },
      { limit: 3, remaining: 2, resetInSeconds: 40_000.5, windowSeconds: 82_800, name: 'daily "q"' },
    );
    if (headers === undefined) throw new Error('expected headers');
    for (const field of [headers['ratelimit-policy'], headers.ratelimit]) {
      const members = field.split(', ');
      expect(members).toHaveLength(2);
      for (const member of members) expect(member).toMatch(item);
    }
  });
});

describe('retryAfterSeconds', () => {
  it.each([
    [0, 1],
    [-5000, 1],
    [1, 1],
    [999, 1],
    [1000, 1],
    [1001, 2],
    [59_999.5, 60],
    [86_400_000, 86_400],
    [Number.NaN, 1],
    [Infinity, SF_INTEGER_MAX],
    [1e30, SF_INTEGER_MAX],
  ])('%d ms -> %d s', (ms, seconds) => {
    expect(retryAfterSeconds(ms)).toBe(seconds);
  });
});

describe('rateLimitField', () => {
  it('is the RateLimit field of rateLimitHeaders for the default names', () => {
    const cases: [Parameters<typeof rateLimitField>[0], Parameters<typeof rateLimitField>[1]][] = [
      [
        { rate: 1, burst: 2, remaining: 1, fullInSeconds: 1 },
        { limit: 5, remaining: 4, resetInSeconds: 3600.2, windowSeconds: 86400 },
      ],
      [{ rate: 0.5, burst: 3, remaining: 0.9999, fullInSeconds: 4.001 }, undefined],
      [undefined, { limit: 1e15, remaining: -3, resetInSeconds: NaN, windowSeconds: 1 }],
      [undefined, undefined],
    ];
    for (const [t, q] of cases) expect(rateLimitField(t, q)).toBe(rateLimitHeaders(t, q)?.ratelimit);
  });
});
