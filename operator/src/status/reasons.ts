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
  /** The API server refused the rendered config of a stage of the binding (an index over its size limit, say). */
  StageNotWritten: 'StageNotWritten',

  // UsagePlan
  /** The plan is bound to at least one stage. */
  InUse: 'InUse',
  /** No binding uses the plan yet. */
  NotBound: 'NotBound',
  /** Enforcers would refuse the rendered plan (a time zone their ICU does not know, routes of one name). */
  InvalidPlan: 'InvalidPlan',

  // ApiKey
  /** The key has a value and is usable. */
  KeyReady: 'KeyReady',
  /** Another ApiKey has the same value; the older keeps it. */
  DuplicateValue: 'DuplicateValue',
  /** The named Secret (valueFrom: Secret) is missing or lacks the data key. */
  SecretNotFound: 'SecretNotFound',
  /** The imported value is not a valid key (length, characters, a bad checksum). */
  InvalidValue: 'InvalidValue',
  /** spec.expiresAt cannot be read (an object admitted before the CRD checked it): the key is not rendered. */
  InvalidExpiry: 'InvalidExpiry',
  /** secretRef names a Secret of the operator's (keystile-key-*; an object admitted before the CRD refused it). */
  SecretNameReserved: 'SecretNameReserved',
  /**
   * The API server refused the operator's write of a Secret of the key (labelling the imported Secret,
   * writing keystile-key-<name>), or keystile-key-<name> is another controller's.
   */
  SecretNotWritable: 'SecretNotWritable',
  /** The key is disabled. */
  Disabled: 'Disabled',
  /** The key's expiry has passed; for a UsageAdjustment, its period ended before any enforcer applied it. */
  Expired: 'Expired',

  // UsagePlan, condition CountersShared
  /** The enforcers count in Redis: one quota, shared by every replica and stage. */
  SharedStore: 'SharedStore',
  /** One enforcer (memory store) serves every stage of the plan: its count is the whole count. */
  SingleEnforcer: 'SingleEnforcer',
  /** Several enforcers each count in their own memory: each grants the whole quota (and throttle). */
  PerReplicaCounters: 'PerReplicaCounters',

  // UsageAdjustment, condition Applied
  /** In the index of every stage of the plan; no enforcer has reported it applied yet. */
  Rendered: 'Rendered',
  /** An enforcer applied it (a marker in Redis, or an enforcer lists it). */
  Applied: 'Applied',
  /** The plan has no quota to adjust. */
  NoQuota: 'NoQuota',
  /** The key is not on the plan (no binding places it there). */
  KeyNotOnPlan: 'KeyNotOnPlan',
  /** No key of the customer is on the plan. */
  CustomerNotOnPlan: 'CustomerNotOnPlan',
  /** A customer was named, but the plan counts by Key: adjust one of the customer's keys instead. */
  CustomerOnPerKeyPlan: 'CustomerOnPerKeyPlan',
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
