/**
 * The usage poller (leader only): every --usage-interval it reads the quota counters (Redis itself with
 * the Redis store; every enforcer's admin port with the memory store, added up), works out each
 * ApiKey's `status.usage[]`, and hands the keys whose usage changed to the bounded-rate writer
 * (longest-stale first, at most W writes a second). A status that records a newly crossed alert
 * threshold is written first, and its Event recorded once the write succeeded. It also notes who serves
 * each stage (the UsagePlan condition CountersShared) and which adjustments enforcers applied (the
 * UsageAdjustment condition Applied), and asks the namespace reconcile to write those.
 */
import type { Logger } from 'pino';
import type { ApiKey, UsageAdjustment, UsagePlan } from '../../../crds/src/index.ts';
import { API_VERSION } from '../../../crds/src/index.ts';
import { adjustmentMarkerKey, counterKeys, planId, type Subject } from '../../../contract/src/identity.ts';
import type { UsageConfig } from '../config.ts';
import { describe, isConflict } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { Informers } from '../kube/informers.ts';
import type { Writer } from '../kube/writer.ts';
import { adjustmentId, keySubject } from '../render/adjustments.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import { ALERT_REASON, alertMessage } from './alerts.ts';
import { combineAnswers, type Combined } from './combine.ts';
import { type EndpointDeps, pollEndpoints } from './endpoints.ts';
import type { RedisCounters } from './redis-counters.ts';
import { UsageStatusWriter, type WriteOutcome } from './status-writer.ts';
import { keyRef, usageTargets } from './targets.ts';
import {
  type Announcement,
  type Counter,
  desiredUsage,
  type KeyUsage,
  usageChanged,
} from './usage-status.ts';
import type { UsageView } from './view.ts';

/** A usage status to write: the list, and the alerts it records. */
export interface UsageWrite {
  readonly usage: KeyUsage[];
  readonly announce: readonly Announcement[];
}

/** What the poller needs. */
export interface UsagePollerDeps {
  readonly config: UsageConfig;
  readonly informers: Informers;
  readonly writer: Writer;
  readonly events: EventRecorder;
  readonly metrics: OperatorMetrics;
  readonly log: Logger;
  readonly view: UsageView;
  /** The Redis counters, with the Redis store. */
  readonly redis: RedisCounters | undefined;
  /** Queues a namespace's reconcile (it writes plan and adjustment statuses). */
  readonly requeueNamespace: (namespace: string) => void;
  readonly endpointDeps?: EndpointDeps;
  readonly now?: () => Date;
}

/** The poller. */
export class UsagePoller {
  readonly #d: UsagePollerDeps;
  readonly #now: () => Date;
  readonly #writer: UsageStatusWriter<UsageWrite>;
  /**
   * What this leader last wrote per key: compared before the informer cache has caught up. Everything
   * kept per key (this, the alerts announced, the pending writes) is by {@link memoryId}, with the uid:
   * an ApiKey deleted and created again under its name is a new key, with none of the old one's usage.
   */
  readonly #written = new Map<string, KeyUsage[]>();
  /** Alerts announced per key, `plan|period` -> threshold: never twice, even while a cache lags. */
  readonly #announced = new Map<string, Map<string, number>>();
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #running = false;

  constructor(deps: UsagePollerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => new Date());
    this.#writer = new UsageStatusWriter<UsageWrite>({
      ratePerSecond: deps.config.writesPerSecond,
      write: (id, value) => this.#write(id, value),
      onWritten: (id, value, outcome) => this.#written_(id, value, outcome),
      onError: (id, err) => {
        deps.metrics.usageStatusWrites.inc({ result: 'error' });
        const apiKey = id.split('/').slice(0, 2).join('/');
        if (isConflict(err)) deps.log.debug({ apiKey }, 'usage status conflict; retrying');
        else deps.log.warn({ apiKey, err: describe(err) }, 'usage status write failed; retrying');
      },
    });
  }

  /** Starts polling now and every interval, and the writer. */
  start(): void {
    this.#running = true;
    this.#writer.start();
    const tick = (): void => {
      if (!this.#running) return;
      this.#polling = this.pollOnce()
        .catch((err: unknown) => this.#d.log.warn({ err: describe(err) }, 'usage poll failed'))
        .finally(() => {
          if (this.#running) this.#timer = setTimeout(tick, this.#d.config.intervalMs);
        });
    };
    tick();
  }

  /** Resolves once every write the polls so far asked for was made (or failed and waits for a retry token). */
  async drained(): Promise<void> {
    await this.#polling;
    await this.#writer.drained();
  }

  /** Stops polling and writing (waits for what is in flight). */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#polling;
    await this.#writer.stop();
    // A replica that stopped polling (it lost the Lease, or is stopping) reports no quotas: its last
    // figures would stay exported beside the new leader's, frozen, and double the per-plan sums.
    const m = this.#d.metrics;
    m.keyQuotaUsed.reset();
    m.keyQuotaLimit.reset();
    m.planQuotaUsed.reset();
    m.usagePendingWrites.set(0);
    m.usageOldestPendingSeconds.set(0);
  }

  /** One poll: read, compute, queue the writes; resolves once queued (not written). */
  async pollOnce(): Promise<void> {
    const { config, informers, metrics, log, view, redis } = this.#d;
    const now = this.#now();
    const keys = informers.keys.list() as ApiKey[];
    const plan = (ns: string, name: string): UsagePlan | undefined => informers.plans.get(name, ns);
    const targets = usageTargets(keys, plan, now);
    const adjustments = (informers.adjustments.list() as UsageAdjustment[]).filter(
      (a) => a.status?.appliedAt === undefined && a.status?.period !== undefined,
    );
    const markers = adjustments.flatMap((a) => {
      const quotaKey = adjustmentQuotaKey(a, plan, (ns, n) => informers.keys.get(n, ns));
      return quotaKey ? [{ a, marker: adjustmentMarkerKey(quotaKey, adjustmentId(a)) }] : [];
    });

    // Read every source at once.
    let errors = 0;
    const polled =
      config.endpoints.length > 0
        ? pollEndpoints(config.endpoints, config.timeoutMs, this.#d.endpointDeps)
        : Promise.resolve(undefined);
    const quotaKeys = [...new Set([...targets.values()].flat().map((t) => t.quotaKey))];
    const fromRedis = redis
      ? Promise.all([redis.readQuotas(quotaKeys), redis.exist(markers.map((m) => m.marker))]).catch(
          (err: unknown) => {
            errors++;
            metrics.usagePollErrors.inc({ source: 'redis' });
            log.warn({ err: describe(err) }, 'usage: cannot read Redis');
            return undefined;
          },
        )
      : Promise.resolve(undefined);
    const [endpointPoll, redisRead] = await Promise.all([polled, fromRedis]);
    let combined: Combined | undefined;
    if (endpointPoll) {
      for (const e of endpointPoll.errors) {
        errors++;
        metrics.usagePollErrors.inc({ source: 'endpoints' });
        log.warn({ endpoint: e.endpoint, err: e.error }, 'usage: an enforcer did not answer');
      }
      combined = combineAnswers(endpointPoll.answers);
      const first = !view.polled;
      const changed = view.recordServed(combined.served, now.getTime(), endpointPoll.errors.length === 0);
      // The first poll makes every plan's CountersShared known; later ones change only where the
      // picture of who serves what changed.
      if (first) for (const p of informers.plans.list()) changed.add(p.metadata?.namespace ?? '');
      for (const ns of changed) this.#d.requeueNamespace(ns);
    }

    // Adjustments now applied: the namespace reconcile records it.
    const at = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
    markers.forEach(({ a }, i) => {
      const applied = redisRead?.[1][i] === true || combined?.adjustments.has(adjustmentId(a)) === true;
      if (applied && view.appliedAt(adjustmentId(a)) === undefined) {
        view.markApplied(adjustmentId(a), at);
        this.#d.requeueNamespace(a.metadata.namespace ?? '');
      }
    });
    const pending = new Set(adjustments.map(adjustmentId));
    view.pruneApplied((id) => pending.has(id));

    // Counters: Redis's when it is the store (plus any memory store's, counted separately), else the sums.
    const countersUsable = redis ? redisRead !== undefined : (endpointPoll?.answers.length ?? 0) > 0;
    if (!countersUsable) {
      metrics.usagePolls.inc({ result: 'error' });
      return;
    }
    const counter = (quotaKey: string): Counter | undefined => {
      const r = redisRead?.[0].get(quotaKey);
      const m = combined?.counters.get(quotaKey);
      if (!r || !m) return r ?? m;
      return {
        used: r.used + m.used,
        granted: Math.abs(r.granted) >= Math.abs(m.granted) ? r.granted : m.granted,
      };
    };

    metrics.keyQuotaUsed.reset();
    metrics.keyQuotaLimit.reset();
    metrics.planQuotaUsed.reset();
    const planSums = new Map<string, { ns: string; plan: string; counted: Set<string>; used: number }>();
    const live = new Set<string>();
    for (const key of keys) {
      const id = memoryId(key);
      live.add(id);
      const ts = targets.get(keyRef(key)) ?? [];
      const base = this.#written.get(id) ?? key.status?.usage;
      if (this.#written.has(id) && !usageChanged(key.status?.usage, this.#written.get(id) ?? []))
        this.#written.delete(id); // the cache has caught up with our write
      const { usage, announce } = desiredUsage(ts, counter, base, now);
      for (const t of ts) {
        const u = usage.find((x) => x.plan === t.plan);
        if (!u) continue;
        if (config.metricsPerKey) {
          const labels = { namespace: t.namespace, apikey: t.apiKey, plan: t.plan };
          metrics.keyQuotaUsed.set(labels, u.used);
          metrics.keyQuotaLimit.set(labels, u.limit ?? t.limit);
        }
        const sum = planSums.get(t.planId) ?? { ns: t.namespace, plan: t.plan, counted: new Set(), used: 0 };
        if (!sum.counted.has(t.quotaKey)) {
          sum.counted.add(t.quotaKey);
          sum.used += u.used;
        }
        planSums.set(t.planId, sum);
      }
      if (usageChanged(base, usage)) this.#writer.upsert(id, { usage, announce }, announce.length > 0);
      else this.#writer.delete(id);
    }
    for (const s of planSums.values()) metrics.planQuotaUsed.set({ namespace: s.ns, plan: s.plan }, s.used);
    for (const id of [...this.#written.keys(), ...this.#announced.keys()])
      if (!live.has(id)) {
        this.#written.delete(id);
        this.#announced.delete(id);
      }
    for (const id of this.#writer.schedule.ids()) if (!live.has(id)) this.#writer.delete(id);

    metrics.usagePolls.inc({ result: errors > 0 ? 'partial' : 'ok' });
    metrics.usageLastPoll.set(Date.now() / 1000);
    this.#gauges();
    log.debug(
      { keys: keys.length, pending: this.#writer.schedule.size, errors, planId: planSums.size },
      'usage poll done',
    );
  }

  #gauges(): void {
    const s = this.#writer.schedule;
    this.#d.metrics.usagePendingWrites.set(s.size);
    let oldest = Infinity;
    for (const id of s.ids()) oldest = Math.min(oldest, s.get(id)?.since ?? Infinity);
    this.#d.metrics.usageOldestPendingSeconds.set(
      Number.isFinite(oldest) ? Math.max(0, (Date.now() - oldest) / 1000) : 0,
    );
  }

  async #write(id: string, value: UsageWrite): Promise<WriteOutcome> {
    const [ns = '', name = '', uid = ''] = id.split('/');
    const key = this.#d.informers.keys.get(name, ns) as ApiKey | undefined;
    // Another ApiKey under the name (the one this was for deleted, and created again) is not written.
    if (!key || key.metadata.deletionTimestamp || (key.metadata.uid ?? '') !== uid) return 'gone';
    const rest = { ...key.status };
    delete rest.usage;
    const status = value.usage.length > 0 ? { ...rest, usage: value.usage } : rest;
    return (await this.#d.writer.writeStatus('apikeys', key as never, status)) ? 'written' : 'unchanged';
  }

  async #written_(id: string, value: UsageWrite, outcome: WriteOutcome): Promise<void> {
    const { metrics, events } = this.#d;
    metrics.usageStatusWrites.inc({ result: outcome });
    this.#gauges();
    if (outcome !== 'written') return;
    this.#written.set(id, value.usage);
    // The status now records the alert: announce it, once (at most once: a crash here loses the Event).
    const [ns = '', name = '', uid = ''] = id.split('/');
    for (const a of value.announce) {
      const seen = this.#announced.get(id) ?? new Map<string, number>();
      const slot = `${a.plan}|${a.period}`;
      if ((seen.get(slot) ?? 0) >= a.threshold) continue;
      for (const k of seen.keys()) if (k.startsWith(`${a.plan}|`)) seen.delete(k);
      this.#announced.set(id, seen.set(slot, a.threshold));
      metrics.usageAlerts.inc({ threshold: String(a.threshold) });
      await events.record(
        {
          kind: 'ApiKey',
          apiVersion: API_VERSION,
          namespace: ns,
          name,
          ...(uid && { uid }),
        },
        a.threshold >= 100 ? 'Warning' : 'Normal',
        ALERT_REASON,
        alertMessage(a.threshold, a.plan, a.period, a.used, a.limit),
        'Alert',
      );
    }
  }
}

/**
 * What the poller keeps a key's memory by: `namespace/name/uid` (a name never holds a slash), so that an
 * ApiKey created again under a deleted one's name starts afresh.
 */
function memoryId(key: ApiKey): string {
  return `${keyRef(key)}/${key.metadata.uid ?? ''}`;
}

/** The quota counter an adjustment applies to (its fixed period's), when its plan and subject resolve. */
export function adjustmentQuotaKey(
  a: UsageAdjustment,
  plan: (namespace: string, name: string) => UsagePlan | undefined,
  key: (namespace: string, name: string) => ApiKey | undefined,
): string | undefined {
  const ns = a.metadata.namespace ?? '';
  const period = a.status?.period;
  const p = plan(ns, a.spec.planRef.name);
  if (!p || period === undefined) return undefined;
  let subject: Subject;
  if (a.spec.keyRef) {
    const k = key(ns, a.spec.keyRef.name);
    const keyId = k?.status?.keyId;
    if (!k || !keyId) return undefined;
    subject = keySubject(p, k, keyId);
  } else if (a.spec.customer !== undefined) subject = { kind: 'customer', name: a.spec.customer };
  else return undefined;
  return counterKeys(planId(ns, a.spec.planRef.name), subject, period).quota;
}
