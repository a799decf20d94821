/**
 * The key holder's own view (issue 7, item 4): a client asks, with its key, for the key's plan, usage and
 * remaining quota, and the question costs nothing (no token, no quota). It is served on a port of its
 * own, because an ext_authz answer of 200 means "allow", not "here is a document": Envoy routes the
 * public path (`/keystile/usage`) to this port with ext_authz disabled for that route, rewritten to
 * `GET /v1/usage/<namespace>/<api>/<stage>` of the listener's stage, so the stage is Envoy's
 * configuration, never the client's choice (ADR 0002).
 *
 * The key is identified exactly as a check identifies it ({@link identify}: header, bearer, query or a
 * key-pair signature; rotation, enabled, expiry, bound on this stage), and a refusal is the same answer a
 * check gives (403 `{"message":"Forbidden"}`, or the plan's configured answer), so this port tells a
 * stranger nothing a check port would not. Then the quota counter is read (`store.readQuotas`), never
 * consumed. Nothing here answers 5xx for bad input: an unusable path is a 404, a wrong method a 405.
 */
import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { parseStageKey, stageKey } from '../../../contract/src/identity.ts';
import { type SelfServiceAnswer, SELF_SERVICE_PATH } from '../../../contract/src/usage-api.ts';
import { type CatalogView, subjectOf } from '../catalog/catalog.ts';
import { type Decision, deny } from '../decision/answers.ts';
import type { Clock } from '../decision/clock.ts';
import {
  type CheckRequest,
  type DecideContext,
  type Identified,
  identify,
  isDecision,
} from '../decision/decide.ts';
import { Reason } from '../errors.ts';
import type { CounterStore, QuotaCount } from '../store/store.ts';
import { acceptEveryRequest, requestHeader, writeAnswer } from './http-check.ts';

/** The header Envoy sets to the client's path when a route rewrites it (a client's own value is replaced). */
export const ORIGINAL_PATH_HEADER = 'x-envoy-original-path';

/** What the self-service port needs. */
export interface SelfServiceOptions {
  readonly catalog: CatalogView;
  readonly store: Pick<CounterStore, 'readQuotas'>;
  readonly clock: Clock;
  /** The checks' context: the same key sources, signature settings and answers. */
  readonly context: DecideContext;
  readonly logger: Logger;
  /** Node's limit on a request's headers, bytes (default 64 KiB, as the check port). */
  readonly maxHeaderSize?: number;
}

/** The stage a self-service path names (`/v1/usage/<namespace>/<api>/<stage>`), or undefined. */
export function selfServiceStage(params: {
  readonly namespace?: string;
  readonly api?: string;
  readonly stage?: string;
}): string | undefined {
  const id = parseStageKey(`${params.namespace ?? ''}/${params.api ?? ''}/${params.stage ?? ''}`);
  return id === undefined ? undefined : stageKey(id);
}

/** The view of an identified key, from its quota counter (undefined: nothing counted yet). */
export function selfServiceAnswer(id: Identified, count: QuotaCount | undefined): SelfServiceAnswer {
  const { plan, key, window } = id;
  const answer: SelfServiceAnswer = {
    keyId: key.id,
    apiStage: id.stage.key,
    plan: plan.name,
    ...(key.customer !== undefined && { customer: key.customer }),
    // What it is counted by: a key without a customer on a plan counting by Customer counts alone.
    countBy: subjectOf(plan, key).kind === 'customer' ? 'Customer' : 'Key',
    ...(plan.throttle !== undefined && {
      throttle: { rate: plan.throttle.rate, burst: plan.throttle.burst },
    }),
  };
  if (plan.quota !== undefined && window !== undefined) {
    const used = Math.max(0, count?.used ?? 0);
    const granted = count?.granted ?? 0;
    answer.quota = {
      limit: plan.quota.limit,
      period: plan.quota.spec.period,
      periodId: window.id,
      periodStart: new Date(window.start).toISOString(),
      periodEnd: new Date(window.end).toISOString(),
      used,
      granted,
      remaining: Math.max(0, plan.quota.limit + granted - used),
    };
  }
  return answer;
}

/** How the self-service port writes its answers. */
interface AnswerWriters {
  readonly sendRaw: (
    reply: FastifyReply,
    status: number,
    headers: Readonly<Record<string, string>>,
    body: string,
  ) => FastifyReply;
  readonly sendDecision: (reply: FastifyReply, decision: Decision) => FastifyReply;
  readonly sendMessage: (
    reply: FastifyReply,
    status: number,
    message: string,
    headers?: Readonly<Record<string, string>>,
  ) => FastifyReply;
}

/**
 * Answers written on the raw response as the HTTP check writes them (`writeAnswer` of http-check.ts), so
 * that a refusal here is byte for byte the refusal a check gives: status, headers (no charset added) and
 * body. A header Node refuses is answered with a plain 503 and logged, never thrown into Fastify (the
 * reply is hijacked: Fastify could not answer it).
 */
function answerWriters(logger: Logger): AnswerWriters {
  const sendRaw: AnswerWriters['sendRaw'] = (reply, status, headers, body) => {
    const list: string[] = [];
    for (const name in headers) list.push(name, headers[name] ?? '');
    list.push('cache-control', 'no-store', 'content-length', String(Buffer.byteLength(body)));
    reply.hijack();
    try {
      writeAnswer(reply.raw, status, list, body);
    } catch (err) {
      logger.error(
        { status, err: err instanceof Error ? err.message : String(err) },
        'self-service: an answer could not be sent; answered 503',
      );
    }
    return reply;
  };
  return {
    sendRaw,
    sendDecision: (reply, decision) => sendRaw(reply, decision.status, decision.clientHeaders, decision.body),
    sendMessage: (reply, status, message, headers = {}) =>
      sendRaw(reply, status, { ...headers, 'content-type': 'application/json' }, JSON.stringify({ message })),
  };
}

/** The request's facts, as a check sees them: the stage from the path, the client's own path and headers. */
function facts(request: FastifyRequest, stage: string): CheckRequest {
  const headers = request.headers;
  const header = (name: string): string | undefined => requestHeader(headers, name);
  // The path the client sent (and signed, with @path): Envoy keeps it here when its route rewrote it.
  const original = header(ORIGINAL_PATH_HEADER);
  return { stage, method: request.method, path: original ?? request.url, header };
}

/** Builds the self-service server; the caller listens. */
export function buildSelfServiceApp(opts: SelfServiceOptions): FastifyInstance {
  const options = opts.context.options;
  const { sendRaw, sendDecision, sendMessage } = answerWriters(opts.logger);
  const app = Fastify({
    logger: false,
    // As the check port: longer than Envoy's idle timeout, so Envoy closes idle connections first.
    keepAliveTimeout: 75_000,
    requestIdHeader: false,
    bodyLimit: 1 << 16,
    http: { maxHeaderSize: opts.maxHeaderSize ?? 64 * 1024 },
    // Never the framework's message: it may quote the URL, with a key in its query.
    frameworkErrors: (_err, _request, reply) => {
      void sendMessage(reply, 400, 'Bad Request');
    },
  });
  // Every method Node parses is routed (a 405 below), as on the check port: none falls to a 404. A body
  // is never read (GET); whatever comes is drained.
  acceptEveryRequest(app);

  const view = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const stage = selfServiceStage(request.params as Record<string, string>);
    if (stage === undefined) return sendMessage(reply, 404, 'Not Found');
    const catalog = opts.catalog.current();
    if (catalog === undefined) {
      // Fail closed, also with --fail-open: there is nothing to show.
      return sendDecision(reply, deny(Reason.NoConfig, {}, options, { 'retry-after': '1' }));
    }
    const now = opts.clock.now();
    let identified: Decision | Identified;
    try {
      identified = identify(catalog, facts(request, stage), now, opts.context);
    } catch (err) {
      opts.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'self-service failed');
      return sendDecision(reply, deny(Reason.InternalError, {}, options, { 'retry-after': '1' }));
    }
    if (isDecision(identified)) {
      opts.logger.debug(
        { stage, plan: identified.plan, keyId: identified.keyId, reason: identified.reason },
        'self-service refused',
      );
      if (identified.allowed) {
        return sendDecision(reply, deny(Reason.InternalError, {}, options, { 'retry-after': '1' }));
      }
      return sendDecision(reply, identified);
    }
    const id = identified;
    let count: QuotaCount | undefined;
    const quotaKey = id.consume.quotaKey;
    if (quotaKey !== undefined) {
      try {
        [count] = await opts.store.readQuotas([quotaKey]);
      } catch (err) {
        opts.logger.warn(
          { stage, keyId: id.key.id, err: err instanceof Error ? err.message : String(err) },
          'self-service: the counter store could not be read',
        );
        return sendDecision(
          reply,
          deny(Reason.InternalError, { stage, plan: id.plan, keyId: id.key.id }, options, {
            'retry-after': '1',
          }),
        );
      }
    }
    return sendRaw(
      reply,
      200,
      { 'content-type': 'application/json' },
      JSON.stringify(selfServiceAnswer(id, count)),
    );
  };

  const path = `${SELF_SERVICE_PATH}/:namespace/:api/:stage`;
  app.get(path, view);
  app.route({
    // Every other method (POST, TRACE, PROPFIND...): 405 with Allow, as documented, never a 404.
    method: app.supportedMethods.filter((m) => m !== 'GET' && m !== 'HEAD'),
    url: path,
    handler: (_request, reply) => sendMessage(reply, 405, 'Method Not Allowed', { allow: 'GET, HEAD' }),
  });
  app.setNotFoundHandler((_request, reply) => sendMessage(reply, 404, 'Not Found'));
  app.setErrorHandler((err, _request, reply) => {
    const status = (err as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // The status's own words, never the framework's message: that may quote the URL, with a key in
      // its query.
      return sendMessage(reply, status, STATUS_CODES[status] ?? 'Bad Request');
    }
    opts.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'self-service failed');
    return sendDecision(reply, deny(Reason.InternalError, {}, options, { 'retry-after': '1' }));
  });
  return app;
}
