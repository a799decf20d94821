// What some dashboard panels show, evaluated by Debian's promtool (`promql_expr_test`) on input series:
// the panels whose queries are easy to get subtly wrong (a timestamp of 0 meaning "never", a counter's
// value over a range, a gauge a follower left behind). Each case is the panel's own query, its variables
// filled in as Grafana would, at a given time, with the samples it must return.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ROWS } from '../../charts/observability/dashboard.ts';
import { substitute, type VariableValues } from '../../charts/observability/promql.ts';
import { binaries } from '../ground/paths.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'keystile-panels-'));

/** One evaluation of one query of a panel. */
interface PanelCase {
  readonly name: string;
  /** The panel's title, and which of its queries (0: the first). */
  readonly panel: string;
  readonly query?: number;
  /** promtool's expanding notation, one sample a minute. */
  readonly series: Readonly<Record<string, string>>;
  readonly at: string;
  /** `$__range` for instant queries over the time range. */
  readonly range?: string;
  /** The samples the query returns: labels and value (none: it returns nothing). */
  readonly samples: readonly { readonly labels: string; readonly value: number }[];
}

const E1 = 'job="keystile-enforcer", instance="10.0.0.1:9190"';
const E2 = 'job="keystile-enforcer", instance="10.0.0.2:9190"';
const STAGE = 'namespace="shop", api="orders", stage="prod", plan="shop/gold"';
const OA = 'job="keystile-operator", instance="10.0.1.1:8081"';
const OB = 'job="keystile-operator", instance="10.0.1.2:8081"';

const CASES: readonly PanelCase[] = [
  {
    // E1 loaded in full at 2m. E2 started at 5m and its first load refused a stage (its last load that
    // refused nothing: never, 0): its config has been incomplete since it started, not since 1970.
    name: 'the age of the last good reload counts from the start of an enforcer that never loaded in full',
    panel: 'Age of the last good reload',
    series: {
      [`process_start_time_seconds{${E1}}`]: '0x30',
      [`keystile_config_loaded{${E1}}`]: '1x30',
      [`keystile_config_last_reload_success_timestamp_seconds{${E1}}`]: '120x30',
      [`process_start_time_seconds{${E2}}`]: '_x5 300x25',
      [`keystile_config_loaded{${E2}}`]: '_x5 1x25',
      [`keystile_config_last_reload_success_timestamp_seconds{${E2}}`]: '_x5 0x25',
    },
    at: '20m',
    samples: [
      { labels: '{instance="10.0.0.1:9190"}', value: 1080 },
      { labels: '{instance="10.0.0.2:9190"}', value: 900 },
    ],
  },
  {
    // The last 30 minutes (30m to 60m). k1 crossed 80% long before (its series has held 1 since); k2
    // crossed 90% at 40m on E2. With --metrics-key-id false (no key id), 50% was crossed by keys on E1
    // three times before the range and once in it (at 40m), and once on E2 (its series born at 45m).
    name: 'the quota thresholds crossed are those crossed in the time range, summed over the enforcers',
    panel: 'Quota thresholds crossed',
    range: '30m',
    series: {
      [`up{${E1}}`]: '1x60',
      [`up{${E2}}`]: '1x60',
      [`keystile_quota_alerts_total{${E1}, ${STAGE}, key_id="k1", threshold="80"}`]: '_x5 1x55',
      [`keystile_quota_alerts_total{${E2}, ${STAGE}, key_id="k2", threshold="90"}`]: '_x40 1x20',
      [`keystile_quota_alerts_total{${E1}, ${STAGE}, key_id="", threshold="50"}`]: '_x10 3x30 4x20',
      [`keystile_quota_alerts_total{${E2}, ${STAGE}, key_id="", threshold="50"}`]: '_x45 1x15',
    },
    at: '60m',
    samples: [
      { labels: `{${STAGE}, key_id="k2", threshold="90"}`, value: 1 },
      { labels: `{${STAGE}, threshold="50"}`, value: 2 },
    ],
  },
  ...(['Work queue depth', 'Pending usage status writes', 'Oldest pending usage write'] as const).map(
    (panel, i): PanelCase => {
      const metric = [
        'keystile_operator_queue_depth',
        'keystile_operator_usage_pending_status_writes',
        'keystile_operator_usage_oldest_pending_seconds',
      ][i];
      return {
        // A lost the Lease at 5m with work queued and writes pending, and (built before it cleared
        // them) still exports them; B leads since.
        name: `${panel}: the leader's, not a follower's frozen one`,
        panel,
        series: {
          [`keystile_operator_leader{${OA}}`]: '1x4 0x20',
          [`${metric}{${OA}}`]: '40x20',
          [`keystile_operator_leader{${OB}}`]: '0x4 1x20',
          [`${metric}{${OB}}`]: '3x20',
        },
        at: '10m',
        samples: [{ labels: '{instance="10.0.1.2:8081"}', value: 3 }],
      };
    },
  ),
];

const VALUES: Omit<VariableValues, 'range'> = {
  namespace: '.*',
  api: '.*',
  stage: '.*',
  plan: '.*',
  rateInterval: '5m',
};

/** The query of a case, as Grafana sends it. */
function queryOf(c: PanelCase): string {
  const panel = ROWS.flatMap((r) => r.panels).find((p) => p.title === c.panel);
  const q = panel?.queries[c.query ?? 0];
  if (q === undefined) throw new Error(`no panel "${c.panel}" with query ${c.query ?? 0}`);
  return substitute(q.expr, { ...VALUES, range: c.range ?? '1h' });
}

/** promtool's test file for these cases. */
function promtoolTests(cases: readonly PanelCase[]): string {
  const rules = join(dir, 'none.rules.yaml');
  writeFileSync(rules, 'groups: []\n');
  return stringify(
    {
      rule_files: [rules],
      evaluation_interval: '1m',
      tests: cases.map((c) => ({
        name: c.name,
        interval: '1m',
        input_series: Object.entries(c.series).map(([series, values]) => ({ series, values })),
        promql_expr_test: [
          {
            expr: queryOf(c),
            eval_time: c.at,
            exp_samples: c.samples.map((s) => ({ labels: s.labels, value: s.value })),
          },
        ],
      })),
    },
    { lineWidth: 0 },
  );
}

async function promtool(cases: readonly PanelCase[]): Promise<{ code: number; output: string }> {
  const file = join(dir, 'panels.test.yaml');
  writeFileSync(file, promtoolTests(cases));
  try {
    const { stdout, stderr } = await run(binaries().promtool, ['test', 'rules', file]);
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw new Error(`promtool did not run: ${e.message}`);
    return { code: e.code, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('the dashboard panels, evaluated', () => {
  it('show what their descriptions say on these series', async () => {
    const { code, output } = await promtool(CASES);
    expect(output).toContain('SUCCESS');
    expect(code, output).toBe(0);
  }, 30_000);
});
