/**
 * The enforcer's Prometheus metrics (prom-client), in a registry of their own. Names carry the
 * `keystile_` prefix; labels name key ids only, never key values, and the key-id label can be turned
 * off (`--metrics-key-id false`) for very many keys. The decision path pays for one counter increment
 * and one histogram observation: label children are cached per label set.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Catalog } from '../catalog/catalog.ts';
import type { Decision } from '../decision/answers.ts';
import { ConfigError, REASONS } from '../errors.ts';
import {
  FALLBACK_POLICIES,
  type FallbackPolicy,
  type StoreOp,
  type StoreTelemetry,
} from '../store/redis-loss-policy.ts';

/** Every counter store operation the store errors metric names. */
const STORE_OPS: readonly StoreOp[] = ['consume', 'adjust', 'read', 'reconcile'];

/** The metric names, in one place (docs/enforcer.md lists them). */
export const METRIC_NAMES = Object.freeze({
  decisions: 'keystile_decisions_total',
  decisionSeconds: 'keystile_decision_duration_seconds',
  checkErrors: 'keystile_check_errors_total',
  configLoaded: 'keystile_config_loaded',
  configGeneration: 'keystile_config_generation',
  configStages: 'keystile_config_stages',
  configKeys: 'keystile_config_keys',
  configRevision: 'keystile_config_revision_info',
  configReloadErrors: 'keystile_config_reload_errors_total',
  configLastReload: 'keystile_config_last_reload_success_timestamp_seconds',
  configLastReloadError: 'keystile_config_last_reload_error_timestamp_seconds',
  configLoadSeconds: 'keystile_config_load_duration_seconds',
  adjustmentsApplied: 'keystile_adjustments_applied_total',
  storeErrors: 'keystile_store_errors_total',
  storeAvailable: 'keystile_store_available',
  storeFallbackDecisions: 'keystile_store_fallback_decisions_total',
  quotaAlerts: 'keystile_quota_alerts_total',
  decisionSeriesResets: 'keystile_decision_series_resets_total',
});

/**
 * The most label sets keystile_decisions_total keeps. A decision with a new one past it starts every
 * decision series over (Prometheus reads it as counter resets; series not counted again go stale): a
 * bound on memory with very many keys, which `--metrics-key-id false` avoids (docs/enforcer.md).
 */
export const MAX_DECISION_SERIES = 200_000;

/** Sub-millisecond buckets: a decision takes tens of microseconds. */
export const DECISION_BUCKETS: readonly number[] = Object.freeze([
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
]);

/** The map under `key` of `map`, made when absent. */
function lookup<V>(map: Map<string, Map<string, V>>, key: string): Map<string, V> {
  let inner = map.get(key);
  if (inner === undefined) {
    inner = new Map();
    map.set(key, inner);
  }
  return inner;
}

/** The transports, as the `transport` label says them. */
export type Transport = 'http' | 'grpc';

/** One label set of the decision counter, counted in place. */
interface DecisionCount {
  readonly labels: Record<string, string>;
  value: number;
}

/** A latency histogram counted in place: cumulative buckets are summed only when scraped. */
interface Latencies {
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A metric prom-client's registry can serve, counted by the enforcer itself: the decision path pays one
 * Map lookup and an increment instead of prom-client's label hashing, and the work of exposition
 * happens at scrape time.
 */
interface CustomMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  get(): {
    name: string;
    help: string;
    type: string;
    aggregator: 'sum';
    values: { labels: Record<string, string | number>; value: number; metricName?: string }[];
  };
}

/** The enforcer's metrics. */
export class EnforcerMetrics implements StoreTelemetry {
  /** The registry /metrics serves. */
  readonly registry = new Registry();
  readonly #withKeyId: boolean;

  readonly #checkErrors: Counter;
  readonly #loaded: Gauge;
  readonly #generation: Gauge;
  readonly #stages: Gauge;
  readonly #keys: Gauge;
  readonly #revision: Gauge;
  readonly #reloadErrors: Counter;
  readonly #lastReloadError: Gauge;
  readonly #lastReload: Gauge;
  readonly #loadSeconds: Histogram;
  readonly #adjustmentsApplied: Counter;
  readonly #decisionSeriesResets: Counter;
  readonly #storeErrors: Counter;
  readonly #storeAvailable: Gauge;
  readonly #storeFallback: Counter;
  readonly #quotaAlerts: Counter;
  readonly #counts = new Set<DecisionCount>();
  readonly #byReason = new Map<string, Map<string, Map<string, Map<string, DecisionCount>>>>();
  readonly #latencies = new Map<Transport, Latencies>();
  readonly #stageLabels = new Map<string, { namespace: string; api: string; stage: string }>();

  /** `withKeyId`: label decisions with the key id. `defaults`: also the process and Node.js metrics. */
  constructor(withKeyId: boolean, defaults = true) {
    this.#withKeyId = withKeyId;
    const registers = [this.registry];
    const counts = this.#counts;
    const decisions: CustomMetric = {
      name: METRIC_NAMES.decisions,
      help: 'Checks decided, by API stage, plan, key id (unless turned off), decision and reason.',
      type: 'counter',
      aggregator: 'sum',
      get: () => ({
        name: decisions.name,
        help: decisions.help,
        type: 'counter',
        aggregator: 'sum',
        values: [...counts].map((c) => ({ labels: c.labels, value: c.value })),
      }),
    };
    const latencies = this.#latencies;
    const duration: CustomMetric = {
      name: METRIC_NAMES.decisionSeconds,
      help: 'Time from a check request parsed to its answer ready, in seconds.',
      type: 'histogram',
      aggregator: 'sum',
      get: () => {
        const values: ReturnType<CustomMetric['get']>['values'] = [];
        for (const [transport, l] of latencies) {
          let cumulative = 0;
          DECISION_BUCKETS.forEach((le, i) => {
            cumulative += l.counts[i] ?? 0;
            values.push({
              labels: { le, transport },
              value: cumulative,
              metricName: `${duration.name}_bucket`,
            });
          });
          values.push({
            labels: { le: '+Inf', transport },
            value: l.count,
            metricName: `${duration.name}_bucket`,
          });
          values.push({ labels: { transport }, value: l.sum, metricName: `${duration.name}_sum` });
          values.push({ labels: { transport }, value: l.count, metricName: `${duration.name}_count` });
        }
        return { name: duration.name, help: duration.help, type: 'histogram', aggregator: 'sum', values };
      },
    };
    this.registry.registerMetric(decisions as never);
    this.registry.registerMetric(duration as never);
    this.#checkErrors = new Counter({
      name: METRIC_NAMES.checkErrors,
      help: 'Check requests the transport could not decide or answer normally, by class (malformed, error, decide, send).',
      labelNames: ['transport', 'class'],
      registers,
    });
    this.#loaded = new Gauge({
      name: METRIC_NAMES.configLoaded,
      help: '1 once a config is loaded (the enforcer is ready), else 0.',
      registers,
    });
    this.#generation = new Gauge({
      name: METRIC_NAMES.configGeneration,
      help: 'How many configs have been swapped in since start.',
      registers,
    });
    this.#stages = new Gauge({ name: METRIC_NAMES.configStages, help: 'API stages loaded.', registers });
    this.#keys = new Gauge({
      name: METRIC_NAMES.configKeys,
      help: 'Keys loaded, by API stage.',
      labelNames: ['namespace', 'api', 'stage'],
      registers,
    });
    this.#revision = new Gauge({
      name: METRIC_NAMES.configRevision,
      help: "The revision of each loaded API stage's config (value 1).",
      labelNames: ['namespace', 'api', 'stage', 'revision'],
      registers,
    });
    this.#reloadErrors = new Counter({
      name: METRIC_NAMES.configReloadErrors,
      help: 'Config loads refused (the last good config keeps serving), by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.#lastReload = new Gauge({
      name: METRIC_NAMES.configLastReload,
      help: 'When a config load last ended with nothing refused: a new config swapped in, or the one in use confirmed current (Unix seconds; 0: never, as after a first load that refused a stage).',
      registers,
    });
    this.#lastReloadError = new Gauge({
      name: METRIC_NAMES.configLastReloadError,
      help: 'When a config load last refused something (Unix seconds; 0: never). Later than the last success: the enforcer serves an older config than it was given.',
      registers,
    });
    this.#loadSeconds = new Histogram({
      name: METRIC_NAMES.configLoadSeconds,
      help: 'Time to read, validate and index a config, in seconds.',
      buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#decisionSeriesResets = new Counter({
      name: METRIC_NAMES.decisionSeriesResets,
      help: `Times keystile_decisions_total reached ${String(MAX_DECISION_SERIES)} label sets and started every decision series over (turn the key id label off with very many keys).`,
      registers,
    });
    this.#adjustmentsApplied = new Counter({
      name: METRIC_NAMES.adjustmentsApplied,
      help: 'Quota adjustments (UsageAdjustments) this enforcer applied to its counter store, by plan.',
      labelNames: ['plan'],
      registers,
    });
    this.#storeErrors = new Counter({
      name: METRIC_NAMES.storeErrors,
      help: 'Counter store (Redis) operations that failed, by operation (consume, adjust, read, reconcile).',
      labelNames: ['op'],
      registers,
    });
    this.#storeAvailable = new Gauge({
      name: METRIC_NAMES.storeAvailable,
      help: 'Whether the counter store is reachable (1) or the --redis-unavailable policy decides (0).',
      registers,
    });
    this.#storeFallback = new Counter({
      name: METRIC_NAMES.storeFallbackDecisions,
      help: 'Decisions made by the --redis-unavailable policy in place of Redis while it was away, by policy (open, local; closed decides nothing: its checks are unavailable decisions).',
      labelNames: ['policy'],
      registers,
    });
    this.#quotaAlerts = new Counter({
      name: METRIC_NAMES.quotaAlerts,
      help: 'Alert thresholds (percent of a quota) crossed, each once per counter and period, by the stage where it happened, plan, key id (unless turned off) and threshold.',
      labelNames: ['namespace', 'api', 'stage', 'plan', 'key_id', 'threshold'],
      registers,
    });
    this.#storeAvailable.set(1);
    this.#loaded.set(0);
    // Counters whose label values are known start at 0, so a first failure is an increase that
    // `increase()` and `rate()` can see (a series born at 1 looks like no change).
    for (const reason of Object.values(ConfigError)) this.#reloadErrors.inc({ reason }, 0);
    for (const op of STORE_OPS) this.#storeErrors.inc({ op }, 0);
    for (const policy of FALLBACK_POLICIES) this.#storeFallback.inc({ policy }, 0);
    if (defaults) collectDefaultMetrics({ register: this.registry });
  }

  /** Counts a decision (and the alert thresholds it crossed) and observes its duration (seconds). */
  decided(decision: Decision, transport: Transport, seconds: number): void {
    if (decision.crossed !== undefined) this.#alerted(decision, decision.crossed);
    const keyId = this.#withKeyId ? (decision.keyId ?? '') : '';
    // Nested maps over strings the catalog shares (their hashes are cached): no key string to build.
    const byStage = lookup(this.#byReason, decision.reason);
    const byPlan = lookup(byStage, decision.stage ?? '');
    const byKey = lookup(byPlan, decision.plan ?? '');
    const known = byKey.get(keyId);
    if (known !== undefined) known.value++;
    else {
      // A bound on memory for label sets (a flood of unknown keys adds none: they have no key id).
      if (this.#counts.size >= MAX_DECISION_SERIES) {
        this.#counts.clear();
        this.#byReason.clear();
        this.#decisionSeriesResets.inc();
      }
      const count: DecisionCount = {
        labels: {
          ...this.#stage(decision.stage),
          plan: decision.plan ?? '',
          key_id: keyId,
          decision: REASONS[decision.reason].decision,
          reason: decision.reason,
        },
        value: 1,
      };
      byKey.set(keyId, count);
      this.#counts.add(count);
    }
    let l = this.#latencies.get(transport);
    if (l === undefined) {
      l = { counts: new Float64Array(DECISION_BUCKETS.length), sum: 0, count: 0 };
      this.#latencies.set(transport, l);
    }
    let i = 0;
    while (i < DECISION_BUCKETS.length && seconds > (DECISION_BUCKETS[i] ?? Infinity)) i++;
    if (i < DECISION_BUCKETS.length) l.counts[i] = (l.counts[i] ?? 0) + 1;
    l.sum += seconds;
    l.count++;
  }

  /** Counts a check the transport could not decide normally. */
  checkError(transport: Transport, errorClass: string): void {
    this.#checkErrors.inc({ transport, class: errorClass });
  }

  /** Records a swapped-in catalog. */
  swapped(catalog: Catalog, loadSeconds: number): void {
    this.#loaded.set(1);
    this.#generation.set(catalog.generation);
    this.#stages.set(catalog.stages.size);
    this.#keys.reset();
    this.#revision.reset();
    for (const s of catalog.stages.values()) {
      const labels = { namespace: s.apiStage.namespace, api: s.apiStage.api, stage: s.apiStage.stage };
      this.#keys.set(labels, s.keyCount);
      this.#revision.set({ ...labels, revision: s.revision }, 1);
    }
    this.#loadSeconds.observe(loadSeconds);
  }

  /** Records a config load that refused nothing: the config in use is the one given, as of now. */
  upToDate(nowSeconds: number): void {
    this.#lastReload.set(nowSeconds);
  }

  /** Counts a quota adjustment applied (not one found already applied). `plan`: the plan's id. */
  adjustmentApplied(plan: string): void {
    this.#adjustmentsApplied.inc({ plan });
  }

  /** Counts a failed counter store operation. */
  storeError(op: StoreOp): void {
    this.#storeErrors.inc({ op });
  }

  /** Records whether the counter store is reachable. */
  storeAvailable(up: boolean): void {
    this.#storeAvailable.set(up ? 1 : 0);
  }

  /** Counts a decision the loss policy made while the store was away. */
  storeFallback(policy: FallbackPolicy): void {
    this.#storeFallback.inc({ policy });
  }

  #alerted(decision: Decision, thresholds: readonly number[]): void {
    const labels = {
      ...this.#stage(decision.stage),
      plan: decision.plan ?? '',
      key_id: this.#withKeyId ? (decision.keyId ?? '') : '',
    };
    for (const t of thresholds) this.#quotaAlerts.inc({ ...labels, threshold: String(t) });
  }

  /** Counts a refused config load. */
  refused(reason: ConfigError, nowSeconds: number): void {
    this.#reloadErrors.inc({ reason });
    this.#lastReloadError.set(nowSeconds);
  }

  #stage(key: string | undefined): { namespace: string; api: string; stage: string } {
    const k = key ?? '';
    let labels = this.#stageLabels.get(k);
    if (labels === undefined) {
      const [namespace = '', api = '', stage = ''] = k.split('/');
      labels = { namespace, api, stage };
      this.#stageLabels.set(k, labels);
    }
    return labels;
  }
}
