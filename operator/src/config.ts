/**
 * The operator's configuration: parsed once, here, from command-line flags and the environment (a flag
 * wins over its variable), and frozen. {@link SETTINGS} is the one table: flag, variable, default and
 * meaning; docs/operator.md lists the same settings.
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { type HostPort, parseHostPort } from '../../contract/src/host-port.ts';
import { RENEW_DEADLINE_FRACTION } from './kube/lease.ts';

/** Where usage is read from with the Redis store: one server, a Cluster, or Sentinels. */
export type RedisTarget =
  | { readonly kind: 'url'; readonly url: string }
  | { readonly kind: 'cluster'; readonly nodes: readonly HostPort[]; readonly password?: string }
  | {
      readonly kind: 'sentinel';
      readonly sentinels: readonly HostPort[];
      readonly name: string;
      readonly password?: string;
      /** The sentinels' own password (Sentinel's `requirepass`). */
      readonly sentinelPassword?: string;
    };

/** The usage settings (ApiKey usage status, alerts, adjustments' applied state, shared counters). */
export interface UsageConfig {
  /** --usage-interval: ms between usage polls (default 15 s). */
  readonly intervalMs: number;
  /** --usage-endpoints: enforcers' admin URLs, or `dns+http://name:port` (every A record of name). */
  readonly endpoints: readonly string[];
  /** --usage-redis-url / --usage-redis-cluster-nodes / --usage-redis-sentinels: the shared counters. */
  readonly redis: RedisTarget | undefined;
  /** --counter-store: what enforcers count with when they do not say (default redis when Redis is given, else memory). */
  readonly counterStore: 'memory' | 'redis';
  /** --usage-writes-per-second: the most ApiKey status writes a second for usage (default 20). */
  readonly writesPerSecond: number;
  /** --usage-metrics-per-key: export used and limit per key (default true; off for very many keys). */
  readonly metricsPerKey: boolean;
  /** --usage-timeout: ms an endpoint or Redis may take to answer one poll (default 5 s). */
  readonly timeoutMs: number;
}

/** The operator's settings. */
export interface OperatorConfig {
  /** KEYSTILE_NAMESPACES: comma-separated namespaces to watch; empty (default) watches all. */
  readonly namespaces: readonly string[];
  /** KEYSTILE_LEADER_ELECT: take a coordination.k8s.io Lease before writing (default true). */
  readonly leaderElect: boolean;
  /** KEYSTILE_LEASE_NAMESPACE (default: POD_NAMESPACE, or 'default') and KEYSTILE_LEASE_NAME (default 'keystile-operator'). */
  readonly lease: {
    readonly namespace: string;
    readonly name: string;
    readonly durationSeconds: number;
    readonly renewSeconds: number;
  };
  /** KEYSTILE_IDENTITY: who holds the lease (default POD_NAME, or the host name and pid). */
  readonly identity: string;
  /** KEYSTILE_HEALTH_PORT: /healthz, /readyz and /metrics (default 8081; 0 picks a free port). */
  readonly healthPort: number;
  /** KEYSTILE_HEALTH_HOST: the address they bind (default 0.0.0.0, for the kubelet and Prometheus). */
  readonly healthHost: string;
  /**
   * KEYSTILE_WORKERS: how many keys are reconciled at once, and how many writes one namespace's reconcile
   * makes at once (default 32: the work waits on the API server, not the CPU).
   */
  readonly workers: number;
  /** KEYSTILE_LOG_LEVEL: trace, debug, info (default), warn, error. */
  readonly logLevel: string;
  /** KEYSTILE_DEBOUNCE_MS: how long a namespace's changes gather before it is re-rendered (default 50). */
  readonly debounceMs: number;
  /** The usage settings. */
  readonly usage: UsageConfig;
}

/** One setting: its flag, its variable, its default (as a user writes it; '' for none) and its meaning. */
export interface Setting {
  readonly flag: string;
  readonly env: string;
  readonly default: string;
  readonly meaning: string;
}

/** Every setting, in the order docs/operator.md lists them. */
export const SETTINGS: readonly Setting[] = Object.freeze([
  {
    flag: 'namespaces',
    env: 'KEYSTILE_NAMESPACES',
    default: '',
    meaning: 'Comma-separated namespaces to watch; empty watches all.',
  },
  {
    flag: 'leader-elect',
    env: 'KEYSTILE_LEADER_ELECT',
    default: 'true',
    meaning: 'Take the Lease before writing.',
  },
  {
    flag: 'lease-namespace',
    env: 'KEYSTILE_LEASE_NAMESPACE',
    default: '',
    meaning: 'Where the Lease is (default POD_NAMESPACE, or `default`).',
  },
  {
    flag: 'lease-name',
    env: 'KEYSTILE_LEASE_NAME',
    default: 'keystile-operator',
    meaning: "The Lease's name.",
  },
  {
    flag: 'lease-duration-seconds',
    env: 'KEYSTILE_LEASE_DURATION_SECONDS',
    default: '15',
    meaning: 'How long a Lease lasts unrenewed.',
  },
  {
    flag: 'lease-renew-seconds',
    env: 'KEYSTILE_LEASE_RENEW_SECONDS',
    default: '5',
    meaning:
      'How often the Lease is renewed: under 0.8 x the duration (the leader stops leading when it has not renewed within that), or the operator refuses to start.',
  },
  {
    flag: 'identity',
    env: 'KEYSTILE_IDENTITY',
    default: '',
    meaning: "The Lease holder's name (default POD_NAME, or host name and pid).",
  },
  {
    flag: 'health-host',
    env: 'KEYSTILE_HEALTH_HOST',
    default: '0.0.0.0',
    meaning: 'The address of /healthz, /readyz and /metrics.',
  },
  {
    flag: 'health-port',
    env: 'KEYSTILE_HEALTH_PORT',
    default: '8081',
    meaning: 'Their port; 0 picks a free one.',
  },
  {
    flag: 'workers',
    env: 'KEYSTILE_WORKERS',
    default: '32',
    meaning:
      "Reconciles at once, and a namespace's writes at once (they wait on the API server, not the CPU).",
  },
  {
    flag: 'debounce-ms',
    env: 'KEYSTILE_DEBOUNCE_MS',
    default: '50',
    meaning: "How long a namespace's changes gather before it renders.",
  },
  {
    flag: 'log-level',
    env: 'KEYSTILE_LOG_LEVEL',
    default: 'info',
    meaning: 'trace, debug, info, warn or error (JSON logs; key material redacted).',
  },
  {
    flag: 'usage-interval',
    env: 'KEYSTILE_USAGE_INTERVAL',
    default: '15',
    meaning: 'Seconds between usage polls (leader only): ApiKey usage status, alerts, adjustments applied.',
  },
  {
    flag: 'usage-endpoints',
    env: 'KEYSTILE_USAGE_ENDPOINTS',
    default: '',
    meaning:
      "Enforcers' admin URLs to poll (memory store), comma-separated; `dns+http://name:port` means every A record of name (a headless Service).",
  },
  {
    flag: 'usage-redis-url',
    env: 'KEYSTILE_USAGE_REDIS_URL',
    default: '',
    meaning:
      'The Redis the enforcers count in (Redis store): `redis://[:password@]host:port[/db]` or `rediss://`.',
  },
  {
    flag: 'usage-redis-cluster-nodes',
    env: 'KEYSTILE_USAGE_REDIS_CLUSTER_NODES',
    default: '',
    meaning: 'Instead: Redis Cluster seed nodes, `host:port,...`.',
  },
  {
    flag: 'usage-redis-sentinels',
    env: 'KEYSTILE_USAGE_REDIS_SENTINELS',
    default: '',
    meaning: 'Instead: Redis Sentinels, `host:port,...`, with --usage-redis-sentinel-name.',
  },
  {
    flag: 'usage-redis-sentinel-name',
    env: 'KEYSTILE_USAGE_REDIS_SENTINEL_NAME',
    default: '',
    meaning: 'The name of the master the Sentinels watch (with --usage-redis-sentinels).',
  },
  {
    flag: 'usage-redis-password',
    env: 'KEYSTILE_USAGE_REDIS_PASSWORD',
    default: '',
    meaning: 'The password for Cluster or Sentinel (a URL carries its own); prefer the variable to the flag.',
  },
  {
    flag: 'usage-redis-sentinel-password',
    env: 'KEYSTILE_USAGE_REDIS_SENTINEL_PASSWORD',
    default: '',
    meaning:
      "The sentinels' own password, when they require one (Sentinel's `requirepass`); prefer the variable to the flag.",
  },
  {
    flag: 'counter-store',
    env: 'KEYSTILE_COUNTER_STORE',
    default: '',
    meaning:
      'What enforcers count with when they do not say: `memory` or `redis` (default redis when a Redis is given, else memory). Decides the UsagePlan condition CountersShared.',
  },
  {
    flag: 'usage-writes-per-second',
    env: 'KEYSTILE_USAGE_WRITES_PER_SECOND',
    default: '20',
    meaning: 'The most ApiKey status writes a second for usage; the longest-stale key is written first.',
  },
  {
    flag: 'usage-metrics-per-key',
    env: 'KEYSTILE_USAGE_METRICS_PER_KEY',
    default: 'true',
    meaning: 'Export keystile_operator_key_quota_used and _limit per key; off keeps only per-plan sums.',
  },
  {
    flag: 'usage-timeout',
    env: 'KEYSTILE_USAGE_TIMEOUT',
    default: '5',
    meaning: 'Seconds an enforcer or Redis may take to answer one poll.',
  },
] satisfies Setting[]);

/** A bad setting: names the flag and the variable, and what was wrong. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the configuration from `argv` (`--name value` or `--name=value`) and `env`; throws a
 * {@link ConfigError} naming the setting on a bad value.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  argv: readonly string[] = [],
): OperatorConfig {
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({
      args: [...argv],
      options: Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: 'string' } as const])),
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new ConfigError(err instanceof Error ? err.message : String(err));
  }
  const raw = (flag: string): { value: string | undefined; from: string } => {
    const s = SETTINGS.find((x) => x.flag === flag);
    if (!s) throw new Error(`no setting ${flag}`);
    const f = flags[flag];
    if (typeof f === 'string') return { value: f.trim(), from: `--${flag}` };
    const e = env[s.env];
    if (e !== undefined && e !== '') return { value: e.trim(), from: s.env };
    return { value: s.default === '' ? undefined : s.default, from: `the default of ${s.env}` };
  };
  const text = (flag: string): string => raw(flag).value ?? '';
  const int = (flag: string, min: number, max: number): number => {
    const { value, from } = raw(flag);
    const n = Number(value);
    if (value === undefined || !Number.isInteger(n) || n < min || n > max)
      throw new ConfigError(`${from} must be a whole number from ${min} to ${max}, not '${value ?? ''}'`);
    return n;
  };
  const num = (flag: string, min: number, max: number): number => {
    const { value, from } = raw(flag);
    const n = Number(value);
    if (value === undefined || !Number.isFinite(n) || n < min || n > max)
      throw new ConfigError(`${from} must be a number from ${min} to ${max}, not '${value ?? ''}'`);
    return n;
  };
  const bool = (flag: string): boolean => {
    const { value, from } = raw(flag);
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0') return false;
    throw new ConfigError(`${from} must be true or false, not '${value ?? ''}'`);
  };
  const list = (flag: string): string[] =>
    text(flag)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);

  const level = text('log-level');
  if (!['trace', 'debug', 'info', 'warn', 'error'].includes(level)) {
    throw new ConfigError(
      `${raw('log-level').from} must be trace, debug, info, warn or error, not '${level}'`,
    );
  }
  const endpoints = list('usage-endpoints');
  for (const e of endpoints) checkEndpoint(e);
  const redis = redisTarget(
    text('usage-redis-url'),
    list('usage-redis-cluster-nodes'),
    list('usage-redis-sentinels'),
    text('usage-redis-sentinel-name'),
    text('usage-redis-password'),
    text('usage-redis-sentinel-password'),
  );
  const storeText = text('counter-store');
  if (storeText !== '' && storeText !== 'memory' && storeText !== 'redis') {
    throw new ConfigError(`${raw('counter-store').from} must be memory or redis, not '${storeText}'`);
  }
  const counterStore = storeText === '' ? (redis ? 'redis' : 'memory') : storeText;

  /**
   * The Lease's duration and renewal interval. The leader stops leading when it has not renewed within
   * RENEW_DEADLINE_FRACTION of the duration (kube/lease.ts): an interval as long as that would drop the
   * Lease, and stop and restart every controller, at every renewal.
   */
  function leaseTimes(): { durationSeconds: number; renewSeconds: number } {
    const durationSeconds = int('lease-duration-seconds', 2, 600);
    const renewSeconds = int('lease-renew-seconds', 1, 300);
    // In whole ms, as lease.ts times it (durationSeconds x 0.8 as a double may miss by a hair).
    if (
      bool('leader-elect') &&
      renewSeconds * 1000 >= Math.round(durationSeconds * 1000 * RENEW_DEADLINE_FRACTION)
    ) {
      throw new ConfigError(
        `${raw('lease-renew-seconds').from} (${renewSeconds}) must be under ${RENEW_DEADLINE_FRACTION} x ${raw('lease-duration-seconds').from} (${durationSeconds}): the leader stops leading when it has not renewed within that`,
      );
    }
    return { durationSeconds, renewSeconds };
  }

  return Object.freeze({
    namespaces: Object.freeze(list('namespaces')),
    leaderElect: bool('leader-elect'),
    lease: Object.freeze({
      namespace: text('lease-namespace') || env['POD_NAMESPACE'] || 'default',
      name: text('lease-name'),
      ...leaseTimes(),
    }),
    identity: text('identity') || env['POD_NAME'] || `${hostname()}-${process.pid}`,
    healthPort: int('health-port', 0, 65535),
    healthHost: text('health-host'),
    workers: int('workers', 1, 64),
    logLevel: level,
    debounceMs: int('debounce-ms', 0, 10_000),
    usage: Object.freeze({
      intervalMs: Math.round(num('usage-interval', 1, 3600) * 1000),
      endpoints: Object.freeze(endpoints),
      redis,
      counterStore,
      writesPerSecond: num('usage-writes-per-second', 0.1, 10_000),
      metricsPerKey: bool('usage-metrics-per-key'),
      timeoutMs: Math.round(num('usage-timeout', 0.1, 600) * 1000),
    }),
  });
}

/** Checks an endpoint: `http(s)://host:port` or `dns+http(s)://name:port`. */
function checkEndpoint(e: string): void {
  let url: URL;
  try {
    url = new URL(e);
  } catch {
    throw new ConfigError(
      `--usage-endpoints: '${e}' is not a URL (http://host:port or dns+http://name:port)`,
    );
  }
  if (!['http:', 'https:', 'dns+http:', 'dns+https:'].includes(url.protocol) || url.hostname === '') {
    throw new ConfigError(
      `--usage-endpoints: '${e}' must be http://host:port, https://... or dns+http://name:port`,
    );
  }
  if (url.protocol.startsWith('dns+') && url.port === '') {
    throw new ConfigError(`--usage-endpoints: '${e}' needs a port (dns+http://name:port)`);
  }
}

function hostPorts(flag: string, items: readonly string[]): HostPort[] {
  return items.map((item) => {
    const parsed = parseHostPort(item);
    if (parsed === undefined) throw new ConfigError(`--${flag}: '${item}' is not host:port`);
    return parsed;
  });
}

function redisTarget(
  url: string,
  cluster: readonly string[],
  sentinels: readonly string[],
  name: string,
  password: string,
  sentinelPassword: string,
): RedisTarget | undefined {
  const given = [
    url && '--usage-redis-url',
    cluster.length > 0 && '--usage-redis-cluster-nodes',
    sentinels.length > 0 && '--usage-redis-sentinels',
  ].filter(Boolean);
  if (given.length > 1) throw new ConfigError(`give one Redis, not ${given.join(' and ')}`);
  if (sentinelPassword !== '' && sentinels.length === 0 && given.length > 0)
    throw new ConfigError('--usage-redis-sentinel-password applies only with --usage-redis-sentinels');
  const secret = password === '' ? {} : { password };
  if (url) {
    if (!/^rediss?:\/\/[^/]/.test(url)) {
      throw new ConfigError('--usage-redis-url must be redis://[:password@]host:port[/db] or rediss://...');
    }
    return Object.freeze({ kind: 'url', url });
  }
  if (cluster.length > 0)
    return Object.freeze({
      kind: 'cluster',
      nodes: Object.freeze(hostPorts('usage-redis-cluster-nodes', cluster)),
      ...secret,
    });
  if (sentinels.length > 0 && name === '')
    throw new ConfigError(
      '--usage-redis-sentinels needs --usage-redis-sentinel-name (KEYSTILE_USAGE_REDIS_SENTINEL_NAME)',
    );
  if (sentinels.length > 0)
    return Object.freeze({
      kind: 'sentinel',
      sentinels: Object.freeze(hostPorts('usage-redis-sentinels', sentinels)),
      name,
      ...secret,
      ...(sentinelPassword !== '' && { sentinelPassword }),
    });
  return undefined;
}
