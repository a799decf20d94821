/**
 * Gathers the changes of a namespace before it is rendered. A lone change fires after `quietMs` (the
 * namespace renders within a fraction of a second); while changes keep coming (10,000 keys being
 * created), it waits for a gap of `quietMs`, but never longer than `maxWaitMs` after the first change it
 * holds, so a busy namespace still renders every `maxWaitMs` rather than after every key, and does not
 * rewrite its shards and statuses hundreds of times.
 */

/** When to fire. */
export interface DebounceOptions {
  /** The quiet time after the last change before firing (the operator's --debounce-ms). */
  readonly quietMs: number;
  /** The longest a change waits while others keep arriving. */
  readonly maxWaitMs: number;
  /** The clock (tests give their own). */
  readonly now?: () => number;
}

interface Pending {
  readonly first: number;
  last: number;
  timer: NodeJS.Timeout;
}

/** A per-key debouncer: `touch(key)` on each change, `fire(key)` once the changes have gathered. */
export class Debouncer {
  readonly #fire: (key: string) => void;
  readonly #opts: Required<DebounceOptions>;
  readonly #pending = new Map<string, Pending>();
  #stopped = false;

  constructor(fire: (key: string) => void, opts: DebounceOptions) {
    this.#fire = fire;
    this.#opts = { now: () => Date.now(), ...opts };
  }

  /** A change to `key`. */
  touch(key: string): void {
    if (this.#stopped) return;
    const now = this.#opts.now();
    const p = this.#pending.get(key);
    if (p) {
      p.last = now;
      return;
    }
    this.#pending.set(key, { first: now, last: now, timer: this.#schedule(key, this.#opts.quietMs) });
  }

  /** How many keys hold changes not fired yet. */
  get size(): number {
    return this.#pending.size;
  }

  /** Drops what is pending; nothing fires after. */
  stop(): void {
    this.#stopped = true;
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    this.#pending.clear();
  }

  #schedule(key: string, ms: number): NodeJS.Timeout {
    const t = setTimeout(() => this.#due(key), Math.max(0, ms));
    t.unref();
    return t;
  }

  #due(key: string): void {
    const p = this.#pending.get(key);
    if (!p || this.#stopped) return;
    const now = this.#opts.now();
    const quietAt = p.last + this.#opts.quietMs;
    const deadline = p.first + this.#opts.maxWaitMs;
    if (now < quietAt && now < deadline) {
      p.timer = this.#schedule(key, Math.min(quietAt, deadline) - now);
      return;
    }
    this.#pending.delete(key);
    this.#fire(key);
  }
}
