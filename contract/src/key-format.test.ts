import { describe, expect, it } from 'vitest';
import {
  checkImportedValue,
  checksum,
  generateKey,
  generateKeyPair,
  hashKey,
  newKeyId,
  parseKey,
} from './key-format.ts';

describe('key format', () => {
  it('generates ks_<id>_<secret><checksum> keys that parse back to their id', () => {
    const { value, keyId } = generateKey();
    expect(value).toMatch(/^ks_[a-z2-7]{12}_[0-9A-Za-z]{49}$/);
    expect(value).toHaveLength(65);
    expect(parseKey(value)).toEqual({ kind: 'keystile', keyId });
  });

  it('draws 256 bits of secret: no two keys alike, every base62 character used', () => {
    const values = Array.from({ length: 2000 }, () => generateKey().value);
    expect(new Set(values).size).toBe(values.length);
    const secretChars = new Set<string>();
    for (const v of values) for (const c of v.slice(16, 59)) secretChars.add(c);
    expect(secretChars.size).toBe(62);
  });

  it('refuses a key with one character changed, by its checksum, before any lookup', () => {
    const { value } = generateKey();
    const i = 30;
    const changed = value.slice(0, i) + (value[i] === 'a' ? 'b' : 'a') + value.slice(i + 1);
    expect(parseKey(changed)).toEqual({ kind: 'malformed', reason: 'bad checksum' });
    expect(parseKey(value.slice(0, -1))).toEqual({ kind: 'malformed', reason: 'not a Keystile key' });
  });

  it('computes the checksum as base62 CRC-32 of the body (a known answer)', () => {
    // Worked out apart from this code (Python's zlib.crc32): CRC-32 of "ks_" is 0x44059b83 = 1141218179,
    // which in six base62 digits (0-9A-Za-z) is 1FEQyp.
    expect(checksum('ks_')).toBe('1FEQyp');
  });

  it('accepts imported values of 20 to 128 printable characters, and nothing else', () => {
    expect(parseKey('apikey1234abcdefghij0123456789')).toEqual({ kind: 'imported' });
    expect(parseKey('a'.repeat(20))).toEqual({ kind: 'imported' });
    expect(parseKey('a'.repeat(128))).toEqual({ kind: 'imported' });
    expect(parseKey('a'.repeat(19))).toEqual({ kind: 'malformed', reason: 'too short' });
    expect(parseKey('a'.repeat(129))).toEqual({ kind: 'malformed', reason: 'too long' });
    expect(parseKey('a'.repeat(19) + ' ')).toEqual({ kind: 'malformed', reason: 'not printable ASCII' });
    expect(parseKey('a'.repeat(19) + 'é')).toEqual({ kind: 'malformed', reason: 'not printable ASCII' });
    expect(checkImportedValue('short')).toBe('the value is too short (20 to 128 printable characters)');
    expect(checkImportedValue('apikey1234abcdefghij0123456789')).toBeUndefined();
  });

  it('hashes with SHA-256 (a known answer)', () => {
    expect(hashKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('makes key ids of 12 base32 characters and Tencent-shaped key pairs', () => {
    expect(newKeyId()).toMatch(/^[a-z2-7]{12}$/);
    const pair = generateKeyPair();
    expect(pair.secretId).toMatch(/^AKID[0-9A-Za-z]{32}$/);
    expect(pair.secretKey).toMatch(/^[0-9A-Za-z]{40}$/);
    expect(() => generateKey('NOT-AN-ID')).toThrow(/12 characters/);
  });
});
