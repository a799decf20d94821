/**
 * Unit tests of the alerts for `promtool test rules`, as data: input series, and at given times which
 * alerts fire with which labels (an empty list: the alert must not fire). {@link promtoolTests} turns
 * them into promtool's test file; the expected annotations are the rule's own templates with the labels
 * and the expected `$value` text filled in, so promtool also checks how each template renders.
 *
 * Write the file for a run by hand:
 *   node test/observability/rule-cases.ts > /tmp/keystile.rules.test.yaml
 *   promtool test rules /tmp/keystile.rules.test.yaml
 */
import { stringify } from 'yaml';
import { ruleFile } from '../../charts/observability/alerts.ts';
import { PATHS } from '../../charts/observability/generate.ts';

/** An alert expected at an evaluation. */
export interface Expected {
  /** The alert's labels besides `alertname` and the rule's own (`severity`, `component`). */
  readonly labels: Readonly<Record<string, string>>;
  /** What `{{ $value | ... }}` renders to, for alerts whose annotations show it. */
  readonly value?: string;
}

/** One evaluation: at `at`, `alert` fires exactly as `fires` says (none: it must not fire). */
export interface Check {
  readonly at: string;
  readonly alert: string;
  readonly fires: readonly Expected[];
}

/** A scenario: series (promtool's expanding notation, one sample a minute) and checks on them. */
export interface RuleCase {
  readonly name: string;
  readonly series: Readonly<Record<string, string>>;
  readonly checks: readonly Check[];
}

const enforcer = 'job="keystile-enforcer", instance="10.0.0.1:9190"';
const enforcer2 = 'job="keystile-enforcer", instance="10.0.0.2:9190"';
const enforcer3 = 'job="keystile-enforcer", instance="10.0.0.3:9190"';
const operatorA = 'job="keystile-operator", instance="10.0.1.1:8081"';
const operatorB = 'job="keystile-operator", instance="10.0.1.2:8081"';
const E1 = { job: 'keystile-enforcer', instance: '10.0.0.1:9190' };
const E2 = { job: 'keystile-enforcer', instance: '10.0.0.2:9190' };
const E3 = { job: 'keystile-enforcer', instance: '10.0.0.3:9190' };
const OA = { job: 'keystile-operator', instance: '10.0.1.1:8081' };
const OB = { job: 'keystile-operator', instance: '10.0.1.2:8081' };
const key = 'namespace="shop", apikey="alice", plan="gold"';
const KEY = { namespace: 'shop', apikey: 'alice', plan: 'gold' };

/** An enforcer's reload error counters as it exports them: every reason from 0, each with `values`. */
function reloadErrors(target: string, values: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(values).map(([reason, v]) => [
      `keystile_config_reload_errors_total{${target}, reason="${reason}"}`,
      v,
    ]),
  );
}

/** Every case. Each alert has at least one check where it fires and one where it must not. */
export const RULE_CASES: readonly RuleCase[] = [
  {
    name: 'an enforcer without a config for 5 minutes is not ready; a ready one is not',
    series: {
      [`keystile_config_loaded{${enforcer}}`]: '0x10',
      [`keystile_config_loaded{${enforcer2}}`]: '1x10',
    },
    checks: [
      { at: '3m', alert: 'KeystileEnforcerNotReady', fires: [] },
      { at: '6m', alert: 'KeystileEnforcerNotReady', fires: [{ labels: E1 }] },
    ],
  },
  {
    name: 'a target that was an enforcer and fails its scrapes is down; another failing target is not',
    series: {
      [`up{${enforcer}}`]: '1 1 1 0x12',
      [`keystile_config_loaded{${enforcer}}`]: '1 1 1',
      ['up{job="something-else", instance="10.0.9.9:80"}']: '0x15',
    },
    checks: [
      { at: '5m', alert: 'KeystileEnforcerDown', fires: [] },
      { at: '10m', alert: 'KeystileEnforcerDown', fires: [{ labels: E1 }] },
    ],
  },
  {
    // The chart's ServiceMonitor labels every gateway target keystile_component="gateway": a pod of a
    // bad rollout that crashes before its first scrape (E1: no series but `up`), and one down for
    // longer than an hour (E2), are enforcers down; an operator target that fails is not.
    name: 'a gateway target down from the start, or for over an hour, is down; a failing operator target is not',
    series: {
      [`up{${enforcer}, keystile_component="gateway"}`]: '0x80',
      [`up{${enforcer2}, keystile_component="gateway"}`]: '1x5 0x120',
      [`keystile_config_loaded{${enforcer2}, keystile_component="gateway"}`]: '1x5',
      [`up{${enforcer3}, keystile_component="sidecar"}`]: '1x5 0x120',
      [`up{${operatorA}, keystile_component="operator"}`]: '0x80',
    },
    checks: [
      { at: '3m', alert: 'KeystileEnforcerDown', fires: [] },
      {
        at: '6m',
        alert: 'KeystileEnforcerDown',
        fires: [{ labels: { ...E1, keystile_component: 'gateway' } }],
      },
      {
        at: '70m',
        alert: 'KeystileEnforcerDown',
        fires: [
          { labels: { ...E1, keystile_component: 'gateway' } },
          { labels: { ...E2, keystile_component: 'gateway' } },
          { labels: { ...E3, keystile_component: 'sidecar' } },
        ],
      },
    ],
  },
  {
    name: 'a gateway target answering its scrapes is not down',
    series: {
      [`up{${enforcer}, keystile_component="gateway"}`]: '1x20',
      [`up{${enforcer2}}`]: '1x20',
      [`keystile_config_loaded{${enforcer2}}`]: '1x20',
    },
    checks: [{ at: '15m', alert: 'KeystileEnforcerDown', fires: [] }],
  },
  {
    name: 'a refused config (Invalid) alerts, even the first (its counter starts at 0); Incomplete alone does not; it resolves 10 minutes later',
    series: {
      [`up{${enforcer}}`]: '1x25',
      [`up{${enforcer2}}`]: '1x25',
      [`up{${enforcer3}}`]: '1x25',
      [`keystile_config_reload_errors_total{${enforcer}, reason="Invalid"}`]: '0 0 1 1 1 1x20',
      // The enforcer creates the series of every reason at 0: its first refusal is an increase.
      [`keystile_config_reload_errors_total{${enforcer3}, reason="Unreadable"}`]: '0 0 1x20',
      [`keystile_config_reload_errors_total{${enforcer2}, reason="Incomplete"}`]: '0 1 2 3 4 5 6x20',
      // Refused before Prometheus first scraped it: old news, not a new refusal.
      [`keystile_config_reload_errors_total{${enforcer2}, reason="Invalid"}`]: '3x25',
    },
    checks: [
      { at: '1m', alert: 'KeystileEnforcerConfigRefused', fires: [] },
      {
        at: '4m',
        alert: 'KeystileEnforcerConfigRefused',
        fires: [
          { labels: E1, value: '1' },
          { labels: E3, value: '1' },
        ],
      },
      { at: '20m', alert: 'KeystileEnforcerConfigRefused', fires: [] },
    ],
  },
  {
    name: 'an enforcer refusing every config it is given for 15 minutes is stale',
    series: {
      [`up{${enforcer}}`]: '1x40',
      [`up{${enforcer3}}`]: '1x40',
      // Started at 0, loaded in full at 1m; every load refused since 10m (the last refusal's time moves on).
      [`process_start_time_seconds{${enforcer}}`]: '0x40',
      [`keystile_config_loaded{${enforcer}}`]: '1x40',
      [`keystile_config_last_reload_success_timestamp_seconds{${enforcer}}`]: '60x40',
      [`keystile_config_last_reload_error_timestamp_seconds{${enforcer}}`]: '0x9 600+60x30',
      // Refused once at 10m, then a load with nothing refused at 12m: fixed, not stale.
      [`process_start_time_seconds{${enforcer3}}`]: '0x40',
      [`keystile_config_loaded{${enforcer3}}`]: '1x40',
      [`keystile_config_last_reload_success_timestamp_seconds{${enforcer3}}`]: '60x11 720x28',
      [`keystile_config_last_reload_error_timestamp_seconds{${enforcer3}}`]: '0x9 600x30',
    },
    checks: [
      { at: '24m', alert: 'KeystileEnforcerConfigStale', fires: [] },
      { at: '26m', alert: 'KeystileEnforcerConfigStale', fires: [{ labels: E1, value: '25m 0s' }] },
    ],
  },
  {
    // Started at 5m (Unix 300 on promtool's clock, which starts at 0), its first load swapped one stage
    // in and refused another: ready, and its last load that refused nothing is never (0). Its config has
    // been incomplete since it started, not since 1970.
    name: 'an enforcer whose first load refused a stage is stale, for as long as it has run',
    series: {
      [`up{${enforcer2}}`]: '_x5 1x40',
      [`process_start_time_seconds{${enforcer2}}`]: '_x5 300x40',
      [`keystile_config_loaded{${enforcer2}}`]: '_x5 1x40',
      [`keystile_config_last_reload_success_timestamp_seconds{${enforcer2}}`]: '_x5 0x40',
      [`keystile_config_last_reload_error_timestamp_seconds{${enforcer2}}`]: '_x5 300x40',
    },
    checks: [
      { at: '19m', alert: 'KeystileEnforcerConfigStale', fires: [] },
      { at: '25m', alert: 'KeystileEnforcerConfigStale', fires: [{ labels: E2, value: '20m 0s' }] },
    ],
  },
  {
    name: 'not stale: a routine refusal followed by a clean load, however long ago; never refused; not ready',
    series: {
      [`up{${enforcer}}`]: '1x60',
      [`up{${enforcer2}}`]: '1x60',
      ['up{job="keystile-enforcer", instance="10.0.0.3:9190"}']: '1x60',
      // An index before its shard (Incomplete) at 10m, the whole config a minute later, then nothing
      // new for 50 minutes.
      [`process_start_time_seconds{${enforcer}}`]: '0x60',
      [`keystile_config_loaded{${enforcer}}`]: '1x60',
      [`keystile_config_last_reload_success_timestamp_seconds{${enforcer}}`]: '60x9 660x51',
      [`keystile_config_last_reload_error_timestamp_seconds{${enforcer}}`]: '0x9 600x51',
      ...reloadErrors(enforcer, { Incomplete: '0x9 1x51' }),
      // Loaded once, long ago, nothing refused.
      [`process_start_time_seconds{${enforcer2}}`]: '0x60',
      [`keystile_config_loaded{${enforcer2}}`]: '1x60',
      [`keystile_config_last_reload_success_timestamp_seconds{${enforcer2}}`]: '60x60',
      [`keystile_config_last_reload_error_timestamp_seconds{${enforcer2}}`]: '0x60',
      // Not ready: NotReady's business, not this alert's.
      ['process_start_time_seconds{job="keystile-enforcer", instance="10.0.0.3:9190"}']: '0x60',
      ['keystile_config_loaded{job="keystile-enforcer", instance="10.0.0.3:9190"}']: '0x60',
      ['keystile_config_last_reload_success_timestamp_seconds{job="keystile-enforcer", instance="10.0.0.3:9190"}']:
        '0x60',
      ['keystile_config_last_reload_error_timestamp_seconds{job="keystile-enforcer", instance="10.0.0.3:9190"}']:
        '60+60x60',
    },
    checks: [
      { at: '30m', alert: 'KeystileEnforcerConfigStale', fires: [] },
      { at: '59m', alert: 'KeystileEnforcerConfigStale', fires: [] },
    ],
  },
  {
    // One failed scrape (a timeout, a container restart) at 20m on E1, with nothing refused: its
    // pre-initialised reload error series and an old threshold crossing miss a sample while `up` is 0.
    // E3 refuses a config, and E2 counts a crossing, just after a failed scrape of their own.
    name: 'a missed scrape alerts nothing; a refusal or a crossing just after one still alerts',
    series: {
      [`up{${enforcer}}`]: '1x19 0 1x20',
      ...reloadErrors(enforcer, {
        Invalid: '0x19 _ 0x20',
        Inconsistent: '0x19 _ 0x20',
        Unreadable: '0x19 _ 0x20',
        Incomplete: '0x19 _ 0x20',
      }),
      [`keystile_config_loaded{${enforcer}}`]: '1x19 _ 1x20',
      // Loaded in full once, just after its start, and not reloaded since.
      [`keystile_config_last_reload_success_timestamp_seconds{${enforcer}}`]: '5x19 _ 5x20',
      [`keystile_quota_alerts_total{${enforcer}, namespace="shop", api="orders", stage="prod", plan="shop/gold", key_id="k1", threshold="80"}`]:
        '1x19 _ 1x20',
      [`up{${enforcer3}}`]: '1x19 0 1x20',
      ...reloadErrors(enforcer3, { Invalid: '0x19 _ 1x20', Incomplete: '0x19 _ 0x20' }),
      [`keystile_config_loaded{${enforcer3}}`]: '1x19 _ 1x20',
      [`up{${enforcer2}}`]: '1x19 0 1x20',
      [`keystile_quota_alerts_total{${enforcer2}, namespace="shop", api="orders", stage="prod", plan="shop/gold", key_id="k2", threshold="90"}`]:
        '_x22 1x17',
    },
    checks: [
      { at: '21m', alert: 'KeystileEnforcerConfigRefused', fires: [] },
      { at: '25m', alert: 'KeystileEnforcerConfigRefused', fires: [{ labels: E3, value: '1' }] },
      { at: '30m', alert: 'KeystileEnforcerConfigStale', fires: [] },
      { at: '36m', alert: 'KeystileEnforcerConfigStale', fires: [] },
      {
        at: '25m',
        alert: 'KeystileQuotaThresholdCrossed',
        fires: [
          {
            labels: {
              job: 'keystile-enforcer',
              namespace: 'shop',
              api: 'orders',
              stage: 'prod',
              plan: 'shop/gold',
              key_id: 'k2',
              threshold: '90',
            },
          },
        ],
      },
      { at: '21m', alert: 'KeystileQuotaThresholdCrossed', fires: [] },
    ],
  },
  {
    // Restarted at 20m (two failed scrapes, which mark its series stale): its counters start again at
    // 0, its threshold crossings are forgotten, and it swaps its config in again. E2 refused configs
    // long ago, and refuses one again as it restarts.
    name: 'a restarted enforcer alerts nothing; one refusing as it restarts alerts',
    series: {
      [`up{${enforcer}}`]: '1x19 0 0 1x20',
      ...reloadErrors(enforcer, { Invalid: '2x19 stale stale 0x20', Incomplete: '5x19 stale stale 0x20' }),
      [`keystile_config_loaded{${enforcer}}`]: '1x19 stale stale 1x20',
      [`keystile_config_last_reload_success_timestamp_seconds{${enforcer}}`]: '5x19 stale stale 1260x20',
      [`keystile_quota_alerts_total{${enforcer}, namespace="shop", api="orders", stage="prod", plan="shop/gold", key_id="k1", threshold="80"}`]:
        '1x19 stale',
      [`up{${enforcer2}}`]: '1x19 0 0 1x20',
      ...reloadErrors(enforcer2, { Invalid: '2x19 stale stale 1x20' }),
    },
    checks: [
      { at: '25m', alert: 'KeystileEnforcerConfigRefused', fires: [{ labels: E2, value: '1' }] },
      { at: '22m', alert: 'KeystileQuotaThresholdCrossed', fires: [] },
      { at: '30m', alert: 'KeystileQuotaThresholdCrossed', fires: [] },
      { at: '30m', alert: 'KeystileEnforcerConfigStale', fires: [] },
    ],
  },
  {
    name: 'an enforcer answering 503 for 5 minutes fails closed; denials are not failures',
    series: {
      [`keystile_decisions_total{${enforcer}, namespace="shop", api="orders", stage="prod", decision="unavailable", reason="NoConfig"}`]:
        '0+10x20',
      [`keystile_decisions_total{${enforcer2}, namespace="shop", api="orders", stage="prod", decision="forbidden", reason="MissingKey"}`]:
        '0+100x20',
    },
    checks: [
      { at: '3m', alert: 'KeystileEnforcerFailingClosed', fires: [] },
      {
        at: '10m',
        alert: 'KeystileEnforcerFailingClosed',
        fires: [{ labels: { ...E1, reason: 'NoConfig' }, value: '166.7m' }],
      },
    ],
  },
  {
    // E1 runs with --fail-open and its Redis is gone (closed policy): it allows what it cannot count. E2
    // allows checks it decided.
    name: 'an enforcer allowing undecided checks for 5 minutes fails open; allowed checks do not',
    series: {
      [`keystile_decisions_total{${enforcer}, namespace="shop", api="orders", stage="prod", plan="shop/gold", key_id="k1", decision="fail_open", reason="FailOpen"}`]:
        '0+6x20',
      [`keystile_decisions_total{${enforcer2}, namespace="shop", api="orders", stage="prod", plan="shop/gold", key_id="k1", decision="allowed", reason="Allowed"}`]:
        '0+100x20',
    },
    checks: [
      { at: '3m', alert: 'KeystileEnforcerFailingOpen', fires: [] },
      { at: '10m', alert: 'KeystileEnforcerFailingOpen', fires: [{ labels: E1, value: '100m' }] },
    ],
  },
  {
    // E1 loaded no stage (a --stages typo): every check is UnknownStage, with no API stage labels. E2
    // denies keys on a stage it serves; E3 once saw a check for an unknown stage, long ago.
    name: 'an enforcer answering UnknownStage for 5 minutes alerts; other denials and old ones do not',
    series: {
      [`keystile_decisions_total{${enforcer}, plan="", key_id="", decision="forbidden", reason="UnknownStage"}`]:
        '0+30x20',
      [`keystile_decisions_total{${enforcer2}, namespace="shop", api="orders", stage="prod", decision="forbidden", reason="MissingKey"}`]:
        '0+100x20',
      [`keystile_decisions_total{${enforcer3}, decision="forbidden", reason="UnknownStage"}`]: '2x20',
    },
    checks: [
      { at: '3m', alert: 'KeystileEnforcerUnknownStage', fires: [] },
      { at: '10m', alert: 'KeystileEnforcerUnknownStage', fires: [{ labels: E1, value: '500m' }] },
    ],
  },
  {
    name: 'a p99 above 25 ms for 10 minutes is high latency; a fast enforcer is not',
    series: {
      [`keystile_decision_duration_seconds_bucket{${enforcer}, transport="http", le="0.001"}`]: '0+10x30',
      [`keystile_decision_duration_seconds_bucket{${enforcer}, transport="http", le="0.01"}`]: '0+20x30',
      [`keystile_decision_duration_seconds_bucket{${enforcer}, transport="http", le="0.05"}`]: '0+100x30',
      [`keystile_decision_duration_seconds_bucket{${enforcer}, transport="http", le="+Inf"}`]: '0+100x30',
      [`keystile_decision_duration_seconds_bucket{${enforcer2}, transport="grpc", le="0.001"}`]: '0+100x30',
      [`keystile_decision_duration_seconds_bucket{${enforcer2}, transport="grpc", le="0.01"}`]: '0+100x30',
      [`keystile_decision_duration_seconds_bucket{${enforcer2}, transport="grpc", le="0.05"}`]: '0+100x30',
      [`keystile_decision_duration_seconds_bucket{${enforcer2}, transport="grpc", le="+Inf"}`]: '0+100x30',
    },
    checks: [
      { at: '8m', alert: 'KeystileDecisionLatencyHigh', fires: [] },
      { at: '16m', alert: 'KeystileDecisionLatencyHigh', fires: [{ labels: E1, value: '49.5ms' }] },
    ],
  },
  {
    name: 'a store unavailable for a minute alerts; an available one does not',
    series: {
      [`keystile_store_available{${enforcer}}`]: '1 0x10',
      [`keystile_store_available{${enforcer2}}`]: '1x10',
    },
    checks: [
      { at: '1m', alert: 'KeystileStoreUnavailable', fires: [] },
      { at: '3m', alert: 'KeystileStoreUnavailable', fires: [{ labels: E1 }] },
    ],
  },
  {
    name: 'store errors for 5 minutes alert, summed over operations; errors long past do not',
    series: {
      [`keystile_store_errors_total{${enforcer}, op="consume"}`]: '0+6x20',
      [`keystile_store_errors_total{${enforcer}, op="adjust"}`]: '0+6x20',
      [`keystile_store_errors_total{${enforcer2}, op="consume"}`]: '5x20',
    },
    checks: [
      { at: '3m', alert: 'KeystileStoreErrors', fires: [] },
      { at: '10m', alert: 'KeystileStoreErrors', fires: [{ labels: E1, value: '200m' }] },
    ],
  },
  {
    // E3 runs the default `closed` policy, as an enforcer exported it before `closed` stopped counting
    // here: its checks fail (FailingClosed's business), nothing is decided in Redis's place.
    name: 'decisions under the Redis-loss policy alert after a minute; none, or closed, do not',
    series: {
      [`keystile_store_fallback_decisions_total{${enforcer}, policy="local"}`]: '0+60x10',
      [`keystile_store_fallback_decisions_total{${enforcer2}, policy="open"}`]: '7x10',
      [`keystile_store_fallback_decisions_total{${enforcer3}, policy="closed"}`]: '0+60x10',
    },
    checks: [
      { at: '7m', alert: 'KeystileStoreFallback', fires: [{ labels: E1, value: '1' }] },
      { at: '0m', alert: 'KeystileStoreFallback', fires: [] },
    ],
  },
  {
    name: 'a key above 90% of its quota is near it; at 100% it is exhausted instead',
    series: {
      [`keystile_operator_leader{${operatorA}}`]: '1x10',
      [`keystile_operator_key_quota_used{${operatorA}, ${key}}`]: '95x10',
      [`keystile_operator_key_quota_limit{${operatorA}, ${key}}`]: '100x10',
      [`keystile_operator_key_quota_used{${operatorA}, namespace="shop", apikey="bob", plan="gold"}`]:
        '100x10',
      [`keystile_operator_key_quota_limit{${operatorA}, namespace="shop", apikey="bob", plan="gold"}`]:
        '100x10',
      [`keystile_operator_key_quota_used{${operatorA}, namespace="shop", apikey="carol", plan="gold"}`]:
        '50x10',
      [`keystile_operator_key_quota_limit{${operatorA}, namespace="shop", apikey="carol", plan="gold"}`]:
        '100x10',
      // A limit of 0 (a plan without quota) is never "near".
      [`keystile_operator_key_quota_used{${operatorA}, namespace="shop", apikey="dave", plan="free"}`]:
        '5x10',
      [`keystile_operator_key_quota_limit{${operatorA}, namespace="shop", apikey="dave", plan="free"}`]:
        '0x10',
    },
    checks: [
      { at: '3m', alert: 'KeystileKeyNearQuota', fires: [] },
      { at: '6m', alert: 'KeystileKeyNearQuota', fires: [{ labels: { ...OA, ...KEY }, value: '95%' }] },
      {
        at: '6m',
        alert: 'KeystileKeyQuotaExhausted',
        fires: [{ labels: { ...OA, namespace: 'shop', apikey: 'bob', plan: 'gold' } }],
      },
    ],
  },
  {
    name: 'a key below its quota is not exhausted',
    series: {
      [`keystile_operator_leader{${operatorA}}`]: '1x10',
      [`keystile_operator_key_quota_used{${operatorA}, ${key}}`]: '99x10',
      [`keystile_operator_key_quota_limit{${operatorA}, ${key}}`]: '100x10',
    },
    checks: [{ at: '8m', alert: 'KeystileKeyQuotaExhausted', fires: [] }],
  },
  {
    // A lost the Lease at the start and kept its last gauges (the period has reset since); B leads.
    name: "a follower's frozen quota gauges alert nothing; the leader's do",
    series: {
      [`keystile_operator_leader{${operatorA}}`]: '0x30',
      [`keystile_operator_key_quota_used{${operatorA}, ${key}}`]: '9500x30',
      [`keystile_operator_key_quota_limit{${operatorA}, ${key}}`]: '10000x30',
      [`keystile_operator_key_quota_used{${operatorA}, namespace="shop", apikey="bob", plan="gold"}`]:
        '100x30',
      [`keystile_operator_key_quota_limit{${operatorA}, namespace="shop", apikey="bob", plan="gold"}`]:
        '100x30',
      [`keystile_operator_leader{${operatorB}}`]: '1x30',
      [`keystile_operator_key_quota_used{${operatorB}, ${key}}`]: '10x30',
      [`keystile_operator_key_quota_limit{${operatorB}, ${key}}`]: '10000x30',
      [`keystile_operator_key_quota_used{${operatorB}, namespace="shop", apikey="bob", plan="gold"}`]: '3x30',
      [`keystile_operator_key_quota_limit{${operatorB}, namespace="shop", apikey="bob", plan="gold"}`]:
        '100x30',
      [`keystile_operator_key_quota_used{${operatorB}, namespace="shop", apikey="carol", plan="gold"}`]:
        '92x30',
      [`keystile_operator_key_quota_limit{${operatorB}, namespace="shop", apikey="carol", plan="gold"}`]:
        '100x30',
    },
    checks: [
      {
        at: '20m',
        alert: 'KeystileKeyNearQuota',
        fires: [{ labels: { ...OB, namespace: 'shop', apikey: 'carol', plan: 'gold' }, value: '92%' }],
      },
      { at: '20m', alert: 'KeystileKeyQuotaExhausted', fires: [] },
    ],
  },
  {
    // Each crossing is counted once per key and period: its series is born counting 1 and never moves.
    name: 'a key crossing a usage threshold on two enforcers is one alert, gone 15 minutes later',
    series: {
      [`up{${enforcer}}`]: '1x22',
      [`up{${enforcer2}}`]: '1x22',
      [`keystile_quota_alerts_total{${enforcer}, namespace="shop", api="orders", stage="prod", plan="shop/gold", key_id="reb5rb7kcy5p", threshold="80"}`]:
        '_ 1x20',
      [`keystile_quota_alerts_total{${enforcer2}, namespace="shop", api="orders", stage="prod", plan="shop/gold", key_id="reb5rb7kcy5p", threshold="80"}`]:
        '_ _ 1x20',
    },
    checks: [
      {
        at: '3m',
        alert: 'KeystileQuotaThresholdCrossed',
        fires: [
          {
            labels: {
              job: 'keystile-enforcer',
              namespace: 'shop',
              api: 'orders',
              stage: 'prod',
              plan: 'shop/gold',
              key_id: 'reb5rb7kcy5p',
              threshold: '80',
            },
          },
        ],
      },
      { at: '20m', alert: 'KeystileQuotaThresholdCrossed', fires: [] },
    ],
  },
  {
    name: 'reconcile errors for 15 minutes alert per kind; successful reconciles do not',
    series: {
      [`keystile_operator_reconciles_total{${operatorA}, kind="namespace", result="error"}`]: '0+1x30',
      [`keystile_operator_reconciles_total{${operatorA}, kind="namespace", result="ok"}`]: '0+50x30',
      [`keystile_operator_reconciles_total{${operatorA}, kind="key", result="ok"}`]: '0+50x30',
    },
    checks: [
      { at: '10m', alert: 'KeystileOperatorReconcileErrors', fires: [] },
      {
        at: '20m',
        alert: 'KeystileOperatorReconcileErrors',
        fires: [{ labels: { ...OA, kind: 'namespace' }, value: '16.67m' }],
      },
    ],
  },
  {
    name: 'operator replicas none of which leads alert; one leading is fine',
    series: {
      [`keystile_operator_leader{${operatorA}}`]: '1 1 0x10',
      [`keystile_operator_leader{${operatorB}}`]: '0x12',
    },
    checks: [
      { at: '1m', alert: 'KeystileOperatorNoLeader', fires: [] },
      { at: '4m', alert: 'KeystileOperatorNoLeader', fires: [] },
      { at: '8m', alert: 'KeystileOperatorNoLeader', fires: [{ labels: { job: 'keystile-operator' } }] },
    ],
  },
  {
    name: 'no operator scraped for 10 minutes is absent',
    series: { [`keystile_config_loaded{${enforcer}}`]: '1x15' },
    checks: [
      { at: '5m', alert: 'KeystileOperatorAbsent', fires: [] },
      { at: '12m', alert: 'KeystileOperatorAbsent', fires: [{ labels: {} }] },
    ],
  },
  {
    name: 'an operator being scraped is not absent',
    series: { [`keystile_operator_leader{${operatorA}}`]: '0x15' },
    checks: [{ at: '12m', alert: 'KeystileOperatorAbsent', fires: [] }],
  },
  {
    name: 'usage poll errors for 15 minutes alert per operator; old errors do not',
    series: {
      [`keystile_operator_usage_poll_errors_total{${operatorA}, source="http://10.0.0.1:9190"}`]: '0+2x30',
      [`keystile_operator_usage_poll_errors_total{${operatorB}, source="redis"}`]: '4x30',
    },
    checks: [
      { at: '10m', alert: 'KeystileUsagePollFailing', fires: [] },
      { at: '20m', alert: 'KeystileUsagePollFailing', fires: [{ labels: OA, value: '33.33m' }] },
    ],
  },
  {
    name: 'usage unread for 5 minutes on the leader is stale; a follower or a fresh leader is not',
    series: {
      // Polled at 1m, 2m and 3m (0 before: never), then no more.
      [`keystile_operator_leader{${operatorA}}`]: '1x20',
      [`keystile_operator_usage_last_poll_timestamp_seconds{${operatorA}}`]: '0 60 120 180x18',
      [`keystile_operator_leader{${operatorB}}`]: '0x20',
      [`keystile_operator_usage_last_poll_timestamp_seconds{${operatorB}}`]: '180x20',
    },
    checks: [
      // 5 minutes past the last poll at 8m, and for 5 minutes more at 13m.
      { at: '13m', alert: 'KeystileUsageStale', fires: [] },
      { at: '15m', alert: 'KeystileUsageStale', fires: [{ labels: OA, value: '12m 0s' }] },
    ],
  },
  {
    // No poller (no Redis, no usage endpoints: the chart's defaults): the leader exports 0 for good.
    name: 'a leader that never polls usage (usage reporting off) is not stale',
    series: {
      [`keystile_operator_leader{${operatorA}}`]: '1x40',
      [`keystile_operator_usage_last_poll_timestamp_seconds{${operatorA}}`]: '0x40',
    },
    checks: [
      { at: '12m', alert: 'KeystileUsageStale', fires: [] },
      { at: '35m', alert: 'KeystileUsageStale', fires: [] },
    ],
  },
  {
    name: 'usage read every minute by the leader is fresh',
    series: {
      [`keystile_operator_leader{${operatorA}}`]: '1x20',
      [`keystile_operator_usage_last_poll_timestamp_seconds{${operatorA}}`]: '0+60x20',
    },
    checks: [{ at: '15m', alert: 'KeystileUsageStale', fires: [] }],
  },
];

/** The rule of an alert and the `component` of its group. */
function ruleOf(alert: string): { labels: Record<string, string> } {
  const rule = ruleFile()
    .groups.flatMap((g) => g.rules)
    .find((r) => r.alert === alert);
  if (rule === undefined) throw new Error(`no alert ${alert} in the rules`);
  return { labels: { ...rule.labels } };
}

/** An annotation template with the labels and the expected value text filled in. */
export function render(template: string, labels: Readonly<Record<string, string>>, value?: string): string {
  return template
    .replace(/\{\{ \$labels\.(\w+) \}\}/g, (_m, name: string) => labels[name] ?? '')
    .replace(/\{\{ \$value[^}]*\}\}/g, () => {
      if (value === undefined) throw new Error(`a case must give the value "${template}" shows`);
      return value;
    });
}

/** promtool's test file for {@link RULE_CASES} (rule file named by absolute path). */
export function promtoolTests(cases: readonly RuleCase[] = RULE_CASES): string {
  const rules = ruleFile();
  return stringify(
    {
      rule_files: [PATHS.rules],
      evaluation_interval: '1m',
      tests: cases.map((c) => ({
        name: c.name,
        interval: '1m',
        input_series: Object.entries(c.series).map(([series, values]) => ({ series, values })),
        alert_rule_test: c.checks.map((check) => {
          const { labels: ruleLabels } = ruleOf(check.alert);
          const annotations =
            rules.groups.flatMap((g) => g.rules).find((r) => r.alert === check.alert)?.annotations ?? {};
          return {
            eval_time: check.at,
            alertname: check.alert,
            exp_alerts: check.fires.map((f) => {
              const labels = { ...f.labels, ...ruleLabels };
              return {
                exp_labels: labels,
                exp_annotations: Object.fromEntries(
                  Object.entries(annotations).map(([k, t]) => [k, render(t, labels, f.value)]),
                ),
              };
            }),
          };
        }),
      })),
    },
    { lineWidth: 0 },
  );
}

if (import.meta.main) process.stdout.write(promtoolTests());
