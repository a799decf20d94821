/**
 * Envoy v3 bootstraps with the enforcer as external authorization, from one source: the example YAML
 * files beside this one are generated from these functions (`node enforcer/envoy/generate.ts`; a test
 * fails when they are stale), and the end-to-end suites, the benchmarks and the local system run
 * Envoy on what they return.
 *
 * What they get right (docs/enforcer.md, "Envoy"):
 * - the stage is named by configuration, never by the client (ADR 0002): HTTP ext_authz by a
 *   `path_prefix` per listener, gRPC by the route's `context_extensions`;
 * - only the headers the enforcer reads are sent to it (`allowed_headers`);
 * - its answers reach the right side: `x-keystile-*` to the upstream, the RateLimit fields and
 *   Retry-After to the client, on success and on denial;
 * - a broken or stopped enforcer is a 503, never a bypass: `failure_mode_allow: false`,
 *   `status_on_error: 503`, and a timeout;
 * - paths are normalised before the check, so route patterns see what the upstream will;
 * - with the enforcer's self-service port, a key holder's own view (`/keystile/usage`) is a normal
 *   route to that port with ext_authz disabled for it (an ext_authz 200 means "allow", not "here is a
 *   document"), rewritten to `/v1/usage/<namespace>/<api>/<stage>` of the listener's stage, so the
 *   client cannot choose the stage.
 */
import { SELF_SERVICE_PUBLIC_PATH, selfServicePath } from '../../contract/src/usage-api.ts';

/** An Envoy config object (the JSON form of the v3 protos). */
export type EnvoyConfig = Record<string, unknown>;

/** One listener and the API stage it serves. */
export interface StageListener {
  /** The port Envoy listens on, on loopback unless `listenHost` says otherwise. */
  readonly port: number;
  /** `<namespace>/<api>/<stage>` (ADR 0002). */
  readonly stage: string;
}

/** What {@link envoyWithEnforcer} builds. */
export interface EnvoyWithEnforcerOptions {
  /** HTTP ext_authz (the enforcer's HTTP port) or gRPC ext_authz (its gRPC port). Default 'http'. */
  readonly mode?: 'http' | 'grpc';
  /** One listener: its port... */
  readonly listenPort?: number;
  /** ...and its stage. */
  readonly stage?: string;
  /** Or several listeners, one per stage. */
  readonly listeners?: readonly StageListener[];
  /** Where the listeners bind; default 127.0.0.1. */
  readonly listenHost?: string;
  readonly adminPort: number;
  /** The API behind Envoy (loopback). */
  readonly upstreamPort: number;
  /** The enforcer's address; default 127.0.0.1. */
  readonly enforcerHost?: string;
  /** The enforcer's HTTP check port (mode 'http'). */
  readonly enforcerHttpPort?: number;
  /** The enforcer's gRPC check port (mode 'grpc'). */
  readonly enforcerGrpcPort?: number;
  /**
   * The enforcer's self-service port (`--self-service-port`): when given, every listener routes
   * {@link selfServicePublicPath} there, unchecked, rewritten to its stage's view.
   */
  readonly enforcerSelfServicePort?: number;
  /** The public path of the key holder's own view; default {@link SELF_SERVICE_PUBLIC_PATH}. */
  readonly selfServicePublicPath?: string;
  /** How long Envoy waits for a decision before answering 503; default '0.5s'. */
  readonly timeout?: string;
  /** Request headers the enforcer may read, besides {@link DEFAULT_ALLOWED_HEADERS}: a custom key header, headers clients sign. */
  readonly allowedHeaders?: readonly string[];
  /** Headers of a denial that reach the client, besides the defaults (plan-configured headers not named x-*). */
  readonly clientHeaders?: readonly string[];
}

/** The request headers the enforcer reads by default: keys, signatures and what signatures usually sign. */
export const DEFAULT_ALLOWED_HEADERS: readonly string[] = Object.freeze([
  'x-api-key',
  'authorization',
  'x-date',
  'date',
  'source',
  'content-md5',
  'content-type',
]);

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const EXT_AUTHZ = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
const EXT_AUTHZ_PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const HTTP_OPTIONS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

const exact = (names: readonly string[]): { exact: string }[] => names.map((n) => ({ exact: n }));

/** A static cluster of one endpoint; `http2` for gRPC. Idle connections close after 30 s. */
export function staticCluster(name: string, host: string, port: number, http2 = false): EnvoyConfig {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': HTTP_OPTIONS,
        // Shorter than the enforcer's keep-alive (75 s): Envoy, not the enforcer, closes idle connections.
        common_http_protocol_options: { idle_timeout: '30s' },
        explicit_http_config: http2 ? { http2_protocol_options: {} } : { http_protocol_options: {} },
      },
    },
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }],
        },
      ],
    },
  };
}

/** The ext_authz filter for one listener. */
function extAuthzFilter(o: EnvoyWithEnforcerOptions, stage: string): EnvoyConfig {
  const mode = o.mode ?? 'http';
  const host = o.enforcerHost ?? '127.0.0.1';
  const timeout = o.timeout ?? '0.5s';
  const common = {
    '@type': EXT_AUTHZ,
    transport_api_version: 'V3',
    // Never a bypass: an enforcer that fails or does not answer in time is a 503.
    failure_mode_allow: false,
    status_on_error: { code: 'ServiceUnavailable' },
    allowed_headers: { patterns: exact([...DEFAULT_ALLOWED_HEADERS, ...(o.allowedHeaders ?? [])]) },
  };
  if (mode === 'grpc') {
    if (o.enforcerGrpcPort === undefined) throw new Error('mode grpc needs enforcerGrpcPort');
    return {
      name: 'envoy.filters.http.ext_authz',
      typed_config: {
        ...common,
        grpc_service: { envoy_grpc: { cluster_name: 'keystile_enforcer_grpc' }, timeout },
      },
    };
  }
  if (o.enforcerHttpPort === undefined) throw new Error('mode http needs enforcerHttpPort');
  return {
    name: 'envoy.filters.http.ext_authz',
    typed_config: {
      ...common,
      http_service: {
        server_uri: {
          uri: `http://${host}:${o.enforcerHttpPort}`,
          cluster: 'keystile_enforcer_http',
          timeout,
        },
        // ADR 0002: the stage, named by this listener's configuration; the client's path follows it.
        path_prefix: `/keystile/${stage}`,
        authorization_response: {
          allowed_upstream_headers: { patterns: [{ prefix: 'x-keystile-' }] },
          allowed_client_headers: {
            patterns: [
              ...exact([
                'content-type',
                'retry-after',
                'ratelimit',
                'ratelimit-policy',
                ...(o.clientHeaders ?? []),
              ]),
              // Headers a plan's configured answers add: x-* reach the client.
              { prefix: 'x-' },
            ],
          },
          allowed_client_headers_on_success: { patterns: exact(['ratelimit', 'ratelimit-policy']) },
        },
      },
    },
  };
}

/** The cluster of the enforcer's self-service port. */
const SELF_SERVICE_CLUSTER = 'keystile_enforcer_self_service';

/**
 * The route of a key holder's own view: the exact public path (the query aside) to the self-service
 * port, rewritten to the listener's stage, with ext_authz disabled on it alone. Asking costs no quota.
 */
function selfServiceRoute(o: EnvoyWithEnforcerOptions, stage: string): EnvoyConfig {
  return {
    name: 'keystile_usage',
    match: { path: o.selfServicePublicPath ?? SELF_SERVICE_PUBLIC_PATH },
    route: { cluster: SELF_SERVICE_CLUSTER, prefix_rewrite: selfServicePath(stage), timeout: '5s' },
    typed_per_filter_config: {
      'envoy.filters.http.ext_authz': { '@type': EXT_AUTHZ_PER_ROUTE, disabled: true },
    },
  };
}

/** A listener whose every request is checked by the enforcer for `stage`, then routed to the upstream. */
function listener(o: EnvoyWithEnforcerOptions, l: StageListener, withAuthz: boolean): EnvoyConfig {
  const virtualHost: EnvoyConfig = {
    name: 'api',
    domains: ['*'],
    routes: [
      ...(withAuthz && o.enforcerSelfServicePort !== undefined ? [selfServiceRoute(o, l.stage)] : []),
      { match: { prefix: '/' }, route: { cluster: 'upstream' } },
    ],
  };
  if (withAuthz && (o.mode ?? 'http') === 'grpc') {
    // ADR 0002: context extensions are configuration; a client cannot set them.
    virtualHost['typed_per_filter_config'] = {
      'envoy.filters.http.ext_authz': {
        '@type': EXT_AUTHZ_PER_ROUTE,
        check_settings: { context_extensions: { 'keystile.dev/api-stage': l.stage } },
      },
    };
  }
  return {
    name: `stage_${l.stage.replaceAll('/', '_')}`,
    address: { socket_address: { address: o.listenHost ?? '127.0.0.1', port_value: l.port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: 'ingress',
              // Route patterns and the enforcer see the path the upstream will get.
              normalize_path: true,
              merge_slashes: true,
              route_config: { name: 'api', virtual_hosts: [virtualHost] },
              http_filters: [
                ...(withAuthz ? [extAuthzFilter(o, l.stage)] : []),
                { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } },
              ],
            },
          },
        ],
      },
    ],
  };
}

function listenersOf(o: EnvoyWithEnforcerOptions): readonly StageListener[] {
  if (o.listeners && o.listeners.length > 0) return o.listeners;
  if (o.listenPort === undefined || o.stage === undefined) {
    throw new Error('give listenPort and stage, or listeners');
  }
  return [{ port: o.listenPort, stage: o.stage }];
}

/**
 * An Envoy bootstrap: a listener per stage, each request checked by the enforcer (HTTP or gRPC
 * ext_authz) before it is routed to the upstream.
 */
export function envoyWithEnforcer(o: EnvoyWithEnforcerOptions): EnvoyConfig {
  const mode = o.mode ?? 'http';
  const host = o.enforcerHost ?? '127.0.0.1';
  const enforcer =
    mode === 'grpc'
      ? staticCluster('keystile_enforcer_grpc', host, o.enforcerGrpcPort ?? 0, true)
      : staticCluster('keystile_enforcer_http', host, o.enforcerHttpPort ?? 0);
  return {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: o.adminPort } } },
    static_resources: {
      listeners: listenersOf(o).map((l) => listener(o, l, true)),
      clusters: [
        staticCluster('upstream', '127.0.0.1', o.upstreamPort),
        enforcer,
        ...(o.enforcerSelfServicePort === undefined
          ? []
          : [staticCluster(SELF_SERVICE_CLUSTER, host, o.enforcerSelfServicePort)]),
      ],
    },
  };
}

/** The same Envoy without the check: the baseline the benchmarks compare against. */
export function envoyWithoutEnforcer(o: {
  readonly listenPort: number;
  readonly adminPort: number;
  readonly upstreamPort: number;
}): EnvoyConfig {
  return {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: o.adminPort } } },
    static_resources: {
      listeners: [
        listener(
          { adminPort: o.adminPort, upstreamPort: o.upstreamPort },
          { port: o.listenPort, stage: 'none/none/none' },
          false,
        ),
      ],
      clusters: [staticCluster('upstream', '127.0.0.1', o.upstreamPort)],
    },
  };
}
