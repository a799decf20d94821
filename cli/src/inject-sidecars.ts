/**
 * The containers and volumes `keystile inject` adds to a pod (pure): an Envoy in front of the app, asking
 * an enforcer beside it before every request. The Envoy bootstrap comes from `envoyWithEnforcer`, the one
 * source the shipped Envoy configs and the end-to-end suites use; the enforcer's RBAC from `enforcerRbac`.
 *
 * The namespace is never written in: both containers read it from the downward API (`POD_NAMESPACE`) and
 * the kubelet expands `$(POD_NAMESPACE)` in their arguments, so one injected manifest works in whichever
 * namespace it is applied to, and the stage Envoy names (ADR 0002) is always the pod's own.
 */
import { stringify } from 'yaml';
import {
  DEFAULT_ALLOWED_HEADERS,
  type EnvoyConfig,
  envoyWithEnforcer,
  staticCluster,
} from '../../enforcer/envoy/bootstrap.ts';
import { parseKeySources } from '../../enforcer/src/config.ts';
import { objectNames, DATA_KEYS } from '../../contract/src/identity.ts';
import packageJson from '../../package.json' with { type: 'json' };

/** Names of what inject adds; anything so named is replaced when a workload is injected again. */
export const INJECTED = {
  envoy: 'keystile-envoy',
  enforcer: 'keystile-enforcer',
  /** Volumes: counters, the mounted config, the enforcer's own token. */
  volumePrefix: 'keystile-',
  countersVolume: 'keystile-counters',
  configVolume: 'keystile-config',
  tokenVolume: 'keystile-token',
  /** Container port names (at most 15 characters). */
  proxyPortName: 'keystile-proxy',
  readyPortName: 'keystile-ready',
  adminPortName: 'keystile-admin',
} as const;

/** The Keystile version inject writes into image tags: package.json's. */
export const KEYSTILE_VERSION: string = packageJson.version;

/** The default images: the same the chart uses. */
export const DEFAULT_IMAGES = {
  enforcer: `ghcr.io/keystile/enforcer:${KEYSTILE_VERSION}`,
  envoy: 'envoyproxy/envoy:v1.40.0',
} as const;

/** The ports the sidecars use inside the pod. */
export interface SidecarPorts {
  /** Envoy's listener, the one the Service targets (all addresses of the pod). */
  readonly proxy: number;
  /** Envoy's admin (loopback only: it can stop Envoy). */
  readonly proxyAdmin: number;
  /** Envoy's readiness listener: only `/ready`, forwarded to the admin, for the kubelet's probe. */
  readonly proxyReady: number;
  /** The enforcer's check port (loopback: only the Envoy beside it asks): HTTP or gRPC, per the check. */
  readonly check: number;
  /** The enforcer's /healthz, /readyz and /metrics. */
  readonly enforcerAdmin: number;
}

/** The default ports; the check port is the enforcer's own default for the check: 9191 HTTP, 9192 gRPC. */
export const DEFAULT_PORTS: SidecarPorts & { readonly grpcCheck: number } = Object.freeze({
  proxy: 15080,
  proxyAdmin: 15000,
  proxyReady: 15021,
  check: 9191,
  grpcCheck: 9192,
  enforcerAdmin: 9190,
});

/** How the sidecars are built. */
export interface SidecarOptions {
  /** `watch`: the enforcer watches its stage's objects by name (changes in under a second). `mounted`: they are mounted as a projected volume (the kubelet's sync period, about a minute). */
  readonly mode: 'watch' | 'mounted';
  /** HTTP or gRPC ext_authz between Envoy and the enforcer. */
  readonly check: 'http' | 'grpc';
  readonly enforcerImage: string;
  readonly envoyImage: string;
  readonly ports: SidecarPorts;
  /** Mounted mode: how many shards the projected volume mounts (a stage of more is refused as incomplete). */
  readonly mountedShards: number;
  /** The enforcer's --key-source (default: its own, `header:x-api-key`); header names are also allowed through Envoy. */
  readonly keySource?: string | undefined;
  /** More enforcer flags, as given. */
  readonly enforcerArgs: readonly string[];
  /** Enforcer environment variables from Secrets (a Redis password, say): never a value in the pod spec. */
  readonly enforcerSecretEnv?: readonly SecretEnv[];
}

/** An environment variable of the enforcer read from a Secret's key. */
export interface SecretEnv {
  readonly name: string;
  readonly secret: string;
  readonly key: string;
}

/** The API stage one workload serves: `api` and `stage` (the namespace is the pod's). */
export interface WorkloadStage {
  readonly api: string;
  readonly stage: string;
}

/** What the sidecars add to a pod spec. */
export interface Sidecars {
  readonly containers: readonly Record<string, unknown>[];
  readonly volumes: readonly Record<string, unknown>[];
}

const NAMESPACE_VAR = '$(POD_NAMESPACE)';
const COUNTERS_DIR = '/var/run/keystile';
const CONFIG_DIR = '/etc/keystile';
const TOKEN_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/**
 * On a pod's termination every container gets SIGTERM at once, and Envoy stops at once: the requests
 * still routed to the pod while its endpoints are removed would be refused. Envoy's preStop keeps it
 * serving this long first (Kubernetes' sleep action, GA in 1.32), and the enforcer's this much longer,
 * so that no check Envoy sends loses its server. Both are within the default 30 s grace period.
 */
export const SIDECAR_DRAIN = Object.freeze({ envoySeconds: 5, enforcerSeconds: 8 });
const ENVOY_UID = 101; // the envoy user of the envoyproxy/envoy image
const ENFORCER_UID = 65532; // the nonroot user of the enforcer image (enforcer/Dockerfile)

const podNamespaceEnv = {
  name: 'POD_NAMESPACE',
  valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } },
};

/** Non-root, read-only root filesystem, no privilege escalation, no capabilities, the runtime's seccomp profile. */
export function restrictedSecurityContext(uid: number): Record<string, unknown> {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** The request headers the enforcer reads: the defaults and any header named by --key-source. */
function extraAllowedHeaders(keySource: string | undefined): string[] {
  if (keySource === undefined) return [];
  return parseKeySources(keySource)
    .flatMap((s) => (s.kind === 'header' ? [s.name] : []))
    .filter((h) => !DEFAULT_ALLOWED_HEADERS.includes(h));
}

/**
 * The Envoy bootstrap of the sidecar: `envoyWithEnforcer` listening on all addresses of the pod, in front
 * of the app on loopback, plus a listener that serves only `/ready` (forwarded to the loopback admin) for
 * the kubelet's readiness probe.
 */
export function sidecarBootstrap(
  stage: WorkloadStage,
  appPort: number,
  o: Pick<SidecarOptions, 'check' | 'ports' | 'keySource'>,
): EnvoyConfig {
  const base = envoyWithEnforcer({
    mode: o.check,
    listenPort: o.ports.proxy,
    listenHost: '0.0.0.0',
    stage: `${NAMESPACE_VAR}/${stage.api}/${stage.stage}`,
    adminPort: o.ports.proxyAdmin,
    upstreamPort: appPort,
    ...(o.check === 'grpc' ? { enforcerGrpcPort: o.ports.check } : { enforcerHttpPort: o.ports.check }),
    allowedHeaders: extraAllowedHeaders(o.keySource),
  });
  const resources = base['static_resources'] as { listeners: EnvoyConfig[]; clusters: EnvoyConfig[] };
  const ready: EnvoyConfig = {
    name: 'keystile_ready',
    address: { socket_address: { address: '0.0.0.0', port_value: o.ports.proxyReady } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type':
                'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: 'keystile_ready',
              route_config: {
                name: 'ready',
                virtual_hosts: [
                  {
                    name: 'ready',
                    domains: ['*'],
                    // Only /ready: the admin's other endpoints (config dumps, /quitquitquit) stay on loopback.
                    routes: [{ match: { path: '/ready' }, route: { cluster: 'keystile_envoy_admin' } }],
                  },
                ],
              },
              http_filters: [
                {
                  name: 'envoy.filters.http.router',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                  },
                },
              ],
            },
          },
        ],
      },
    ],
  };
  return {
    ...base,
    static_resources: {
      listeners: [...resources.listeners, ready],
      clusters: [
        ...resources.clusters,
        staticCluster('keystile_envoy_admin', '127.0.0.1', o.ports.proxyAdmin),
      ],
    },
  };
}

/** The enforcer's arguments (flags as `--name=value`, one argument each). */
export function enforcerArgs(stage: WorkloadStage, o: SidecarOptions): string[] {
  const source =
    o.mode === 'watch'
      ? [`--watch-namespace=${NAMESPACE_VAR}`, `--stages=${stage.api}/${stage.stage}`]
      : [`--config-dir=${CONFIG_DIR}`];
  const ports =
    o.check === 'grpc'
      ? ['--http-port=off', `--grpc-port=${o.ports.check}`]
      : [`--http-port=${o.ports.check}`, '--grpc-port=off'];
  return [
    ...source,
    ...ports,
    `--admin-port=${o.ports.enforcerAdmin}`,
    `--counters-file=${COUNTERS_DIR}/counters.ndjson`,
    ...(o.keySource === undefined ? [] : [`--key-source=${o.keySource}`]),
    ...o.enforcerArgs,
  ];
}

/**
 * The Envoy and enforcer containers and their volumes for one workload. `ownToken`: mount a token of the
 * pod's ServiceAccount into the enforcer alone (for pods with `automountServiceAccountToken: false`).
 */
export function sidecars(
  stage: WorkloadStage,
  appPort: number,
  o: SidecarOptions,
  ownToken: boolean,
): Sidecars {
  const envoy = {
    name: INJECTED.envoy,
    image: o.envoyImage,
    command: ['envoy'],
    args: [
      '--config-yaml',
      stringify(sidecarBootstrap(stage, appPort, o), { lineWidth: 0, aliasDuplicateObjects: false }),
      '--disable-hot-restart',
      '--concurrency',
      '2',
      '--log-level',
      'warn',
    ],
    env: [podNamespaceEnv],
    ports: [
      { name: INJECTED.proxyPortName, containerPort: o.ports.proxy, protocol: 'TCP' },
      { name: INJECTED.readyPortName, containerPort: o.ports.proxyReady, protocol: 'TCP' },
    ],
    readinessProbe: {
      httpGet: { path: '/ready', port: INJECTED.readyPortName },
      periodSeconds: 5,
      failureThreshold: 3,
    },
    livenessProbe: { tcpSocket: { port: INJECTED.readyPortName }, periodSeconds: 10, failureThreshold: 3 },
    resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
    securityContext: restrictedSecurityContext(ENVOY_UID),
    lifecycle: { preStop: { sleep: { seconds: SIDECAR_DRAIN.envoySeconds } } },
  };
  const mounts: Record<string, unknown>[] = [{ name: INJECTED.countersVolume, mountPath: COUNTERS_DIR }];
  if (o.mode === 'mounted')
    mounts.push({ name: INJECTED.configVolume, mountPath: CONFIG_DIR, readOnly: true });
  if (o.mode === 'watch' && ownToken)
    mounts.push({ name: INJECTED.tokenVolume, mountPath: TOKEN_DIR, readOnly: true });
  const env = [
    // Watch mode reads its namespace from here; mounted mode needs none.
    ...(o.mode === 'watch' ? [podNamespaceEnv] : []),
    ...(o.enforcerSecretEnv ?? []).map((e) => ({
      name: e.name,
      valueFrom: { secretKeyRef: { name: e.secret, key: e.key } },
    })),
  ];
  const enforcer = {
    name: INJECTED.enforcer,
    image: o.enforcerImage,
    args: enforcerArgs(stage, o),
    ...(env.length > 0 && { env }),
    ports: [{ name: INJECTED.adminPortName, containerPort: o.ports.enforcerAdmin, protocol: 'TCP' }],
    readinessProbe: {
      httpGet: { path: '/readyz', port: INJECTED.adminPortName },
      periodSeconds: 5,
      failureThreshold: 3,
    },
    livenessProbe: {
      httpGet: { path: '/healthz', port: INJECTED.adminPortName },
      periodSeconds: 10,
      failureThreshold: 3,
    },
    resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '512Mi' } },
    securityContext: restrictedSecurityContext(ENFORCER_UID),
    lifecycle: { preStop: { sleep: { seconds: SIDECAR_DRAIN.enforcerSeconds } } },
    volumeMounts: mounts,
  };
  const volumes: Record<string, unknown>[] = [
    { name: INJECTED.countersVolume, emptyDir: { sizeLimit: '64Mi' } },
  ];
  if (o.mode === 'mounted') volumes.push(mountedConfigVolume(stage, o.mountedShards));
  if (o.mode === 'watch' && ownToken) volumes.push(tokenVolume());
  return { containers: [envoy, enforcer], volumes };
}

/**
 * Mounted mode: one projected volume with the stage's index and its first `shards` keys and secrets
 * shards, each at `<object name>/<data key>` (the layout `--config-dir` reads), all optional so the pod
 * starts before the operator has rendered. One volume, so the kubelet swaps them together.
 */
function mountedConfigVolume(stage: WorkloadStage, shards: number): Record<string, unknown> {
  // The namespace does not enter the object names: they are the pod's namespace's.
  const id = { namespace: '', api: stage.api, stage: stage.stage };
  const item = (name: string, key: string): Record<string, unknown> => ({
    name,
    optional: true,
    items: [{ key, path: `${name}/${key}` }],
  });
  const sources: Record<string, unknown>[] = [{ configMap: item(objectNames.index(id), DATA_KEYS.index) }];
  for (let i = 0; i < shards; i++) {
    sources.push({ configMap: item(objectNames.keys(id, i), DATA_KEYS.keys) });
    sources.push({ secret: item(objectNames.secrets(id, i), DATA_KEYS.secrets) });
  }
  return { name: INJECTED.configVolume, projected: { sources } };
}

/** The pod's ServiceAccount token, CA and namespace, for the enforcer alone (as the kubelet would mount them). */
function tokenVolume(): Record<string, unknown> {
  return {
    name: INJECTED.tokenVolume,
    projected: {
      sources: [
        { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  };
}
