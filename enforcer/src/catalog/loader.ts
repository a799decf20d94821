/**
 * Turns what a source saw into the catalog decisions read, and swaps it in whole. Per stage: the new
 * documents replace the stage only when every shard the index names has arrived with its hash and
 * passes validation; otherwise the stage's last good config keeps serving (and the refusal is
 * reported). A stage no longer present at its source is removed. Loads run one at a time; a request
 * made during a load runs once after it, with the source's newest snapshot.
 */
import { stageKey } from '../../../contract/src/identity.ts';
import { ConfigError } from '../errors.ts';
import {
  type Catalog,
  type CatalogView,
  compilePlans,
  type ShardEntries,
  type StageCatalog,
} from './catalog.ts';
import { reuseKey, type Snapshot } from './parse-job.ts';
import type { Parser } from './parser.ts';
import type { Refusal } from './shard.ts';
import { StageBuilder } from './stage-builder.ts';

/** Told what every load did: for metrics and logs. */
export interface LoaderHooks {
  /** A new catalog is in use (`ms`: how long the load took). */
  swapped(catalog: Catalog, ms: number): void;
  /** Something read from `origin` was refused; the last good config of it (if any) keeps serving. */
  refused(origin: string, error: Refusal): void;
  /** A load refused nothing: the config in use (swapped in, or kept as it was) is the one given. */
  upToDate?(): void;
}

/** What one load did. */
export interface LoadReport {
  /** Whether a new catalog was swapped in. */
  readonly swapped: boolean;
  /** What was refused, by origin ('' for the whole snapshot). */
  readonly refused: readonly { readonly origin: string; readonly error: Refusal }[];
}

/** Loads snapshots into catalogs; is the {@link CatalogView} decisions read. */
export class CatalogLoader implements CatalogView {
  readonly #parser: Parser;
  readonly #hooks: LoaderHooks;
  readonly #now: () => number;
  #catalog: Catalog | undefined;
  #running: Promise<void> | undefined;
  #pending: (() => Promise<Snapshot>) | undefined;

  /** `now` measures load times (performance.now by default). */
  constructor(parser: Parser, hooks: LoaderHooks, now: () => number = () => performance.now()) {
    this.#parser = parser;
    this.#hooks = hooks;
    this.#now = now;
  }

  current(): Catalog | undefined {
    return this.#catalog;
  }

  /**
   * Asks for a load of what `read` returns. Loads never overlap: during a load, the newest request
   * waits and runs after it (earlier waiting requests are dropped). Resolves when the requested load
   * has run; never rejects (a failing `read` is reported as an Unreadable refusal).
   */
  request(read: () => Promise<Snapshot>): Promise<void> {
    this.#pending = read;
    this.#running ??= this.#drain().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #drain(): Promise<void> {
    while (this.#pending) {
      const read = this.#pending;
      this.#pending = undefined;
      let snapshot: Snapshot;
      try {
        snapshot = await read();
      } catch (err) {
        this.#hooks.refused('', {
          code: ConfigError.Unreadable,
          message: err instanceof Error ? err.message : String(err),
        });
        continue;
      }
      await this.load(snapshot);
    }
  }

  /** Loads one snapshot now (callers other than tests use {@link request}, which serialises loads). */
  async load(snapshot: Snapshot): Promise<LoadReport> {
    const started = this.#now();
    const previous = this.#catalog;
    const byOrigin = new Map<string, StageCatalog>();
    const reusable = new Map<string, { shard: ShardEntries; from: StageCatalog }>();
    for (const stage of previous?.stages.values() ?? []) {
      byOrigin.set(stage.origin, stage);
      for (const shard of stage.shards) {
        reusable.set(reuseKey(shard.keysSha256, shard.secretsSha256), { shard, from: stage });
      }
    }

    const refused: { origin: string; error: Refusal }[] = [];
    const builders = new Map<string, StageBuilder>();
    const seen = new Set<string>(); // origins the snapshot mentions
    const kept = new Map<string, StageCatalog>(); // origin -> stage kept as it was
    for await (const event of this.#parser.run({ snapshot, reusable: [...reusable.keys()] })) {
      switch (event.type) {
        case 'error':
          refused.push({ origin: '', error: event.error });
          break;
        case 'stage': {
          seen.add(event.origin);
          const plans = compilePlans(event.index);
          const builder = new StageBuilder(
            event.index,
            event.origin,
            typeof plans === 'string' ? new Map() : plans,
          );
          if (typeof plans === 'string') {
            builder.fail({
              code: ConfigError.Invalid,
              message: `${stageKey(event.index.apiStage)}: ${plans}`,
            });
          }
          builders.set(event.origin, builder);
          break;
        }
        case 'shard':
          builders.get(event.origin)?.addPacked(event.packed);
          break;
        case 'reused': {
          const reused = reusable.get(reuseKey(event.keysSha256, event.secretsSha256));
          const builder = builders.get(event.origin);
          if (reused) builder?.addReused(event.shard, reused.shard, reused.from);
          else builder?.fail({ code: ConfigError.Inconsistent, message: 'a reused shard is gone' });
          break;
        }
        case 'stage-error': {
          seen.add(event.origin);
          const builder = builders.get(event.origin);
          if (builder) builder.fail(event.error);
          else refused.push({ origin: event.origin, error: event.error });
          break;
        }
        case 'unchanged': {
          seen.add(event.origin);
          const stage = byOrigin.get(event.origin);
          if (stage?.revision === event.revision) kept.set(event.origin, stage);
          else {
            refused.push({
              origin: event.origin,
              error: { code: ConfigError.Inconsistent, message: 'an unchanged stage is not loaded' },
            });
          }
          break;
        }
      }
    }
    if (refused.some((r) => r.origin === '')) {
      for (const r of refused) this.#hooks.refused(r.origin, r.error);
      return { swapped: false, refused };
    }

    for (const [origin, builder] of builders) {
      const built = builder.finish();
      if (!built.ok) refused.push({ origin, error: built.error });
      else {
        // The same revision from the same place is the same config: keep the object, so nothing swaps.
        const last = byOrigin.get(origin);
        kept.set(origin, last?.revision === built.value.revision ? last : built.value);
      }
    }
    // A refused stage keeps its last good config from the same origin.
    for (const { origin } of refused) {
      const last = byOrigin.get(origin);
      if (last && !kept.has(origin)) kept.set(origin, last);
    }
    const stages = new Map<string, StageCatalog>();
    for (const [origin, stage] of [...kept].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (!seen.has(origin)) continue;
      if (stages.has(stage.key)) {
        refused.push({
          origin,
          error: {
            code: ConfigError.Inconsistent,
            message: `stage ${stage.key} is also read from another place`,
          },
        });
        continue;
      }
      stages.set(stage.key, stage);
    }
    for (const r of refused) this.#hooks.refused(r.origin, r.error);

    const loadedAnything = stages.size > 0 || !refused.length;
    if (!loadedAnything && previous === undefined) return { swapped: false, refused };
    const swapped = !(previous && sameStages(previous.stages, stages));
    if (swapped) {
      let keyCount = 0;
      for (const s of stages.values()) keyCount += s.keyCount;
      const catalog: Catalog = Object.freeze({
        generation: (previous?.generation ?? 0) + 1,
        stages,
        keyCount,
      });
      this.#catalog = catalog;
      this.#hooks.swapped(catalog, this.#now() - started);
    }
    if (refused.length === 0) this.#hooks.upToDate?.();
    return { swapped, refused };
  }

  /** Ends the parser's worker. */
  async close(): Promise<void> {
    this.#pending = undefined;
    await this.#running;
    await this.#parser.close();
  }
}

function sameStages(a: ReadonlyMap<string, StageCatalog>, b: ReadonlyMap<string, StageCatalog>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, stage] of a) if (b.get(key) !== stage) return false;
  return true;
}
