/**
 * What both transports share: reading the API stage Envoy names and timing and recording a decision.
 *
 * HTTP ext_authz carries no context extensions, so each Envoy listener sets
 * `http_service.path_prefix: /keystile/<namespace>/<api>/<stage>` (ADR 0002): Envoy puts it before
 * the original path, the enforcer reads the stage from its three segments and strips them to get the
 * request path back. A client can only append to the prefix, never change it.
 */
import { parseStageKey, stageKey } from '../../../contract/src/identity.ts';

/** The first segment of every HTTP check path. */
export const CHECK_PATH_PREFIX = '/keystile/';

/** The path prefix an Envoy listener for `stage` (`<namespace>/<api>/<stage>`) sets. */
export function checkPathPrefix(stage: string): string {
  return `${CHECK_PATH_PREFIX}${stage}`;
}

/** The context extension key gRPC checks name the stage with (ADR 0002). */
export const STAGE_CONTEXT_EXTENSION = 'keystile.dev/api-stage';

const SLASH = 0x2f;
const QUERY = 0x3f;
const FRAGMENT = 0x23;

/**
 * The last valid prefix (`/keystile/<namespace>/<api>/<stage>`) and its stage: an Envoy listener
 * sends the same prefix on every check, so most checks skip the scan and the stage lookup.
 */
let lastPrefix: { readonly text: string; readonly stage: string } | undefined;

/**
 * Splits an HTTP check request's URL into the stage the prefix names (undefined when there is no valid
 * prefix) and the original path with its query ('/' when the original was empty).
 */
export function splitCheckPath(url: string): { stage: string | undefined; path: string } {
  const last = lastPrefix;
  if (last !== undefined && url.startsWith(last.text)) {
    // The same three segments as last time when the third ends where the prefix does.
    const end = last.text.length;
    if (url.length === end) return { stage: last.stage, path: '/' };
    const c = url.charCodeAt(end);
    if (c === SLASH) return { stage: last.stage, path: url.slice(end) };
    if (c === QUERY || c === FRAGMENT) return { stage: last.stage, path: `/${url.slice(end)}` };
  }
  if (!url.startsWith(CHECK_PATH_PREFIX)) return { stage: undefined, path: url };
  let i = CHECK_PATH_PREFIX.length;
  for (let n = 0; n < 3; n++) {
    let end = i;
    for (; end < url.length; end++) {
      const c = url.charCodeAt(end);
      if (c === SLASH || c === QUERY || c === FRAGMENT) break;
    }
    if (end === i) return { stage: undefined, path: url };
    i = end;
    if (n < 2) {
      if (url.charCodeAt(i) !== SLASH) return { stage: undefined, path: url };
      i++;
    }
  }
  const stage = stageOf(url.slice(CHECK_PATH_PREFIX.length, i));
  if (stage === undefined) return { stage: undefined, path: url };
  lastPrefix = { text: url.slice(0, i), stage };
  const rest = url.slice(i);
  return { stage, path: rest.startsWith('/') ? rest : `/${rest}` };
}

/** Validated stage names, remembered: an Envoy listener sends the same prefix on every check. */
const stages = new Map<string, string | null>();
function stageOf(text: string): string | undefined {
  const known = stages.get(text);
  if (known !== undefined) return known ?? undefined;
  const id = parseStageKey(text);
  const stage = id === undefined ? null : stageKey(id);
  if (stages.size >= 1024) stages.clear();
  stages.set(text, stage);
  return stage ?? undefined;
}

/** Validates a stage named by a gRPC context extension; undefined when it is not `<ns>/<api>/<stage>`. */
export function contextStage(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const id = parseStageKey(value);
  return id === undefined ? undefined : stageKey(id);
}
