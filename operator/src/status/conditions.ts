/**
 * Conditions the Kubernetes way (Envoy Gateway's status/conditions.go): setting a condition keeps its
 * lastTransitionTime unless its status changes, so `kubectl wait` and people see when a resource really
 * changed state, not when the operator last wrote it.
 */

import { Condition as ConditionSchema } from '../../../crds/src/schema.ts';

/** The longest condition message the API server takes (metav1.Condition, and the CRDs' schema). */
export const MAX_CONDITION_MESSAGE = ConditionSchema.properties.message.maxLength ?? 32768;

/**
 * `text` cut to at most `max` characters, ending in '…' when cut: a status the API server refuses for a
 * long message would never be written, and nor would anything else in it.
 */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

/** A condition to set: everything but the transition time, which this module decides. */
export type DesiredCondition = Omit<Condition, 'lastTransitionTime'>;

/**
 * Returns the conditions with `desired` set: a new transition time only when the status changes (or the
 * condition is new); reason, message and observedGeneration always updated, the message cut to
 * {@link MAX_CONDITION_MESSAGE}. The list stays sorted by type.
 */
export function setCondition(
  current: readonly Condition[] | undefined,
  desired: DesiredCondition,
  now: Date,
): Condition[] {
  const list = [...(current ?? [])];
  const i = list.findIndex((c) => c.type === desired.type);
  const previous = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    ...desired,
    message: clip(desired.message, MAX_CONDITION_MESSAGE),
    lastTransitionTime:
      previous && previous.status === desired.status
        ? previous.lastTransitionTime
        : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list.sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
}

/** The condition of a type, if set. */
export function getCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}
