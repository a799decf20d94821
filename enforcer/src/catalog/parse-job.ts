/**
 * The heavy half of a reload, as a generator of events: read (standalone file), hash, parse and
 * validate every shard, one event per shard. The same generator runs inline (small configs: the
 * consumer yields to the event loop between events) and in the parse process (large configs: each
 * event is posted to the main thread), so both paths decide alike.
 */
import { readFileSync } from 'node:fs';
import { ACCEPTED_CONTRACT_VERSIONS, type StageIndex } from '../../../contract/src/format.ts';
import { stageKey } from '../../../contract/src/identity.ts';
import { parseStandalone } from '../../../contract/src/validate.ts';
import { ConfigError } from '../errors.ts';
import { type PackedShard, packShard } from './packed-shard.ts';
import { checkShard, type Refusal, sanitise } from './shard.ts';

/** One stage's documents as a source read them: the validated index, and shard texts in index order. */
export interface StageTexts {
  /** Where they were read from (a directory, an object name, a file and stage). */
  readonly origin: string;
  readonly index: StageIndex;
  /** keys.json of each shard the index names; undefined when it has not arrived. */
  readonly keys: readonly (string | undefined)[];
  /** secrets.json of each shard the index names; undefined when it has not arrived. */
  readonly secrets: readonly (string | undefined)[];
}

/** A stage whose index could not be read or validated. */
export interface StageFailure {
  readonly origin: string;
  readonly error: Refusal;
}

/** A stage whose index has the revision already loaded from the same origin: nothing to read. */
export interface StageUnchanged {
  readonly origin: string;
  readonly unchanged: string;
}

/** What a source saw: every stage it has (a stage no longer listed is removed), or a standalone file. */
export type Snapshot =
  | { readonly kind: 'stages'; readonly stages: readonly (StageTexts | StageFailure | StageUnchanged)[] }
  | { readonly kind: 'file'; readonly path: string };

/** Work for the parser: a snapshot, and the shards (by `keysSha256:secretsSha256`) it may reuse. */
export interface ParseJob {
  readonly snapshot: Snapshot;
  readonly reusable: readonly string[];
}

/** What the parser reports, in order: per stage its index, then each shard, or a failure. */
export type ParseEvent =
  | { readonly type: 'stage'; readonly origin: string; readonly index: StageIndex }
  | { readonly type: 'shard'; readonly origin: string; readonly packed: PackedShard }
  | {
      readonly type: 'reused';
      readonly origin: string;
      readonly shard: number;
      readonly keysSha256: string;
      readonly secretsSha256: string;
    }
  | { readonly type: 'stage-error'; readonly origin: string; readonly error: Refusal }
  | { readonly type: 'unchanged'; readonly origin: string; readonly revision: string }
  | { readonly type: 'error'; readonly error: Refusal };

/** The reuse key of a shard. */
export function reuseKey(keysSha256: string, secretsSha256: string): string {
  return `${keysSha256}:${secretsSha256}`;
}

/** The origin of a stage read from a standalone file. */
export function fileOrigin(path: string, index: StageIndex): string {
  return `${path}#${stageKey(index.apiStage)}`;
}

/** Runs a job, yielding one event per stage and per shard. Never throws. */
export function* parseEvents(job: ParseJob): Generator<ParseEvent> {
  const reusable = new Set(job.reusable);
  let stages: readonly (StageTexts | StageFailure | StageUnchanged)[];
  if (job.snapshot.kind === 'file') {
    const read = readStandalone(job.snapshot.path);
    if (!read.ok) {
      yield { type: 'error', error: read.error };
      return;
    }
    stages = read.value;
  } else {
    stages = job.snapshot.stages;
  }
  for (const stage of stages) {
    if ('error' in stage) {
      yield { type: 'stage-error', origin: stage.origin, error: stage.error };
      continue;
    }
    if ('unchanged' in stage) {
      yield { type: 'unchanged', origin: stage.origin, revision: stage.unchanged };
      continue;
    }
    yield { type: 'stage', origin: stage.origin, index: stage.index };
    for (let i = 0; i < stage.index.shards.length; i++) {
      const ref = stage.index.shards[i];
      if (ref === undefined) break;
      // The bytes the index names are already loaded: nothing to read (the index-last rule holds).
      if (reusable.has(reuseKey(ref.keys.sha256, ref.secrets.sha256))) {
        yield {
          type: 'reused',
          origin: stage.origin,
          shard: i,
          keysSha256: ref.keys.sha256,
          secretsSha256: ref.secrets.sha256,
        };
        continue;
      }
      const checked = checkShard(stage.index, i, stage.keys[i], stage.secrets[i]);
      if (!checked.ok) {
        yield { type: 'stage-error', origin: stage.origin, error: checked.error };
        break;
      }
      const packed = packShard(stage.index, checked.value);
      if (typeof packed === 'string') {
        yield {
          type: 'stage-error',
          origin: stage.origin,
          error: {
            code: ConfigError.Inconsistent,
            message: `${stageKey(stage.index.apiStage)} shard ${i}: ${packed}`,
          },
        };
        break;
      }
      yield { type: 'shard', origin: stage.origin, packed };
    }
  }
}

/** Reads and validates a standalone config file into stage texts. */
export function readStandalone(
  path: string,
): { ok: true; value: StageTexts[] } | { ok: false; error: Refusal } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { ok: false, error: { code: ConfigError.Unreadable, message: `cannot read ${path}: ${code}` } };
  }
  const parsed = parseStandalone(text);
  if (!parsed.ok) {
    return { ok: false, error: { code: ConfigError.Invalid, message: `${path}: ${sanitise(parsed.error)}` } };
  }
  const seen = new Set<string>();
  const stages: StageTexts[] = [];
  for (const s of parsed.value.stages) {
    const key = stageKey(s.index.apiStage);
    if (seen.has(key)) {
      return {
        ok: false,
        error: { code: ConfigError.Inconsistent, message: `${path}: stage ${key} appears twice` },
      };
    }
    seen.add(key);
    // The file's schema validated the index; its version is checked per document, as any index's.
    if (!ACCEPTED_CONTRACT_VERSIONS.includes(s.index.version)) {
      return {
        ok: false,
        error: {
          code: ConfigError.Invalid,
          message: `${path}: the index of ${key} has contract version ${s.index.version}; this build reads ${ACCEPTED_CONTRACT_VERSIONS.join(', ')}`,
        },
      };
    }
    stages.push({ origin: fileOrigin(path, s.index), index: s.index, keys: s.keys, secrets: s.secrets });
  }
  return { ok: true, value: stages };
}
