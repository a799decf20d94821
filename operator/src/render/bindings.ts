/**
 * Binding resolution (DESIGN.md "PlanBinding"; docs/adr/0006-binding-ties.md): which key is on which plan
 * on which stage, and every reason a binding could not do what it asks.
 *
 * Bindings are taken oldest first. For each key a binding names or selects, on each of its stages:
 * - a key on another plan for that stage through an older binding stays there: KeyAlreadyBound;
 * - a key the plan does not yet have, when the plan holds maxKeys keys already: PlanFull;
 * - otherwise the key is placed. A disabled or expired key is placed too (the enforcer refuses it and says
 *   why) and reported: KeyDisabled, KeyExpired.
 * A named key that does not exist is KeyNotFound; one without a usable value yet is KeyNotReady.
 */
import type { ApiKey, PlanBinding, UsagePlan } from '../../../crds/src/index.ts';
import type { ApiStageId } from '../../../contract/src/format.ts';
import { stageKey } from '../../../contract/src/identity.ts';
import { BINDING_PROBLEM_ORDER, Reason } from '../status/reasons.ts';
import { isExpired, type UsableKey } from './keys.ts';
import { olderFirst } from './order.ts';
import { matchesSelector } from './selector.ts';
import type { BindingResult, Problem, ReadyState } from './types.ts';

/** A key placed on a stage with a plan, by a binding. */
export interface Placement {
  readonly apiStage: ApiStageId;
  readonly plan: string;
  readonly key: UsableKey;
  readonly binding: string;
}

/** The outcome of resolving every binding of a namespace. */
export interface Resolution {
  /** Placements by stage key (`ns/api/stage`), then key name. */
  readonly stages: Map<
    string,
    { apiStage: ApiStageId; owners: Map<string, string>; placements: Map<string, Placement> }
  >;
  readonly bindings: Map<string, BindingResult>;
  /** Distinct keys per plan. */
  readonly planKeys: Map<string, Set<string>>;
}

/**
 * Keys by label (`key=value`), so that a selector with matchLabels starts from the keys carrying its
 * rarest label rather than from every key: 100 bindings over 10,000 keys would otherwise be a million
 * selector evaluations per render.
 */
export type LabelIndex = ReadonlyMap<string, readonly ApiKey[]>;

/** Builds the label index of a namespace's keys. */
export function labelIndex(keys: Iterable<ApiKey>): LabelIndex {
  const index = new Map<string, ApiKey[]>();
  for (const k of keys) {
    for (const [l, v] of Object.entries(k.metadata.labels ?? {})) {
      const posting = index.get(`${l}=${v}`);
      if (posting) posting.push(k);
      else index.set(`${l}=${v}`, [k]);
    }
  }
  return index;
}

/** The keys a binding names or selects: existing ones sorted by name, and the names that do not exist. */
function keysOf(
  binding: PlanBinding,
  keys: ReadonlyMap<string, ApiKey>,
  byLabel: LabelIndex,
): { found: ApiKey[]; missing: string[] } {
  const names = binding.spec.keys.names ?? [];
  const missing = names.filter((n) => !keys.has(n)).sort();
  const found = new Map<string, ApiKey>();
  for (const n of names) {
    const k = keys.get(n);
    if (k) found.set(n, k);
  }
  const selector = binding.spec.keys.selector;
  if (selector) {
    const postings = Object.entries(selector.matchLabels ?? {}).map(
      ([l, v]) => byLabel.get(`${l}=${v}`) ?? [],
    );
    const candidates: Iterable<ApiKey> =
      postings.length > 0 ? postings.reduce((a, b) => (b.length < a.length ? b : a)) : keys.values();
    for (const k of candidates)
      if (matchesSelector(selector, k.metadata.labels)) found.set(k.metadata.name, k);
  }
  return { found: [...found.values()].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1)), missing };
}

/** The problem of a binding naming a key that does not exist. */
export function missingKey(namespace: string, name: string): Problem {
  return {
    key: name,
    reason: Reason.KeyNotFound,
    message: `ApiKey ${name} does not exist in namespace ${namespace}`,
  };
}

/** Told what each key's resolution in each binding decided (the incremental renderer keeps it). */
export type ResolutionObserver = (
  binding: PlanBinding,
  key: string,
  outcome: { readonly problems: readonly Problem[]; readonly bound: boolean },
) => void;

/** Resolves every binding of one namespace. Pure. */
export function resolveBindings(
  namespace: string,
  bindings: readonly PlanBinding[],
  plans: ReadonlyMap<string, UsagePlan>,
  keys: ReadonlyMap<string, ApiKey>,
  usable: ReadonlyMap<string, UsableKey>,
  keyProblems: ReadonlyMap<string, { readonly message: string }>,
  now: Date,
  observe?: ResolutionObserver,
): Resolution {
  const byLabel = labelIndex(keys.values());
  const stages: Resolution['stages'] = new Map();
  const results = new Map<string, BindingResult>();
  const planKeys = new Map<string, Set<string>>();

  for (const binding of [...bindings].sort(olderFirst)) {
    const bname = binding.metadata.name;
    const planName = binding.spec.planRef.name;
    const plan = plans.get(planName);
    if (!plan) {
      results.set(bname, {
        ready: {
          status: 'False',
          reason: Reason.PlanNotFound,
          message: `UsagePlan ${planName} does not exist in namespace ${namespace}; create it or fix spec.planRef.name`,
        },
        boundKeys: 0,
        problems: [],
      });
      continue;
    }
    const onPlan = planKeys.get(planName) ?? new Set<string>();
    planKeys.set(planName, onPlan);
    const maxKeys = plan.spec.maxKeys;
    const problems: Problem[] = [];
    const bound = new Set<string>();
    const { found, missing } = keysOf(binding, keys, byLabel);
    for (const name of missing) problems.push(missingKey(namespace, name));
    let kname = '';
    const ctx: KeyInBinding = {
      namespace,
      binding,
      planName,
      maxKeys,
      now,
      stage: (apiStage, sk) => {
        let stage = stages.get(sk);
        if (!stage) {
          stage = { apiStage, owners: new Map(), placements: new Map() };
          stages.set(sk, stage);
        }
        if (binding.metadata.uid) stage.owners.set(bname, binding.metadata.uid);
        return stage.placements;
      },
      admits: () => maxKeys === undefined || onPlan.has(kname) || onPlan.size < maxKeys,
      onPlan: () => onPlan.add(kname),
    };
    for (const key of found) {
      kname = key.metadata.name;
      const outcome = resolveKeyInBinding(ctx, key, usable.get(kname), keyProblems.get(kname)?.message);
      observe?.(binding, kname, outcome);
      problems.push(...outcome.problems);
      if (outcome.bound) bound.add(kname);
    }
    results.set(bname, {
      ready: bindingReady(bound.size, binding.spec.apiStages.length, problems),
      boundKeys: bound.size,
      problems,
    });
  }
  return { stages, bindings: results, planKeys };
}

/** What resolving one key in one binding reads and changes. */
export interface KeyInBinding {
  readonly namespace: string;
  readonly binding: PlanBinding;
  /** The binding's plan (which exists). */
  readonly planName: string;
  /** The plan's spec.maxKeys, for the message of a refusal. */
  readonly maxKeys: number | undefined;
  readonly now: Date;
  /** The placements of a stage the binding names (the stage is made, and the binding made one of its owners). */
  readonly stage: (apiStage: ApiStageId, sk: string) => Map<string, Placement>;
  /** Whether the plan takes the key (its maxKeys); asked only before the key is first placed with the plan. */
  readonly admits: () => boolean;
  /** The key was placed with the plan. */
  readonly onPlan: () => void;
}

/**
 * Resolves one key a binding names or selects, on each of the binding's stages, in the order of
 * docs/adr/0006-binding-ties.md: its placements go into the stages, and the problems it has in this
 * binding are returned, with whether it is bound. The renderer calls this for each binding oldest first
 * and, within a binding, for each key by name; the incremental renderer calls it for one changed key.
 */
export function resolveKeyInBinding(
  ctx: KeyInBinding,
  key: ApiKey,
  u: UsableKey | undefined,
  notReadyWhy: string | undefined,
): { problems: Problem[]; bound: boolean } {
  const kname = key.metadata.name;
  const bname = ctx.binding.metadata.name;
  const planName = ctx.planName;
  const problems: Problem[] = [];
  if (!u) {
    const why = notReadyWhy ?? 'it has no usable value yet (see its status)';
    problems.push({
      key: kname,
      reason: Reason.KeyNotReady,
      message: `ApiKey ${kname} cannot be bound: ${why}`,
    });
    return { problems, bound: false };
  }
  let bound = false;
  for (const s of ctx.binding.spec.apiStages) {
    const apiStage = { namespace: ctx.namespace, api: s.api, stage: s.stage };
    const sk = stageKey(apiStage);
    const where = `${s.api}/${s.stage}`;
    const placements = ctx.stage(apiStage, sk);
    const held = placements.get(kname);
    if (held && held.plan !== planName) {
      problems.push({
        key: kname,
        apiStage: where,
        reason: Reason.KeyAlreadyBound,
        message: `ApiKey ${kname} is already on plan ${held.plan} for ${where} through the older binding ${held.binding}; a key is on at most one plan per API stage`,
      });
      continue;
    }
    if (held) {
      bound = true;
      continue;
    }
    if (!ctx.admits()) {
      problems.push({
        key: kname,
        apiStage: where,
        reason: Reason.PlanFull,
        message: `UsagePlan ${planName} accepts at most ${ctx.maxKeys ?? '?'} keys (spec.maxKeys) and has them; ApiKey ${kname} is not bound`,
      });
      continue;
    }
    ctx.onPlan();
    bound = true;
    placements.set(kname, { apiStage, plan: planName, key: u, binding: bname });
  }
  if (bound && key.spec.enabled === false) {
    problems.push({
      key: kname,
      reason: Reason.KeyDisabled,
      message: `ApiKey ${kname} is disabled: it is bound, and refused (403) until enabled`,
    });
  } else if (bound && isExpired(key, ctx.now)) {
    problems.push({
      key: kname,
      reason: Reason.KeyExpired,
      message: `ApiKey ${kname} expired at ${key.spec.expiresAt ?? '?'}: it is bound, and refused (403)`,
    });
  }
  return { problems, bound };
}

/** A binding's Ready condition from its problems: the most pressing one names the reason. */
export function bindingReady(bound: number, stageCount: number, problems: readonly Problem[]): ReadyState {
  if (problems.length === 0) {
    return {
      status: 'True',
      reason: Reason.Bound,
      message: `${bound} key${bound === 1 ? '' : 's'} bound on ${stageCount} API stage${stageCount === 1 ? '' : 's'}`,
    };
  }
  const first =
    BINDING_PROBLEM_ORDER.map((r) => problems.find((p) => p.reason === r)).find((p) => p !== undefined) ??
    problems[0];
  const more =
    problems.length > 1
      ? ` (and ${problems.length - 1} more problem${problems.length === 2 ? '' : 's'} in status.problems)`
      : '';
  return {
    status: 'False',
    reason: first?.reason ?? Reason.KeyNotFound,
    message: `${first?.message ?? ''}${more}`,
  };
}
