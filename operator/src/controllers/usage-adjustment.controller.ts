/**
 * The UsageAdjustment controller's part of a namespace's reconcile: each adjustment's status (its fixed
 * period, the condition Applied) from what the renderer decided and what the usage poller saw enforcers
 * apply. The renderer has already put each current adjustment into its plan's stages' index.
 */
import type { UsageAdjustment, UsagePlan } from '../../../crds/src/index.ts';
import type { Writer } from '../kube/writer.ts';
import { adjustmentId, type AdjustmentResult, currentPeriod } from '../render/adjustments.ts';
import type { Condition } from '../status/conditions.ts';
import { adjustmentStatus, APPLIED } from '../status/desired.ts';
import { forEachLimit } from './pool.ts';

/** What the adjustments' statuses need. */
export interface AdjustmentDeps {
  readonly writer: Writer;
  /** Records an Event for a change of the condition `type` (the reconciler decides which are news). */
  readonly recordEvent: (
    obj: UsageAdjustment,
    conditions: readonly Condition[] | undefined,
    type: string,
  ) => Promise<void>;
  /** When the usage poller first saw an adjustment (by id) applied, if it did. */
  readonly appliedAt: (id: string) => string | undefined;
}

/**
 * Writes every adjustment's status (only those that changed). Returns the next instant at which a
 * rendered adjustment's period ends (its stages must then be rendered without it), if any.
 */
export async function reconcileAdjustments(
  deps: AdjustmentDeps,
  adjustments: readonly UsageAdjustment[],
  results: ReadonlyMap<string, AdjustmentResult>,
  plans: readonly UsagePlan[],
  now: Date,
): Promise<number | undefined> {
  await forEachLimit(adjustments, 8, async (a) => {
    if (a.metadata.deletionTimestamp) return;
    const status = adjustmentStatus(a, results.get(a.metadata.name), deps.appliedAt(adjustmentId(a)), now);
    if (await deps.writer.writeStatus('usageadjustments', a as never, status))
      await deps.recordEvent(a, status.conditions, APPLIED);
  });
  let next: number | undefined;
  for (const r of results.values()) {
    if (!r.rendered) continue;
    const plan = plans.find((p) => p.metadata.name === r.rendered?.plan);
    const c = plan ? currentPeriod(plan, now) : undefined;
    if (c && 'window' in c && (next === undefined || c.window.end < next)) next = c.window.end;
  }
  return next;
}
