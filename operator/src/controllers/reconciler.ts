/**
 * The two reconciles, both level-triggered and idempotent (running one twice changes nothing):
 * - a key's: its Secret holds a value (generated once, rotated on request, or imported), owned by the key;
 * - a namespace's: render it (operator/src/render, pure), write the shards that changed and then each
 *   stage's index, delete what no binding names any more, and bring every resource's status up to date.
 * State lives in the API server; what is kept here (problems found with keys' Secrets) is rebuilt by the
 * next reconcile after a restart.
 */
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_VERSION } from '../../../crds/src/index.ts';
import type { ApiKey, PlanBinding, UsageAdjustment, UsagePlan } from '../../../crds/src/index.ts';
import { LABELS, MANAGED_BY } from '../../../contract/src/identity.ts';
import type { EventRecorder } from '../kube/events.ts';
import { API_KEY_LABEL, type Informers, KEY_MATERIAL_LABEL } from '../kube/informers.ts';
import { decodeData, type Writer } from '../kube/writer.ts';
import { planKeySecret } from '../keys/key-plan.ts';
import { type KeySecretData, keySecretName, materialFromSecret } from '../keys/key-secret.ts';
import { render } from '../render/render.ts';
import type { KeyMaterial, RenderedObject } from '../render/types.ts';
import { type Condition, getCondition } from '../status/conditions.ts';
import { bindingStatus, COUNTERS_SHARED, keyStatus, type KeyState, planStatus } from '../status/desired.ts';
import { Reason } from '../status/reasons.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import type { UsageView } from '../usage/view.ts';
import { reconcileAdjustments } from './usage-adjustment.controller.ts';
import { forEachLimit } from './pool.ts';

/** What the reconciles need. */
export interface ReconcilerDeps {
  readonly informers: Informers;
  readonly writer: Writer;
  readonly events: EventRecorder;
  readonly log: Logger;
  readonly metrics: OperatorMetrics;
  /** Queues a namespace's render, now or after a delay. */
  readonly requeueNamespace: (namespace: string, afterMs?: number) => void;
  /** Queues a key's reconcile after a delay. */
  readonly requeueKey: (namespace: string, name: string, afterMs: number) => void;
  readonly now: () => Date;
  /** What the usage poller learned: who serves each stage, which adjustments were applied. */
  readonly usage?: UsageView;
}

const WRITE_CONCURRENCY = 16;
/**
 * How soon a key whose imported Secret is missing looks again. A Secret created with the label
 * keystile.dev/key-material=true is seen at once; one without it within this time.
 */
export const MISSING_SECRET_RECHECK_MS = 10_000;
/** How long a new key may go without a status while its value is being generated. */
const NEW_KEY_GRACE_MS = 10_000;

/** The reconciles. */
export class Reconciler {
  readonly #d: ReconcilerDeps;
  readonly #keyProblems = new Map<string, { reason: string; message: string }>();

  constructor(deps: ReconcilerDeps) {
    this.#d = deps;
  }

  /** Makes a key's Secret hold what it should. */
  async reconcileKey(namespace: string, name: string): Promise<void> {
    const { informers, writer, events, log } = this.#d;
    const id = `${namespace}/${name}`;
    const key = informers.keys.get(name, namespace) as ApiKey | undefined;
    if (!key || key.metadata.deletionTimestamp) {
      this.#keyProblems.delete(id);
      return;
    }
    const secretName = keySecretName(name);
    const current = informers.keySecrets.get(secretName, namespace);
    const existing = current ? (decodeData(current.data) as KeySecretData) : undefined;
    let imported: Record<string, string> | 'missing' | undefined;
    if (key.spec.valueFrom === 'Secret') {
      const ref = key.spec.secretRef?.name ?? '';
      let source = informers.keySecrets.get(ref, namespace);
      if (!source) {
        source = await writer.readSecret(namespace, ref);
        // Adopt it: labelled, the key-material informer sees its changes (a rotation by the user).
        if (source) await writer.labelSecret(source, KEY_MATERIAL_LABEL, 'true');
      }
      imported = source ? decodeData(source.data) : 'missing';
    }
    const plan = planKeySecret({
      key,
      existing,
      ...(imported !== undefined && { imported }),
      now: this.#d.now(),
    });
    if (plan.kind === 'problem') {
      this.#keyProblems.set(id, { reason: plan.reason, message: plan.message });
      // An imported Secret that does not exist yet is not watched (only labelled Secrets are): look again.
      if (imported === 'missing') this.#d.requeueKey(namespace, name, MISSING_SECRET_RECHECK_MS);
    } else {
      this.#keyProblems.delete(id);
      if (plan.kind === 'write') {
        const labels = {
          [LABELS.managedBy]: MANAGED_BY,
          [KEY_MATERIAL_LABEL]: 'true',
          [API_KEY_LABEL]: name,
        };
        // A create of a Secret that exists (our cache was behind) is a 409: a value is never generated twice.
        await writer.writeKeySecret(key as never, secretName, labels, plan.data, current);
        log.info(
          { apiKey: id, keyId: plan.data.keyId, rotated: plan.rotated !== undefined },
          current ? 'key secret updated' : 'key secret created',
        );
        if (plan.rotated) {
          await events.record(
            {
              kind: 'ApiKey',
              apiVersion: API_VERSION,
              namespace,
              name,
              ...(key.metadata.uid && { uid: key.metadata.uid }),
            },
            'Normal',
            'KeyRotated',
            `a new value was made; the previous one is accepted until ${plan.rotated.previousValidUntil}`,
            'Rotate',
          );
        }
      }
    }
    this.#d.requeueNamespace(namespace);
  }

  /** Renders a namespace and writes what changed. */
  async reconcileNamespace(namespace: string): Promise<void> {
    const { informers, writer, metrics } = this.#d;
    const now = this.#d.now();
    const plans = informers.plans.list(namespace) as UsagePlan[];
    const keys = informers.keys.list(namespace) as ApiKey[];
    const bindings = informers.bindings.list(namespace) as PlanBinding[];
    const adjustments = informers.adjustments.list(namespace) as UsageAdjustment[];

    const materials = new Map<string, KeyMaterial>();
    const states = new Map<string, KeyState>();
    for (const k of keys) {
      const secretName = keySecretName(k.metadata.name);
      const secret = informers.keySecrets.get(secretName, namespace);
      const data = secret ? (decodeData(secret.data) as KeySecretData) : undefined;
      const m = data ? materialFromSecret(k.spec.type ?? 'ApiKey', data, now) : undefined;
      if (m) materials.set(k.metadata.name, m);
      const problem = this.#keyProblems.get(`${namespace}/${k.metadata.name}`);
      states.set(k.metadata.name, { secretName, ...(data && m && { data }), ...(problem && { problem }) });
    }
    const out = render({ namespace, plans, keys, bindings, adjustments, materials, now });

    // Objects: in each stage the shards first, then the index (the index is what readers swap on).
    const desired = new Set<string>();
    let renderedKeys = 0;
    for (const stage of out.stages) {
      renderedKeys += stage.index.keyCount;
      const shards = stage.objects.slice(0, -1);
      const index = stage.objects.at(-1);
      for (const o of stage.objects) desired.add(`${o.kind}/${o.name}`);
      await forEachLimit(shards, WRITE_CONCURRENCY, (o) => this.#apply(o));
      if (index) await this.#apply(index);
    }
    metrics.renderedKeys.set({ namespace }, renderedKeys);
    // What no binding names any more: the index first, so no reader sees an index without its shards.
    const stale = [
      ...(informers.renderedConfigMaps.list(namespace) as V1ConfigMap[]).map((o) => ({
        kind: 'ConfigMap' as const,
        o,
      })),
      ...(informers.renderedSecrets.list(namespace) as V1Secret[]).map((o) => ({
        kind: 'Secret' as const,
        o,
      })),
    ]
      .filter(({ kind, o }) => !desired.has(`${kind}/${o.metadata?.name ?? ''}`))
      .sort(
        (a, b) =>
          Number(b.o.metadata?.labels?.[LABELS.role] === 'index') -
          Number(a.o.metadata?.labels?.[LABELS.role] === 'index'),
      );
    for (const { kind, o } of stale) await writer.deleteRendered(kind, namespace, o.metadata?.name ?? '');

    // Statuses, in one place.
    await forEachLimit(bindings, WRITE_CONCURRENCY, async (b) => {
      const status = bindingStatus(b, out.bindings.get(b.metadata.name), now);
      await this.#status('planbindings', 'PlanBinding', b, status);
    });
    await forEachLimit(plans, WRITE_CONCURRENCY, async (p) => {
      const r = out.plans.get(p.metadata.name);
      const shared = this.#d.usage?.sharing(namespace, r?.apiStages ?? []);
      const status = planStatus(p, r, now, shared);
      if (await this.#status('usageplans', 'UsagePlan', p, status))
        await this.#conditionEvent(
          'UsagePlan',
          p,
          status.conditions,
          COUNTERS_SHARED,
          (c) => c.status === 'False',
        );
    });
    const adjustmentDeadline = await reconcileAdjustments(
      {
        writer: this.#d.writer,
        recordEvent: (obj, conditions, type) =>
          this.#conditionEvent('UsageAdjustment', obj, conditions, type, (c) => c.reason !== Reason.Rendered),
        appliedAt: (id) => this.#d.usage?.appliedAt(id),
      },
      adjustments,
      out.adjustments,
      plans,
      now,
    );
    if (adjustmentDeadline !== undefined)
      this.#d.requeueNamespace(namespace, adjustmentDeadline - now.getTime() + 1000);
    let generating = false;
    await forEachLimit(keys, WRITE_CONCURRENCY, async (k) => {
      const state = states.get(k.metadata.name);
      // A new key whose value is being generated gets its status with the value, moments later: writing
      // "being generated" first would double the status writes of a mass creation.
      const age = now.getTime() - Date.parse(k.metadata.creationTimestamp ?? '1970-01-01T00:00:00Z');
      if (!k.status && !state?.data && !state?.problem && age < NEW_KEY_GRACE_MS) {
        generating = true;
        return;
      }
      await this.#status('apikeys', 'ApiKey', k, keyStatus(k, state, out.keys.get(k.metadata.name), now));
    });
    if (generating) this.#d.requeueNamespace(namespace, NEW_KEY_GRACE_MS);

    // Time passing changes things too: an expiry, the end of a rotation's grace period.
    const next = nextDeadline(keys, states, now);
    if (next !== undefined) this.#d.requeueNamespace(namespace, next - now.getTime() + 1000);
  }

  async #apply(o: RenderedObject): Promise<void> {
    const { informers, writer } = this.#d;
    const current =
      o.kind === 'ConfigMap'
        ? informers.renderedConfigMaps.get(o.name, o.namespace)
        : informers.renderedSecrets.get(o.name, o.namespace);
    await writer.applyRendered(o, current);
  }

  /**
   * Records an Event when condition `type` changes reason between `obj`'s status and `after`, if
   * `notable` says the new state is news (also at creation).
   */
  async #conditionEvent(
    kind: 'UsagePlan' | 'UsageAdjustment',
    obj: { metadata: { name: string; namespace?: string; uid?: string }; status?: { conditions?: unknown } },
    after: readonly Condition[] | undefined,
    type: string,
    notable: (c: Condition) => boolean,
  ): Promise<void> {
    const before = getCondition(obj.status?.conditions as Condition[] | undefined, type);
    const now = getCondition(after, type);
    if (!now || before?.reason === now.reason || !notable(now)) return;
    await this.#d.events.record(
      {
        kind,
        apiVersion: API_VERSION,
        namespace: obj.metadata.namespace ?? '',
        name: obj.metadata.name,
        ...(obj.metadata.uid && { uid: obj.metadata.uid }),
      },
      now.status === 'False' ? 'Warning' : 'Normal',
      now.reason,
      now.message,
    );
  }

  /**
   * Writes a status if it changed, and records an Event when the Ready reason changes (not at
   * creation). Returns whether it wrote.
   */
  async #status(
    plural: string,
    kind: 'ApiKey' | 'UsagePlan' | 'PlanBinding',
    obj: { metadata: { name: string; namespace?: string; uid?: string }; status?: { conditions?: unknown } },
    status: { conditions?: unknown },
  ): Promise<boolean> {
    const wrote = await this.#d.writer.writeStatus(plural, obj, status);
    if (!wrote) return false;
    await this.#readyEvent(kind, obj, status);
    return true;
  }

  async #readyEvent(
    kind: 'ApiKey' | 'UsagePlan' | 'PlanBinding',
    obj: { metadata: { name: string; namespace?: string; uid?: string }; status?: { conditions?: unknown } },
    status: { conditions?: unknown },
  ): Promise<void> {
    const before = getCondition(obj.status?.conditions as Condition[] | undefined, 'Ready');
    const after = getCondition(status.conditions as Condition[] | undefined, 'Ready');
    if (!after) return;
    // At creation only a problem is news (a binding born in conflict); a change of reason always is.
    if (!before && (after.status === 'True' || after.reason === Reason.KeyNotReady)) return;
    if (before?.reason === after.reason) return;
    // A new key's value arriving is its normal creation, not news: 10,000 keys must not mean 10,000 Events.
    if (kind === 'ApiKey' && before?.reason === Reason.KeyNotReady && after.reason === Reason.KeyReady)
      return;
    await this.#d.events.record(
      {
        kind,
        apiVersion: API_VERSION,
        namespace: obj.metadata.namespace ?? '',
        name: obj.metadata.name,
        ...(obj.metadata.uid && { uid: obj.metadata.uid }),
      },
      after.status === 'True' ? 'Normal' : 'Warning',
      after.reason,
      after.message,
    );
  }
}

/** The next instant at which a key's state changes by itself (an expiry, the end of a grace period). */
function nextDeadline(
  keys: readonly ApiKey[],
  states: ReadonlyMap<string, KeyState>,
  now: Date,
): number | undefined {
  let next: number | undefined;
  const consider = (iso: string | undefined): void => {
    if (iso === undefined) return;
    const t = Date.parse(iso);
    if (Number.isFinite(t) && t > now.getTime() && (next === undefined || t < next)) next = t;
  };
  for (const k of keys) {
    consider(k.spec.expiresAt);
    consider(states.get(k.metadata.name)?.data?.['previous-valid-until']);
  }
  return next;
}
