/**
 * What the enforcer does while Redis is away (`--redis-unavailable`), around a {@link RedisStore}:
 *   - `closed` (default): the store rejects, the decision is 503 (unless `--fail-open`);
 *   - `open`: allow, counted nowhere (keystile_store_fallback_decisions_total{policy="open"} says how
 *     many);
 *   - `local`: count in a memory store of this enforcer's own; when Redis returns, add its quota and day
 *     counts to Redis (HINCRBY into the quota's hash and the day's month hash; buckets are dropped: they
 *     refill anyway) and switch back.
 *
 * Loss is noticed at once: a connection that closes (ioredis's `close` event), a command that fails or
 * times out (`--redis-timeout`). From then on no request waits for Redis: decisions go straight to the
 * policy while a probe PINGs Redis every interval; the first PONG (or the client's `ready` event) ends the
 * outage. Adjustments and reads are refused while Redis is away (their callers retry: an adjustment is
 * idempotent by its id). An error Redis itself answered (a script error) is not an outage: it is
 * rethrown (503) and counted.
 */
import type { Logger } from 'pino';
import { MemoryStore } from './memory-store.ts';
import { CounterRequestError, type RedisStore } from './redis-store.ts';
import type { AdjustRequest, ConsumeRequest, ConsumeResult, CounterStore, QuotaCount } from './store.ts';

/** The policies, as `--redis-unavailable` spells them. */
export const LOSS_POLICIES = Object.freeze(['closed', 'open', 'local'] as const);

/** What to do while Redis is away. */
export type LossPolicy = (typeof LOSS_POLICIES)[number];

/**
 * The policies that decide in Redis's place (keystile_store_fallback_decisions_total counts their
 * decisions). `closed` decides nothing: the check fails as a Redis call would, and shows as an
 * unavailable (503) decision, or a fail_open one under `--fail-open`.
 */
export const FALLBACK_POLICIES = Object.freeze(['open', 'local'] as const);

/** A policy that decides in Redis's place. */
export type FallbackPolicy = (typeof FALLBACK_POLICIES)[number];

/** The store operations, as the `op` label of keystile_store_errors_total says them. */
export type StoreOp = 'consume' | 'adjust' | 'read' | 'reconcile';

/** Where the store reports (EnforcerMetrics implements it). */
export interface StoreTelemetry {
  /** A store operation failed. */
  storeError(op: StoreOp): void;
  /** The backend became available (true) or unavailable (false). */
  storeAvailable(up: boolean): void;
  /** A decision was made by the loss policy instead of the backend (never under `closed`). */
  storeFallback(policy: FallbackPolicy): void;
}

/** Thrown (rejected) while the store is unavailable and the policy says to refuse. */
export class StoreUnavailableError extends Error {
  /** @param message why */
  constructor(message = 'the counter store (Redis) is unavailable') {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

/** The policy's settings. */
export interface LossPolicyOptions {
  readonly policy: LossPolicy;
  /** The decision clock (epoch ms): for the expiries of counts added back. */
  readonly now: () => number;
  /** Ms between PINGs while Redis is away (default 250). */
  readonly probeIntervalMs?: number;
  readonly telemetry?: StoreTelemetry | undefined;
  readonly logger?: Logger | undefined;
}

/** A count made locally, waiting to be added to Redis. */
interface Pending {
  readonly kind: 'quota' | 'day';
  readonly key: string;
  readonly amount: number;
  readonly expiresAt: number;
}

/** The answer of the `open` policy: allowed, nothing counted, no bucket or quota to report. */
const OPEN: ConsumeResult = Object.freeze({
  allowed: true,
  deniedBy: undefined,
  bucket: undefined,
  quota: undefined,
});

/** Reply errors that mean "Redis cannot serve now", not "the request was wrong". */
const UNAVAILABLE_REPLY = /^(CLUSTERDOWN|LOADING|MASTERDOWN|READONLY|TRYAGAIN|NOREPLICAS|BUSY)\b/;

/** Whether an error from a Redis command means Redis is unavailable (vs. an error Redis answered). */
export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return true;
  if (err instanceof CounterRequestError) return false;
  if (err.name === 'ReplyError') return UNAVAILABLE_REPLY.test(err.message);
  return true;
}

/** A Redis store under a loss policy: a CounterStore. */
export class RedisLossPolicy implements CounterStore {
  readonly #redis: RedisStore;
  readonly #policy: LossPolicy;
  readonly #now: () => number;
  readonly #probeMs: number;
  readonly #telemetry: StoreTelemetry | undefined;
  readonly #logger: Logger | undefined;
  #up: boolean;
  #local = new MemoryStore();
  #pending: Pending[] = [];
  #reconciling: Promise<void> | undefined;
  #probe: NodeJS.Timeout | undefined;
  #closed = false;
  #wasUp = false;

  /** Watches `redis`'s connection and applies `options.policy` while it is away. */
  constructor(redis: RedisStore, options: LossPolicyOptions) {
    this.#redis = redis;
    this.#policy = options.policy;
    this.#now = options.now;
    this.#probeMs = options.probeIntervalMs ?? 250;
    this.#telemetry = options.telemetry;
    this.#logger = options.logger;
    this.#up = redis.ready;
    this.#wasUp = this.#up;
    this.#telemetry?.storeAvailable(this.#up);
    redis.client.on('ready', () => this.#markUp());
    redis.client.on('close', () => this.#markDown('the connection closed'));
    if (!this.#up) this.#startProbe();
  }

  /** The policy applied while Redis is away. */
  get policy(): LossPolicy {
    return this.#policy;
  }

  /** Whether decisions go to Redis now. */
  get available(): boolean {
    return this.#up;
  }

  /** Counts made locally and not yet added to Redis (the `local` policy). */
  get pendingCounts(): number {
    const size = this.#local.size;
    return this.#pending.length + size.quotas + size.days;
  }

  /** Resolves once Redis is available, or false after `timeoutMs`. */
  async waitAvailable(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#up && Date.now() < deadline && !this.#closed) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.#up;
  }

  /** Resolves when counts made locally have been added to Redis (or adding them failed). */
  async reconciled(): Promise<void> {
    while (this.#reconciling !== undefined) await this.#reconciling;
  }

  consume(r: ConsumeRequest): ConsumeResult | Promise<ConsumeResult> {
    if (!this.#up) {
      // open and local answer at once (synchronously); closed rejects, as a failed Redis call would.
      try {
        return this.#fallback(r, undefined);
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
    return this.#redis.consume(r).then(undefined, (err: unknown) => this.#failed(r, err));
  }

  #failed(r: ConsumeRequest, err: unknown): ConsumeResult {
    this.#telemetry?.storeError('consume');
    if (!isUnavailable(err)) throw err;
    this.#markDown(err);
    return this.#fallback(r, err);
  }

  #fallback(r: ConsumeRequest, err: unknown): ConsumeResult {
    switch (this.#policy) {
      case 'closed':
        // Not a fallback decision: the check fails (503, or fail_open), and is counted as that.
        throw err instanceof Error ? err : new StoreUnavailableError();
      case 'open':
        this.#telemetry?.storeFallback('open');
        return OPEN;
      case 'local':
        this.#telemetry?.storeFallback('local');
        // Thresholds are Redis's to report: a local count starts from zero and would report early.
        return this.#local.consume(r.thresholds === undefined ? r : { ...r, thresholds: undefined });
    }
  }

  async adjust(r: AdjustRequest): Promise<boolean> {
    return this.#call('adjust', () => this.#redis.adjust(r));
  }

  async readQuotas(quotaKeys: readonly string[]): Promise<(QuotaCount | undefined)[]> {
    return this.#call('read', () => this.#redis.readQuotas(quotaKeys));
  }

  async readDays(dayKeys: readonly string[]): Promise<number[]> {
    return this.#call('read', () => this.#redis.readDays(dayKeys));
  }

  async #call<T>(op: StoreOp, run: () => Promise<T>): Promise<T> {
    if (!this.#up) throw new StoreUnavailableError();
    try {
      return await run();
    } catch (err) {
      this.#telemetry?.storeError(op);
      if (isUnavailable(err)) this.#markDown(err);
      throw err;
    }
  }

  #markDown(why: unknown): void {
    if (this.#closed) return;
    if (this.#up) {
      this.#up = false;
      this.#telemetry?.storeAvailable(false);
      this.#logger?.warn(
        { policy: this.#policy, error: why instanceof Error ? why.message : String(why) },
        'Redis is unavailable; the loss policy decides until it returns',
      );
    }
    this.#startProbe();
  }

  #markUp(): void {
    if (this.#closed || this.#up) return;
    this.#up = true;
    this.#stopProbe();
    this.#telemetry?.storeAvailable(true);
    const size = this.#local.size;
    if (size.quotas + size.days > 0) {
      // Freeze what was counted locally: from now on decisions go to Redis, and these counts are added.
      const local = this.#local;
      this.#local = new MemoryStore();
      for (const [key, q] of local.quotas()) {
        if (q.used > 0) this.#pending.push({ kind: 'quota', key, amount: q.used, expiresAt: q.periodEnd });
      }
      for (const [key, d] of local.days()) {
        if (d.count > 0) this.#pending.push({ kind: 'day', key, amount: d.count, expiresAt: d.expiresAt });
      }
    }
    if (this.#wasUp) {
      this.#logger?.info({ policy: this.#policy, pending: this.#pending.length }, 'Redis is available again');
    }
    this.#wasUp = true;
    if (this.#pending.length > 0) void this.#reconcile();
  }

  /** Adds the pending local counts to Redis, one by one, keeping those not yet added on a failure. */
  #reconcile(): Promise<void> {
    if (this.#reconciling !== undefined) return this.#reconciling;
    const run = async (): Promise<void> => {
      let added = 0;
      while (this.#pending.length > 0 && this.#up) {
        const p = this.#pending[0] as Pending;
        try {
          await this.#redis.add(p.kind, p.key, p.amount, p.expiresAt, this.#now());
        } catch (err) {
          this.#telemetry?.storeError('reconcile');
          if (isUnavailable(err)) {
            this.#markDown(err);
            break;
          }
          this.#logger?.error(
            { key: p.key, error: (err as Error).message },
            'could not add a local count to Redis',
          );
        }
        this.#pending.shift();
        added++;
      }
      this.#logger?.info({ added, left: this.#pending.length }, 'local counts added to Redis');
    };
    this.#reconciling = run().finally(() => {
      this.#reconciling = undefined;
    });
    return this.#reconciling;
  }

  #startProbe(): void {
    if (this.#probe !== undefined || this.#closed) return;
    this.#probe = setInterval(() => {
      this.#redis.ping().then(
        () => this.#markUp(),
        () => undefined,
      );
    }, this.#probeMs);
    this.#probe.unref();
  }

  #stopProbe(): void {
    if (this.#probe !== undefined) clearInterval(this.#probe);
    this.#probe = undefined;
  }

  /** Adds what is still counted locally (if Redis is there), then closes the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#up) await this.reconciled();
    this.#closed = true;
    this.#stopProbe();
    await this.#redis.close();
  }
}
