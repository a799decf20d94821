/** The operator's own metrics (prom-client), on its health port's /metrics. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The `verb` values of keystile_operator_writes_total: what the writer does to an object. */
export const WRITE_VERBS = Object.freeze(['create', 'update', 'delete', 'status', 'label'] as const);

/** A write's verb. */
export type WriteVerb = (typeof WRITE_VERBS)[number];

/** The operator's metrics. Names are part of the contract of the dashboards and alerts. */
export interface OperatorMetrics {
  readonly registry: Registry;
  readonly reconciles: Counter<'kind' | 'result'>;
  readonly reconcileSeconds: Histogram<'kind'>;
  /** How long rendering a namespace took (in memory, before any write), by mode: full or incremental. */
  readonly renderSeconds: Histogram<'mode'>;
  readonly queueDepth: Gauge;
  readonly writes: Counter<'resource' | 'verb'>;
  readonly renderedBytes: Counter<'resource'>;
  readonly leader: Gauge;
  readonly renderedKeys: Gauge<'namespace'>;
  /** Usage polls by result: ok, partial (a source failed), error (no counter could be read). */
  readonly usagePolls: Counter<'result'>;
  /** Usage sources that failed, by source: redis, endpoints. */
  readonly usagePollErrors: Counter<'source'>;
  readonly usageLastPoll: Gauge;
  /** ApiKey usage status writes by result: written, unchanged, gone, error. */
  readonly usageStatusWrites: Counter<'result'>;
  readonly usagePendingWrites: Gauge;
  readonly usageOldestPendingSeconds: Gauge;
  readonly usageAlerts: Counter<'threshold'>;
  readonly keyQuotaUsed: Gauge<'namespace' | 'apikey' | 'plan'>;
  readonly keyQuotaLimit: Gauge<'namespace' | 'apikey' | 'plan'>;
  readonly planQuotaUsed: Gauge<'namespace' | 'plan'>;
}

/** Registers the metrics on a new registry. */
export function makeMetrics(): OperatorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'keystile_operator_' });
  return {
    registry,
    reconciles: new Counter({
      name: 'keystile_operator_reconciles_total',
      help: 'Reconciles by kind (namespace, key) and result (ok, error).',
      labelNames: ['kind', 'result'],
      registers: [registry],
    }),
    reconcileSeconds: new Histogram({
      name: 'keystile_operator_reconcile_duration_seconds',
      help: 'How long a reconcile took.',
      labelNames: ['kind'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    renderSeconds: new Histogram({
      name: 'keystile_operator_render_duration_seconds',
      help: 'How long rendering a namespace took in memory, by mode (full, incremental: only what changed).',
      labelNames: ['mode'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'keystile_operator_queue_depth',
      help: 'Keys waiting in the work queue.',
      registers: [registry],
    }),
    writes: new Counter({
      name: 'keystile_operator_writes_total',
      help: `Writes to the API server by resource and verb (${WRITE_VERBS.join(', ')}).`,
      labelNames: ['resource', 'verb'],
      registers: [registry],
    }),
    renderedBytes: new Counter({
      name: 'keystile_operator_rendered_bytes_written_total',
      help: 'Bytes of rendered contract data written (ConfigMap and Secret data, as stored).',
      labelNames: ['resource'],
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'keystile_operator_leader',
      help: '1 while this replica holds the lease.',
      registers: [registry],
    }),
    renderedKeys: new Gauge({
      name: 'keystile_operator_rendered_keys',
      help: 'Keys rendered, summed over the stages of a namespace.',
      labelNames: ['namespace'],
      registers: [registry],
    }),
    usagePolls: new Counter({
      name: 'keystile_operator_usage_polls_total',
      help: 'Usage polls (leader only) by result: ok, partial (a source failed), error (nothing read).',
      labelNames: ['result'],
      registers: [registry],
    }),
    usagePollErrors: new Counter({
      name: 'keystile_operator_usage_poll_errors_total',
      help: 'Usage sources that failed a poll, by source (redis, endpoints: one per enforcer not answering).',
      labelNames: ['source'],
      registers: [registry],
    }),
    usageLastPoll: new Gauge({
      name: 'keystile_operator_usage_last_poll_timestamp_seconds',
      help: 'When the last usage poll that read counters ended (Unix seconds).',
      registers: [registry],
    }),
    usageStatusWrites: new Counter({
      name: 'keystile_operator_usage_status_writes_total',
      help: 'ApiKey status writes for usage, by result (written, unchanged, gone, error); at most --usage-writes-per-second.',
      labelNames: ['result'],
      registers: [registry],
    }),
    usagePendingWrites: new Gauge({
      name: 'keystile_operator_usage_pending_status_writes',
      help: 'ApiKeys whose usage changed and whose status is not written yet.',
      registers: [registry],
    }),
    usageOldestPendingSeconds: new Gauge({
      name: 'keystile_operator_usage_oldest_pending_seconds',
      help: 'How long the stalest pending usage status write has waited.',
      registers: [registry],
    }),
    usageAlerts: new Counter({
      name: 'keystile_operator_usage_alerts_total',
      help: 'Usage alert Events recorded (a plan threshold crossed, once per key and period), by threshold.',
      labelNames: ['threshold'],
      registers: [registry],
    }),
    keyQuotaUsed: new Gauge({
      name: 'keystile_operator_key_quota_used',
      help: 'Quota used this period by an ApiKey on a plan (the counter of its plan and subject), at the last usage poll.',
      labelNames: ['namespace', 'apikey', 'plan'],
      registers: [registry],
    }),
    keyQuotaLimit: new Gauge({
      name: 'keystile_operator_key_quota_limit',
      help: "An ApiKey's effective quota limit this period on a plan: the plan's limit plus what adjustments granted.",
      labelNames: ['namespace', 'apikey', 'plan'],
      registers: [registry],
    }),
    planQuotaUsed: new Gauge({
      name: 'keystile_operator_plan_quota_used',
      help: "Quota used this period on a plan, summed over its keys' counters (each counter once).",
      labelNames: ['namespace', 'plan'],
      registers: [registry],
    }),
  };
}

/**
 * What a replica reports once it stops leading (it lost the Lease, or no longer runs the queues): not the
 * leader, and nothing queued, since its queues are gone. A depth left as it was would stay exported,
 * frozen, beside the new leader's. (The usage poller clears its own gauges when it stops.)
 */
export function stoppedLeading(metrics: OperatorMetrics): void {
  metrics.leader.set(0);
  metrics.queueDepth.set(0);
}
