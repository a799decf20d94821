/**
 * Test fixtures: rendered stage documents made by the operator's own shard renderer
 * (operator/src/render/shards.ts), from plans and keys written briefly, and catalogs loaded from them
 * through the real loader. For unit tests and benchmarks; e2e suites use `keystile render` itself.
 */
import pino from 'pino';
import {
  type ApiStageId,
  CONTRACT_VERSION,
  type Credential,
  type RenderedPlan,
  type StageDocuments,
  type StandaloneConfig,
} from '../../contract/src/format.ts';
import { hashKey } from '../../contract/src/key-format.ts';
import { partition, renderIndex, renderShard, type StageEntry } from '../../operator/src/render/shards.ts';
import type { Catalog } from '../src/catalog/catalog.ts';
import { CatalogLoader, type LoaderHooks } from '../src/catalog/loader.ts';
import { fileOrigin, type StageTexts } from '../src/catalog/parse-job.ts';
import { ThresholdParser } from '../src/catalog/parser.ts';
import type { Refusal } from '../src/catalog/shard.ts';

export { plan } from '../../contract/testing/plans.ts';

/** A key, briefly: an ApiKey by its value(s), or a KeyPair by its SecretId and SecretKey(s). */
export interface FixtureKey {
  readonly id: string;
  readonly plan: string;
  readonly name?: string;
  readonly enabled?: boolean;
  readonly expiresAt?: string;
  readonly customer?: string;
  /** ApiKey: the current value, then rotated-out values with their end of grace. */
  readonly values?: readonly { readonly value: string; readonly validUntil?: string }[];
  /** KeyPair. */
  readonly secretId?: string;
  readonly secretKeys?: readonly { readonly value: string; readonly validUntil?: string }[];
}

/** One stage's documents, as the operator renders them. */
export function stageDocuments(
  apiStage: ApiStageId,
  plans: readonly RenderedPlan[],
  keys: readonly FixtureKey[],
  keysPerShard?: number,
): StageDocuments {
  const entries: StageEntry[] = keys.map((k) => {
    const type = k.secretId === undefined ? 'ApiKey' : 'KeyPair';
    const credential: Credential =
      type === 'ApiKey'
        ? {
            id: k.id,
            type: 'ApiKey',
            hashes: (k.values ?? []).map((v) => ({
              sha256: hashKey(v.value),
              ...(v.validUntil !== undefined && { validUntil: v.validUntil }),
            })),
          }
        : {
            id: k.id,
            type: 'KeyPair',
            secretId: k.secretId ?? '',
            secretKeys: (k.secretKeys ?? []).map((s) => ({
              value: s.value,
              ...(s.validUntil !== undefined && { validUntil: s.validUntil }),
            })),
          };
    return {
      key: {
        id: k.id,
        name: k.name ?? k.id,
        plan: k.plan,
        type,
        enabled: k.enabled ?? true,
        ...(k.expiresAt !== undefined && { expiresAt: k.expiresAt }),
        ...(k.customer !== undefined && { customer: k.customer }),
      },
      credential,
    };
  });
  const shards = partition(entries, keysPerShard).map((e, i) => renderShard(apiStage, i, e));
  const index = renderIndex(apiStage, plans, shards);
  return { index, keys: shards.map((s) => s.keysJson), secrets: shards.map((s) => s.secretsJson) };
}

/** A standalone config file's content over some stages. */
export function standaloneConfig(stages: readonly StageDocuments[]): string {
  const config: StandaloneConfig = {
    version: CONTRACT_VERSION,
    kind: 'KeystileStandaloneConfig',
    stages: [...stages],
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** Stage documents as a source reports them. */
export function stageTexts(docs: StageDocuments, origin = fileOrigin('test', docs.index)): StageTexts {
  return { origin, index: docs.index, keys: docs.keys, secrets: docs.secrets };
}

/** A loader with an inline parser, recording what it was told. */
export function testLoader(): {
  loader: CatalogLoader;
  swaps: Catalog[];
  refusals: { origin: string; error: Refusal }[];
} {
  const swaps: Catalog[] = [];
  const refusals: { origin: string; error: Refusal }[] = [];
  const hooks: LoaderHooks = {
    swapped: (c) => swaps.push(c),
    refused: (origin, error) => refusals.push({ origin, error }),
  };
  return { loader: new CatalogLoader(new ThresholdParser(Infinity), hooks), swaps, refusals };
}

/** Loads stages into a fresh catalog; throws when anything was refused. */
export async function catalogOf(...stages: StageDocuments[]): Promise<Catalog> {
  const { loader, refusals } = testLoader();
  await loader.load({ kind: 'stages', stages: stages.map((s) => stageTexts(s)) });
  const catalog = loader.current();
  if (refusals.length > 0 || catalog === undefined) {
    throw new Error(`the fixture was refused: ${refusals.map((r) => r.error.message).join('; ')}`);
  }
  return catalog;
}

/** A silent logger. */
export const silentLogger = pino({ level: 'silent' });
