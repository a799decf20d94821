/**
 * Where `keystile usage` reads the per-day counters (`dayKey`, contract/src/identity.ts): Redis (the
 * shared store, standalone or Cluster: the days are fields of one hash per subject and month, placed by
 * `dayHashOf`), or the admin port of each enforcer (`POST /v1/usage/days`, contract/src/usage-api.ts),
 * whose answers are added up: with the memory store each enforcer holds only what it counted itself.
 */
import { Value } from '@sinclair/typebox/value';
import { Cluster, Redis } from 'ioredis';
import { dayHashReads } from '../../contract/src/identity.ts';
import {
  DaysAnswer,
  type DaysQuestion,
  type QuotasAnswer,
  USAGE_API_PATHS,
} from '../../contract/src/usage-api.ts';
import type { HostPort } from '../../contract/src/host-port.ts';

/** Reads day counters. */
export interface DayReader {
  /** Where it reads, for messages. */
  readonly name: string;
  /**
   * The counters' values, in order (0 where nothing was counted). All keys of one call share one hash tag
   * (one plan and subject), so one Redis Cluster slot. Rejects with a clear Error when the source fails.
   */
  read(keys: readonly string[]): Promise<number[]>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** The most keys in one question (the usage API's own limit). */
const MAX_KEYS = 10_000;
const TIMEOUT_MS = 10_000;

/** A counter's stored text as a number of requests; throws on anything but a whole number. */
export function counterValue(key: string, raw: string | null | undefined): number {
  if (raw === null || raw === undefined) return 0;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`counter ${key} holds ${JSON.stringify(raw.slice(0, 40))}, not a count`);
  return n;
}

/** Where Redis is, for {@link redisDayReader}. */
export type RedisTarget =
  | { readonly url: string }
  | { readonly clusterNodes: readonly HostPort[]; readonly password?: string | undefined }
  | {
      readonly sentinels: readonly HostPort[];
      readonly name: string;
      readonly password?: string | undefined;
      /** The sentinels' own password (Sentinel's `requirepass`). */
      readonly sentinelPassword?: string | undefined;
    };

/**
 * Reads Redis (a URL), a Redis Cluster (seed nodes `host:port`) or the master a Sentinel names: one HMGET
 * per month's hash (`dayHashReads`, the enforcer's Redis store's own mapping), sent together. A password
 * for Cluster nodes or the master behind Sentinel comes apart from the addresses (a URL carries its own),
 * and so does the sentinels' own.
 */
export function redisDayReader(target: RedisTarget): DayReader {
  // One attempt: a command line reports a Redis it cannot reach rather than retrying forever.
  const options = {
    lazyConnect: false,
    maxRetriesPerRequest: 1,
    connectTimeout: TIMEOUT_MS,
    enableOfflineQueue: true,
    retryStrategy: () => null,
    ...('password' in target && target.password !== undefined && { password: target.password }),
  };
  let client: Redis | Cluster;
  let name: string;
  if ('url' in target) {
    client = new Redis(target.url, options);
    name = `Redis ${redactUrl(target.url)}`;
  } else if ('clusterNodes' in target) {
    const nodes = target.clusterNodes.map((n) => ({ host: n.host, port: n.port }));
    client = new Cluster(nodes, { redisOptions: options, clusterRetryStrategy: () => null });
    name = `Redis Cluster ${addresses(target.clusterNodes)}`;
  } else {
    client = new Redis({
      ...options,
      sentinels: target.sentinels.map((n) => ({ host: n.host, port: n.port })),
      name: target.name,
      sentinelRetryStrategy: () => null,
      ...(target.sentinelPassword !== undefined && { sentinelPassword: target.sentinelPassword }),
    });
    name = `Redis master ${target.name} of the sentinels ${addresses(target.sentinels)}`;
  }
  // Errors reach the command through the rejected reads (the connection's own error says most: an
  // unhandled 'error' event would crash the command instead).
  let lastError: Error | undefined;
  client.on('error', (err: Error) => (lastError = err));
  return {
    name,
    async read(keys) {
      const { reads, invalid } = dayHashReads(keys);
      if (invalid.length > 0) {
        const key = keys[invalid[0] ?? 0] ?? '';
        throw new Error(`${key} is not a day counter's key (ks:{<plan>|<subject>}:day:<YYYY-MM-DD>)`);
      }
      let replies: (string | null)[][];
      try {
        replies = await Promise.all(reads.map((r) => client.hmget(r.key, ...r.fields)));
      } catch (err) {
        const why = lastError?.message ?? (err instanceof Error ? err.message : String(err));
        throw new Error(`${name}: ${why}`);
      }
      const out = keys.map(() => 0);
      reads.forEach((r, i) =>
        r.positions.forEach((at, j) => (out[at] = counterValue(keys[at] ?? '', replies[i]?.[j]))),
      );
      return out;
    },
    async close() {
      client.disconnect();
      await Promise.resolve();
    },
  };
}

/**
 * An `--enforcer` value as a URL: http or https, with no user name or password (the admin port takes none,
 * and one would be printed in every message naming the enforcer). Throws a message that never quotes a
 * URL carrying user info.
 */
export function enforcerUrl(text: string): URL {
  let u: URL | undefined;
  try {
    u = new URL(text);
  } catch {
    // reported below
  }
  const shown = text.includes('@') ? 'a URL' : `'${text}'`;
  if (u === undefined || (u.protocol !== 'http:' && u.protocol !== 'https:'))
    throw new Error(
      `--enforcer: ${shown} is not an http:// or https:// URL (an admin port: http://host:9190)`,
    );
  if (u.username !== '' || u.password !== '')
    throw new Error(
      '--enforcer: a URL with a user name or password: the admin port takes none (give http://host:port)',
    );
  return u;
}

/** An enforcer's URL for messages: scheme, host and path, never user info. */
function shownUrl(u: URL): string {
  return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
}

/** Reads the enforcers' admin ports and adds their answers up. */
export function enforcerDayReader(urls: readonly string[]): DayReader {
  const enforcers = urls.map((text) => {
    const u = enforcerUrl(text);
    return { url: u, name: shownUrl(u) };
  });
  let checked: Promise<void> | undefined;
  return {
    name: `enforcers ${enforcers.map((e) => e.name).join(', ')}`,
    async read(keys) {
      await (checked ??= checkEnforcers(enforcers));
      const total = keys.map(() => 0);
      for (let i = 0; i < keys.length; i += MAX_KEYS) {
        const chunk = keys.slice(i, i + MAX_KEYS);
        const answers = await Promise.all(enforcers.map((e) => askEnforcer(e.url, e.name, chunk)));
        for (const values of answers) values.forEach((v, j) => (total[i + j] = (total[i + j] ?? 0) + v));
      }
      return total;
    },
    async close() {
      await Promise.resolve();
    },
  };
}

/**
 * Which enforcers answer (`GET /v1/usage/quotas`: store and instance), before their answers are added up:
 * the same enforcer named twice (two URLs, one instance) would count twice; and enforcers with the Redis
 * store each answer the shared total, so adding up two of them doubles it: ask one (or Redis itself).
 */
async function checkEnforcers(enforcers: readonly { url: URL; name: string }[]): Promise<void> {
  const answers = await Promise.all(enforcers.map((e) => identify(e.url, e.name)));
  const seen = new Map<string, string>();
  enforcers.forEach((e, i) => {
    const a = answers[i];
    if (a === undefined) return;
    const other = seen.get(a.instance);
    if (other !== undefined)
      throw new Error(
        `enforcers ${other} and ${e.name} are the same enforcer (instance ${a.instance}): name each once, or its counts are added twice`,
      );
    seen.set(a.instance, e.name);
  });
  const redis = enforcers.filter((_, i) => answers[i]?.store === 'redis');
  if (redis.length > 0 && enforcers.length > 1)
    throw new Error(
      `enforcer ${redis[0]?.name ?? ''} counts in Redis, where every enforcer's counts are the shared total: adding up several answers would count them again; name one --enforcer (or read Redis with --redis-url)`,
    );
}

/** The two fields of `GET /v1/usage/quotas` that say which enforcer answered. */
async function identify(base: URL, name: string): Promise<Pick<QuotasAnswer, 'store' | 'instance'>> {
  const body = (await callEnforcer(base, name, 'GET', USAGE_API_PATHS.quotas)) as
    Partial<QuotasAnswer> | undefined;
  const { store, instance } = body ?? {};
  if ((store !== 'memory' && store !== 'redis') || typeof instance !== 'string' || instance === '')
    throw new Error(`enforcer ${name}: the answer to GET ${USAGE_API_PATHS.quotas} is not the usage API's`);
  return { store, instance };
}

async function askEnforcer(base: URL, name: string, keys: readonly string[]): Promise<number[]> {
  const question: DaysQuestion = { keys: [...keys] };
  const body = await callEnforcer(base, name, 'POST', USAGE_API_PATHS.days, question);
  if (!Value.Check(DaysAnswer, body) || body.values.length !== keys.length) {
    throw new Error(`enforcer ${name}: the answer to POST ${USAGE_API_PATHS.days} is not the usage API's`);
  }
  return body.values;
}

/**
 * One call to an enforcer's admin port (`name` for messages: no user info); its JSON body, or undefined
 * when the body is not JSON. Throws, naming the enforcer, on a network error or a status other than 2xx.
 */
async function callEnforcer(
  base: URL,
  name: string,
  method: 'GET' | 'POST',
  path: string,
  json?: unknown,
): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(new URL(path, base), {
      method,
      ...(json !== undefined && {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(json),
      }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(
      `enforcer ${name}: ${cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err))}`,
    );
  }
  if (!res.ok) throw new Error(`enforcer ${name}: ${method} ${path} answered ${res.status}`);
  return await res.json().catch(() => undefined);
}

/** `host:port,...` for messages (`[v6]:port` for an IPv6 host). */
function addresses(nodes: readonly HostPort[]): string {
  return nodes.map((n) => (n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`)).join(',');
}

/** A Redis URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(a Redis URL)';
  }
}
