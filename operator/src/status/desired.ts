/**
 * The status each resource should have, from the renderer's outcome and the key Secrets: pure, so the
 * one status writer (writer.ts) only compares and writes.
 */
import { ApiKeyStatus as ApiKeyStatusSchema } from '../../../crds/src/api-key.ts';
import { BindingProblem } from '../../../crds/src/plan-binding.ts';
import { UsagePlanStatus as UsagePlanStatusSchema } from '../../../crds/src/usage-plan.ts';
import type {
  ApiKey,
  ApiKeyStatus,
  PlanBinding,
  PlanBindingStatus,
  UsageAdjustment,
  UsageAdjustmentStatus,
  UsagePlan,
  UsagePlanStatus,
} from '../../../crds/src/index.ts';
import { INSTANT_RANGE } from '../../../contract/src/format.ts';
import type { KeySecretData } from '../keys/key-secret.ts';
import type { AdjustmentResult } from '../render/adjustments.ts';
import type { BindingResult, KeyResult, PlanResult } from '../render/types.ts';
import { clip, type DesiredCondition, setCondition } from './conditions.ts';
import { Reason } from './reasons.ts';

/** The problems problems list is capped in status; problemCount has them all. */
export const MAX_PROBLEMS_IN_STATUS = 50;

/**
 * The most entries the CRDs admit in an ApiKey's `plans` and a UsagePlan's `apiStages`: a key (or plan) on
 * more stages (bindings are not limited in number) shows the first ones, sorted, so that the status can
 * be written at all.
 */
export const MAX_PLANS_IN_STATUS = ApiKeyStatusSchema.properties.plans.maxItems ?? 256;
export const MAX_STAGES_IN_STATUS = UsagePlanStatusSchema.properties.apiStages.maxItems ?? 256;
/** The longest message of a binding problem the CRD admits. */
const MAX_PROBLEM_MESSAGE = BindingProblem.properties.message.maxLength ?? 1024;

/** A PlanBinding's status. */
export function bindingStatus(b: PlanBinding, r: BindingResult | undefined, now: Date): PlanBindingStatus {
  const ready = r?.ready ?? { status: 'False', reason: Reason.PlanNotFound, message: 'not yet reconciled' };
  const problems = r?.problems ?? [];
  return {
    observedGeneration: b.metadata.generation ?? 0,
    conditions: setCondition(
      b.status?.conditions,
      { type: 'Ready', ...ready, observedGeneration: b.metadata.generation ?? 0 },
      now,
    ),
    boundKeys: r?.boundKeys ?? 0,
    problemCount: problems.length,
    ...(problems.length > 0 && {
      problems: problems.slice(0, MAX_PROBLEMS_IN_STATUS).map((p) => ({
        key: p.key,
        ...(p.apiStage !== undefined && { apiStage: p.apiStage }),
        reason: p.reason,
        message: clip(p.message, MAX_PROBLEM_MESSAGE),
      })),
    }),
  };
}

/** The type of the UsagePlan condition saying whether its enforcers share one count. */
export const COUNTERS_SHARED = 'CountersShared';
/** The type of the UsageAdjustment condition saying whether it was applied. */
export const APPLIED = 'Applied';

/**
 * A UsagePlan's status. `counters` is the CountersShared condition (usage/sharing.ts), when known; an
 * unknown one leaves the condition as it was.
 */
export function planStatus(
  p: UsagePlan,
  r: PlanResult | undefined,
  now: Date,
  counters?: Omit<DesiredCondition, 'type' | 'observedGeneration'>,
): UsagePlanStatus {
  const ready = r?.ready ?? {
    status: 'True' as const,
    reason: Reason.NotBound,
    message: 'no PlanBinding uses this plan yet',
  };
  const gen = p.metadata.generation ?? 0;
  let conditions = setCondition(
    p.status?.conditions,
    { type: 'Ready', ...ready, observedGeneration: gen },
    now,
  );
  if (counters)
    conditions = setCondition(
      conditions,
      { type: COUNTERS_SHARED, ...counters, observedGeneration: gen },
      now,
    );
  return {
    observedGeneration: gen,
    conditions,
    keyCount: r?.keyCount ?? 0,
    apiStages: (r?.apiStages ?? []).slice(0, MAX_STAGES_IN_STATUS),
  };
}

/** What the key Secret step found for a key: its Secret's data, or a problem. */
export interface KeyState {
  readonly secretName: string;
  readonly data?: KeySecretData;
  readonly problem?: { readonly reason: string; readonly message: string };
}

/** An ApiKey's status. Never holds the value: only the key id, the Secret's name and a KeyPair's SecretId. */
export function keyStatus(
  k: ApiKey,
  state: KeyState | undefined,
  r: KeyResult | undefined,
  now: Date,
): ApiKeyStatus {
  const data = state?.data;
  // A generated key whose Secret has not caught up with a raised spec.rotation.sequence: the spec is not
  // observed yet (the new value does not exist), so observedGeneration stays where it was and a
  // `kubectl wait` on the generation waits for the rotation itself.
  const rotating =
    k.spec.valueFrom !== 'Secret' &&
    data?.['rotation-sequence'] !== undefined &&
    Number(data['rotation-sequence']) < (k.spec.rotation?.sequence ?? 0);
  const gen = rotating ? (k.status?.observedGeneration ?? 0) : (k.metadata.generation ?? 0);
  const problem = state?.problem ?? r?.problem;
  const expired = k.spec.expiresAt !== undefined && Date.parse(k.spec.expiresAt) <= now.getTime();
  const placements = r?.placements ?? [];
  let ready: { status: 'True' | 'False'; reason: string; message: string };
  if (problem) ready = { status: 'False', reason: problem.reason, message: problem.message };
  else if (!state?.data)
    ready = { status: 'False', reason: Reason.KeyNotReady, message: 'the key value is being generated' };
  else if (k.spec.enabled === false)
    ready = {
      status: 'False',
      reason: Reason.Disabled,
      message:
        'the key is disabled: requests with it are refused (403); set spec.enabled to true to allow them',
    };
  else if (expired)
    ready = {
      status: 'False',
      reason: Reason.Expired,
      message: `the key expired at ${k.spec.expiresAt ?? ''}: requests with it are refused (403)`,
    };
  else
    ready = {
      status: 'True',
      reason: Reason.KeyReady,
      message:
        placements.length > 0
          ? `the key works on ${placements.join(', ')}`
          : 'the key has a value; no PlanBinding places it on a stage yet',
    };
  const until = data?.['previous-valid-until'];
  const untilMs = until === undefined ? NaN : Date.parse(until);
  // An imported key is never rotated by sequence (its Secret's value changes instead): it has none.
  const rotationSeq =
    k.spec.valueFrom === 'Secret' ? 0 : Number(data?.['rotation-sequence'] ?? k.spec.rotation?.sequence ?? 0);
  return {
    ...(k.status?.usage && { usage: k.status.usage }),
    observedGeneration: gen,
    conditions: setCondition(k.status?.conditions, { type: 'Ready', ...ready, observedGeneration: gen }, now),
    ...(data?.keyId && { keyId: data.keyId }),
    ...(state && { secretName: state.secretName }),
    ...(data?.secretId && { secretId: data.secretId }),
    ...(data && {
      rotation: {
        sequence: Number.isFinite(rotationSeq) ? rotationSeq : 0,
        ...(until !== undefined &&
          untilMs > now.getTime() && {
            // Past year 9999 (a grace period admitted before the CRD bounded it) the API server would
            // refuse the date-time, and with it every status write: the last instant it takes instead.
            previousValidUntil: untilMs > INSTANT_RANGE.last ? '9999-12-31T23:59:59Z' : until,
          }),
      },
    }),
    plans: placements.slice(0, MAX_PLANS_IN_STATUS),
  };
}

/**
 * A UsageAdjustment's status: its fixed period, and the condition Applied. `appliedAt` is when the
 * operator first saw an enforcer apply it; once set it is never removed (being applied does not un-happen),
 * so an operator that cannot see the enforcers never reports an applied adjustment as not applied.
 */
export function adjustmentStatus(
  a: UsageAdjustment,
  r: AdjustmentResult | undefined,
  appliedAt: string | undefined,
  now: Date,
): UsageAdjustmentStatus {
  const gen = a.metadata.generation ?? 0;
  const at = a.status?.appliedAt ?? appliedAt;
  const period = a.status?.period ?? r?.period;
  const sign = a.spec.amount > 0 ? `+${a.spec.amount}` : String(a.spec.amount);
  const who = a.spec.keyRef ? `ApiKey ${a.spec.keyRef.name}` : `customer ${a.spec.customer ?? ''}`;
  let applied: Omit<DesiredCondition, 'type'>;
  if (at !== undefined)
    applied = {
      status: 'True',
      reason: Reason.Applied,
      message: `${sign} requests of ${who}'s quota on UsagePlan ${a.spec.planRef.name} in period ${period ?? '?'}, applied at ${at}`,
    };
  else if (r?.problem) applied = { status: 'False', ...r.problem };
  else if (r?.rendered)
    applied = {
      status: 'Unknown',
      reason: Reason.Rendered,
      message: `${sign} requests for ${who} in period ${period ?? '?'}: in the index of ${r.apiStages.join(', ') || 'no stage'}; waiting for an enforcer to apply it`,
    };
  else applied = { status: 'Unknown', reason: Reason.Rendered, message: 'not yet reconciled' };
  return {
    observedGeneration: gen,
    conditions: setCondition(
      a.status?.conditions,
      { type: APPLIED, ...applied, observedGeneration: gen },
      now,
    ),
    ...(at !== undefined && { appliedAt: at }),
    ...(period !== undefined && { period }),
  };
}
