/**
 * The enforcer's configuration: every setting parsed once, here, from command-line flags and the
 * environment (a flag wins over its variable), and frozen. {@link SETTINGS} is the one table of them:
 * flag, variable, default and meaning; docs/enforcer.md lists the same table (a test keeps them equal).
 */
import { parseArgs } from 'node:util';
import { parseStageKey } from '../../contract/src/identity.ts';
import { DEFAULT_MAX_SKEW_MS } from './decision/key-pair-signature.ts';
import type { KeySource } from './decision/key-source.ts';
import { LOSS_POLICIES, type LossPolicy } from './store/redis-loss-policy.ts';
import { type HostPort, parseHostPort } from '../../contract/src/host-port.ts';
import type { RedisConnection } from './store/redis-store.ts';

export type { KeySource };

/** Where the rendered contract comes from. */
export type ConfigSource =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'dir'; readonly path: string }
  | {
      readonly kind: 'kube';
      readonly namespace: string;
      readonly stages: readonly { readonly api: string; readonly stage: string }[];
    }
  | { readonly kind: 'none' };

/** The enforcer's settings. */
export interface EnforcerConfig {
  /** --config / --config-dir / --watch-namespace with --stages. */
  readonly source: ConfigSource;
  /** --check-host: the address the check ports bind. */
  readonly checkHost: string;
  /** --http-port: the HTTP ext_authz port; undefined when off. */
  readonly httpPort: number | undefined;
  /** --grpc-port: the gRPC ext_authz port; undefined when off. */
  readonly grpcPort: number | undefined;
  /** --self-service-port: a key holder's own view of its usage (on --check-host); undefined when off. */
  readonly selfServicePort: number | undefined;
  /** --admin-host: the address of the admin port. */
  readonly adminHost: string;
  /** --admin-port: /healthz, /readyz, /metrics; undefined when off. */
  readonly adminPort: number | undefined;
  /** --key-source: where the key is read from, in order. */
  readonly keySources: readonly KeySource[];
  /** --key-pairs: accept `Authorization: hmac ...` signatures. */
  readonly keyPairs: boolean;
  /** --signature-max-skew: how far x-date may be from now, ms. */
  readonly signatureMaxSkewMs: number;
  /** --signature-require-method-path: signatures must list @method and @path. */
  readonly signatureRequireMethodPath: boolean;
  /** --problem-json: denial bodies as application/problem+json. */
  readonly problemJson: boolean;
  /** --fail-open: allow every request while no config is loaded. */
  readonly failOpen: boolean;
  /** --strip-key: tell Envoy to remove the key's header (or, over gRPC, query parameter) from the upstream request. */
  readonly stripKey: boolean;
  /** --metrics-key-id: label decision metrics with the key id. */
  readonly metricsKeyId: boolean;
  /** --counters-file: where the memory store checkpoints its counters; undefined: not checkpointed. */
  readonly countersFile: string | undefined;
  /** --checkpoint-interval: ms between checkpoints. */
  readonly checkpointIntervalMs: number;
  /** --store: where the counters are kept. */
  readonly store: 'memory' | 'redis';
  /** --redis-url / --redis-cluster-nodes / --redis-sentinels with --redis-sentinel-name (with --store redis). */
  readonly redis: RedisConnection | undefined;
  /** --redis-password: for Cluster nodes and a Sentinel-managed master (a URL carries its own). */
  readonly redisPassword: string | undefined;
  /** --redis-sentinel-password: for the sentinels themselves (Sentinel's own `requirepass`). */
  readonly redisSentinelPassword: string | undefined;
  /** --redis-unavailable: what to do while Redis is away. */
  readonly redisUnavailable: LossPolicy;
  /** --redis-timeout: ms before a Redis command counts as failed. */
  readonly redisTimeoutMs: number;
  /** --usage-retention-days: how long usage-per-day counters are kept. */
  readonly usageRetentionDays: number;
  /** --poll-interval: ms between re-reads of a file or directory, besides change events. */
  readonly pollIntervalMs: number;
  /** --worker-threshold: configs larger than this many bytes are parsed in a parse process. */
  readonly workerThresholdBytes: number;
  /** --log-level. */
  readonly logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';
}

/** One setting: its flag, its variable, its default (as a user writes it) and what it means. */
export interface Setting {
  readonly flag: string;
  readonly env: string;
  readonly default: string;
  readonly meaning: string;
}

/** Every setting. The order is the order docs/enforcer.md lists them in. */
export const SETTINGS: readonly Setting[] = Object.freeze([
  {
    flag: 'config',
    env: 'KEYSTILE_CONFIG',
    default: '',
    meaning:
      'Standalone mode: the file `keystile render` writes. Re-read when it changes (and every poll interval).',
  },
  {
    flag: 'config-dir',
    env: 'KEYSTILE_CONFIG_DIR',
    default: '',
    meaning:
      'Mounted mode: a directory holding the rendered ConfigMaps and Secrets mounted as volumes, DIR/<object name>/<data key>. Every index.json found is a stage. Re-read when a `..data` link is swapped.',
  },
  {
    flag: 'watch-namespace',
    env: 'KEYSTILE_WATCH_NAMESPACE',
    default: '',
    meaning:
      'Watch mode: the namespace whose rendered objects are watched by name through the Kubernetes API (KUBECONFIG, or the in-cluster service account). Needs --stages.',
  },
  {
    flag: 'stages',
    env: 'KEYSTILE_STAGES',
    default: '',
    meaning: 'Watch mode: the API stages to load, comma-separated `api/stage` pairs.',
  },
  {
    flag: 'check-host',
    env: 'KEYSTILE_CHECK_HOST',
    default: '127.0.0.1',
    meaning:
      "The address the check ports bind. Loopback: a sidecar's Envoy is local. See 'Exposing the check port'.",
  },
  {
    flag: 'http-port',
    env: 'KEYSTILE_HTTP_PORT',
    default: '9191',
    meaning: 'The HTTP ext_authz port; `off` disables it, 0 picks a free port.',
  },
  {
    flag: 'grpc-port',
    env: 'KEYSTILE_GRPC_PORT',
    default: '9192',
    meaning: 'The gRPC ext_authz port (envoy.service.auth.v3.Authorization/Check); `off` disables it.',
  },
  {
    flag: 'self-service-port',
    env: 'KEYSTILE_SELF_SERVICE_PORT',
    default: 'off',
    meaning:
      "A key holder's own view of its plan, usage and remaining quota (GET /v1/usage/<namespace>/<api>/<stage>, routed by Envoy from /keystile/usage), on --check-host; costs no quota. `off` disables it. See 'Usage'.",
  },
  {
    flag: 'admin-host',
    env: 'KEYSTILE_ADMIN_HOST',
    default: '0.0.0.0',
    meaning: 'The address of the admin port (probes and Prometheus reach it from outside the pod).',
  },
  {
    flag: 'admin-port',
    env: 'KEYSTILE_ADMIN_PORT',
    default: '9190',
    meaning: '/healthz, /readyz and /metrics; `off` disables it.',
  },
  {
    flag: 'key-source',
    env: 'KEYSTILE_KEY_SOURCE',
    default: 'header:x-api-key',
    meaning:
      'Where the key is read from, comma-separated, first present wins: `header:<name>`, `bearer` (Authorization: Bearer), `query:<name>`.',
  },
  {
    flag: 'key-pairs',
    env: 'KEYSTILE_KEY_PAIRS',
    default: 'true',
    meaning: 'Accept key-pair signatures (`Authorization: hmac id=..., signature=...`).',
  },
  {
    flag: 'signature-max-skew',
    env: 'KEYSTILE_SIGNATURE_MAX_SKEW',
    default: String(DEFAULT_MAX_SKEW_MS / 1000),
    meaning:
      'Seconds a signed x-date may be from the enforcer clock, either way: the replay window of a signed request.',
  },
  {
    flag: 'signature-require-method-path',
    env: 'KEYSTILE_SIGNATURE_REQUIRE_METHOD_PATH',
    default: 'false',
    meaning: 'Refuse signatures that do not list `@method` and `@path`.',
  },
  {
    flag: 'problem-json',
    env: 'KEYSTILE_PROBLEM_JSON',
    default: 'false',
    meaning: 'Denial bodies as `application/problem+json` (RFC 9457) instead of `{"message": ...}`.',
  },
  {
    flag: 'fail-open',
    env: 'KEYSTILE_FAIL_OPEN',
    default: 'false',
    meaning:
      'Allow every request while no config is loaded, and when deciding fails. Off: 503 (fail closed).',
  },
  {
    flag: 'strip-key',
    env: 'KEYSTILE_STRIP_KEY',
    default: 'true',
    meaning:
      "On allow, tell Envoy to remove the header that carried the key or a key pair's signature, so the upstream never sees it (a key in the query: only over gRPC ext_authz).",
  },
  {
    flag: 'metrics-key-id',
    env: 'KEYSTILE_METRICS_KEY_ID',
    default: 'true',
    meaning: 'Label decision metrics with the key id; turn off for very many keys.',
  },
  {
    flag: 'counters-file',
    env: 'KEYSTILE_COUNTERS_FILE',
    default: '',
    meaning:
      'Where the in-memory store checkpoints its counters (at the interval and on SIGTERM) and reloads them on start. Empty: counters start from zero on every start.',
  },
  {
    flag: 'checkpoint-interval',
    env: 'KEYSTILE_CHECKPOINT_INTERVAL',
    default: '10',
    meaning: 'Seconds between checkpoints of the counters.',
  },
  {
    flag: 'store',
    env: 'KEYSTILE_STORE',
    default: 'memory',
    meaning:
      'Where throttle, quota and usage counters are kept: `memory` (one enforcer; checkpointed with --counters-file) or `redis` (shared by every replica, exact across them). See docs/counters.md.',
  },
  {
    flag: 'redis-url',
    env: 'KEYSTILE_REDIS_URL',
    default: '',
    meaning:
      'With --store redis: a standalone Redis, `redis://[user:password@]host:port[/db]` (`rediss://` for TLS).',
  },
  {
    flag: 'redis-cluster-nodes',
    env: 'KEYSTILE_REDIS_CLUSTER_NODES',
    default: '',
    meaning: 'With --store redis: a Redis Cluster, some of its nodes as comma-separated `host:port`.',
  },
  {
    flag: 'redis-sentinels',
    env: 'KEYSTILE_REDIS_SENTINELS',
    default: '',
    meaning:
      'With --store redis: Redis behind Sentinel, the sentinels as comma-separated `host:port`. Needs --redis-sentinel-name.',
  },
  {
    flag: 'redis-sentinel-name',
    env: 'KEYSTILE_REDIS_SENTINEL_NAME',
    default: '',
    meaning: 'The name of the master the sentinels watch (with --redis-sentinels).',
  },
  {
    flag: 'redis-password',
    env: 'KEYSTILE_REDIS_PASSWORD',
    default: '',
    meaning:
      'The password of Redis Cluster nodes or of the master behind Sentinel (a --redis-url carries its own). Prefer the variable, from a Secret: a flag shows in the process list.',
  },
  {
    flag: 'redis-sentinel-password',
    env: 'KEYSTILE_REDIS_SENTINEL_PASSWORD',
    default: '',
    meaning:
      "The password of the sentinels themselves, when they require one (Sentinel's `requirepass`; often the master's own). Prefer the variable, from a Secret.",
  },
  {
    flag: 'redis-unavailable',
    env: 'KEYSTILE_REDIS_UNAVAILABLE',
    default: 'closed',
    meaning:
      'While Redis is unreachable: `closed` answers 503, `open` allows without counting, `local` counts in memory and adds the counts to Redis when it returns.',
  },
  {
    flag: 'redis-timeout',
    env: 'KEYSTILE_REDIS_TIMEOUT',
    default: '0.25',
    meaning:
      'Seconds before a Redis command counts as failed: then --redis-unavailable applies until Redis answers again.',
  },
  {
    flag: 'usage-retention-days',
    env: 'KEYSTILE_USAGE_RETENTION_DAYS',
    default: '90',
    meaning: 'Days the usage-per-day counters (`keystile usage`) are kept after their day.',
  },
  {
    flag: 'poll-interval',
    env: 'KEYSTILE_POLL_INTERVAL',
    default: '5',
    meaning: 'Seconds between re-reads of the config file or directory, besides change events.',
  },
  {
    flag: 'worker-threshold',
    env: 'KEYSTILE_WORKER_THRESHOLD',
    default: String(1 << 20),
    meaning:
      'Configs larger than this many bytes are parsed and validated in a parse process of their own, so decisions never wait on a reload.',
  },
  {
    flag: 'log-level',
    env: 'KEYSTILE_LOG_LEVEL',
    default: 'info',
    meaning: 'trace, debug, info, warn, error or silent.',
  },
] satisfies Setting[]);

const BOOLEAN_FLAGS = new Set([
  'key-pairs',
  'signature-require-method-path',
  'problem-json',
  'fail-open',
  'strip-key',
  'metrics-key-id',
]);

/** A bad setting: names the flag and variable and what was wrong, and the usage text. */
export class ConfigUsageError extends Error {
  /** @param message what is wrong, naming the setting */
  constructor(message: string) {
    super(message);
    this.name = 'ConfigUsageError';
  }
}

/** The usage text, from {@link SETTINGS}. */
export function usage(): string {
  const lines = SETTINGS.map(
    (s) =>
      `  --${s.flag.padEnd(30)} ${s.env}${s.default === '' ? '' : ` (default ${s.default})`}\n      ${s.meaning}`,
  );
  return `usage: node enforcer/src/main.ts (--config FILE | --config-dir DIR | --watch-namespace NS --stages api/stage,...) [options]\n${lines.join('\n')}`;
}

/**
 * Parses the settings from `argv` (flags `--name value` or `--name=value`; booleans also bare) and
 * `env`. Throws a {@link ConfigUsageError} naming the flag and variable on a bad value.
 */
export function loadConfig(
  argv: readonly string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): EnforcerConfig {
  const options = Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: 'string' } as const]));
  let parsed: Record<string, string | boolean | undefined>;
  try {
    const normalised = argv.map((a, i) => {
      // A boolean flag alone (`--fail-open`, not followed by a value) means true.
      const bare = a.startsWith('--') && !a.includes('=') ? a.slice(2) : undefined;
      const next = argv[i + 1];
      const alone = next === undefined || next.startsWith('--');
      return bare !== undefined && BOOLEAN_FLAGS.has(bare) && alone ? `--${bare}=true` : a;
    });
    parsed = parseArgs({ args: normalised, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new ConfigUsageError(err instanceof Error ? err.message : String(err));
  }
  const raw = (flag: string): { value: string; from: string } => {
    const setting = SETTINGS.find((s) => s.flag === flag);
    if (setting === undefined) throw new Error(`no setting ${flag}`);
    const fromFlag = parsed[flag];
    if (typeof fromFlag === 'string') return { value: fromFlag, from: `--${flag}` };
    const fromEnv = env[setting.env];
    if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, from: setting.env };
    return { value: setting.default, from: `the default of --${flag}` };
  };
  const text = (flag: string): string => raw(flag).value.trim();
  const bool = (flag: string): boolean => {
    const { value, from } = raw(flag);
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0') return false;
    throw new ConfigUsageError(`${from} must be true or false, not '${value}'`);
  };
  const number = (flag: string, min: number, max: number): number => {
    const { value, from } = raw(flag);
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new ConfigUsageError(`${from} must be a number from ${min} to ${max}, not '${value}'`);
    }
    return n;
  };
  const port = (flag: string): number | undefined => {
    const { value } = raw(flag);
    if (value === 'off') return undefined;
    const n = number(flag, 0, 65535);
    if (!Number.isInteger(n)) throw new ConfigUsageError(`--${flag} must be a whole number or off`);
    return n;
  };

  const level = text('log-level');
  if (!['trace', 'debug', 'info', 'warn', 'error', 'silent'].includes(level)) {
    throw new ConfigUsageError(
      `--log-level must be trace, debug, info, warn, error or silent, not '${level}'`,
    );
  }
  return Object.freeze({
    source: parseSource(text('config'), text('config-dir'), text('watch-namespace'), text('stages')),
    checkHost: text('check-host'),
    httpPort: port('http-port'),
    grpcPort: port('grpc-port'),
    selfServicePort: port('self-service-port'),
    adminHost: text('admin-host'),
    adminPort: port('admin-port'),
    keySources: parseKeySources(text('key-source')),
    keyPairs: bool('key-pairs'),
    signatureMaxSkewMs: number('signature-max-skew', 1, 86_400) * 1000,
    signatureRequireMethodPath: bool('signature-require-method-path'),
    problemJson: bool('problem-json'),
    failOpen: bool('fail-open'),
    stripKey: bool('strip-key'),
    metricsKeyId: bool('metrics-key-id'),
    countersFile: text('counters-file') === '' ? undefined : text('counters-file'),
    checkpointIntervalMs: number('checkpoint-interval', 0.1, 86_400) * 1000,
    ...parseStore(text, number, (flag) => raw(flag).from === `--${flag}`),
    pollIntervalMs: number('poll-interval', 0.1, 86_400) * 1000,
    workerThresholdBytes: number('worker-threshold', 0, 2 ** 40),
    logLevel: level as EnforcerConfig['logLevel'],
  });
}

/** The store settings: --store and the --redis-* flags, checked together. */
function parseStore(
  text: (flag: string) => string,
  number: (flag: string, min: number, max: number) => number,
  onCommandLine: (flag: string) => boolean,
): Pick<
  EnforcerConfig,
  | 'store'
  | 'redis'
  | 'redisPassword'
  | 'redisSentinelPassword'
  | 'redisUnavailable'
  | 'redisTimeoutMs'
  | 'usageRetentionDays'
> {
  const store = text('store');
  if (store !== 'memory' && store !== 'redis') {
    throw new ConfigUsageError(`--store must be memory or redis, not '${store}'`);
  }
  const url = text('redis-url');
  const cluster = text('redis-cluster-nodes');
  const sentinels = text('redis-sentinels');
  const name = text('redis-sentinel-name');
  const given = [
    url && '--redis-url',
    cluster && '--redis-cluster-nodes',
    sentinels && '--redis-sentinels',
  ].filter(Boolean);
  if (given.length > 1) throw new ConfigUsageError(`give one Redis, not ${given.join(' and ')}`);
  let redis: RedisConnection | undefined;
  if (store === 'memory') {
    // A Redis flag on the command line with the memory store is a mistake worth stopping for; the same
    // setting from the environment is not (a shell set up for the local system exports KEYSTILE_REDIS_URL
    // for the CLI), and is ignored.
    const flag = given.find((g) => typeof g === 'string' && onCommandLine(g.slice(2)));
    if (typeof flag === 'string') throw new ConfigUsageError(`${flag} applies only with --store redis`);
  } else if (url) {
    if (!/^rediss?:\/\/[^\s]+$/.test(url)) {
      throw new ConfigUsageError('--redis-url must be redis://host:port[/db] or rediss://...');
    }
    redis = Object.freeze({ kind: 'standalone', url });
  } else if (cluster) {
    redis = Object.freeze({ kind: 'cluster', nodes: parseHostPorts('--redis-cluster-nodes', cluster) });
  } else if (sentinels) {
    if (!name) throw new ConfigUsageError('--redis-sentinels needs --redis-sentinel-name (the master name)');
    redis = Object.freeze({
      kind: 'sentinel',
      sentinels: parseHostPorts('--redis-sentinels', sentinels),
      name,
    });
  } else {
    throw new ConfigUsageError(
      '--store redis needs --redis-url, --redis-cluster-nodes or --redis-sentinels (with --redis-sentinel-name)',
    );
  }
  if (name && !sentinels)
    throw new ConfigUsageError('--redis-sentinel-name applies only with --redis-sentinels');
  const sentinelPassword = text('redis-sentinel-password');
  if (sentinelPassword && !sentinels && store === 'redis')
    throw new ConfigUsageError('--redis-sentinel-password applies only with --redis-sentinels');
  const policy = text('redis-unavailable');
  if (!(LOSS_POLICIES as readonly string[]).includes(policy)) {
    throw new ConfigUsageError(`--redis-unavailable must be ${LOSS_POLICIES.join(', ')}, not '${policy}'`);
  }
  const retention = number('usage-retention-days', 1, 3660);
  if (!Number.isInteger(retention))
    throw new ConfigUsageError('--usage-retention-days must be a whole number');
  const password = text('redis-password');
  return {
    store,
    redis,
    redisPassword: password === '' ? undefined : password,
    redisSentinelPassword: sentinelPassword === '' ? undefined : sentinelPassword,
    redisUnavailable: policy as LossPolicy,
    redisTimeoutMs: number('redis-timeout', 0.001, 60) * 1000,
    usageRetentionDays: retention,
  };
}

/** Parses `host:port,host:port` (`[v6]:port` too); throws a {@link ConfigUsageError} naming the flag. */
export function parseHostPorts(flag: string, text: string): readonly HostPort[] {
  const list = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const parsed = parseHostPort(entry);
      if (parsed === undefined) throw new ConfigUsageError(`${flag}: '${entry}' is not host:port`);
      return parsed;
    });
  if (list.length === 0) throw new ConfigUsageError(`${flag} names no host:port`);
  return Object.freeze(list);
}

function parseSource(file: string, dir: string, namespace: string, stages: string): ConfigSource {
  const given = [file && '--config', dir && '--config-dir', namespace && '--watch-namespace'].filter(Boolean);
  if (given.length > 1) {
    throw new ConfigUsageError(`give one config source, not ${given.join(' and ')}`);
  }
  if (file) return Object.freeze({ kind: 'file', path: file });
  if (dir) return Object.freeze({ kind: 'dir', path: dir });
  if (namespace) {
    const list = stages
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (list.length === 0) {
      throw new ConfigUsageError('--watch-namespace needs --stages (KEYSTILE_STAGES): api/stage,...');
    }
    const parsed = list.map((s) => {
      const id = parseStageKey(`${namespace}/${s}`);
      if (id === undefined) {
        throw new ConfigUsageError(
          `--stages: '${s}' is not api/stage (DNS labels), or '${namespace}' is not a namespace`,
        );
      }
      return Object.freeze({ api: id.api, stage: id.stage });
    });
    return Object.freeze({ kind: 'kube', namespace, stages: Object.freeze(parsed) });
  }
  if (stages) throw new ConfigUsageError('--stages applies only with --watch-namespace');
  return Object.freeze({ kind: 'none' });
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** Parses `header:<name>,bearer,query:<name>`; throws a {@link ConfigUsageError} on a bad entry. */
export function parseKeySources(text: string): readonly KeySource[] {
  const sources = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry): KeySource => {
      if (entry.toLowerCase() === 'bearer') return Object.freeze({ kind: 'bearer' });
      const colon = entry.indexOf(':');
      const kind = colon < 0 ? '' : entry.slice(0, colon).toLowerCase();
      const name = colon < 0 ? '' : entry.slice(colon + 1);
      if (kind === 'header' && HEADER_NAME.test(name.toLowerCase())) {
        return Object.freeze({ kind: 'header', name: name.toLowerCase() });
      }
      if (kind === 'query' && /^[A-Za-z0-9._~-]+$/.test(name)) return Object.freeze({ kind: 'query', name });
      throw new ConfigUsageError(`--key-source: '${entry}' is not header:<name>, bearer or query:<name>`);
    });
  if (sources.length === 0) throw new ConfigUsageError('--key-source names no source');
  return Object.freeze(sources);
}
