/**
 * Standalone mode: the file `keystile render` writes. Loaded at start, and again whenever it changes:
 * a watch on its directory (editors and `keystile render` replace files, which a watch on the file
 * itself would lose), and a poll of its size, mtime and inode as a backstop.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { CatalogLoader } from '../loader.ts';

/** Watches one standalone config file and loads it into `loader` when it changes. */
export class FileSource {
  readonly #path: string;
  readonly #loader: CatalogLoader;
  readonly #pollMs: number;
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #signature = '';

  /** A source for `path`, re-checked every `pollMs`. */
  constructor(path: string, loader: CatalogLoader, pollMs: number) {
    this.#path = path;
    this.#loader = loader;
    this.#pollMs = pollMs;
  }

  /** Loads the file once (resolves when done, loaded or refused), then keeps watching it. */
  async start(): Promise<void> {
    await this.check();
    try {
      this.#watcher = watch(dirname(this.#path), (_event, name) => {
        if (name === null || name === basename(this.#path)) this.#soon();
      });
      this.#watcher.on('error', () => undefined); // the poll carries on
    } catch {
      // No watch (a directory that went away): the poll still notices the file.
    }
    this.#poll = setInterval(() => void this.check(), this.#pollMs);
    this.#poll.unref();
  }

  #soon(): void {
    if (this.#debounce) clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.check(), 25);
  }

  /** Loads the file if its size, mtime or inode changed since the last load. */
  async check(): Promise<void> {
    let signature: string;
    try {
      const s = await stat(this.#path);
      signature = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (err) {
      signature = `missing:${(err as NodeJS.ErrnoException).code ?? ''}`;
    }
    if (signature === this.#signature) return;
    this.#signature = signature;
    await this.#loader.request(() => Promise.resolve({ kind: 'file', path: this.#path }));
  }

  /** Stops watching. */
  stop(): void {
    this.#watcher?.close();
    if (this.#poll) clearInterval(this.#poll);
    if (this.#debounce) clearTimeout(this.#debounce);
  }
}
