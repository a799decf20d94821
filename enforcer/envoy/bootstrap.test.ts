import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exampleRole } from '../deploy/example.ts';
import { enforcerRbac } from '../src/kube/rbac.ts';
import { envoyWithEnforcer } from './bootstrap.ts';
import { examples, exampleText } from './generate.ts';

type Json = Record<string, unknown>;
const at = (o: unknown, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>((v, k) => (v as Record<string | number, unknown> | undefined)?.[k], o);

function authz(config: Json, listener = 0): Json {
  const filters = at(
    config,
    'static_resources',
    'listeners',
    listener,
    'filter_chains',
    0,
    'filters',
    0,
    'typed_config',
    'http_filters',
  ) as Json[];
  return filters[0]?.['typed_config'] as Json;
}

describe('the Envoy bootstraps', () => {
  const common = { adminPort: 1, upstreamPort: 2, enforcerHttpPort: 3, enforcerGrpcPort: 4 };

  it('never let a failing enforcer be a bypass: failure_mode_allow off, 503 on error, a timeout', () => {
    for (const mode of ['http', 'grpc'] as const) {
      const f = authz(envoyWithEnforcer({ ...common, mode, listenPort: 5, stage: 'shop/orders/prod' }));
      expect(f['failure_mode_allow']).toBe(false);
      expect(f['status_on_error']).toEqual({ code: 'ServiceUnavailable' });
      expect(
        at(
          f,
          mode === 'http' ? 'http_service' : 'grpc_service',
          ...(mode === 'http' ? ['server_uri', 'timeout'] : ['timeout']),
        ),
      ).toBe('0.5s');
    }
  });

  it('names the stage by configuration: a path prefix per HTTP listener, a context extension for gRPC', () => {
    const http = envoyWithEnforcer({
      ...common,
      mode: 'http',
      listeners: [
        { port: 5, stage: 'shop/orders/prod' },
        { port: 6, stage: 'shop/orders/beta' },
      ],
    });
    expect(at(authz(http, 0), 'http_service', 'path_prefix')).toBe('/keystile/shop/orders/prod');
    expect(at(authz(http, 1), 'http_service', 'path_prefix')).toBe('/keystile/shop/orders/beta');
    const grpc = envoyWithEnforcer({ ...common, mode: 'grpc', listenPort: 5, stage: 'shop/orders/prod' });
    const vhost = at(
      grpc,
      'static_resources',
      'listeners',
      0,
      'filter_chains',
      0,
      'filters',
      0,
      'typed_config',
      'route_config',
      'virtual_hosts',
      0,
    );
    expect(
      at(
        vhost,
        'typed_per_filter_config',
        'envoy.filters.http.ext_authz',
        'check_settings',
        'context_extensions',
      ),
    ).toEqual({
      'keystile.dev/api-stage': 'shop/orders/prod',
    });
  });

  it('sends the key and signature headers to the enforcer, and its answers to the right side', () => {
    const f = authz(
      envoyWithEnforcer({
        ...common,
        mode: 'http',
        listenPort: 5,
        stage: 'a/b/c',
        allowedHeaders: ['x-key'],
      }),
    );
    const allowed = (at(f, 'allowed_headers', 'patterns') as { exact: string }[]).map((p) => p.exact);
    expect(allowed).toEqual(
      expect.arrayContaining(['x-api-key', 'authorization', 'x-date', 'source', 'x-key']),
    );
    const response = at(f, 'http_service', 'authorization_response') as Json;
    expect(at(response, 'allowed_upstream_headers', 'patterns')).toEqual([{ prefix: 'x-keystile-' }]);
    expect(at(response, 'allowed_client_headers_on_success', 'patterns')).toEqual([
      { exact: 'ratelimit' },
      { exact: 'ratelimit-policy' },
    ]);
    expect(at(response, 'allowed_client_headers', 'patterns')).toEqual(
      expect.arrayContaining([{ exact: 'retry-after' }]),
    );
  });

  it("routes a key holder's own view to the self-service port, unchecked, rewritten to each listener's stage", () => {
    for (const mode of ['http', 'grpc'] as const) {
      const config = envoyWithEnforcer({
        ...common,
        mode,
        enforcerSelfServicePort: 7,
        listeners: [
          { port: 5, stage: 'shop/orders/prod' },
          { port: 6, stage: 'shop/orders/beta' },
        ],
      });
      for (const [i, stage] of ['shop/orders/prod', 'shop/orders/beta'].entries()) {
        const routes = at(
          config,
          'static_resources',
          'listeners',
          i,
          'filter_chains',
          0,
          'filters',
          0,
          'typed_config',
          'route_config',
          'virtual_hosts',
          0,
          'routes',
        ) as Json[];
        expect(routes[0]).toEqual({
          name: 'keystile_usage',
          match: { path: '/keystile/usage' },
          route: {
            cluster: 'keystile_enforcer_self_service',
            prefix_rewrite: `/v1/usage/${stage}`,
            timeout: '5s',
          },
          typed_per_filter_config: {
            'envoy.filters.http.ext_authz': {
              '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
              disabled: true,
            },
          },
        });
        // Every other path is checked, as before.
        expect(routes[1]).toEqual({ match: { prefix: '/' }, route: { cluster: 'upstream' } });
      }
      const clusters = at(config, 'static_resources', 'clusters') as Json[];
      expect(clusters.map((c) => c['name'])).toContain('keystile_enforcer_self_service');
    }
    // Without the port, no route and no cluster.
    const plain = envoyWithEnforcer({ ...common, mode: 'http', listenPort: 5, stage: 'shop/orders/prod' });
    expect(JSON.stringify(plain)).not.toContain('keystile_usage');
    expect(JSON.stringify(plain)).not.toContain('self_service');
  });

  it.each(examples())('ships $file, generated from bootstrap.ts', (e) => {
    expect(
      readFileSync(join(import.meta.dirname, e.file), 'utf8'),
      'run node enforcer/envoy/generate.ts',
    ).toBe(exampleText(e));
  });
});

describe('the watch-mode RBAC', () => {
  it('names every object a stage may have, and no other', () => {
    const [, role] = enforcerRbac({ namespace: 'shop', stages: [{ api: 'orders', stage: 'prod' }] });
    const rules = (role as { rules: { resources: string[]; resourceNames?: string[]; verbs: string[] }[] })
      .rules;
    for (const rule of rules) {
      expect(rule.resourceNames?.length).toBeGreaterThan(0);
      expect(rule.verbs).toEqual(['get', 'list', 'watch']);
    }
    const secrets = rules.find((r) => r.resources.includes('secrets'))!;
    expect(secrets.resourceNames).toHaveLength(256);
    expect(secrets.resourceNames!.every((n) => /^keystile-orders.prod.secrets-\d+$/.test(n))).toBe(true);
  });

  it('ships enforcer/deploy/role.yaml, generated', () => {
    const { file, text } = exampleRole();
    expect(readFileSync(file, 'utf8'), 'run node enforcer/deploy/example.ts').toBe(text);
  });
});
