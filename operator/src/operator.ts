/**
 * The operator: informers feed a work queue; the leader's workers run the reconciles, and the leader
 * polls usage (usage/poller.ts) when a usage source is configured. Every replica keeps its caches warm;
 * only the replica holding the Lease writes.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { OperatorConfig } from './config.ts';
import { Debouncer } from './controllers/debounce.ts';
import { Reconciler } from './controllers/reconciler.ts';
import { RetryAfter, WorkQueue } from './controllers/queue.ts';
import type { Clients } from './kube/clients.ts';
import { describe, isConflict, retryAfterMs } from './kube/errors.ts';
import { EventRecorder } from './kube/events.ts';
import {
  allInformers,
  API_KEY_LABEL,
  makeInformers,
  namedInformers,
  type Informers,
} from './kube/informers.ts';
import { LeaderElector } from './kube/lease.ts';
import { supervise } from './kube/supervise.ts';
import { Writer } from './kube/writer.ts';
import { type OperatorMetrics, stoppedLeading } from './telemetry/metrics.ts';
import { UsagePoller } from './usage/poller.ts';
import { connectRedis, type RedisCounters } from './usage/redis-counters.ts';
import { UsageView } from './usage/view.ts';

/** Namespaces reconciled at once (each namespace is never reconciled twice at once). */
const NAMESPACE_WORKERS = 4;
/**
 * The longest a namespace's changes wait while more keep coming: a busy namespace renders about this
 * often instead of after every key (a lone change waits only --debounce-ms).
 */
const MAX_DEBOUNCE_MS = 2000;

/** A running operator. */
export interface Operator {
  /** True once every informer has listed (the caches are complete). */
  readonly synced: () => boolean;
  /** Stops: the queue finishes what it is doing, the lease is released, the watches end. */
  readonly stop: () => Promise<void>;
}

/** Starts the operator. Resolves once the informers have synced (and, with leader election, at once after). */
export async function startOperator(
  config: OperatorConfig,
  clients: Clients,
  log: Logger,
  metrics: OperatorMetrics,
): Promise<Operator> {
  const sets: Informers[] =
    config.namespaces.length > 0
      ? config.namespaces.map((ns) => makeInformers(clients, ns))
      : [makeInformers(clients, undefined)];
  const informers = mergeInformers(sets);
  const writer = new Writer(clients, metrics);
  const events = new EventRecorder(clients.events, config.identity, log);
  // Usage: read from Redis (Redis store) and/or the enforcers' admin ports (memory store), leader only.
  const view = new UsageView(config.usage);
  const redis: RedisCounters | undefined = config.usage.redis
    ? connectRedis(config.usage.redis, config.usage.timeoutMs)
    : undefined;
  const usageOn = redis !== undefined || config.usage.endpoints.length > 0;
  let poller: UsagePoller | undefined;

  // The queues run only while this replica leads; new ones are made each time it wins the Lease. Keys
  // (their Secrets) and namespaces (render, objects, statuses) have a queue each, so that a render never
  // waits behind thousands of queued keys.
  let queues: { keys: WorkQueue; namespaces: WorkQueue; debounce: Debouncer } | undefined;
  const handle = async (item: string): Promise<void> => {
    const [kind, rest] = item.split(':', 2) as [string, string];
    try {
      if (kind === 'ns') {
        await reconciler.reconcileNamespace(rest);
      } else {
        const [ns = '', name = ''] = rest.split('/');
        await reconciler.reconcileKey(ns, name);
      }
    } catch (err) {
      // API Priority and Fairness said wait (429 with Retry-After): the retry waits that long.
      const delay = retryAfterMs(err);
      throw delay !== undefined ? new RetryAfter(delay, describe(err)) : err;
    }
  };
  const depth = (): number => (queues ? queues.keys.depth + queues.namespaces.depth : 0);
  const newQueue = (concurrency: number): WorkQueue =>
    new WorkQueue(handle, {
      concurrency,
      onError: (item, err, attempt) => {
        // A conflict only means our cache was behind a write (often our own): the retry reads it fresh.
        if (isConflict(err)) log.debug({ item, attempt }, 'conflict; retrying');
        else log.warn({ item, attempt, err: describe(err) }, 'reconcile failed; retrying');
      },
      onDone: (item, seconds, ok) => {
        const kind = item.startsWith('ns:') ? 'namespace' : 'key';
        metrics.reconciles.inc({ kind, result: ok ? 'ok' : 'error' });
        metrics.reconcileSeconds.observe({ kind }, seconds);
        metrics.queueDepth.set(depth());
      },
    });

  const reconciler = new Reconciler({
    informers,
    writer,
    events,
    log,
    metrics,
    now: () => new Date(),
    usage: view,
    requeueNamespace: (ns, afterMs) => {
      if (afterMs === undefined) queues?.debounce.touch(`ns:${ns}`);
      else queues?.namespaces.addAfter(`ns:${ns}`, Math.min(afterMs, 2 ** 31 - 1));
    },
    requeueKey: (ns, name, afterMs) => {
      queues?.keys.addAfter(`key:${ns}/${name}`, afterMs);
    },
    writeConcurrency: config.workers,
  });

  // Events to queue items.
  const nsOf = (o: KubernetesObject): string => o.metadata?.namespace ?? '';
  const namespaceChanged = (o: KubernetesObject): void => {
    queues?.debounce.touch(`ns:${nsOf(o)}`);
  };
  // Our own status writes come back as updates: only a change of spec (generation), labels (selectors
  // read them) or deletion is news for the Keystile kinds, or every status write would render again.
  const seen = new Map<string, string>();
  const specChanged = (verb: string, o: KubernetesObject): boolean => {
    const uid = o.metadata?.uid ?? `${nsOf(o)}/${o.metadata?.name ?? ''}`;
    if (verb === 'delete') {
      seen.delete(uid);
      return true;
    }
    const fingerprint = `${o.metadata?.generation ?? ''}|${JSON.stringify(o.metadata?.labels ?? {})}|${o.metadata?.deletionTimestamp ? 'x' : ''}`;
    if (seen.get(uid) === fingerprint) return false;
    seen.set(uid, fingerprint);
    return true;
  };
  for (const set of sets) {
    for (const verb of ['add', 'update', 'delete'] as const) {
      set.keys.on(verb, (o) => {
        if (!specChanged(verb, o)) return;
        queues?.keys.add(`key:${nsOf(o)}/${o.metadata?.name ?? ''}`);
        namespaceChanged(o);
      });
      set.plans.on(verb, (o) => {
        if (specChanged(verb, o)) namespaceChanged(o);
      });
      set.bindings.on(verb, (o) => {
        if (specChanged(verb, o)) namespaceChanged(o);
      });
      set.adjustments.on(verb, (o) => {
        if (specChanged(verb, o)) namespaceChanged(o);
      });
      set.keySecrets.on(verb, (o) => {
        // A key Secret this operator just wrote is its key's reconcile done, not a reason to run it again;
        // the namespace renders with the new value either way.
        const own = verb !== 'delete' && writer.isOwnWrite('Secret', o);
        const owner = o.metadata?.labels?.[API_KEY_LABEL];
        if (owner) {
          if (!own) queues?.keys.add(`key:${nsOf(o)}/${owner}`);
        } else
          for (const k of informers.keys.list(nsOf(o)))
            if ((k as { spec: { secretRef?: { name?: string } } }).spec.secretRef?.name === o.metadata?.name)
              queues?.keys.add(`key:${nsOf(o)}/${k.metadata?.name ?? ''}`);
        namespaceChanged(o);
      });
      // Someone else changed or deleted a rendered object: put it back. Our own writes coming back are not news.
      set.renderedConfigMaps.on(verb, (o) => {
        if (verb === 'delete' || !writer.isOwnWrite('ConfigMap', o)) namespaceChanged(o);
      });
      set.renderedSecrets.on(verb, (o) => {
        if (verb === 'delete' || !writer.isOwnWrite('Secret', o)) namespaceChanged(o);
      });
    }
  }

  // Each informer is restarted after an error, with a backoff; the caches are complete only once every
  // informer has listed (client-node's start() resolves after a failed list too, with the cache empty).
  const supervised = sets.flatMap((s, i) =>
    Object.entries(namedInformers(s)).map(([name, inf]) =>
      supervise(inf, { name: sets.length > 1 ? `${config.namespaces[i] ?? ''}/${name}` : name, log }),
    ),
  );
  let synced = false;
  await Promise.all(supervised.map((s) => s.listed));
  synced = true;
  log.info({ namespaces: config.namespaces.length > 0 ? config.namespaces : 'all' }, 'caches synced');

  const begin = (): void => {
    metrics.leader.set(1);
    reconciler.beginTerm();
    const keys = newQueue(config.workers);
    const namespaces = newQueue(NAMESPACE_WORKERS);
    const debounce = new Debouncer((item) => namespaces.add(item), {
      quietMs: config.debounceMs,
      maxWaitMs: Math.max(config.debounceMs, MAX_DEBOUNCE_MS),
    });
    queues = { keys, namespaces, debounce };
    // Everything once: a restart or a new leader converges from the API server's state.
    for (const k of informers.keys.list()) keys.add(`key:${nsOf(k)}/${k.metadata?.name ?? ''}`);
    const all = new Set(
      [
        ...informers.plans.list(),
        ...informers.keys.list(),
        ...informers.bindings.list(),
        ...informers.adjustments.list(),
        ...informers.renderedConfigMaps.list(),
      ].map(nsOf),
    );
    for (const ns of all) namespaces.add(`ns:${ns}`);
    keys.start();
    namespaces.start();
    if (usageOn) {
      poller = new UsagePoller({
        config: config.usage,
        informers,
        writer,
        events,
        metrics,
        log,
        view,
        redis,
        requeueNamespace: (ns) => queues?.debounce.touch(`ns:${ns}`),
      });
      poller.start();
    }
  };
  // Losing the Lease (the API server unreachable for longer than the lease, say) stops every write at
  // once; the replica stays a candidate and starts afresh if it wins again.
  const end = (): void => {
    const q = queues;
    queues = undefined;
    stoppedLeading(metrics);
    q?.debounce.stop();
    void q?.keys.stop();
    void q?.namespaces.stop();
    const p = poller;
    poller = undefined;
    void p?.stop();
  };

  let elector: LeaderElector | undefined;
  if (config.leaderElect) {
    elector = new LeaderElector(clients.coordination, { ...config.lease, identity: config.identity }, log);
    elector.start(begin, end);
  } else {
    begin();
  }

  return {
    synced: () => synced,
    stop: async () => {
      await poller?.stop();
      await redis?.close();
      queues?.debounce.stop();
      await Promise.all([queues?.keys.stop(), queues?.namespaces.stop()]);
      await elector?.stop();
      for (const s of supervised) s.stop();
      for (const s of sets) for (const i of allInformers(s)) await i.stop().catch(() => undefined);
    },
  };
}

/** One view over the informers of several namespaces. */
function mergeInformers(sets: readonly Informers[]): Informers {
  if (sets.length === 1 && sets[0]) return sets[0];
  const merge = <K extends keyof Informers>(k: K): Informers[K] => {
    const parts = sets.map((s) => s[k]);
    return {
      ...parts[0],
      get: (name: string, namespace?: string) =>
        parts.map((p) => p.get(name, namespace)).find((o) => o !== undefined),
      list: (namespace?: string) => parts.flatMap((p): readonly KubernetesObject[] => p.list(namespace)),
    } as unknown as Informers[K];
  };
  return {
    plans: merge('plans'),
    keys: merge('keys'),
    bindings: merge('bindings'),
    adjustments: merge('adjustments'),
    keySecrets: merge('keySecrets'),
    renderedConfigMaps: merge('renderedConfigMaps'),
    renderedSecrets: merge('renderedSecrets'),
  };
}
