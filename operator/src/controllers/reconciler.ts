/**
 * The two reconciles, both level-triggered and idempotent (running one twice changes nothing):
 * - a key's: its Secret holds a value (generated once, rotated on request, or imported), owned by the key;
 * - a namespace's: render it (operator/src/render, pure), write the shards that changed and then each
 *   stage's index, delete what no binding names any more, and bring every resource's status up to date.
 * State lives in the API server; what is kept here (problems found with keys' Secrets, and per namespace
 * what the last reconcile worked out, so that the next does the work of what changed) is rebuilt by the
 * next reconcile after a restart.
 */
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_VERSION } from '../../../crds/src/index.ts';
import type { ApiKey, PlanBinding, UsageAdjustment, UsagePlan } from '../../../crds/src/index.ts';
import { LABELS, MANAGED_BY } from '../../../contract/src/identity.ts';
import { describe, isConflict, isNamespaceTerminating, isRefused } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import { API_KEY_LABEL, type Informers, KEY_MATERIAL_LABEL } from '../kube/informers.ts';
import { decodeData, type Writer } from '../kube/writer.ts';
import { importsReservedSecret, type KeyPlan, planKeySecret } from '../keys/key-plan.ts';
import {
  graceEnds,
  type KeySecretData,
  keySecretName,
  materialFromSecret,
  hasController,
  ownedByAnother,
} from '../keys/key-secret.ts';
import { IncrementalRenderer } from '../render/incremental.ts';
import type { BindingResult, KeyMaterial, RenderedObject } from '../render/types.ts';
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
  /** Writes at once within one namespace's reconcile (default 16). */
  readonly writeConcurrency?: number;
}

/** Writes at once within one namespace's reconcile (shards, statuses), unless the deps say otherwise. */
const WRITE_CONCURRENCY = 16;
/**
 * How soon a key whose imported Secret is missing looks again. A Secret created with the label
 * keystile.dev/key-material=true is seen at once; one without it within this time.
 */
export const MISSING_SECRET_RECHECK_MS = 10_000;
/**
 * How long a new key may go without a status while its value is being generated (its key reconcile is
 * queued behind others, during a mass creation); a key whose reconcile failed gets its status at once.
 */
const NEW_KEY_GRACE_MS = 60_000;
/**
 * A PlanBinding's or UsagePlan's status whose Ready condition keeps its status and reason (only counts
 * and the message move, as keys arrive) is rewritten at most this often; a change of reason at once.
 */
export const STATUS_REFRESH_MS = 10_000;
/** How soon a namespace is looked at again when a status write of its own had not come back yet. */
const OWN_WRITE_RECHECK_MS = 1000;
/** How many objects' last status write times are kept (the oldest are forgotten). */
const MAX_STATUS_WRITES_REMEMBERED = 100_000;
/** How long a namespace the API server said is being deleted is left alone. */
const TERMINATING_PAUSE_MS = 30_000;

/** What one key's Secret made: its state for status, its material for the renderer, and when it changes by itself. */
interface KeyInput {
  readonly secret: V1Secret | undefined;
  readonly type: string;
  readonly problem: { reason: string; message: string } | undefined;
  readonly state: KeyState;
  readonly material: KeyMaterial | undefined;
  /** When the material must be made again (a rotated-out value's grace ends); Infinity if never. */
  readonly materialUntil: number;
  readonly expiresIso: string | undefined;
  /** The instants at which the key changes by itself (its expiry, the end of a grace period). */
  readonly deadlines: readonly number[];
  seen: number;
}

/** A status found as wanted, and what it was checked with: unchanged inputs need no second look. */
interface StatusMemo {
  /** The object's resourceVersion when it was found (or written) as wanted. */
  readonly rv: string;
  /**
   * For a status this operator wrote: the resourceVersion it replaced. The informer may still hold that
   * version for a moment; it is not looked at again (a write from it would only meet a conflict).
   */
  readonly before?: string;
  readonly inputs: readonly unknown[];
  readonly until: number;
}

/** What is kept per namespace between its reconciles. */
interface NamespaceCache {
  readonly renderer: IncrementalRenderer;
  readonly inputs: Map<string, KeyInput>;
  /** The materials the renderer reads: the same object for a key until its Secret changes. */
  readonly materials: Map<string, KeyMaterial>;
  /** Rendered objects known to be what the API server has, at the resourceVersion it has. */
  readonly applied: WeakMap<RenderedObject, string>;
  readonly statuses: Map<string, StatusMemo>;
  round: number;
  /** Set when this reconcile passed over a status whose own write had not come back yet. */
  pendingOwnWrite: boolean;
}

/** The reconciles. */
export class Reconciler {
  readonly #d: ReconcilerDeps;
  readonly #keyProblems = new Map<string, { reason: string; message: string }>();
  /** Keys whose last reconcile failed (their status need not wait for a value being generated). */
  readonly #keyErrors = new Map<string, string>();
  readonly #namespaces = new Map<string, NamespaceCache>();
  /** Namespaces the API server said are being deleted, and when. */
  readonly #terminating = new Map<string, number>();
  /** When each object's status was last written (by uid), for STATUS_REFRESH_MS. */
  readonly #statusWritten = new Map<string, number>();
  /**
   * Keys whose reconcile ran in this term (since {@link beginTerm}). Until it has, what is known of a
   * key's Secret's problems is nothing (after a restart) or maybe out of date (from an earlier term):
   * its status is not written, so that a broken key's status does not say "being generated" for a moment
   * (with two Warning Events) at every restart or change of leader.
   */
  readonly #keysRun = new Set<string>();

  constructor(deps: ReconcilerDeps) {
    this.#d = deps;
  }

  /** A new term (the operator started, or became the leader again): every key is reconciled afresh. */
  beginTerm(): void {
    this.#keysRun.clear();
  }

  /** Makes a key's Secret hold what it should. */
  async reconcileKey(namespace: string, name: string): Promise<void> {
    const id = `${namespace}/${name}`;
    try {
      await this.#reconcileKey(namespace, name, id);
    } finally {
      // Its status waited for this (see #keysRun): the namespace writes it now, failed or not.
      const key = this.#d.informers.keys.get(name, namespace) as ApiKey | undefined;
      if (!this.#keysRun.has(id) && key && !key.metadata.deletionTimestamp) {
        this.#keysRun.add(id);
        this.#d.requeueNamespace(namespace);
      }
    }
  }

  async #reconcileKey(namespace: string, name: string, id: string): Promise<void> {
    const { informers, writer, events, log } = this.#d;
    const key = informers.keys.get(name, namespace) as ApiKey | undefined;
    if (!key || key.metadata.deletionTimestamp) {
      this.#keyProblems.delete(id);
      this.#keyErrors.delete(id);
      this.#keysRun.delete(id);
      return;
    }
    const secretName = keySecretName(name);
    const current = informers.keySecrets.get(secretName, namespace);
    // A Secret left by a deleted ApiKey of the same name is replaced (guarded by its resourceVersion), as
    // if there were none: the deleted key's value and id are not this key's.
    const foreign = ownedByAnother(current, key.metadata.uid);
    const existing = current && !foreign ? (decodeData(current.data) as KeySecretData) : undefined;
    let imported: Record<string, string> | 'missing' | undefined;
    let refused: KeyPlan | undefined;
    if (key.spec.valueFrom === 'Secret' && !importsReservedSecret(key)) {
      const ref = key.spec.secretRef?.name ?? '';
      let source = informers.keySecrets.get(ref, namespace);
      if (!source) {
        source = await writer.readSecret(namespace, ref);
        // Adopt it: labelled, the key-material informer sees its changes (a rotation by the user).
        if (source) {
          try {
            await writer.labelSecret(source, { [KEY_MATERIAL_LABEL]: 'true' });
          } catch (err) {
            // A refusal (an admission policy, say) is met again by every retry: the key says so, and
            // the label is tried again after a while. Anything else (a conflict, 429, 5xx) is retried.
            if (!isRefused(err)) throw err;
            log.warn(
              { apiKey: id, secret: ref, err: describe(err) },
              'imported secret could not be labelled',
            );
            refused = {
              kind: 'problem',
              reason: Reason.SecretNotWritable,
              message: `Secret ${ref} could not be labelled ${KEY_MATERIAL_LABEL}=true, which the operator needs to watch it (${describe(err)})`,
            };
            this.#d.requeueKey(namespace, name, MISSING_SECRET_RECHECK_MS);
          }
        }
      }
      imported = source ? decodeData(source.data) : 'missing';
    }
    const plan =
      refused ??
      planKeySecret({
        key,
        existing,
        ...(imported !== undefined && { imported }),
        now: this.#d.now(),
      });
    const labels = {
      [LABELS.managedBy]: MANAGED_BY,
      [KEY_MATERIAL_LABEL]: 'true',
      [API_KEY_LABEL]: name,
    };
    /**
     * Writes the key Secret; false when there is nothing more to do now: the namespace is being deleted
     * (nothing to make), or the Secret exists unseen by the cache and was dealt with (see #unseenSecret).
     */
    const write = async (data: KeySecretData): Promise<boolean> => {
      // A create of a Secret that exists (our cache was behind) is a 409: a value is never generated twice.
      try {
        await writer.writeKeySecret(key as never, secretName, labels, data, current);
      } catch (err) {
        if (isNamespaceTerminating(err)) {
          this.#terminating.set(namespace, Date.now());
          return false;
        }
        if (isConflict(err) && !current && (await this.#unseenSecret(key, secretName, labels))) return false;
        this.#keyErrors.set(id, describe(err));
        throw err;
      }
      this.#terminating.delete(namespace);
      return true;
    };
    if (plan.kind === 'problem') {
      this.#keyErrors.delete(id);
      this.#setKeyProblem(id, plan.reason, plan.message);
      // An imported Secret that does not exist yet is not watched (only labelled Secrets are): look again.
      if (imported === 'missing') this.#d.requeueKey(namespace, name, MISSING_SECRET_RECHECK_MS);
      if (plan.withdraw) {
        if (!(await write(plan.withdraw))) return;
        log.info({ apiKey: id, keyId: plan.withdraw.keyId, reason: plan.reason }, 'imported value withdrawn');
      }
    } else {
      // A problem met by a write (a Secret another controller owns) stays until a write succeeds.
      if (plan.kind !== 'write') this.#keyProblems.delete(id);
      this.#keyErrors.delete(id);
      if (plan.kind === 'write') {
        if (!(await write(plan.data))) return;
        this.#keyProblems.delete(id);
        log.info(
          { apiKey: id, keyId: plan.data.keyId, rotated: plan.rotated !== undefined },
          foreign
            ? "key secret replaced: it was a deleted ApiKey's of the same name"
            : current
              ? 'key secret updated'
              : 'key secret created',
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
      } else if (current && existing && !hasController(current)) {
        // A Secret with no owner (its ApiKey deleted with --cascade=orphan, then created again): the key
        // keeps its value, and the Secret is owned again, so the collector removes it with the key.
        if (!(await write(existing))) return;
        log.info({ apiKey: id, keyId: existing.keyId }, 'key secret adopted');
      }
    }
    this.#d.requeueNamespace(namespace);
  }

  /**
   * A key Secret the cache does not hold exists (a create of it met 409): its key-material label was
   * removed, or a Secret of the name was there before the key. One the key controls, or that nobody
   * controls, or that a deleted ApiKey of the name left, is labelled again: the informer then sees it,
   * and the key's next reconcile keeps (or adopts, or replaces) it as it does any key Secret. One another
   * controller owns is not written over: the key reports it (SecretNotWritable) and looks again later.
   * True when dealt with; false when the Secret is gone again (the create is retried).
   */
  async #unseenSecret(key: ApiKey, secretName: string, labels: Record<string, string>): Promise<boolean> {
    const { writer, log } = this.#d;
    const namespace = key.metadata.namespace ?? '';
    const id = `${namespace}/${key.metadata.name}`;
    const secret = await writer.readSecret(namespace, secretName);
    if (!secret) return false;
    const controller = secret.metadata?.ownerReferences?.find((r) => r.controller === true);
    if (!controller || controller.kind === 'ApiKey') {
      try {
        await writer.labelSecret(secret, labels);
        log.info({ apiKey: id, secret: secretName }, 'key secret labelled again');
        return true;
      } catch (err) {
        if (!isRefused(err)) throw err;
        this.#setKeyProblem(
          id,
          Reason.SecretNotWritable,
          `Secret ${secretName} exists without the label ${KEY_MATERIAL_LABEL}=true and could not be labelled (${describe(err)})`,
        );
      }
    } else {
      this.#setKeyProblem(
        id,
        Reason.SecretNotWritable,
        `Secret ${secretName} exists and is controlled by ${controller.kind} ${controller.name}: the operator does not write over it (delete it, or have its controller let go of it)`,
      );
    }
    this.#keyErrors.delete(id);
    log.warn({ apiKey: id, secret: secretName }, 'key secret exists and cannot be taken over');
    this.#d.requeueKey(namespace, key.metadata.name, MISSING_SECRET_RECHECK_MS);
    this.#d.requeueNamespace(namespace);
    return true;
  }

  /** Records a problem with a key's Secret: the same object for the same problem (compared by identity). */
  #setKeyProblem(id: string, reason: Reason, message: string): void {
    const was = this.#keyProblems.get(id);
    if (was?.reason !== reason || was.message !== message) this.#keyProblems.set(id, { reason, message });
  }

  /**
   * Renders a namespace and writes what changed. The work is that of what changed since the last
   * reconcile: the renderer follows changed keys one by one, objects and statuses found as wanted before
   * are not looked at again while what they were made from is the same object.
   */
  async reconcileNamespace(namespace: string): Promise<void> {
    const { informers, writer, metrics } = this.#d;
    const now = this.#d.now();
    const nowMs = now.getTime();
    const terminating = this.#terminating.get(namespace);
    if (terminating !== undefined && nowMs - terminating < TERMINATING_PAUSE_MS) {
      // Being deleted: writing its statuses and objects would only slow the deletion down.
      this.#d.requeueNamespace(namespace, TERMINATING_PAUSE_MS);
      return;
    }
    this.#terminating.delete(namespace);
    const plans = informers.plans.list(namespace) as UsagePlan[];
    // A key being deleted is refused at once, not when its finalizers (a user's, or a foreground
    // deletion waiting for its Secret) are done: it is rendered as if gone.
    const keys = (informers.keys.list(namespace) as ApiKey[]).filter((k) => !k.metadata.deletionTimestamp);
    const bindings = informers.bindings.list(namespace) as PlanBinding[];
    const adjustments = informers.adjustments.list(namespace) as UsageAdjustment[];
    const empty = plans.length + keys.length + bindings.length + adjustments.length === 0;
    const cache = this.#cache(namespace);
    const round = ++cache.round;

    // Each key's Secret: decoded, hashed and checked once per version of the Secret.
    let nextChange = Infinity;
    const generating = new Set<string>();
    // The keys whose reconcile had run in this term when their inputs were read (a reconcile that ends
    // while this one runs requeues the namespace: its status is written then, from what it found).
    const ran = new Set<string>();
    for (const k of keys) {
      if (this.#keysRun.has(`${namespace}/${k.metadata.name}`)) ran.add(k.metadata.name);
      const input = this.#keyInput(cache, namespace, k, nowMs);
      input.seen = round;
      for (const d of input.deadlines) if (d > nowMs && d < nextChange) nextChange = d;
      const { state } = input;
      if (!state.data && !state.problem && !this.#keyErrors.has(`${namespace}/${k.metadata.name}`)) {
        // Its value is being generated (its reconcile is queued): its status comes with the value.
        const age = nowMs - Date.parse(k.metadata.creationTimestamp ?? '1970-01-01T00:00:00Z');
        if (age < NEW_KEY_GRACE_MS) generating.add(k.metadata.name);
      }
    }
    for (const [name, input] of cache.inputs) {
      if (input.seen === round) continue;
      cache.inputs.delete(name);
      cache.materials.delete(name);
    }

    const t0 = performance.now();
    const out = cache.renderer.render({
      namespace,
      plans,
      keys,
      bindings,
      adjustments,
      materials: cache.materials,
      now,
    });
    metrics.renderSeconds.observe({ mode: cache.renderer.stats.mode }, (performance.now() - t0) / 1000);

    // One stage, or one kind of status, that cannot be written (an index over the object size limit,
    // say) must not keep the others from being written: each is attempted, and the first failure is
    // thrown at the end, so the namespace is retried.
    const failures: unknown[] = [];
    const attempt = async (work: () => Promise<void>): Promise<void> => {
      try {
        await work();
      } catch (err) {
        failures.push(err);
      }
    };

    // Objects: in each stage the shards first, then the index (the index is what readers swap on).
    // A stage that could not be written is reported on its bindings (`api/stage` -> why).
    const failedStages = new Map<string, string>();
    const desired = new Set<string>();
    let renderedKeys = 0;
    for (const stage of out.stages) {
      renderedKeys += stage.index.keyCount;
      for (const o of stage.objects) desired.add(`${o.kind}/${o.name}`);
      try {
        const shards = stage.objects.slice(0, -1).filter((o) => !this.#verified(cache, o));
        const index = stage.objects.at(-1);
        await forEachLimit(shards, this.#concurrency, (o) => this.#apply(cache, o));
        if (index && !this.#verified(cache, index)) await this.#apply(cache, index);
      } catch (err) {
        if (isNamespaceTerminating(err)) {
          // The namespace is being deleted: writing its statuses and objects would only slow that down.
          this.#terminating.set(namespace, nowMs);
          this.#d.requeueNamespace(namespace, TERMINATING_PAUSE_MS);
          return;
        }
        failures.push(err);
        // Only the API server refusing the object itself (a 4xx: too large, invalid, forbidden) is a stage
        // it will not store, reported on its bindings. A conflict (another writer between our read and
        // our write), a missing object, a 429, a 5xx or a network error is passing: the namespace is
        // retried, and statuses are written as if the stage had been.
        if (isRefused(err)) failedStages.set(`${stage.apiStage.api}/${stage.apiStage.stage}`, describe(err));
      }
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
    await attempt(async () => {
      for (const { kind, o } of stale) await writer.deleteRendered(kind, namespace, o.metadata?.name ?? '');
    });

    // Statuses, in one place: only those whose object or inputs changed are looked at.
    cache.pendingOwnWrite = false;
    /** A binding's outcome, Ready False if a stage of it could not be written. */
    const bindingResult = (b: PlanBinding): BindingResult | undefined => {
      const r = out.bindings.get(b.metadata.name);
      const failed = (b.spec.apiStages ?? [])
        .map((st) => `${st.api}/${st.stage}`)
        .filter((w) => failedStages.has(w));
      if (!r || failed.length === 0) return r;
      return {
        ...r,
        ready: {
          status: 'False',
          reason: Reason.StageNotWritten,
          message: `the config of ${failed.join(', ')} could not be written (${failed.map((w) => failedStages.get(w)).join('; ')}): its enforcers keep the previous one`,
        },
      };
    };
    let later = Infinity;
    const defer = (until: number): void => {
      later = Math.min(later, until);
    };
    await attempt(() =>
      forEachLimit(
        bindings
          .map((b) => ({ b, r: bindingResult(b) }))
          .filter(({ b, r }) => this.#stale(cache, `b/${b.metadata.name}`, b, [r])),
        this.#concurrency,
        async ({ b, r }) => {
          // Problems only with keys whose values are being generated are not news: they pass in moments,
          // and each value made renders the namespace again.
          if (
            r?.problems.length &&
            r.problems.every((p) => p.reason === Reason.KeyNotReady && generating.has(p.key))
          )
            return;
          const status = bindingStatus(b, r, now);
          const { result, rv } = await this.#status('planbindings', 'PlanBinding', b, status, defer);
          if (result !== 'deferred')
            this.#checked(cache, `b/${b.metadata.name}`, rv, [r], Infinity, b.metadata.resourceVersion);
        },
      ),
    );
    await attempt(() =>
      forEachLimit(
        plans.map((p) => {
          const r = out.plans.get(p.metadata.name);
          return { p, r, shared: this.#d.usage?.sharing(namespace, r?.apiStages ?? []) };
        }),
        this.#concurrency,
        async ({ p, r, shared }) => {
          // Its status would describe a config its enforcers did not get: it waits for the retry.
          if (r?.apiStages.some((w) => failedStages.has(w))) return;
          const inputs = [r, JSON.stringify(shared ?? null)];
          if (!this.#stale(cache, `p/${p.metadata.name}`, p, inputs)) return;
          const status = planStatus(p, r, now, shared);
          const { result, rv } = await this.#status('usageplans', 'UsagePlan', p, status, defer);
          if (result === 'written')
            await this.#conditionEvent(
              'UsagePlan',
              p,
              status.conditions,
              COUNTERS_SHARED,
              (c) => c.status === 'False',
            );
          if (result !== 'deferred')
            this.#checked(cache, `p/${p.metadata.name}`, rv, inputs, Infinity, p.metadata.resourceVersion);
        },
      ),
    );
    let adjustmentDeadline: number | undefined;
    await attempt(async () => {
      adjustmentDeadline = await reconcileAdjustments(
        {
          writer: this.#d.writer,
          recordEvent: (obj, conditions, type) =>
            this.#conditionEvent(
              'UsageAdjustment',
              obj,
              conditions,
              type,
              (c) => c.reason !== Reason.Rendered,
            ),
          appliedAt: (id) => this.#d.usage?.appliedAt(id),
        },
        adjustments,
        out.adjustments,
        plans,
        now,
      );
    });
    if (adjustmentDeadline !== undefined)
      this.#d.requeueNamespace(namespace, adjustmentDeadline - nowMs + 1000);
    const keyWork = keys.filter((k) => {
      const name = k.metadata.name;
      const input = cache.inputs.get(name);
      if (generating.has(name) && !k.status) return false;
      // Its reconcile has not run in this term: what its Secret's problems are is not known yet.
      if (!ran.has(name)) return false;
      // On a stage that could not be written its status would describe a config its enforcers did not
      // get (a key disabled, still accepted there): it keeps the last one until the retry writes it.
      // Its bindings say why (StageNotWritten), one Event each, not one per key.
      if (out.keys.get(name)?.placements.some((p) => failedStages.has(p.slice(p.indexOf(':') + 1))))
        return false;
      return this.#stale(cache, `k/${name}`, k, [input?.state, out.keys.get(name)]);
    });
    await attempt(() =>
      forEachLimit(keyWork, this.#concurrency, async (k) => {
        const name = k.metadata.name;
        const state = cache.inputs.get(name)?.state;
        const r = out.keys.get(name);
        const status = keyStatus(k, state, r, now);
        const { rv } = await this.#status('apikeys', 'ApiKey', k, status);
        const input = cache.inputs.get(name);
        const until = Math.min(Infinity, ...(input?.deadlines ?? []).filter((d) => d > nowMs));
        this.#checked(cache, `k/${name}`, rv, [state, r], until, k.metadata.resourceVersion);
      }),
    );
    if (generating.size > 0) this.#d.requeueNamespace(namespace, NEW_KEY_GRACE_MS);
    if (cache.pendingOwnWrite) this.#d.requeueNamespace(namespace, OWN_WRITE_RECHECK_MS);
    if (later !== Infinity) this.#d.requeueNamespace(namespace, Math.max(0, later - nowMs));

    // Time passing changes things too: an expiry, the end of a rotation's grace period.
    if (nextChange !== Infinity) this.#d.requeueNamespace(namespace, nextChange - nowMs + 1000);
    // A namespace with nothing left (deleted, say) keeps nothing here either.
    if (empty) this.#namespaces.delete(namespace);
    if (failures.length > 0) throw failures[0];
  }

  /** How many writes a namespace's reconcile makes at once. */
  get #concurrency(): number {
    return this.#d.writeConcurrency ?? WRITE_CONCURRENCY;
  }

  #cache(namespace: string): NamespaceCache {
    let c = this.#namespaces.get(namespace);
    if (!c) {
      c = {
        renderer: new IncrementalRenderer(),
        inputs: new Map(),
        materials: new Map(),
        applied: new WeakMap(),
        statuses: new Map(),
        round: 0,
        pendingOwnWrite: false,
      };
      this.#namespaces.set(namespace, c);
    }
    return c;
  }

  /** A key's input from its Secret, made again only when the Secret (or what reads it) changed. */
  #keyInput(cache: NamespaceCache, namespace: string, k: ApiKey, nowMs: number): KeyInput {
    const name = k.metadata.name;
    const secretName = keySecretName(name);
    const cached = this.#d.informers.keySecrets.get(secretName, namespace);
    // A deleted ApiKey's Secret is not this key's, until reconcileKey has replaced it.
    const secret = ownedByAnother(cached, k.metadata.uid) ? undefined : cached;
    const type = k.spec.type ?? 'ApiKey';
    const problem = this.#keyProblems.get(`${namespace}/${name}`);
    const was = cache.inputs.get(name);
    if (
      was &&
      was.secret === secret &&
      was.type === type &&
      was.problem === problem &&
      was.expiresIso === k.spec.expiresAt &&
      nowMs < was.materialUntil
    )
      return was;
    const data = secret ? (decodeData(secret.data) as KeySecretData) : undefined;
    const now = new Date(nowMs);
    // An imported key whose Secret is gone or holds no valid value is refused, not served its last good
    // value: deleting the Secret (or writing a bad value over a leaked one) must not leave the old one working.
    const fresh = data && !problem ? materialFromSecret(type, data, now) : undefined;
    // The same material object while its content is the same: the renderer compares by identity.
    const material =
      fresh && was?.material && JSON.stringify(fresh) === JSON.stringify(was.material) ? was.material : fresh;
    if (material) cache.materials.set(name, material);
    else cache.materials.delete(name);
    // Every replaced value's grace end: the material changes at the next one.
    const ends = data ? graceEnds(data) : [];
    const until = Math.min(Infinity, ...ends.filter((t) => t > nowMs));
    const expires = Date.parse(k.spec.expiresAt ?? '');
    const input: KeyInput = {
      secret,
      type,
      problem,
      // Of the Secret's data, only what a status shows is kept (never the value itself).
      state: { secretName, ...(data && material && { data: statusData(data) }), ...(problem && { problem }) },
      material,
      materialUntil: until,
      expiresIso: k.spec.expiresAt,
      deadlines: [...ends, expires].filter((d) => Number.isFinite(d)),
      seen: cache.round,
    };
    cache.inputs.set(name, input);
    return input;
  }

  /**
   * Whether a status must be looked at: the object is not the version found (or written) as wanted, its
   * inputs changed, or its time came.
   */
  #stale(
    cache: NamespaceCache,
    id: string,
    obj: { metadata: { resourceVersion?: string } },
    inputs: readonly unknown[],
  ): boolean {
    const m = cache.statuses.get(id);
    const rv = obj.metadata.resourceVersion;
    if (m?.before !== undefined && rv === m.before) {
      // This operator's write of it has not come back through the watch yet: a write from this version
      // would only meet a conflict. Look again once it has.
      cache.pendingOwnWrite = true;
      return false;
    }
    return !(
      m &&
      rv !== undefined &&
      (m.rv === rv || m.before === rv) &&
      Date.now() < m.until &&
      m.inputs.length === inputs.length &&
      m.inputs.every((x, i) => x === inputs[i])
    );
  }

  /**
   * Remembers a status as wanted at resourceVersion `rv` (the one read, or the one its write made, when
   * `before` is the one the write replaced).
   */
  #checked(
    cache: NamespaceCache,
    id: string,
    rv: string | undefined,
    inputs: readonly unknown[],
    until = Infinity,
    before?: string,
  ): void {
    if (rv === undefined) cache.statuses.delete(id);
    else
      cache.statuses.set(id, { rv, inputs, until, ...(before !== undefined && before !== rv && { before }) });
  }

  /** Whether a rendered object is known to be what the API server has (the informer's copy is the one checked). */
  #verified(cache: NamespaceCache, o: RenderedObject): boolean {
    const rv = this.#current(o)?.metadata?.resourceVersion;
    return rv !== undefined && cache.applied.get(o) === rv;
  }

  #current(o: RenderedObject): V1ConfigMap | V1Secret | undefined {
    const { informers } = this.#d;
    return o.kind === 'ConfigMap'
      ? informers.renderedConfigMaps.get(o.name, o.namespace)
      : informers.renderedSecrets.get(o.name, o.namespace);
  }

  async #apply(cache: NamespaceCache, o: RenderedObject): Promise<void> {
    const current = this.#current(o);
    const { resourceVersion } = await this.#d.writer.applyRendered(o, current);
    if (resourceVersion !== undefined) cache.applied.set(o, resourceVersion);
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
   * creation). With `defer`, a change that keeps the Ready condition's status and reason and the
   * observedGeneration (counts, a message) waits until STATUS_REFRESH_MS after the object's last status
   * write: `defer` is told when.
   */
  async #status(
    plural: string,
    kind: 'ApiKey' | 'UsagePlan' | 'PlanBinding',
    obj: {
      metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string };
      status?: { conditions?: unknown; observedGeneration?: number };
    },
    status: { conditions?: unknown; observedGeneration?: number },
    defer?: (until: number) => void,
  ): Promise<{ result: 'written' | 'same' | 'deferred'; rv?: string }> {
    const { writer } = this.#d;
    const same = {
      result: 'same' as const,
      ...(obj.metadata.resourceVersion && { rv: obj.metadata.resourceVersion }),
    };
    if (writer.sameStatus(obj, status)) return same;
    const uid = obj.metadata.uid ?? `${plural}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    if (defer) {
      const before = getCondition(obj.status?.conditions as Condition[] | undefined, 'Ready');
      const after = getCondition(status.conditions as Condition[] | undefined, 'Ready');
      const last = this.#statusWritten.get(uid);
      const now = Date.now();
      if (
        last !== undefined &&
        now - last < STATUS_REFRESH_MS &&
        // A spec edit is news at once: `kubectl wait --for=jsonpath=.status.observedGeneration` waits on it.
        obj.status?.observedGeneration === status.observedGeneration &&
        before?.status === after?.status &&
        before?.reason === after?.reason
      ) {
        defer(last + STATUS_REFRESH_MS);
        return { result: 'deferred' };
      }
    }
    let rv: string | undefined;
    const wrote = await writer.writeStatus(plural, obj, status, {
      compared: true,
      onWritten: (v) => (rv = v),
    });
    if (!wrote) return { result: 'same' };
    if (defer) {
      // Remembered only for what may be deferred (bindings and plans: a few hundred objects).
      this.#statusWritten.delete(uid);
      this.#statusWritten.set(uid, Date.now());
      if (this.#statusWritten.size > MAX_STATUS_WRITES_REMEMBERED) {
        const oldest = this.#statusWritten.keys().next().value;
        if (oldest !== undefined) this.#statusWritten.delete(oldest);
      }
    }
    await this.#readyEvent(kind, obj, status);
    return { result: 'written', ...(rv !== undefined && { rv }) };
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

/** The fields of a key Secret a status reads: its id, a KeyPair's SecretId, the rotation's sequence and grace. */
function statusData(data: KeySecretData): KeySecretData {
  const out: KeySecretData = {};
  for (const k of ['keyId', 'secretId', 'rotation-sequence', 'previous-valid-until'] as const)
    if (data[k] !== undefined) out[k] = data[k];
  return out;
}
