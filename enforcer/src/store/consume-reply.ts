/**
 * Reading the reply of the CONSUME script (redis-scripts.ts): per decision seven whole numbers, then the
 * thresholds it crossed, all separated by single spaces. Read in place, without a string or an array per
 * number: at tens of thousands of decisions a second, what a decision allocates is what the young
 * generation has to collect, and a reply split into strings and mapped to numbers was a good part of it.
 */
import type { ConsumeResult } from './store.ts';

/**
 * The results of a batch from CONSUME's reply (whole numbers separated by single spaces, as
 * redis-scripts.ts writes them), in order. Throws when the reply holds fewer or more numbers than
 * the decisions need, or something that is not a whole number.
 */
export function consumeResults(
  calls: readonly { bucket: boolean; quota: boolean }[],
  reply: string,
): ConsumeResult[] {
  let pos = 0;
  let count = 0;
  const next = (): number => {
    if (pos >= reply.length)
      throw new Error(`CONSUME answered ${count} values for ${calls.length} decisions`);
    const end = reply.indexOf(' ', pos);
    const stop = end < 0 ? reply.length : end;
    const n = parseWhole(reply, pos, stop);
    pos = stop + 1;
    count += 1;
    return n;
  };
  const results: ConsumeResult[] = [];
  for (const c of calls) {
    const denied = next();
    const remaining = next();
    const retryAfterMs = next();
    const fullInMs = next();
    const used = next();
    const quotaRemaining = next();
    const crossedCount = next();
    let crossed: number[] | undefined;
    if (crossedCount > 0) {
      crossed = [];
      for (let i = 0; i < crossedCount; i++) crossed.push(next());
    }
    results.push({
      allowed: denied === 0,
      deniedBy: denied === 1 ? 'throttle' : denied === 2 ? 'quota' : undefined,
      bucket: c.bucket ? { remaining, retryAfterMs, fullInMs } : undefined,
      quota: c.quota ? { used, remaining: quotaRemaining } : undefined,
      crossed,
    });
  }
  if (pos < reply.length) {
    throw new Error(`CONSUME answered more than ${count} values for ${calls.length} decisions`);
  }
  return results;
}

/**
 * The whole number written in `text` from `start` to `end` (an optional '-', then digits). Up to 15
 * digits it is summed exactly; a longer one is left to `Number`, which rounds it as the memory store's
 * double would be.
 */
function parseWhole(text: string, start: number, end: number): number {
  let i = start;
  const negative = text.charCodeAt(i) === 45; // '-'
  if (negative) i += 1;
  if (i >= end) throw notANumber(text, start, end);
  if (end - i > 15) {
    const n = Number(text.slice(start, end));
    if (!Number.isInteger(n)) throw notANumber(text, start, end);
    return n;
  }
  let n = 0;
  for (; i < end; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) throw notANumber(text, start, end);
    n = n * 10 + d;
  }
  return negative ? -n : n;
}

function notANumber(text: string, start: number, end: number): Error {
  return new Error(`CONSUME answered ${JSON.stringify(text.slice(start, end))}, not a whole number`);
}
