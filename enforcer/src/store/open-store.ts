/**
 * Opens the counter store the settings name (`--store`): the memory store, restored from and
 * checkpointed to `--counters-file`; or the Redis store under the `--redis-unavailable` policy. For
 * main.ts, which only wires: one call to open, one to close.
 */
import type { Logger } from 'pino';
import type { EnforcerConfig } from '../config.ts';
import { Checkpointer, readCheckpoint } from './checkpoint.ts';
import { MemoryStore } from './memory-store.ts';
import { RedisLossPolicy, type StoreTelemetry } from './redis-loss-policy.ts';
import { RedisStore } from './redis-store.ts';
import type { CounterStore } from './store.ts';

/** An open store. */
export interface OpenStore {
  readonly kind: 'memory' | 'redis';
  readonly store: CounterStore;
  /** The memory store (kind `memory`): its counters are listed by the admin usage API. */
  readonly memory: MemoryStore | undefined;
  /** Persists what must survive (a last checkpoint; local counts added to Redis) and disconnects. */
  close(): Promise<void>;
}

/** What opening a store needs besides the settings. */
export interface OpenStoreDeps {
  /** The decision clock (epoch ms). */
  readonly now: () => number;
  readonly logger: Logger;
  readonly telemetry?: StoreTelemetry | undefined;
  /** How long to wait for Redis before answering by the loss policy (default 2000 ms). */
  readonly redisWaitMs?: number;
}

/** The settings a store is opened from. */
export type StoreSettings = Pick<
  EnforcerConfig,
  | 'store'
  | 'countersFile'
  | 'checkpointIntervalMs'
  | 'redis'
  | 'redisPassword'
  | 'redisSentinelPassword'
  | 'redisUnavailable'
  | 'redisTimeoutMs'
>;

/**
 * Opens the store. The memory store reads its checkpoint first (a checkpoint it cannot read throws: the
 * caller must not start with a month's quota reset). The Redis store connects in the background and
 * waits briefly for it; if Redis is not there, the loss policy answers until it is (a warning says so).
 */
export async function openStore(settings: StoreSettings, deps: OpenStoreDeps): Promise<OpenStore> {
  const { logger } = deps;
  if (settings.store === 'redis') {
    if (settings.redis === undefined) throw new Error('--store redis without a Redis to connect to');
    const redis = new RedisStore({
      connection: settings.redis,
      password: settings.redisPassword,
      sentinelPassword: settings.redisSentinelPassword,
      commandTimeoutMs: settings.redisTimeoutMs,
    });
    const store = new RedisLossPolicy(redis, {
      policy: settings.redisUnavailable,
      now: deps.now,
      probeIntervalMs: Math.max(100, settings.redisTimeoutMs),
      telemetry: deps.telemetry,
      logger,
    });
    const where = settings.redis.kind === 'standalone' ? 'url' : settings.redis.kind;
    if (await store.waitAvailable(deps.redisWaitMs ?? 2000)) {
      logger.info({ redis: where, policy: store.policy }, 'counters in Redis');
    } else {
      logger.warn(
        { redis: where, policy: store.policy },
        'Redis is not reachable yet; the --redis-unavailable policy decides until it is',
      );
    }
    return { kind: 'redis', store, memory: undefined, close: () => store.close() };
  }

  const memory = new MemoryStore();
  let checkpointer: Checkpointer | undefined;
  if (settings.countersFile !== undefined) {
    const read = await readCheckpoint(memory, settings.countersFile, deps.now()).catch((err: unknown) => {
      // Not a fresh start in disguise: starting empty would hand every key a fresh quota.
      throw new Error(
        `${err instanceof Error ? err.message : String(err)}; not starting with fresh counters: move the file away to do that`,
        { cause: err },
      );
    });
    logger.info({ file: settings.countersFile, ...read }, 'counters restored from the checkpoint');
    checkpointer = new Checkpointer(memory, settings.countersFile, deps.now, (err) => {
      logger.error(
        { err: err instanceof Error ? err.message : String(err) },
        'could not checkpoint the counters',
      );
    });
    checkpointer.start(settings.checkpointIntervalMs);
  } else {
    logger.warn('no --counters-file: counters start from zero on every start (a restart resets quotas)');
  }
  // Without a checkpointer (which sweeps before each write), sweep at the same interval.
  const sweeper =
    checkpointer === undefined
      ? setInterval(() => memory.sweep(deps.now()), settings.checkpointIntervalMs).unref()
      : undefined;
  return {
    kind: 'memory',
    store: memory,
    memory,
    close: async () => {
      if (sweeper !== undefined) clearInterval(sweeper);
      await checkpointer?.stop();
    },
  };
}
