/**
 * HTTP ext_authz: every request the check port receives, whatever its method and path, is answered
 * with a decision, never with a framework 404 or 400. The stage comes from the path prefix Envoy's
 * listener sets (ADR 0002); headers are the ones Envoy's `allowed_headers` lets through.
 *
 * On allow: 200 with the upstream headers (Envoy's `allowed_upstream_headers: x-keystile-*`), the
 * RateLimit fields (`allowed_client_headers_on_success`), and `x-envoy-auth-headers-to-remove` naming
 * the request headers Envoy must drop (the key's header; the four upstream header names it does not set).
 * On denial: the status, body and client headers of the answer.
 */
import { METHODS, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Decision } from '../decision/answers.ts';
import type { CheckRequest } from '../decision/decide.ts';
import type { Checker } from './checker.ts';
import { splitCheckPath } from './check-request.ts';

/** The header Envoy's HTTP ext_authz reads the request headers to remove from. */
export const HEADERS_TO_REMOVE = 'x-envoy-auth-headers-to-remove';

/**
 * Writes a decision as the HTTP check's response. The hot path writes the status and headers in one
 * `writeHead` on the raw response (Fastify's reply would process each header on its own: a few
 * microseconds a check); the reply is then marked hijacked so Fastify does not answer again. Throws,
 * having answered a plain 503, when Node refuses a header ({@link writeAnswer}).
 */
export function sendDecision(reply: FastifyReply, decision: Decision): void {
  const headers: string[] = [];
  for (const name in decision.clientHeaders) headers.push(name, decision.clientHeaders[name] ?? '');
  let body = '';
  if (decision.allowed) {
    for (const name in decision.upstreamHeaders) headers.push(name, decision.upstreamHeaders[name] ?? '');
    if (decision.removeHeaders.length > 0)
      headers.push(HEADERS_TO_REMOVE, removeValue(decision.removeHeaders));
  } else {
    body = decision.body;
  }
  headers.push('content-length', String(Buffer.byteLength(body)));
  reply.hijack();
  writeAnswer(reply.raw, decision.status, headers, body);
}

/**
 * Writes an answer on a raw response: status and headers (a flat name, value list) in one `writeHead`,
 * then the body. When Node refuses a header (a bug: the contract schema refuses bad configured ones),
 * nothing was written: it answers a plain 503 instead, never leaving Envoy or a client waiting, and
 * throws for the caller to count and log.
 */
export function writeAnswer(raw: ServerResponse, status: number, headers: string[], body: string): void {
  try {
    raw.writeHead(status, headers);
  } catch (err) {
    raw.writeHead(503, UNSENDABLE_HEADERS);
    raw.end(UNSENDABLE_BODY);
    throw err;
  }
  raw.end(body);
}

const UNSENDABLE_BODY = '{"message":"Service Unavailable"}';
const UNSENDABLE_HEADERS = {
  'content-type': 'application/json',
  'retry-after': '1',
  'content-length': String(UNSENDABLE_BODY.length),
};

const removeValues = new WeakMap<readonly string[], string>();
/** The header's value for a list of names (lists are shared between decisions: joined once). */
function removeValue(names: readonly string[]): string {
  let value = removeValues.get(names);
  if (value === undefined) {
    value = names.join(',');
    removeValues.set(names, value);
  }
  return value;
}

/**
 * A request header's value as the gRPC check sees it. Node decodes header bytes as latin1 (one char a
 * byte), while Envoy's gRPC check request carries them as UTF-8 text, and signatures are computed over
 * UTF-8: a value with a byte above 0x7f is read back as UTF-8. ASCII values (nearly all) are returned
 * as they are.
 */
export function headerText(value: string): string {
  return NON_ASCII.test(value) ? Buffer.from(value, 'latin1').toString('utf8') : value;
}
const NON_ASCII = /[^\x00-\x7f]/;

/** A header of a Node request by its lower-case name: the first value when repeated, as UTF-8 text. */
export function requestHeader(headers: FastifyRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  const first = typeof v === 'string' ? v : Array.isArray(v) ? v[0] : undefined;
  return first === undefined ? undefined : headerText(first);
}

/** The request's facts for the decision. */
export function checkRequestOf(request: FastifyRequest): CheckRequest {
  const { stage, path } = splitCheckPath(request.url);
  const headers = request.headers;
  return {
    stage,
    method: request.method,
    path,
    header: (name) => requestHeader(headers, name),
  };
}

/** A raw 403 for requests Node's parser refuses (no request object exists for them). */
const RAW_FORBIDDEN =
  'HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: 23\r\nconnection: close\r\n\r\n{"message":"Forbidden"}';

/**
 * Answers a connection-level parse error (a request Node's parser refuses) with a 403 and closes it,
 * counting it as a malformed check. A socket that is no longer writable (the client went away, a
 * timeout) is closed uncounted: no check was made.
 */
export function clientErrorHandler(checker: Checker): (err: Error, socket: Socket) => void {
  return (_err, socket) => {
    if (socket.writable) {
      checker.failed('http', 'malformed');
      socket.end(RAW_FORBIDDEN);
    } else socket.destroy();
  };
}

/**
 * The check's handler: reads the method, the raw URL and the headers (never the router's decoded path
 * or parameters), decides and answers. Answered synchronously when the decision is (the memory store):
 * no promise per check.
 */
export function httpCheckHandler(checker: Checker): (request: FastifyRequest, reply: FastifyReply) => void {
  return (request, reply) => {
    let facts: CheckRequest;
    try {
      facts = checkRequestOf(request);
    } catch {
      sendDecision(reply, checker.failed('http', 'malformed'));
      return;
    }
    checker.answer(facts, 'http', (d) => {
      sendDecision(reply, d);
    });
  };
}

/**
 * The framework errors that concern the URL only: the router (find-my-way) could not decodeURI the
 * path (`/files/%FF`, `/files/100%`), or a parameter was too long. Envoy passes such paths on, and the
 * decision reads the raw URL: they are decided as any other check.
 */
const URL_FRAMEWORK_ERRORS: ReadonlySet<string> = new Set(['FST_ERR_BAD_URL', 'FST_ERR_MAX_PARAM_LENGTH']);

/**
 * Fastify's `frameworkErrors` for the check server: a URL the router refuses is decided by
 * {@link httpCheckHandler} (the request object Fastify passes has the raw URL, method and headers);
 * any other framework error is a malformed check (403).
 */
export function checkFrameworkErrors(
  checker: Checker,
): (error: Error & { code?: string }, request: FastifyRequest, reply: FastifyReply) => void {
  const handler = httpCheckHandler(checker);
  return (error, request, reply) => {
    if (error.code !== undefined && URL_FRAMEWORK_ERRORS.has(error.code)) {
      handler(request, reply);
      return;
    }
    sendDecision(reply, checker.failed('http', 'malformed'));
  };
}

/**
 * Makes `app` take every request Node parses: every method (CONNECT aside) can be routed, and a body of
 * any type is drained unread (the check's, which Envoy sends only with with_request_body; a view's).
 */
export function acceptEveryRequest(app: FastifyInstance): void {
  for (const method of METHODS) {
    if (method === 'CONNECT' || app.supportedMethods.includes(method)) continue;
    app.addHttpMethod(method, { hasBody: true });
  }
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => {
    payload.on('error', () => undefined);
    payload.resume();
    payload.on('end', () => {
      done(null, undefined);
    });
  });
}

/**
 * The errors Fastify raises about a request's content type before any parser runs: a media type it
 * cannot parse (`application/json,application/json`, which is how Envoy joins a repeated header; '',
 * `text`, `a b`) or a QUERY without one. The check never reads a body: such requests are decided as
 * any other, as the gRPC check decides them.
 */
const CONTENT_TYPE_ERRORS: ReadonlySet<string> = new Set([
  'FST_ERR_CTP_INVALID_MEDIA_TYPE',
  'FST_ERR_ROUTE_MISSING_CONTENT_TYPE',
]);

/** Registers the check on every method and path of `app`. */
export function registerHttpCheck(app: FastifyInstance, checker: Checker): void {
  acceptEveryRequest(app);
  const handler = httpCheckHandler(checker);
  app.route({ method: app.supportedMethods, url: '*', handler });
  app.setNotFoundHandler(handler);
  app.setErrorHandler((err, request, reply) => {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && CONTENT_TYPE_ERRORS.has(code)) {
      handler(request, reply);
      return;
    }
    const status = (err as { statusCode?: unknown }).statusCode;
    const malformed = typeof status === 'number' && status >= 400 && status < 500;
    sendDecision(reply, checker.failed('http', malformed ? 'malformed' : 'error', err));
  });
}
