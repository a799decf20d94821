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

/**
 * The key holder's own view, on the enforcer's self-service port (Envoy routes it with ext_authz off):
 * `GET /v1/usage/<namespace>/<api>/<stage>`, the stage named by the Envoy route's rewrite, never by the
 * client (ADR 0002: the namespace is part of a stage's identity, and one enforcer may serve several).
 */
export const SELF_SERVICE_PATH = '/v1/usage';

/** The public path a client asks on, through Envoy (`enforcer/envoy/bootstrap.ts` routes it). */
export const SELF_SERVICE_PUBLIC_PATH = '/keystile/usage';

/** The self-service port's path for a stage (`<namespace>/<api>/<stage>`): what Envoy rewrites to. */
export function selfServicePath(stage: string): string {
  return `${SELF_SERVICE_PATH}/${stage}`;
}

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
    /** The API stages this enforcer serves, as stage keys (`<namespace>/<api>/<stage>`). */
    stages: Type.Array(Type.String()),
    now: Type.String({ format: 'date-time' }),
    /** The memory store's counters; empty with the Redis store (read Redis). */
    quotas: Type.Array(QuotaCounter),
    /** Ids of the adjustments applied to the counters above. */
    adjustments: Type.Array(Type.String()),
  },
  { additionalProperties: false },
);

/** POST /v1/usage/days: the request (each key a `dayKey`, `ks:{<plan>|<subject>}:day:<YYYY-MM-DD>`). */
export const DaysQuestion = Type.Object(
  { keys: Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 10_000 }) },
  { additionalProperties: false },
);

/** POST /v1/usage/days: the answer, one value per asked key, in order. */
export const DaysAnswer = Type.Object(
  { values: Type.Array(Type.Integer({ minimum: 0 })) },
  { additionalProperties: false },
);

/** An error answer of the usage API (400, 404, 405, 503): what was wrong, never a key value. */
export const UsageError = Type.Object({ message: Type.String() }, { additionalProperties: false });

/**
 * The key holder's own view of one stage's plan. Asking costs nothing: no token, no quota. `quota` is
 * absent when the plan has none; `remaining` is the limit plus `granted`, less `used`, never below 0.
 */
export const SelfServiceAnswer = Type.Object(
  {
    keyId: Type.String(),
    /** The stage key, `<namespace>/<api>/<stage>`. */
    apiStage: Type.String(),
    /** The plan's name. */
    plan: Type.String(),
    /** Present when the key names a customer. */
    customer: Type.Optional(Type.String()),
    /** Whether the plan counts per key or per customer (then `used` is the customer's, across keys). */
    countBy: Type.Optional(Type.Union([Type.Literal('Key'), Type.Literal('Customer')])),
    /** The throttle a request to this stage meets when no route of the plan has its own. */
    throttle: Type.Optional(
      Type.Object({ rate: Type.Number(), burst: Type.Integer() }, { additionalProperties: false }),
    ),
    quota: Type.Optional(
      Type.Object(
        {
          limit: Type.Integer(),
          /** DAY, WEEK or MONTH. */
          period: Type.String(),
          /** The period's id (its first local day, `YYYY-MM-DD`), as usage reports name it. */
          periodId: Type.String(),
          periodStart: Type.String({ format: 'date-time' }),
          periodEnd: Type.String({ format: 'date-time' }),
          used: Type.Integer({ minimum: 0 }),
          granted: Type.Integer(),
          remaining: Type.Integer({ minimum: 0 }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** A store kind. */
export type StoreKind = Static<typeof StoreKind>;
/** One quota counter, as the admin port lists it. */
export type QuotaCounter = Static<typeof QuotaCounter>;
/** The answer of GET /v1/usage/quotas. */
export type QuotasAnswer = Static<typeof QuotasAnswer>;
/** The request of POST /v1/usage/days. */
export type DaysQuestion = Static<typeof DaysQuestion>;
/** The answer of POST /v1/usage/days. */
export type DaysAnswer = Static<typeof DaysAnswer>;
/** The key holder's own view. */
export type SelfServiceAnswer = Static<typeof SelfServiceAnswer>;
/** An error answer of the usage API. */
export type UsageError = Static<typeof UsageError>;
