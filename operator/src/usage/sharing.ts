/**
 * Many enforcers, one quota? With the Redis store every enforcer counts in one place. With the memory
 * store each enforcer counts alone, so a plan served by several enforcers (sidecars in several pods, or
 * its stages on different enforcers) grants its quota, and its throttle, once per enforcer. This decides
 * the UsagePlan condition `CountersShared` that says so. Pure.
 */
import type { StoreKind } from '../../../contract/src/usage-api.ts';
import type { DesiredCondition } from '../status/conditions.ts';
import { Reason } from '../status/reasons.ts';

/** The condition, without its type and generation (status/desired.ts adds them). */
export type SharingCondition = Omit<DesiredCondition, 'type' | 'observedGeneration'>;

/** The reason an unknown answer gives: no enforcer of the plan was heard from. */
export const ENFORCERS_UNKNOWN = 'EnforcersUnknown';

/** What the operator knows about who serves a plan. */
export interface SharingInput {
  readonly namespace: string;
  /** The plan's stages, `api/stage`. */
  readonly apiStages: readonly string[];
  /** What enforcers count with when none says (--counter-store). */
  readonly defaultStore: StoreKind;
  /**
   * Enforcers heard from recently, by stage key (`<namespace>/<api>/<stage>`): each instance and its
   * store. Undefined when no enforcer is polled at all (no --usage-endpoints).
   */
  readonly served: ReadonlyMap<string, ReadonlyMap<string, StoreKind>> | undefined;
}

/** The CountersShared condition of one plan. */
export function countersShared(input: SharingInput): SharingCondition {
  const stages = [...input.apiStages].sort();
  if (stages.length === 0)
    return {
      status: 'True',
      reason: Reason.NotBound,
      message: 'the plan is on no stage: nothing is counted',
    };
  const instances = new Map<string, StoreKind>();
  const covered = new Set<string>();
  for (const s of stages) {
    const heard = input.served?.get(`${input.namespace}/${s}`);
    for (const [instance, store] of heard ?? []) {
      instances.set(instance, store);
      covered.add(s);
    }
  }
  const list = stages.join(', ');
  const redisAdvice =
    'run the enforcers with the Redis store so that they share one count (docs/adr/0010-usage-reporting.md)';
  if (instances.size === 0) {
    if (input.defaultStore === 'redis')
      return {
        status: 'True',
        reason: Reason.SharedStore,
        message: 'the enforcers count in Redis: one quota, shared',
      };
    if (stages.length > 1)
      return {
        status: 'False',
        reason: Reason.PerReplicaCounters,
        message: `the plan is on ${stages.length} stages (${list}) and enforcers count in memory: unless one enforcer serves them all, each grants the whole quota and throttle, multiplying them; ${redisAdvice}`,
      };
    return {
      status: 'Unknown',
      reason: ENFORCERS_UNKNOWN,
      message: `enforcers count in memory and the operator hears from none serving ${list} (--usage-endpoints): if several serve it, each grants the whole quota`,
    };
  }
  const memory = [...instances.values()].filter((s) => s === 'memory').length;
  if (memory === 0)
    return {
      status: 'True',
      reason: Reason.SharedStore,
      message: `${instances.size} enforcer${instances.size === 1 ? '' : 's'} serve${instances.size === 1 ? 's' : ''} ${list}, counting in Redis: one quota, shared`,
    };
  if (instances.size > 1)
    return {
      status: 'False',
      reason: Reason.PerReplicaCounters,
      message: `${instances.size} enforcers serve ${list}, ${memory} of them counting in their own memory: each grants the whole quota and throttle, so a key can use up to ${instances.size} times its quota; ${redisAdvice}`,
    };
  const uncovered = stages.filter((s) => !covered.has(s));
  if (uncovered.length > 0)
    return {
      status: 'Unknown',
      reason: ENFORCERS_UNKNOWN,
      message: `one enforcer, counting in memory, serves ${[...covered].join(', ')}; no polled enforcer serves ${uncovered.join(', ')}: another enforcer there would count separately`,
    };
  return {
    status: 'True',
    reason: Reason.SingleEnforcer,
    message: `one enforcer serves ${list}, counting in memory: its count is the whole count`,
  };
}
