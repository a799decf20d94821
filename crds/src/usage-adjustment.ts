/** UsageAdjustment: a one-off grant or take-back of remaining quota (AWS's UpdateUsage), applied exactly once. */
import { type Static, Type } from '@sinclair/typebox';
import { CUSTOMER_PATTERN } from './api-key.ts';
import { API_KEY_NAME_MAX_LENGTH, Conditions, LocalRef, Obj, ObservedGeneration } from './schema.ts';

/** UsageAdjustment.spec: immutable once created, so it can be applied exactly once. */
export const UsageAdjustmentSpec = Obj(
  {
    planRef: LocalRef('The UsagePlan whose current period is adjusted.', 'UsagePlan'),
    keyRef: Type.Optional(
      LocalRef(
        'The ApiKey whose remaining quota changes (plans that count by Key).',
        'ApiKey',
        API_KEY_NAME_MAX_LENGTH,
      ),
    ),
    customer: Type.Optional(
      Type.String({
        description: 'The customer whose shared remaining quota changes (plans that count by Customer).',
        minLength: 1,
        maxLength: 128,
        pattern: CUSTOMER_PATTERN,
      }),
    ),
    amount: Type.Integer({
      description:
        "Requests of quota to grant (positive) or take back (negative) in the plan's current period. AWS's 'offset' meaning 'requests taken off the first period' is an adjustment with a negative amount.",
      minimum: -1_000_000_000_000,
      maximum: 1_000_000_000_000,
    }),
    reason: Type.Optional(Type.String({ description: 'Why, for the record.', maxLength: 512 })),
  },
  {
    description: 'A grant or take-back of remaining quota for one key (or customer) in the current period.',
    rules: [
      {
        rule: 'self == oldSelf',
        message: 'a UsageAdjustment is immutable: create a new one to adjust again',
      },
      {
        rule: 'has(self.keyRef) != has(self.customer)',
        message: 'name exactly one of keyRef and customer',
      },
      { rule: 'self.amount != 0', message: 'amount must not be 0', fieldPath: '.amount' },
    ],
  },
);

/** UsageAdjustment.status */
export const UsageAdjustmentStatus = Type.Object(
  {
    observedGeneration: Type.Optional(ObservedGeneration),
    conditions: Type.Optional(Conditions),
    appliedAt: Type.Optional(
      Type.String({
        description:
          'When the operator first saw it applied (a marker in Redis, or an enforcer listing it). Never removed.',
        format: 'date-time',
      }),
    ),
    period: Type.Optional(
      Type.String({
        description:
          "The plan's period it adjusts, YYYY-MM-DD (its first day): the current period when the operator first saw the adjustment, never changed after.",
        maxLength: 10,
      }),
    ),
  },
  {
    description:
      'Whether and when the adjustment was applied: condition Applied (reason Rendered while enforcers have it but none reported it applied; Applied; or why not).',
  },
);

/** The TypeScript type of a UsageAdjustment's spec. */
export type UsageAdjustmentSpec = Static<typeof UsageAdjustmentSpec>;
/** The TypeScript type of a UsageAdjustment's status. */
export type UsageAdjustmentStatus = Static<typeof UsageAdjustmentStatus>;
