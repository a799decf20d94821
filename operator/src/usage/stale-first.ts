/**
 * The schedule of the bounded-rate usage writer: pending status writes, taken longest-stale first, at
 * most `ratePerSecond` a second (a token bucket holding one second's worth). Pure: the caller passes
 * the time, so tests drive it with a fake clock.
 *
 * With N keys changed per poll interval I and W writes a second, a key waits at most about N/W seconds
 * after the poll that saw it change; its status is then at most about I + N/W behind the counters. Under
 * load every key degrades the same way, because the oldest pending write always goes first.
 */

/** A pending write. */
export interface Pending<T> {
  readonly id: string;
  readonly value: T;
  /** When it first became pending (epoch ms): its staleness starts there. */
  readonly since: number;
  /** Urgent writes (an alert to announce) go before any other. */
  readonly urgent: boolean;
}

/** Pending writes by id, and the token bucket that paces them. */
export class StaleFirstSchedule<T> {
  readonly #pending = new Map<string, Pending<T>>();
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #at: number | undefined;

  /** `ratePerSecond` > 0; the bucket holds max(1, ratePerSecond) tokens and starts full. */
  constructor(ratePerSecond: number) {
    if (!(ratePerSecond > 0)) throw new RangeError(`ratePerSecond must be above 0, not ${ratePerSecond}`);
    this.#rate = ratePerSecond;
    this.#burst = Math.max(1, ratePerSecond);
    this.#tokens = this.#burst;
  }

  /** How many writes wait. */
  get size(): number {
    return this.#pending.size;
  }

  /** The pending write of an id, if any. */
  get(id: string): Pending<T> | undefined {
    return this.#pending.get(id);
  }

  /**
   * Sets what an id should be written as. An id already pending keeps its `since` (a key changing again
   * before its write does not lose its place) and its urgency.
   */
  upsert(id: string, value: T, now: number, urgent = false): void {
    const before = this.#pending.get(id);
    this.#pending.set(id, {
      id,
      value,
      since: before?.since ?? now,
      urgent: urgent || (before?.urgent ?? false),
    });
  }

  /**
   * Puts back a write that failed, to be tried again behind the others (`since` becomes `now`), so one
   * key that keeps failing never starves the rest. A newer value set meanwhile wins.
   */
  retry(p: Pending<T>, now: number): void {
    const newer = this.#pending.get(p.id);
    this.#pending.set(p.id, newer ?? { ...p, since: now });
  }

  /** Forgets an id's pending write (it no longer needs one). */
  delete(id: string): void {
    this.#pending.delete(id);
  }

  /** Every pending id. */
  ids(): string[] {
    return [...this.#pending.keys()];
  }

  /**
   * The next write, if one is pending and the rate allows it now: urgent first, then the stalest. Ids
   * in `busy` (a write of theirs in flight) wait, so one id is never written twice at once.
   */
  take(now: number, busy: ReadonlySet<string> = new Set()): Pending<T> | undefined {
    this.#refill(now);
    if (this.#pending.size === 0 || this.#tokens < 1) return undefined;
    let best: Pending<T> | undefined;
    for (const p of this.#pending.values()) {
      if (busy.has(p.id)) continue;
      if (
        best === undefined ||
        (p.urgent && !best.urgent) ||
        (p.urgent === best.urgent && (p.since < best.since || (p.since === best.since && p.id < best.id)))
      )
        best = p;
    }
    if (best === undefined) return undefined;
    this.#tokens -= 1;
    this.#pending.delete(best.id);
    return best;
  }

  /** Ms until `take` could return a write (0 now; Infinity when nothing is pending). */
  waitMs(now: number): number {
    if (this.#pending.size === 0) return Infinity;
    this.#refill(now);
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) / this.#rate) * 1000);
  }

  #refill(now: number): void {
    if (this.#at !== undefined && now > this.#at)
      this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#rate);
    if (this.#at === undefined || now > this.#at) this.#at = now;
  }
}
