import { afterEach, describe, expect, it, vi } from 'vitest';
import { presentedKey, queryParameter } from './key-source.ts';

const none = (): undefined => undefined;

describe('queryParameter', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('decodes the value of the parameter named, and no other parameter', () => {
    expect(queryParameter('/v1?a=1&api_key=k%2Bv+w&api_key=second', 'api_key')).toBe('k+v w');
    expect(queryParameter('/v1?api_key', 'api_key')).toBe('');
    expect(queryParameter('/v1?api_key=%E0%A4%A', 'api_key')).toBe('%E0%A4%A');
    expect(queryParameter('/v1?a=1#api_key=k', 'api_key')).toBeUndefined();
    expect(queryParameter('/v1', 'api_key')).toBeUndefined();
  });

  it('compares names undecoded, as Envoy does when it strips the parameter', () => {
    expect(queryParameter('/v1?api%5Fkey=k', 'api_key')).toBeUndefined();
    expect(queryParameter('/v1?api%5fkey=k&api_key=real', 'api_key')).toBe('real');
    expect(queryParameter('/v1?api+key=k', 'api key')).toBeUndefined();
  });

  it('decodes nothing but the matching value, however many parameters do not decode', () => {
    const decode = vi.spyOn(globalThis, 'decodeURIComponent');
    const path = '/v1?' + '%&'.repeat(30_000) + 'api_key=k%21';
    expect(queryParameter(path, 'api_key')).toBe('k!');
    expect(decode).toHaveBeenCalledTimes(1);
    expect(queryParameter('/v1?' + '%&'.repeat(30_000), 'api_key')).toBeUndefined();
    expect(decode).toHaveBeenCalledTimes(1);
  });
});

describe('presentedKey: bearer', () => {
  const bearer = (value: string) =>
    presentedKey([{ kind: 'bearer' }], (name) => (name === 'authorization' ? value : undefined), '/v1');

  it('reads the token after the scheme, whitespace around it allowed', () => {
    expect(bearer('Bearer abc')).toEqual({ value: 'abc', header: 'authorization' });
    expect(bearer('bearer \t abc \t')).toEqual({ value: 'abc', header: 'authorization' });
  });

  it('is not present without exactly one token (a token cannot be empty: no whitespace run backtracks)', () => {
    expect(bearer('Bearer')).toBeUndefined();
    expect(bearer('Bearer \t ')).toBeUndefined();
    expect(bearer('Bearer' + ' '.repeat(4000) + 'x y')).toBeUndefined();
    expect(bearer('Basic abc')).toBeUndefined();
    expect(presentedKey([{ kind: 'bearer' }], none, '/v1')).toBeUndefined();
  });
});
