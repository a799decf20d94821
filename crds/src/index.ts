/**
 * The Keystile resources as TypeScript: types derived from the same TypeBox schemas the CRDs are
 * generated from, so the operator, the renderer and the CLI cannot drift from what the API server admits.
 */
import type { ApiKeySpec, ApiKeyStatus } from './api-key.ts';
import type { PlanBindingSpec, PlanBindingStatus } from './plan-binding.ts';
import type { UsageAdjustmentSpec, UsageAdjustmentStatus } from './usage-adjustment.ts';
import type { UsagePlanSpec, UsagePlanStatus } from './usage-plan.ts';

export type { ApiKeySpec, ApiKeyStatus } from './api-key.ts';
export type { ApiStage, BindingProblem, PlanBindingSpec, PlanBindingStatus } from './plan-binding.ts';
export type { UsageAdjustmentSpec, UsageAdjustmentStatus } from './usage-adjustment.ts';
export type { Quota, Route, Throttle, UsagePlanSpec, UsagePlanStatus } from './usage-plan.ts';
export { API_VERSION, GROUP, KINDS, VERSION } from './kinds.ts';

/** The object metadata Keystile reads (a subset of metav1.ObjectMeta). */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** A Keystile resource of one kind. */
export interface Resource<K extends string, Spec, Status> {
  apiVersion: 'keystile.dev/v1alpha1';
  kind: K;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

/** An ApiKey. */
export type ApiKey = Resource<'ApiKey', ApiKeySpec, ApiKeyStatus>;
/** A UsagePlan. */
export type UsagePlan = Resource<'UsagePlan', UsagePlanSpec, UsagePlanStatus>;
/** A PlanBinding. */
export type PlanBinding = Resource<'PlanBinding', PlanBindingSpec, PlanBindingStatus>;
/** A UsageAdjustment. */
export type UsageAdjustment = Resource<'UsageAdjustment', UsageAdjustmentSpec, UsageAdjustmentStatus>;
