/**
 * A checked shard in columns: the few strings the catalog keeps (key ids, value hashes, customers) and
 * typed arrays for the rest. This is what crosses from the parse process to the main thread: typed
 * arrays serialise as their bytes and the strings are the ones the catalog indexes by, so the
 * main thread allocates nothing it does not keep (little garbage, short pauses), and a shard of 2000
 * keys is indexed in about a millisecond.
 */
import type { StageIndex } from '../../../contract/src/format.ts';
import type { ParsedShard } from './shard.ts';

/** Key types, by number. */
export const KEY_TYPES = ['ApiKey', 'KeyPair'] as const;

/** A shard in columns. Index `k` runs over keys, `h` over ApiKey value hashes. */
export interface PackedShard {
  readonly shard: number;
  readonly keysSha256: string;
  readonly secretsSha256: string;
  /** Per key: its id. */
  readonly ids: string[];
  /** Per key: its plan, as an index into the stage index's `plans`. */
  readonly plans: Uint32Array;
  /** Per key: bit 0 enabled, bit 1 KeyPair. */
  readonly flags: Uint8Array;
  /** Per key: its expiry (epoch ms), NaN when it has none. */
  readonly expiresAt: Float64Array;
  /** Per key: its customer, or null. */
  readonly customers: (string | null)[];
  /** Per hash: the SHA-256 (hex) of an ApiKey value. */
  readonly hashes: string[];
  /** Per hash: the key it belongs to. */
  readonly hashKeys: Uint32Array;
  /** Per hash: until when the value is valid (epoch ms), NaN for a current value. */
  readonly hashValidUntil: Float64Array;
  /** The KeyPairs (few): key, SecretId and SecretKeys. */
  readonly pairs: {
    keyIndex: number;
    secretId: string;
    secretKeys: { value: string; validUntil: number }[];
  }[];
}

function instant(iso: string | undefined): number {
  if (iso === undefined) return NaN;
  const ms = Date.parse(iso);
  // The schema checks the format; a date that still does not parse fails towards "already past".
  return Number.isFinite(ms) ? ms : -Infinity;
}

/**
 * Packs a checked shard. Returns a message when a key names a plan the index does not have (the stage
 * is then refused as Inconsistent).
 */
export function packShard(index: StageIndex, parsed: ParsedShard): PackedShard | string {
  const planIndex = new Map(index.plans.map((p, i) => [p.name, i]));
  const n = parsed.keys.length;
  const ids: string[] = new Array<string>(n);
  const plans = new Uint32Array(n);
  const flags = new Uint8Array(n);
  const expiresAt = new Float64Array(n);
  const customers: (string | null)[] = new Array<string | null>(n);
  const keyIndex = new Map<string, number>();
  for (let k = 0; k < n; k++) {
    const key = parsed.keys[k];
    if (key === undefined) continue;
    const p = planIndex.get(key.plan);
    if (p === undefined) return `key ${key.id} names plan ${key.plan}, which the index does not have`;
    ids[k] = key.id;
    plans[k] = p;
    flags[k] = (key.enabled ? 1 : 0) | (key.type === 'KeyPair' ? 2 : 0);
    expiresAt[k] = instant(key.expiresAt);
    customers[k] = key.customer ?? null;
    keyIndex.set(key.id, k);
  }
  const hashes: string[] = [];
  const hashKeys: number[] = [];
  const hashValidUntil: number[] = [];
  const pairs: PackedShard['pairs'] = [];
  for (const c of parsed.credentials) {
    const k = keyIndex.get(c.id);
    if (k === undefined) continue; // checkShard refuses a credential without a key
    if (c.type === 'ApiKey') {
      for (const h of c.hashes) {
        hashes.push(h.sha256);
        hashKeys.push(k);
        hashValidUntil.push(instant(h.validUntil));
      }
    } else {
      pairs.push({
        keyIndex: k,
        secretId: c.secretId,
        secretKeys: c.secretKeys.map((s) => ({ value: s.value, validUntil: instant(s.validUntil) })),
      });
    }
  }
  return {
    shard: parsed.shard,
    keysSha256: parsed.keysSha256,
    secretsSha256: parsed.secretsSha256,
    ids,
    plans,
    flags,
    expiresAt,
    customers,
    hashes,
    hashKeys: Uint32Array.from(hashKeys),
    hashValidUntil: Float64Array.from(hashValidUntil),
    pairs,
  };
}
