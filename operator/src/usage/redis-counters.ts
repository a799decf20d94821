/**
 * Reading the shared counters in Redis (the Redis store): the one place the operator knows their
 * layout, kept small so that it follows the enforcer's store (enforcer/src/store/redis-store.ts and
 * redis-scripts.ts). A quota counter (`counterKeys(...).quota`) is a hash `{used, granted}`; an
 * adjustment applied to it leaves the marker `adjustmentMarkerKey(quotaKey, id)` beside it.
 *
 * Reads only (HMGET, EXISTS), sent together: ioredis's auto-pipelining batches every command issued in
 * one tick into one round trip, per node in a Cluster, so a poll of 10,000 keys is a few round trips.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisTarget } from '../config.ts';
import type { Counter } from './usage-status.ts';

/** The fields of a quota counter's hash. */
export const QUOTA_FIELDS = ['used', 'granted'] as const;

/** Reads counters from Redis. */
export interface RedisCounters {
  /** The quota counters that exist, by key (a key never counted is absent). Rejects when Redis fails. */
  readQuotas(keys: readonly string[]): Promise<Map<string, Counter>>;
  /** Whether each key exists (adjustment markers), in order. Rejects when Redis fails. */
  exist(keys: readonly string[]): Promise<boolean[]>;
  /** Closes the connection. */
  close(): Promise<void>;
}

/** A hash's `[used, granted]` as HMGET returns them; undefined when the counter does not exist. */
export function parseQuota(reply: readonly (string | null)[]): Counter | undefined {
  const [used, granted] = reply;
  if ((used === null || used === undefined) && (granted === null || granted === undefined)) return undefined;
  const n = (v: string | null | undefined): number => {
    const x = Number(v ?? 0);
    return Number.isFinite(x) ? Math.trunc(x) : 0;
  };
  return { used: Math.max(0, n(used)), granted: n(granted) };
}

/** Commands sent at once, at most: bounds the memory of one poll's replies in flight. */
const BATCH = 5000;

/** Connects to Redis as `target` says (in the background; commands fail fast while it is away). */
export function connectRedis(target: RedisTarget, timeoutMs: number): RedisCounters {
  const common: RedisOptions = {
    commandTimeout: timeoutMs,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    connectionName: 'keystile-operator',
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    lazyConnect: false,
  };
  const password =
    target.kind === 'url' ? {} : target.password !== undefined ? { password: target.password } : {};
  const client: Redis | Cluster =
    target.kind === 'cluster'
      ? new Cluster(
          target.nodes.map((n) => ({ host: n.host, port: n.port })),
          {
            enableOfflineQueue: false,
            enableAutoPipelining: true,
            clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
            redisOptions: { ...common, ...password },
          },
        )
      : target.kind === 'sentinel'
        ? new Redis({
            ...common,
            ...password,
            sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
            name: target.name,
            ...(target.sentinelPassword !== undefined && { sentinelPassword: target.sentinelPassword }),
          })
        : new Redis(target.url, common);
  // Connection errors surface as failed commands (counted as poll errors); the event must not crash us.
  // The last one is kept to say why a command failed while not connected ("Stream isn't writeable"
  // alone names no cause: a wrong password, an unreachable sentinel). Redis's errors carry no password.
  let connectionError: string | undefined;
  client.on('error', (err: Error) => {
    connectionError = err.message;
  });
  client.on('ready', () => {
    connectionError = undefined;
  });
  const explained = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      const why = connectionError;
      if (why === undefined || !(err instanceof Error) || err.message.includes(why)) throw err;
      throw new Error(`${err.message} (the connection's last error: ${why})`, { cause: err });
    }
  };

  const batched = async <T>(keys: readonly string[], one: (key: string) => Promise<T>): Promise<T[]> => {
    const out: T[] = [];
    for (let i = 0; i < keys.length; i += BATCH)
      out.push(...(await Promise.all(keys.slice(i, i + BATCH).map(one))));
    return out;
  };
  return {
    async readQuotas(keys) {
      const replies = await explained(() => batched(keys, (k) => client.hmget(k, ...QUOTA_FIELDS)));
      const out = new Map<string, Counter>();
      replies.forEach((r, i) => {
        const c = parseQuota(r);
        const k = keys[i];
        if (c && k !== undefined) out.set(k, c);
      });
      return out;
    },
    async exist(keys) {
      return (await explained(() => batched(keys, (k) => client.exists(k)))).map((n) => n > 0);
    },
    async close() {
      client.disconnect();
      await Promise.resolve();
    },
  };
}
