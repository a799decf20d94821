import { ApiException, type V1ConfigMap, type V1Secret } from '@kubernetes/client-node';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ApiKey, PlanBinding, UsagePlan } from '../../../crds/src/index.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { Informers } from '../kube/informers.ts';
import { canonicalJson, encodeData, type Writer } from '../kube/writer.ts';
import { planKeySecret } from '../keys/key-plan.ts';
import type { RenderedObject } from '../render/types.ts';
import { makeMetrics } from '../telemetry/metrics.ts';
import { Reconciler } from './reconciler.ts';

// The reconciles with fakes around them: informer caches over arrays, a writer that records (and fails
// a stage's writes when told), an event recorder. What goes to the real API server is in the e2e tests.

const NOW = new Date('2026-11-23T12:00:00Z');
type Obj = {
  metadata: { name: string; namespace?: string; resourceVersion?: string; generation?: number };
  status?: unknown;
};
const cache = <T extends Obj>(items: T[]) => ({
  list: (ns?: string) => items.filter((o) => ns === undefined || o.metadata.namespace === ns),
  get: (name: string, ns?: string) =>
    items.find((o) => o.metadata.name === name && (ns === undefined || o.metadata.namespace === ns)),
});

function world() {
  const plan: UsagePlan = {
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'UsagePlan',
    metadata: { name: 'gold', namespace: 'shop', uid: 'uid-gold', generation: 1, resourceVersion: '1' },
    spec: { quota: { limit: 100, period: 'MONTH' } },
  };
  const key: ApiKey = {
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'ApiKey',
    metadata: {
      name: 'acme',
      namespace: 'shop',
      uid: 'uid-acme',
      generation: 1,
      resourceVersion: '1',
      creationTimestamp: '2026-11-01T00:00:00Z',
    },
    spec: {},
  };
  const binding: PlanBinding = {
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'PlanBinding',
    metadata: {
      name: 'gold-orders',
      namespace: 'shop',
      uid: 'uid-b',
      generation: 1,
      resourceVersion: '1',
      creationTimestamp: '2026-11-01T00:00:00Z',
    },
    spec: {
      planRef: { name: 'gold' },
      keys: { names: ['acme'] },
      apiStages: [{ api: 'orders', stage: 'prod' }],
    },
  };
  const made = planKeySecret({ key, existing: undefined, now: NOW });
  if (made.kind !== 'write') throw new Error('expected a value');
  const secret: V1Secret = {
    metadata: {
      name: 'keystile-key-acme',
      namespace: 'shop',
      resourceVersion: '1',
      ownerReferences: [
        {
          apiVersion: 'keystile.dev/v1alpha1',
          kind: 'ApiKey',
          name: 'acme',
          uid: 'uid-acme',
          controller: true,
        },
      ],
    },
    data: encodeData(made.data),
  };
  const stored: Record<string, Obj[]> = { usageplans: [plan], apikeys: [key], planbindings: [binding] };
  const informers = {
    plans: cache(stored['usageplans'] as UsagePlan[]),
    keys: cache(stored['apikeys'] as ApiKey[]),
    bindings: cache(stored['planbindings'] as PlanBinding[]),
    adjustments: cache([]),
    keySecrets: cache([secret as V1Secret & Obj]),
    renderedConfigMaps: cache<V1ConfigMap & Obj>([]),
    renderedSecrets: cache<V1Secret & Obj>([]),
  } as unknown as Informers;
  let rv = 100;
  const statuses: { kind: string; name: string; status: unknown }[] = [];
  const applied: string[] = [];
  const events: string[] = [];
  const requeues: (number | undefined)[] = [];
  const w = {
    /** What a stage's writes fail with, when set. */
    stageError: undefined as Error | undefined,
    /** Runs during a stage's write, when set (what happens elsewhere while the reconcile awaits). */
    duringApply: undefined as (() => Promise<void>) | undefined,
  };
  const writer = {
    applyRendered: (o: RenderedObject) => {
      if (w.stageError !== undefined) return Promise.reject(w.stageError);
      applied.push(o.name);
      const during = w.duringApply;
      w.duringApply = undefined;
      return (during ?? (() => Promise.resolve()))().then(() => ({
        bytes: 1,
        resourceVersion: String(++rv),
      }));
    },
    deleteRendered: () => Promise.resolve(),
    readSecret: () => Promise.resolve(undefined),
    sameStatus: (obj: { status?: unknown }, desired: unknown) =>
      canonicalJson(obj.status ?? {}) === canonicalJson(desired),
    writeStatus: (
      plural: string,
      obj: Obj & { status?: unknown },
      desired: unknown,
      opts: { onWritten?: (rv: string) => void } = {},
    ) => {
      statuses.push({ kind: plural, name: obj.metadata.name, status: desired });
      // The watch brings the write back at once: a new object in the cache.
      const list = stored[plural] ?? [];
      const version = String(++rv);
      list[list.indexOf(obj)] = {
        ...obj,
        metadata: { ...obj.metadata, resourceVersion: version },
        status: desired,
      };
      opts.onWritten?.(version);
      return Promise.resolve(true);
    },
  } as unknown as Writer;
  const recorder = {
    record: (t: { name: string }, type: string, reason: string) => {
      events.push(`${t.name} ${type} ${reason}`);
      return Promise.resolve();
    },
  } as unknown as EventRecorder;
  const reconciler = new Reconciler({
    informers,
    writer,
    events: recorder,
    log: pino({ level: 'silent' }),
    metrics: makeMetrics(),
    requeueNamespace: (_ns, afterMs) => requeues.push(afterMs),
    requeueKey: () => undefined,
    now: () => NOW,
  });
  reconciler.beginTerm();
  /** The cache's copy of an object now. */
  const now = (plural: string, name: string): unknown =>
    stored[plural]?.find((o) => o.metadata.name === name);
  return {
    w,
    reconciler,
    stored,
    binding: () => now('planbindings', 'gold-orders') as PlanBinding,
    key: () => now('apikeys', 'acme') as ApiKey,
    plan: () => now('usageplans', 'gold') as UsagePlan,
    statuses,
    applied,
    events,
    requeues,
  };
}

const ready = (status: unknown) =>
  (status as { conditions?: { type: string; reason: string }[] } | undefined)?.conditions?.find(
    (c) => c.type === 'Ready',
  );
const apiError = (code: number, message: string): ApiException<string> =>
  new ApiException(code, message, JSON.stringify({ kind: 'Status', message }), {});

afterEach(() => {
  vi.useRealTimers();
});

describe('Reconciler.reconcileNamespace', () => {
  it('writes a binding, a plan and a key status once the key has been reconciled', async () => {
    const t = world();
    await t.reconciler.reconcileKey('shop', 'acme');
    await t.reconciler.reconcileNamespace('shop');
    expect(t.applied.length).toBeGreaterThan(0);
    expect(ready(t.binding().status)?.reason).toBe('Bound');
    expect(ready(t.key().status)?.reason).toBe('KeyReady');
    expect(ready(t.plan().status)?.reason).toBe('InUse');
  });

  it('records as a failed stage (StageNotWritten) a refusal of the object itself', async () => {
    const t = world();
    await t.reconciler.reconcileKey('shop', 'acme');
    t.w.stageError = apiError(422, 'ConfigMap "keystile-orders.prod" is invalid: too long');
    await expect(t.reconciler.reconcileNamespace('shop')).rejects.toThrow();
    expect(ready(t.binding().status)?.reason).toBe('StageNotWritten');
    expect(t.events).toContain('gold-orders Warning StageNotWritten');
  });

  for (const [what, err] of [
    ['a 429', apiError(429, 'too many requests')],
    ['a 500', apiError(500, 'etcdserver: request timed out')],
    ['a 503', apiError(503, 'unavailable')],
    ['a network error', new Error('connect ECONNREFUSED 127.0.0.1:6443')],
  ] as const) {
    it(`retries a stage whose write met ${what}, reporting nothing and holding back no status`, async () => {
      const t = world();
      await t.reconciler.reconcileKey('shop', 'acme');
      t.w.stageError = err;
      await expect(t.reconciler.reconcileNamespace('shop')).rejects.toBe(err);
      expect(ready(t.binding().status)?.reason).not.toBe('StageNotWritten');
      expect(t.events.filter((e) => e.includes('StageNotWritten'))).toEqual([]);
      // The key's status is not frozen: it is written as if the stage were (the retry writes the stage).
      expect(ready(t.key().status)?.reason).toBe('KeyReady');
    });
  }

  it("writes a binding's and a plan's observedGeneration at once after a spec edit, not STATUS_REFRESH_MS later", async () => {
    // The clock stands still: the edit comes within STATUS_REFRESH_MS of the first status write.
    vi.useFakeTimers({ toFake: ['Date'], now: NOW });
    const t = world();
    await t.reconciler.reconcileKey('shop', 'acme');
    await t.reconciler.reconcileNamespace('shop');
    expect(t.binding().status?.observedGeneration).toBe(1);
    expect(t.plan().status?.observedGeneration).toBe(1);
    // Edits that change neither Ready's status nor its reason.
    const edit = (plural: string, o: PlanBinding | UsagePlan): void => {
      const list = t.stored[plural] ?? [];
      list[list.indexOf(o)] = { ...o, metadata: { ...o.metadata, generation: 2, resourceVersion: '500' } };
    };
    edit('planbindings', t.binding());
    edit('usageplans', t.plan());
    await t.reconciler.reconcileNamespace('shop');
    expect(t.binding().status?.observedGeneration).toBe(2);
    expect(ready(t.binding().status)?.reason).toBe('Bound');
    expect(t.plan().status?.observedGeneration).toBe(2);
  });

  it('leaves a namespace being deleted alone once a stage write says so: no failure, no status, no Event', async () => {
    const t = world();
    await t.reconciler.reconcileKey('shop', 'acme');
    t.w.stageError = new ApiException(
      403,
      'forbidden',
      JSON.stringify({
        kind: 'Status',
        reason: 'Forbidden',
        message:
          'configmaps "keystile-orders.prod" is forbidden: unable to create new content in namespace shop because it is being terminated',
      }),
      {},
    );
    await t.reconciler.reconcileNamespace('shop');
    expect(t.statuses).toEqual([]);
    expect(t.events).toEqual([]);
    expect(t.requeues).toContain(30_000);
    // Looked at again only after the pause: nothing is attempted meanwhile.
    t.w.stageError = undefined;
    await t.reconciler.reconcileNamespace('shop');
    expect(t.applied).toEqual([]);
    expect(t.statuses).toEqual([]);
  });

  it('writes no status for a key before its reconcile ran in this term, nor from inputs read before it ran', async () => {
    const t = world();
    // A key whose imported Secret is missing, as the last term left it: SecretNotFound.
    const lost: ApiKey = {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'ApiKey',
      metadata: { name: 'lost', namespace: 'shop', uid: 'uid-lost', generation: 1, resourceVersion: '1' },
      spec: { valueFrom: 'Secret', secretRef: { name: 'gone' } },
      status: {
        observedGeneration: 1,
        conditions: [
          {
            type: 'Ready',
            status: 'False',
            reason: 'SecretNotFound',
            message: 'Secret gone does not exist in namespace shop',
            observedGeneration: 1,
            lastTransitionTime: '2026-11-01T00:00:00Z',
          },
        ],
      },
    };
    t.stored['apikeys']?.push(lost);
    await t.reconciler.reconcileKey('shop', 'acme');
    // The key's reconcile runs while the namespace's awaits a write, after it read the key's inputs.
    t.w.duringApply = () => t.reconciler.reconcileKey('shop', 'lost');
    await t.reconciler.reconcileNamespace('shop');
    expect(t.statuses.filter((w) => w.name === 'lost')).toEqual([]);
    // The next reconcile (the key's asked for it) writes what the key's reconcile found: no change.
    await t.reconciler.reconcileNamespace('shop');
    expect(ready(t.stored['apikeys']?.[1]?.status)?.reason).toBe('SecretNotFound');
    expect(t.events).toEqual([]);
  });
});
