/**
 * Pseudo-random input for fuzz tests that a failing run can replay: the seed is KEYSTILE_FUZZ_SEED when
 * set, else drawn at random, and a test that fails says which seed it ran with.
 */
import { randomInt } from 'node:crypto';
import { onTestFailed } from 'vitest';

/** A seeded generator (mulberry32: small and fast, plenty for test input; not for secrets). */
export interface Seeded {
  readonly seed: number;
  /** A number in [0, 1). */
  next(): number;
  /** A whole number from 0 to n - 1. */
  int(n: number): number;
  /** n bytes. */
  bytes(n: number): Buffer;
}

/** The generator for `seed` (a whole number from 0 to 2^32 - 1): the same seed, the same sequence. */
export function seeded(seed: number): Seeded {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return {
    seed,
    next,
    int: (n) => Math.floor(next() * n),
    bytes: (n) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256))),
  };
}

/**
 * A generator for the running test, seeded from KEYSTILE_FUZZ_SEED or at random; if the test fails, the
 * seed is printed with how to replay it. Call it inside the test.
 */
export function fuzzRandom(): Seeded {
  const given = process.env['KEYSTILE_FUZZ_SEED'];
  const seed = given === undefined || given === '' ? randomInt(2 ** 32 - 1) : Number(given);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new Error(`KEYSTILE_FUZZ_SEED must be a whole number from 0 to 2^32 - 1, not '${given ?? ''}'`);
  }
  onTestFailed(() => {
    console.error(`fuzz input from seed ${seed}: replay it with KEYSTILE_FUZZ_SEED=${seed}`);
  });
  return seeded(seed);
}
