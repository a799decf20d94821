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
 *   previous-earlier       values replaced before that one whose grace has not ended (a rotation within
 *                          another's grace period): JSON, [{"sha256"|"secretKey": ..., "validUntil": ...}]
 *   rotation-sequence      the spec.rotation.sequence the current value was made for
 */
import type { V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import { contractInstant, INSTANT_RANGE } from '../../../contract/src/format.ts';
import { hashKey } from '../../../contract/src/key-format.ts';
import { KEY_SECRET_PREFIX } from '../../../crds/src/api-key.ts';
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
  previousEarlier: 'previous-earlier',
  rotationSequence: 'rotation-sequence',
} as const;

/** A replaced value still in its grace period, older than the one in the previous-* keys. */
export interface EarlierValue {
  /** ApiKey: the value's SHA-256. */
  readonly sha256?: string;
  /** KeyPair: the SecretKey (HMAC needs it in clear). */
  readonly secretKey?: string;
  /** When it stops working (RFC 3339). */
  readonly validUntil: string;
}

/**
 * At most this many earlier values are kept (those ending last): with the current and the previous
 * value, the contract's four hashes (or SecretKeys) a key may have. A fourth rotation within one grace
 * period ends the oldest value's grace at once.
 */
export const MAX_EARLIER = 2;

/** The earlier values of a key Secret's data; none when absent or unreadable. */
export function earlierValues(data: KeySecretData): EarlierValue[] {
  const text = data['previous-earlier'];
  if (text === undefined) return [];
  try {
    const list: unknown = JSON.parse(text);
    if (!Array.isArray(list)) return [];
    return list.filter(
      (e): e is EarlierValue =>
        typeof e === 'object' &&
        e !== null &&
        typeof (e as EarlierValue).validUntil === 'string' &&
        (typeof (e as EarlierValue).sha256 === 'string' || typeof (e as EarlierValue).secretKey === 'string'),
    );
  } catch {
    return [];
  }
}

/**
 * The replaced values of the data whose grace has not ended at `now`: the previous value first, then
 * the earlier ones.
 */
function liveReplaced(data: KeySecretData, now: Date): EarlierValue[] {
  const live = (until: string): boolean => Date.parse(until) > now.getTime();
  const until = data['previous-valid-until'];
  const previous: EarlierValue[] =
    until === undefined || !live(until)
      ? []
      : [
          ...(data['previous-sha256'] ? [{ sha256: data['previous-sha256'], validUntil: until }] : []),
          ...(data['previous-secret-key']
            ? [{ secretKey: data['previous-secret-key'], validUntil: until }]
            : []),
        ];
  return [...previous, ...earlierValues(data).filter((e) => live(e.validUntil))];
}

/**
 * What a rotation at `now` carries over from `existing` besides the value it replaces: the replaced
 * previous value and the earlier ones, each while its own grace lasts, so that a second rotation within
 * a grace period does not cut the first one's short. The `previous-earlier` data, or nothing.
 */
export function carryOver(existing: KeySecretData, now: Date): Partial<KeySecretData> {
  const earlier = liveReplaced(existing, now);
  if (earlier.length === 0) return {};
  const kept = earlier
    .sort((a, b) => Date.parse(b.validUntil) - Date.parse(a.validUntil))
    .slice(0, MAX_EARLIER);
  return { [KEY_SECRET.previousEarlier]: JSON.stringify(kept) };
}

/** Every instant a replaced value of the data stops working (epoch ms). */
export function graceEnds(data: KeySecretData): number[] {
  return [data['previous-valid-until'], ...earlierValues(data).map((e) => e.validUntil)]
    .map((u) => Date.parse(u ?? ''))
    .filter((t) => Number.isFinite(t));
}

/** The name of the Secret the operator generates for an ApiKey. */
export function keySecretName(apiKey: string): string {
  return `${KEY_SECRET_PREFIX}${apiKey}`;
}

/**
 * Whether a key Secret belongs to another ApiKey of the same name: one deleted and created again before
 * the garbage collector removed its Secret. Its controller is an ApiKey with another uid. Such a Secret
 * is treated as absent: the new key gets a value (and a key id) of its own, and the deleted key's value
 * is never rendered for it, not even for a grace period.
 */
export function ownedByAnother(secret: V1Secret | undefined, keyUid: string | undefined): boolean {
  if (!secret || !keyUid) return false;
  const controller = controllerOf(secret);
  return controller !== undefined && controller.kind === 'ApiKey' && controller.uid !== keyUid;
}

/** Whether a Secret has a controller (an owner reference with `controller: true`). */
export function hasController(secret: V1Secret): boolean {
  return controllerOf(secret) !== undefined;
}

function controllerOf(secret: V1Secret): V1OwnerReference | undefined {
  return secret.metadata?.ownerReferences?.find((r) => r.controller === true);
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
  const replaced = liveReplaced(data, now);
  // A grace end past the contract's last instant (written before the CRD bounded gracePeriod) is
  // rendered as that instant: still in the future, and an instant every enforcer reads.
  const validUntil = (e: EarlierValue): string =>
    contractInstant(Math.min(Date.parse(e.validUntil), INSTANT_RANGE.last)) ?? now.toISOString();
  if (type === 'KeyPair') {
    if (!data.secretId || !data.secretKey) return undefined;
    return {
      keyId,
      secretId: data.secretId,
      secretKeys: [
        { value: data.secretKey },
        ...replaced.flatMap((e) => (e.secretKey ? [{ value: e.secretKey, validUntil: validUntil(e) }] : [])),
      ],
    };
  }
  const current = data.value !== undefined ? hashKey(data.value) : data.sha256;
  if (!current) return undefined;
  return {
    keyId,
    hashes: [
      { sha256: current },
      ...replaced.flatMap((e) => (e.sha256 ? [{ sha256: e.sha256, validUntil: validUntil(e) }] : [])),
    ],
  };
}
