/**
 * Condition reasons: the one list, so status, Events, docs and tests agree. Binding reasons mirror the
 * errors of Tencent's BindSecretIds (in brackets).
 */
export const Reason = {
  // PlanBinding
  /** Every key is bound on every stage. */
  Bound: 'Bound',
  /** The plan does not exist [ResourceNotFound.InvalidUsagePlan]. */
  PlanNotFound: 'PlanNotFound',
  /** A named key does not exist [ResourceNotFound.InvalidAccessKeyId]. */
  KeyNotFound: 'KeyNotFound',
  /** A key is already on another plan for a stage, through an older binding [UnsupportedOperation.AlreadyBindUsagePlan]. */
  KeyAlreadyBound: 'KeyAlreadyBound',
  /** A key is disabled: bound, but refused [UnsupportedOperation.InvalidStatus]. */
  KeyDisabled: 'KeyDisabled',
  /** A key's expiry has passed: bound, but refused. */
  KeyExpired: 'KeyExpired',
  /** The plan's maxKeys is reached [LimitExceeded.AccessKeyCountInUsagePlanLimitExceeded]. */
  PlanFull: 'PlanFull',
  /** A key has no usable value yet (being generated, its Secret missing, or a duplicate value). */
  KeyNotReady: 'KeyNotReady',

  // UsagePlan
  /** The plan is bound to at least one stage. */
  InUse: 'InUse',
  /** No binding uses the plan yet. */
  NotBound: 'NotBound',

  // ApiKey
  /** The key has a value and is usable. */
  KeyReady: 'KeyReady',
  /** Another ApiKey has the same value; the older keeps it. */
  DuplicateValue: 'DuplicateValue',
  /** The named Secret (valueFrom: Secret) is missing or lacks the data key. */
  SecretNotFound: 'SecretNotFound',
  /** The imported value is not a valid key (length, characters, a bad checksum). */
  InvalidValue: 'InvalidValue',
  /** The key is disabled. */
  Disabled: 'Disabled',
  /** The key's expiry has passed. */
  Expired: 'Expired',
} as const;

/** A condition reason. */
export type Reason = (typeof Reason)[keyof typeof Reason];

/**
 * Binding problem reasons from most to least pressing: a binding's Ready condition carries the first
 * that applies.
 */
export const BINDING_PROBLEM_ORDER: readonly Reason[] = [
  Reason.KeyAlreadyBound,
  Reason.PlanFull,
  Reason.KeyNotFound,
  Reason.KeyNotReady,
  Reason.KeyDisabled,
  Reason.KeyExpired,
];
