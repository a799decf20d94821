/**
 * The admin port, apart from the check ports: `/healthz` (the process answers), `/readyz` (ready only
 * once a config is loaded: before that every check is answered 503), `/metrics` (Prometheus), and the
 * usage API under `/v1/usage/` (`usage/admin-usage.ts`) when given its options.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { CatalogView } from '../catalog/catalog.ts';
import { registerUsageApi, type UsageApiOptions } from '../usage/admin-usage.ts';
import type { EnforcerMetrics } from './metrics.ts';

/** What the admin server reports on. */
export interface AdminOptions {
  readonly catalog: CatalogView;
  readonly metrics: EnforcerMetrics;
  /** The usage API's sources; without them the admin port has no /v1/usage/ routes. */
  readonly usage?: UsageApiOptions;
}

/** Builds the admin server; the caller listens. */
export function buildAdminApp(opts: AdminOptions): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/healthz', (_request, reply) => reply.send({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const catalog = opts.catalog.current();
    if (catalog === undefined) return reply.code(503).send({ status: 'no config loaded yet' });
    return {
      status: 'ready',
      generation: catalog.generation,
      stages: catalog.stages.size,
      keys: catalog.keyCount,
    };
  });
  app.get('/metrics', async (_request, reply) => {
    const text = await opts.metrics.registry.metrics();
    return reply.type(opts.metrics.registry.contentType).send(text);
  });
  if (opts.usage !== undefined) registerUsageApi(app, opts.usage);
  return app;
}
