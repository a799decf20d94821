/**
 * UsageAdjustments as the renderer sees them (AWS's UpdateUsage): which plan, whose counter, which
 * period, and whether it goes into the index of the plan's stages. Pure.
 *
 * The period is fixed at the first reconcile: the plan's current period id, recorded in the adjustment's
 * `status.period` and read back from there ever after, so a restart, a slow operator or a late enforcer
 * never moves a grant into the next period. An adjustment is rendered only while that period is current.
 */
import { createHash } from 'node:crypto';
import type { ApiKey, UsageAdjustment, UsagePlan } from '../../../crds/src/index.ts';
import { periodWindow, type PeriodWindow } from '../../../contract/src/calendar-period.ts';
import type { RenderedAdjustment } from '../../../contract/src/format.ts';
import { type Subject, subjectKey } from '../../../contract/src/identity.ts';
import { Reason } from '../status/reasons.ts';

/** What the renderer decided for one UsageAdjustment. */
export interface AdjustmentResult {
  /** The period it adjusts (fixed at the first reconcile); absent while its plan cannot say. */
  readonly period?: string;
  /** Present while it belongs in the index of its plan's stages. */
  readonly rendered?: RenderedAdjustment;
  /** The stages (`api/stage`) whose index holds it. */
  readonly apiStages: readonly string[];
  /** Why it is not rendered: a problem with what it names, or its period is over (Expired). */
  readonly problem?: { readonly reason: Reason; readonly message: string };
}

/** The counter subject a key is counted under on a plan (ADR 0003): its customer's, or its own. */
export function keySubject(plan: UsagePlan, key: ApiKey, keyId: string): Subject {
  return plan.spec.countBy === 'Customer' && key.spec.customer !== undefined
    ? { kind: 'customer', name: key.spec.customer }
    : { kind: 'key', id: keyId };
}

/** The id an adjustment is applied under, at most once: its uid (a hash of its name where it has none, offline). */
export function adjustmentId(a: UsageAdjustment): string {
  return (
    a.metadata.uid ??
    `n-${createHash('sha256')
      .update(`${a.metadata.namespace ?? ''}/${a.metadata.name}`)
      .digest('hex')
      .slice(0, 32)}`
  );
}

/** The plan's current period, or a reason it has none. */
export function currentPeriod(
  plan: UsagePlan,
  now: Date,
): { window: PeriodWindow } | { problem: { reason: Reason; message: string } } {
  const q = plan.spec.quota;
  if (!q)
    return {
      problem: {
        reason: Reason.NoQuota,
        message: `UsagePlan ${plan.metadata.name} has no quota: there is nothing to adjust`,
      },
    };
  try {
    return {
      window: periodWindow(
        {
          period: q.period,
          ...(q.startDay !== undefined && { startDay: q.startDay }),
          ...(q.startWeekday !== undefined && { startWeekday: q.startWeekday }),
          ...(q.timeZone !== undefined && { timeZone: q.timeZone }),
        },
        now.getTime(),
      ),
    };
  } catch (err) {
    return {
      problem: {
        reason: Reason.NoQuota,
        message: `UsagePlan ${plan.metadata.name}'s quota period cannot be computed: ${err instanceof Error ? err.message : String(err)}`,
      },
    };
  }
}

/** A key placed on a plan (on at least one stage), with its key id. */
export interface PlanMember {
  readonly key: ApiKey;
  readonly keyId: string;
}

/** The keys on one plan, by key name (a Map, or a view over the incremental renderer's state). */
export interface PlanMembers {
  get(name: string): PlanMember | undefined;
  values(): Iterable<PlanMember>;
}

/** Everything the adjustments of a namespace are resolved against. */
export interface AdjustmentContext {
  readonly namespace: string;
  readonly plans: ReadonlyMap<string, UsagePlan>;
  readonly keys: { get(name: string): ApiKey | undefined };
  /** Keys without a usable value (no key id yet, or a duplicate value). */
  readonly unusable: { has(name: string): boolean };
  /** The keys on each plan, by plan name then key name. */
  readonly members: { get(plan: string): PlanMembers | undefined };
  /** The stages (`api/stage`) each plan is rendered on. */
  readonly planStages: ReadonlyMap<string, ReadonlySet<string>>;
  readonly now: Date;
}

/** Resolves every adjustment of a namespace, by name. */
export function resolveAdjustments(
  adjustments: readonly UsageAdjustment[],
  ctx: AdjustmentContext,
): Map<string, AdjustmentResult> {
  const out = new Map<string, AdjustmentResult>();
  for (const a of [...adjustments].sort((x, y) => (x.metadata.name < y.metadata.name ? -1 : 1))) {
    out.set(a.metadata.name, resolveOne(a, ctx));
  }
  return out;
}

function resolveOne(a: UsageAdjustment, ctx: AdjustmentContext): AdjustmentResult {
  const fixed = a.status?.period;
  const fail = (reason: Reason, message: string, period = fixed): AdjustmentResult => ({
    ...(period !== undefined && { period }),
    apiStages: [],
    problem: { reason, message },
  });
  const planName = a.spec.planRef.name;
  const plan = ctx.plans.get(planName);
  if (!plan)
    return fail(Reason.PlanNotFound, `UsagePlan ${planName} does not exist in namespace ${ctx.namespace}`);
  const current = currentPeriod(plan, ctx.now);
  if ('problem' in current) return fail(current.problem.reason, current.problem.message);
  const period = fixed ?? current.window.id;

  let subject: Subject;
  const members = ctx.members.get(planName) ?? new Map<string, PlanMember>();
  if (a.spec.keyRef) {
    const name = a.spec.keyRef.name;
    const key = ctx.keys.get(name);
    if (!key)
      return fail(Reason.KeyNotFound, `ApiKey ${name} does not exist in namespace ${ctx.namespace}`, period);
    const member = members.get(name);
    if (!member) {
      return ctx.unusable.has(name)
        ? fail(Reason.KeyNotReady, `ApiKey ${name} has no usable value yet (see its status)`, period)
        : fail(
            Reason.KeyNotOnPlan,
            `ApiKey ${name} is not on UsagePlan ${planName}: no PlanBinding places it there`,
            period,
          );
    }
    subject = keySubject(plan, key, member.keyId);
  } else {
    const customer = a.spec.customer ?? '';
    if (plan.spec.countBy !== 'Customer')
      return fail(
        Reason.CustomerOnPerKeyPlan,
        `UsagePlan ${planName} counts by Key: adjust one of customer ${customer}'s keys (spec.keyRef), or make the plan count by Customer`,
        period,
      );
    if (![...members.values()].some((m) => m.key.spec.customer === customer))
      return fail(
        Reason.CustomerNotOnPlan,
        `no key of customer ${customer} is on UsagePlan ${planName}`,
        period,
      );
    subject = { kind: 'customer', name: customer };
  }
  if (period !== current.window.id)
    return fail(
      Reason.Expired,
      `its period ${period} of UsagePlan ${planName} is over (the current one is ${current.window.id})`,
      period,
    );
  return {
    period,
    apiStages: [...(ctx.planStages.get(planName) ?? [])].sort(),
    rendered: {
      id: adjustmentId(a),
      plan: planName,
      subject: subjectKey(subject),
      period,
      amount: a.spec.amount,
    },
  };
}
