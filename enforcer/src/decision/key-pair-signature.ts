/**
 * Key-pair request signatures in Tencent API Gateway's style: the client holds a SecretId and a
 * SecretKey and sends
 *
 *   Authorization: hmac id="<SecretId>", algorithm="hmac-sha256", headers="x-date source", signature="<base64>"
 *
 * where the signature is base64(HMAC(SecretKey, signing string)) and the signing string is the listed
 * headers, in the listed order, each as `name: value` (name lower-cased, value as received), joined
 * with "\n". `x-date` (an IMF-fixdate in GMT) must be listed and fresh. The pseudo-headers `@method`
 * (the method, upper-cased) and `@path` (the path with its query) may be listed to sign the request
 * line too, and a policy can require them. Pure apart from node:crypto; the time comes in as `now`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { checkSecretId } from '../../../contract/src/key-format.ts';
import { HEADER_NAME_PATTERN } from '../../../crds/src/usage-plan.ts';

/** The HMAC algorithms a client may name. */
export type HmacAlgorithm = 'hmac-sha1' | 'hmac-sha256';

/** Longest Authorization header parsed; longer ones are refused before any work. */
export const MAX_AUTHORIZATION_LENGTH = 4096;
/** Most names the `headers` parameter may list. */
export const MAX_SIGNED_HEADERS = 16;
/** Default freshness window of `x-date`, either direction: 15 minutes, as Tencent documents. */
export const DEFAULT_MAX_SKEW_MS = 15 * 60 * 1000;
/** The pseudo-header carrying the request method in the signing string. */
export const METHOD_PSEUDO_HEADER = '@method';
/** The pseudo-header carrying the request path (with its query) in the signing string. */
export const PATH_PSEUDO_HEADER = '@path';

/** A parsed `Authorization: hmac …` header. */
export interface HmacAuthorization {
  /** The SecretId naming the key pair. */
  readonly id: string;
  /** The HMAC algorithm, lower-cased. */
  readonly algorithm: HmacAlgorithm;
  /** The signed header names, lower-cased, in signing order; always includes `x-date`. */
  readonly headers: readonly string[];
  /** The decoded signature, exactly as long as the algorithm's digest. */
  readonly signature: Buffer;
}

/** The result of {@link parseHmacAuthorization}. */
export type ParseHmacResult =
  { readonly ok: true; readonly value: HmacAuthorization } | { readonly ok: false; readonly reason: string };

/** Why a signature was refused. */
export type SignatureFailure =
  /** The parsed value is unusable (no x-date listed, a header value with a line break, no secret key). */
  | 'malformed'
  /** A listed header is absent from the request. */
  | 'missing-header'
  /** `x-date` is not an IMF-fixdate. */
  | 'bad-date'
  /** `x-date` is outside the freshness window. */
  | 'stale-date'
  /** The policy requires `@method` and `@path` to be signed and they are not both listed. */
  | 'method-path-not-signed'
  /** The signature does not match. */
  | 'bad-signature';

/** The result of {@link verifyKeyPairSignature}. */
export type VerifySignatureResult =
  { readonly ok: true } | { readonly ok: false; readonly reason: SignatureFailure };

/** Options of {@link verifyKeyPairSignature}. */
export interface VerifySignatureOptions {
  /** How far `x-date` may be from `now`, either direction, in ms; default {@link DEFAULT_MAX_SKEW_MS}. */
  readonly maxSkewMs?: number;
  /** Refuse signatures that do not list both `@method` and `@path`; default false. */
  readonly requireMethodAndPath?: boolean;
}

const DIGEST_LENGTH: Readonly<Record<HmacAlgorithm, number>> = { 'hmac-sha1': 20, 'hmac-sha256': 32 };
const NODE_DIGEST: Readonly<Record<HmacAlgorithm, string>> = { 'hmac-sha1': 'sha1', 'hmac-sha256': 'sha256' };
const MAX_PARAMS = 8;
const TCHAR = new RegExp(HEADER_NAME_PATTERN);
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function fail(reason: string): ParseHmacResult {
  return { ok: false, reason };
}

/**
 * Parses an `Authorization` header value of the `hmac` scheme. Never throws, whatever the input: every
 * problem is `{ ok: false, reason }`, the reason a fixed sentence that quotes nothing from the header
 * (it may be logged). Refuses headers over {@link MAX_AUTHORIZATION_LENGTH} characters before parsing,
 * duplicate or more than 8 parameters, a missing id/algorithm/headers/signature, an algorithm other than
 * hmac-sha1 and hmac-sha256, a header list that is empty, over {@link MAX_SIGNED_HEADERS} names, has a
 * duplicate or lacks x-date, and a signature that is not canonical base64 of the digest's length.
 * Unknown parameters are ignored.
 */
export function parseHmacAuthorization(header: string): ParseHmacResult {
  if (typeof header !== 'string') return fail('authorization header is not a string');
  if (header.length > MAX_AUTHORIZATION_LENGTH) {
    return fail(`authorization header is longer than ${MAX_AUTHORIZATION_LENGTH} characters`);
  }
  const params = new Map<string, string>();
  let i = skipWhitespace(header, 0);
  const schemeEnd = tokenEnd(header, i);
  if (header.slice(i, schemeEnd).toLowerCase() !== 'hmac') return fail('authorization scheme is not hmac');
  i = schemeEnd;
  if (header[i] !== ' ') return fail('hmac scheme must be followed by a space and parameters');
  i = skipWhitespace(header, i);
  if (i === header.length) return fail('hmac authorization has no parameters');

  for (;;) {
    const nameEnd = tokenEnd(header, i);
    if (nameEnd === i) return fail('expected a parameter name');
    const name = header.slice(i, nameEnd).toLowerCase();
    i = skipWhitespace(header, nameEnd);
    if (header[i] !== '=') return fail('expected "=" after a parameter name');
    i = skipWhitespace(header, i + 1);
    let value: string;
    if (header[i] === '"') {
      const quoted = readQuoted(header, i);
      if (quoted === undefined) {
        return fail('a quoted parameter value is unterminated or has invalid characters');
      }
      value = quoted.value;
      i = quoted.end;
    } else {
      const valueEnd = tokenEnd(header, i);
      if (valueEnd === i) return fail('expected a parameter value');
      value = header.slice(i, valueEnd);
      i = valueEnd;
    }
    if (params.has(name)) return fail('a parameter appears twice');
    if (params.size === MAX_PARAMS) return fail(`more than ${MAX_PARAMS} parameters`);
    params.set(name, value);
    i = skipWhitespace(header, i);
    if (i === header.length) break;
    if (header[i] !== ',') return fail('expected "," between parameters');
    i = skipWhitespace(header, i + 1);
  }

  const id = params.get('id');
  const algorithmName = params.get('algorithm');
  const headerList = params.get('headers');
  const signatureText = params.get('signature');
  if (id === undefined || id === '') return fail('the id parameter is missing');
  if (checkSecretId(id) !== undefined) {
    return fail('the id parameter is not a valid SecretId');
  }
  if (algorithmName === undefined) return fail('the algorithm parameter is missing');
  const algorithm = algorithmName.toLowerCase();
  if (algorithm !== 'hmac-sha1' && algorithm !== 'hmac-sha256') {
    return fail('the algorithm is not hmac-sha1 or hmac-sha256');
  }
  if (headerList === undefined) return fail('the headers parameter is missing');
  const headers = splitHeaderList(headerList);
  if (typeof headers === 'string') return fail(headers);
  if (signatureText === undefined) return fail('the signature parameter is missing');
  const length = DIGEST_LENGTH[algorithm];
  if (signatureText.length !== Math.ceil(length / 3) * 4 || !BASE64.test(signatureText)) {
    return fail(`the signature is not base64 of a ${algorithm} digest`);
  }
  const signature = Buffer.from(signatureText, 'base64');
  if (signature.length !== length || signature.toString('base64') !== signatureText) {
    return fail(`the signature is not base64 of a ${algorithm} digest`);
  }
  return { ok: true, value: { id, algorithm, headers, signature } };
}

/** The header names of a `headers` parameter, or a reason why the list is refused. */
function splitHeaderList(list: string): string[] | string {
  const names = list.split(/[ \t]+/).filter((name) => name !== '');
  if (names.length === 0) return 'the headers list is empty';
  if (names.length > MAX_SIGNED_HEADERS) {
    return `the headers list names more than ${MAX_SIGNED_HEADERS} headers`;
  }
  const seen = new Set<string>();
  for (const raw of names) {
    const name = raw.toLowerCase();
    const pseudo = name === METHOD_PSEUDO_HEADER || name === PATH_PSEUDO_HEADER;
    if (!pseudo && !TCHAR.test(name)) return 'the headers list has a name that is not a header name';
    if (name === 'authorization') return 'the headers list cannot include authorization itself';
    if (seen.has(name)) return 'the headers list names a header twice';
    seen.add(name);
  }
  if (!seen.has('x-date')) return 'the headers list must include x-date';
  return [...seen];
}

/** Index after the run of spaces and tabs starting at `i`. */
function skipWhitespace(text: string, i: number): number {
  while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
  return i;
}

/** Index after the run of token characters (RFC 9110 tchar) starting at `i`. */
function tokenEnd(text: string, i: number): number {
  while (i < text.length && isTchar(text.charCodeAt(i))) i++;
  return i;
}

/** RFC 9110 tchar, by character code below 128. */
const TCHAR_CODES: readonly boolean[] = Array.from({ length: 128 }, (_, code) =>
  TCHAR.test(String.fromCharCode(code)),
);

function isTchar(code: number): boolean {
  return code < 128 && TCHAR_CODES[code] === true;
}

/**
 * Reads an RFC 9110 quoted-string starting at the `"` at `start`: printable ASCII, space and tab, with
 * backslash escapes. Undefined when unterminated or holding another character.
 */
function readQuoted(text: string, start: number): { value: string; end: number } | undefined {
  let value = '';
  let i = start + 1;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === 0x22) return { value, end: i + 1 };
    if (code === 0x5c) {
      i++;
      if (i >= text.length) return undefined;
      const escaped = text.charCodeAt(i);
      if (!isQuotable(escaped)) return undefined;
      value += String.fromCharCode(escaped);
    } else {
      if (!isQuotable(code)) return undefined;
      value += String.fromCharCode(code);
    }
    i++;
  }
  return undefined;
}

function isQuotable(code: number): boolean {
  return code === 0x09 || (code >= 0x20 && code <= 0x7e);
}

/** The result of {@link signingString}. */
export type SigningStringResult =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly reason: 'missing-header' | 'line-break' };

/**
 * The signing string for `names` (lower-case, in order): `name: value` lines joined with "\n", values
 * from `getHeader` as received, `@method` the method upper-cased and `@path` the path. Fails with
 * `missing-header` when a header (or the method or path of a listed pseudo-header) is absent, and with
 * `line-break` when a value holds CR or LF, which would let one header pose as several lines.
 */
export function signingString(
  names: readonly string[],
  getHeader: (name: string) => string | undefined,
  method: string | undefined,
  path: string | undefined,
): SigningStringResult {
  const lines: string[] = [];
  for (const name of names) {
    let value: string | undefined;
    if (name === METHOD_PSEUDO_HEADER) value = method?.toUpperCase();
    else if (name === PATH_PSEUDO_HEADER) value = path;
    else value = getHeader(name);
    if (value === undefined) return { ok: false, reason: 'missing-header' };
    if (value.includes('\n') || value.includes('\r')) return { ok: false, reason: 'line-break' };
    lines.push(`${name}: ${value}`);
  }
  return { ok: true, text: lines.join('\n') };
}

/**
 * Parses an RFC 9110 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) strictly: the weekday must be right
 * and the date real. Returns epoch ms, or undefined.
 */
export function parseImfFixdate(value: string): number | undefined {
  const match =
    /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/.exec(
      value,
    );
  if (match === null) return undefined;
  const [, weekday, day, monthName, year, hour, minute, second] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const month = MONTHS.indexOf(monthName);
  const ms = Date.UTC(Number(year), month, Number(day), Number(hour), Number(minute), Number(second));
  const date = new Date(ms);
  if (
    date.getUTCDate() !== Number(day) ||
    date.getUTCMonth() !== month ||
    date.getUTCHours() !== Number(hour) ||
    date.getUTCMinutes() !== Number(minute) ||
    date.getUTCSeconds() !== Number(second) ||
    WEEKDAYS[date.getUTCDay()] !== weekday
  ) {
    return undefined;
  }
  return ms;
}

/** The IMF-fixdate of `ms` (whole seconds, GMT), the value a client sends as `x-date`. */
export function imfFixdate(ms: number): string {
  return new Date(ms).toUTCString();
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/**
 * Verifies a parsed signature against the request: every listed header present (`getHeader` takes a
 * lower-case name and returns the value as received), `x-date` an IMF-fixdate within `maxSkewMs` of
 * `now` either way, `@method`/`@path` listed when the policy requires them, and the HMAC of the signing
 * string under `secretKey` equal to the signature (compared in constant time; both lengths are the
 * algorithm's digest length, which is public). Checks run cheapest first and the HMAC last. Throws only
 * if `getHeader` does.
 */
export function verifyKeyPairSignature(
  parsed: HmacAuthorization,
  getHeader: (name: string) => string | undefined,
  method: string,
  path: string,
  secretKey: string | Uint8Array,
  now: number,
  options: VerifySignatureOptions = {},
): VerifySignatureResult {
  const { headers, algorithm, signature } = parsed;
  if (!headers.includes('x-date') || !Object.hasOwn(DIGEST_LENGTH, algorithm) || secretKey.length === 0) {
    return { ok: false, reason: 'malformed' };
  }
  if (
    options.requireMethodAndPath === true &&
    !(headers.includes(METHOD_PSEUDO_HEADER) && headers.includes(PATH_PSEUDO_HEADER))
  ) {
    return { ok: false, reason: 'method-path-not-signed' };
  }
  const signed = signingString(headers, getHeader, method, path);
  if (!signed.ok) return { ok: false, reason: signed.reason === 'line-break' ? 'malformed' : signed.reason };
  const xDate = getHeader('x-date');
  const date = xDate === undefined ? undefined : parseImfFixdate(xDate);
  if (date === undefined) return { ok: false, reason: 'bad-date' };
  const maxSkewMs = options.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  if (!(Math.abs(now - date) <= maxSkewMs)) return { ok: false, reason: 'stale-date' };
  const expected = createHmac(NODE_DIGEST[algorithm], secretKey).update(signed.text, 'utf8').digest();
  if (expected.length !== signature.length || !timingSafeEqual(expected, signature)) {
    return { ok: false, reason: 'bad-signature' };
  }
  return { ok: true };
}

/** What {@link signRequest} signs. */
export interface SignRequestInput {
  /** The SecretId, sent as `id`. */
  readonly secretId: string;
  /** The SecretKey, the HMAC key (a string is used as its UTF-8 bytes). */
  readonly secretKey: string | Uint8Array;
  /** Default 'hmac-sha256'. */
  readonly algorithm?: HmacAlgorithm;
  /** Header values by name (any case); must hold `x-date` (see {@link imfFixdate}). */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Names to sign, in order; default every name of `headers` (lower-cased, in insertion order), then
   * `@method` when `method` is given and `@path` when `path` is.
   */
  readonly signedHeaders?: readonly string[];
  /** The request method, for `@method`. */
  readonly method?: string;
  /** The request path with its query, for `@path`. */
  readonly path?: string;
}

/**
 * Produces the `Authorization` header value for a request (for clients and tests). Throws an Error when
 * the input could not be verified: no x-date, a listed header without a value, a name that is not a
 * header name, more than {@link MAX_SIGNED_HEADERS} names, an invalid SecretId, or an empty SecretKey.
 */
export function signRequest(input: SignRequestInput): string {
  const algorithm = input.algorithm ?? 'hmac-sha256';
  const values = new Map<string, string>();
  for (const [name, value] of Object.entries(input.headers)) values.set(name.toLowerCase(), value);
  const names = (
    input.signedHeaders ?? [
      ...values.keys(),
      ...(input.method === undefined ? [] : [METHOD_PSEUDO_HEADER]),
      ...(input.path === undefined ? [] : [PATH_PSEUDO_HEADER]),
    ]
  ).map((name) => name.toLowerCase());
  const list = splitHeaderList(names.join(' '));
  if (typeof list === 'string') throw new Error(`signRequest: ${list}`);
  if (list.length !== names.length) throw new Error('signRequest: a signed header name contains whitespace');
  if (checkSecretId(input.secretId) !== undefined) {
    throw new Error('signRequest: secretId must be 1 to 128 visible ASCII characters other than " and \\');
  }
  if (input.secretKey.length === 0) throw new Error('signRequest: secretKey is empty');
  const signed = signingString(list, (name) => values.get(name), input.method, input.path);
  if (!signed.ok) {
    throw new Error(
      signed.reason === 'missing-header'
        ? 'signRequest: a signed header has no value'
        : 'signRequest: a signed header value contains a line break',
    );
  }
  const signature = createHmac(NODE_DIGEST[algorithm], input.secretKey)
    .update(signed.text, 'utf8')
    .digest('base64');
  return `hmac id="${input.secretId}", algorithm="${algorithm}", headers="${list.join(' ')}", signature="${signature}"`;
}
