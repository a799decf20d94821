/**
 * The renderer: one namespace's resources in, its rendered objects and every resource's outcome out. Pure
 * and deterministic: no I/O, no clock but `input.now`, the same input always gives the same bytes.
 */
import type { ApiKey, UsagePlan } from '../../../crds/src/index.ts';
import { Reason } from '../status/reasons.ts';
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

  const stages: RenderedStage[] = [];
  const placements = new Map<string, string[]>();
  const planStages = new Map<string, Set<string>>();
  for (const [sk, stage] of [...resolution.stages].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const entries: StageEntry[] = [];
    const stagePlans = new Set<string>();
    for (const p of stage.placements.values()) {
      entries.push({ key: renderKey(p.key, p.plan), credential: p.key.credential });
      stagePlans.add(p.plan);
      const where = `${stage.apiStage.api}/${stage.apiStage.stage}`;
      placements.set(p.key.key.metadata.name, [
        ...(placements.get(p.key.key.metadata.name) ?? []),
        `${p.plan}:${where}`,
      ]);
      planStages.set(p.plan, (planStages.get(p.plan) ?? new Set()).add(where));
    }
    // Every plan a binding of this stage names is rendered, even with no key placed yet.
    for (const b of input.bindings) {
      const names = b.spec.apiStages.some((s) => `${input.namespace}/${s.api}/${s.stage}` === sk);
      if (names && plans.has(b.spec.planRef.name)) stagePlans.add(b.spec.planRef.name);
    }
    const renderedPlans = [...stagePlans].flatMap((name) => {
      const plan = plans.get(name);
      return plan ? [renderPlan(plan, input.namespace)] : [];
    });
    const shards = partition(entries, input.keysPerShard).map((shardEntries, i) =>
      renderShard(stage.apiStage, i, shardEntries),
    );
    const index = renderIndex(stage.apiStage, renderedPlans, shards);
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
    const where = [...(planStages.get(name) ?? [])].sort();
    const keyCount = resolution.planKeys.get(name)?.size ?? 0;
    planResults.set(name, {
      keyCount,
      apiStages: where,
      ready:
        where.length > 0
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
    });
  }

  const keyResults = new Map<string, KeyResult>();
  for (const name of [...keys.keys()].sort()) {
    const problem = keyProblems.get(name);
    keyResults.set(name, { placements: (placements.get(name) ?? []).sort(), ...(problem && { problem }) });
  }
  return { stages, bindings: resolution.bindings, plans: planResults, keys: keyResults };
}
