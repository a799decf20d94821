/**
 * The renderer: one namespace's resources in, its rendered objects and every resource's outcome out. Pure
 * and deterministic: no I/O, no clock but `input.now`, the same input always gives the same bytes.
 */
import type { ApiKey, UsagePlan } from '../../../crds/src/index.ts';
import type { RenderedAdjustment, RenderedPlan } from '../../../contract/src/format.ts';
import { renderedPlanProblem } from '../../../contract/src/plan-check.ts';
import { Reason } from '../status/reasons.ts';
import { type PlanMember, resolveAdjustments } from './adjustments.ts';
import { resolveBindings } from './bindings.ts';
import { renderKey, usableKeys } from './keys.ts';
import { renderPlan } from './plan.ts';
import { partition, renderIndex, renderShard, type StageEntry, stageObjects } from './shards.ts';
import type { KeyResult, PlanResult, RenderedStage, RenderInput, RenderOutput } from './types.ts';

/** Renders a namespace. */
export function render(input: RenderInput): RenderOutput {
  const plans = new Map<string, UsagePlan>(input.plans.map((p) => [p.metadata.name, p]));
  const keys = new Map<string, ApiKey>(input.keys.map((k) => [k.metadata.name, k]));
  const { usable, problems: keyProblems } = usableKeys(input.keys, input.materials);
  const resolution = resolveBindings(
    input.namespace,
    input.bindings,
    plans,
    keys,
    usable,
    keyProblems,
    input.now,
  );

  // Which keys are on which plan, and on which stages each plan is rendered: adjustments resolve against them.
  const members = new Map<string, Map<string, PlanMember>>();
  const boundStages = new Map<string, Set<string>>();
  for (const [sk, stage] of resolution.stages) {
    for (const p of stage.placements.values()) {
      const m = members.get(p.plan) ?? new Map<string, PlanMember>();
      members.set(p.plan, m.set(p.key.key.metadata.name, { key: p.key.key, keyId: p.key.keyId }));
    }
    for (const name of plansOfStage(input, sk, stage.placements.values(), plans))
      boundStages.set(
        name,
        (boundStages.get(name) ?? new Set()).add(`${stage.apiStage.api}/${stage.apiStage.stage}`),
      );
  }
  const adjustments = resolveAdjustments(input.adjustments ?? [], {
    namespace: input.namespace,
    plans,
    keys,
    unusable: new Set(input.keys.map((k) => k.metadata.name).filter((n) => !usable.has(n))),
    members,
    planStages: boundStages,
    now: input.now,
  });
  const renderedAdjustments = [...adjustments.values()].flatMap((r) => (r.rendered ? [r.rendered] : []));

  // Each plan rendered once, for every stage holding it and for its own result.
  const renderedPlanCache = new Map<string, RenderedPlan>();
  const renderedPlan = (name: string): RenderedPlan | undefined => {
    let r = renderedPlanCache.get(name);
    const plan = plans.get(name);
    if (!r && plan) renderedPlanCache.set(name, (r = renderPlan(plan, input.namespace)));
    return r;
  };

  const stages: RenderedStage[] = [];
  const placements = new Map<string, string[]>();
  const planStages = new Map<string, Set<string>>();
  for (const [sk, stage] of [...resolution.stages].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const entries: StageEntry[] = [];
    const stagePlans = plansOfStage(input, sk, stage.placements.values(), plans);
    for (const p of stage.placements.values()) {
      entries.push({ key: renderKey(p.key, p.plan), credential: p.key.credential });
      const where = `${stage.apiStage.api}/${stage.apiStage.stage}`;
      placements.set(p.key.key.metadata.name, [
        ...(placements.get(p.key.key.metadata.name) ?? []),
        `${p.plan}:${where}`,
      ]);
      planStages.set(p.plan, (planStages.get(p.plan) ?? new Set()).add(where));
    }
    const renderedPlans = [...stagePlans].flatMap((name) => {
      const r = renderedPlan(name);
      return r ? [r] : [];
    });
    const shards = partition(entries, input.keysPerShard).map((shardEntries, i) =>
      renderShard(stage.apiStage, i, shardEntries),
    );
    const index = renderIndex(
      stage.apiStage,
      renderedPlans,
      shards,
      stageAdjustments(renderedAdjustments, stagePlans),
    );
    const owners = [...stage.owners]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, uid]) => ({ name, uid }));
    stages.push({
      apiStage: stage.apiStage,
      index,
      objects: stageObjects(stage.apiStage, index, shards, owners),
      documents: { index, keys: shards.map((s) => s.keysJson), secrets: shards.map((s) => s.secretsJson) },
    });
  }

  const planResults = new Map<string, PlanResult>();
  for (const name of [...plans.keys()].sort()) {
    const rendered = renderedPlan(name);
    planResults.set(
      name,
      planResult(
        resolution.planKeys.get(name)?.size ?? 0,
        [...(planStages.get(name) ?? [])].sort(),
        rendered && renderedPlanProblem(rendered),
      ),
    );
  }

  const keyResults = new Map<string, KeyResult>();
  for (const name of [...keys.keys()].sort()) {
    keyResults.set(name, keyResult(placements.get(name) ?? [], keyProblems.get(name)));
  }
  return { stages, bindings: resolution.bindings, plans: planResults, keys: keyResults, adjustments };
}

/**
 * A plan's outcome: how many keys it has, the stages (`api/stage`, sorted) it is rendered on, and why
 * enforcers would refuse it ({@link renderedPlanProblem}), if they would.
 */
export function planResult(keyCount: number, where: readonly string[], problem?: string): PlanResult {
  return {
    keyCount,
    apiStages: where,
    ...(problem !== undefined && { problem }),
    ready: problem
      ? {
          status: 'False',
          reason: Reason.InvalidPlan,
          message:
            where.length > 0
              ? `${problem}: the enforcers of ${where.join(', ')} refuse their new config and keep the previous one until the plan is fixed`
              : `${problem}: enforcers would refuse the config of any stage it is bound to`,
        }
      : where.length > 0
        ? {
            status: 'True',
            reason: Reason.InUse,
            message: `${keyCount} key${keyCount === 1 ? '' : 's'} on ${where.length} API stage${where.length === 1 ? '' : 's'}: ${where.join(', ')}`,
          }
        : {
            status: 'True',
            reason: Reason.NotBound,
            message: 'no key is on this plan yet: no PlanBinding names it, or its bindings place no key',
          },
  };
}

/** A key's outcome: its placements (`plan:api/stage`, sorted here) and a problem of its own. */
export function keyResult(
  placements: readonly string[],
  problem: KeyResult['problem'] | undefined,
): KeyResult {
  return { placements: [...placements].sort(), ...(problem && { problem }) };
}

/** The plans rendered on a stage: every plan a key is placed with, and every plan a binding of the stage names. */
function plansOfStage(
  input: RenderInput,
  sk: string,
  placed: Iterable<{ readonly plan: string }>,
  plans: ReadonlyMap<string, UsagePlan>,
): Set<string> {
  const out = new Set<string>();
  for (const p of placed) out.add(p.plan);
  // Every plan a binding of this stage names is rendered, even with no key placed yet.
  for (const b of input.bindings) {
    const names = b.spec.apiStages.some((s) => `${input.namespace}/${s.api}/${s.stage}` === sk);
    if (names && plans.has(b.spec.planRef.name)) out.add(b.spec.planRef.name);
  }
  return out;
}

/** The most adjustments one index holds (the contract's bound); past it, those whose ids sort last wait. */
export const MAX_ADJUSTMENTS_PER_STAGE = 10_000;

/** The adjustments that go into the index of a stage: those of its plans, at most MAX_ADJUSTMENTS_PER_STAGE. */
export function stageAdjustments(
  all: readonly RenderedAdjustment[],
  stagePlans: ReadonlySet<string>,
): RenderedAdjustment[] {
  return all.filter((a) => stagePlans.has(a.plan)).slice(0, MAX_ADJUSTMENTS_PER_STAGE);
}
