/** Keys as the renderer sees them: which are usable, their credentials, and duplicate values. */
import type { ApiKey } from '../../../crds/src/index.ts';
import { contractInstant, type Credential, type RenderedKey } from '../../../contract/src/format.ts';
import { Reason } from '../status/reasons.ts';
import { olderFirst } from './order.ts';
import type { KeyMaterial, KeyResult } from './types.ts';

/** A key that can be rendered. */
export interface UsableKey {
  readonly key: ApiKey;
  readonly credential: Credential;
  readonly keyId: string;
}

/**
 * Finds the keys that can be rendered: those with material, whose value (or SecretId) no older ApiKey
 * already has, and whose expiry (if any) can be read. Keys are unique by value: a duplicate is reported
 * on the newer key, never shared. A key whose expiry cannot be read keeps its value (a newer key with the
 * same value is still the duplicate) but is not rendered: requests with it are refused until it is fixed.
 */
export function usableKeys(
  keys: readonly ApiKey[],
  materials: ReadonlyMap<string, KeyMaterial>,
): { usable: Map<string, UsableKey>; problems: Map<string, NonNullable<KeyResult['problem']>> } {
  const usable = new Map<string, UsableKey>();
  const problems = new Map<string, NonNullable<KeyResult['problem']>>();
  const owners = new Map<string, string>(); // value hash or SecretId -> the ApiKey that has it
  for (const key of [...keys].sort(olderFirst)) {
    const m = materials.get(key.metadata.name);
    if (!m) continue;
    const type = key.spec.type ?? 'ApiKey';
    const credential = toCredential(type, m);
    if (!credential) continue;
    const identities = credentialIdentities(credential);
    const clash = identities.map((i) => owners.get(i)).find((o) => o !== undefined);
    if (clash !== undefined) {
      problems.set(key.metadata.name, {
        reason: Reason.DuplicateValue,
        message: `its value is the same as ApiKey ${clash}'s, which is older and keeps it; give this key another value`,
      });
      continue;
    }
    for (const i of identities) owners.set(i, key.metadata.name);
    const expiry = expiryProblem(key);
    if (expiry) {
      problems.set(key.metadata.name, expiry);
      continue;
    }
    usable.set(key.metadata.name, { key, credential, keyId: m.keyId });
  }
  return { usable, problems };
}

/** What makes a credential unique in a namespace: the hash of each of its values, or its SecretId. */
export function credentialIdentities(credential: Credential): string[] {
  return credential.type === 'ApiKey'
    ? credential.hashes.map((h) => `sha256:${h.sha256}`)
    : [`secretId:${credential.secretId}`];
}

/** A key's credential from its material, or undefined when the material has no usable value. */
export function toCredential(type: 'ApiKey' | 'KeyPair', m: KeyMaterial): Credential | undefined {
  if (type === 'KeyPair') {
    if (!m.secretId || !m.secretKeys?.length) return undefined;
    return {
      id: m.keyId,
      type: 'KeyPair',
      secretId: m.secretId,
      secretKeys: m.secretKeys.map((s) => ({
        value: s.value,
        ...(s.validUntil && { validUntil: s.validUntil }),
      })),
    };
  }
  if (!m.hashes?.length) return undefined;
  return {
    id: m.keyId,
    type: 'ApiKey',
    hashes: m.hashes.map((h) => ({ sha256: h.sha256, ...(h.validUntil && { validUntil: h.validUntil }) })),
  };
}

/**
 * A key's expiry as the contract holds it (`toISOString`); undefined when spec.expiresAt cannot be read
 * (the API server's date-time check admitted forms such as `2030-01-01T00:00:00,5Z` before the CRD had a
 * pattern) or names a year the contract cannot hold.
 */
export function renderedExpiry(expiresAt: string): string | undefined {
  return contractInstant(Date.parse(expiresAt));
}

/** The problem of a key whose spec.expiresAt is set but cannot be rendered, if it has one. */
export function expiryProblem(key: ApiKey): NonNullable<KeyResult['problem']> | undefined {
  const at = key.spec.expiresAt;
  if (at === undefined || renderedExpiry(at) !== undefined) return undefined;
  return {
    reason: Reason.InvalidExpiry,
    message: `spec.expiresAt ${at} cannot be read as an RFC 3339 time from year 0000 to 9999 (e.g. 2030-01-01T00:00:00Z): the key is not rendered, so requests with it are refused, until it is fixed`,
  };
}

/** Rendered for an expiry that cannot be read (renderKey is never given such a key): long past. */
const UNREADABLE_EXPIRY = '1970-01-01T00:00:00.000Z';

/** What the keys.json of a shard says of a key on a plan. */
export function renderKey(k: UsableKey, plan: string): RenderedKey {
  const s = k.key.spec;
  return {
    id: k.keyId,
    name: k.key.metadata.name,
    plan,
    type: s.type ?? 'ApiKey',
    enabled: s.enabled ?? true,
    ...(s.expiresAt !== undefined && { expiresAt: renderedExpiry(s.expiresAt) ?? UNREADABLE_EXPIRY }),
    ...(s.customer !== undefined && { customer: s.customer }),
  };
}

/** Whether a key's expiry has passed at `now`. */
export function isExpired(key: ApiKey, now: Date): boolean {
  return key.spec.expiresAt !== undefined && Date.parse(key.spec.expiresAt) <= now.getTime();
}
