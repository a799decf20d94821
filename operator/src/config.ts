/**
 * The operator's configuration: parsed once, here, from the environment, and frozen. Each setting says
 * its variable, its default and what it means.
 */
import { hostname } from 'node:os';

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
  /** KEYSTILE_WORKERS: how many objects are reconciled at once (default 16: the work waits on the API server, not the CPU). */
  readonly workers: number;
  /** KEYSTILE_LOG_LEVEL: trace, debug, info (default), warn, error. */
  readonly logLevel: string;
  /** KEYSTILE_DEBOUNCE_MS: how long a namespace's changes gather before it is re-rendered (default 50). */
  readonly debounceMs: number;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`${name} must be a whole number from ${min} to ${max}, not '${raw}'`);
  return n;
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new Error(`${name} must be true or false, not '${raw}'`);
}

/** Parses the configuration; throws an Error naming the variable on a bad value. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const level = env['KEYSTILE_LOG_LEVEL'] ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error'].includes(level)) {
    throw new Error(`KEYSTILE_LOG_LEVEL must be trace, debug, info, warn or error, not '${level}'`);
  }
  return Object.freeze({
    namespaces: Object.freeze(
      (env['KEYSTILE_NAMESPACES'] ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
    leaderElect: bool(env, 'KEYSTILE_LEADER_ELECT', true),
    lease: Object.freeze({
      namespace: env['KEYSTILE_LEASE_NAMESPACE'] ?? env['POD_NAMESPACE'] ?? 'default',
      name: env['KEYSTILE_LEASE_NAME'] ?? 'keystile-operator',
      durationSeconds: int(env, 'KEYSTILE_LEASE_DURATION_SECONDS', 15, 2, 600),
      renewSeconds: int(env, 'KEYSTILE_LEASE_RENEW_SECONDS', 5, 1, 300),
    }),
    identity: env['KEYSTILE_IDENTITY'] ?? env['POD_NAME'] ?? `${hostname()}-${process.pid}`,
    healthPort: int(env, 'KEYSTILE_HEALTH_PORT', 8081, 0, 65535),
    healthHost: env['KEYSTILE_HEALTH_HOST'] ?? '0.0.0.0',
    workers: int(env, 'KEYSTILE_WORKERS', 16, 1, 64),
    logLevel: level,
    debounceMs: int(env, 'KEYSTILE_DEBOUNCE_MS', 50, 0, 10_000),
  });
}
