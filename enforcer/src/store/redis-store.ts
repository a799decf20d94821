/**
 * The Redis counter store (for replicas: every enforcer shares one count). One decision is one round
 * trip, shared by the decisions of the same turn of the event loop (turn-batch.ts): the CONSUME script (redis-scripts.ts) applies the bucket and the quota atomically with the same
 * arithmetic as the memory store, charges the day counter and records alert thresholds, so the quota is
 * exact across replicas (Redis runs one script at a time). The keys are contract/src/identity.ts's; all
 * keys of one call share a `{plan|subject}` hash tag, so one Redis Cluster slot holds them. Callers name
 * days by their day keys (`dayKey`), as with every store; Redis keeps them as fields of one hash per
 * subject and month (`dayHashOf`), far less memory than a key per day.
 *
 * Standalone (`redis://` / `rediss://` URL), Cluster and Sentinel through ioredis's own support. Loss is
 * detected quickly: no offline queue (a command while disconnected fails at once), a short command
 * timeout, and no resending of unanswered commands after a reconnect (a request already answered must
 * not be counted later). What to do while Redis is away is redis-loss-policy.ts's business; this store
 * only rejects.
 */
import { type ChainableCommander, Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import {
  adjustmentMarkerKey,
  alertsKey,
  type DayHashSlot,
  dayHashOf,
  dayHashReads,
} from '../../../contract/src/identity.ts';
import type { HostPort } from '../../../contract/src/host-port.ts';
import { checkAdjustment } from './memory-store.ts';
import { consumeResults } from './consume-reply.ts';
import { ADD, ADJUST, CONSUME, CONSUME_PARTS } from './redis-scripts.ts';
import { TurnBatcher } from './turn-batch.ts';
import {
  type AdjustRequest,
  type ConsumeRequest,
  type ConsumeResult,
  type CounterStore,
  QUOTA_KEPT_AFTER_END_MS,
  type QuotaCount,
} from './store.ts';

/** How to reach Redis. */
export type RedisConnection =
  | { readonly kind: 'standalone'; readonly url: string }
  | { readonly kind: 'cluster'; readonly nodes: readonly HostPort[] }
  | { readonly kind: 'sentinel'; readonly sentinels: readonly HostPort[]; readonly name: string };

/** The Redis store's settings. */
export interface RedisStoreOptions {
  readonly connection: RedisConnection;
  /** Password for Redis (Cluster nodes, the Sentinel-managed master); a URL may carry its own. */
  readonly password?: string | undefined;
  /** Password for the sentinels themselves (Sentinel's `requirepass`), with a sentinel connection. */
  readonly sentinelPassword?: string | undefined;
  /** A command not answered within this many ms fails (default 250). */
  readonly commandTimeoutMs?: number;
  /** How long a quota counter outlives its period, ms (default one day: usage readers read it after). */
  readonly quotaMarginMs?: number;
  /** The name the connection shows in CLIENT LIST. */
  readonly connectionName?: string;
  /**
   * Send the commands issued in one turn of the event loop in one write (ioredis's auto-pipelining;
   * default false). Measured (npm run bench -- counters, 10,000 keys): with it, about 12% more decisions
   * per second at saturation, but the commands it holds outlive V8's young generation, so every
   * scavenge copied about 8 MB and paused decisions for 17-20 ms: p99 51 ms at half the maximum rate,
   * against 9.6 ms without it (and p50 255 us against 159 us).
   */
  readonly autoPipelining?: boolean;
}

/** Default for {@link RedisStoreOptions.commandTimeoutMs}. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 250;
/** Default for {@link RedisStoreOptions.quotaMarginMs}: a day, as the memory store keeps them. */
export const DEFAULT_QUOTA_MARGIN_MS = QUOTA_KEPT_AFTER_END_MS;

const DAY_MS = 86_400_000;

/**
 * A request the store cannot carry out as given (a bug in the caller, not an outage of Redis): a counter
 * key it cannot place, a figure that is not a finite number.
 */
export class CounterRequestError extends Error {
  /** @param message what is wrong with which key */
  constructor(message: string) {
    super(message);
    this.name = 'CounterRequestError';
  }
}

/** The error for a day key that {@link dayHashOf} cannot place. */
function notADay(dayKey: string): CounterRequestError {
  return new CounterRequestError(
    `${dayKey} is not a day counter's key (ks:{<plan>|<subject>}:day:<YYYY-MM-DD>)`,
  );
}

/**
 * When a day's month hash may be forgotten (epoch ms): the day's own expiry (its end plus the retention)
 * moved to the month's last day, so the hash outlives every day in it. Days are counted as 24 hours here,
 * as in the day's expiry; a daylight-saving change in between is made good when the last day is counted
 * (the script keeps the later of the two expiries).
 */
export function dayHashExpiresAt(slot: DayHashSlot, dayExpiresAt: number): number {
  return dayExpiresAt + slot.laterDays * DAY_MS;
}

/** The commands the scripts add to the client. */
interface ScriptCommands {
  ksConsume(numKeys: number, ...args: (string | number)[]): Promise<string>;
  ksAdjust(quotaKey: string, markerKey: string, amount: number, ttlMs: number): Promise<number>;
  ksAdd(key: string, field: string, amount: number, ttlMs: number): Promise<number>;
}

/** The client: a Redis or a Cluster, with the scripts. */
export type KeystileRedis = (Redis | Cluster) & ScriptCommands;

const SCRIPTS = {
  ksConsume: { lua: CONSUME },
  ksAdjust: { lua: ADJUST, numberOfKeys: 2 },
  ksAdd: { lua: ADD, numberOfKeys: 1 },
} satisfies RedisOptions['scripts'];

/** A reconnect delay: quick at first, then once a second. */
function retryDelay(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 5), 1000);
}

/** Builds the ioredis client for `options` (it connects in the background). */
export function createRedisClient(options: RedisStoreOptions): KeystileRedis {
  const timeout = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const autoPipelining = options.autoPipelining ?? false;
  const common = {
    commandTimeout: timeout,
    connectTimeout: Math.max(1000, timeout * 4),
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    connectionName: options.connectionName ?? 'keystile-enforcer',
    ...(options.password !== undefined && { password: options.password }),
  } satisfies RedisOptions;
  const c = options.connection;
  if (c.kind === 'cluster') {
    const clusterOptions: ClusterOptions = {
      enableOfflineQueue: false,
      enableAutoPipelining: autoPipelining,
      clusterRetryStrategy: retryDelay,
      scripts: SCRIPTS,
      redisOptions: common,
    };
    return new Cluster(
      c.nodes.map((n) => ({ host: n.host, port: n.port })),
      clusterOptions,
    ) as KeystileRedis;
  }
  const redisOptions: RedisOptions = {
    ...common,
    enableOfflineQueue: false,
    enableAutoPipelining: autoPipelining,
    retryStrategy: retryDelay,
    scripts: SCRIPTS,
  };
  if (c.kind === 'sentinel') {
    return new Redis({
      ...redisOptions,
      sentinels: c.sentinels.map((s) => ({ host: s.host, port: s.port })),
      name: c.name,
      sentinelRetryStrategy: retryDelay,
      ...(options.sentinelPassword !== undefined && { sentinelPassword: options.sentinelPassword }),
    }) as KeystileRedis;
  }
  return new Redis(c.url, redisOptions) as KeystileRedis;
}

/** One decision's part of a CONSUME call. */
interface ConsumeCall {
  /** Its keys, in the script's order (all under one hash tag). */
  readonly keys: readonly string[];
  /** Its CONSUME arguments. */
  readonly args: readonly (string | number)[];
  readonly bucket: boolean;
  readonly quota: boolean;
}

/** The hash tag of a counter key (`{plan|subject}`): keys with equal tags share a Cluster slot. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return open < 0 || close < 0 ? key : key.slice(open, close + 1);
}

/** The Redis store. */
export class RedisStore implements CounterStore {
  readonly client: KeystileRedis;
  readonly #marginMs: number;
  /**
   * The decisions of one turn of the event loop, sent as one CONSUME call: in a Cluster one per hash
   * tag (a script must stay on one slot), else one for all.
   */
  readonly #batcher: TurnBatcher<ConsumeCall, ConsumeResult>;
  readonly #daySlots = new Map<string, DayHashSlot>();
  #closed = false;

  /** Connects (in the background) as `options` say. */
  constructor(options: RedisStoreOptions) {
    this.client = createRedisClient(options);
    this.#marginMs = options.quotaMarginMs ?? DEFAULT_QUOTA_MARGIN_MS;
    const cluster = options.connection.kind === 'cluster';
    this.#batcher = new TurnBatcher(this.#sendConsumes, (c) => (cluster ? hashTag(c.keys[0] ?? '') : ''));
    // ioredis reports connection errors as events; the loss policy watches the status, so an error
    // here must not be an unhandled 'error' event.
    this.client.on('error', () => undefined);
  }

  /** Whether the client is connected and ready for commands. */
  get ready(): boolean {
    return this.client.status === 'ready';
  }

  /** Resolves true once the client is ready (connected), false after `timeoutMs`. */
  waitReady(timeoutMs: number): Promise<boolean> {
    if (this.ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ready: boolean): void => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        resolve(ready);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(() => done(this.ready), timeoutMs);
      this.client.on('ready', onReady);
    });
  }

  consume(r: ConsumeRequest): Promise<ConsumeResult> {
    const bucket = r.bucketKey !== undefined && r.bucketLimit !== undefined;
    const quota = r.quotaKey !== undefined && r.quotaLimit !== undefined;
    let day: DayHashSlot | undefined;
    if (r.dayKey !== undefined && r.dayExpiresAt !== undefined) {
      day = this.#dayHashOf(r.dayKey);
      if (day === undefined) return Promise.reject(notADay(r.dayKey));
    }
    const alerts = quota && r.thresholds !== undefined && r.thresholds.length > 0;
    let parts = 0;
    const keys: string[] = [];
    if (bucket) {
      parts += CONSUME_PARTS.bucket;
      keys.push(r.bucketKey);
    }
    if (quota) {
      parts += CONSUME_PARTS.quota;
      keys.push(r.quotaKey);
    }
    if (day !== undefined) {
      parts += CONSUME_PARTS.day;
      keys.push(day.key);
    }
    if (alerts) {
      parts += CONSUME_PARTS.alerts;
      keys.push(alertsKey(r.quotaKey));
    }
    const args: (string | number)[] = [
      parts,
      r.now,
      r.bucketLimit?.rate ?? 0,
      r.bucketLimit?.burst ?? 0,
      r.quotaLimit ?? 0,
      String(r.cost),
      // TTLs as strings, as Redis takes them: a number from the script would be formatted by Redis, and
      // Redis 7.2.0 to 7.2.4 wrote some whole numbers with an exponent (3e+9), which PEXPIRE refuses.
      String(ttl(r.periodEnd + this.#marginMs - r.now)),
      day !== undefined && r.dayExpiresAt !== undefined
        ? String(ttl(dayHashExpiresAt(day, r.dayExpiresAt) - r.now))
        : '1',
      day?.field ?? '-',
      alerts ? r.thresholds.length : 0,
    ];
    if (alerts) for (const t of r.thresholds) args.push(t);
    // JSON has no NaN or Infinity (they would reach the script as null and fail the whole batch, after
    // the decisions before this one were written): refuse this decision alone.
    if (!Number.isFinite(r.cost) || !allFinite(args)) {
      return Promise.reject(
        new CounterRequestError(`a decision's figures must be finite numbers: ${args.join(' ')}`),
      );
    }
    return this.#batcher.add({ keys, args, bucket, quota });
  }

  /**
   * {@link dayHashOf}, remembered: a key's decisions name the same day key (the same string, from the
   * decision's key cache) all day. Bounded: it starts over at 100,000 days.
   */
  #dayHashOf(dayKey: string): DayHashSlot | undefined {
    let slot = this.#daySlots.get(dayKey);
    if (slot === undefined) {
      slot = dayHashOf(dayKey);
      if (slot === undefined) return undefined;
      if (this.#daySlots.size >= 100_000) this.#daySlots.clear();
      this.#daySlots.set(dayKey, slot);
    }
    return slot;
  }

  /**
   * One CONSUME call for a batch of decisions (one slot's, in a Cluster); their results in order. Not an
   * async function: what it builds is dropped before the round trip, not held across it (less for the
   * young generation to copy while decisions are in flight).
   */
  readonly #sendConsumes = (calls: readonly ConsumeCall[]): Promise<ConsumeResult[]> => {
    const keys: string[] = [];
    const argv: (string | number)[] = [calls.length];
    for (const c of calls) {
      for (const k of c.keys) keys.push(k);
      for (const a of c.args) argv.push(a);
    }
    // The values go as one JSON argument and come back as one string (redis-scripts.ts says why).
    return this.client
      .ksConsume(keys.length, ...keys, JSON.stringify(argv))
      .then((reply: string) => consumeResults(calls, reply));
  };

  async adjust(r: AdjustRequest): Promise<boolean> {
    checkAdjustment(r);
    const applied = await this.client.ksAdjust(
      r.quotaKey,
      adjustmentMarkerKey(r.quotaKey, r.id),
      r.amount,
      ttl(r.periodEnd + this.#marginMs - r.now),
    );
    return applied === 1;
  }

  /** Reads quota counters: one HMGET each, in one pipeline (per node in a Cluster). */
  async readQuotas(quotaKeys: readonly string[]): Promise<(QuotaCount | undefined)[]> {
    const replies = await this.#hmgets(quotaKeys.map((key) => ({ key, fields: ['used', 'granted'] })));
    return replies.map((reply) => {
      const [used, granted] = (reply ?? []) as (string | null)[];
      return (used ?? null) === null && (granted ?? null) === null
        ? undefined
        : { used: Number(used ?? 0), granted: Number(granted ?? 0) };
    });
  }

  /**
   * Reads usage-per-day counters: one HMGET per month's hash (`dayHashReads`), in one pipeline (per node
   * in a Cluster). A key that names no day (`...:day:2026-02-30`) was never counted: 0.
   */
  async readDays(dayKeys: readonly string[]): Promise<number[]> {
    const { reads } = dayHashReads(dayKeys);
    const replies = await this.#hmgets(reads);
    const out = dayKeys.map(() => 0);
    reads.forEach((read, i) => {
      const values = (replies[i] ?? []) as (string | null)[];
      read.positions.forEach((at, j) => {
        const v = values[j];
        if (typeof v === 'string') out[at] = Number(v);
      });
    });
    return out;
  }

  /**
   * One HMGET per hash in one pipeline (standalone, Sentinel); the replies in order, or the first error.
   * A Cluster pipeline must stay on one slot: there the commands are issued together instead (and
   * auto-pipelining, when on, batches them per node).
   */
  async #hmgets(reads: readonly { key: string; fields: readonly string[] }[]): Promise<unknown[]> {
    if (reads.length === 0) return [];
    if (this.client instanceof Cluster) {
      return await Promise.all(reads.map((r) => this.client.hmget(r.key, ...r.fields)));
    }
    const p: ChainableCommander = this.client.pipeline();
    for (const r of reads) p.hmget(r.key, ...r.fields);
    return unwrap(await p.exec());
  }

  /**
   * Adds counts made elsewhere (a local store while Redis was away) to a quota counter's `used` or a day
   * counter (`key` a day key: its month's hash), moving the expiry later if it would end sooner (a
   * quota: `expiresAt` is its period's end; a day: its own expiry). For redis-loss-policy.ts. Rejects
   * with a {@link CounterRequestError} for a day key that names no day.
   */
  async add(
    kind: 'quota' | 'day',
    key: string,
    amount: number,
    expiresAt: number,
    now: number,
  ): Promise<void> {
    if (kind === 'quota') {
      await this.client.ksAdd(key, 'used', amount, ttl(expiresAt + this.#marginMs - now));
      return;
    }
    const slot = dayHashOf(key);
    if (slot === undefined) throw notADay(key);
    await this.client.ksAdd(slot.key, slot.field, amount, ttl(dayHashExpiresAt(slot, expiresAt) - now));
  }

  /** Asks Redis for a PONG (the loss policy's probe). */
  async ping(): Promise<void> {
    // Cluster: any node answering means the client can route again; the next decision tells the rest.
    await this.client.ping();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}

/** Whether every number among `values` is finite. */
function allFinite(values: readonly (string | number)[]): boolean {
  for (const v of values) if (typeof v === 'number' && !Number.isFinite(v)) return false;
  return true;
}

/** The replies of a pipeline's `exec`, or its first error. */
function unwrap(results: [Error | null, unknown][] | null): unknown[] {
  if (results === null) throw new Error('the Redis pipeline was discarded');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

/** A TTL in whole ms, at least 1 (PX and PEXPIRE refuse 0 and below). */
function ttl(ms: number): number {
  return ms >= 1 ? Math.ceil(ms) : 1;
}
