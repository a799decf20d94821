/**
 * The operator's view of the cluster: informers (list, then watch; never poll) for the four Keystile kinds,
 * for the Secrets holding key material (only those labelled keystile.dev/key-material: the operator
 * caches no other Secret), and for the objects it rendered (to skip writes that change nothing and to
 * notice what someone else deleted).
 */
import {
  type Informer,
  type KubernetesObject,
  makeInformer,
  type ObjectCache,
  type V1ConfigMap,
  type V1Secret,
} from '@kubernetes/client-node';
import type { ApiKey, PlanBinding, UsageAdjustment, UsagePlan } from '../../../crds/src/index.ts';
import { GROUP, VERSION } from '../../../crds/src/index.ts';
import { LABELS, MANAGED_BY } from '../../../contract/src/identity.ts';
import type { Clients } from './clients.ts';

/** How many times each informer's list has succeeded (see {@link listCount}). */
const LISTS = new WeakMap<object, { n: number }>();

/**
 * How many times the informer's list has succeeded. client-node's `start()` resolves even when the
 * list failed (it tells only the informer's 'error' handlers), leaving the cache empty: this is how to
 * tell a complete cache from an empty one.
 */
export function listCount(inf: object): number {
  return LISTS.get(inf)?.n ?? 0;
}

/** Makes an informer whose successful lists are counted for {@link listCount}. */
export function counted<T extends KubernetesObject>(
  make: (list: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>) => Watched<T>,
  list: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>,
): Watched<T> {
  const lists = { n: 0 };
  const inf = make(async () => {
    const result = await list();
    lists.n += 1;
    return result;
  });
  LISTS.set(inf, lists);
  return inf;
}

/** The label on every Secret holding key material: the operator's key Secrets, and imported ones it adopted. */
export const KEY_MATERIAL_LABEL = 'keystile.dev/key-material';
/** The label naming the ApiKey a key Secret belongs to. */
export const API_KEY_LABEL = 'keystile.dev/apikey';

/** A watched kind: its cache and its informer. */
export type Watched<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

/** Every informer, for one namespace (or all). */
export interface Informers {
  readonly plans: Watched<UsagePlan & KubernetesObject>;
  readonly keys: Watched<ApiKey & KubernetesObject>;
  readonly bindings: Watched<PlanBinding & KubernetesObject>;
  readonly adjustments: Watched<UsageAdjustment & KubernetesObject>;
  readonly keySecrets: Watched<V1Secret>;
  readonly renderedConfigMaps: Watched<V1ConfigMap>;
  readonly renderedSecrets: Watched<V1Secret>;
}

const RENDERED_SELECTOR = `${LABELS.managedBy}=${MANAGED_BY},${LABELS.role}`;
const KEY_MATERIAL_SELECTOR = `${KEY_MATERIAL_LABEL}=true`;

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Drops what the operator never reads from a cached object, in place: managedFields and kubectl's
 * last-applied annotation are most of a small object's size, and 10,000 keys and their Secrets are
 * cached. Writes are unaffected: the API server keeps managedFields a write does not send.
 *
 * Nothing is `delete`d: deleting a property turns a V8 object into a dictionary, which costs more than
 * the property saved (a cached Secret: 1,116 bytes after `delete`, 732 with the field set to undefined).
 * The field is set to undefined instead (JSON leaves it out), and the annotations are copied without
 * kubectl's.
 */
export function slim(o: KubernetesObject): void {
  const m = o.metadata;
  if (!m) return;
  if (m.managedFields !== undefined) m.managedFields = undefined;
  if (m.annotations?.[LAST_APPLIED] !== undefined) {
    m.annotations = Object.fromEntries(Object.entries(m.annotations).filter(([k]) => k !== LAST_APPLIED));
  }
}

/** Makes the informers for a namespace, or for all namespaces when `namespace` is undefined. */
export function makeInformers(c: Clients, namespace: string | undefined): Informers {
  const custom = <T extends KubernetesObject>(plural: string): Watched<T> => {
    const path = namespace
      ? `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${plural}`
      : `/apis/${GROUP}/${VERSION}/${plural}`;
    const list = (): Promise<{ items: T[]; metadata?: { resourceVersion?: string } }> =>
      (namespace
        ? c.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural })
        : c.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural })) as Promise<{
        items: T[];
        metadata?: { resourceVersion?: string };
      }>;
    return counted<T>((l) => makeInformer<T>(c.kc, path, l), list);
  };
  const secrets = (labelSelector: string): Watched<V1Secret> =>
    counted<V1Secret>(
      (l) =>
        makeInformer<V1Secret>(
          c.kc,
          namespace ? `/api/v1/namespaces/${namespace}/secrets` : '/api/v1/secrets',
          l,
          labelSelector,
        ),
      () =>
        namespace
          ? c.core.listNamespacedSecret({ namespace, labelSelector })
          : c.core.listSecretForAllNamespaces({ labelSelector }),
    );
  const configMaps = (labelSelector: string): Watched<V1ConfigMap> =>
    counted<V1ConfigMap>(
      (l) =>
        makeInformer<V1ConfigMap>(
          c.kc,
          namespace ? `/api/v1/namespaces/${namespace}/configmaps` : '/api/v1/configmaps',
          l,
          labelSelector,
        ),
      () =>
        namespace
          ? c.core.listNamespacedConfigMap({ namespace, labelSelector })
          : c.core.listConfigMapForAllNamespaces({ labelSelector }),
    );
  const informers: Informers = {
    plans: custom('usageplans'),
    keys: custom('apikeys'),
    bindings: custom('planbindings'),
    adjustments: custom('usageadjustments'),
    keySecrets: secrets(KEY_MATERIAL_SELECTOR),
    renderedConfigMaps: configMaps(RENDERED_SELECTOR),
    renderedSecrets: secrets(RENDERED_SELECTOR),
  };
  // Registered first, so it runs before any other handler sees the object.
  for (const inf of allInformers(informers)) {
    inf.on('add', slim);
    inf.on('update', slim);
  }
  return informers;
}

/** All informers of a set, as a list. */
export function allInformers(i: Informers): Watched<KubernetesObject>[] {
  return Object.values(namedInformers(i));
}

/** All informers of a set, by name (for logs). */
export function namedInformers(i: Informers): Record<keyof Informers, Watched<KubernetesObject>> {
  return {
    plans: i.plans,
    keys: i.keys,
    bindings: i.bindings,
    adjustments: i.adjustments,
    keySecrets: i.keySecrets,
    renderedConfigMaps: i.renderedConfigMaps,
    renderedSecrets: i.renderedSecrets,
  };
}
