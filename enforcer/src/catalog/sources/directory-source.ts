/**
 * Mounted mode: the rendered ConfigMaps and Secrets mounted as volumes, read as
 * `DIR/<object name>/<data key>` (one volume per object, or one projected volume with an item per
 * object). Every `DIR/*\/index.json` is a stage; its shards are read by the names the index gives.
 *
 * The kubelet updates a volume by writing a new timestamped directory and renaming a `..data` link
 * onto it, atomically. A watch on DIR and on each object directory sees that rename; a poll backs the
 * watches up. Either way the kubelet only syncs a changed object after its sync period (about a
 * minute): watch mode is the one for changes that must apply within a second.
 */
import { type FSWatcher, watch } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DATA_KEYS } from '../../../../contract/src/identity.ts';
import type { CatalogView } from '../catalog.ts';
import type { CatalogLoader } from '../loader.ts';
import type { Snapshot, StageFailure, StageTexts, StageUnchanged } from '../parse-job.ts';
import { checkIndex } from '../shard.ts';

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Reads every stage under `dir`. A stage whose index has the revision already loaded from the same
 * place is reported unchanged without reading its shards (the index names their hashes, so equal
 * revisions are equal configs).
 */
export async function readDirectory(dir: string, loaded: CatalogView): Promise<Snapshot> {
  let entries: string[];
  try {
    entries = (await readdir(dir)).filter((e) => !e.startsWith('..')).sort();
  } catch (err) {
    throw new Error(`cannot read ${dir}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const current = new Map<string, string>();
  for (const s of loaded.current()?.stages.values() ?? []) current.set(s.origin, s.revision);
  const stages: (StageTexts | StageFailure | StageUnchanged)[] = [];
  for (const entry of entries) {
    const origin = join(dir, entry);
    const indexText = await readText(join(origin, DATA_KEYS.index));
    if (indexText === undefined) continue; // not an index: a shard, or something else
    const index = checkIndex(indexText);
    if (!index.ok) {
      stages.push({ origin, error: { ...index.error, message: `${origin}: ${index.error.message}` } });
      continue;
    }
    if (current.get(origin) === index.value.revision) {
      stages.push({ origin, unchanged: index.value.revision });
      continue;
    }
    const keys = await Promise.all(
      index.value.shards.map((s) => readText(join(dir, s.keys.name, DATA_KEYS.keys))),
    );
    const secrets = await Promise.all(
      index.value.shards.map((s) => readText(join(dir, s.secrets.name, DATA_KEYS.secrets))),
    );
    stages.push({ origin, index: index.value, keys, secrets });
  }
  return { kind: 'stages', stages };
}

/** Watches a directory of mounted objects and loads it into `loader` on every change. */
export class DirectorySource {
  readonly #dir: string;
  readonly #loader: CatalogLoader;
  readonly #pollMs: number;
  readonly #watchers = new Map<string, FSWatcher>();
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #stopped = false;

  /** A source for `dir`, re-read every `pollMs` besides change events. */
  constructor(dir: string, loader: CatalogLoader, pollMs: number) {
    this.#dir = dir;
    this.#loader = loader;
    this.#pollMs = pollMs;
  }

  /** Loads once (resolves when done), then keeps watching. */
  async start(): Promise<void> {
    await this.reload();
    this.#poll = setInterval(() => void this.reload(), this.#pollMs);
    this.#poll.unref();
  }

  /** Reads the directory again and loads what changed. */
  async reload(): Promise<void> {
    if (this.#stopped) return;
    await this.#loader.request(async () => {
      this.#watchAll();
      return readDirectory(this.#dir, this.#loader);
    });
  }

  #soon(): void {
    if (this.#debounce) clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.reload(), 50);
  }

  /** Watches DIR and every object directory in it (new ones appear with a new volume). */
  #watchAll(): void {
    if (this.#stopped) return;
    this.#watchOne(this.#dir);
    void readdir(this.#dir, { withFileTypes: true })
      .then((entries) => {
        for (const e of entries) {
          if (!e.name.startsWith('..')) this.#watchOne(join(this.#dir, e.name));
        }
      })
      .catch(() => undefined);
  }

  #watchOne(path: string): void {
    if (this.#watchers.has(path)) return;
    try {
      const w = watch(path, () => this.#soon());
      w.on('error', () => {
        w.close();
        this.#watchers.delete(path);
      });
      this.#watchers.set(path, w);
    } catch {
      // Not a directory, or gone: the poll covers it.
    }
  }

  /** Stops watching. */
  stop(): void {
    this.#stopped = true;
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
    if (this.#poll) clearInterval(this.#poll);
    if (this.#debounce) clearTimeout(this.#debounce);
  }
}
