/**
 * A work queue in the manner of client-go's: items are keys (strings); a key queued several times before
 * it is processed is processed once; a key is never processed by two workers at once (a key queued while
 * it is being processed runs again afterwards); a failed key is retried with exponential backoff, or
 * after the delay the API server asked for (a 429's Retry-After).
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** What a handler can ask for besides success. */
export class RetryAfter extends Error {
  readonly delayMs: number;
  constructor(delayMs: number, message: string) {
    super(message);
    this.delayMs = delayMs;
  }
}

/** Backoff settings. */
export interface QueueOptions {
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly concurrency?: number;
  /** Called when a handler fails (before the retry is scheduled). */
  readonly onError?: (key: string, err: unknown, attempt: number) => void;
  /** Called after each handler run, with its duration and outcome. */
  readonly onDone?: (key: string, seconds: number, ok: boolean) => void;
}

/** A deduplicating, per-key serialising work queue with retries. */
export class WorkQueue {
  readonly #handler: (key: string) => Promise<void>;
  readonly #pending = new Set<string>();
  #order: string[] = [];
  /** Where #order starts: taken items are skipped, not spliced out (10,000 queued keys stay cheap). */
  #head = 0;
  readonly #active = new Set<string>();
  readonly #again = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, { timer: NodeJS.Timeout; due: number }>();
  readonly #opts: Required<Omit<QueueOptions, 'onError' | 'onDone'>> &
    Pick<QueueOptions, 'onError' | 'onDone'>;
  readonly #waiters: (() => void)[] = [];
  #stopped = false;
  #workers: Promise<void>[] = [];

  constructor(handler: (key: string) => Promise<void>, opts: QueueOptions = {}) {
    this.#handler = handler;
    this.#opts = { baseDelayMs: 100, maxDelayMs: 60_000, concurrency: 4, ...opts };
  }

  /** How many keys wait (queued, or waiting out a backoff). */
  get depth(): number {
    return this.#pending.size + this.#timers.size;
  }

  /** Queues a key (a no-op if it is queued already). */
  add(key: string): void {
    if (this.#stopped) return;
    if (this.#active.has(key)) {
      this.#again.add(key);
      return;
    }
    if (this.#pending.has(key)) return;
    this.#pending.add(key);
    this.#order.push(key);
    this.#waiters.shift()?.();
  }

  /**
   * Queues a key after a delay (a debounce, a retry, or a time-based requeue such as an expiry). A key
   * already due sooner keeps its earlier time: a far deadline never postpones a near one.
   */
  addAfter(key: string, delayMs: number): void {
    if (this.#stopped) return;
    const due = Date.now() + Math.max(0, delayMs);
    const existing = this.#timers.get(key);
    if (existing) {
      if (existing.due <= due) return;
      clearTimeout(existing.timer);
    }
    const timer = setTimeout(
      () => {
        this.#timers.delete(key);
        this.add(key);
      },
      Math.max(0, delayMs),
    );
    timer.unref();
    this.#timers.set(key, { timer, due });
  }

  /** Starts the workers. */
  start(): void {
    for (let i = 0; i < this.#opts.concurrency; i++) this.#workers.push(this.#work());
  }

  /** Stops taking work and waits for the keys being processed to finish. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t.timer);
    this.#timers.clear();
    for (const wake of this.#waiters.splice(0)) wake();
    await Promise.all(this.#workers);
  }

  async #work(): Promise<void> {
    while (!this.#stopped) {
      const key = this.#next();
      if (key === undefined) {
        await new Promise<void>((resolve) => this.#waiters.push(resolve));
        continue;
      }
      this.#active.add(key);
      const t0 = performance.now();
      let ok = true;
      try {
        await this.#handler(key);
        this.#failures.delete(key);
      } catch (err) {
        ok = false;
        const attempt = (this.#failures.get(key) ?? 0) + 1;
        this.#failures.set(key, attempt);
        this.#opts.onError?.(key, err, attempt);
        const backoff = Math.min(this.#opts.maxDelayMs, this.#opts.baseDelayMs * 2 ** (attempt - 1));
        this.addAfter(key, err instanceof RetryAfter ? Math.max(err.delayMs, backoff) : backoff);
      } finally {
        this.#active.delete(key);
        this.#opts.onDone?.(key, (performance.now() - t0) / 1000, ok);
        if (this.#again.delete(key)) this.add(key);
      }
      // Let other work (informer events, HTTP) run between items.
      await sleep(0);
    }
  }

  #next(): string | undefined {
    // A queued key is never active (add() defers an active key to #again), so the first is the next.
    while (this.#head < this.#order.length) {
      const key = this.#order[this.#head++];
      if (key !== undefined && this.#pending.delete(key)) {
        this.#compact();
        return key;
      }
    }
    this.#compact();
    return undefined;
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }
}
