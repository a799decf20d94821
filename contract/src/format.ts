/**
 * The rendered contract: what the operator writes and the enforcer reads, per API stage (docs/contract.md).
 * One TypeBox definition gives the JSON Schema both sides validate with (contract/schema/v1.json,
 * generated) and the TypeScript types.
 *
 * Per API stage (namespace, api, stage) the operator writes:
 *   ConfigMap keystile-<api>.<stage>             index.json   the index: plans, and every shard with its hash
 *   ConfigMap keystile-<api>.<stage>.keys-<i>    keys.json    key ids, plans, enabled, expiry, customer
 *   Secret    keystile-<api>.<stage>.secrets-<i> secrets.json key hashes, and KeyPair SecretKeys
 * Shards are written first and the index last; a reader swaps to a new config only when every shard the
 * index names has arrived with the hash the index gives.
 */
import { type Static, Type } from '@sinclair/typebox';
import { SECRET_ID_PATTERN } from './key-format.ts';
import {
  HEADER_VALUE_PATTERN,
  HTTP_METHODS,
  LOWER_CASE_HEADER_NAME_PATTERN,
  MEDIA_TYPE_PATTERN,
  RESERVED_RESPONSE_HEADERS,
  ROUTE_PATH_MAX_LENGTH,
  WEEKDAYS,
} from '../../crds/src/usage-plan.ts';

/** The version this code writes. */
export const CONTRACT_VERSION = 'keystile.dev/contract/v1';

/** The versions a reader accepts (see docs/contract.md, "Upgrades"). */
export const ACCEPTED_CONTRACT_VERSIONS: readonly string[] = [CONTRACT_VERSION];

const Version = Type.String({
  description: 'The contract version, e.g. keystile.dev/contract/v1.',
  maxLength: 64,
});
const Sha256 = Type.String({ description: 'A SHA-256, lower-case hex.', pattern: '^[0-9a-f]{64}$' });
const Instant = Type.String({ description: 'An RFC 3339 instant.', format: 'date-time' });

/**
 * The instants (epoch ms) the contract can hold: RFC 3339 wants a four-digit year, which
 * `Date.prototype.toISOString` writes from year 0 to year 9999 (beyond, it writes `+010000-...`).
 */
export const INSTANT_RANGE = {
  first: Date.parse('0000-01-01T00:00:00.000Z'),
  last: Date.parse('9999-12-31T23:59:59.999Z'),
} as const;

/** An instant as the contract holds it (`toISOString`), or undefined outside {@link INSTANT_RANGE}. */
export function contractInstant(ms: number): string | undefined {
  if (!(ms >= INSTANT_RANGE.first && ms <= INSTANT_RANGE.last)) return undefined;
  return new Date(ms).toISOString();
}

/** An API stage's identity: namespace, api, stage. */
export const ApiStageId = Type.Object(
  {
    namespace: Type.String({ description: 'The namespace of the resources.', maxLength: 63 }),
    api: Type.String({ description: 'The API.', maxLength: 63 }),
    stage: Type.String({ description: 'The stage.', maxLength: 63 }),
  },
  { description: 'An API stage.', additionalProperties: false },
);

/** A token bucket. */
export const RenderedThrottle = Type.Object(
  {
    rate: Type.Number({ description: 'Tokens per second.', exclusiveMinimum: 0 }),
    burst: Type.Integer({ description: 'Bucket size.', minimum: 1 }),
  },
  { additionalProperties: false },
);

/** A calendar quota. */
export const RenderedQuota = Type.Object(
  {
    limit: Type.Integer({ minimum: 1 }),
    period: Type.Union([Type.Literal('DAY'), Type.Literal('WEEK'), Type.Literal('MONTH')]),
    startDay: Type.Optional(Type.Integer({ minimum: 1, maximum: 28 })),
    startWeekday: Type.Optional(Type.Union(WEEKDAYS.map((d) => Type.Literal(d)))),
    timeZone: Type.String({ maxLength: 64 }),
  },
  { additionalProperties: false },
);

/**
 * The longest route name: a route's own name is a DNS label; without one it is named by its methods and
 * path (`GET,POST /v1/orders`), every method listed and the longest path included, and ` (64)` when
 * earlier routes have the same methods and path.
 */
const ROUTE_NAME_MAX_LENGTH = HTTP_METHODS.join(',').length + 1 + ROUTE_PATH_MAX_LENGTH + ' (64)'.length;

/** A per-route override. */
export const RenderedRoute = Type.Object(
  {
    name: Type.String({ description: 'For metrics and logs.', maxLength: ROUTE_NAME_MAX_LENGTH }),
    methods: Type.Array(Type.String({ maxLength: 8 }), { description: "Empty or ['*'] matches any method." }),
    path: Type.String({ maxLength: ROUTE_PATH_MAX_LENGTH }),
    throttle: Type.Optional(RenderedThrottle),
    cost: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);

/** A configured denial answer. */
export const RenderedResponse = Type.Object(
  {
    type: Type.Union([Type.Literal('Forbidden'), Type.Literal('Throttled'), Type.Literal('QuotaExceeded')]),
    status: Type.Integer({ minimum: 400, maximum: 599 }),
    body: Type.Optional(Type.String({ maxLength: 4096 })),
    contentType: Type.Optional(Type.String({ maxLength: 128, pattern: MEDIA_TYPE_PATTERN })),
    headers: Type.Optional(
      Type.Unsafe<Record<string, string>>({
        type: 'object',
        description:
          'Extra response headers: names lower-case HTTP tokens, none the gateway owns; values one line of visible ASCII.',
        maxProperties: 16,
        propertyNames: {
          pattern: LOWER_CASE_HEADER_NAME_PATTERN,
          not: { enum: [...RESERVED_RESPONSE_HEADERS] },
        },
        additionalProperties: Type.String({ maxLength: 1024, pattern: HEADER_VALUE_PATTERN }),
      }),
    ),
  },
  { additionalProperties: false },
);

/** A plan as enforcers need it. */
export const RenderedPlan = Type.Object(
  {
    id: Type.String({ description: "The plan's counter identity: '<namespace>/<name>'.", maxLength: 320 }),
    name: Type.String({ maxLength: 253 }),
    throttle: Type.Optional(RenderedThrottle),
    quota: Type.Optional(RenderedQuota),
    routes: Type.Array(RenderedRoute),
    shadow: Type.Boolean(),
    countBy: Type.Union([Type.Literal('Key'), Type.Literal('Customer')]),
    responses: Type.Array(RenderedResponse),
    alertThresholds: Type.Array(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  { additionalProperties: false },
);

/**
 * A UsageAdjustment as enforcers apply it: to the subject's quota counter of one period, once (the
 * store keeps a marker of its id beside the counter). Rendered only while its period is current.
 */
export const RenderedAdjustment = Type.Object(
  {
    id: Type.String({ description: "The UsageAdjustment's uid: applied at most once.", maxLength: 64 }),
    plan: Type.String({ description: "The plan's name (its id is '<namespace>/<plan>').", maxLength: 253 }),
    subject: Type.String({
      description: "Whose counter: 'key:<key id>' or 'customer:<customer>'.",
      pattern: '^(key|customer):[^{}|]+$',
      maxLength: 160,
    }),
    period: Type.String({
      description: 'The period id (its first local day).',
      pattern: '^\\d{4}-\\d{2}-\\d{2}$',
    }),
    amount: Type.Integer({ description: 'Units granted (positive) or taken back (negative).' }),
  },
  { additionalProperties: false },
);

/** Where a shard is, and the hash of its data. */
export const ObjectRef = Type.Object(
  {
    name: Type.String({ description: 'The ConfigMap or Secret.', maxLength: 253 }),
    sha256: Sha256,
  },
  { additionalProperties: false },
);

/** The index of one API stage, written last. */
export const StageIndex = Type.Object(
  {
    version: Version,
    apiStage: ApiStageId,
    revision: Type.String({
      description: 'A hash of everything the index names: equal revisions are equal configs.',
      pattern: '^[0-9a-f]{64}$',
    }),
    keyCount: Type.Integer({ minimum: 0 }),
    plans: Type.Array(RenderedPlan),
    adjustments: Type.Optional(
      Type.Array(RenderedAdjustment, {
        description: "Quota adjustments of the stage's plans in their current periods.",
        maxItems: 10000,
      }),
    ),
    shards: Type.Array(
      Type.Object(
        {
          index: Type.Integer({ minimum: 0 }),
          count: Type.Integer({ description: 'Keys in the shard.', minimum: 0 }),
          keys: ObjectRef,
          secrets: ObjectRef,
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** A key as enforcers need it: no secret. */
export const RenderedKey = Type.Object(
  {
    id: Type.String({ description: 'The key id.', maxLength: 64 }),
    name: Type.String({ description: 'The ApiKey.', maxLength: 253 }),
    plan: Type.String({ description: "The plan's name (its id is '<namespace>/<plan>').", maxLength: 253 }),
    type: Type.Union([Type.Literal('ApiKey'), Type.Literal('KeyPair')]),
    enabled: Type.Boolean(),
    expiresAt: Type.Optional(Instant),
    customer: Type.Optional(Type.String({ maxLength: 128 })),
  },
  { additionalProperties: false },
);

/** A keys shard (ConfigMap data `keys.json`). */
export const KeysShard = Type.Object(
  {
    version: Version,
    apiStage: ApiStageId,
    shard: Type.Integer({ minimum: 0 }),
    keys: Type.Array(RenderedKey),
  },
  { additionalProperties: false },
);

const ValidUntil = Type.Optional(
  Type.String({ description: 'A replaced value: accepted until then.', format: 'date-time' }),
);

/** An ApiKey's lookup hashes: the current value's, and a rotated-out value's until its grace ends. */
export const HashCredential = Type.Object(
  {
    id: Type.String({ maxLength: 64 }),
    type: Type.Literal('ApiKey'),
    hashes: Type.Array(
      Type.Object({ sha256: Sha256, validUntil: ValidUntil }, { additionalProperties: false }),
      {
        minItems: 1,
        maxItems: 4,
      },
    ),
  },
  { additionalProperties: false },
);

/**
 * A KeyPair: its SecretId and SecretKey(s). HMAC verification needs the SecretKey itself, so unlike an
 * ApiKey's value it cannot be hashed: it lives only in Secrets, never in a ConfigMap.
 */
export const KeyPairCredential = Type.Object(
  {
    id: Type.String({ maxLength: 64 }),
    type: Type.Literal('KeyPair'),
    secretId: Type.String({ pattern: SECRET_ID_PATTERN }),
    secretKeys: Type.Array(
      Type.Object(
        { value: Type.String({ minLength: 16, maxLength: 256 }), validUntil: ValidUntil },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 4 },
    ),
  },
  { additionalProperties: false },
);

/**
 * One credential: a hashed ApiKey or a KeyPair, told apart by `type` (a JSON Schema discriminator, so a
 * validator reports what is wrong with the branch the `type` names, not with the first branch).
 */
const AnyCredential = Type.Unsafe<Static<typeof HashCredential> | Static<typeof KeyPairCredential>>({
  type: 'object',
  discriminator: { propertyName: 'type' },
  oneOf: [HashCredential, KeyPairCredential],
});

/** A secrets shard (Secret data `secrets.json`). */
export const SecretsShard = Type.Object(
  {
    version: Version,
    apiStage: ApiStageId,
    shard: Type.Integer({ minimum: 0 }),
    credentials: Type.Array(AnyCredential),
  },
  { additionalProperties: false },
);

/** Everything for one API stage, as one document: what `keystile render` writes for standalone enforcers. */
export const StageDocuments = Type.Object(
  {
    index: StageIndex,
    keys: Type.Array(Type.String({ description: 'The keys.json of each shard, in shard order, verbatim.' })),
    secrets: Type.Array(
      Type.String({ description: 'The secrets.json of each shard, in shard order, verbatim.' }),
    ),
  },
  { additionalProperties: false },
);

/** The standalone config file: every stage's documents (it holds secrets: keep it mode 0600). */
export const StandaloneConfig = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    version: Version,
    kind: Type.Literal('KeystileStandaloneConfig'),
    stages: Type.Array(StageDocuments),
  },
  { additionalProperties: false, $id: 'https://keystile.dev/contract/v1/standalone.json' },
);

/** An API stage's identity. */
export type ApiStageId = Static<typeof ApiStageId>;
/** A rendered plan. */
export type RenderedPlan = Static<typeof RenderedPlan>;
/** A rendered route. */
export type RenderedRoute = Static<typeof RenderedRoute>;
/** A rendered throttle. */
export type RenderedThrottle = Static<typeof RenderedThrottle>;
/** A rendered quota. */
export type RenderedQuota = Static<typeof RenderedQuota>;
/** A rendered denial answer. */
export type RenderedResponse = Static<typeof RenderedResponse>;
/** A quota adjustment as rendered. */
export type RenderedAdjustment = Static<typeof RenderedAdjustment>;
/** An index. */
export type StageIndex = Static<typeof StageIndex>;
/** A rendered key. */
export type RenderedKey = Static<typeof RenderedKey>;
/** A keys shard. */
export type KeysShard = Static<typeof KeysShard>;
/** A secrets shard. */
export type SecretsShard = Static<typeof SecretsShard>;
/** An ApiKey's hashes. */
export type HashCredential = Static<typeof HashCredential>;
/** A KeyPair's secrets. */
export type KeyPairCredential = Static<typeof KeyPairCredential>;
/** Either credential. */
export type Credential = HashCredential | KeyPairCredential;
/** One stage's documents. */
export type StageDocuments = Static<typeof StageDocuments>;
/** The standalone config file. */
export type StandaloneConfig = Static<typeof StandaloneConfig>;
