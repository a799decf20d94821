import { describe, expect, it } from 'vitest';
import { fuzzRandom } from '../../testing/seeded.ts';
import { consumeResults } from './consume-reply.ts';

const both = { bucket: true, quota: true };

describe("CONSUME's reply", () => {
  it('reads each decision in order, with the thresholds it crossed', () => {
    const reply = ['0 4 0 250 7 93 0', '1 0 125 1000 7 93 0', '0 3 0 500 80 20 2 50 80'].join(' ');
    expect(consumeResults([both, both, both], reply)).toEqual([
      {
        allowed: true,
        deniedBy: undefined,
        bucket: { remaining: 4, retryAfterMs: 0, fullInMs: 250 },
        quota: { used: 7, remaining: 93 },
        crossed: undefined,
      },
      {
        allowed: false,
        deniedBy: 'throttle',
        bucket: { remaining: 0, retryAfterMs: 125, fullInMs: 1000 },
        quota: { used: 7, remaining: 93 },
        crossed: undefined,
      },
      {
        allowed: true,
        deniedBy: undefined,
        bucket: { remaining: 3, retryAfterMs: 0, fullInMs: 500 },
        quota: { used: 80, remaining: 20 },
        crossed: [50, 80],
      },
    ]);
  });

  it('leaves out the parts a decision did not have, and names a quota denial', () => {
    const [throttleOnly, quotaOnly] = consumeResults(
      [
        { bucket: true, quota: false },
        { bucket: false, quota: true },
      ],
      '0 1 0 10 0 0 0 2 0 0 0 100 0 0',
    );
    expect(throttleOnly).toMatchObject({ allowed: true, quota: undefined, bucket: { remaining: 1 } });
    expect(quotaOnly).toMatchObject({
      allowed: false,
      deniedBy: 'quota',
      bucket: undefined,
      quota: { used: 100, remaining: 0 },
    });
  });

  it('reads every whole number as Number() does, beyond 2^53 too', () => {
    const values = [
      0,
      1,
      -1,
      2 ** 31,
      -(2 ** 31) - 1,
      999_999_999_999_999,
      1e15,
      2 ** 53 - 1,
      -(2 ** 53) + 1,
    ];
    values.push(2 ** 53, 2 ** 53 + 2, 1e17, 1.8e19, -1.8e19);
    const random = fuzzRandom();
    for (let i = 0; i < 500; i++)
      values.push(Math.floor((random.next() - 0.5) * 2 ** (10 + random.next() * 60)));
    const texts = values.map((v) => BigInt(v).toString());
    // As used, quota remaining and the retry and fill times: every field that may be large.
    const reply = texts.map((t) => `0 0 ${t} ${t} ${t} ${t} 0`).join(' ');
    const results = consumeResults(
      texts.map(() => both),
      reply,
    );
    results.forEach((r, i) => {
      const expected = Number(texts[i]);
      expect(r.bucket).toEqual({ remaining: 0, retryAfterMs: expected, fullInMs: expected });
      expect(r.quota).toEqual({ used: expected, remaining: expected });
    });
  });

  it('refuses a reply with too few or too many numbers, or one that is not a whole number', () => {
    expect(() => consumeResults([both, both], '0 1 0 10 5 5 0')).toThrow(/answered 7 values for 2 decisions/);
    expect(() => consumeResults([both], '0 1 0 10 5 5 0 9')).toThrow(/more than 7 values for 1 decisions/);
    expect(() => consumeResults([both], '0 1 0 1.5 5 5 0')).toThrow(/"1\.5", not a whole number/);
    expect(() => consumeResults([both], '0 1  0 10 5 5 0')).toThrow(/"", not a whole number/);
    expect(() => consumeResults([both], '0 1 0 -  5 5 0')).toThrow(/"-", not a whole number/);
    expect(() => consumeResults([both], '0 1 0 1e999999999999999999 5 5 0')).toThrow(/not a whole number/);
    expect(consumeResults([], '')).toEqual([]);
  });
});
