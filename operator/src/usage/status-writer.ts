/**
 * The bounded-rate writer of usage statuses: a loop taking pending writes from a
 * {@link StaleFirstSchedule} (longest-stale first, at most W a second) and running them, a few at once,
 * never two of one id at once. A write that fails goes back behind the others, to be tried again.
 */
import { StaleFirstSchedule, type Pending } from './stale-first.ts';

/** What a write ended in. */
export type WriteOutcome = 'written' | 'unchanged' | 'gone';

/** What the writer needs. */
export interface StatusWriterOptions<T> {
  /** Writes one value; rejects on failure (a conflict, the API server away): it is retried. */
  readonly write: (id: string, value: T) => Promise<WriteOutcome>;
  /** Called after a write succeeded (or had nothing to do), with what was written. */
  readonly onWritten?: (id: string, value: T, outcome: WriteOutcome) => void | Promise<void>;
  /** Called when a write failed, before it is put back. */
  readonly onError?: (id: string, err: unknown) => void;
  /** Writes a second, at most. */
  readonly ratePerSecond: number;
  /** Writes in flight, at most (default 4). */
  readonly concurrency?: number;
  /** The clock (epoch ms); default Date.now. */
  readonly now?: () => number;
}

/** The writer. */
export class UsageStatusWriter<T> {
  readonly schedule: StaleFirstSchedule<T>;
  readonly #o: StatusWriterOptions<T>;
  readonly #now: () => number;
  readonly #busy = new Set<string>();
  readonly #inflight = new Set<Promise<void>>();
  #wake: (() => void) | undefined;
  #running = false;
  #loop: Promise<void> | undefined;

  constructor(o: StatusWriterOptions<T>) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.schedule = new StaleFirstSchedule<T>(o.ratePerSecond);
  }

  /** Sets what an id should be written as (see {@link StaleFirstSchedule.upsert}) and wakes the loop. */
  upsert(id: string, value: T, urgent = false): void {
    this.schedule.upsert(id, value, this.#now(), urgent);
    this.#wake?.();
  }

  /** Forgets an id's pending write. */
  delete(id: string): void {
    this.schedule.delete(id);
  }

  /** Whether a write of the id is in flight. */
  busy(id: string): boolean {
    return this.#busy.has(id);
  }

  /** Resolves once nothing is pending or in flight (tests, and a graceful hand-over). */
  async drained(): Promise<void> {
    while (this.schedule.size > 0 || this.#inflight.size > 0) {
      if (this.#inflight.size > 0) await Promise.allSettled(this.#inflight);
      else
        await new Promise((resolve) => setTimeout(resolve, Math.max(1, this.schedule.waitMs(this.#now()))));
    }
  }

  /** Starts the loop. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Stops taking writes and waits for those in flight. Pending writes are dropped (the next leader recomputes). */
  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
    await Promise.all(this.#inflight);
  }

  async #run(): Promise<void> {
    const limit = this.#o.concurrency ?? 4;
    while (this.#running) {
      if (this.#inflight.size >= limit) {
        await Promise.race(this.#inflight);
        continue;
      }
      const now = this.#now();
      const p = this.schedule.take(now, this.#busy);
      if (p) {
        this.#launch(p);
        continue;
      }
      // Nothing to do now: wait for a token, a new write, or a write in flight to end (its id may be next).
      const wait = this.schedule.waitMs(now);
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(wait) ? setTimeout(resolve, Math.max(wait, 1)) : undefined;
        this.#wake = () => {
          if (timer) clearTimeout(timer);
          resolve();
        };
        if (this.#inflight.size > 0) void Promise.race(this.#inflight).then(() => this.#wake?.());
      });
      this.#wake = undefined;
    }
  }

  #launch(p: Pending<T>): void {
    this.#busy.add(p.id);
    const run = (async () => {
      try {
        const outcome = await this.#o.write(p.id, p.value);
        await this.#o.onWritten?.(p.id, p.value, outcome);
      } catch (err) {
        this.#o.onError?.(p.id, err);
        this.schedule.retry(p, this.#now());
      } finally {
        this.#busy.delete(p.id);
      }
    })();
    this.#inflight.add(run);
    void run.finally(() => this.#inflight.delete(run));
  }
}
