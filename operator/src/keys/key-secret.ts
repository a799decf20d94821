/**
 * The Secret that holds one ApiKey's value (or key pair): written by the operator (and by `keystile
 * render` offline), owned by the ApiKey, never read by enforcers. Its layout:
 *
 *   keyId                  the non-secret key id (0001)
 *   value                  ApiKey, generated: the current value
 *   sha256                 ApiKey, imported: SHA-256 of the current value (the value stays in the user's Secret)
 *   secretId, secretKey    KeyPair: the current pair
 *   previous-sha256        ApiKey: SHA-256 of the value a rotation replaced
 *   previous-secret-key    KeyPair: the SecretKey a rotation replaced (HMAC needs it in clear)
 *   previous-valid-until   when the replaced value stops working (RFC 3339)
 *   rotation-sequence      the spec.rotation.sequence the current value was made for
 */
import type { V1Secret } from '@kubernetes/client-node';
import { hashKey } from '../../../contract/src/key-format.ts';
import type { KeyMaterial } from '../render/types.ts';

/** The data keys of a key Secret. */
export const KEY_SECRET = {
  keyId: 'keyId',
  value: 'value',
  sha256: 'sha256',
  secretId: 'secretId',
  secretKey: 'secretKey',
  previousSha256: 'previous-sha256',
  previousSecretKey: 'previous-secret-key',
  previousValidUntil: 'previous-valid-until',
  rotationSequence: 'rotation-sequence',
} as const;

/** The name of the Secret the operator generates for an ApiKey. */
export function keySecretName(apiKey: string): string {
  return `keystile-key-${apiKey}`;
}

/**
 * Whether a key Secret belongs to another ApiKey of the same name: one deleted and created again before
 * the garbage collector removed its Secret. Its controller is an ApiKey with another uid. Such a Secret
 * is treated as absent: the new key gets a value (and a key id) of its own, and the deleted key's value
 * is never rendered for it, not even for a grace period.
 */
export function ownedByAnother(secret: V1Secret | undefined, keyUid: string | undefined): boolean {
  if (!secret || !keyUid) return false;
  const controller = secret.metadata?.ownerReferences?.find((r) => r.controller === true);
  return controller !== undefined && controller.kind === 'ApiKey' && controller.uid !== keyUid;
}

/** A key Secret's content, decoded. */
export type KeySecretData = Partial<Record<(typeof KEY_SECRET)[keyof typeof KEY_SECRET], string>>;

/**
 * What the renderer needs from a key Secret: hashes (ApiKey) or the pair (KeyPair), with a replaced value
 * kept until its grace period ends at `now`. Undefined when the Secret does not hold a usable value.
 */
export function materialFromSecret(
  type: 'ApiKey' | 'KeyPair',
  data: KeySecretData,
  now: Date,
): KeyMaterial | undefined {
  const keyId = data.keyId;
  if (!keyId) return undefined;
  const until = data['previous-valid-until'];
  const previousLive = until !== undefined && Date.parse(until) > now.getTime();
  if (type === 'KeyPair') {
    if (!data.secretId || !data.secretKey) return undefined;
    const previous = data['previous-secret-key'];
    return {
      keyId,
      secretId: data.secretId,
      secretKeys: [
        { value: data.secretKey },
        ...(previousLive && previous && until
          ? [{ value: previous, validUntil: new Date(until).toISOString() }]
          : []),
      ],
    };
  }
  const current = data.value !== undefined ? hashKey(data.value) : data.sha256;
  if (!current) return undefined;
  const previous = data['previous-sha256'];
  return {
    keyId,
    hashes: [
      { sha256: current },
      ...(previousLive && previous && until
        ? [{ sha256: previous, validUntil: new Date(until).toISOString() }]
        : []),
    ],
  };
}
