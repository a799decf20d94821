/**
 * Watch mode: the rendered ConfigMaps and Secrets of the configured stages, each watched BY NAME through
 * the Kubernetes API (a list and a watch with `fieldSelector=metadata.name=<name>`), so the enforcer's
 * Role can name its objects in `resourceNames` and never read any other Secret (a customer's key
 * Secrets least of all). Each stage's index is watched; the shards it names are watched as the index
 * names them. A change is loaded as soon as the watch event arrives (well within a second), following
 * the index-last rule: a stage swaps only when every shard the index names has its hash.
 */
import {
  CoreV1Api,
  KubeConfig,
  ListWatch,
  type V1ConfigMap,
  type V1Secret,
  Watch,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ApiStageId } from '../../../../contract/src/format.ts';
import { DATA_KEYS, objectNames, stageKey } from '../../../../contract/src/identity.ts';
import type { CatalogLoader } from '../loader.ts';
import type { Snapshot, StageFailure, StageTexts, StageUnchanged } from '../parse-job.ts';
import { checkIndex } from '../shard.ts';

type Kind = 'configmaps' | 'secrets';

/** One object watched by name: its data key's text, while it exists. */
class NamedObject {
  readonly kind: Kind;
  readonly name: string;
  #text: string | undefined;
  #listWatch: ListWatch<V1ConfigMap | V1Secret>;
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;
  #backoffMs = 500;
  /** Resolved once a list has succeeded: client-node's start() resolves after a failed one too. */
  readonly #listed = Promise.withResolvers<undefined>();
  #lists = 0;
  readonly #dataKey: string;
  readonly #logger: Logger;
  readonly #onChange: () => void;

  constructor(
    kc: KubeConfig,
    core: CoreV1Api,
    namespace: string,
    kind: Kind,
    name: string,
    dataKey: string,
    logger: Logger,
    onChange: () => void,
  ) {
    this.kind = kind;
    this.name = name;
    this.#dataKey = dataKey;
    this.#logger = logger;
    this.#onChange = onChange;
    const fieldSelector = `metadata.name=${name}`;
    const list =
      kind === 'configmaps'
        ? (): Promise<{ items: (V1ConfigMap | V1Secret)[]; metadata?: { resourceVersion?: string } }> =>
            core.listNamespacedConfigMap({ namespace, fieldSelector })
        : (): Promise<{ items: (V1ConfigMap | V1Secret)[]; metadata?: { resourceVersion?: string } }> =>
            core.listNamespacedSecret({ namespace, fieldSelector });
    const counted = async (): Promise<{
      items: (V1ConfigMap | V1Secret)[];
      metadata?: { resourceVersion?: string };
    }> => {
      const result = await list();
      this.#lists += 1;
      this.#listed.resolve(undefined);
      return result;
    };
    this.#listWatch = new ListWatch<V1ConfigMap | V1Secret>(
      `/api/v1/namespaces/${namespace}/${kind}`,
      new Watch(kc),
      counted,
      false,
      undefined,
      fieldSelector,
    );
    const update = (obj: V1ConfigMap | V1Secret): void => {
      if (obj.metadata?.name !== name) return;
      const text = this.#read(obj);
      if (text !== this.#text) {
        this.#text = text;
        this.#onChange();
      }
    };
    this.#listWatch.on('add', update);
    this.#listWatch.on('update', update);
    this.#listWatch.on('delete', (obj) => {
      if (obj.metadata?.name !== name || this.#text === undefined) return;
      this.#text = undefined;
      this.#onChange();
    });
    this.#listWatch.on('error', (err: unknown) => {
      this.#restart(err);
    });
  }

  /** The data key's text, or undefined when the object or the key is absent. */
  get text(): string | undefined {
    return this.#text;
  }

  #read(obj: V1ConfigMap | V1Secret): string | undefined {
    if (this.kind === 'configmaps') return (obj as V1ConfigMap).data?.[this.#dataKey];
    const encoded = (obj as V1Secret).data?.[this.#dataKey];
    return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8');
  }

  /**
   * Lists and starts watching; resolves when that attempt ends (see {@link listed}). Retries on
   * failure, waiting longer each time (500 ms doubling to 30 s) until a list succeeds again.
   */
  async start(): Promise<void> {
    const before = this.#lists;
    try {
      await this.#listWatch.start();
      if (this.#lists > before) this.#backoffMs = 500;
    } catch (err) {
      this.#restart(err);
    }
  }

  /** Resolves once a list of the object has succeeded (what {@link text} says is then the API server's). */
  get listed(): Promise<undefined> {
    return this.#listed.promise;
  }

  #restart(err: unknown): void {
    if (this.#stopped || this.#retry) return;
    const e = err as { statusCode?: number; code?: number; message?: string };
    this.#logger.warn(
      {
        kind: this.kind,
        name: this.name,
        status: e.statusCode ?? e.code,
        error: e.message,
        retryInMs: this.#backoffMs,
      },
      'watch failed; retrying',
    );
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.start();
    }, this.#backoffMs);
    this.#retry.unref();
    this.#backoffMs = Math.min(this.#backoffMs * 2, 30_000);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    await this.#listWatch.stop();
  }
}

/** Watches the configured stages' rendered objects by name and loads them into `loader`. */
export class KubeSource {
  readonly #namespace: string;
  readonly #stages: readonly ApiStageId[];
  readonly #loader: CatalogLoader;
  readonly #logger: Logger;
  readonly #kc: KubeConfig;
  readonly #core: CoreV1Api;
  readonly #indexes = new Map<string, NamedObject>(); // stage key -> its index ConfigMap
  readonly #shards = new Map<string, NamedObject>(); // `${kind}/${name}` -> a shard object
  #started = false;
  #debounce: NodeJS.Timeout | undefined;

  /** Watches `stages` (api/stage pairs) of `namespace`; `kc` defaults to KUBECONFIG or in-cluster. */
  constructor(
    namespace: string,
    stages: readonly { readonly api: string; readonly stage: string }[],
    loader: CatalogLoader,
    logger: Logger,
    kc?: KubeConfig,
  ) {
    this.#namespace = namespace;
    this.#stages = stages.map((s) => ({ namespace, api: s.api, stage: s.stage }));
    this.#loader = loader;
    this.#logger = logger;
    if (kc === undefined) {
      kc = new KubeConfig();
      kc.loadFromDefault();
    }
    this.#kc = kc;
    this.#core = kc.makeApiClient(CoreV1Api);
  }

  /** Lists every index and the shards they name, loads them, then keeps watching. */
  async start(): Promise<void> {
    for (const s of this.#stages) {
      this.#indexes.set(stageKey(s), this.#watch('configmaps', objectNames.index(s), DATA_KEYS.index));
    }
    await Promise.all([...this.#indexes.values()].map((o) => o.start()));
    // A failed list leaves an index unknown, not absent: loading then would swap in a config without
    // the stage (every key refused as UnknownStage) instead of staying unready (503).
    await Promise.all([...this.#indexes.values()].map((o) => o.listed));
    await this.#reconcileShards();
    this.#started = true;
    await this.#load();
  }

  #watch(kind: Kind, name: string, dataKey: string): NamedObject {
    return new NamedObject(this.#kc, this.#core, this.#namespace, kind, name, dataKey, this.#logger, () => {
      this.#changed();
    });
  }

  #changed(): void {
    if (!this.#started) return;
    if (this.#debounce) clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      void this.#reconcileShards().then(() => this.#load());
    }, 10);
  }

  /** Watches every shard the current indexes name, and stops watching shards none names. */
  async #reconcileShards(): Promise<void> {
    const wanted = new Map<string, { kind: Kind; name: string; dataKey: string }>();
    for (const index of this.#indexes.values()) {
      const parsed = index.text === undefined ? undefined : checkIndex(index.text);
      if (!parsed?.ok) continue;
      for (const s of parsed.value.shards) {
        wanted.set(`configmaps/${s.keys.name}`, {
          kind: 'configmaps',
          name: s.keys.name,
          dataKey: DATA_KEYS.keys,
        });
        wanted.set(`secrets/${s.secrets.name}`, {
          kind: 'secrets',
          name: s.secrets.name,
          dataKey: DATA_KEYS.secrets,
        });
      }
    }
    const started: Promise<void>[] = [];
    for (const [id, w] of wanted) {
      if (this.#shards.has(id)) continue;
      const o = this.#watch(w.kind, w.name, w.dataKey);
      this.#shards.set(id, o);
      started.push(o.start());
    }
    for (const [id, o] of this.#shards) {
      if (!wanted.has(id)) {
        this.#shards.delete(id);
        void o.stop();
      }
    }
    await Promise.all(started);
  }

  async #load(): Promise<void> {
    await this.#loader.request(() => Promise.resolve(this.snapshot()));
  }

  /** What the watches hold now. */
  snapshot(): Snapshot {
    const loaded = new Map<string, string>();
    for (const s of this.#loader.current()?.stages.values() ?? []) loaded.set(s.origin, s.revision);
    const stages: (StageTexts | StageFailure | StageUnchanged)[] = [];
    for (const [key, index] of this.#indexes) {
      if (index.text === undefined) continue; // no such stage (yet, or any more)
      const origin = `configmap ${this.#namespace}/${index.name} (${key})`;
      const parsed = checkIndex(index.text);
      if (!parsed.ok) {
        stages.push({ origin, error: parsed.error });
        continue;
      }
      if (stageKey(parsed.value.apiStage) !== key) {
        stages.push({
          origin,
          error: {
            code: 'Inconsistent',
            message: `${origin} names stage ${stageKey(parsed.value.apiStage)}`,
          },
        });
        continue;
      }
      if (loaded.get(origin) === parsed.value.revision) {
        stages.push({ origin, unchanged: parsed.value.revision });
        continue;
      }
      stages.push({
        origin,
        index: parsed.value,
        keys: parsed.value.shards.map((s) => this.#shards.get(`configmaps/${s.keys.name}`)?.text),
        secrets: parsed.value.shards.map((s) => this.#shards.get(`secrets/${s.secrets.name}`)?.text),
      });
    }
    return { kind: 'stages', stages };
  }

  /** Stops every watch. */
  stop(): void {
    if (this.#debounce) clearTimeout(this.#debounce);
    for (const o of [...this.#indexes.values(), ...this.#shards.values()]) void o.stop();
  }
}
