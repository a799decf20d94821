/**
 * The incremental renderer: for the same input the same output as render() (render.ts, pure), byte for
 * byte, but it keeps what it worked out last time for its namespace, so that a render after a few keys
 * changed does work proportional to those keys: each one's resolution against the bindings, the shards
 * it leaves or joins (re-serialised from the kept JSON of their other entries), and the indexes of those
 * stages. Finding what changed is one pass over the inputs comparing objects by identity (an informer
 * replaces an object when it changes): cheap bookkeeping beside rendering.
 *
 * Objects are compared as an informer hands them over: a key with the resourceVersion it had is the key
 * it was (the API server gives every change a new one); without a resourceVersion, by identity.
 *
 * A change that cannot be followed key by key renders the namespace in full (and rebuilds what is kept):
 * a plan or binding changed (either may change many keys' outcomes), a key's value is also another key's
 * (which keeps it depends on their age), two keys share a key id, a plan with maxKeys is full (which keys
 * get in depends on their order), a key expired since the last render, a key's expiry cannot be read, or
 * most keys changed at once.
 */
import type { ApiKey, PlanBinding, UsageAdjustment, UsagePlan } from '../../../crds/src/index.ts';
import type {
  ApiStageId,
  Credential,
  RenderedAdjustment,
  RenderedPlan,
  StageIndex,
} from '../../../contract/src/format.ts';
import { shardCount, shardOf, sha256, stageKey } from '../../../contract/src/identity.ts';
import { renderedPlanProblem } from '../../../contract/src/plan-check.ts';
import {
  type AdjustmentResult,
  type PlanMember,
  type PlanMembers,
  resolveAdjustments,
} from './adjustments.ts';
import {
  bindingReady,
  type KeyInBinding,
  missingKey,
  type Placement,
  resolveBindings,
  resolveKeyInBinding,
} from './bindings.ts';
import { expiryProblem, renderKey, toCredential, type UsableKey, usableKeys } from './keys.ts';
import { renderPlan } from './plan.ts';
import { keyResult, planResult, stageAdjustments } from './render.ts';
import { olderFirst } from './order.ts';
import { matchesSelector } from './selector.ts';
import { indexObject, renderIndex, type ShardDocuments, shardJson, shardObjects } from './shards.ts';
import type {
  BindingResult,
  KeyMaterial,
  KeyResult,
  PlanResult,
  Problem,
  RenderedObject,
  RenderedStage,
  RenderInput,
  RenderOutput,
} from './types.ts';

/** How the last render went: in full or key by key, how many keys changed, and why a full one was needed. */
export interface RenderStats {
  readonly mode: 'full' | 'incremental';
  /** Keys added, changed or removed since the previous render. */
  readonly changedKeys: number;
  /** Why the render was a full one. */
  readonly reason?: string;
}

/** Past this share of a namespace's keys changed at once, a full render is as cheap and simpler. */
const FULL_RENDER_SHARE = 0.25;

/** Thrown inside an incremental render that meets a change it cannot follow key by key. */
class NeedsFullRender extends Error {}

interface KeyState {
  /** What rendering reads of the key (slimKey): the informer's object itself is not kept. */
  readonly key: ApiKey;
  /** The resourceVersion of the object it was made from (the object itself where there is none). */
  version: string | ApiKey;
  readonly material: KeyMaterial | undefined;
  usable: UsableKey | undefined;
  /** The identities (value hashes, SecretId) its credential claims, usable or not. */
  readonly identities: readonly string[];
  readonly keyId: string | undefined;
  /** The first 32 bits of SHA-256(key id): its shard under any shard count. */
  readonly shardHash: number;
  /** The bindings that name or select it, oldest first. */
  readonly found: BindingState[];
  /** Where it is placed: [stage key, plan] (an array: most keys are on one stage). */
  readonly placed: [string, string][];
  /** Its keys.json entry (for the plan it was last serialised with) and its secrets.json entry. */
  keyJson: { readonly plan: string; readonly json: string } | undefined;
  credentialJson: string | undefined;
  seen: number;
}

interface BindingState {
  readonly binding: PlanBinding;
  readonly name: string;
  readonly planName: string;
  readonly maxKeys: number | undefined;
  readonly names: ReadonlySet<string>;
  readonly stageKeys: readonly string[];
  readonly ctx: KeyInBinding;
  /** The key the ctx callbacks are resolving. */
  current: string;
  readonly problemsByKey: Map<string, readonly Problem[]>;
  readonly bound: Set<string>;
  usableFound: number;
  dirty: boolean;
}

interface Entry {
  readonly name: string;
  readonly id: string;
  readonly keyJson: string;
  readonly credentialJson: string;
}

interface ShardState {
  /** Its entries, sorted by key id (as renderShard sorts them). */
  entries: Entry[];
  readonly byName: Map<string, Entry>;
  /** Whether its keys.json or secrets.json must be serialised again. */
  keysDirty: boolean;
  secretsDirty: boolean;
  docs: Required<ShardDocuments> | undefined;
  objects: [RenderedObject, RenderedObject] | undefined;
}

interface StageState {
  readonly sk: string;
  readonly apiStage: ApiStageId;
  readonly placements: Map<string, Placement>;
  readonly planCounts: Map<string, number>;
  /** The bindings (with a plan) that name the stage. */
  readonly namedBy: BindingState[];
  /** The existing plans those bindings name: rendered on the stage even with no key placed. */
  readonly bindingPlans: ReadonlySet<string>;
  shards: ShardState[];
  owners: { name: string; uid: string }[];
  ownersKey: string;
  /** Keys that left (with the shard hash they had) and joined since the stage was last rendered. */
  readonly left: Map<string, number>;
  readonly joined: Set<string>;
  dirty: boolean;
  rendered: RenderedStage | undefined;
}

/** Renders one namespace again and again, doing the work of what changed. */
export class IncrementalRenderer {
  #namespace = '';
  #keysPerShard: number | undefined;
  #renders = 0;
  #plans = new Map<string, UsagePlan>();
  #bindings = new Map<string, PlanBinding>();
  #adjustments: readonly UsageAdjustment[] = [];
  #keys = new Map<string, KeyState>();
  #ordered: BindingState[] = [];
  #byBinding = new Map<string, BindingState>();
  #claims: Claims = new Map();
  #keyIdClaims: Claims = new Map();
  #stages = new Map<string, StageState>();
  #planKeys = new Map<string, Set<string>>();
  #refusals = new Map<string, number>();
  #renderedPlans = new Map<string, RenderedPlan>();
  #bindingResults = new Map<string, BindingResult>();
  #planResults = new Map<string, PlanResult>();
  #keyResults = new Map<string, KeyResult>();
  #adjustmentResults = new Map<string, AdjustmentResult>();
  #renderedAdjustments: RenderedAdjustment[] = [];
  #adjustmentsJson = '[]';
  #nextExpiry = Infinity;
  #stats: RenderStats = { mode: 'full', changedKeys: 0 };

  /** How the last render went. */
  get stats(): RenderStats {
    return this.#stats;
  }

  /**
   * Renders the namespace: the same output as render(input). The maps of the output are this renderer's
   * own and change with its next render; read them before rendering again.
   */
  render(input: RenderInput): RenderOutput {
    this.#renders++;
    const reason = this.#fullReason(input);
    if (reason === undefined) {
      const changed = this.#changedKeys(input);
      if (changed.size > Math.max(16, this.#keys.size * FULL_RENDER_SHARE)) {
        return this.#full(input, `${changed.size} of ${this.#keys.size} keys changed`, changed.size);
      }
      try {
        const out = this.#incremental(input, changed);
        this.#stats = { mode: 'incremental', changedKeys: changed.size };
        return out;
      } catch (err) {
        if (!(err instanceof NeedsFullRender)) throw err;
        return this.#full(input, err.message, changed.size);
      }
    }
    return this.#full(input, reason, input.keys.length);
  }

  /** Why this input needs a full render, or undefined when its keys can be followed one by one. */
  #fullReason(input: RenderInput): string | undefined {
    if (this.#renders === 1) return 'first render';
    if (input.namespace !== this.#namespace || input.keysPerShard !== this.#keysPerShard)
      return 'the namespace changed';
    if (input.now.getTime() >= this.#nextExpiry) return 'a key expired';
    // A plan or binding whose status alone changed (the operator's own status writes) is the same to
    // rendering: it is compared by what rendering reads of it when its object was replaced.
    const plans = sameShape(input.plans, this.#plans, planPrint);
    if (plans !== undefined) return `a plan ${plans}`;
    const bindings = sameShape(input.bindings, this.#bindings, bindingPrint);
    if (bindings !== undefined) return `a binding ${bindings}`;
    return undefined;
  }

  /**
   * The keys added or changed (in what rendering reads of them, or their material), with their objects,
   * and those removed (undefined).
   */
  #changedKeys(input: RenderInput): Map<string, ApiKey | undefined> {
    const changed = new Map<string, ApiKey | undefined>();
    const round = this.#renders;
    const materials = input.materials;
    let known = 0;
    for (const k of input.keys) {
      const name = k.metadata.name;
      const ks = this.#keys.get(name);
      if (ks === undefined) {
        changed.set(name, k);
        continue;
      }
      known++;
      ks.seen = round;
      const version = k.metadata.resourceVersion ?? k;
      if (ks.version === version) {
        if (ks.material !== materials.get(name)) changed.set(name, k);
      } else if (ks.material !== materials.get(name) || fingerprint(k) !== fingerprint(ks.key)) {
        changed.set(name, k);
      } else {
        // A new version that renders the same (a status write).
        ks.version = version;
      }
    }
    // Every key kept was seen (names are unique): none was removed.
    if (known === this.#keys.size) return changed;
    for (const [name, ks] of this.#keys)
      if (ks.seen !== round && !changed.has(name)) changed.set(name, undefined);
    return changed;
  }

  // ---- full render -------------------------------------------------------------------------------

  #full(input: RenderInput, reason: string, changedKeys: number): RenderOutput {
    this.#stats = { mode: 'full', changedKeys, reason };
    this.#namespace = input.namespace;
    this.#keysPerShard = input.keysPerShard;
    this.#plans = new Map(input.plans.map((p) => [p.metadata.name, p]));
    this.#bindings = new Map(input.bindings.map((b) => [b.metadata.name, b]));
    this.#keys = new Map();
    this.#claims = new Map();
    this.#keyIdClaims = new Map();
    this.#stages = new Map();
    this.#refusals = new Map();
    this.#renderedPlans = new Map();
    this.#nextExpiry = Infinity;

    // The pure steps read the slim keys kept, so that what they place refers to nothing the informer drops.
    const slims: ApiKey[] = [];
    for (const k of input.keys) {
      const ks = this.#newKeyState(k, input.materials.get(k.metadata.name), input.now);
      this.#keys.set(k.metadata.name, ks);
      slims.push(ks.key);
    }
    const { usable, problems: keyProblems } = usableKeys(slims, input.materials);
    for (const [name, u] of usable) {
      const ks = this.#keys.get(name);
      if (ks) ks.usable = u;
    }

    this.#makeBindings(input);
    const resolution = resolveBindings(
      input.namespace,
      input.bindings,
      this.#plans,
      new Map(slims.map((k) => [k.metadata.name, k])),
      usable,
      keyProblems,
      input.now,
      (binding, key, outcome) => {
        const bs = this.#byBinding.get(binding.metadata.name);
        const ks = this.#keys.get(key);
        if (!bs || !ks) return;
        ks.found.push(bs);
        if (outcome.problems.length > 0) bs.problemsByKey.set(key, outcome.problems);
        if (outcome.bound) bs.bound.add(key);
        if (ks.usable) bs.usableFound++;
      },
    );
    // Outcomes that did not change keep their objects: readers (the status writer) compare by identity.
    this.#bindingResults = same(
      this.#bindingResults,
      resolution.bindings,
      (a, b) => JSON.stringify(a) === JSON.stringify(b),
    );
    this.#planKeys = resolution.planKeys;
    for (const bs of this.#ordered) {
      for (const p of resolution.bindings.get(bs.name)?.problems ?? [])
        if (p.reason === 'PlanFull')
          this.#refusals.set(bs.planName, (this.#refusals.get(bs.planName) ?? 0) + 1);
    }
    for (const [sk, st] of resolution.stages) {
      const state = this.#stage(sk, st.apiStage);
      for (const [name, p] of st.placements) {
        state.placements.set(name, p);
        state.planCounts.set(p.plan, (state.planCounts.get(p.plan) ?? 0) + 1);
        state.joined.add(name);
        this.#keys.get(name)?.placed.push([sk, p.plan]);
      }
    }
    const keyResults = new Map<string, KeyResult>();
    for (const k of input.keys) {
      const name = k.metadata.name;
      keyResults.set(name, keyResult(this.#placementsOf(name), keyProblems.get(name)));
    }
    this.#keyResults = same(this.#keyResults, keyResults, sameKeyResult);
    const planResults = new Map<string, PlanResult>();
    for (const name of [...this.#plans.keys()].sort()) planResults.set(name, this.#planResult(name));
    this.#planResults = same(
      this.#planResults,
      planResults,
      (a, b) => JSON.stringify(a) === JSON.stringify(b),
    );
    this.#adjustmentsJson = '';
    return this.#finish(input, true);
  }

  #newKeyState(k: ApiKey, material: KeyMaterial | undefined, now: Date): KeyState {
    const name = k.metadata.name;
    const credential = material ? toCredential(k.spec.type ?? 'ApiKey', material) : undefined;
    const ks: KeyState = {
      key: slimKey(k),
      version: k.metadata.resourceVersion ?? k,
      material,
      usable: undefined,
      identities: credential ? rawIdentities(credential) : [],
      keyId: credential ? material?.keyId : undefined,
      shardHash: credential && material ? shardOf(material.keyId, 2 ** 32) : 0,
      found: [],
      placed: [],
      keyJson: undefined,
      credentialJson: credential ? JSON.stringify(credential) : undefined,
      seen: this.#renders,
    };
    for (const i of ks.identities) claim(this.#claims, i, name);
    if (ks.keyId !== undefined) claim(this.#keyIdClaims, ks.keyId, name);
    const expires = k.spec.expiresAt === undefined ? NaN : Date.parse(k.spec.expiresAt);
    if (expires > now.getTime() && expires < this.#nextExpiry) this.#nextExpiry = expires;
    return ks;
  }

  /** The binding states, oldest first, each with the callbacks resolveKeyInBinding uses. */
  #makeBindings(input: RenderInput): void {
    this.#ordered = [];
    this.#byBinding = new Map();
    for (const binding of [...input.bindings].sort(olderFirst)) {
      const planName = binding.spec.planRef.name;
      const plan = this.#plans.get(planName);
      if (!plan) continue; // PlanNotFound: no key is resolved in it
      const name = binding.metadata.name;
      const maxKeys = plan.spec.maxKeys;
      const stageKeys = binding.spec.apiStages.map((s) =>
        stageKey({ namespace: input.namespace, api: s.api, stage: s.stage }),
      );
      const bs: BindingState = {
        binding,
        name,
        planName,
        maxKeys,
        names: new Set(binding.spec.keys.names ?? []),
        stageKeys,
        current: '',
        problemsByKey: new Map(),
        bound: new Set(),
        usableFound: 0,
        dirty: false,
        ctx: undefined as unknown as KeyInBinding,
      };
      (bs as { ctx: KeyInBinding }).ctx = {
        namespace: input.namespace,
        binding,
        planName,
        maxKeys,
        now: input.now,
        stage: (apiStage, sk) => this.#stage(sk, apiStage).placements,
        admits: () => {
          const onPlan = this.#planKeys.get(planName);
          if (maxKeys === undefined || onPlan?.has(bs.current) || (onPlan?.size ?? 0) < maxKeys) return true;
          throw new NeedsFullRender(`plan ${planName} is full (maxKeys)`);
        },
        onPlan: () => this.#onPlan(planName).add(bs.current),
      };
      this.#ordered.push(bs);
      this.#byBinding.set(name, bs);
      for (const s of binding.spec.apiStages) {
        const apiStage = { namespace: input.namespace, api: s.api, stage: s.stage };
        const st = this.#stage(stageKey(apiStage), apiStage);
        if (!st.namedBy.includes(bs)) st.namedBy.push(bs);
        (st.bindingPlans as Set<string>).add(planName);
      }
    }
  }

  #stage(sk: string, apiStage: ApiStageId): StageState {
    let st = this.#stages.get(sk);
    if (!st) {
      st = {
        sk,
        apiStage,
        placements: new Map(),
        planCounts: new Map(),
        namedBy: [],
        bindingPlans: new Set(),
        shards: [],
        owners: [],
        ownersKey: '',
        left: new Map(),
        joined: new Set(),
        dirty: true,
        rendered: undefined,
      };
      this.#stages.set(sk, st);
    }
    return st;
  }

  #onPlan(plan: string): Set<string> {
    let s = this.#planKeys.get(plan);
    if (!s) this.#planKeys.set(plan, (s = new Set<string>()));
    return s;
  }

  /** The keys on a plan, as the adjustments read them: a view over who is placed with it. */
  #members(plan: string): PlanMembers | undefined {
    const names = this.#planKeys.get(plan);
    if (!names) return undefined;
    const member = (name: string): PlanMember | undefined => {
      const u = this.#keys.get(name)?.usable;
      return u && { key: u.key, keyId: u.keyId };
    };
    return {
      get: (name) => (names.has(name) ? member(name) : undefined),
      values: function* () {
        for (const name of names) {
          const m = member(name);
          if (m) yield m;
        }
      },
    };
  }

  /** `plan:api/stage` for each stage a key is placed on. */
  #placementsOf(name: string): string[] {
    const ks = this.#keys.get(name);
    if (!ks) return [];
    return ks.placed.map(([sk, plan]) => {
      const s = this.#stages.get(sk)?.apiStage;
      return `${plan}:${s?.api ?? ''}/${s?.stage ?? ''}`;
    });
  }

  #planResult(name: string): PlanResult {
    const where: string[] = [];
    for (const st of this.#stages.values())
      if ((st.planCounts.get(name) ?? 0) > 0) where.push(`${st.apiStage.api}/${st.apiStage.stage}`);
    const rendered = this.#renderedPlan(name);
    return planResult(
      this.#planKeys.get(name)?.size ?? 0,
      where.sort(),
      rendered && renderedPlanProblem(rendered),
    );
  }

  /** A plan as rendered, remembered until the plans change. */
  #renderedPlan(name: string): RenderedPlan | undefined {
    const plan = this.#plans.get(name);
    if (!plan) return undefined;
    let r = this.#renderedPlans.get(name);
    if (!r) this.#renderedPlans.set(name, (r = renderPlan(plan, this.#namespace)));
    return r;
  }

  // ---- incremental render ------------------------------------------------------------------------

  #incremental(input: RenderInput, changed: ReadonlyMap<string, ApiKey | undefined>): RenderOutput {
    const now = input.now;
    for (const bs of this.#ordered) (bs.ctx as { now: Date }).now = now;
    // Checks first, before anything kept is touched.
    const incoming = new Map<string, { key: ApiKey; credentialIdentities: string[]; keyId?: string }>();
    for (const k of changed.values()) {
      if (!k) continue; // removed
      const m = input.materials.get(k.metadata.name);
      const c = m ? toCredential(k.spec.type ?? 'ApiKey', m) : undefined;
      incoming.set(k.metadata.name, {
        key: k,
        credentialIdentities: c ? rawIdentities(c) : [],
        ...(c && m && { keyId: m.keyId }),
      });
    }
    for (const name of changed.keys()) {
      const old = this.#keys.get(name);
      if (old) {
        if (old.identities.some((i) => shared(this.#claims, i)))
          throw new NeedsFullRender('a key had the value of another key');
        if (old.keyId !== undefined && shared(this.#keyIdClaims, old.keyId))
          throw new NeedsFullRender('a key had the key id of another key');
        if (old.found.some((bs) => (this.#refusals.get(bs.planName) ?? 0) > 0))
          throw new NeedsFullRender('a key was in a binding of a full plan');
      }
      const next = incoming.get(name);
      if (next) {
        // Rare (an object admitted before the CRD checked expiresAt): reported as usableKeys does.
        if (expiryProblem(next.key)) throw new NeedsFullRender("a key's expiry cannot be read");
        if (next.credentialIdentities.some((i) => claimedByOther(this.#claims, i, name)))
          throw new NeedsFullRender('a key has the value of another key');
        if (next.keyId !== undefined && claimedByOther(this.#keyIdClaims, next.keyId, name))
          throw new NeedsFullRender('a key has the key id of another key');
      }
    }

    const touchedPlans = new Set<string>();
    for (const name of changed.keys()) {
      const old = this.#keys.get(name);
      if (old) this.#remove(old, touchedPlans);
    }
    for (const [name, { key }] of incoming) this.#add(key, input.materials.get(name), now, touchedPlans);

    for (const bs of this.#ordered) if (bs.dirty) this.#bindingResult(bs);
    for (const p of touchedPlans) this.#planResults.set(p, this.#planResult(p));
    return this.#finish(input, false);
  }

  #remove(ks: KeyState, touchedPlans: Set<string>): void {
    const name = ks.key.metadata.name;
    for (const bs of ks.found) {
      bs.problemsByKey.delete(name);
      bs.bound.delete(name);
      if (ks.usable) bs.usableFound--;
      bs.dirty = true;
    }
    for (const [sk, plan] of ks.placed) {
      const st = this.#stages.get(sk);
      if (!st) continue;
      st.placements.delete(name);
      st.planCounts.set(plan, (st.planCounts.get(plan) ?? 1) - 1);
      st.left.set(name, ks.shardHash);
      st.dirty = true;
      this.#planKeys.get(plan)?.delete(name);
      touchedPlans.add(plan);
    }
    for (const i of ks.identities) unclaim(this.#claims, i, name);
    if (ks.keyId !== undefined) unclaim(this.#keyIdClaims, ks.keyId, name);
    this.#keys.delete(name);
    this.#keyResults.delete(name);
  }

  #add(k: ApiKey, material: KeyMaterial | undefined, now: Date, touchedPlans: Set<string>): void {
    const name = k.metadata.name;
    const ks = this.#newKeyState(k, material, now);
    // Two keys changed at once to one value (or key id): which keeps it depends on their age.
    if (ks.identities.some((i) => shared(this.#claims, i)))
      throw new NeedsFullRender('a key has the value of another key');
    if (ks.keyId !== undefined && shared(this.#keyIdClaims, ks.keyId))
      throw new NeedsFullRender('a key has the key id of another key');
    this.#keys.set(name, ks);
    const credential = material ? toCredential(k.spec.type ?? 'ApiKey', material) : undefined;
    ks.usable = credential && material ? { key: ks.key, credential, keyId: material.keyId } : undefined;
    const touched = new Set<StageState>();
    for (const bs of this.#ordered) {
      const selector = bs.binding.spec.keys.selector;
      if (!bs.names.has(name) && !(selector && matchesSelector(selector, k.metadata.labels))) continue;
      if (bs.maxKeys !== undefined && (this.#refusals.get(bs.planName) ?? 0) > 0)
        throw new NeedsFullRender(`plan ${bs.planName} is full (maxKeys)`);
      ks.found.push(bs);
      bs.current = name;
      for (const sk of bs.stageKeys) {
        const st = this.#stages.get(sk);
        if (st) touched.add(st);
      }
      const outcome = resolveKeyInBinding(bs.ctx, ks.key, ks.usable, undefined);
      if (outcome.problems.length > 0) bs.problemsByKey.set(name, outcome.problems);
      if (outcome.bound) bs.bound.add(name);
      if (ks.usable) bs.usableFound++;
      bs.dirty = true;
    }
    for (const st of touched) {
      const p = st.placements.get(name);
      if (!p || ks.placed.some(([sk]) => sk === st.sk)) continue;
      ks.placed.push([st.sk, p.plan]);
      st.planCounts.set(p.plan, (st.planCounts.get(p.plan) ?? 0) + 1);
      st.joined.add(name);
      st.dirty = true;
      touchedPlans.add(p.plan);
    }
    this.#keyResults.set(name, keyResult(this.#placementsOf(name), undefined));
  }

  #bindingResult(bs: BindingState): void {
    bs.dirty = false;
    const names = bs.binding.spec.keys.names ?? [];
    const problems: Problem[] = names
      .filter((n) => !this.#keys.has(n))
      .sort()
      .map((n) => missingKey(this.#namespace, n));
    for (const k of [...bs.problemsByKey.keys()].sort()) problems.push(...(bs.problemsByKey.get(k) ?? []));
    this.#bindingResults.set(bs.name, {
      ready: bindingReady(bs.bound.size, bs.binding.spec.apiStages.length, problems),
      boundKeys: bs.bound.size,
      problems,
    });
  }

  // ---- stages, adjustments, output ---------------------------------------------------------------

  /** Brings the stages' shards, indexes and objects up to date, then the adjustments; returns the output. */
  #finish(input: RenderInput, all: boolean): RenderOutput {
    const live: StageState[] = [];
    for (const st of this.#stages.values()) {
      if (!st.namedBy.some((bs) => bs.usableFound > 0)) {
        // No binding naming it has a usable key: the stage is not rendered (its objects are stale).
        st.rendered = undefined;
        st.shards = [];
        st.left.clear();
        st.joined.clear();
        st.dirty = true;
        continue;
      }
      live.push(st);
      const owners = st.namedBy
        .filter((bs) => bs.usableFound > 0 && bs.binding.metadata.uid)
        .map((bs) => ({ name: bs.name, uid: bs.binding.metadata.uid ?? '' }))
        .sort((a, b) => (a.name < b.name ? -1 : 1));
      const ownersKey = JSON.stringify(owners);
      if (ownersKey !== st.ownersKey) {
        st.owners = owners;
        st.ownersKey = ownersKey;
        st.dirty = true;
        for (const s of st.shards) s.objects = undefined;
      }
      if (all || st.dirty) this.#shards(st);
    }

    // Adjustments resolve against the keys on each plan and the stages each plan is rendered on.
    const adjustments = input.adjustments ?? [];
    let adjustmentsChanged = false;
    if (adjustments.length > 0 || this.#adjustments.length > 0 || all) {
      const planStages = new Map<string, Set<string>>();
      for (const st of live)
        for (const plan of this.#stagePlans(st))
          planStages.set(
            plan,
            (planStages.get(plan) ?? new Set()).add(`${st.apiStage.api}/${st.apiStage.stage}`),
          );
      this.#adjustmentResults = resolveAdjustments(adjustments, {
        namespace: input.namespace,
        plans: this.#plans,
        keys: { get: (name) => this.#keys.get(name)?.key },
        unusable: {
          has: (name) => {
            const ks = this.#keys.get(name);
            return ks !== undefined && !ks.usable;
          },
        },
        members: { get: (plan) => this.#members(plan) },
        planStages,
        now: input.now,
      });
      this.#renderedAdjustments = [...this.#adjustmentResults.values()].flatMap((r) =>
        r.rendered ? [r.rendered] : [],
      );
      const json = JSON.stringify(this.#renderedAdjustments);
      adjustmentsChanged = json !== this.#adjustmentsJson;
      this.#adjustmentsJson = json;
    }
    this.#adjustments = adjustments;

    const stages: RenderedStage[] = [];
    for (const st of live.sort((a, b) => (a.sk < b.sk ? -1 : 1))) {
      if (all || st.dirty || adjustmentsChanged || !st.rendered) this.#index(st);
      st.dirty = false;
      if (st.rendered) stages.push(st.rendered);
    }
    return {
      stages,
      bindings: this.#bindingResults,
      plans: this.#planResults,
      keys: this.#keyResults,
      adjustments: this.#adjustmentResults,
    };
  }

  /** The plans rendered on a stage: those with keys placed there, and those its bindings name. */
  #stagePlans(st: StageState): Set<string> {
    const out = new Set(st.bindingPlans);
    for (const [plan, n] of st.planCounts) if (n > 0) out.add(plan);
    return out;
  }

  /** Re-partitions a stage, or moves the keys that left or joined it, and re-serialises those shards. */
  #shards(st: StageState): void {
    const n = shardCount(st.placements.size, this.#keysPerShard);
    if (n !== st.shards.length) {
      // Placements in the order render() meets them, then a stable sort by id: the same bytes.
      const parts: Entry[][] = Array.from({ length: n }, () => []);
      for (const [name, p] of st.placements) {
        const ks = this.#keys.get(name);
        if (ks) parts[ks.shardHash % n]?.push(this.#entry(ks, p.plan));
      }
      st.shards = parts.map((entries) => ({
        entries: entries.sort(byId),
        byName: new Map(entries.map((e) => [e.name, e])),
        keysDirty: true,
        secretsDirty: true,
        docs: undefined,
        objects: undefined,
      }));
    } else {
      // A key that left and came back to the same shard (its spec edited, say) changes only the
      // document whose entry changed; one that came or went changes both (their key counts).
      const removed = new Map<string, { entry: Entry; shard: ShardState }>();
      for (const [name, hash] of st.left) {
        const shard = st.shards[hash % n];
        const e = shard?.byName.get(name);
        if (!shard || !e) continue;
        shard.byName.delete(name);
        const at = position(shard.entries, e.id);
        shard.entries.splice(shard.entries[at] === e ? at : shard.entries.indexOf(e), 1);
        removed.set(name, { entry: e, shard });
      }
      for (const name of st.joined) {
        const ks = this.#keys.get(name);
        const p = st.placements.get(name);
        const shard = st.shards[(ks?.shardHash ?? 0) % n];
        if (!ks || !p || !shard) continue;
        const e = this.#entry(ks, p.plan);
        shard.entries.splice(position(shard.entries, e.id), 0, e);
        shard.byName.set(name, e);
        const was = removed.get(name);
        if (was?.shard === shard) {
          removed.delete(name);
          if (was.entry.keyJson !== e.keyJson) shard.keysDirty = true;
          if (was.entry.credentialJson !== e.credentialJson) shard.secretsDirty = true;
        } else shard.keysDirty = shard.secretsDirty = true;
      }
      for (const { shard } of removed.values()) shard.keysDirty = shard.secretsDirty = true;
    }
    st.left.clear();
    st.joined.clear();
    st.shards.forEach((shard, i) => {
      if (!shard.keysDirty && !shard.secretsDirty && shard.docs) return;
      const was = shard.docs;
      const keysJson =
        shard.keysDirty || !was
          ? shardJson(
              st.apiStage,
              i,
              'keys',
              shard.entries.map((e) => e.keyJson),
            )
          : was.keysJson;
      const secretsJson =
        shard.secretsDirty || !was
          ? shardJson(
              st.apiStage,
              i,
              'credentials',
              shard.entries.map((e) => e.credentialJson),
            )
          : was.secretsJson;
      shard.keysDirty = shard.secretsDirty = false;
      // A document whose bytes did not change keeps its hash and its object: nothing to write.
      const sameKeys = was?.keysJson === keysJson;
      const sameSecrets = was?.secretsJson === secretsJson;
      if (was && sameKeys && sameSecrets) return;
      shard.docs = {
        index: i,
        count: shard.entries.length,
        keysJson: was && sameKeys ? was.keysJson : keysJson,
        secretsJson: was && sameSecrets ? was.secretsJson : secretsJson,
        keysSha256: was && sameKeys ? was.keysSha256 : sha256(keysJson),
        secretsSha256: was && sameSecrets ? was.secretsSha256 : sha256(secretsJson),
      };
      if (shard.objects) {
        const [k, sec] = shardObjects(st.apiStage, shard.docs, st.owners);
        shard.objects = [sameKeys ? shard.objects[0] : k, sameSecrets ? shard.objects[1] : sec];
      }
    });
  }

  #entry(ks: KeyState, plan: string): Entry {
    let keyJson = ks.keyJson?.plan === plan ? ks.keyJson.json : undefined;
    if (keyJson === undefined && ks.usable) {
      keyJson = JSON.stringify(renderKey(ks.usable, plan));
      ks.keyJson = { plan, json: keyJson };
    }
    return {
      name: ks.key.metadata.name,
      id: ks.keyId ?? '',
      keyJson: keyJson ?? '',
      credentialJson: ks.credentialJson ?? '',
    };
  }

  /** A stage's index and objects, from its shards' kept documents. */
  #index(st: StageState): void {
    const stagePlans = this.#stagePlans(st);
    const plans = [...stagePlans].flatMap((name) => {
      const r = this.#renderedPlan(name);
      return r ? [r] : [];
    });
    const docs = st.shards.flatMap((s) => (s.docs ? [s.docs] : []));
    const index: StageIndex = renderIndex(
      st.apiStage,
      plans,
      docs,
      stageAdjustments(this.#renderedAdjustments, stagePlans),
    );
    const objects: RenderedObject[] = [];
    for (const s of st.shards) {
      if (!s.docs) continue;
      s.objects ??= shardObjects(st.apiStage, s.docs, st.owners);
      objects.push(...s.objects);
    }
    const previous = st.rendered?.objects.at(-1);
    const indexObj = indexObject(st.apiStage, index, st.owners);
    objects.push(
      previous && previous.data['index.json'] === indexObj.data['index.json'] && previous.owners === st.owners
        ? previous
        : indexObj,
    );
    st.rendered = {
      apiStage: st.apiStage,
      index,
      objects,
      documents: { index, keys: docs.map((d) => d.keysJson), secrets: docs.map((d) => d.secretsJson) },
    };
  }
}

/** What rendering reads of a key: its name, uid, age, labels and spec (the spec and labels are shared). */
function slimKey(k: ApiKey): ApiKey {
  const m = k.metadata;
  return {
    apiVersion: k.apiVersion,
    kind: k.kind,
    metadata: {
      name: m.name,
      ...(m.namespace !== undefined && { namespace: m.namespace }),
      ...(m.uid !== undefined && { uid: m.uid }),
      ...(m.creationTimestamp !== undefined && { creationTimestamp: m.creationTimestamp }),
      ...(m.labels !== undefined && { labels: m.labels }),
    },
    spec: k.spec,
  };
}

/** What rendering reads of a key besides its name: when it was made, its labels and its spec. */
function fingerprint(k: ApiKey): string {
  return JSON.stringify([k.metadata.uid, k.metadata.creationTimestamp, k.metadata.labels, k.spec]);
}

const byId = (a: Entry, b: Entry): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Where an id is, or goes, in entries sorted by id (the first index whose id is not below it). */
function position(entries: readonly Entry[], id: string): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((entries[mid]?.id ?? '') < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * What makes a credential unique, as kept here: its value hashes or its SecretId, unprefixed (they are
 * the material's own strings; a hash and a SecretId never look alike).
 */
function rawIdentities(c: Credential): string[] {
  return c.type === 'ApiKey' ? c.hashes.map((h) => h.sha256) : [c.secretId];
}

/** `next`, with each value equal to the one `previous` had for its name replaced by that one. */
function same<V>(
  previous: ReadonlyMap<string, V>,
  next: Map<string, V>,
  equal: (a: V, b: V) => boolean,
): Map<string, V> {
  for (const [name, v] of next) {
    const was = previous.get(name);
    if (was !== undefined && was !== v && equal(was, v)) next.set(name, was);
  }
  return next;
}

function sameKeyResult(a: KeyResult, b: KeyResult): boolean {
  return (
    a.placements.length === b.placements.length &&
    a.placements.every((p, i) => p === b.placements[i]) &&
    a.problem?.reason === b.problem?.reason &&
    a.problem?.message === b.problem?.message
  );
}

/** What rendering reads of a plan: its spec. */
/**
 * Whether `objects` are, in what rendering reads of them (`print`), the ones `seen` holds by name: what
 * differs ('was added or removed', 'changed'), or undefined. An object replaced by one that prints the
 * same takes its place in `seen`.
 */
function sameShape<T extends { metadata: { name: string } }>(
  objects: readonly T[],
  seen: Map<string, T>,
  print: (o: T) => string,
): 'was added or removed' | 'changed' | undefined {
  if (objects.length !== seen.size) return 'was added or removed';
  for (const o of objects) {
    const name = o.metadata.name;
    const was = seen.get(name);
    if (was === o) continue;
    if (!was || print(o) !== print(was)) return 'changed';
    seen.set(name, o);
  }
  return undefined;
}

function planPrint(p: UsagePlan): string {
  return JSON.stringify(p.spec);
}

/** What rendering reads of a binding: its age and uid (order, owners) and its spec. */
function bindingPrint(b: PlanBinding): string {
  return JSON.stringify([b.metadata.uid, b.metadata.creationTimestamp, b.spec]);
}

/** Who claims each identity: one key's name, or the names of several (kept apart, they are rare). */
type Claims = Map<string, string | Set<string>>;

function claim(claims: Claims, id: string, name: string): void {
  const v = claims.get(id);
  if (v === undefined) claims.set(id, name);
  else if (typeof v === 'string') {
    if (v !== name) claims.set(id, new Set([v, name]));
  } else v.add(name);
}

function unclaim(claims: Claims, id: string, name: string): void {
  const v = claims.get(id);
  if (v === undefined) return;
  if (typeof v === 'string') {
    if (v === name) claims.delete(id);
    return;
  }
  v.delete(name);
  const [only] = v;
  if (v.size === 1 && only !== undefined) claims.set(id, only);
  else if (v.size === 0) claims.delete(id);
}

/** Whether more than one key claims an identity. */
function shared(claims: Claims, id: string): boolean {
  const v = claims.get(id);
  return v !== undefined && typeof v !== 'string';
}

/** Whether a key other than `name` claims an identity. */
function claimedByOther(claims: Claims, id: string, name: string): boolean {
  const v = claims.get(id);
  if (v === undefined) return false;
  return typeof v === 'string' ? v !== name : v.size > 1 || !v.has(name);
}
