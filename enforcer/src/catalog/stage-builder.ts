/**
 * Builds one {@link StageCatalog} shard by shard, so a large stage is indexed in slices between which
 * decisions run (each add is one slice: a shard's ~2000 keys, about a millisecond). A shard whose
 * bytes are unchanged since the last good build is carried over from it without parsing.
 */
import type { StageIndex } from '../../../contract/src/format.ts';
import { stageKey } from '../../../contract/src/identity.ts';
import { ConfigError } from '../errors.ts';
import type { HashEntry, KeyEntry, PairEntry, PlanEntry, ShardEntries, StageCatalog } from './catalog.ts';
import { keyOf } from './catalog.ts';
import { KEY_TYPES, type PackedShard } from './packed-shard.ts';
import type { Refusal } from './shard.ts';

/** Accumulates a stage's shards; {@link finish} checks that every shard the index names is in. */
export class StageBuilder {
  readonly #index: StageIndex;
  readonly #origin: string;
  readonly #plans: ReadonlyMap<string, PlanEntry>;
  /** The plan names in index order, as the plans map holds them (one string per plan, shared by keys). */
  readonly #planNames: readonly string[];
  readonly #customers = new Map<string, string>();
  readonly #byHash = new Map<string, HashEntry>();
  readonly #bySecretId = new Map<string, PairEntry>();
  readonly #shards: (ShardEntries | undefined)[];
  #keyCount = 0;
  #problem: Refusal | undefined;

  /** A builder for `index`, read from `origin`, with its compiled plans. */
  constructor(index: StageIndex, origin: string, plans: ReadonlyMap<string, PlanEntry>) {
    this.#index = index;
    this.#origin = origin;
    this.#plans = plans;
    this.#planNames = index.plans.map((p) => plans.get(p.name)?.name ?? p.name);
    this.#shards = Array.from({ length: index.shards.length }, () => undefined);
  }

  #where(i: number): string {
    return `${stageKey(this.#index.apiStage)} shard ${i}`;
  }

  #claim(i: number): boolean {
    if (this.#problem) return false;
    if (i < 0 || i >= this.#shards.length || this.#shards[i] !== undefined) {
      this.#problem = {
        code: ConfigError.Inconsistent,
        message: `${this.#where(i)}: added twice or not in the index`,
      };
      return false;
    }
    return true;
  }

  #putHash(i: number, hash: string, entry: HashEntry): boolean {
    const other = this.#byHash.get(hash);
    if (other !== undefined) {
      this.#problem = {
        code: ConfigError.Inconsistent,
        message: `${this.#where(i)}: key ${keyOf(entry).id} has the same value as key ${keyOf(other).id}`,
      };
      return false;
    }
    this.#byHash.set(hash, entry);
    return true;
  }

  #putPair(i: number, secretId: string, entry: PairEntry): boolean {
    const other = this.#bySecretId.get(secretId);
    if (other !== undefined) {
      this.#problem = {
        code: ConfigError.Inconsistent,
        message: `${this.#where(i)}: key ${entry.key.id} has the same SecretId as key ${other.key.id}`,
      };
      return false;
    }
    this.#bySecretId.set(secretId, entry);
    return true;
  }

  /** Adds a shard parsed now. Never throws. */
  addPacked(p: PackedShard): void {
    const i = p.shard;
    if (!this.#claim(i)) return;
    const keys: KeyEntry[] = new Array<KeyEntry>(p.ids.length);
    for (let k = 0; k < p.ids.length; k++) {
      const plan = this.#planNames[p.plans[k] ?? -1];
      const id = p.ids[k];
      if (plan === undefined || id === undefined) {
        this.#problem = { code: ConfigError.Inconsistent, message: `${this.#where(i)}: a key names no plan` };
        return;
      }
      const flags = p.flags[k] ?? 0;
      const expiresAt = p.expiresAt[k] ?? NaN;
      const customer = p.customers[k] ?? undefined;
      keys[k] = {
        id,
        plan,
        type: KEY_TYPES[(flags >> 1) & 1] ?? 'ApiKey',
        enabled: (flags & 1) === 1,
        expiresAt: Number.isNaN(expiresAt) ? undefined : expiresAt,
        customer: customer === undefined ? undefined : this.#intern(customer),
      };
    }
    for (let h = 0; h < p.hashes.length; h++) {
      const key = keys[p.hashKeys[h] ?? -1];
      const hash = p.hashes[h];
      if (key === undefined || hash === undefined) continue;
      const validUntil = p.hashValidUntil[h] ?? NaN;
      if (!this.#putHash(i, hash, Number.isNaN(validUntil) ? key : { key, validUntil })) return;
    }
    const secretIds: string[] = [];
    for (const pair of p.pairs) {
      const key = keys[pair.keyIndex];
      if (key === undefined) continue;
      const entry: PairEntry = {
        key,
        secretKeys: pair.secretKeys.map((s) => ({
          value: s.value,
          validUntil: Number.isNaN(s.validUntil) ? undefined : s.validUntil,
        })),
      };
      if (!this.#putPair(i, pair.secretId, entry)) return;
      secretIds.push(pair.secretId);
    }
    this.#keyCount += p.ids.length;
    this.#shards[i] = {
      keysSha256: p.keysSha256,
      secretsSha256: p.secretsSha256,
      keyCount: p.ids.length,
      hashes: p.hashes,
      secretIds,
    };
  }

  /** Carries shard `i` over from `from`, the stage's last good build, where it had the same bytes. */
  addReused(i: number, shard: ShardEntries, from: StageCatalog): void {
    if (!this.#claim(i)) return;
    for (const hash of shard.hashes) {
      const entry = from.byHash.get(hash);
      if (entry === undefined || !this.#hasPlan(i, keyOf(entry))) return;
      if (!this.#putHash(i, hash, entry)) return;
    }
    for (const secretId of shard.secretIds) {
      const entry = from.bySecretId.get(secretId);
      if (entry === undefined || !this.#hasPlan(i, entry.key)) return;
      if (!this.#putPair(i, secretId, entry)) return;
    }
    this.#keyCount += shard.keyCount;
    this.#shards[i] = shard;
  }

  #hasPlan(i: number, key: KeyEntry): boolean {
    if (this.#plans.has(key.plan)) return true;
    this.#problem = {
      code: ConfigError.Inconsistent,
      message: `${this.#where(i)}: key ${key.id} names plan ${key.plan}, which the index does not have`,
    };
    return false;
  }

  #intern(customer: string): string {
    const known = this.#customers.get(customer);
    if (known !== undefined) return known;
    this.#customers.set(customer, customer);
    return customer;
  }

  /** Refuses the build (a shard failed its checks). */
  fail(problem: Refusal): void {
    this.#problem ??= problem;
  }

  /** The stage, or the first problem met; a shard not added is `Incomplete`. */
  finish(): { ok: true; value: StageCatalog } | { ok: false; error: Refusal } {
    if (this.#problem) return { ok: false, error: this.#problem };
    const missing = this.#shards.findIndex((s) => s === undefined);
    if (missing >= 0) {
      return {
        ok: false,
        error: { code: ConfigError.Incomplete, message: `${this.#where(missing)} has not arrived` },
      };
    }
    return {
      ok: true,
      value: Object.freeze({
        apiStage: this.#index.apiStage,
        key: stageKey(this.#index.apiStage),
        origin: this.#origin,
        revision: this.#index.revision,
        plans: this.#plans,
        byHash: this.#byHash,
        bySecretId: this.#bySecretId,
        keyCount: this.#keyCount,
        shards: Object.freeze(this.#shards as ShardEntries[]),
        adjustments: Object.freeze(this.#index.adjustments ?? []),
      }),
    };
  }
}
