import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { GroundContext } from './context.ts';
import {
  apiserverReady,
  controllerManagerReady,
  etcdReady,
  kubeconfigPath,
  startApiserver,
  startControllerManager,
  startEtcd,
} from './controlplane.ts';
import { envoyReady, startEnvoy } from './envoy.ts';
import { binaries, type Binaries, stateDir } from './paths.ts';
import { localPorts } from './ports.ts';
import { ProcessTable, type ProcessRecord } from './processes.ts';
import { prometheusReady, startPrometheus } from './prometheus.ts';
import { redisReady, startRedis } from './redis.ts';
import { startUpstream, upstreamReady } from './upstream-server.ts';
import {
  installKeystile,
  OPERATOR_SERVICE_ACCOUNT,
  type OperatorProcess,
  operatorReady,
  serviceAccountKubeconfig,
  startOperatorProcess,
  SYSTEM_NAMESPACE,
} from './keystile.ts';

/** Where the local system's parts answer; also what `.keystile/local.env` exports. */
export interface LocalSystem {
  readonly stateDir: string;
  /** The kubeconfig tests and people use: the local control plane's, or the one KUBECONFIG named. */
  readonly kubeconfig: string;
  /** True when the control plane is the local one; false when an existing cluster was given. */
  readonly localControlPlane: boolean;
  readonly envoyUrl: string;
  readonly envoyAdminUrl: string;
  readonly upstreamUrl: string;
  readonly redisUrl: string;
  readonly prometheusUrl: string;
  /** The operator's health, readiness and metrics endpoint. */
  readonly operatorUrl: string;
  /** The kubeconfig of the operator's ServiceAccount (what the operator runs as). */
  readonly operatorKubeconfig: string;
  readonly bins: Binaries;
  /** The processes this call started (empty when everything already ran). */
  readonly started: readonly string[];
  readonly seconds: number;
}

/** What to start. */
export interface StartOptions {
  /**
   * Use this kubeconfig (an existing cluster: kind, a real one) instead of starting the local control
   * plane. Default: the local control plane.
   */
  readonly externalKubeconfig?: string | undefined;
}

/** The binaries each part needs, so a missing one fails with a message naming it. */
function requiredBinaries(bins: Binaries, controlPlane: boolean): [string, string][] {
  const parts: [string, string][] = [
    ['envoy', bins.envoy],
    ['redis-server', bins.redisServer],
    ['prometheus', bins.prometheus],
    ['promtool', bins.promtool],
  ];
  if (controlPlane) {
    parts.push(
      ['etcd', bins.etcd],
      ['kube-apiserver', bins.kubeApiserver],
      ['kube-controller-manager', bins.kubeControllerManager],
      ['kubectl', bins.kubectl],
    );
  }
  return parts;
}

/** The context every part is started with. */
export function groundContext(): GroundContext {
  return { stateDir, ports: localPorts(), bins: binaries(), procs: new ProcessTable(stateDir) };
}

/** How the local system runs its operator: as its ServiceAccount, usage read from the demo enforcer. */
export function localOperator(ctx: GroundContext): OperatorProcess {
  return {
    name: 'operator',
    healthPort: ctx.ports.operator,
    kubeconfig: join(ctx.stateDir, 'operator.kubeconfig'),
    // Usage comes from the demo enforcer's memory store (its admin port); until it is up, polls fail.
    env: { KEYSTILE_USAGE_ENDPOINTS: `http://127.0.0.1:${ctx.ports.demoEnforcerAdmin}` },
  };
}

/**
 * Starts whatever of the local system is not already running and waits until every part is ready.
 * Safe to call twice: running parts are found by their pid files and left alone.
 */
export async function startLocalSystem(options: StartOptions = {}): Promise<LocalSystem> {
  const t0 = performance.now();
  const ctx = groundContext();
  const controlPlane = options.externalKubeconfig === undefined;
  const missing = requiredBinaries(ctx.bins, controlPlane).filter(([, path]) => !existsSync(path));
  if (missing.length > 0) {
    const names = missing.map(([name, path]) => `${name} (${path})`).join(', ');
    throw new Error(
      `missing prerequisites: ${names}. Run 'bash test/ground/install.sh all' (npm start and npm test do).`,
    );
  }
  mkdirSync(ctx.stateDir, { recursive: true });
  const before = new Set(ctx.procs.all(knownNames(ctx.stateDir)).map((r) => r.name));

  // Phase 1: the parts with no dependencies, in parallel.
  startRedis(ctx);
  startUpstream(ctx);
  if (controlPlane) startEtcd(ctx);
  await Promise.all([redisReady(ctx), upstreamReady(ctx), controlPlane && etcdReady(ctx)]);
  // Phase 2: the API server on etcd; Envoy on the upstream; Prometheus scraping Envoy.
  const cp = controlPlane ? startApiserver(ctx) : undefined;
  startEnvoy(ctx);
  await Promise.all([cp && apiserverReady(ctx, cp), envoyReady(ctx)]);
  startPrometheus(ctx);
  // Phase 3: controllers need a ready API server.
  if (cp) startControllerManager(ctx, cp);
  await Promise.all([prometheusReady(ctx), cp && controllerManagerReady(ctx)]);

  // Phase 4: Keystile itself: the CRDs and RBAC from the shipped files, the operator as its ServiceAccount.
  const kubeconfig = options.externalKubeconfig ?? kubeconfigPath(ctx);
  const operator = localOperator(ctx);
  const operatorKubeconfig = operator.kubeconfig;
  // The CRDs and RBAC every time (server-side apply: cheap, and a changed CRD reaches a running system).
  installKeystile(ctx, kubeconfig);
  if (!ctx.procs.running('operator')) {
    serviceAccountKubeconfig(ctx, kubeconfig, SYSTEM_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, operatorKubeconfig);
    startOperatorProcess(ctx, operator);
  }
  await operatorReady(ctx, operator);

  const system: LocalSystem = {
    stateDir: ctx.stateDir,
    kubeconfig,
    localControlPlane: controlPlane,
    envoyUrl: `http://127.0.0.1:${ctx.ports.envoy}`,
    envoyAdminUrl: `http://127.0.0.1:${ctx.ports.envoyAdmin}`,
    upstreamUrl: `http://127.0.0.1:${ctx.ports.upstream}`,
    redisUrl: `redis://127.0.0.1:${ctx.ports.redis}`,
    prometheusUrl: `http://127.0.0.1:${ctx.ports.prometheus}`,
    operatorUrl: `http://127.0.0.1:${ctx.ports.operator}`,
    operatorKubeconfig,
    bins: ctx.bins,
    started: ctx.procs
      .all(knownNames(ctx.stateDir))
      .map((r) => r.name)
      .filter((n) => !before.has(n)),
    seconds: (performance.now() - t0) / 1000,
  };
  writeLocalEnv(system);
  return system;
}

/** The names of every process the table records, started by this system or by a later part. */
function knownNames(dir: string): string[] {
  const runDir = join(dir, 'run');
  if (!existsSync(runDir)) return [];
  return readdirSync(runDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length));
}

/** Every running process of the local system, oldest first. */
export function runningProcesses(): ProcessRecord[] {
  return new ProcessTable(stateDir)
    .all(knownNames(stateDir))
    .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}

/**
 * Stops processes of the local system, newest first (so Envoy goes before its upstream and the
 * controllers before the API server), and waits until each is gone, so no port stays held. With `only`,
 * stops just those names.
 */
export async function stopLocalSystem(only?: readonly string[]): Promise<string[]> {
  const procs = new ProcessTable(stateDir);
  const stopped: string[] = [];
  for (const record of runningProcesses().reverse()) {
    if (only && !only.includes(record.name)) continue;
    if (await procs.stop(record.name)) stopped.push(record.name);
  }
  return stopped;
}

/** The path of the file a shell sources to use the local system. */
export const localEnvPath: string = join(stateDir, 'local.env');

/** Writes `.keystile/local.env`: KUBECONFIG, the URLs, and PATH with the matching kubectl and helm first. */
export function writeLocalEnv(system: LocalSystem, extra: Readonly<Record<string, string>> = {}): void {
  const lines = [
    '# Written by `npm start`: `source .keystile/local.env` sets a shell up for the local system.',
    `export KUBECONFIG='${system.kubeconfig}'`,
    // KEYSTILE_ENVOY_URL is the Envoy that asks the enforcer (npm start's demo); until it runs, the plain one.
    `export KEYSTILE_ENVOY_URL='${extra['KEYSTILE_ENVOY_URL'] ?? system.envoyUrl}'`,
    `export KEYSTILE_ENVOY_OPEN_URL='${system.envoyUrl}'`,
    `export KEYSTILE_ENVOY_ADMIN_URL='${system.envoyAdminUrl}'`,
    `export KEYSTILE_UPSTREAM_URL='${system.upstreamUrl}'`,
    `export KEYSTILE_REDIS_URL='${system.redisUrl}'`,
    `export KEYSTILE_PROMETHEUS_URL='${system.prometheusUrl}'`,
    `export KEYSTILE_OPERATOR_URL='${system.operatorUrl}'`,
    ...Object.entries(extra)
      .filter(([k]) => k !== 'KEYSTILE_ENVOY_URL')
      .map(([k, v]) => `export ${k}='${v}'`),
    // kubectl and helm built for this control plane's version come first on PATH.
    `export PATH='${dirname(system.bins.kubectl)}:${dirname(system.bins.helm)}':"$PATH"`,
    '',
  ];
  writeFileSync(localEnvPath, lines.join('\n'));
}

/** Reads `.keystile/local.env` back into a map (for tests that run against an already started system). */
export function readLocalEnv(): Map<string, string> {
  const env = new Map<string, string>();
  if (!existsSync(localEnvPath)) return env;
  for (const line of readFileSync(localEnvPath, 'utf8').split('\n')) {
    const m = /^export (\w+)='([^']*)'/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) env.set(m[1], m[2]);
  }
  return env;
}
