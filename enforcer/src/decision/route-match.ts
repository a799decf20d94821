/**
 * Route patterns of a plan (`UsagePlan.spec.routes[].path`): '/'-separated segments, each literal or
 * '*' (exactly one non-empty segment), optionally ending in '/**' (any number of further segments,
 * none included: '/v1/reports/**' matches '/v1/reports' too). The query string is not matched; a
 * trailing '/' is ignored, so '/v1/reports/' is '/v1/reports' (a route throttle cannot be dodged by
 * adding one). Paths are compared as received: Envoy normalises them first (`normalize_path`,
 * `merge_slashes` in the shipped configs), except for an encoded slash (`%2F`), which Envoy keeps by
 * default and some upstreams (nginx, for one) decode into a separator, and runs of '/' when a proxy does
 * not merge them: {@link slashesDecoded} makes the one a separator and merges the others before
 * matching, so that neither '/v1/reports%2Fexport' nor '/v1/reports//export' dodges the route
 * '/v1/reports/export'. Pure.
 */

/** A compiled path pattern. */
export interface PathPattern {
  /** The segments before any '/**'; '*' matches one segment. */
  readonly segments: readonly string[];
  /** Whether the pattern ends in '/**'. */
  readonly rest: boolean;
}

const SEGMENT = /^([A-Za-z0-9._~!$&'()+,;=:@%-]+|\*)$/;

/**
 * Compiles a route path pattern; undefined when it is not one (the CRD's CEL rule refuses those, so
 * this only happens with a hand-written config).
 */
export function compilePathPattern(pattern: string): PathPattern | undefined {
  if (!pattern.startsWith('/')) return undefined;
  if (pattern === '/') return { segments: [], rest: false };
  if (pattern === '/**') return { segments: [], rest: true };
  const rest = pattern.endsWith('/**');
  const body = rest ? pattern.slice(1, -3) : pattern.slice(1);
  const segments = body.split('/');
  if (!segments.every((s) => SEGMENT.test(s))) return undefined;
  return { segments, rest };
}

/**
 * The path with each encoded slash (`%2F`, `%2f`) in its path part made a '/', and runs of '/' merged
 * (as Envoy's `merge_slashes` would have, when the proxy does not: most upstreams read
 * '/v1/reports//export' as '/v1/reports/export'); the path itself (no copy) when it has neither.
 */
export function slashesDecoded(path: string): string {
  const end = pathEnd(path);
  // The first occurrence in the path part, if any, comes before any in the query.
  const encoded = path.indexOf('%2');
  const doubled = path.indexOf('//');
  const hasEncoded = encoded >= 0 && encoded < end;
  if (!hasEncoded && (doubled < 0 || doubled >= end)) return path;
  let head = path.slice(0, end);
  if (hasEncoded) head = head.replace(/%2f/gi, '/');
  head = head.replace(/\/{2,}/g, '/');
  return head === path.slice(0, end) ? path : head + path.slice(end);
}

/** The segments of a request path: the query cut off, no leading or trailing empty segment. */
export function pathSegments(path: string): string[] {
  let end = path.length;
  const q = path.indexOf('?');
  if (q >= 0) end = q;
  const h = path.indexOf('#');
  if (h >= 0 && h < end) end = h;
  let p = path.slice(0, end);
  if (p.startsWith('/')) p = p.slice(1);
  if (p.endsWith('/')) p = p.slice(0, -1);
  return p === '' ? [] : p.split('/');
}

/** Whether request path segments (from {@link pathSegments}) match a pattern. */
export function matchPath(pattern: PathPattern, segments: readonly string[]): boolean {
  const want = pattern.segments;
  if (segments.length < want.length) return false;
  if (!pattern.rest && segments.length !== want.length) return false;
  for (let i = 0; i < want.length; i++) {
    const w = want[i];
    const s = segments[i];
    if (s === undefined || s === '') return false;
    if (w !== '*' && w !== s) return false;
  }
  return true;
}

const SLASH = 0x2f;

/** Where the matched part of a request path ends: before its query or fragment. */
export function pathEnd(path: string): number {
  let end = path.indexOf('?');
  if (end < 0) end = path.length;
  const h = path.indexOf('#');
  return h >= 0 && h < end ? h : end;
}

/**
 * {@link matchPath} of {@link pathSegments}, read off `path` in place (no segment strings): the same
 * answer for every path, for the hot path. `end` is {@link pathEnd} of `path`.
 */
export function matchPathIn(pattern: PathPattern, path: string, end: number): boolean {
  // The bounds pathSegments splits: one leading and one trailing '/' dropped.
  const start = end > 0 && path.charCodeAt(0) === SLASH ? 1 : 0;
  const stop = end > start && path.charCodeAt(end - 1) === SLASH ? end - 1 : end;
  const want = pattern.segments;
  if (start >= stop) return want.length === 0;
  let pos = start;
  for (const w of want) {
    // No segment left, or an empty one: no match (a pattern segment is never empty).
    if (pos > stop) return false;
    let next = path.indexOf('/', pos);
    if (next < 0 || next > stop) next = stop;
    if (next === pos) return false;
    if (w !== '*' && (next - pos !== w.length || !path.startsWith(w, pos))) return false;
    pos = next + 1;
  }
  // Every pattern segment matched: the rest may be anything with '/**', else nothing may be left.
  return pattern.rest || pos > stop;
}

/** A method filter: undefined matches any method; otherwise the upper-case methods matched. */
export type MethodFilter = ReadonlySet<string> | undefined;

/** Compiles a route's `methods` (empty or containing '*' matches any). */
export function compileMethods(methods: readonly string[]): MethodFilter {
  if (methods.length === 0 || methods.includes('*')) return undefined;
  return new Set(methods.map((m) => m.toUpperCase()));
}

/** Whether a method passes a filter. */
export function matchMethod(filter: MethodFilter, method: string): boolean {
  return filter === undefined || filter.has(method.toUpperCase());
}
