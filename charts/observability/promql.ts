/**
 * Small helpers for writing PromQL in TypeScript: the dashboard's template-variable filters, regex
 * alternations of label values, and reading the metric names a query mentions.
 */
import { ENFORCER, ENFORCER_PROCESS, OPERATOR, PROMETHEUS } from './names.ts';

/** The filter of the API-stage variables, for metrics labelled with an API stage. */
export const STAGE_FILTER = 'namespace=~"$namespace", api=~"$api", stage=~"$stage"';

/**
 * The filter of the plan variable. The enforcer labels decisions with the plan's id (`namespace/name`);
 * the variable holds the name (its values are the ids with the namespace cut off), so this matches an
 * id or a bare name. With "All" (`.*`) it also matches series with no plan (an unknown key has none).
 */
export const PLAN_FILTER = 'plan=~"(.+/)?$plan"';

/** The filter of the namespace variable alone. */
export const NAMESPACE_FILTER = 'namespace=~"$namespace"';

/** Grafana's rate window: at least four scrape intervals, whatever the zoom. */
export const RATE = '$__rate_interval';

/** Grafana's whole time range, for instant queries that total it. */
export const RANGE = '$__range';

/**
 * `expr` only on the operator replica that holds the Lease. Only the leader polls usage; a replica that
 * lost the Lease may still export the quota gauges of its last poll, frozen, beside the new leader's.
 */
export function onLeader(expr: string): string {
  return `${expr} and on (job, instance) ${OPERATOR.leader} == 1`;
}

/**
 * Per enforcer, since when its config has been complete: the time of its last config load that refused
 * nothing, or, if none ever has (its timestamp is 0: a first load that swapped some stages in and refused
 * another), the time it started. `time() -` this is how long it has served an incomplete config, never
 * the time since 1970.
 */
export function completeSince(): string {
  return `(${ENFORCER.configLastReload} > 0 or on (job, instance) ${ENFORCER_PROCESS.startTime})`;
}

/**
 * Whether a counter counted anything within `window`: it increased, or its series was born within the
 * window, counting, while its target was already being scraped. prom-client creates a labelled series at
 * its first count, with that count as its first sample, so `increase()` alone never sees a threshold
 * crossed once per period. A series with fewer samples in the window than its target has successful
 * scrapes (`up` is 1 on those, 0 on failed ones, so their sum counts them) was born in it; one that was
 * there from the target's first scrape in the window, or across a failed scrape, a restart or a gap in
 * Prometheus's data, is not news. A series born at 0 (a pre-initialised one) counted nothing.
 *
 * For counters the process pre-initialises at 0 (the enforcer's config reload errors), `increase() > 0`
 * alone is the test: their first count is an increase.
 *
 * Its value: the (extrapolated) increase, or the whole count of a series born in the window.
 */
export function countedWithin(counter: string, window: string): string {
  return `(increase(${counter}[${window}]) > 0 or (${counter} > 0 and count_over_time(${counter}[${window}]) < on (job, instance) group_left sum_over_time(${PROMETHEUS.up}[${window}])))`;
}

/** A regex alternation matching exactly these label values. */
export function oneOf(values: readonly string[]): string {
  return values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
}

/** `metric{matchers}`, or the bare metric name without matchers. */
export function sel(metric: string, ...matchers: readonly string[]): string {
  const inner = matchers.filter((m) => m !== '').join(', ');
  return inner === '' ? metric : `${metric}{${inner}}`;
}

/** The series suffixes a histogram exposes. */
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'] as const;

/**
 * The metric names a query mentions: every `keystile_*`, `process_*` and `nodejs_*` name, and `up`.
 * Label names and values inside braces and quotes are skipped, so `{reason="keystile_x"}` names no
 * metric.
 */
export function metricsIn(expr: string): string[] {
  const bare = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, '{}');
  const names = new Set<string>();
  const pattern = /(?<![\w:])((?:keystile|process|nodejs)_[a-z0-9_]+|up)(?![\w:(])/g;
  for (const m of bare.matchAll(pattern)) names.add(m[1] ?? '');
  return [...names].sort();
}

/** The metric a series name belongs to: a histogram's `_bucket`, `_sum` and `_count` are its own. */
export function baseMetric(series: string, known: ReadonlySet<string>): string {
  if (known.has(series)) return series;
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (series.endsWith(suffix) && known.has(series.slice(0, -suffix.length))) {
      return series.slice(0, -suffix.length);
    }
  }
  return series;
}

/** Values for the dashboard's variables, as Grafana substitutes them into a query. */
export interface VariableValues {
  readonly namespace: string;
  readonly api: string;
  readonly stage: string;
  readonly plan: string;
  /** `$__rate_interval`, e.g. `1m`. */
  readonly rateInterval: string;
  /** `$__range`, e.g. `1h`. */
  readonly range: string;
}

/** A query with the dashboard's variables replaced by `values` (single values, or `.*` for All). */
export function substitute(expr: string, values: VariableValues): string {
  return expr
    .replaceAll('$__rate_interval', values.rateInterval)
    .replaceAll('$__range', values.range)
    .replace(/\$(namespace|api|stage|plan)\b/g, (_m, name: 'namespace' | 'api' | 'stage' | 'plan') => {
      return values[name];
    });
}
