/**
 * The enforcer's catalog of answers and failures, with stable codes (Fastify's `lib/errors.js` habit).
 *
 * Every decision carries one {@link Reason}: the code is what logs and the `reason` metric label say,
 * and never reaches a client beyond the answer's generic body (a client learns "Forbidden", not why).
 * The table says, for each code, the HTTP status Envoy is told, the denial type a plan may configure
 * an answer for (`UsagePlan.spec.responses[].type`), and the `decision` metric label.
 *
 * Config failures have codes of their own ({@link ConfigError}): they never change an answer (the last
 * good config keeps serving) but are counted and logged by class.
 */

/** Why a check was answered as it was. Stable: dashboards and alerts use these strings. */
export const Reason = {
  /** The key is valid and within its throttle and quota. */
  Allowed: 'Allowed',
  /** Shadow mode: the throttle would have refused; allowed. */
  ShadowThrottled: 'ShadowThrottled',
  /** Shadow mode: the quota would have refused; allowed. */
  ShadowQuotaExceeded: 'ShadowQuotaExceeded',
  /** No config is loaded and the enforcer is configured to fail open. */
  FailOpen: 'FailOpen',

  /** The check names no API stage, or one this enforcer has no config for (ADR 0002). */
  UnknownStage: 'UnknownStage',
  /** No key in any configured place, and no `Authorization: hmac` signature. */
  MissingKey: 'MissingKey',
  /** The value is too short, too long, not printable, or a `ks_` key with a bad checksum (ADR 0001). */
  MalformedKey: 'MalformedKey',
  /** No key on this stage has this value (or this SecretId). */
  UnknownKey: 'UnknownKey',
  /** The value is known on another stage of this enforcer, not on this one. */
  KeyNotBound: 'KeyNotBound',
  /** A value a rotation replaced, past its grace period (`validUntil`). */
  KeyRotatedOut: 'KeyRotatedOut',
  /** The key is disabled. */
  KeyDisabled: 'KeyDisabled',
  /** The key's `expiresAt` has passed. */
  KeyExpired: 'KeyExpired',
  /** The `Authorization: hmac` header does not parse. */
  MalformedSignature: 'MalformedSignature',
  /** A header the signature lists is absent from the request. */
  SignedHeaderMissing: 'SignedHeaderMissing',
  /** The signed `x-date` is not an IMF-fixdate. */
  BadSignatureDate: 'BadSignatureDate',
  /** The signed `x-date` is outside the freshness window. */
  StaleSignature: 'StaleSignature',
  /** The policy requires `@method` and `@path` to be signed, and they are not. */
  MethodPathNotSigned: 'MethodPathNotSigned',
  /** The HMAC does not match. */
  BadSignature: 'BadSignature',
  /** The check request itself is unusable (an unparsable URL, an oversized or broken request). */
  MalformedRequest: 'MalformedRequest',

  /** The token bucket (the route's, or the plan's) is empty. */
  Throttled: 'Throttled',
  /** The quota for the period is used up. */
  QuotaExceeded: 'QuotaExceeded',

  /** No valid config has been loaded yet (fail closed). */
  NoConfig: 'NoConfig',
  /** The enforcer failed while deciding (a store error, a bug): fail closed. */
  InternalError: 'InternalError',
} as const;

/** A reason code. */
export type Reason = (typeof Reason)[keyof typeof Reason];

/** The denial types a plan can configure an answer for (`RenderedResponse.type`), and `Unavailable`. */
export type DenialType = 'Forbidden' | 'Throttled' | 'QuotaExceeded' | 'Unavailable';

/** The `decision` label of the decision metric. */
export type DecisionLabel =
  | 'allowed'
  | 'forbidden'
  | 'throttled'
  | 'quota_exceeded'
  | 'shadow_throttled'
  | 'shadow_quota_exceeded'
  | 'unavailable'
  | 'fail_open';

/** What a reason code answers. */
export interface ReasonInfo {
  /** The HTTP status told to Envoy (a plan's configured answer may replace it for denials). */
  readonly status: number;
  /** The denial type, or undefined for answers that allow. */
  readonly denial: DenialType | undefined;
  /** The `decision` metric label. */
  readonly decision: DecisionLabel;
  /** What it means, for the docs and for people reading logs. */
  readonly meaning: string;
}

const forbidden = (meaning: string): ReasonInfo => ({
  status: 403,
  denial: 'Forbidden',
  decision: 'forbidden',
  meaning,
});

/** The catalog: every reason code with its answer. */
export const REASONS: Readonly<Record<Reason, ReasonInfo>> = Object.freeze({
  Allowed: { status: 200, denial: undefined, decision: 'allowed', meaning: 'valid key, within limits' },
  ShadowThrottled: {
    status: 200,
    denial: undefined,
    decision: 'shadow_throttled',
    meaning: 'shadow mode: would have been throttled',
  },
  ShadowQuotaExceeded: {
    status: 200,
    denial: undefined,
    decision: 'shadow_quota_exceeded',
    meaning: 'shadow mode: would have exceeded the quota',
  },
  FailOpen: {
    status: 200,
    denial: undefined,
    decision: 'fail_open',
    meaning: 'no config loaded, or the store or the decision failed; allowed because fail-open is configured',
  },
  UnknownStage: forbidden('the check names no API stage this enforcer serves'),
  MissingKey: forbidden('no key and no signature in the request'),
  MalformedKey: forbidden('the key is not a well-formed value'),
  UnknownKey: forbidden('no key on this stage has this value or SecretId'),
  KeyNotBound: forbidden('the key is bound on another API stage, not this one'),
  KeyRotatedOut: forbidden('a replaced value past its grace period'),
  KeyDisabled: forbidden('the key is disabled'),
  KeyExpired: forbidden('the key has expired'),
  MalformedSignature: forbidden('the hmac Authorization header does not parse'),
  SignedHeaderMissing: forbidden('a signed header is missing from the request'),
  BadSignatureDate: forbidden('x-date is not an IMF-fixdate'),
  StaleSignature: forbidden('x-date is outside the freshness window'),
  MethodPathNotSigned: forbidden('@method and @path must be signed'),
  BadSignature: forbidden('the signature does not match'),
  MalformedRequest: forbidden('the check request is unusable'),
  Throttled: {
    status: 429,
    denial: 'Throttled',
    decision: 'throttled',
    meaning: 'the token bucket is empty',
  },
  QuotaExceeded: {
    status: 429,
    denial: 'QuotaExceeded',
    decision: 'quota_exceeded',
    meaning: "the period's quota is used up",
  },
  NoConfig: {
    status: 503,
    denial: 'Unavailable',
    decision: 'unavailable',
    meaning: 'no valid config loaded yet (fail closed)',
  },
  InternalError: {
    status: 503,
    denial: 'Unavailable',
    decision: 'unavailable',
    meaning: 'the enforcer failed while deciding (fail closed)',
  },
});

/** The default body of each denial type: AWS API Gateway's messages. */
export const DEFAULT_MESSAGES: Readonly<Record<DenialType, string>> = Object.freeze({
  Forbidden: 'Forbidden',
  Throttled: 'Too Many Requests',
  QuotaExceeded: 'Limit Exceeded',
  Unavailable: 'Service Unavailable',
});

/** Why a config (re)load was refused; the `reason` label of `keystile_config_reload_errors_total`. */
export const ConfigError = {
  /** A file or object could not be read. */
  Unreadable: 'Unreadable',
  /** A document failed the contract's JSON Schema, or has a version this build does not read. */
  Invalid: 'Invalid',
  /** A shard the index names has not arrived, or its bytes do not hash to what the index says. */
  Incomplete: 'Incomplete',
  /** The documents disagree (a shard of another stage, a plan a key names missing, a duplicate value). */
  Inconsistent: 'Inconsistent',
} as const;

/** A config error code. */
export type ConfigError = (typeof ConfigError)[keyof typeof ConfigError];

/** A refused config: the code, and a message that never quotes a document (it may hold secrets). */
export class ConfigLoadError extends Error {
  /** The error class. */
  readonly code: ConfigError;

  /** `message` must not quote document content. */
  constructor(code: ConfigError, message: string) {
    super(message);
    this.name = 'ConfigLoadError';
    this.code = code;
  }
}
