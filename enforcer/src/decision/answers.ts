/**
 * The answers of DESIGN.md's table as values: status, body and headers for the client, headers for the
 * upstream. Pure. A plan's configured answer (`responses`, as AWS's gateway responses) replaces the
 * status, body and content type of its denial type and adds its headers.
 */
import type { RenderedResponse } from '../../../contract/src/format.ts';
import type { PlanEntry } from '../catalog/catalog.ts';
import { DEFAULT_MESSAGES, type DenialType, type Reason, REASONS } from '../errors.ts';

/** The headers the enforcer sets on the upstream request, and removes when it has no value for them. */
export const UPSTREAM_HEADERS = Object.freeze({
  /** The key id (never the key). */
  keyId: 'x-keystile-key-id',
  /** The plan's name. */
  plan: 'x-keystile-plan',
  /** The key's customer, when it names one. */
  customer: 'x-keystile-customer',
  /** Shadow mode: the denial the request would have had (`throttled`, `quota-exceeded`). */
  shadow: 'x-keystile-shadow',
});

/** Every upstream header name: a client's own values for them never reach the upstream. */
export const UPSTREAM_HEADER_NAMES: readonly string[] = Object.freeze(Object.values(UPSTREAM_HEADERS));

const NONE: readonly string[] = Object.freeze([]);

/** One decision, as both transports answer it. */
export interface Decision {
  /** Whether Envoy lets the request through. */
  readonly allowed: boolean;
  /** The HTTP status (200 when allowed). */
  readonly status: number;
  readonly reason: Reason;
  /**
   * Headers for the client: on allow the RateLimit fields (Envoy's `allowed_client_headers_on_success`),
   * on denial everything of the denial response but the body.
   */
  readonly clientHeaders: Readonly<Record<string, string>>;
  /** Headers to set on the upstream request (allow only). */
  readonly upstreamHeaders: Readonly<Record<string, string>>;
  /** Request headers to remove before the upstream (allow only): the key's header, unset x-keystile-*. */
  readonly removeHeaders: readonly string[];
  /**
   * Query parameters to remove before the upstream (allow only): the key's, when it came in the query.
   * Only gRPC ext_authz can carry this to Envoy.
   */
  readonly removeQueryParameters: readonly string[];
  /** The denial body ('' when allowed). */
  readonly body: string;
  /** The stage key, when the check named a known one. */
  readonly stage: string | undefined;
  /** The plan's id (`<namespace>/<name>`), once the key is known. */
  readonly plan: string | undefined;
  /** The key id, once the key is known. */
  readonly keyId: string | undefined;
  /** The matched route's name. */
  readonly route: string | undefined;
  /** Shadow mode: the reason the request would have been denied. */
  readonly wouldDeny: Reason | undefined;
  /** Alert thresholds (percent of the quota) this request crossed first in the period; usually absent. */
  readonly crossed?: readonly number[] | undefined;
}

/** Settings of the answers. */
export interface AnswerOptions {
  /** Denial bodies as application/problem+json. */
  readonly problemJson: boolean;
}

const PROBLEM_TYPES: Readonly<Record<DenialType, string>> = {
  Forbidden: 'https://keystile.dev/problems/forbidden',
  Throttled: 'https://keystile.dev/problems/throttled',
  QuotaExceeded: 'https://keystile.dev/problems/quota-exceeded',
  Unavailable: 'https://keystile.dev/problems/unavailable',
};

/** The identifying part of a decision, once known. */
export interface DecisionContext {
  readonly stage?: string | undefined;
  readonly plan?: PlanEntry | undefined;
  readonly keyId?: string | undefined;
  readonly route?: string | undefined;
}

/**
 * A denial for `reason`: the default body (`{"message":"Forbidden"}`, or a problem document), replaced
 * by the plan's configured answer for the denial type if it has one; `headers` (Retry-After, RateLimit)
 * come first and the plan's headers may override them.
 */
export function deny(
  reason: Reason,
  context: DecisionContext,
  options: AnswerOptions,
  headers: Record<string, string> = {},
): Decision {
  const info = REASONS[reason];
  const denial = info.denial ?? 'Forbidden';
  const configured: RenderedResponse | undefined =
    denial === 'Unavailable' ? undefined : context.plan?.responses.get(denial);
  let status = info.status;
  let body: string;
  let contentType: string;
  if (options.problemJson) {
    body = JSON.stringify({
      type: PROBLEM_TYPES[denial],
      title: DEFAULT_MESSAGES[denial],
      status,
    });
    contentType = 'application/problem+json';
  } else {
    body = JSON.stringify({ message: DEFAULT_MESSAGES[denial] });
    contentType = 'application/json';
  }
  const clientHeaders: Record<string, string> = { ...headers };
  if (configured) {
    status = configured.status;
    if (configured.body !== undefined) {
      body = configured.body;
      contentType = configured.contentType ?? 'application/json';
    } else if (options.problemJson) {
      body = JSON.stringify({ type: PROBLEM_TYPES[denial], title: DEFAULT_MESSAGES[denial], status });
    }
    for (const [name, value] of Object.entries(configured.headers ?? {})) {
      clientHeaders[name.toLowerCase()] = value;
    }
  }
  clientHeaders['content-type'] = contentType;
  return {
    allowed: false,
    status,
    reason,
    clientHeaders,
    upstreamHeaders: {},
    removeHeaders: [],
    removeQueryParameters: NONE,
    body,
    stage: context.stage,
    plan: context.plan?.id,
    keyId: context.keyId,
    route: context.route,
    wouldDeny: undefined,
  };
}

/** An allow with the given headers. */
export function allow(
  reason: Reason,
  context: DecisionContext,
  clientHeaders: Record<string, string>,
  upstreamHeaders: Readonly<Record<string, string>>,
  removeHeaders: readonly string[],
  wouldDeny?: Reason,
  removeQueryParameters: readonly string[] = NONE,
): Decision {
  return {
    allowed: true,
    status: 200,
    reason,
    clientHeaders,
    upstreamHeaders,
    removeHeaders,
    removeQueryParameters,
    body: '',
    stage: context.stage,
    plan: context.plan?.id,
    keyId: context.keyId,
    route: context.route,
    wouldDeny,
  };
}
