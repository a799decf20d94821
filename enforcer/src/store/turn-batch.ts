/**
 * Collects the calls made in one turn of the event loop and sends them together: what the Redis store
 * uses to give the decisions of one turn (the checks read from every connection in one poll) one round
 * trip. A batch is flushed in the event loop's check phase (`setImmediate`), after every connection
 * that was readable has been read, so no call waits for a timer; a quiet enforcer sends batches of one.
 * Calls are grouped (a Redis Cluster script must stay on one slot) and a group is split at `maxSize`.
 */

/** Sends one group's calls in order; resolves with one result per call, in order. */
export type BatchSender<T, R> = (calls: readonly T[]) => Promise<readonly R[]>;

interface Pending<T, R> {
  readonly call: T;
  readonly resolve: (result: R) => void;
  readonly reject: (err: unknown) => void;
}

/** Batches calls per turn of the event loop. */
export class TurnBatcher<T, R> {
  readonly #send: BatchSender<T, R>;
  readonly #groupOf: (call: T) => string;
  readonly #maxSize: number;
  #groups = new Map<string, Pending<T, R>[]>();
  #scheduled = false;

  /**
   * `send` sends a group; `groupOf` names a call's group (calls of one group may share a batch);
   * `maxSize` bounds a batch (default 128).
   */
  constructor(send: BatchSender<T, R>, groupOf: (call: T) => string, maxSize = 128) {
    this.#send = send;
    this.#groupOf = groupOf;
    this.#maxSize = maxSize;
  }

  /** Queues a call for this turn's batch of its group; settles as the batch does. */
  add(call: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const group = this.#groupOf(call);
      let pending = this.#groups.get(group);
      if (pending === undefined) {
        pending = [];
        this.#groups.set(group, pending);
      }
      pending.push({ call, resolve, reject });
      if (pending.length >= this.#maxSize) {
        this.#groups.delete(group);
        this.#dispatch(pending);
      }
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flush);
      }
    });
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    const groups = this.#groups;
    this.#groups = new Map();
    for (const pending of groups.values()) this.#dispatch(pending);
  };

  #dispatch(pending: readonly Pending<T, R>[]): void {
    let sent: Promise<readonly R[]>;
    try {
      sent = this.#send(pending.map((p) => p.call));
    } catch (err) {
      for (const p of pending) p.reject(err);
      return;
    }
    sent.then(
      (results) => {
        pending.forEach((p, i) => {
          if (i < results.length) p.resolve(results[i] as R);
          else p.reject(new Error(`a batch of ${pending.length} calls was answered ${results.length} times`));
        });
      },
      (err: unknown) => {
        for (const p of pending) p.reject(err);
      },
    );
  }
}
