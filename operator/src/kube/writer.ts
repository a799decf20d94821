/**
 * Every write the operator makes, in one place: rendered objects, key Secrets, statuses. Writes are
 * guarded by resourceVersion (a replace of an object changed since it was read is a 409, retried from a
 * fresh read), counted in a metric, and skipped when nothing would change.
 */
import type { KubernetesObject, V1ConfigMap, V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import { API_VERSION, GROUP, VERSION } from '../../../crds/src/index.ts';
import type { RenderedObject } from '../render/types.ts';
import type { OperatorMetrics, WriteVerb } from '../telemetry/metrics.ts';
import type { Clients } from './clients.ts';
import { isNotFound } from './errors.ts';

const FIELD_MANAGER = 'keystile-operator';
/** How many objects' own writes are remembered (each is a short string pair). */
const MAX_OWN_WRITES = 100_000;

/**
 * JSON with object keys sorted: the API server returns a custom resource's fields in its own (sorted)
 * order, so comparing by plain JSON.stringify would see a change on every read and write forever.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

/** The path of a core object (`name` given) or of its collection (a create), with the field manager. */
function objectPath(resource: 'configmaps' | 'secrets', namespace: string, name?: string): string {
  const base = `/api/v1/namespaces/${encodeURIComponent(namespace)}/${resource}`;
  return `${name === undefined ? base : `${base}/${encodeURIComponent(name)}`}?fieldManager=${FIELD_MANAGER}`;
}

/** Base64 the values of a text map (Secret data). */
export function encodeData(data: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]),
  );
}

/** Decode a Secret's data to text. */
export function decodeData(data: Readonly<Record<string, string>> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

function ownerRefs(owners: RenderedObject['owners']): V1OwnerReference[] {
  return owners.map((o) => ({ apiVersion: API_VERSION, kind: 'PlanBinding', name: o.name, uid: o.uid }));
}

function sameOwners(a: V1OwnerReference[] | undefined, b: V1OwnerReference[]): boolean {
  const key = (r: V1OwnerReference): string => `${r.kind}/${r.name}/${r.uid}`;
  return JSON.stringify((a ?? []).map(key).sort()) === JSON.stringify(b.map(key).sort());
}

function sameLabels(
  current: Record<string, string> | undefined,
  want: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(want).every(([k, v]) => current?.[k] === v);
}

/** The writer. */
export class Writer {
  readonly #c: Clients;
  readonly #m: OperatorMetrics;
  /** The resourceVersion of each object's latest write by this writer whose echo has not come yet. */
  readonly #ownWrites = new Map<string, string>();

  constructor(clients: Clients, metrics: OperatorMetrics) {
    this.#c = clients;
    this.#m = metrics;
  }

  /** Counts a write (its verb one of WRITE_VERBS, which the metric's help and the dashboard list). */
  #wrote(resource: string, verb: WriteVerb): void {
    this.#m.writes.inc({ resource, verb });
  }

  /**
   * Makes a rendered object match: created if missing, replaced (resourceVersion-guarded) if its data,
   * labels or owners differ, untouched otherwise. `current` is the informer's copy. Returns the bytes
   * written (0 when nothing was) and the resourceVersion the object has now.
   */
  async applyRendered(
    o: RenderedObject,
    current: V1ConfigMap | V1Secret | undefined,
  ): Promise<{ bytes: number; resourceVersion: string | undefined }> {
    const owners = ownerRefs(o.owners);
    const data = o.kind === 'Secret' ? encodeData(o.data) : { ...o.data };
    // Our last write of it, when its echo has not reached the informer yet: the informer's copy is
    // older than what the API server has, so the write is guarded by our version (a guard by the
    // informer's would be a certain 409), and the copy is not compared (it may differ from ours).
    const key = `${o.kind}/${o.namespace}/${o.name}`;
    const ahead = this.#ownWrites.get(key);
    const pending = ahead !== undefined && ahead !== current?.metadata?.resourceVersion ? ahead : undefined;
    if (
      pending === undefined &&
      current &&
      sameLabels(current.metadata?.labels, o.labels) &&
      sameOwners(current.metadata?.ownerReferences, owners)
    ) {
      const have = current.data ?? {};
      if (
        Object.keys(data).length === Object.keys(have).length &&
        Object.entries(data).every(([k, v]) => have[k] === v)
      )
        return { bytes: 0, resourceVersion: current.metadata?.resourceVersion };
    }
    const metadata = {
      name: o.name,
      namespace: o.namespace,
      labels: { ...(current?.metadata?.labels ?? {}), ...o.labels },
      ...(current?.metadata?.annotations && { annotations: current.metadata.annotations }),
      ownerReferences: owners,
    };
    const guard = pending ?? current?.metadata?.resourceVersion;
    if (guard !== undefined) Object.assign(metadata, { resourceVersion: guard });
    const replace = current !== undefined || pending !== undefined;
    const bytes = Object.values(data).reduce((n, v) => n + v.length, 0);
    const resource = o.kind === 'ConfigMap' ? 'configmaps' : 'secrets';
    const body: V1ConfigMap | V1Secret =
      o.kind === 'ConfigMap'
        ? { apiVersion: 'v1', kind: 'ConfigMap', metadata, data }
        : { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata, data };
    let resourceVersion: string | undefined;
    try {
      resourceVersion = await this.#c.raw.write(
        replace ? 'PUT' : 'POST',
        objectPath(resource, o.namespace, replace ? o.name : undefined),
        body,
      );
    } catch (err) {
      // Someone else wrote or deleted it after us: our version is no guide any more; the retry goes by
      // the informer's copy.
      if (pending !== undefined) this.#ownWrites.delete(key);
      throw err;
    }
    this.#wrote(resource, replace ? 'update' : 'create');
    this.#m.renderedBytes.inc({ resource }, bytes);
    this.#own(o.kind, o.namespace, o.name, resourceVersion);
    return { bytes, resourceVersion };
  }

  /**
   * Whether an informer's event carries the object as this writer last wrote it (its own write coming
   * back through the watch, which is no news). Asked once per event: the answer is given once.
   */
  isOwnWrite(kind: 'ConfigMap' | 'Secret', o: KubernetesObject): boolean {
    const m = o.metadata;
    const rv = m?.resourceVersion;
    const key = `${kind}/${m?.namespace ?? ''}/${m?.name ?? ''}`;
    if (rv === undefined || this.#ownWrites.get(key) !== rv) return false;
    // Its echo comes once: forget it, so that only writes still on their way are remembered.
    this.#ownWrites.delete(key);
    return true;
  }

  #own(kind: 'ConfigMap' | 'Secret', namespace: string, name: string, rv: string | undefined): void {
    const key = `${kind}/${namespace}/${name}`;
    // Only the latest write of each object is remembered, until its echo; bounded all the same.
    this.#ownWrites.delete(key);
    if (rv !== undefined) this.#ownWrites.set(key, rv);
    if (this.#ownWrites.size > MAX_OWN_WRITES) {
      const oldest = this.#ownWrites.keys().next().value;
      if (oldest !== undefined) this.#ownWrites.delete(oldest);
    }
  }

  /** Deletes a rendered object that no longer belongs (a stage no binding names any more). */
  async deleteRendered(kind: 'ConfigMap' | 'Secret', namespace: string, name: string): Promise<void> {
    try {
      if (kind === 'ConfigMap') await this.#c.core.deleteNamespacedConfigMap({ name, namespace });
      else await this.#c.core.deleteNamespacedSecret({ name, namespace });
      this.#wrote(kind === 'ConfigMap' ? 'configmaps' : 'secrets', 'delete');
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * Writes a key Secret, owned by its ApiKey (so the garbage collector removes it with the key).
   * `current` guards the write with its resourceVersion; a create of an existing Secret is a 409.
   */
  async writeKeySecret(
    apiKey: KubernetesObject,
    name: string,
    labels: Record<string, string>,
    data: Record<string, string>,
    current: V1Secret | undefined,
  ): Promise<void> {
    const namespace = apiKey.metadata?.namespace ?? '';
    const was = current?.metadata;
    // What others put on the Secret is kept: its annotations, finalizers and owners other than ApiKeys
    // (the ApiKey's reference is this key's; any other ApiKey's is a deleted key's). The key is the
    // Secret's one controller: another owner is kept as an owner, not as a controller.
    const others = (was?.ownerReferences ?? [])
      .filter((r) => r.kind !== 'ApiKey')
      .map((r): V1OwnerReference => ({
        apiVersion: r.apiVersion,
        kind: r.kind,
        name: r.name,
        uid: r.uid,
        ...(r.blockOwnerDeletion !== undefined && { blockOwnerDeletion: r.blockOwnerDeletion }),
        ...(r.controller && { controller: false }),
      }));
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name,
        namespace,
        labels: { ...(was?.labels ?? {}), ...labels },
        ...(was?.annotations && { annotations: was.annotations }),
        ...(was?.finalizers && { finalizers: was.finalizers }),
        ownerReferences: [
          {
            apiVersion: API_VERSION,
            kind: 'ApiKey',
            name: apiKey.metadata?.name ?? '',
            uid: apiKey.metadata?.uid ?? '',
            controller: true,
            blockOwnerDeletion: true,
          },
          ...others,
        ],
        ...(was?.resourceVersion && { resourceVersion: was.resourceVersion }),
      },
      data: encodeData(data),
    };
    const resourceVersion = await this.#c.raw.write(
      current ? 'PUT' : 'POST',
      objectPath('secrets', namespace, current ? name : undefined),
      body,
    );
    this.#wrote('secrets', current ? 'update' : 'create');
    this.#own('Secret', namespace, name, resourceVersion);
  }

  /**
   * Adds labels to a Secret (an imported key's, or a key Secret the informer lost sight of), so the
   * key-material informer sees its changes. The Secret is replaced as it is (guarded by its
   * resourceVersion) with the labels added: its data, type and `immutable` unchanged (an immutable
   * Secret's metadata may change, its data and `immutable` not).
   */
  async labelSecret(secret: V1Secret, labels: Readonly<Record<string, string>>): Promise<void> {
    // `secret` is a fresh read (never the informer's copy): it is changed in place.
    const metadata = secret.metadata ?? {};
    metadata.labels = { ...(metadata.labels ?? {}), ...labels };
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata,
      data: secret.data ?? {},
      ...(secret.type && { type: secret.type }),
      ...(secret.immutable !== undefined && { immutable: secret.immutable }),
    };
    await this.#c.core.replaceNamespacedSecret({
      name: secret.metadata?.name ?? '',
      namespace: secret.metadata?.namespace ?? '',
      body,
      fieldManager: FIELD_MANAGER,
    });
    this.#wrote('secrets', 'label');
  }

  /** Reads a Secret by name, uncached (an imported key's Secret before it is labelled); undefined if missing. */
  async readSecret(namespace: string, name: string): Promise<V1Secret | undefined> {
    try {
      return await this.#c.core.readNamespacedSecret({ name, namespace });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Whether a resource's status is `desired` already (compared in canonical JSON). */
  sameStatus(obj: { status?: unknown }, desired: unknown): boolean {
    return canonicalJson(obj.status ?? {}) === canonicalJson(desired);
  }

  /**
   * Replaces a resource's status (resourceVersion-guarded) when it differs from `desired` (`compared`:
   * the caller found it does). Returns whether it wrote; `onWritten` gets the resourceVersion it made.
   */
  async writeStatus(
    plural: string,
    obj: KubernetesObject & { status?: unknown },
    desired: unknown,
    opts: { compared?: boolean; onWritten?: (resourceVersion: string | undefined) => void } = {},
  ): Promise<boolean> {
    if (!opts.compared && this.sameStatus(obj, desired)) return false;
    try {
      const namespace = obj.metadata?.namespace ?? '';
      const name = obj.metadata?.name ?? '';
      const rv = await this.#c.raw.write(
        'PUT',
        `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(namespace)}/${plural}/${encodeURIComponent(name)}/status?fieldManager=${FIELD_MANAGER}`,
        { ...obj, status: desired },
      );
      opts.onWritten?.(rv);
    } catch (err) {
      if (isNotFound(err)) return false; // deleted meanwhile
      throw err;
    }
    this.#wrote(plural, 'status');
    return true;
  }
}
