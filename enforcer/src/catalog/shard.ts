/**
 * One shard of a stage, checked the contract's way (docs/contract.md, "the index is written last"): its
 * exact bytes hash to what the index says, each document passes the contract's JSON Schema, both name
 * the index's stage and shard number, and every key has its credential. Pure (node:crypto only); runs
 * on the main thread for small configs and in the parse process for large ones.
 */
import type { Credential, RenderedKey, StageIndex } from '../../../contract/src/format.ts';
import { sha256, stageKey } from '../../../contract/src/identity.ts';
import { parseIndex, parseKeysShard, parseSecretsShard } from '../../../contract/src/validate.ts';
import { ConfigError } from '../errors.ts';

/** A shard that passed every check. */
export interface ParsedShard {
  readonly shard: number;
  readonly keysSha256: string;
  readonly secretsSha256: string;
  readonly keys: readonly RenderedKey[];
  readonly credentials: readonly Credential[];
}

/** A refusal: the error class and a message that quotes no document content. */
export interface Refusal {
  readonly code: ConfigError;
  readonly message: string;
}

/** The result of a check. */
export type Checked<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: Refusal };

const refuse = (code: ConfigError, message: string): { ok: false; error: Refusal } => ({
  ok: false,
  error: { code, message },
});

/**
 * The contract's parsers quote JSON.parse's message, which can hold a snippet of the document; a
 * secrets document must never reach a log, so that part is cut.
 */
export function sanitise(error: string): string {
  const cut = error.indexOf(' is not JSON');
  return cut >= 0 ? `${error.slice(0, cut)} is not JSON` : error;
}

/** Parses and validates an index.json. */
export function checkIndex(text: string): Checked<StageIndex> {
  const parsed = parseIndex(text);
  return parsed.ok ? parsed : refuse(ConfigError.Invalid, sanitise(parsed.error));
}

/** Whether a shard's two texts hash to what the index names for shard `i` (cheap: no parsing). */
export function shardArrived(
  index: StageIndex,
  i: number,
  keysText: string | undefined,
  secretsText: string | undefined,
): Checked<{ keysSha256: string; secretsSha256: string }> {
  const ref = index.shards[i];
  const where = `${stageKey(index.apiStage)} shard ${i}`;
  if (!ref) return refuse(ConfigError.Inconsistent, `${where}: the index names no such shard`);
  if (keysText === undefined) return refuse(ConfigError.Incomplete, `${where}: ${ref.keys.name} is missing`);
  if (secretsText === undefined) {
    return refuse(ConfigError.Incomplete, `${where}: ${ref.secrets.name} is missing`);
  }
  const keysSha256 = sha256(keysText);
  if (keysSha256 !== ref.keys.sha256) {
    return refuse(
      ConfigError.Incomplete,
      `${where}: ${ref.keys.name} does not have the hash the index names`,
    );
  }
  const secretsSha256 = sha256(secretsText);
  if (secretsSha256 !== ref.secrets.sha256) {
    return refuse(
      ConfigError.Incomplete,
      `${where}: ${ref.secrets.name} does not have the hash the index names`,
    );
  }
  return { ok: true, value: { keysSha256, secretsSha256 } };
}

/**
 * Checks shard `i` of `index` from its two texts: hashes first (a shard that has not arrived is
 * `Incomplete`), then the schema, then agreement with the index and between the two documents.
 */
export function checkShard(
  index: StageIndex,
  i: number,
  keysText: string | undefined,
  secretsText: string | undefined,
): Checked<ParsedShard> {
  const arrived = shardArrived(index, i, keysText, secretsText);
  if (!arrived.ok) return arrived;
  const where = `${stageKey(index.apiStage)} shard ${i}`;
  const keys = parseKeysShard(keysText ?? '');
  if (!keys.ok) return refuse(ConfigError.Invalid, `${where}: ${sanitise(keys.error)}`);
  const secrets = parseSecretsShard(secretsText ?? '');
  if (!secrets.ok) return refuse(ConfigError.Invalid, `${where}: ${sanitise(secrets.error)}`);
  const stage = stageKey(index.apiStage);
  if (stageKey(keys.value.apiStage) !== stage || stageKey(secrets.value.apiStage) !== stage) {
    return refuse(ConfigError.Inconsistent, `${where}: a document names another API stage`);
  }
  const ref = index.shards[i];
  if (keys.value.shard !== ref?.index || secrets.value.shard !== ref.index) {
    return refuse(ConfigError.Inconsistent, `${where}: a document names another shard number`);
  }
  if (keys.value.keys.length !== ref.count) {
    return refuse(
      ConfigError.Inconsistent,
      `${where}: ${keys.value.keys.length} keys, the index says ${ref.count}`,
    );
  }
  const credentials = new Map<string, Credential>();
  for (const c of secrets.value.credentials) {
    if (credentials.has(c.id))
      return refuse(ConfigError.Inconsistent, `${where}: key ${c.id} has two credentials`);
    credentials.set(c.id, c);
  }
  const seen = new Set<string>();
  for (const k of keys.value.keys) {
    if (seen.has(k.id)) return refuse(ConfigError.Inconsistent, `${where}: key ${k.id} is listed twice`);
    seen.add(k.id);
    const c = credentials.get(k.id);
    if (c === undefined) return refuse(ConfigError.Inconsistent, `${where}: key ${k.id} has no credential`);
    if (c.type !== k.type)
      return refuse(ConfigError.Inconsistent, `${where}: key ${k.id} has a ${c.type} credential`);
  }
  if (credentials.size !== seen.size) {
    return refuse(ConfigError.Inconsistent, `${where}: a credential has no key`);
  }
  return {
    ok: true,
    value: {
      shard: i,
      keysSha256: arrived.value.keysSha256,
      secretsSha256: arrived.value.secretsSha256,
      keys: keys.value.keys,
      credentials: secrets.value.credentials,
    },
  };
}
