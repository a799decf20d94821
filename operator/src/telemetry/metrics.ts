/** The operator's own metrics (prom-client), on its health port's /metrics. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The operator's metrics. Names are part of the contract of the dashboards and alerts. */
export interface OperatorMetrics {
  readonly registry: Registry;
  readonly reconciles: Counter<'kind' | 'result'>;
  readonly reconcileSeconds: Histogram<'kind'>;
  readonly queueDepth: Gauge;
  readonly writes: Counter<'resource' | 'verb'>;
  readonly renderedBytes: Counter<'resource'>;
  readonly leader: Gauge;
  readonly renderedKeys: Gauge<'namespace'>;
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
    queueDepth: new Gauge({
      name: 'keystile_operator_queue_depth',
      help: 'Keys waiting in the work queue.',
      registers: [registry],
    }),
    writes: new Counter({
      name: 'keystile_operator_writes_total',
      help: 'Writes to the API server by resource and verb (create, update, delete, status).',
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
  };
}
