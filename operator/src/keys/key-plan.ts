/**
 * What a key's Secret should hold, decided purely from the ApiKey, the Secret as it is, and (for an
 * imported key) the user's Secret. The I/O around it is in key-secrets.ts.
 *
 * A value is generated once and never again unless the user raises spec.rotation.sequence; an imported
 * value changes when the user's Secret does. Either way the replaced value stays valid for the grace
 * period (its hash, or a KeyPair's old SecretKey, with a validUntil) and the key id never changes, so
 * usage stays with the key.
 */
import { randomBytes } from 'node:crypto';
import {
  checkSecretId,
  checkImportedValue,
  generateKey,
  generateKeyPair,
  hashKey,
  newKeyId,
  type RandomSource,
} from '../../../contract/src/key-format.ts';
import { contractInstant, INSTANT_RANGE } from '../../../contract/src/format.ts';
import { KEY_SECRET_PREFIX, MAX_GRACE_PERIOD } from '../../../crds/src/api-key.ts';
import type { ApiKey } from '../../../crds/src/index.ts';
import { Reason } from '../status/reasons.ts';
import { parseDuration } from './duration.ts';
import { carryOver, KEY_SECRET, type KeySecretData } from './key-secret.ts';

/** The decision for one key's Secret. */
export type KeyPlan =
  | { readonly kind: 'keep' }
  | {
      readonly kind: 'write';
      readonly data: KeySecretData;
      readonly rotated?: { readonly previousValidUntil: string };
    }
  | {
      readonly kind: 'problem';
      readonly reason: Reason;
      readonly message: string;
      /**
       * For an imported key whose Secret held a value: what the key Secret holds from now on (the key id
       * alone). A missing or bad import withdraws the value it replaced, so that fixing the Secret does
       * not bring the withdrawn value back, not even for a grace period.
       */
      readonly withdraw?: KeySecretData;
    };

/** The inputs: `imported` is the user's Secret's data for valueFrom: Secret ('missing' if it does not exist). */
export interface KeyPlanInput {
  readonly key: ApiKey;
  readonly existing: KeySecretData | undefined;
  readonly imported?: Readonly<Record<string, string>> | 'missing';
  readonly now: Date;
  readonly random?: RandomSource;
}

const DEFAULT_GRACE = '24h';
/** A key id as newKeyId makes them: one from a status is used only if it is one. */
const KEY_ID = /^[a-z2-7]{12}$/;

/**
 * The longest grace period (ms): what the CRD admits. A longer one (admitted before the CRD bounded it)
 * counts as this much, so that its end is still an instant the contract holds.
 */
const MAX_GRACE_MS = parseDuration(MAX_GRACE_PERIOD) ?? 0;

/** When a value replaced at `now` stops working, as the key Secret records it (whole seconds, UTC). */
export function graceEnd(now: Date, gracePeriod: string | undefined): string {
  // A grace period that is not a duration ends the replaced value at once.
  const graceMs = Math.min(parseDuration(gracePeriod ?? DEFAULT_GRACE) ?? 0, MAX_GRACE_MS);
  const at = contractInstant(Math.min(now.getTime() + graceMs, INSTANT_RANGE.last));
  return (at ?? now.toISOString()).replace(/\.\d{3}Z$/, 'Z');
}

/** Plans the key Secret. */
export function planKeySecret(input: KeyPlanInput): KeyPlan {
  const { key, existing, now } = input;
  const random = input.random ?? randomBytes;
  const type = key.spec.type ?? 'ApiKey';
  const sequence = key.spec.rotation?.sequence ?? 0;
  const until = graceEnd(now, key.spec.rotation?.gracePeriod);
  // The key id never changes: a key Secret deleted by hand is made again with the id the status shows
  // (and a new value: the old one is gone), so the key keeps its usage and quota.
  const known = key.status?.keyId;
  const keyId = existing?.keyId ?? (known !== undefined && KEY_ID.test(known) ? known : newKeyId(random));

  if (key.spec.valueFrom === 'Secret') {
    // Never read, label or write over a Secret of the operator's own (nothing is withdrawn either: that
    // write would go to the very Secret named).
    if (importsReservedSecret(key)) {
      return {
        kind: 'problem',
        reason: Reason.SecretNameReserved,
        message: `secretRef.name ${key.spec.secretRef?.name ?? ''} is named as the Secrets the operator writes for ApiKeys (${KEY_SECRET_PREFIX}<name>): import the value from a Secret of another name`,
      };
    }
    const plan = planImported(input, keyId, until);
    const held = existing?.sha256 ?? existing?.secretKey ?? existing?.[KEY_SECRET.previousSha256];
    if (plan.kind !== 'problem' || held === undefined || !existing?.keyId) return plan;
    return { ...plan, withdraw: { keyId: existing.keyId } };
  }
  return planGenerated(input, keyId, until, sequence, type);
}

/**
 * Whether an imported key names a Secret of the operator's (`keystile-key-*`): the CRD refuses it, but
 * an ApiKey stored before it did may still say so.
 */
export function importsReservedSecret(key: ApiKey): boolean {
  return key.spec.valueFrom === 'Secret' && (key.spec.secretRef?.name ?? '').startsWith(KEY_SECRET_PREFIX);
}

/** An imported key: its value follows the user's Secret. */
function planImported(input: KeyPlanInput, keyId: string, until: string): KeyPlan {
  const { key, existing } = input;
  const type = key.spec.type ?? 'ApiKey';
  const ref = key.spec.secretRef?.name ?? '';
  if (input.imported === undefined || input.imported === 'missing') {
    return {
      kind: 'problem',
      reason: Reason.SecretNotFound,
      message: `Secret ${ref} does not exist in namespace ${key.metadata.namespace ?? ''}`,
    };
  }
  if (type === 'KeyPair') {
    const secretId = input.imported['secretId'];
    const secretKey = input.imported['secretKey'];
    if (!secretId || !secretKey) {
      return {
        kind: 'problem',
        reason: Reason.SecretNotFound,
        message: `Secret ${ref} must hold the data keys secretId and secretKey`,
      };
    }
    const badId = checkSecretId(secretId);
    if (badId) {
      return {
        kind: 'problem',
        reason: Reason.InvalidValue,
        message: `Secret ${ref}, data key secretId: ${badId}`,
      };
    }
    if (secretKey.length < 16 || secretKey.length > 256) {
      return {
        kind: 'problem',
        reason: Reason.InvalidValue,
        message: `Secret ${ref}: secretKey must have 16 to 256 characters`,
      };
    }
    if (existing?.secretKey === secretKey && existing.secretId === secretId) return { kind: 'keep' };
    const rotating = existing?.secretKey !== undefined && existing.secretId === secretId;
    return {
      kind: 'write',
      data: {
        keyId,
        secretId,
        secretKey,
        ...(rotating &&
          existing.secretKey && {
            [KEY_SECRET.previousSecretKey]: existing.secretKey,
            [KEY_SECRET.previousValidUntil]: until,
            ...carryOver(existing, input.now),
          }),
      },
      ...(rotating && { rotated: { previousValidUntil: until } }),
    };
  }
  const dataKey = key.spec.secretRef?.key ?? 'value';
  const value = input.imported[dataKey];
  if (value === undefined) {
    return {
      kind: 'problem',
      reason: Reason.SecretNotFound,
      message: `Secret ${ref} has no data key ${dataKey}`,
    };
  }
  const bad = checkImportedValue(value);
  if (bad)
    return {
      kind: 'problem',
      reason: Reason.InvalidValue,
      message: `Secret ${ref}, data key ${dataKey}: ${bad}`,
    };
  const sha = hashKey(value);
  if (existing?.sha256 === sha && existing.keyId) return { kind: 'keep' };
  const rotating = existing?.sha256 !== undefined;
  return {
    kind: 'write',
    data: {
      keyId,
      sha256: sha,
      ...(rotating &&
        existing.sha256 && {
          [KEY_SECRET.previousSha256]: existing.sha256,
          [KEY_SECRET.previousValidUntil]: until,
          ...carryOver(existing, input.now),
        }),
    },
    ...(rotating && { rotated: { previousValidUntil: until } }),
  };
}

/** A generated key: a value made once, and again at each rotation. */
function planGenerated(
  input: KeyPlanInput,
  keyId: string,
  until: string,
  sequence: number,
  type: 'ApiKey' | 'KeyPair',
): KeyPlan {
  const { existing } = input;
  const random = input.random ?? randomBytes;
  const done = Number(existing?.['rotation-sequence'] ?? '-1');
  if (type === 'KeyPair') {
    if (existing?.secretId && existing.secretKey && existing.keyId) {
      if (done >= sequence) return { kind: 'keep' };
      return {
        kind: 'write',
        data: {
          keyId,
          secretId: existing.secretId,
          secretKey: generateKeyPair(random).secretKey,
          [KEY_SECRET.previousSecretKey]: existing.secretKey,
          [KEY_SECRET.previousValidUntil]: until,
          ...carryOver(existing, input.now),
          [KEY_SECRET.rotationSequence]: String(sequence),
        },
        rotated: { previousValidUntil: until },
      };
    }
    return {
      kind: 'write',
      data: { keyId, ...generateKeyPair(random), [KEY_SECRET.rotationSequence]: String(sequence) },
    };
  }
  if (existing?.value && existing.keyId) {
    if (done >= sequence) return { kind: 'keep' };
    return {
      kind: 'write',
      data: {
        keyId,
        value: generateKey(keyId, random).value,
        [KEY_SECRET.previousSha256]: hashKey(existing.value),
        [KEY_SECRET.previousValidUntil]: until,
        ...carryOver(existing, input.now),
        [KEY_SECRET.rotationSequence]: String(sequence),
      },
      rotated: { previousValidUntil: until },
    };
  }
  return {
    kind: 'write',
    data: { keyId, value: generateKey(keyId, random).value, [KEY_SECRET.rotationSequence]: String(sequence) },
  };
}
