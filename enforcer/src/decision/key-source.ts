/**
 * Where a request carries its key: a header (`x-api-key` by default), `Authorization: Bearer <key>`, or
 * a query parameter, tried in the configured order; the first present wins. Pure.
 */

/** Where the key is read from; a list of them is tried in order. */
export type KeySource =
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'bearer' }
  | { readonly kind: 'query'; readonly name: string };

/** A presented key value, and the request header or query parameter that carried it (to strip before the upstream). */
export interface PresentedKey {
  readonly value: string;
  /** The header to remove upstream; undefined for a query parameter. */
  readonly header: string | undefined;
  /**
   * The query parameter to remove upstream; undefined for a header. Only gRPC ext_authz can have Envoy
   * remove it (`query_parameters_to_remove`); over HTTP ext_authz it stays in the URL.
   */
  readonly query?: string | undefined;
}

/** Longest value looked at: anything longer is malformed (keys are at most 128 characters). */
const MAX_VALUE = 4096;

/**
 * The first key present in the request, or undefined. A source that is present but empty counts as
 * present (the value '' is then malformed): a client does not get to fall through to a later source.
 */
export function presentedKey(
  sources: readonly KeySource[],
  header: (name: string) => string | undefined,
  path: string,
): PresentedKey | undefined {
  for (const source of sources) {
    switch (source.kind) {
      case 'header': {
        const value = header(source.name);
        if (value !== undefined) return { value: value.slice(0, MAX_VALUE + 1), header: source.name };
        break;
      }
      case 'bearer': {
        const value = header('authorization');
        if (value === undefined) break;
        // Linear: the token and the whitespace around it cannot share a character (with the token
        // allowed empty, a long whitespace run backtracked quadratically). `Bearer` with no token is
        // not this source (Node and Envoy trim trailing whitespace: it arrives as `Bearer`).
        const m = /^bearer[ \t]+([^ \t]+)[ \t]*$/i.exec(value.slice(0, MAX_VALUE + 16));
        if (m) return { value: m[1] ?? '', header: 'authorization' };
        break;
      }
      case 'query': {
        const value = queryParameter(path, source.name);
        if (value !== undefined) return { value, header: undefined, query: source.name };
        break;
      }
    }
  }
  return undefined;
}

/**
 * The first value of a query parameter in `path` (percent-decoded, '+' as space), or undefined when
 * absent. A value that does not decode is returned raw: it then fails the key's format check.
 *
 * Names are compared undecoded, as Envoy's `query_parameters_to_remove` does: `api%5Fkey` is not
 * `api_key`, so a key the enforcer reads is one Envoy can strip. Configured names are unreserved
 * characters (`[A-Za-z0-9._~-]`, see config.ts), which never need encoding. Only the matching
 * parameter's value is decoded: decoding every name let a query of bad escapes cost a decode (and a
 * thrown error) per parameter.
 */
export function queryParameter(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  let end = path.indexOf('#', q);
  if (end < 0) end = path.length;
  for (const pair of path.slice(q + 1, end).split('&')) {
    const eq = pair.indexOf('=');
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    if (rawName !== name) continue;
    const rawValue = eq < 0 ? '' : pair.slice(eq + 1, eq + 1 + MAX_VALUE);
    return decode(rawValue);
  }
  return undefined;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}
