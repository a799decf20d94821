/**
 * The key format (docs/adr/0001-key-format.md). A generated key reads
 *
 *     ks_<key id>_<secret><checksum>      e.g. ks_3jq7f2m9xk4d_<43 base62 chars><6 base62 chars>
 *
 * - `ks_` lets secret scanners find a leaked key;
 * - the key id (12 lower-case base32 characters, 60 random bits) is not secret: usage, metrics and logs
 *   name the key by it;
 * - the secret is 43 base62 characters, 256 bits of entropy;
 * - the checksum is the CRC-32 of everything before it, 6 base62 characters, so a mistyped or truncated
 *   key is refused before any lookup.
 *
 * Keys are looked up by the SHA-256 of the whole value, so an imported key (AWS's, with no id and no
 * checksum: 20 to 128 printable characters) works the same way.
 */
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/** The prefix of every generated key. */
export const KEY_PREFIX = 'ks_';
/** The prefix of every generated KeyPair SecretId (Tencent's SecretIds start so too). */
export const SECRET_ID_PREFIX = 'AKID';
/** Imported values: at least this long (AWS's API accepts 20). */
export const MIN_KEY_LENGTH = 20;
/** Imported values: at most this long (AWS: 128). */
export const MAX_KEY_LENGTH = 128;
/** Longest SecretId of a KeyPair. */
export const MAX_SECRET_ID_LENGTH = 128;
/**
 * A KeyPair's SecretId: 1 to {@link MAX_SECRET_ID_LENGTH} visible ASCII characters other than `"` and
 * `\\` (it is sent quoted, as `id="<SecretId>"`, in the Authorization header).
 */
export const SECRET_ID_PATTERN = `^[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,${MAX_SECRET_ID_LENGTH}}$`;
const SECRET_ID = new RegExp(SECRET_ID_PATTERN);

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const KEY_ID_LENGTH = 12;
const SECRET_LENGTH = 43;
const CHECKSUM_LENGTH = 6;
const GENERATED = /^ks_([a-z2-7]{12})_([0-9A-Za-z]{43})([0-9A-Za-z]{6})$/;
const PRINTABLE = /^[\x21-\x7e]+$/;

/** A source of random bytes; tests pass a deterministic one. */
export type RandomSource = (size: number) => Buffer;

/** Draws `length` characters from `alphabet` without modulo bias. */
function randomString(alphabet: string, length: number, random: RandomSource): string {
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  while (out.length < length) {
    for (const byte of random(length * 2)) {
      if (byte < limit) out += alphabet.charAt(byte % alphabet.length);
      if (out.length === length) break;
    }
  }
  return out;
}

function base62(n: number, width: number): string {
  let out = '';
  let rest = n;
  for (let i = 0; i < width; i++) {
    out = BASE62.charAt(rest % 62) + out;
    rest = Math.floor(rest / 62);
  }
  return out;
}

/** The 6-character checksum of a key body (`ks_<id>_<secret>`). */
export function checksum(body: string): string {
  return base62(crc32(body), CHECKSUM_LENGTH);
}

/** A new key id: 12 lower-case base32 characters (60 bits), readable in metrics and logs. */
export function newKeyId(random: RandomSource = randomBytes): string {
  return randomString(BASE32, KEY_ID_LENGTH, random);
}

/** A new key value for the given key id (or a new id). */
export function generateKey(
  keyId: string = newKeyId(),
  random: RandomSource = randomBytes,
): { value: string; keyId: string } {
  if (!/^[a-z2-7]{12}$/.test(keyId)) throw new Error('a key id is 12 characters of a-z and 2-7');
  const body = `${KEY_PREFIX}${keyId}_${randomString(BASE62, SECRET_LENGTH, random)}`;
  return { value: body + checksum(body), keyId };
}

/** A new Tencent-style key pair: a SecretId (sent with every request, not secret) and a SecretKey. */
export function generateKeyPair(random: RandomSource = randomBytes): { secretId: string; secretKey: string } {
  return {
    secretId: SECRET_ID_PREFIX + randomString(BASE62, 32, random),
    secretKey: randomString(BASE62, 40, random),
  };
}

/** What a presented key value is, before any lookup. */
export type ParsedKey =
  | { readonly kind: 'keystile'; readonly keyId: string }
  | { readonly kind: 'imported' }
  | { readonly kind: 'malformed'; readonly reason: string };

/**
 * Classifies a presented value without looking it up: a Keystile key with a valid checksum, an
 * imported value (20 to 128 printable characters), or malformed (with the reason, which never quotes
 * the value). A value starting with `ks_` must be a well-formed Keystile key.
 */
export function parseKey(value: string): ParsedKey {
  if (value.length < MIN_KEY_LENGTH) return { kind: 'malformed', reason: 'too short' };
  if (value.length > MAX_KEY_LENGTH) return { kind: 'malformed', reason: 'too long' };
  if (!PRINTABLE.test(value)) return { kind: 'malformed', reason: 'not printable ASCII' };
  if (!value.startsWith(KEY_PREFIX)) return { kind: 'imported' };
  const m = GENERATED.exec(value);
  if (!m?.[1] || !m[2] || !m[3]) return { kind: 'malformed', reason: 'not a Keystile key' };
  if (checksum(`${KEY_PREFIX}${m[1]}_${m[2]}`) !== m[3]) return { kind: 'malformed', reason: 'bad checksum' };
  return { kind: 'keystile', keyId: m[1] };
}

/** Checks a value to be imported (AWS-style): the reason it cannot be, or undefined. Never quotes it. */
export function checkImportedValue(value: string): string | undefined {
  const parsed = parseKey(value);
  return parsed.kind === 'malformed'
    ? `the value is ${parsed.reason} (20 to 128 printable characters)`
    : undefined;
}

/** Why `secretId` cannot be a KeyPair's SecretId, or undefined; never quotes it. */
export function checkSecretId(secretId: string): string | undefined {
  return SECRET_ID.test(secretId)
    ? undefined
    : `the SecretId must be 1 to ${MAX_SECRET_ID_LENGTH} visible ASCII characters other than " and \\`;
}

/** The lookup hash of a key value: SHA-256, hex. */
export function hashKey(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}
