/**
 * Usage alerts (a plan's `alerts.thresholds`): when a key's usage crosses a threshold of its limit, one
 * Event on the ApiKey, once per period. What was announced is recorded in the key's own status
 * (`status.usage[].alerted`, the highest threshold announced in that period), so an operator restart
 * announces nothing twice. Pure.
 */

/** What {@link alertFor} decides for one key on one plan. */
export interface AlertDecision {
  /** The highest threshold announced this period, to record in status (undefined: none yet). */
  readonly alerted: number | undefined;
  /** A threshold to announce now (the highest newly crossed), if any. */
  readonly announce: number | undefined;
}

/**
 * Decides the alert of one key on one plan. `thresholds` are percent; a threshold is crossed when
 * `used` reaches that share of `limit` (the effective limit: the plan's plus what adjustments granted).
 * `alreadyAlerted` is what the status recorded for the same period. When usage jumps past several
 * thresholds between two polls, only the highest is announced: one Event says it all.
 */
export function alertFor(
  thresholds: readonly number[],
  used: number,
  limit: number,
  alreadyAlerted: number | undefined,
): AlertDecision {
  let highest: number | undefined;
  for (const t of thresholds) {
    if (used * 100 >= t * limit && (highest === undefined || t > highest)) highest = t;
  }
  if (highest !== undefined && (alreadyAlerted === undefined || highest > alreadyAlerted))
    return { alerted: highest, announce: highest };
  return { alerted: alreadyAlerted, announce: undefined };
}

/** The Event's note, e.g. "80% of plan gold's quota used in period 2026-11-01 (8,000 of 10,000)". */
export function alertMessage(
  threshold: number,
  plan: string,
  period: string,
  used: number,
  limit: number,
): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  return `${threshold}% of plan ${plan}'s quota used in period ${period} (${n(used)} of ${n(limit)})`;
}

/** The Event reason of an alert. */
export const ALERT_REASON = 'QuotaThresholdReached';
