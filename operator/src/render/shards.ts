/**
 * One stage's shards and index. Kept separate from binding resolution so that the operator can re-render
 * just the shard a changed key lives in, and the index, without touching the other shards.
 */
import {
  type ApiStageId,
  CONTRACT_VERSION,
  type Credential,
  type KeysShard,
  type RenderedAdjustment,
  type RenderedKey,
  type RenderedPlan,
  type SecretsShard,
  type StageIndex,
} from '../../../contract/src/format.ts';
import {
  DATA_KEYS,
  LABELS,
  MANAGED_BY,
  objectNames,
  sha256,
  shardOf,
  shardCount,
} from '../../../contract/src/identity.ts';
import type { RenderedObject } from './types.ts';

/** A key placed on a stage: what the ConfigMap shard says of it, and what the Secret shard holds. */
export interface StageEntry {
  readonly key: RenderedKey;
  readonly credential: Credential;
}

/** One shard's two documents, serialised exactly as written (the index hashes these strings). */
export interface ShardDocuments {
  readonly index: number;
  readonly count: number;
  readonly keysJson: string;
  readonly secretsJson: string;
  /** The SHA-256 of keysJson, when already known (the incremental renderer keeps it); else computed. */
  readonly keysSha256?: string;
  /** The SHA-256 of secretsJson, when already known. */
  readonly secretsSha256?: string;
}

const byId = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Splits a stage's entries into shards by key id: `shardCount(n)` shards, each key in `shardOf(id, n)`. */
export function partition(entries: readonly StageEntry[], keysPerShard?: number): StageEntry[][] {
  const n = shardCount(entries.length, keysPerShard);
  const shards: StageEntry[][] = Array.from({ length: n }, () => []);
  for (const e of entries) shards[shardOf(e.key.id, n)]?.push(e);
  return shards;
}

/** Renders one shard's keys.json and secrets.json, deterministically (entries sorted by key id). */
export function renderShard(
  apiStage: ApiStageId,
  index: number,
  entries: readonly StageEntry[],
): ShardDocuments {
  const keys: KeysShard = {
    version: CONTRACT_VERSION,
    apiStage,
    shard: index,
    keys: entries.map((e) => e.key).sort(byId),
  };
  const secrets: SecretsShard = {
    version: CONTRACT_VERSION,
    apiStage,
    shard: index,
    credentials: entries.map((e) => e.credential).sort(byId),
  };
  return {
    index,
    count: entries.length,
    keysJson: JSON.stringify(keys),
    secretsJson: JSON.stringify(secrets),
  };
}

/**
 * A shard document's JSON from the JSON of each of its entries (sorted by key id): the same bytes as
 * JSON.stringify of the document renderShard builds, without serialising every entry again.
 */
export function shardJson(
  apiStage: ApiStageId,
  index: number,
  field: 'keys' | 'credentials',
  entries: readonly string[],
): string {
  const empty = JSON.stringify({ version: CONTRACT_VERSION, apiStage, shard: index, [field]: [] });
  return `${empty.slice(0, -2)}${entries.join(',')}]}`;
}

/**
 * Renders the index over the plans, the shards' documents (their hashes) and the adjustments of the
 * stage's plans. An index without adjustments has no `adjustments` field, and the same revision it had
 * before adjustments existed.
 */
export function renderIndex(
  apiStage: ApiStageId,
  plans: readonly RenderedPlan[],
  shards: readonly ShardDocuments[],
  adjustments: readonly RenderedAdjustment[] = [],
): StageIndex {
  const shardRefs = shards.map((s) => ({
    index: s.index,
    count: s.count,
    keys: { name: objectNames.keys(apiStage, s.index), sha256: s.keysSha256 ?? sha256(s.keysJson) },
    secrets: {
      name: objectNames.secrets(apiStage, s.index),
      sha256: s.secretsSha256 ?? sha256(s.secretsJson),
    },
  }));
  const sortedPlans = [...plans].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const sortedAdjustments = [...adjustments].sort(byId);
  const has = sortedAdjustments.length > 0;
  return {
    version: CONTRACT_VERSION,
    apiStage,
    revision: sha256(
      JSON.stringify({
        plans: sortedPlans,
        ...(has && { adjustments: sortedAdjustments }),
        shards: shardRefs,
      }),
    ),
    keyCount: shards.reduce((n, s) => n + s.count, 0),
    plans: sortedPlans,
    ...(has && { adjustments: sortedAdjustments }),
    shards: shardRefs,
  };
}

/** The labels of a stage's rendered objects. */
export function stageLabels(
  apiStage: ApiStageId,
  role: 'index' | 'keys' | 'secrets',
): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.api]: apiStage.api,
    [LABELS.stage]: apiStage.stage,
    [LABELS.role]: role,
  };
}

/** The objects to write for a stage, shards first and the index last. */
export function stageObjects(
  apiStage: ApiStageId,
  index: StageIndex,
  shards: readonly ShardDocuments[],
  owners: RenderedObject['owners'],
): RenderedObject[] {
  return [...shards.flatMap((s) => shardObjects(apiStage, s, owners)), indexObject(apiStage, index, owners)];
}

/** A shard's two objects: the keys ConfigMap and the secrets Secret. */
export function shardObjects(
  apiStage: ApiStageId,
  s: ShardDocuments,
  owners: RenderedObject['owners'],
): [RenderedObject, RenderedObject] {
  const ns = apiStage.namespace;
  return [
    {
      kind: 'ConfigMap',
      name: objectNames.keys(apiStage, s.index),
      namespace: ns,
      labels: stageLabels(apiStage, 'keys'),
      owners,
      data: { [DATA_KEYS.keys]: s.keysJson },
    },
    {
      kind: 'Secret',
      name: objectNames.secrets(apiStage, s.index),
      namespace: ns,
      labels: stageLabels(apiStage, 'secrets'),
      owners,
      data: { [DATA_KEYS.secrets]: s.secretsJson },
    },
  ];
}

/** A stage's index ConfigMap. */
export function indexObject(
  apiStage: ApiStageId,
  index: StageIndex,
  owners: RenderedObject['owners'],
): RenderedObject {
  return {
    kind: 'ConfigMap',
    name: objectNames.index(apiStage),
    namespace: apiStage.namespace,
    labels: stageLabels(apiStage, 'index'),
    owners,
    data: { [DATA_KEYS.index]: JSON.stringify(index) },
  };
}
