/**
 * The Keystile Grafana dashboard, as data: rows of panels, each with its queries and a description that
 * Grafana shows as the panel's tooltip and docs/observability.md prints as "how to read it". The
 * generator (generate.ts) turns it into charts/keystile/files/dashboards/keystile.json.
 */
import {
  BarGaugeDisplayMode,
  BarGaugeNamePlacement,
  BarGaugeSizing,
  BarGaugeValueMode,
  BigValueColorMode,
  BigValueGraphMode,
  BigValueJustifyMode,
  BigValueTextMode,
  type Dashboard,
  DashboardCursorSync,
  type DataSourceRef,
  defaultDashboard,
  FieldColorModeId,
  type Panel,
  type TableOptions,
  PercentChangeColorMode,
  type RowPanel,
  SortOrder,
  TableCellHeight,
  ThresholdsMode,
  TooltipDisplayMode,
  type VariableModel,
  VariableRefresh,
  VariableSort,
  VizOrientation,
} from '@grafana/schema';
import type { Options as BarGaugeOptions } from '@grafana/schema/dist/esm/raw/composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen';
import type { Options as StatOptions } from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type { Options as TimeSeriesOptions } from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';
import {
  DENYING_DECISIONS,
  ENFORCER,
  FALLBACK_POLICY_VALUES,
  ENFORCER_PROCESS,
  OPERATOR,
  OPERATOR_PROCESS,
  OPERATOR_WRITE_VERBS,
  PASSING_DECISIONS,
  QUOTA_DECISIONS,
  THROTTLE_DECISIONS,
} from './names.ts';
import {
  completeSince,
  countedWithin,
  NAMESPACE_FILTER,
  oneOf,
  onLeader,
  PLAN_FILTER,
  RANGE,
  RATE,
  sel,
  STAGE_FILTER,
} from './promql.ts';

/** One query of a panel. */
export interface QuerySpec {
  readonly expr: string;
  /** Grafana's legend format, e.g. `{{reason}}`. */
  readonly legend?: string;
}

/** The visualisations the dashboard uses. */
export type PanelKind = 'timeseries' | 'stat' | 'table' | 'bargauge';

/** One panel, before layout. */
export interface PanelSpec {
  readonly title: string;
  /** What it shows and how to read it: the panel's tooltip in Grafana, and its text in the docs. */
  readonly description: string;
  readonly kind: PanelKind;
  /** Grafana's unit id: `reqps`, `s`, `percentunit`, `short`, `Bps`, `none`. */
  readonly unit: string;
  /** Width in grid columns (of 24). */
  readonly width: number;
  /** Height in grid rows (default 8; stats 4). */
  readonly height?: number;
  /** Instant queries (tables, bar gauges, totals over the time range) rather than ranges. */
  readonly instant?: boolean;
  readonly queries: readonly QuerySpec[];
  /** Thresholds as [value, colour] steps above the base (green); stats and gauges colour by them. */
  readonly thresholds?: readonly (readonly [number, string])[];
  readonly min?: number;
  readonly max?: number;
}

/** A row of panels. */
export interface RowSpec {
  readonly title: string;
  /** One paragraph for the docs: what the row is for. */
  readonly about: string;
  readonly panels: readonly PanelSpec[];
}

const D = ENFORCER.decisions;
const SP = [STAGE_FILTER, PLAN_FILTER] as const;
const NSP = [NAMESPACE_FILTER, PLAN_FILTER] as const;
const passing = `decision=~"${oneOf(PASSING_DECISIONS)}"`;
const denying = `decision=~"${oneOf(DENYING_DECISIONS)}"`;
const decisions = (...extra: string[]): string => sel(D, ...SP, ...extra);
const quantile = (q: number, metric: string, by: string): string =>
  `histogram_quantile(${q}, sum by (${by}) (rate(${metric}_bucket[${RATE}])))`;
const keyUsed = sel(OPERATOR.keyQuotaUsed, ...NSP);
const keyLimit = sel(OPERATOR.keyQuotaLimit, ...NSP);

/** The dashboard's rows, top to bottom. */
export const ROWS: readonly RowSpec[] = [
  {
    title: 'Overview',
    about: 'The numbers to glance at: traffic, how much of it passes, latency, and whether every part is up.',
    panels: [
      {
        title: 'Requests per second',
        description: 'Checks decided per second by the enforcers, for the selected API stages and plans.',
        kind: 'stat',
        unit: 'reqps',
        width: 4,
        queries: [{ expr: `sum(rate(${decisions()}[${RATE}]))` }],
      },
      {
        title: 'Passed',
        description:
          'The share of checks let through (allowed, shadow-mode would-be denials, fail-open). A drop means more denials: see "Denials by reason".',
        kind: 'stat',
        unit: 'percentunit',
        width: 4,
        queries: [{ expr: `sum(rate(${decisions(passing)}[${RATE}])) / sum(rate(${decisions()}[${RATE}]))` }],
        thresholds: [],
      },
      {
        title: 'Denied per second',
        description: 'Checks answered 403, 429 or 503 per second.',
        kind: 'stat',
        unit: 'reqps',
        width: 4,
        queries: [{ expr: `sum(rate(${decisions(denying)}[${RATE}]))` }],
      },
      {
        title: 'Decision p99',
        description:
          "The 99th percentile of the time from a check parsed to its answer, over every enforcer. Tens of microseconds with the memory store; the Redis store adds one round trip. Envoy's ext_authz timeout is the ceiling that matters.",
        kind: 'stat',
        unit: 's',
        width: 4,
        queries: [{ expr: quantile(0.99, ENFORCER.decisionSeconds, 'le') }],
        thresholds: [
          [0.005, 'orange'],
          [0.025, 'red'],
        ],
      },
      {
        title: 'Enforcers ready',
        description:
          'Enforcers with a config loaded, of the enforcers scraped. An enforcer without a config answers every check 503 (fail closed).',
        kind: 'stat',
        unit: 'none',
        width: 4,
        queries: [
          { expr: `sum(${ENFORCER.configLoaded})`, legend: 'ready' },
          { expr: `count(${ENFORCER.configLoaded})`, legend: 'running' },
        ],
      },
      {
        title: 'Operator leaders',
        description:
          'Operator replicas holding the Lease: 1 is right. 0 means nothing renders changes (new keys, disabled keys, plan edits) for the enforcers.',
        kind: 'stat',
        unit: 'none',
        width: 4,
        queries: [{ expr: `sum(${OPERATOR.leader})` }],
        thresholds: [
          [0, 'red'],
          [1, 'green'],
          [2, 'orange'],
        ],
      },
    ],
  },
  {
    title: 'Requests and denials',
    about: 'What the enforcers answered, and why they refused.',
    panels: [
      {
        title: 'Requests by decision',
        description:
          'Checks per second by the `decision` label: allowed, forbidden (403), throttled and quota_exceeded (429), unavailable (503), and the shadow-mode and fail-open variants.',
        kind: 'timeseries',
        unit: 'reqps',
        width: 12,
        queries: [{ expr: `sum by (decision) (rate(${decisions()}[${RATE}]))`, legend: '{{decision}}' }],
      },
      {
        title: 'Denials by reason',
        description:
          'Denied checks per second by reason code (docs/enforcer.md, "Reason codes"). MissingKey and UnknownKey are clients without a valid key; KeyDisabled, KeyExpired and KeyRotatedOut are known keys refused; signature reasons are key pairs; NoConfig and InternalError are the enforcer failing closed.',
        kind: 'timeseries',
        unit: 'reqps',
        width: 12,
        queries: [{ expr: `sum by (reason) (rate(${decisions(denying)}[${RATE}]))`, legend: '{{reason}}' }],
      },
      {
        title: 'Throttled and over quota',
        description:
          "429s per second by plan and API stage: the token bucket empty (throttled) or the period's quota used up (over quota), shadow mode included. Throttling in bursts is the plan working; sustained over-quota traffic is a customer who needs a bigger plan or an adjustment.",
        kind: 'timeseries',
        unit: 'reqps',
        width: 12,
        queries: [
          {
            expr: `sum by (namespace, api, stage, plan) (rate(${decisions(`decision=~"${oneOf(THROTTLE_DECISIONS)}"`)}[${RATE}]))`,
            legend: 'throttled {{plan}} on {{api}}/{{stage}}',
          },
          {
            expr: `sum by (namespace, api, stage, plan) (rate(${decisions(`decision=~"${oneOf(QUOTA_DECISIONS)}"`)}[${RATE}]))`,
            legend: 'over quota {{plan}} on {{api}}/{{stage}}',
          },
        ],
      },
      {
        title: 'Requests by API stage',
        description: 'Checks per second by API stage (namespace/api/stage), every decision.',
        kind: 'timeseries',
        unit: 'reqps',
        width: 12,
        queries: [
          {
            expr: `sum by (namespace, api, stage) (rate(${decisions()}[${RATE}]))`,
            legend: '{{namespace}}/{{api}}/{{stage}}',
          },
        ],
      },
    ],
  },
  {
    title: 'Usage',
    about:
      "Who uses how much: request rates per plan and key from the enforcers, and each key's quota used and remaining this period from the operator (which reads the counters the enforcers share or keep).",
    panels: [
      {
        title: 'Passed requests per plan',
        description: 'Checks let through per second, by plan id (namespace/plan).',
        kind: 'timeseries',
        unit: 'reqps',
        width: 12,
        queries: [{ expr: `sum by (plan) (rate(${decisions(passing)}[${RATE}]))`, legend: '{{plan}}' }],
      },
      {
        title: 'Passed requests per key',
        description:
          'Checks let through per second, by key id (never the key itself). Empty when the enforcers run with `--metrics-key-id false`.',
        kind: 'timeseries',
        unit: 'reqps',
        width: 12,
        queries: [
          {
            expr: `sum by (plan, key_id) (rate(${decisions(passing, 'key_id!=""')}[${RATE}]))`,
            legend: '{{key_id}} ({{plan}})',
          },
        ],
      },
      {
        title: 'Top keys',
        description:
          'The ten keys with the most checks (every decision) over the selected time range: the biggest customers, or a client hammering with a refused key.',
        kind: 'table',
        unit: 'short',
        width: 12,
        instant: true,
        queries: [
          {
            expr: `topk(10, round(sum by (namespace, plan, key_id) (increase(${decisions('key_id!=""')}[${RANGE}]))))`,
          },
        ],
      },
      {
        title: 'Quota used per plan',
        description:
          "Quota used this period, summed over each plan's keys (or customers), as the leading operator last read it. Resets when a period begins.",
        kind: 'timeseries',
        unit: 'short',
        width: 12,
        queries: [
          {
            expr: `sum by (namespace, plan) (${onLeader(sel(OPERATOR.planQuotaUsed, ...NSP))})`,
            legend: '{{namespace}}/{{plan}}',
          },
        ],
      },
      {
        title: 'Quota used per key',
        description:
          "The 20 keys nearest their quota: used as a share of the effective limit (the plan's limit plus any granted adjustment). At 100% the key gets 429 Limit Exceeded until the period resets. Needs the operator's per-key metrics (`--usage-metrics-per-key`, on by default).",
        kind: 'bargauge',
        unit: 'percentunit',
        width: 12,
        instant: true,
        min: 0,
        max: 1,
        thresholds: [
          [0.8, 'orange'],
          [0.9, 'red'],
        ],
        queries: [
          {
            expr: `topk(20, ${onLeader(`${keyUsed} / (${keyLimit} > 0)`)})`,
            legend: '{{namespace}}/{{apikey}} ({{plan}})',
          },
        ],
      },
      {
        title: 'Quota remaining per key',
        description:
          'The 20 keys with the least quota left this period (effective limit minus used), as the leading operator last read it.',
        kind: 'table',
        unit: 'short',
        width: 12,
        instant: true,
        queries: [{ expr: `bottomk(20, ${onLeader(`clamp_min(${keyLimit} - ${keyUsed}, 0)`)})` }],
      },
      {
        title: 'Quota thresholds crossed',
        description:
          "Usage-alert thresholds (a plan's `alerts.thresholds`, percent of the quota) crossed during the time range, by key id, plan, stage and threshold: how many crossings, summed over the enforcers. A key crosses each threshold once per period; with the Redis store that crossing is counted once (by the enforcer whose request crossed it), with the memory store once by every enforcer that saw it. The operator also records an Event on the ApiKey for each.",
        kind: 'table',
        unit: 'short',
        width: 12,
        instant: true,
        queries: [
          {
            expr: `sum by (namespace, api, stage, plan, key_id, threshold) (round(${countedWithin(sel(ENFORCER.quotaAlerts, ...SP), RANGE)}))`,
          },
        ],
      },
      {
        title: 'Adjustments applied',
        description:
          'UsageAdjustments (grants and take-backs of remaining quota) applied by the enforcers running during the time range, by plan, counted since each started. Each is applied exactly once however many enforcers share the counters.',
        kind: 'table',
        unit: 'short',
        width: 12,
        instant: true,
        queries: [
          {
            expr: `sum by (plan) (max_over_time(${sel(ENFORCER.adjustmentsApplied, PLAN_FILTER)}[${RANGE}]))`,
          },
        ],
      },
    ],
  },
  {
    title: 'Latency and check errors',
    about: 'How long deciding takes, and checks the transport could not decide normally.',
    panels: [
      {
        title: 'Decision latency',
        description:
          'p50 and p99 of the time from a check parsed to its answer, by transport (HTTP or gRPC ext_authz). Buckets run from 10 µs to 50 ms; a p99 at 50 ms means "50 ms or more".',
        kind: 'timeseries',
        unit: 's',
        width: 12,
        queries: [
          { expr: quantile(0.5, ENFORCER.decisionSeconds, 'le, transport'), legend: 'p50 {{transport}}' },
          { expr: quantile(0.99, ENFORCER.decisionSeconds, 'le, transport'), legend: 'p99 {{transport}}' },
        ],
      },
      {
        title: 'Check errors',
        description:
          'Check requests the transport could not decide or answer normally, by class: `malformed` (refused 403: a request the HTTP parser refuses, a gRPC check request it cannot read; a path that cannot be percent-decoded is decided like any other, not an error), `error` or `decide` (a bug, answered 503: fail closed), `send` (the answer could not be written).',
        kind: 'timeseries',
        unit: 'reqps',
        width: 12,
        queries: [
          {
            expr: `sum by (transport, class) (rate(${ENFORCER.checkErrors}[${RATE}]))`,
            legend: '{{class}} {{transport}}',
          },
        ],
      },
    ],
  },
  {
    title: 'Enforcer config',
    about:
      'Whether each enforcer has the config the operator rendered: swaps, refusals, and how old the config it serves is.',
    panels: [
      {
        title: 'Config generation',
        description:
          'Configs swapped in since each enforcer started. It steps up when the operator renders a change; enforcers of the same stages should step together.',
        kind: 'timeseries',
        unit: 'none',
        width: 8,
        queries: [{ expr: `max by (instance) (${ENFORCER.configGeneration})`, legend: '{{instance}}' }],
      },
      {
        title: 'Config reload errors',
        description:
          'Config loads refused since each enforcer started, by reason: a step up is a refusal. Invalid (fails the contract schema), Inconsistent (the documents disagree), Unreadable, Incomplete (a shard the index names has not arrived: normal for a moment while the operator writes). The last good config keeps serving.',
        kind: 'timeseries',
        unit: 'none',
        width: 8,
        queries: [
          {
            expr: `sum by (instance, reason) (${ENFORCER.configReloadErrors})`,
            legend: '{{instance}} {{reason}}',
          },
        ],
      },
      {
        title: 'Age of the last good reload',
        description:
          'Time since each ready enforcer last loaded a config with nothing refused (a change swapped in, or the config in use confirmed as given), or since it started if no load ever refused nothing. Growing is normal while nothing changes; growing while reload errors appear means the enforcer serves a stale config (see the KeystileEnforcerConfigStale alert).',
        kind: 'timeseries',
        unit: 's',
        width: 8,
        queries: [
          {
            expr: `max by (instance) (time() - ${completeSince()} and on (job, instance) ${ENFORCER.configLoaded} == 1)`,
            legend: '{{instance}}',
          },
        ],
      },
      {
        title: 'Keys loaded per API stage',
        description:
          'Keys each API stage holds, as the enforcers loaded them (the largest over the enforcers serving it).',
        kind: 'timeseries',
        unit: 'short',
        width: 8,
        queries: [
          {
            expr: `max by (namespace, api, stage) (${sel(ENFORCER.configKeys, STAGE_FILTER)})`,
            legend: '{{namespace}}/{{api}}/{{stage}}',
          },
        ],
      },
      {
        title: 'API stages loaded',
        description: 'API stages each enforcer serves.',
        kind: 'timeseries',
        unit: 'none',
        width: 8,
        queries: [{ expr: `max by (instance) (${ENFORCER.configStages})`, legend: '{{instance}}' }],
      },
      {
        title: 'Config load time p99',
        description:
          'The 99th percentile of the time to read, validate and index a config, over the time range. Large configs are parsed in a parse process of their own, so decisions never wait on it.',
        kind: 'stat',
        unit: 's',
        width: 8,
        instant: true,
        queries: [
          {
            expr: `histogram_quantile(0.99, sum by (le) (increase(${ENFORCER.configLoadSeconds}_bucket[${RANGE}])))`,
          },
        ],
      },
      {
        title: 'Config revision per API stage',
        description:
          'The revision of each API stage each enforcer serves, and how many enforcers serve it. Enforcers of the same stage should agree within seconds of a change; one left on an old revision is stale.',
        kind: 'table',
        unit: 'short',
        width: 24,
        instant: true,
        queries: [
          {
            expr: `count by (namespace, api, stage, revision) (${sel(ENFORCER.configRevision, STAGE_FILTER)})`,
          },
        ],
      },
    ],
  },
  {
    title: 'Counter store',
    about:
      'The shared Redis counter store, when enforcers use one: its health and what the enforcers did while it was away (the `--redis-unavailable` policy).',
    panels: [
      {
        title: 'Store available',
        description:
          'Whether each enforcer can reach its counter store (1) or not (0). The memory store is always available.',
        kind: 'timeseries',
        unit: 'none',
        width: 8,
        min: 0,
        max: 1,
        queries: [{ expr: `min by (instance) (${ENFORCER.storeAvailable})`, legend: '{{instance}}' }],
      },
      {
        title: 'Store errors',
        description:
          'Counter-store operations that failed per second (timeouts, lost connections), by operation.',
        kind: 'timeseries',
        unit: 'ops',
        width: 8,
        queries: [
          {
            expr: `sum by (instance, op) (rate(${ENFORCER.storeErrors}[${RATE}]))`,
            legend: '{{instance}} {{op}}',
          },
        ],
      },
      {
        title: 'Fallback decisions',
        description:
          "Checks decided under the Redis-loss policy per second: `open` allowed and counted nowhere, `local` counted in the enforcer's memory until Redis returns. (`closed` decides nothing: its checks answer 503 and show as unavailable decisions, or as fail_open under `--fail-open`.)",
        kind: 'timeseries',
        unit: 'reqps',
        width: 8,
        queries: [
          {
            expr: `sum by (instance, policy) (rate(${sel(ENFORCER.storeFallbackDecisions, `policy=~"${oneOf(FALLBACK_POLICY_VALUES)}"`)}[${RATE}]))`,
            legend: '{{instance}} {{policy}}',
          },
        ],
      },
    ],
  },
  {
    title: 'Operator',
    about:
      "The operator's health: reconciles, their errors and duration, the work queue, the Lease, what it writes, and its usage polls.",
    panels: [
      {
        title: 'Reconciles',
        description:
          'Reconciles per second by kind (namespace: a render; key: a key Secret) and result (ok, error).',
        kind: 'timeseries',
        unit: 'ops',
        width: 8,
        queries: [
          {
            expr: `sum by (kind, result) (rate(${OPERATOR.reconciles}[${RATE}]))`,
            legend: '{{kind}} {{result}}',
          },
        ],
      },
      {
        title: 'Reconcile duration',
        description:
          'p50 and p99 of reconcile time by kind (namespace: render and write; key: a key Secret), and p99 of the in-memory render alone by mode: incremental renders only what changed, a full render (at start, or when plans or bindings change shape) is linear in the keys.',
        kind: 'timeseries',
        unit: 's',
        width: 8,
        queries: [
          { expr: quantile(0.5, OPERATOR.reconcileSeconds, 'le, kind'), legend: 'p50 {{kind}}' },
          { expr: quantile(0.99, OPERATOR.reconcileSeconds, 'le, kind'), legend: 'p99 {{kind}}' },
          { expr: quantile(0.99, OPERATOR.renderSeconds, 'le, mode'), legend: 'p99 render {{mode}}' },
        ],
      },
      {
        title: 'Work queue depth',
        description:
          'Items waiting in the work queue of the leader (only the leader has queues). A depth that stays high means the operator cannot keep up.',
        kind: 'timeseries',
        unit: 'short',
        width: 8,
        queries: [{ expr: `max by (instance) (${onLeader(OPERATOR.queueDepth)})`, legend: '{{instance}}' }],
      },
      {
        title: 'Leader',
        description: 'Which replica holds the Lease (1). Exactly one should, at every moment.',
        kind: 'timeseries',
        unit: 'none',
        width: 8,
        min: 0,
        max: 1,
        queries: [{ expr: `max by (instance) (${OPERATOR.leader})`, legend: '{{instance}}' }],
      },
      {
        title: 'Writes',
        description: `Writes to the API server per second by resource and verb (${OPERATOR_WRITE_VERBS.join(', ')}; \`label\`: an imported key's own Secret labelled so the operator sees its changes).`,
        kind: 'timeseries',
        unit: 'ops',
        width: 8,
        queries: [
          {
            expr: `sum by (resource, verb) (rate(${OPERATOR.writes}[${RATE}]))`,
            legend: '{{verb}} {{resource}}',
          },
        ],
      },
      {
        title: 'Rendered bytes written',
        description:
          'Bytes of rendered ConfigMap and Secret data written per second. Only changed shards are written: one more key rewrites one shard.',
        kind: 'timeseries',
        unit: 'Bps',
        width: 8,
        queries: [
          {
            expr: `sum by (resource) (rate(${OPERATOR.renderedBytes}[${RATE}]))`,
            legend: '{{resource}}',
          },
        ],
      },
      {
        title: 'Keys rendered',
        description: 'Keys rendered for the enforcers, summed over the API stages of each namespace.',
        kind: 'timeseries',
        unit: 'short',
        width: 8,
        queries: [
          {
            expr: `max by (namespace) (${sel(OPERATOR.renderedKeys, NAMESPACE_FILTER)})`,
            legend: '{{namespace}}',
          },
        ],
      },
      {
        title: 'Usage poll errors',
        description:
          'Failed reads of usage per second, by source (an enforcer endpoint, or Redis). Usage in ApiKey status and the quota panels goes stale while they fail.',
        kind: 'timeseries',
        unit: 'ops',
        width: 8,
        queries: [
          {
            expr: `sum by (instance, source) (rate(${OPERATOR.usagePollErrors}[${RATE}]))`,
            legend: '{{instance}} {{source}}',
          },
        ],
      },
      {
        title: 'Usage polls',
        description:
          'Usage polls per second by result: ok, partial (a source failed, the others were read), error (nothing read). Only the leader polls.',
        kind: 'timeseries',
        unit: 'ops',
        width: 8,
        queries: [
          {
            expr: `sum by (instance, result) (rate(${OPERATOR.usagePolls}[${RATE}]))`,
            legend: '{{instance}} {{result}}',
          },
        ],
      },
      {
        title: 'Age of the last usage poll',
        description:
          "Time since the leader last read usage. It should stay near the operator's `--usage-interval` (15 s by default). Empty while the leader has never read usage (usage reporting off).",
        kind: 'timeseries',
        unit: 's',
        width: 8,
        queries: [
          {
            expr: `max by (instance) (${onLeader(`time() - (${OPERATOR.usageLastPoll} > 0)`)})`,
            legend: '{{instance}}',
          },
        ],
      },
      {
        title: 'Usage status writes',
        description:
          'ApiKey status writes for usage per second by result (written, unchanged, gone, error). They are capped by `--usage-writes-per-second`, longest-stale key first.',
        kind: 'timeseries',
        unit: 'ops',
        width: 8,
        queries: [
          {
            expr: `sum by (result) (rate(${OPERATOR.usageStatusWrites}[${RATE}]))`,
            legend: '{{result}}',
          },
        ],
      },
      {
        title: 'Pending usage status writes',
        description:
          "ApiKeys whose usage changed and whose status the leader has not written yet. With N changed keys and W writes a second, a key's status lags by about the poll interval plus N/W seconds.",
        kind: 'timeseries',
        unit: 'short',
        width: 8,
        queries: [
          { expr: `max by (instance) (${onLeader(OPERATOR.usagePendingWrites)})`, legend: '{{instance}}' },
        ],
      },
      {
        title: 'Oldest pending usage write',
        description:
          "How long the leader's stalest pending usage status write has waited. It should stay below a few poll intervals; growing, the writes cannot keep up with the changes.",
        kind: 'timeseries',
        unit: 's',
        width: 8,
        queries: [
          {
            expr: `max by (instance) (${onLeader(OPERATOR.usageOldestPendingSeconds)})`,
            legend: '{{instance}}',
          },
        ],
      },
    ],
  },
  {
    title: 'Resources',
    about: 'Memory and CPU of the enforcers and the operator, as their processes report them.',
    panels: [
      {
        title: 'Memory',
        description:
          "Resident memory of each enforcer and operator process. An enforcer's grows with the keys it holds (and briefly doubles while a large config is swapped); see docs/enforcer.md for the heap flags.",
        kind: 'timeseries',
        unit: 'bytes',
        width: 12,
        queries: [
          {
            expr: `max by (instance) (${ENFORCER_PROCESS.residentMemory} and on (job, instance) ${ENFORCER.configLoaded})`,
            legend: 'enforcer {{instance}}',
          },
          {
            expr: `max by (instance) (${OPERATOR_PROCESS.residentMemory})`,
            legend: 'operator {{instance}}',
          },
        ],
      },
      {
        title: 'CPU',
        description: 'CPU used by each enforcer and operator process, in cores.',
        kind: 'timeseries',
        unit: 'short',
        width: 12,
        queries: [
          {
            expr: `max by (instance) (rate(${ENFORCER_PROCESS.cpuSeconds}[${RATE}]) and on (job, instance) ${ENFORCER.configLoaded})`,
            legend: 'enforcer {{instance}}',
          },
          {
            expr: `max by (instance) (rate(${OPERATOR_PROCESS.cpuSeconds}[${RATE}]))`,
            legend: 'operator {{instance}}',
          },
        ],
      },
    ],
  },
];

/**
 * Metrics the components export that no panel shows, each with the reason. A test fails on any metric
 * neither charted nor listed here, so a new metric gets a panel or a reason.
 */
export const UNCHARTED: Readonly<Record<string, string>> = Object.freeze({
  [OPERATOR.usageAlerts]:
    "the enforcers' keystile_quota_alerts_total shows the same crossings per key id (the `Quota thresholds crossed` panel)",
  [ENFORCER.decisionSeriesResets]:
    'a sizing signal, not traffic: above 0, the per-key decision series start over now and then; docs/enforcer.md says what to do (turn the key id label off)',
});

/** The dashboard's uid: stable, so links and provisioning find it. */
export const DASHBOARD_UID = 'keystile-overview';

const DATASOURCE: DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

/** A template variable whose values are a label's values on some series. */
export interface LabelVariable {
  /** The variable's name (`$name` in queries). */
  readonly name: string;
  /** What Grafana shows beside it. */
  readonly title: string;
  /** The series whose label values are offered. */
  readonly selector: string;
  /** The label whose values are offered. */
  readonly label: string;
  /** Grafana's regex on the values: the first capture group is the value. */
  readonly regex?: string;
}

/** The label variables, each narrowing the next: namespace, api, stage, plan. */
export const LABEL_VARIABLES: readonly LabelVariable[] = [
  { name: 'namespace', title: 'Namespace', selector: ENFORCER.configKeys, label: 'namespace' },
  { name: 'api', title: 'API', selector: sel(ENFORCER.configKeys, NAMESPACE_FILTER), label: 'api' },
  {
    name: 'stage',
    title: 'Stage',
    selector: sel(ENFORCER.configKeys, NAMESPACE_FILTER, 'api=~"$api"'),
    label: 'stage',
  },
  // The enforcer labels plans by id (namespace/name): the variable offers the names.
  {
    name: 'plan',
    title: 'Plan',
    selector: sel(D, STAGE_FILTER),
    label: 'plan',
    regex: '/^(?:.*\\/)?([^/]+)$/',
  },
];

/** A Grafana query variable over label values, multi-valued, "All" meaning any value (or none). */
function labelVariable(v: LabelVariable): VariableModel {
  return {
    type: 'query',
    name: v.name,
    label: v.title,
    datasource: DATASOURCE,
    query: `label_values(${v.selector}, ${v.label})`,
    refresh: VariableRefresh.onTimeRangeChanged,
    regex: v.regex ?? '',
    sort: VariableSort.alphabeticalAsc,
    multi: true,
    includeAll: true,
    allValue: '.*',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
  };
}

/** The template variables: the data source, then the label variables. */
export function variables(): VariableModel[] {
  return [
    {
      type: 'datasource',
      name: 'datasource',
      label: 'Data source',
      query: 'prometheus',
      refresh: VariableRefresh.onDashboardLoad,
      regex: '',
      options: [],
    },
    ...LABEL_VARIABLES.map(labelVariable),
  ];
}

/** Every PromQL expression of the dashboard: each panel's queries and each variable's selector. */
export function dashboardQueries(): { readonly where: string; readonly expr: string }[] {
  return [
    ...ROWS.flatMap((row) =>
      row.panels.flatMap((p) =>
        p.queries.map((q, i) => ({
          where: `panel "${p.title}" query ${String.fromCharCode(65 + i)}`,
          expr: q.expr,
        })),
      ),
    ),
    ...LABEL_VARIABLES.map((v) => ({ where: `variable $${v.name}`, expr: v.selector })),
  ];
}

const STEP_COLOURS = { base: 'green' } as const;

/** The field config of a panel: unit, range, thresholds and value texts. */
function fieldConfig(p: PanelSpec): NonNullable<Panel['fieldConfig']> {
  return {
    defaults: {
      unit: p.unit,
      ...(p.min !== undefined && { min: p.min }),
      ...(p.max !== undefined && { max: p.max }),
      color: {
        mode:
          p.kind === 'stat' || p.kind === 'bargauge'
            ? FieldColorModeId.Thresholds
            : FieldColorModeId.PaletteClassic,
      },
      thresholds: {
        mode: ThresholdsMode.Absolute,
        steps: [
          { color: STEP_COLOURS.base, value: null },
          ...(p.thresholds ?? []).map(([value, color]) => ({ color, value })),
        ],
      },
    },
    overrides: [],
  };
}

/** The options of a panel, per visualisation, complete as Grafana's own types require. */
function panelOptions(p: PanelSpec): Record<string, unknown> {
  const reduceOptions = { calcs: ['lastNotNull'], fields: '', values: false };
  switch (p.kind) {
    case 'timeseries': {
      const options: TimeSeriesOptions = {
        legend: { calcs: [], placement: 'bottom', showLegend: true },
        tooltip: { mode: TooltipDisplayMode.Multi, sort: SortOrder.Descending },
      };
      return { ...options };
    }
    case 'stat': {
      const options: StatOptions = {
        reduceOptions,
        orientation: VizOrientation.Auto,
        colorMode: BigValueColorMode.Value,
        graphMode: p.instant ? BigValueGraphMode.None : BigValueGraphMode.Area,
        justifyMode: BigValueJustifyMode.Auto,
        textMode: BigValueTextMode.Auto,
        percentChangeColorMode: PercentChangeColorMode.Standard,
        showPercentChange: false,
        wideLayout: true,
      };
      return { ...options };
    }
    case 'bargauge': {
      const options: BarGaugeOptions = {
        reduceOptions: { ...reduceOptions, values: false },
        orientation: VizOrientation.Horizontal,
        displayMode: BarGaugeDisplayMode.Gradient,
        valueMode: BarGaugeValueMode.Color,
        namePlacement: BarGaugeNamePlacement.Auto,
        showUnfilled: true,
        sizing: BarGaugeSizing.Auto,
        minVizHeight: 16,
        minVizWidth: 8,
        maxVizHeight: 300,
        legend: { calcs: [], placement: 'bottom', showLegend: false },
      };
      return { ...options };
    }
    case 'table': {
      const options: TableOptions = { showHeader: true, cellHeight: TableCellHeight.Sm, frameIndex: 0 };
      return { ...options };
    }
  }
}

/** The Grafana targets of a panel. */
function targets(p: PanelSpec): Record<string, unknown>[] {
  return p.queries.map((q, i) => ({
    datasource: DATASOURCE,
    refId: String.fromCharCode(65 + i),
    editorMode: 'code',
    expr: q.expr,
    legendFormat: q.legend ?? '__auto',
    range: !p.instant,
    instant: p.instant === true,
    ...(p.kind === 'table' && { format: 'table' }),
  }));
}

/** Tables of instant queries: drop the time column, and merge several queries into one table. */
function transformations(p: PanelSpec): NonNullable<Panel['transformations']> {
  if (p.kind !== 'table') return [];
  return [
    ...(p.queries.length > 1 ? [{ id: 'merge', options: {} }] : []),
    { id: 'organize', options: { excludeByName: { Time: true }, renameByName: { Value: p.title } } },
  ];
}

/** The whole dashboard, laid out on Grafana's 24-column grid. */
export function keystileDashboard(): Dashboard {
  const panels: (Panel | RowPanel)[] = [];
  let id = 1;
  let y = 0;
  for (const row of ROWS) {
    panels.push({
      type: 'row',
      id: id++,
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const p of row.panels) {
      const h = p.height ?? (p.kind === 'stat' && row.title === 'Overview' ? 4 : 8);
      if (x + p.width > 24) {
        x = 0;
        y += rowHeight;
        rowHeight = 0;
      }
      panels.push({
        type: p.kind,
        id: id++,
        title: p.title,
        description: p.description,
        datasource: DATASOURCE,
        gridPos: { h, w: p.width, x, y },
        fieldConfig: fieldConfig(p),
        options: panelOptions(p),
        targets: targets(p),
        transformations: transformations(p),
      });
      x += p.width;
      rowHeight = Math.max(rowHeight, h);
    }
    y += rowHeight;
  }
  return {
    uid: DASHBOARD_UID,
    title: 'Keystile',
    description:
      'API keys, usage plans and their enforcement: traffic and denials, usage and quota, decision latency, enforcer config, the counter store and the operator. Generated from charts/observability/dashboard.ts.',
    tags: ['keystile'],
    editable: true,
    graphTooltip: DashboardCursorSync.Crosshair,
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    timezone: 'browser',
    fiscalYearStartMonth: 0,
    schemaVersion: defaultDashboard.schemaVersion ?? 0,
    version: 1,
    links: [],
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
      ],
    },
    templating: { list: variables() },
    panels,
  };
}
