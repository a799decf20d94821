/**
 * The in-memory index of the loaded config (Authorino's `pkg/index` habit): the loader writes it, the
 * decision only reads it. A {@link Catalog} is immutable once built; a reload builds a new one and
 * swaps the reference, so a decision always sees one whole config.
 *
 * Per API stage: the plans by name, the ApiKey values by SHA-256, the KeyPairs by SecretId. Keys
 * reference their plan by name (looked up per decision), so a shard whose bytes did not change is
 * reused as is when only the plans change.
 */
import type {
  ApiStageId,
  RenderedAdjustment,
  RenderedPlan,
  RenderedResponse,
  StageIndex,
} from '../../../contract/src/format.ts';
import type { Subject } from '../../../contract/src/identity.ts';
import type { PeriodSpec } from '../../../contract/src/calendar-period.ts';
import { renderedPlanProblem } from '../../../contract/src/plan-check.ts';
import {
  compileMethods,
  compilePathPattern,
  type MethodFilter,
  type PathPattern,
} from '../decision/route-match.ts';
import { type BucketLimit, checkBucketLimit } from '../decision/token-bucket.ts';

/** A route of a plan, compiled. */
export interface RouteEntry {
  /** For metrics, logs, and the name of the route's own bucket. */
  readonly name: string;
  readonly methods: MethodFilter;
  readonly path: PathPattern;
  /** The route's own throttle, replacing the plan's for matching requests. */
  readonly throttle: BucketLimit | undefined;
  /** Quota units one request uses. */
  readonly cost: number;
}

/** A plan, compiled for deciding. */
export interface PlanEntry {
  /** The counter identity, `<namespace>/<name>` (ADR 0003). */
  readonly id: string;
  readonly name: string;
  readonly throttle: BucketLimit | undefined;
  readonly quota: { readonly limit: number; readonly spec: PeriodSpec } | undefined;
  /** Matched in order; the first match applies. */
  readonly routes: readonly RouteEntry[];
  readonly shadow: boolean;
  readonly countBy: 'Key' | 'Customer';
  /** Alert thresholds, percent of the quota, ascending (empty: no alerts). */
  readonly alertThresholds: readonly number[];
  /** The plan's local day (its quota's time zone, else UTC): usage is counted per such day. */
  readonly day: PeriodSpec;
  /** The plan's configured answers, by denial type. */
  readonly responses: ReadonlyMap<RenderedResponse['type'], RenderedResponse>;
}

/** A key, as decisions need it: no secret, nothing decisions do not read (its ApiKey name stays in the contract). */
export interface KeyEntry {
  readonly id: string;
  /** The plan's name on this stage; looked up in {@link StageCatalog.plans}. */
  readonly plan: string;
  readonly type: 'ApiKey' | 'KeyPair';
  readonly enabled: boolean;
  /** Epoch ms; undefined when the key does not expire. */
  readonly expiresAt: number | undefined;
  readonly customer: string | undefined;
}

/** A value a rotation replaced: accepted until `validUntil` (epoch ms). */
export interface RotatedValue {
  readonly key: KeyEntry;
  readonly validUntil: number;
}

/** What an ApiKey value's hash finds: the key (a current value), or a rotated-out value. */
export type HashEntry = KeyEntry | RotatedValue;

/** Whether a hash entry is a rotated-out value. */
export function isRotated(entry: HashEntry): entry is RotatedValue {
  return 'validUntil' in entry;
}

/** The key a hash entry belongs to. */
export function keyOf(entry: HashEntry): KeyEntry {
  return isRotated(entry) ? entry.key : entry;
}

/** A KeyPair: the key, and its SecretKeys (current first, then a rotated-out one until its end). */
export interface PairEntry {
  readonly key: KeyEntry;
  /** `validUntil` undefined for a current SecretKey. */
  readonly secretKeys: readonly { readonly value: string; readonly validUntil: number | undefined }[];
}

/**
 * What one shard contributed: its hashes, and the hashes and SecretIds it put in the stage's maps, so
 * an unchanged shard is carried over to the next build without parsing.
 */
export interface ShardEntries {
  readonly keysSha256: string;
  readonly secretsSha256: string;
  readonly keyCount: number;
  /** The ApiKey value hashes (the map keys, not copies). */
  readonly hashes: readonly string[];
  /** The KeyPairs' SecretIds. */
  readonly secretIds: readonly string[];
}

/** One API stage's config. */
export interface StageCatalog {
  readonly apiStage: ApiStageId;
  /** `<namespace>/<api>/<stage>`. */
  readonly key: string;
  /** Where it was read from (a file, a directory, an object), to match a later read of the same place. */
  readonly origin: string;
  /** The index's revision: equal revisions are equal configs. */
  readonly revision: string;
  readonly plans: ReadonlyMap<string, PlanEntry>;
  /** ApiKey values by SHA-256 (hex). */
  readonly byHash: ReadonlyMap<string, HashEntry>;
  /** KeyPairs by SecretId. */
  readonly bySecretId: ReadonlyMap<string, PairEntry>;
  readonly keyCount: number;
  /** Per shard, in index order. */
  readonly shards: readonly ShardEntries[];
  /** Quota adjustments of the stage's plans, as the index lists them (applied by `usage/adjustments.ts`). */
  readonly adjustments: readonly RenderedAdjustment[];
}

/** Everything loaded: the stages by key. */
export interface Catalog {
  /** Increases with every swap. */
  readonly generation: number;
  readonly stages: ReadonlyMap<string, StageCatalog>;
  readonly keyCount: number;
}

/** The catalog a decision reads: undefined until a config has been loaded. */
export interface CatalogView {
  /** The current catalog, or undefined when none is loaded yet. Never throws. */
  current(): Catalog | undefined;
}

/** The subject a key's counters are kept under (ADR 0003): the customer for `countBy: Customer`. */
export function subjectOf(plan: PlanEntry, key: KeyEntry): Subject {
  return plan.countBy === 'Customer' && key.customer !== undefined
    ? { kind: 'customer', name: key.customer }
    : { kind: 'key', id: key.id };
}

/**
 * Compiles a rendered plan. Returns a message naming what is wrong (a throttle out of range, a time
 * zone this Node's ICU does not know, a route pattern that does not parse), never quoting secrets.
 */
export function compilePlan(plan: RenderedPlan): PlanEntry | string {
  const where = `plan ${plan.name}`;
  // What the operator reports on the UsagePlan too (contract/src/plan-check.ts).
  const problem = renderedPlanProblem(plan);
  if (problem) return `${where}: ${problem}`;
  if (plan.throttle) {
    const problem = checkBucketLimit(plan.throttle);
    if (problem) return `${where}: throttle: ${problem}`;
  }
  let quota: PlanEntry['quota'];
  if (plan.quota) {
    const spec: PeriodSpec = {
      period: plan.quota.period,
      ...(plan.quota.startDay !== undefined && { startDay: plan.quota.startDay }),
      ...(plan.quota.startWeekday !== undefined && {
        startWeekday: plan.quota.startWeekday,
      }),
      timeZone: plan.quota.timeZone,
    };
    quota = Object.freeze({ limit: plan.quota.limit, spec: sharedSpec(spec) });
  }
  const routes: RouteEntry[] = [];
  for (const r of plan.routes) {
    const path = compilePathPattern(r.path);
    if (!path) return `${where}: route ${r.name}: '${r.path}' is not a route pattern`;
    if (r.throttle) {
      const problem = checkBucketLimit(r.throttle);
      if (problem) return `${where}: route ${r.name}: throttle: ${problem}`;
    }
    routes.push(
      Object.freeze({
        name: r.name,
        methods: compileMethods(r.methods),
        path,
        throttle: r.throttle ? Object.freeze({ ...r.throttle }) : undefined,
        cost: r.cost,
      }),
    );
  }
  return Object.freeze({
    id: plan.id,
    name: plan.name,
    throttle: plan.throttle ? Object.freeze({ ...plan.throttle }) : undefined,
    quota,
    routes: Object.freeze(routes),
    shadow: plan.shadow,
    countBy: plan.countBy,
    alertThresholds: Object.freeze([...plan.alertThresholds]),
    day: sharedSpec({ period: 'DAY', timeZone: plan.quota?.timeZone ?? 'UTC' }),
    responses: new Map(plan.responses.map((r) => [r.type, Object.freeze({ ...r })])),
  });
}

/** Equal period specs as one object: the period cache finds a spec's window by identity. */
const specs = new Map<string, PeriodSpec>();
function sharedSpec(spec: PeriodSpec): PeriodSpec {
  const id = `${spec.period}|${String(spec.startDay)}|${String(spec.startWeekday)}|${spec.timeZone ?? 'UTC'}`;
  let shared = specs.get(id);
  if (shared === undefined) {
    shared = Object.freeze(spec);
    if (specs.size > 10_000) specs.clear();
    specs.set(id, shared);
  }
  return shared;
}

/** Compiles every plan of an index; a message when one does not compile. */
export function compilePlans(index: StageIndex): Map<string, PlanEntry> | string {
  const plans = new Map<string, PlanEntry>();
  for (const p of index.plans) {
    if (plans.has(p.name)) return `two plans are named ${p.name}`;
    const compiled = compilePlan(p);
    if (typeof compiled === 'string') return compiled;
    plans.set(p.name, compiled);
  }
  return plans;
}
