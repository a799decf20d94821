import { describe, expect, it } from 'vitest';
import type { HmacAuthorization } from './key-pair-signature.ts';
import {
  DEFAULT_MAX_SKEW_MS,
  MAX_AUTHORIZATION_LENGTH,
  imfFixdate,
  parseHmacAuthorization,
  parseImfFixdate,
  signRequest,
  signingString,
  verifyKeyPairSignature,
} from './key-pair-signature.ts';

// Known-answer vectors computed outside Node with OpenSSL, e.g.
//   printf 'x-date: Mon, 23 Nov 2026 04:14:57 GMT\nsource: keystile-test' |
//     openssl dgst -sha256 -hmac 'ZxF2whExampleKeyN2oPrC' -binary | base64
const SECRET_ID = 'AKIDCgExample548pN';
const SECRET_KEY = 'ZxF2whExampleKeyN2oPrC';
const X_DATE = 'Mon, 23 Nov 2026 04:14:57 GMT';
const NOW = 1_795_407_297_000; // date -u -d '2026-11-23 04:14:57' +%s
const SIG_SHA1 = '/qVToeyaqsb6lvW19SRCNGTZmN0=';
const SIG_SHA256 = 'RO2IQqTzGAeJ6FKxBufM8TjSfzcwklToUPU93xWJxQE=';
const SIG_SHA1_METHOD_PATH = 'J6STqgc24fGDRj9lZQyG6qNvdjk=';
const SIG_SHA256_METHOD_PATH = 'mxk9iyYyivGqDtGOvHg0k328rkxARGRDeuodHd272uk=';

const requestHeaders: Readonly<Record<string, string>> = { 'x-date': X_DATE, source: 'keystile-test' };
const getHeader = (name: string): string | undefined => requestHeaders[name];

function authorization(algorithm: string, headers: string, signature: string): string {
  return `hmac id="${SECRET_ID}", algorithm="${algorithm}", headers="${headers}", signature="${signature}"`;
}

function parsed(header: string): HmacAuthorization {
  const result = parseHmacAuthorization(header);
  if (!result.ok) throw new Error(`expected a valid header: ${result.reason}`);
  return result.value;
}

describe('parseHmacAuthorization', () => {
  it('parses the documented form', () => {
    const result = parseHmacAuthorization(authorization('hmac-sha256', 'x-date source', SIG_SHA256));
    expect(result).toEqual({
      ok: true,
      value: {
        id: SECRET_ID,
        algorithm: 'hmac-sha256',
        headers: ['x-date', 'source'],
        signature: Buffer.from(SIG_SHA256, 'base64'),
      },
    });
  });

  it('is case-insensitive where HTTP is, and lower-cases header names', () => {
    const result = parseHmacAuthorization(
      `HMAC ID="${SECRET_ID}", Algorithm="HMAC-SHA1", HEADERS="X-Date Source @Method @PATH", Signature="${SIG_SHA1}"`,
    );
    expect(result).toMatchObject({
      ok: true,
      value: { id: SECRET_ID, algorithm: 'hmac-sha1', headers: ['x-date', 'source', '@method', '@path'] },
    });
  });

  it('accepts optional whitespace, token values, escapes and unknown parameters', () => {
    const header = `  hmac   id = ${SECRET_ID} ,\talgorithm=hmac-sha1 ,headers="x-date\t source",nonce="a\\"b", signature = "${SIG_SHA1}"  `;
    expect(parseHmacAuthorization(header)).toMatchObject({
      ok: true,
      value: { id: SECRET_ID, algorithm: 'hmac-sha1', headers: ['x-date', 'source'] },
    });
    expect(
      parseHmacAuthorization(authorization('hmac-sha1', 'x-date', SIG_SHA1).replace(SECRET_ID, 'AK\\ID')),
    ).toMatchObject({
      ok: true,
      value: { id: 'AKID' },
    });
  });

  it('accepts exactly 16 header names and exactly 4096 characters', () => {
    const sixteen = ['x-date', ...Array.from({ length: 15 }, (_, i) => `h${i}`)].join(' ');
    expect(parseHmacAuthorization(authorization('hmac-sha1', sixteen, SIG_SHA1)).ok).toBe(true);
    const base = authorization('hmac-sha1', 'x-date', SIG_SHA1) + ', pad=""';
    const padded = base.slice(0, -1) + 'p'.repeat(MAX_AUTHORIZATION_LENGTH - base.length) + '"';
    expect(padded).toHaveLength(MAX_AUTHORIZATION_LENGTH);
    expect(parseHmacAuthorization(padded).ok).toBe(true);
    expect(parseHmacAuthorization(padded.replace('pad="', 'pad="p')).ok).toBe(false);
  });

  const valid = authorization('hmac-sha256', 'x-date source', SIG_SHA256);
  const sha1Sig = SIG_SHA1;
  it.each([
    [
      'too long',
      'hmac ' + 'x'.repeat(MAX_AUTHORIZATION_LENGTH),
      'authorization header is longer than 4096 characters',
    ],
    ['another scheme', `Bearer ${SIG_SHA256}`, 'authorization scheme is not hmac'],
    ['a longer scheme name', valid.replace('hmac ', 'hmacx '), 'authorization scheme is not hmac'],
    ['empty', '', 'authorization scheme is not hmac'],
    ['scheme only', 'hmac', 'hmac scheme must be followed by a space and parameters'],
    ['scheme and space only', 'hmac   ', 'hmac authorization has no parameters'],
    ['scheme glued to a parameter', 'hmac,id="x"', 'hmac scheme must be followed by a space and parameters'],
    ['unterminated quote', 'hmac id="abc, algorithm="hmac-sha1"x', 'expected "," between parameters'],
    [
      'quote never closed',
      'hmac id="abc',
      'a quoted parameter value is unterminated or has invalid characters',
    ],
    [
      'escape at the end',
      'hmac id="abc\\',
      'a quoted parameter value is unterminated or has invalid characters',
    ],
    [
      'control character in a value',
      'hmac id="a\u0001b"',
      'a quoted parameter value is unterminated or has invalid characters',
    ],
    [
      'non-ASCII in a value',
      'hmac id="caf\u00e9"',
      'a quoted parameter value is unterminated or has invalid characters',
    ],
    ['missing "="', 'hmac id "x"', 'expected "=" after a parameter name'],
    ['missing value', 'hmac id=, algorithm="hmac-sha1"', 'expected a parameter value'],
    ['missing name', 'hmac ="x"', 'expected a parameter name'],
    ['trailing comma', `${valid},`, 'expected a parameter name'],
    ['empty list element', valid.replace(', algorithm', ', , algorithm'), 'expected a parameter name'],
    ['duplicate parameter', `${valid}, id="other"`, 'a parameter appears twice'],
    ['duplicate parameter in another case', `${valid}, ID="other"`, 'a parameter appears twice'],
    ['nine parameters', `${valid}, a=1, b=2, c=3, d=4, e=5`, 'more than 8 parameters'],
    ['no id', valid.replace(`id="${SECRET_ID}", `, ''), 'the id parameter is missing'],
    ['empty id', valid.replace(`id="${SECRET_ID}"`, 'id=""'), 'the id parameter is missing'],
    [
      'id with a space',
      valid.replace(`id="${SECRET_ID}"`, 'id="AK ID"'),
      'the id parameter is not a valid SecretId',
    ],
    [
      'id too long',
      valid.replace(`id="${SECRET_ID}"`, `id="${'A'.repeat(129)}"`),
      'the id parameter is not a valid SecretId',
    ],
    ['no algorithm', valid.replace('algorithm="hmac-sha256", ', ''), 'the algorithm parameter is missing'],
    [
      'unknown algorithm',
      valid.replace('hmac-sha256', 'hmac-md5'),
      'the algorithm is not hmac-sha1 or hmac-sha256',
    ],
    [
      'bare algorithm name',
      valid.replace('hmac-sha256', 'sha256'),
      'the algorithm is not hmac-sha1 or hmac-sha256',
    ],
    ['no headers', valid.replace('headers="x-date source", ', ''), 'the headers parameter is missing'],
    ['empty headers list', valid.replace('x-date source', ''), 'the headers list is empty'],
    ['blank headers list', valid.replace('x-date source', '  \t '), 'the headers list is empty'],
    [
      'headers without x-date',
      valid.replace('x-date source', 'date source'),
      'the headers list must include x-date',
    ],
    [
      'a header named twice',
      valid.replace('x-date source', 'x-date source SOURCE'),
      'the headers list names a header twice',
    ],
    [
      'a bad header name',
      valid.replace('x-date source', 'x-date so(urce'),
      'the headers list has a name that is not a header name',
    ],
    [
      'an unknown pseudo-header',
      valid.replace('x-date source', 'x-date @query'),
      'the headers list has a name that is not a header name',
    ],
    [
      'authorization signed',
      valid.replace('x-date source', 'x-date authorization'),
      'the headers list cannot include authorization itself',
    ],
    [
      'seventeen header names',
      valid.replace('x-date source', ['x-date', ...Array.from({ length: 16 }, (_, i) => `h${i}`)].join(' ')),
      'the headers list names more than 16 headers',
    ],
    ['no signature', valid.replace(`, signature="${SIG_SHA256}"`, ''), 'the signature parameter is missing'],
    [
      'signature not base64',
      valid.replace(SIG_SHA256, '!'.repeat(44)),
      'the signature is not base64 of a hmac-sha256 digest',
    ],
    [
      'signature too short',
      valid.replace(SIG_SHA256, SIG_SHA256.slice(4)),
      'the signature is not base64 of a hmac-sha256 digest',
    ],
    [
      'a sha1 signature for sha256',
      valid.replace(SIG_SHA256, sha1Sig),
      'the signature is not base64 of a hmac-sha256 digest',
    ],
    [
      'base64url alphabet',
      valid.replace(SIG_SHA256, SIG_SHA256.replace(/\//g, '_').replace('I', '-')),
      'the signature is not base64 of a hmac-sha256 digest',
    ],
    // 'E=' and 'F=' decode alike: only the canonical spelling (unused bits zero) is accepted
    [
      'non-canonical padding bits',
      valid.replace(SIG_SHA256, SIG_SHA256.replace('E=', 'F=')),
      'the signature is not base64 of a hmac-sha256 digest',
    ],
    [
      'signature without padding',
      valid.replace(SIG_SHA256, SIG_SHA256.replace('=', 'A')),
      'the signature is not base64 of a hmac-sha256 digest',
    ],
  ])('refuses %s', (_name, header, reason) => {
    expect(parseHmacAuthorization(header)).toEqual({ ok: false, reason });
  });

  it('refuses what is not a string, without throwing', () => {
    const inputs: unknown[] = [null, undefined, 42, {}, ['hmac']];
    for (const value of inputs) {
      expect(parseHmacAuthorization(value as string)).toEqual({
        ok: false,
        reason: 'authorization header is not a string',
      });
    }
  });

  it('refuses a huge header without scanning it', () => {
    const huge = 'hmac ' + 'id="x", '.repeat(1_000_000);
    // The reason is the length check's, which comes before any parsing.
    expect(parseHmacAuthorization(huge)).toEqual({
      ok: false,
      reason: 'authorization header is longer than 4096 characters',
    });
  });

  it('never throws on random input (fuzz)', () => {
    let seed = 20261123;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor((seed / 2147483648) * n);
    };
    const alphabet = 'hmac idalgorithmheaderssignature=,"\\ \t-x@/+AZaz09\u0000\u00e9\u{1f600}';
    const chars = Array.from(alphabet);
    const seeds = [
      valid,
      authorization('hmac-sha1', 'x-date source @method @path', SIG_SHA1_METHOD_PATH),
      'hmac id="a", id="b"',
      'hmac headers="x-date"',
    ];
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      let input: string;
      if (i % 2 === 0) {
        input = Array.from({ length: random(120) }, () => chars[random(chars.length)]).join('');
        if (random(4) === 0) input = 'hmac ' + input;
      } else {
        const mutated = Array.from(seeds[random(seeds.length)] ?? '');
        for (let edits = 1 + random(4); edits > 0; edits--) {
          const at = random(mutated.length + 1);
          const kind = random(3);
          const char = chars[random(chars.length)] ?? 'x';
          if (kind === 0) mutated.splice(at, 1);
          else if (kind === 1) mutated.splice(at, 0, char);
          else mutated[at] = char;
        }
        input = mutated.join('');
      }
      const result = parseHmacAuthorization(input);
      if (result.ok) {
        accepted++;
        expect(result.value.headers).toContain('x-date');
        expect(result.value.signature.length).toBe(result.value.algorithm === 'hmac-sha1' ? 20 : 32);
        expect(result.value.headers.length).toBeLessThanOrEqual(16);
      } else {
        expect(typeof result.reason).toBe('string');
      }
    }
    // the mutations must reach both outcomes, or the fuzz proves little
    expect(accepted).toBeGreaterThan(100);
    expect(accepted).toBeLessThan(20_000);
  });
});

describe('verifyKeyPairSignature', () => {
  it.each([
    ['hmac-sha1', SIG_SHA1],
    ['hmac-sha256', SIG_SHA256],
  ])('accepts a known-answer %s signature', (algorithm, signature) => {
    const value = parsed(authorization(algorithm, 'x-date source', signature));
    expect(verifyKeyPairSignature(value, getHeader, 'GET', '/', SECRET_KEY, NOW)).toEqual({ ok: true });
    expect(verifyKeyPairSignature(value, getHeader, 'GET', '/', Buffer.from(SECRET_KEY), NOW)).toEqual({
      ok: true,
    });
  });

  it.each([
    ['hmac-sha1', SIG_SHA1_METHOD_PATH],
    ['hmac-sha256', SIG_SHA256_METHOD_PATH],
  ])('accepts a known-answer %s signature over the method and path', (algorithm, signature) => {
    const value = parsed(authorization(algorithm, 'x-date source @method @path', signature));
    const path = '/orders/42?expand=items';
    expect(verifyKeyPairSignature(value, getHeader, 'post', path, SECRET_KEY, NOW)).toEqual({ ok: true });
    expect(verifyKeyPairSignature(value, getHeader, 'PUT', path, SECRET_KEY, NOW)).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    expect(
      verifyKeyPairSignature(value, getHeader, 'POST', '/orders/42?expand=all', SECRET_KEY, NOW),
    ).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    expect(
      verifyKeyPairSignature(value, getHeader, 'POST', path, SECRET_KEY, NOW, { requireMethodAndPath: true }),
    ).toEqual({ ok: true });
  });

  it('refuses a wrong key, a changed header and another header order', () => {
    const value = parsed(authorization('hmac-sha256', 'x-date source', SIG_SHA256));
    expect(verifyKeyPairSignature(value, getHeader, 'GET', '/', SECRET_KEY + 'x', NOW)).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    const changed = (name: string): string | undefined =>
      name === 'source' ? 'keystile-test2' : getHeader(name);
    expect(verifyKeyPairSignature(value, changed, 'GET', '/', SECRET_KEY, NOW)).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    const reordered = parsed(authorization('hmac-sha256', 'source x-date', SIG_SHA256));
    expect(verifyKeyPairSignature(reordered, getHeader, 'GET', '/', SECRET_KEY, NOW)).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    const flipped = Buffer.from(SIG_SHA256, 'base64');
    flipped[31] = (flipped[31] ?? 0) ^ 1;
    expect(
      verifyKeyPairSignature({ ...value, signature: flipped }, getHeader, 'GET', '/', SECRET_KEY, NOW),
    ).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
  });

  it('refuses a missing header before computing anything', () => {
    const value = parsed(authorization('hmac-sha256', 'x-date source content-md5', SIG_SHA256));
    expect(verifyKeyPairSignature(value, getHeader, 'GET', '/', SECRET_KEY, NOW)).toEqual({
      ok: false,
      reason: 'missing-header',
    });
    const noDate = (name: string): string | undefined => (name === 'x-date' ? undefined : getHeader(name));
    expect(
      verifyKeyPairSignature(
        parsed(authorization('hmac-sha256', 'x-date source', SIG_SHA256)),
        noDate,
        'GET',
        '/',
        SECRET_KEY,
        NOW,
      ),
    ).toEqual({ ok: false, reason: 'missing-header' });
  });

  it('accepts x-date up to 15 minutes either way and no further', () => {
    const value = parsed(authorization('hmac-sha256', 'x-date source', SIG_SHA256));
    const verifyAt = (now: number, maxSkewMs?: number): unknown =>
      verifyKeyPairSignature(
        value,
        getHeader,
        'GET',
        '/',
        SECRET_KEY,
        now,
        maxSkewMs === undefined ? {} : { maxSkewMs },
      );
    expect(DEFAULT_MAX_SKEW_MS).toBe(900_000);
    expect(verifyAt(NOW + 900_000)).toEqual({ ok: true });
    expect(verifyAt(NOW - 900_000)).toEqual({ ok: true });
    expect(verifyAt(NOW + 900_001)).toEqual({ ok: false, reason: 'stale-date' });
    expect(verifyAt(NOW - 900_001)).toEqual({ ok: false, reason: 'stale-date' });
    expect(verifyAt(NOW + 60_000, 30_000)).toEqual({ ok: false, reason: 'stale-date' });
    expect(verifyAt(NOW + 30_000, 30_000)).toEqual({ ok: true });
    expect(verifyAt(Number.NaN)).toEqual({ ok: false, reason: 'stale-date' });
  });

  it.each([
    '2026-11-23T04:14:57Z',
    'Tue, 23 Nov 2026 04:14:57 GMT', // wrong weekday
    'Mon, 23 Nov 2026 04:14:57 UTC',
    'Mon, 23 Nov 2026 04:14:57 gmt',
    'Monday, 23-Nov-26 04:14:57 GMT', // RFC 850, obsolete
    'Mon Nov 23 04:14:57 2026', // asctime, obsolete
    'Mon, 23 Nov 2026 4:14:57 GMT',
    'Mon, 23 Nov 2026 24:00:00 GMT',
    ' Mon, 23 Nov 2026 04:14:57 GMT',
  ])('refuses x-date %j as bad-date', (xDate) => {
    const value = parsed(authorization('hmac-sha256', 'x-date', SIG_SHA256));
    expect(verifyKeyPairSignature(value, () => xDate, 'GET', '/', SECRET_KEY, NOW)).toEqual({
      ok: false,
      reason: 'bad-date',
    });
  });

  it('requires the method and path to be signed when the policy says so', () => {
    const options = { requireMethodAndPath: true };
    const plain = parsed(authorization('hmac-sha256', 'x-date source', SIG_SHA256));
    expect(verifyKeyPairSignature(plain, getHeader, 'GET', '/', SECRET_KEY, NOW, options)).toEqual({
      ok: false,
      reason: 'method-path-not-signed',
    });
    const methodOnly = parsed(authorization('hmac-sha256', 'x-date @method', SIG_SHA256));
    expect(verifyKeyPairSignature(methodOnly, getHeader, 'GET', '/', SECRET_KEY, NOW, options)).toEqual({
      ok: false,
      reason: 'method-path-not-signed',
    });
  });

  it('refuses a header value with a line break, which could pose as another header', () => {
    const value = parsed(authorization('hmac-sha256', 'x-date source', SIG_SHA256));
    const sneaky = (name: string): string | undefined =>
      name === 'source' ? 'a\nsource: b' : getHeader(name);
    expect(verifyKeyPairSignature(value, sneaky, 'GET', '/', SECRET_KEY, NOW)).toEqual({
      ok: false,
      reason: 'malformed',
    });
  });

  it('refuses a hand-made value without x-date and an empty key', () => {
    const value = parsed(authorization('hmac-sha256', 'x-date source', SIG_SHA256));
    expect(
      verifyKeyPairSignature({ ...value, headers: ['source'] }, getHeader, 'GET', '/', SECRET_KEY, NOW),
    ).toEqual({
      ok: false,
      reason: 'malformed',
    });
    expect(verifyKeyPairSignature(value, getHeader, 'GET', '/', '', NOW)).toEqual({
      ok: false,
      reason: 'malformed',
    });
    expect(
      verifyKeyPairSignature(
        { ...value, algorithm: 'hmac-md5' as 'hmac-sha1' },
        getHeader,
        'GET',
        '/',
        SECRET_KEY,
        NOW,
      ),
    ).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('signRequest', () => {
  it('produces the known-answer Authorization header', () => {
    expect(signRequest({ secretId: SECRET_ID, secretKey: SECRET_KEY, headers: requestHeaders })).toBe(
      authorization('hmac-sha256', 'x-date source', SIG_SHA256),
    );
    expect(
      signRequest({
        secretId: SECRET_ID,
        secretKey: SECRET_KEY,
        algorithm: 'hmac-sha1',
        headers: requestHeaders,
      }),
    ).toBe(authorization('hmac-sha1', 'x-date source', SIG_SHA1));
  });

  it('signs the method and path when given, after the headers', () => {
    expect(
      signRequest({
        secretId: SECRET_ID,
        secretKey: SECRET_KEY,
        headers: { 'X-Date': X_DATE, Source: 'keystile-test' },
        method: 'post',
        path: '/orders/42?expand=items',
      }),
    ).toBe(authorization('hmac-sha256', 'x-date source @method @path', SIG_SHA256_METHOD_PATH));
  });

  it('signs the named headers in the given order', () => {
    const header = signRequest({
      secretId: SECRET_ID,
      secretKey: SECRET_KEY,
      headers: { source: 'keystile-test', 'x-date': X_DATE, unsigned: 'x' },
      signedHeaders: ['X-Date', 'source'],
    });
    expect(header).toBe(authorization('hmac-sha256', 'x-date source', SIG_SHA256));
  });

  it.each([
    ['no x-date', { headers: { source: 'a' } }, /must include x-date/],
    ['a listed header without a value', { signedHeaders: ['x-date', 'source', 'other'] }, /has no value/],
    ['@path listed without a path', { signedHeaders: ['x-date', '@path'] }, /has no value/],
    ['a line break', { headers: { 'x-date': X_DATE, source: 'a\r\nb' } }, /line break/],
    ['a name with a space', { signedHeaders: ['x-date', 'a b'] }, /whitespace/],
    ['a quote in the SecretId', { secretId: 'AK"ID' }, /secretId/],
    ['an empty SecretId', { secretId: '' }, /secretId/],
    ['an empty SecretKey', { secretKey: '' }, /secretKey is empty/],
    [
      'seventeen names',
      { signedHeaders: ['x-date', ...Array.from({ length: 16 }, (_, i) => `h${i}`)] },
      /more than 16/,
    ],
  ])('refuses %s', (_name, override, message) => {
    expect(() =>
      signRequest({ secretId: SECRET_ID, secretKey: SECRET_KEY, headers: requestHeaders, ...override }),
    ).toThrow(message);
  });

  it('round-trips through parse and verify for random header values', () => {
    let seed = 99;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor((seed / 2147483648) * n);
    };
    const printable = (length: number): string =>
      Array.from({ length }, () => String.fromCharCode(0x20 + random(95))).join('');
    for (let i = 0; i < 300; i++) {
      const now = NOW + random(1_000_000_000) * 1000;
      const headers = {
        'x-date': imfFixdate(now),
        source: printable(random(40)),
        'content-md5': printable(24),
      };
      const method = ['GET', 'post', 'Delete'][random(3)] ?? 'GET';
      const path = `/${printable(random(60))}`;
      const algorithm = random(2) === 0 ? 'hmac-sha1' : 'hmac-sha256';
      const secretKey = printable(1 + random(64));
      const header = signRequest({ secretId: `AKID${i}`, secretKey, algorithm, headers, method, path });
      const result = parseHmacAuthorization(header);
      expect(result.ok).toBe(true);
      if (!result.ok) continue;
      const lookup = (name: string): string | undefined => (headers as Record<string, string>)[name];
      expect(verifyKeyPairSignature(result.value, lookup, method, path, secretKey, now + 999)).toEqual({
        ok: true,
      });
      expect(verifyKeyPairSignature(result.value, lookup, method, path + 'x', secretKey, now)).toEqual({
        ok: false,
        reason: 'bad-signature',
      });
    }
  });
});

describe('signingString', () => {
  it('joins name: value lines with \\n, upper-casing the method', () => {
    expect(signingString(['x-date', 'source', '@method', '@path'], getHeader, 'post', '/a?b=c')).toEqual({
      ok: true,
      text: `x-date: ${X_DATE}\nsource: keystile-test\n@method: POST\n@path: /a?b=c`,
    });
    expect(signingString(['x-date', 'nope'], getHeader, 'GET', '/')).toEqual({
      ok: false,
      reason: 'missing-header',
    });
  });
});

describe('IMF-fixdate', () => {
  it('formats and parses exactly', () => {
    expect(imfFixdate(NOW)).toBe(X_DATE);
    expect(imfFixdate(NOW + 999)).toBe(X_DATE);
    expect(parseImfFixdate(X_DATE)).toBe(NOW);
    expect(parseImfFixdate('Sun, 06 Nov 1994 08:49:37 GMT')).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
    expect(parseImfFixdate('Tue, 29 Feb 2028 00:00:00 GMT')).toBe(Date.UTC(2028, 1, 29));
  });

  it.each([
    'Mon, 29 Feb 2027 00:00:00 GMT', // not a leap year
    'Mon, 31 Nov 2026 00:00:00 GMT',
    'Mon, 23 Nov 2026 04:60:00 GMT',
    'Mon, 23 Nov 2026 04:14:60 GMT', // no leap seconds in JavaScript time
    'Mon, 00 Nov 2026 04:14:57 GMT',
    'Mon, 23 nov 2026 04:14:57 GMT',
    '',
  ])('refuses %j', (value) => {
    expect(parseImfFixdate(value)).toBeUndefined();
  });
});
