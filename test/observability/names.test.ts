// Every metric the dashboard and the alerts mention is one the enforcer and the operator really
// register, under that name; every metric they register is charted or said not to be; and each alert's
// probe watches exactly the metrics of its expression.
import { describe, expect, it } from 'vitest';
import { allAlerts } from '../../charts/observability/alerts.ts';
import { dashboardQueries, UNCHARTED } from '../../charts/observability/dashboard.ts';
import {
  ENFORCER,
  ENFORCER_PROCESS,
  KNOWN_METRICS,
  OPERATOR,
  OPERATOR_PROCESS,
} from '../../charts/observability/names.ts';
import { baseMetric, metricsIn } from '../../charts/observability/promql.ts';
import { EnforcerMetrics } from '../../enforcer/src/telemetry/metrics.ts';
import { makeMetrics } from '../../operator/src/telemetry/metrics.ts';

const known = new Set(Object.values(KNOWN_METRICS).flat());

/** Every expression the generated files hold, with where it is. */
function expressions(): { where: string; expr: string }[] {
  return [
    ...dashboardQueries(),
    ...allAlerts().flatMap((a) => [
      { where: `alert ${a.alert}`, expr: a.expr },
      { where: `probe of ${a.alert}`, expr: a.probe },
    ]),
  ];
}

/** The names a registry serves (prom-client). */
function registered(registry: { getMetricsAsArray(): { name: string }[] }): Set<string> {
  return new Set(registry.getMetricsAsArray().map((m) => m.name));
}

describe('the metric names of the dashboard and the alerts', () => {
  it('are all known: every name a query mentions is in the enforcer or operator lists', () => {
    const unknown = expressions().flatMap(({ where, expr }) =>
      metricsIn(expr)
        .filter((name) => !known.has(baseMetric(name, known)))
        .map((name) => `${where}: ${name}`),
    );
    expect(unknown).toEqual([]);
  });

  it("are the ones the enforcer's registry registers", () => {
    const names = registered(new EnforcerMetrics(true, true).registry);
    const missing = [...Object.values(ENFORCER), ...Object.values(ENFORCER_PROCESS)].filter(
      (n) => !names.has(n),
    );
    expect(missing, `not registered by EnforcerMetrics: ${missing.join(', ')}`).toEqual([]);
  });

  it("are the ones the operator's registry registers", () => {
    const names = registered(makeMetrics().registry);
    const missing = [...Object.values(OPERATOR), ...Object.values(OPERATOR_PROCESS)].filter(
      (n) => !names.has(n),
    );
    expect(missing, `not registered by the operator's makeMetrics: ${missing.join(', ')}`).toEqual([]);
  });

  it('cover every Keystile metric: each is charted, or listed as uncharted with a reason', () => {
    const used = new Set(
      expressions().flatMap(({ expr }) => metricsIn(expr).map((n) => baseMetric(n, known))),
    );
    const exported = [...Object.values(ENFORCER), ...Object.values(OPERATOR)];
    const forgotten = exported.filter((n) => !used.has(n) && UNCHARTED[n] === undefined);
    expect(forgotten, `metrics on no panel and not in UNCHARTED: ${forgotten.join(', ')}`).toEqual([]);
    const charted = Object.keys(UNCHARTED).filter((n) => used.has(n));
    expect(charted, 'listed as uncharted but on a panel').toEqual([]);
  });

  it("give each alert a probe on exactly its expression's metrics", () => {
    const differ = allAlerts()
      .filter((a) => metricsIn(a.expr).join() !== metricsIn(a.probe).join())
      .map((a) => `${a.alert}: expr ${metricsIn(a.expr).join()} vs probe ${metricsIn(a.probe).join()}`);
    expect(differ).toEqual([]);
  });

  it('read metric names out of queries, not label values or functions', () => {
    expect(
      metricsIn(
        'sum by (reason) (rate(keystile_decisions_total{reason="keystile_fake", job=~"up"}[5m])) and on (job) up == 0',
      ),
    ).toEqual(['keystile_decisions_total', 'up']);
    expect(metricsIn('histogram_quantile(0.5, sum by (le) (rate(keystile_x_seconds_bucket[1m])))')).toEqual([
      'keystile_x_seconds_bucket',
    ]);
    expect(baseMetric('keystile_decision_duration_seconds_bucket', known)).toBe(ENFORCER.decisionSeconds);
  });
});
