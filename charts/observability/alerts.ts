/**
 * The Prometheus alerts, as data: each with its expression, how long it must hold, its severity, the
 * texts Alertmanager shows, a runbook (printed in docs/observability.md under the alert's name, which is
 * the anchor `runbook_url` points at) and a probe. The generator (generate.ts) writes them as the rule
 * groups of charts/keystile/files/rules/keystile.rules.yaml, which the chart's PrometheusRule embeds.
 *
 * The probe is the expression without its threshold or the matcher of the bad value: the series the
 * alert watches. On a healthy system the alert returns nothing, so the end-to-end test runs the probe
 * to show that the alert is not silent for want of series (a renamed metric, a lost label).
 */
import {
  ENFORCER,
  FAIL_OPEN_DECISION,
  FALLBACK_POLICY_VALUES,
  OPERATOR,
  PROMETHEUS,
  TARGET_COMPONENT,
  UNAVAILABLE_DECISION,
  UNKNOWN_STAGE_REASON,
} from './names.ts';
import { completeSince, countedWithin, onLeader, oneOf, sel } from './promql.ts';

/** How urgent: critical pages someone, warning is a ticket, info is for the people who sell the API. */
export type Severity = 'critical' | 'warning' | 'info';

/** The part of Keystile an alert is about (its `component` label, for routing). */
export type Component = 'enforcer' | 'counters' | 'quota' | 'operator';

/** One alerting rule. */
export interface AlertSpec {
  readonly alert: string;
  readonly expr: string;
  /** How long the expression must hold before the alert fires; omitted: at once. */
  readonly for?: string;
  readonly severity: Severity;
  /** One line; may use `{{ $labels.x }}` and `{{ $value }}`. */
  readonly summary: string;
  /** What it means and what it costs; may use templates. */
  readonly description: string;
  /** What to do, step by step (docs/observability.md). */
  readonly runbook: readonly string[];
  /** The series the alert watches (see the file's comment). */
  readonly probe: string;
}

/** A rule group: the rules Prometheus evaluates together. */
export interface AlertGroup {
  readonly name: string;
  readonly component: Component;
  readonly rules: readonly AlertSpec[];
}

/** The page the runbooks are on; each alert's runbook is its heading there. */
export const RUNBOOK_PAGE = 'docs/observability.md';

/** The anchor of an alert's heading (GitHub's: the name lower-cased). */
export function runbookAnchor(alert: string): string {
  return alert.toLowerCase();
}

const E = ENFORCER;
const O = OPERATOR;
const target = '{{ $labels.job }}/{{ $labels.instance }}';

/**
 * `up` of every target that is an enforcer: those the scrape configuration labels so (whether or not
 * they ever answered a scrape), or else those that exposed the enforcer's metrics within the hour.
 */
function enforcerUp(filter: string): string {
  const labelled = sel(PROMETHEUS.up, `${TARGET_COMPONENT.label}=~"${oneOf(TARGET_COMPONENT.enforcers)}"`);
  return `${labelled}${filter} or (${PROMETHEUS.up}${filter} and on (job, instance) max_over_time(${E.configLoaded}[1h]))`;
}

/** The alert groups, as the chart's PrometheusRule and the rule file hold them. */
export const ALERT_GROUPS: readonly AlertGroup[] = [
  {
    name: 'keystile-enforcer',
    component: 'enforcer',
    rules: [
      {
        alert: 'KeystileEnforcerNotReady',
        expr: `${E.configLoaded} == 0`,
        for: '5m',
        severity: 'critical',
        summary: `Keystile enforcer ${target} has no config loaded`,
        description:
          'The enforcer has loaded no valid config for 5 minutes, so it answers every check 503 (fail closed): the API behind it is unavailable to every client. (With `--fail-open` it allows every check unchecked instead: KeystileEnforcerFailingOpen.)',
        runbook: [
          "Read the enforcer's log: a refused config is logged at `warn` with its reason code (`Invalid`, `Inconsistent`, `Unreadable`), one still waiting for a shard at `info` (`Incomplete`).",
          "Check that the operator has rendered every shard the stage's index names: `kubectl -n <namespace> get configmap keystile-<api>.<stage>` (the index) and the objects it lists. (An index missing altogether does not keep the enforcer unready: it loads without that stage and refuses its checks, KeystileEnforcerUnknownStage.)",
          "Watch mode: a list the enforcer's Role does not allow (403 in its log, retried) keeps it unready until it succeeds.",
          "Watch mode: the enforcer's Role must name every rendered object (`resourceNames`); a stage with more shards than the Role allows stays Incomplete. Mounted mode: the volume must hold every object of the stage.",
          'Standalone mode: check the file given to `--config` exists and validates: `keystile render` writes a valid one.',
        ],
        probe: E.configLoaded,
      },
      {
        alert: 'KeystileEnforcerDown',
        expr: enforcerUp(' == 0'),
        for: '5m',
        severity: 'critical',
        summary: `Keystile enforcer ${target} cannot be scraped`,
        description:
          "An enforcer's target (labelled keystile_component gateway or sidecar by the scrape configuration, or one that exposed the enforcer's metrics within the last hour) has failed its scrapes for 5 minutes: the enforcer is down, hung, or has never started (a crash loop after a bad rollout). Envoy answers 503 for every request it should have checked (failure_mode_allow is off).",
        runbook: [
          'Check the pod: `kubectl get pod <pod> -o wide`, its restarts and its last termination reason (OOMKilled: raise the memory limit, or set `NODE_OPTIONS=--max-semi-space-size=4`). A new pod in CrashLoopBackOff after a rollout: read its log (`kubectl logs <pod> -c enforcer --previous`) for the flag or setting it refused, and roll back.',
          'Probe the admin port from inside the cluster: `curl http://<pod-ip>:9190/healthz`. If it answers, the scrape path is wrong (NetworkPolicy, Service port), not the enforcer.',
          'Read the log for the last lines before it stopped answering.',
        ],
        probe: enforcerUp(''),
      },
      {
        alert: 'KeystileEnforcerConfigRefused',
        expr: `sum without (reason) (increase(${E.configReloadErrors}{reason!="Incomplete"}[10m]) > 0)`,
        for: '1m',
        severity: 'warning',
        summary: `Keystile enforcer ${target} refused a config`,
        description:
          'The enforcer refused a config in the last 10 minutes ({{ $value | printf "%.0f" }} refusals): it failed the contract schema, its documents disagree, or it could not be read. The last good config keeps serving, so changes made since (new keys, disabled keys, plan edits) are not enforced by it.',
        runbook: [
          "Read the enforcer's log at `warn`: the message names the object and the reason (never its content).",
          "`Invalid` with a version message: the operator writes a contract version this enforcer does not read. Upgrade the enforcer images to the operator's version (enforcers first, then the operator, on upgrades).",
          "`Inconsistent`: a shard of another stage, or a key naming a missing plan. Compare the index with its shards; deleting the stage's rendered objects makes the operator write them again.",
          '`Unreadable`: a mounted file or a watched object the enforcer cannot read (permissions, RBAC).',
        ],
        probe: `sum without (reason) (increase(${E.configReloadErrors}{reason!="Incomplete"}[10m]))`,
      },
      {
        alert: 'KeystileEnforcerConfigStale',
        // Its latest loads refused something, and none since refused nothing, for 15 minutes: a refusal
        // followed by a clean load (a routine Incomplete: the index before its shards) never counts. Its
        // value counts from the last load that refused nothing, or from its start if none has (0: never).
        expr: `(time() - ${completeSince()}) and on (job, instance) (${E.configLastReloadError} > on (job, instance) ${E.configLastReload}) and on (job, instance) ${E.configLoaded} == 1`,
        for: '15m',
        severity: 'critical',
        summary: `Keystile enforcer ${target} serves a stale config`,
        description:
          'The enforcer has refused the configs it was given for 15 minutes; its config has not been the one given for {{ $value | humanizeDuration }} (since its last load that refused nothing, or since it started if none ever has). It keeps enforcing what it had then, and an API stage it has refused at every load since it started is not served at all. A key disabled or deleted since is still accepted by it.',
        runbook: [
          "Follow KeystileEnforcerConfigRefused for the reason of the refusals; `Incomplete` counts here too: a shard that never arrives (watch mode: a Role without the new shard's name; mounted mode: a volume without it).",
          'Compare the `Config generation` panel across the enforcers of the same stages: the stale one lags.',
          "Once the cause is fixed the enforcer swaps in the new config by itself (watch: at once; mounted: within the kubelet's sync period); restarting it is not needed.",
        ],
        probe: `(time() - ${completeSince()}) and on (job, instance) ${E.configLastReloadError} and on (job, instance) ${E.configLoaded}`,
      },
      {
        alert: 'KeystileEnforcerFailingClosed',
        expr: `sum without (namespace, api, stage, plan, key_id, decision) (rate(${E.decisions}{decision="${UNAVAILABLE_DECISION}"}[5m])) > 0`,
        for: '5m',
        severity: 'critical',
        summary: `Keystile enforcer ${target} answers 503 ({{ $labels.reason }})`,
        description:
          'The enforcer has answered checks 503 (fail closed) for 5 minutes, reason {{ $labels.reason }}, {{ $value | humanize }} a second: NoConfig means it has no config yet, InternalError that deciding failed (usually the counter store).',
        runbook: [
          '`NoConfig`: follow KeystileEnforcerNotReady.',
          "`InternalError`: look for KeystileStoreUnavailable; with the Redis store and `--redis-unavailable closed` every decision fails while Redis is away. Otherwise read the enforcer's log at `error`.",
        ],
        probe: E.decisions,
      },
      {
        alert: 'KeystileEnforcerFailingOpen',
        expr: `sum without (namespace, api, stage, plan, key_id, decision, reason) (rate(${sel(E.decisions, `decision="${FAIL_OPEN_DECISION}"`)}[5m])) > 0`,
        for: '5m',
        severity: 'critical',
        summary: `Keystile enforcer ${target} lets checks through undecided (fail open)`,
        description:
          'For 5 minutes the enforcer, run with `--fail-open`, has allowed checks it could not decide ({{ $value | humanize }} a second): it has no config, its counter store failed, or deciding failed. Those requests reach the API counted against no quota and, without a config, with no key checked at all.',
        runbook: [
          'No config (KeystileEnforcerNotReady fires too): follow its runbook.',
          "The counter store: follow KeystileStoreUnavailable or KeystileStoreErrors (under `--redis-unavailable closed`, a lost Redis fails these checks, and `--fail-open` allows them). Otherwise read the enforcer's log at `error`.",
          'Whether `--fail-open` should stay on is a choice of availability over enforcement; without it these checks would be 503s (KeystileEnforcerFailingClosed).',
        ],
        probe: `sum without (namespace, api, stage, plan, key_id, decision, reason) (rate(${E.decisions}[5m]))`,
      },
      {
        alert: 'KeystileEnforcerUnknownStage',
        expr: `sum without (namespace, api, stage, plan, key_id, decision, reason) (rate(${sel(E.decisions, `reason="${UNKNOWN_STAGE_REASON}"`)}[5m])) > 0`,
        for: '5m',
        severity: 'critical',
        summary: `Keystile enforcer ${target} refuses checks for an API stage it does not serve`,
        description:
          'For 5 minutes the enforcer has answered checks 403 UnknownStage ({{ $value | humanize }} a second): Envoy sends it checks for an API stage it has not loaded, so every request to that stage is refused, whatever its key. The enforcer is ready (it loaded a config, perhaps with no stage at all), so no other alert sees it.',
        runbook: [
          'See which stages the enforcer serves on the `API stages loaded` and `Config revision per API stage` panels (0 stages: it serves nothing), and compare with the stages Envoy routes to it.',
          "Watch mode: `--stages` (the chart's `gateway.stages` api and stage, a sidecar's `keystile.dev/api-stage` annotation) must name each API stage exactly as its PlanBindings do; a typo loads nothing for that stage.",
          'Check that the operator has rendered the stage: `kubectl -n <namespace> get configmap keystile-<api>.<stage>` (the index). No index: is a PlanBinding Ready for that API stage (`kubectl -n <namespace> get planbindings`), and is the operator leading (KeystileOperatorNoLeader)?',
          'Mounted and standalone modes: the volume or `--config` file must hold the stage (`keystile render` for the standalone file).',
        ],
        probe: `sum without (namespace, api, stage, plan, key_id, decision, reason) (rate(${E.decisions}[5m]))`,
      },
      {
        alert: 'KeystileDecisionLatencyHigh',
        expr: `histogram_quantile(0.99, sum without (transport) (rate(${E.decisionSeconds}_bucket[5m]))) > 0.025`,
        for: '10m',
        severity: 'warning',
        summary: `Keystile enforcer ${target} takes {{ $value | humanizeDuration }} to decide (p99)`,
        description:
          "The 99th percentile of decision time has been above 25 ms for 10 minutes (a decision normally takes tens of microseconds; the Redis store adds a round trip). Every request through Envoy waits for it, and past Envoy's ext_authz timeout it becomes a 503.",
        runbook: [
          'With the Redis store: check Redis latency (`redis-cli --latency`) and the network path to it; a Redis Cluster resharding slows calls.',
          "Check the enforcer's CPU: a throttled container (CPU limit) stretches every decision. Raise the limit or add replicas.",
          'A config reload of a very large stage is parsed in a parse process of its own and should not block decisions; if latency spikes line up with the `Config generation` panel, report it.',
        ],
        probe: `histogram_quantile(0.99, sum without (transport) (rate(${E.decisionSeconds}_bucket[5m])))`,
      },
    ],
  },
  {
    name: 'keystile-counters',
    component: 'counters',
    rules: [
      {
        alert: 'KeystileStoreUnavailable',
        expr: `${E.storeAvailable} == 0`,
        for: '1m',
        severity: 'critical',
        summary: `Keystile enforcer ${target} has lost its counter store`,
        description:
          "The enforcer cannot reach Redis. What clients get depends on `--redis-unavailable`: closed (the default) answers every check 503; open allows every request uncounted; local counts in the enforcer's memory (each replica then grants the whole quota) and adds it to Redis when it returns.",
        runbook: [
          'Check Redis itself: `redis-cli -u <url> ping` and, for a Cluster, `CLUSTER INFO`. (Redis out of memory is not this alert: it refuses writes while it answers, which shows as KeystileStoreErrors.)',
          'Check the path from the enforcer: DNS, NetworkPolicy, TLS settings, the password Secret.',
          'The `Fallback decisions` panel shows how many checks `open` or `local` decided while it was away; under `closed` they are the unavailable ones on the `Requests by decision` panel.',
        ],
        probe: E.storeAvailable,
      },
      {
        alert: 'KeystileStoreErrors',
        expr: `sum without (op) (rate(${E.storeErrors}[5m])) > 0`,
        for: '5m',
        severity: 'warning',
        summary: `Keystile enforcer ${target} gets errors from its counter store`,
        description:
          'Counter-store operations (decisions, adjustments, usage reads, reconciling local counts) have failed for 5 minutes ({{ $value | humanize }} a second). A decision that failed because Redis was away (a timeout, a lost connection, CLUSTERDOWN, LOADING, READONLY and the like) is answered by the `--redis-unavailable` policy; one that Redis refused with an error of its own (out of memory, a script error, WRONGTYPE) is answered 503 whatever the policy.',
        runbook: [
          'See which operations fail on the `Store errors` panel.',
          'Timeouts: Redis is slow or far; compare `--redis-timeout` with Redis latency.',
          'Refused commands: Redis out of memory (`INFO memory`: maxmemory reached with the eviction policy noeviction refuses writes), a read-only replica behind the URL, or a Cluster moving slots.',
        ],
        probe: E.storeErrors,
      },
      {
        alert: 'KeystileStoreFallback',
        expr: `sum without (policy) (rate(${sel(E.storeFallbackDecisions, `policy=~"${oneOf(FALLBACK_POLICY_VALUES)}"`)}[5m])) > 0`,
        for: '1m',
        severity: 'warning',
        summary: `Keystile enforcer ${target} decides without its counter store`,
        description:
          "Checks are being decided under the Redis-loss policy ({{ $value | humanize }} a second): with `open` they are allowed and counted nowhere, with `local` each replica counts on its own, so quotas are not exact until Redis returns. (With `closed`, the default, nothing is decided in Redis's place: the checks fail, which KeystileEnforcerFailingClosed watches.)",
        runbook: [
          'Follow KeystileStoreUnavailable to bring Redis back.',
          'With `local`, the counts kept meanwhile are added to Redis when it returns; with `open`, the requests allowed meanwhile are not counted against any quota.',
        ],
        probe: sel(E.storeFallbackDecisions, `policy=~"${oneOf(FALLBACK_POLICY_VALUES)}"`),
      },
    ],
  },
  {
    name: 'keystile-quota',
    component: 'quota',
    rules: [
      {
        alert: 'KeystileKeyNearQuota',
        expr: onLeader(`((${O.keyQuotaUsed} / (${O.keyQuotaLimit} > 0) > 0.9) < 1)`),
        for: '5m',
        severity: 'warning',
        summary:
          'Key {{ $labels.namespace }}/{{ $labels.apikey }} has used {{ $value | humanizePercentage }} of its quota',
        description:
          "The key has used more than 90% of plan {{ $labels.plan }}'s quota for this period. When it reaches 100% its requests get 429 Limit Exceeded until the period resets.",
        runbook: [
          'Nothing is broken: this is the plan working. Decide whether the customer should get more.',
          'More this period only: create a UsageAdjustment granting requests to the key (exactly once, for the current period).',
          "More every period: move the key to a bigger plan (its PlanBinding), or raise the plan's `quota.limit`.",
          "Customer-facing warnings belong to the plan's `alerts.thresholds`: the operator records an Event on the ApiKey for each threshold crossed.",
        ],
        probe: onLeader(`(${O.keyQuotaUsed} / (${O.keyQuotaLimit} > 0))`),
      },
      {
        alert: 'KeystileKeyQuotaExhausted',
        expr: onLeader(`(${O.keyQuotaUsed} / (${O.keyQuotaLimit} > 0) >= 1)`),
        for: '5m',
        severity: 'info',
        summary: 'Key {{ $labels.namespace }}/{{ $labels.apikey }} has used all its quota',
        description:
          "The key has used all of plan {{ $labels.plan }}'s quota for this period: its requests get 429 Limit Exceeded until the period resets.",
        runbook: [
          'As KeystileKeyNearQuota: a UsageAdjustment grants more for this period, a bigger plan more for every period.',
          'Check the `Throttled and over quota` panel: a client that keeps calling after its quota is gone may need telling.',
        ],
        probe: onLeader(`(${O.keyQuotaUsed} / (${O.keyQuotaLimit} > 0))`),
      },
      {
        alert: 'KeystileQuotaThresholdCrossed',
        expr: `max without (instance, pod) ${countedWithin(E.quotaAlerts, '15m')}`,
        severity: 'info',
        summary:
          "Key {{ $labels.key_id }} crossed {{ $labels.threshold }}% of plan {{ $labels.plan }}'s quota",
        description:
          "A key on plan {{ $labels.plan }} (key id {{ $labels.key_id }}, at API stage {{ $labels.namespace }}/{{ $labels.api }}/{{ $labels.stage }}) crossed the plan's usage-alert threshold of {{ $labels.threshold }}% in the last 15 minutes. The operator records an Event on its ApiKey. (With `--metrics-key-id false` the key id is empty: one alert per plan and threshold.)",
        runbook: [
          'See which keys: `kubectl get events --field-selector reason=QuotaThresholdReached -A`.',
          'Route this alert to whoever talks to customers; it needs no operator action.',
        ],
        probe: `${E.quotaAlerts} and on (job, instance) ${PROMETHEUS.up}`,
      },
    ],
  },
  {
    name: 'keystile-operator',
    component: 'operator',
    rules: [
      {
        alert: 'KeystileOperatorReconcileErrors',
        expr: `sum without (result) (rate(${O.reconciles}{result="error"}[5m])) > 0`,
        for: '15m',
        severity: 'warning',
        summary: `Keystile operator ${target} fails to reconcile {{ $labels.kind }}s`,
        description:
          'Reconciles of kind {{ $labels.kind }} have failed for 15 minutes ({{ $value | humanize }} a second). Failed work is retried with backoff; until it succeeds, changes in the affected namespaces do not reach the enforcers, and statuses do not move.',
        runbook: [
          "Read the operator's log at `error`: each failure names the namespace or key and the API error.",
          "403 Forbidden: the operator's RBAC is not the chart's (`operator/deploy/rbac.yaml`); reinstall or diff it.",
          "422 Invalid or a size error: a rendered object over the API server's limits; report it with the namespace's key count.",
          'Connection errors or 429s: the API server is overloaded; the operator waits out `Retry-After` by itself.',
        ],
        probe: O.reconciles,
      },
      {
        alert: 'KeystileOperatorNoLeader',
        expr: `max without (instance, pod, container) (${O.leader}) < 1`,
        for: '5m',
        severity: 'critical',
        summary: 'No Keystile operator replica of {{ $labels.job }} holds the Lease',
        description:
          'The operator replicas are running but none has held the Lease for 5 minutes, so nothing is rendered: new keys do not work, disabled keys keep working, and plan changes are not enforced.',
        runbook: [
          'Look at the Lease: `kubectl -n <operator namespace> get lease keystile-operator -o yaml` (its holder and renew time).',
          "Read the operator's log for Lease errors: RBAC on `coordination.k8s.io` leases, or an API server that times out renewals.",
          'A replica that cannot renew within 80% of the Lease stops writing and stays a candidate; several replicas all failing to renew point at the API server.',
        ],
        probe: O.leader,
      },
      {
        alert: 'KeystileOperatorAbsent',
        expr: `absent(${O.leader})`,
        for: '10m',
        severity: 'critical',
        summary: 'No Keystile operator is being scraped',
        description:
          'Prometheus has had no operator metrics for 10 minutes: the operator is not running, or not scraped. Without it nothing is rendered for the enforcers.',
        runbook: [
          'Check the Deployment: `kubectl -n <operator namespace> get deploy,pods -l app.kubernetes.io/name=keystile`.',
          'Check the scrape: the ServiceMonitor (`monitoring.serviceMonitor.enabled`) and its labels must match what your Prometheus selects.',
        ],
        probe: O.leader,
      },
      {
        alert: 'KeystileUsagePollFailing',
        expr: `sum without (source) (rate(${O.usagePollErrors}[5m])) > 0`,
        for: '15m',
        severity: 'warning',
        summary: `Keystile operator ${target} fails to read usage`,
        description:
          'Usage polls have failed for 15 minutes ({{ $value | humanize }} a second). Usage in ApiKey status and the quota metrics (and so KeystileKeyNearQuota) go stale; enforcement itself is not affected.',
        runbook: [
          'See which source fails on the `Usage poll errors` panel: an enforcer endpoint or Redis.',
          'Enforcer endpoints (`--usage-endpoints`): a `dns+http://` name must resolve to every enforcer pod (a headless Service); each must answer `GET /v1/usage/quotas` on its admin port.',
          "Redis (`--usage-redis-url`): the same checks as KeystileStoreUnavailable, from the operator's namespace.",
        ],
        probe: O.usagePollErrors,
      },
      {
        alert: 'KeystileUsageStale',
        expr: onLeader(`(time() - (${O.usageLastPoll} > 0) > 300)`),
        for: '5m',
        severity: 'warning',
        summary: `Keystile operator ${target} has not read usage for {{ $value | humanizeDuration }}`,
        description:
          'The leading operator has not completed a usage poll for more than 5 minutes. ApiKey status usage and the quota metrics are stale. (An operator that has never completed one, as when usage reporting is off, exports 0 and is not watched here: polls that fail are KeystileUsagePollFailing.)',
        runbook: [
          'Follow KeystileUsagePollFailing if polls fail.',
          "If nothing fails, the poll may be too slow for its interval with very many keys: compare `--usage-interval` with the time a poll takes in the operator's log.",
        ],
        probe: `(time() - (${O.usageLastPoll} > 0)) and on (job, instance) ${O.leader}`,
      },
    ],
  },
];

/** Every alert, in group order. */
export function allAlerts(): AlertSpec[] {
  return ALERT_GROUPS.flatMap((g) => g.rules);
}

/** A Prometheus rule file (and the `spec` of a PrometheusRule): `groups` of alerting rules. */
export interface RuleFile {
  readonly groups: readonly {
    readonly name: string;
    readonly rules: readonly {
      readonly alert: string;
      readonly expr: string;
      readonly for?: string;
      readonly labels: Readonly<Record<string, string>>;
      readonly annotations: Readonly<Record<string, string>>;
    }[];
  }[];
}

/** The rule groups as Prometheus reads them. */
export function ruleFile(): RuleFile {
  return {
    groups: ALERT_GROUPS.map((g) => ({
      name: g.name,
      rules: g.rules.map((r) => ({
        alert: r.alert,
        expr: r.expr,
        ...(r.for !== undefined && { for: r.for }),
        labels: { severity: r.severity, component: g.component },
        annotations: {
          summary: r.summary,
          description: r.description,
          runbook_url: `${RUNBOOK_PAGE}#${runbookAnchor(r.alert)}`,
        },
      })),
    })),
  };
}
