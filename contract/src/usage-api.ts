/**
 * The usage API: what an enforcer's admin port answers about the counters it keeps, read by the operator
 * (ApiKey status, alerts, adjustments) and by `keystile usage`, and what a key holder's own view answers.
 * One source for the three readers; the enforcer's answers are validated against it in tests.
 *
 * With the Redis store the counters are shared, and readers read Redis itself (the key layout is
 * `contract/src/identity.ts`); an enforcer with the memory store is the only place its counters are, so
 * readers ask each enforcer and add the answers up.
 */
import { type Static, Type } from '@sinclair/typebox';

/** The admin port's paths. */
export const USAGE_API_PATHS = Object.freeze({
  /** GET: every quota counter of the current periods (memory store), and applied adjustment ids. */
  quotas: '/v1/usage/quotas',
  /** POST {keys: [...day keys]}: usage-per-day counters. */
  days: '/v1/usage/days',
});

/** The key holder's own view, on the enforcer's self-service port (Envoy routes it with ext_authz off). */
export const SELF_SERVICE_PATH = '/v1/usage';

/** The store kinds an enforcer can count with. */
export const StoreKind = Type.Union([Type.Literal('memory'), Type.Literal('redis')]);

/** One quota counter. */
export const QuotaCounter = Type.Object(
  {
    key: Type.String({ description: "The counter's key (`counterKeys(...).quota`)." }),
    used: Type.Integer({ minimum: 0 }),
    granted: Type.Integer({ description: 'Units adjustments granted (positive) or took back (negative).' }),
    periodEnd: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);

/** GET /v1/usage/quotas */
export const QuotasAnswer = Type.Object(
  {
    store: StoreKind,
    /** Which enforcer answered (host name and pid): readers count enforcers by it. */
    instance: Type.String(),
    /** The API stages this enforcer serves (`api/stage`). */
    stages: Type.Array(Type.String()),
    now: Type.String({ format: 'date-time' }),
    /** The memory store's counters; empty with the Redis store (read Redis). */
    quotas: Type.Array(QuotaCounter),
    /** Ids of the adjustments applied to the counters above. */
    adjustments: Type.Array(Type.String()),
  },
  { additionalProperties: false },
);

/** POST /v1/usage/days: the request. */
export const DaysQuestion = Type.Object(
  { keys: Type.Array(Type.String(), { maxItems: 10_000 }) },
  { additionalProperties: false },
);

/** POST /v1/usage/days: the answer, one value per asked key, in order. */
export const DaysAnswer = Type.Object(
  { values: Type.Array(Type.Integer({ minimum: 0 })) },
  { additionalProperties: false },
);

/** The key holder's own view of one stage's plan. */
export const SelfServiceAnswer = Type.Object(
  {
    keyId: Type.String(),
    apiStage: Type.String(),
    plan: Type.String(),
    throttle: Type.Optional(Type.Object({ rate: Type.Number(), burst: Type.Integer() })),
    quota: Type.Optional(
      Type.Object({
        limit: Type.Integer(),
        period: Type.String(),
        periodStart: Type.String({ format: 'date-time' }),
        periodEnd: Type.String({ format: 'date-time' }),
        used: Type.Integer({ minimum: 0 }),
        granted: Type.Integer(),
        remaining: Type.Integer({ minimum: 0 }),
      }),
    ),
  },
  { additionalProperties: false },
);

export type StoreKind = Static<typeof StoreKind>;
export type QuotaCounter = Static<typeof QuotaCounter>;
export type QuotasAnswer = Static<typeof QuotasAnswer>;
export type DaysQuestion = Static<typeof DaysQuestion>;
export type DaysAnswer = Static<typeof DaysAnswer>;
export type SelfServiceAnswer = Static<typeof SelfServiceAnswer>;
