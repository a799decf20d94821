/**
 * The check server (HTTP ext_authz) as a Fastify instance: `buildApp(opts)` returns it, `main.ts` alone
 * listens, tests call `app.inject()` (Fastify's testing guide).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Checker } from './transport/checker.ts';
import { checkFrameworkErrors, clientErrorHandler, registerHttpCheck } from './transport/http-check.ts';

/** What the check server needs. */
export interface AppOptions {
  /** Decides every check. */
  readonly checker: Checker;
  /**
   * Node's limit on a request's headers, bytes (default 64 KiB: Envoy's default limit is 60 KiB, so a
   * request Envoy accepted is never refused by the parser).
   */
  readonly maxHeaderSize?: number;
}

/** Builds the HTTP check server. Nothing listens until the caller calls `listen`. */
export function buildApp(opts: AppOptions): FastifyInstance {
  const app = Fastify({
    logger: false,
    // Longer than Envoy's idle timeout for the enforcer cluster (30 s in the shipped configs), so the
    // enforcer never closes a connection Envoy is about to reuse (which Envoy would answer with 503).
    keepAliveTimeout: 75_000,
    requestIdHeader: false,
    return503OnClosing: false,
    bodyLimit: 1 << 20,
    http: { maxHeaderSize: opts.maxHeaderSize ?? 64 * 1024 },
    clientErrorHandler: clientErrorHandler(opts.checker),
    // A path the router cannot decode (`/files/%FF`) is decided as any other: the check reads the raw URL.
    frameworkErrors: checkFrameworkErrors(opts.checker),
  });
  registerHttpCheck(app, opts.checker);
  return app;
}
