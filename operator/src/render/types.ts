/** The renderer's inputs and outputs (the renderer is pure: resources in, rendered objects out). */
import type { ApiKey, PlanBinding, UsageAdjustment, UsagePlan } from '../../../crds/src/index.ts';
import type { ApiStageId, StageDocuments, StageIndex } from '../../../contract/src/format.ts';
import type { Reason } from '../status/reasons.ts';
import type { AdjustmentResult } from './adjustments.ts';

/**
 * A key's secret material, as the operator keeps it in the key's Secret. The renderer gets hashes for
 * ApiKeys and, for KeyPairs, the SecretKey itself (HMAC needs it).
 */
export interface KeyMaterial {
  readonly keyId: string;
  /** ApiKey: SHA-256 of the current value, and of a rotated-out value with its end of grace. */
  readonly hashes?: readonly { readonly sha256: string; readonly validUntil?: string }[];
  /** KeyPair: the SecretId. */
  readonly secretId?: string;
  /** KeyPair: the current SecretKey, and a rotated-out one with its end of grace. */
  readonly secretKeys?: readonly { readonly value: string; readonly validUntil?: string }[];
}

/** Everything one namespace's rendering depends on. */
export interface RenderInput {
  readonly namespace: string;
  readonly plans: readonly UsagePlan[];
  readonly keys: readonly ApiKey[];
  readonly bindings: readonly PlanBinding[];
  /** The namespace's UsageAdjustments: those of a current period go into their plan's stages' index. */
  readonly adjustments?: readonly UsageAdjustment[];
  /** Key material by ApiKey name; a key without material is not rendered (KeyNotReady). */
  readonly materials: ReadonlyMap<string, KeyMaterial>;
  /** The instant expiry is judged at (keys past their expiresAt are reported KeyExpired). */
  readonly now: Date;
  /** Keys per shard before the shard count doubles; default KEYS_PER_SHARD (2000). Tests make it small. */
  readonly keysPerShard?: number;
}

/** A ConfigMap or Secret to write, in neutral form: data in plain text (the kube layer base64s Secrets). */
export interface RenderedObject {
  readonly kind: 'ConfigMap' | 'Secret';
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The bindings that target the stage: the garbage collector removes the objects with the last one. */
  readonly owners: readonly { readonly name: string; readonly uid: string }[];
  readonly data: Readonly<Record<string, string>>;
}

/** One API stage, rendered. */
export interface RenderedStage {
  readonly apiStage: ApiStageId;
  readonly index: StageIndex;
  /** Shards first, the index last: the order to write them in. */
  readonly objects: readonly RenderedObject[];
  /** The same content as one document, for the standalone config file. */
  readonly documents: StageDocuments;
}

/** A problem with one key of a binding. */
export interface Problem {
  readonly key: string;
  readonly apiStage?: string;
  readonly reason: Reason;
  readonly message: string;
}

/** What a Ready condition should say. */
export interface ReadyState {
  readonly status: 'True' | 'False';
  readonly reason: Reason;
  readonly message: string;
}

/** A binding's outcome. */
export interface BindingResult {
  readonly ready: ReadyState;
  readonly boundKeys: number;
  readonly problems: readonly Problem[];
}

/** A plan's outcome. */
export interface PlanResult {
  readonly ready: ReadyState;
  readonly keyCount: number;
  readonly apiStages: readonly string[];
  /** Why enforcers would refuse the plan (contract/src/plan-check.ts), if they would. */
  readonly problem?: string;
}

/** A key's outcome, as far as rendering knows it. */
export interface KeyResult {
  /** `plan:api/stage` for each stage the key is rendered on. */
  readonly placements: readonly string[];
  /** Set when the key cannot be rendered for a reason of its own (a duplicate value). */
  readonly problem?: { readonly reason: Reason; readonly message: string };
}

/** Everything the renderer decides for one namespace. */
export interface RenderOutput {
  readonly stages: readonly RenderedStage[];
  readonly bindings: ReadonlyMap<string, BindingResult>;
  readonly plans: ReadonlyMap<string, PlanResult>;
  readonly keys: ReadonlyMap<string, KeyResult>;
  /** Each UsageAdjustment's outcome, by name. */
  readonly adjustments: ReadonlyMap<string, AdjustmentResult>;
}
