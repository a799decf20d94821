/**
 * The metric names and label values the dashboard and the alerts use, taken from where the metrics are
 * defined: the enforcer's METRIC_NAMES and reason catalog, and the operator's metric names. A test
 * (test/observability/names.test.ts) checks every name here against what the real registries register,
 * every name a query mentions against these lists, and that every metric is charted or said not to be,
 * so a renamed or new metric fails the tests, not a dashboard in production.
 */
import { Reason, REASONS } from '../../enforcer/src/errors.ts';
import { FALLBACK_POLICIES } from '../../enforcer/src/store/redis-loss-policy.ts';
import { METRIC_NAMES } from '../../enforcer/src/telemetry/metrics.ts';
import { makeMetrics, type OperatorMetrics, WRITE_VERBS } from '../../operator/src/telemetry/metrics.ts';

/** The enforcer's metrics (its admin port's /metrics). */
export const ENFORCER: typeof METRIC_NAMES = METRIC_NAMES;

/** The operator's metrics, by the field of {@link OperatorMetrics} that holds each. */
export type OperatorMetricNames = Readonly<Record<Exclude<keyof OperatorMetrics, 'registry'>, string>>;

/** The operator's metrics (its health port's /metrics), read from the metrics it registers. */
export const OPERATOR: OperatorMetricNames = operatorNames();

function operatorNames(): OperatorMetricNames {
  const names: Record<string, string> = {};
  for (const [field, metric] of Object.entries(makeMetrics())) {
    if (field === 'registry') continue;
    // prom-client's metric objects carry their name at run time; its types do not declare it.
    const name: unknown = (metric as { name?: unknown }).name;
    if (typeof name !== 'string') throw new Error(`the operator's metric ${field} has no name`);
    names[field] = name;
  }
  return Object.freeze(names);
}

/** The `verb` values of the operator's keystile_operator_writes_total. */
export const OPERATOR_WRITE_VERBS: readonly string[] = WRITE_VERBS;

/** Prometheus's own per-target series. */
export const PROMETHEUS = Object.freeze({ up: 'up' });

/**
 * The target label that says which part of Keystile a scrape target is, so that a target is known for
 * an enforcer before it has ever answered a scrape. The chart's ServiceMonitor copies it from its
 * Services' `app.kubernetes.io/component` (gateway, operator); the docs' PodMonitor and scrape config
 * for `keystile inject` sidecars set `sidecar` (docs/observability.md, Scraping).
 */
export const TARGET_COMPONENT = Object.freeze({
  label: 'keystile_component',
  /** The values of an enforcer's target: the chart's gateway pods, and injected sidecars. */
  enforcers: Object.freeze(['gateway', 'sidecar']),
});

/** prom-client's process metrics as the enforcer exports them (no prefix). */
export const ENFORCER_PROCESS = Object.freeze({
  residentMemory: 'process_resident_memory_bytes',
  cpuSeconds: 'process_cpu_seconds_total',
  startTime: 'process_start_time_seconds',
});

/** prom-client's process metrics as the operator exports them (prefixed `keystile_operator_`). */
export const OPERATOR_PROCESS = Object.freeze({
  residentMemory: 'keystile_operator_process_resident_memory_bytes',
  cpuSeconds: 'keystile_operator_process_cpu_seconds_total',
});

/** Every `decision` label value of `keystile_decisions_total` whose answer lets the request through. */
export const PASSING_DECISIONS: readonly string[] = decisions((status) => status === 200);

/** Every `decision` label value of a denial (403, 429, 503). */
export const DENYING_DECISIONS: readonly string[] = decisions((status) => status !== 200);

/** The decision labels of throttling, enforced or in shadow mode. */
export const THROTTLE_DECISIONS: readonly string[] = Object.freeze([
  REASONS.Throttled.decision,
  REASONS.ShadowThrottled.decision,
]);

/** The decision labels of an exhausted quota, enforced or in shadow mode. */
export const QUOTA_DECISIONS: readonly string[] = Object.freeze([
  REASONS.QuotaExceeded.decision,
  REASONS.ShadowQuotaExceeded.decision,
]);

/**
 * The `policy` values of keystile_store_fallback_decisions_total: the Redis-loss policies that decide in
 * Redis's place. (`closed` decides nothing; an enforcer built before it stopped counting `closed` there
 * still exports its failed checks as policy="closed": the queries match these values only.)
 */
export const FALLBACK_POLICY_VALUES: readonly string[] = FALLBACK_POLICIES;

/** The reason of a check naming an API stage the enforcer does not serve (403). */
export const UNKNOWN_STAGE_REASON: string = Reason.UnknownStage;

/** The decision label of a check allowed because it could not be decided (`--fail-open`). */
export const FAIL_OPEN_DECISION: string = REASONS.FailOpen.decision;

/** The decision label of a fail-closed answer (503). */
export const UNAVAILABLE_DECISION: string = REASONS.NoConfig.decision;

/** The distinct decision labels of the reasons whose status matches. */
function decisions(match: (status: number) => boolean): readonly string[] {
  const labels = new Set<string>();
  for (const info of Object.values(REASONS)) if (match(info.status)) labels.add(info.decision);
  return Object.freeze([...labels]);
}

/** Every metric name the observability files may use, by the component that exports it. */
export const KNOWN_METRICS: Readonly<Record<'enforcer' | 'operator' | 'prometheus', readonly string[]>> =
  Object.freeze({
    enforcer: [...Object.values(ENFORCER), ...Object.values(ENFORCER_PROCESS)],
    operator: [...Object.values(OPERATOR), ...Object.values(OPERATOR_PROCESS)],
    prometheus: Object.values(PROMETHEUS),
  });
