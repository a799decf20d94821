/** ApiKey: who is calling. A secret value (or a Tencent-style key pair) and its lifecycle. */
import { type Static, Type } from '@sinclair/typebox';
import { Conditions, Duration, Obj, ObjectName, ObservedGeneration, StringEnum } from './schema.ts';

/** Customer names: what usage is billed to, and what a Customer-counting plan shares limits across. */
export const CUSTOMER_PATTERN = '^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$';

/**
 * An RFC 3339 date-time as JavaScript's Date reads it: the API server's own date-time check also admits
 * forms Date cannot read (a comma before the fraction, an offset of +99:99), and an expiry the operator
 * cannot read would stop its namespace from rendering.
 */
export const DATE_TIME_PATTERN =
  '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$';

/**
 * The instants an expiry may name, [from, until): the contract holds instants with four-digit years, and
 * an offset can carry a date of year 9999 into year 10000 (or one of year 0 into year -1).
 */
export const EXPIRY_RANGE = { from: '1970-01-01T00:00:00Z', until: '9999-01-01T00:00:00Z' } as const;

/** The longest rotation.gracePeriod: a year (a longer one could run past the contract's years). */
export const MAX_GRACE_PERIOD = '8760h';

/** The Secret the operator keeps a key's value (or hash) in is named this, then the ApiKey's name. */
export const KEY_SECRET_PREFIX = 'keystile-key-';

/** ApiKey.spec */
export const ApiKeySpec = Obj(
  {
    type: Type.Optional(
      StringEnum(['ApiKey', 'KeyPair'] as const, {
        description:
          "ApiKey (default): one secret value, sent in a header (x-api-key by default). KeyPair: Tencent's SecretId and SecretKey; the client signs each request with HMAC and the enforcer verifies the signature and the signed date's freshness.",
        default: 'ApiKey',
      }),
    ),
    displayName: Type.Optional(
      Type.String({
        description: "A name for people: up to 50 letters, digits and underscores (Tencent's key name).",
        maxLength: 50,
      }),
    ),
    description: Type.Optional(
      Type.String({ description: 'What the key is for, whom it was given to.', maxLength: 1024 }),
    ),
    enabled: Type.Optional(
      Type.Boolean({
        description: 'A disabled key is refused everywhere at once (403), and keeps its value and its usage.',
        default: true,
      }),
    ),
    expiresAt: Type.Optional(
      Type.String({
        description:
          'When the key stops working (RFC 3339, e.g. 2030-01-01T00:00:00Z; a fraction of a second after a dot; Z or an offset such as +02:00), from 1970 to the end of 9998. Checked by the enforcer on every request and reflected in the Ready condition when it passes.',
        format: 'date-time',
        pattern: DATE_TIME_PATTERN,
        'x-kubernetes-validations': [
          {
            rule: `self >= timestamp('${EXPIRY_RANGE.from}') && self < timestamp('${EXPIRY_RANGE.until}')`,
            message: 'expiresAt must be from 1970-01-01T00:00:00Z to before 9999-01-01T00:00:00Z',
          },
        ],
      }),
    ),
    customer: Type.Optional(
      Type.String({
        description:
          "The customer (consumer) the key belongs to. Plans that count by Customer share one throttle and quota across a customer's keys; usage reports group by it.",
        minLength: 1,
        maxLength: 128,
        pattern: CUSTOMER_PATTERN,
      }),
    ),
    valueFrom: Type.Optional(
      StringEnum(['Generated', 'Secret'] as const, {
        description:
          "Generated (default): the operator generates the value (or the key pair) into a Secret owned by this ApiKey. Secret: the value is imported from the Secret secretRef names (AWS's imported keys: 20 to 128 characters).",
        default: 'Generated',
      }),
    ),
    secretRef: Type.Optional(
      Obj(
        {
          name: ObjectName('The Secret, in the same namespace.'),
          key: Type.Optional(
            Type.String({
              description:
                "For an ApiKey, the data key holding the value (default 'value'). A KeyPair's Secret holds 'secretId' and 'secretKey'.",
              maxLength: 253,
              pattern: '^[-._a-zA-Z0-9]+$',
            }),
          ),
        },
        { description: 'The Secret an imported value is read from (valueFrom: Secret).' },
      ),
    ),
    rotation: Type.Optional(
      Obj(
        {
          sequence: Type.Optional(
            Type.Integer({
              description:
                'Raise it to ask for a new value (Generated keys): the operator generates one, and the old value stays valid for gracePeriod. It never goes down. An imported key (valueFrom: Secret) rotates by a new value in its Secret, and keeps 0.',
              minimum: 0,
              maximum: 1_000_000_000,
              default: 0,
            }),
          ),
          gracePeriod: Type.Optional(
            Duration(
              `How long a replaced value stays valid after a rotation (or after an imported Secret changes), e.g. 24h; at most ${MAX_GRACE_PERIOD} (a year). 0s ends it at once.`,
              '24h',
              {
                duration: MAX_GRACE_PERIOD,
                message: `gracePeriod may be at most ${MAX_GRACE_PERIOD} (a year)`,
              },
            ),
          ),
        },
        {
          description:
            'Rotation: a new value, with the old one kept valid for a grace period. Usage stays with the key id.',
        },
      ),
    ),
  },
  {
    description: 'A key a customer calls the API with.',
    rules: [
      {
        rule: "has(self.displayName) ? self.displayName.matches('^[A-Za-z0-9_]+$') : true",
        message: 'displayName may hold only letters, digits and underscores (up to 50)',
        fieldPath: '.displayName',
      },
      {
        rule: "self.valueFrom == 'Secret' ? has(self.secretRef) : !has(self.secretRef)",
        messageExpression:
          "self.valueFrom == 'Secret' ? 'secretRef is required when valueFrom is Secret' : 'secretRef is only read when valueFrom is Secret; remove it or set valueFrom: Secret'",
        fieldPath: '.secretRef',
      },
      {
        rule: 'self.type == oldSelf.type',
        message: 'type cannot change: create a new ApiKey',
        fieldPath: '.type',
      },
      {
        // On the spec, not on rotation: removing rotation must not reset the sequence either. An imported
        // key's sequence means nothing (the rule below keeps it 0): one admitted before that rule may
        // bring it down, or it could never be changed again.
        rule: "self.valueFrom == 'Secret' || (has(self.rotation) && has(self.rotation.sequence) ? self.rotation.sequence : 0) >= (has(oldSelf.rotation) && has(oldSelf.rotation.sequence) ? oldSelf.rotation.sequence : 0)",
        message: 'rotation.sequence cannot go down (nor rotation be removed): raise it to rotate',
        fieldPath: '.rotation',
      },
      {
        // The operator never rotates an imported value (the user's Secret holds it), so a raised sequence
        // would be ignored while status reported it as the sequence of the current value.
        rule: "self.valueFrom != 'Secret' || !has(self.rotation) || !has(self.rotation.sequence) || self.rotation.sequence == 0",
        message:
          "rotation.sequence rotates generated keys: an imported key (valueFrom: Secret) rotates when its Secret's value changes",
        fieldPath: '.rotation.sequence',
      },
      {
        rule: 'self.valueFrom == oldSelf.valueFrom',
        message: 'valueFrom cannot change (a value changes only by rotation): create a new ApiKey',
        fieldPath: '.valueFrom',
      },
      {
        rule: "self.type == 'KeyPair' && has(self.secretRef) ? !has(self.secretRef.key) : true",
        message:
          "secretRef.key is for ApiKeys: a KeyPair's Secret holds the data keys secretId and secretKey",
        fieldPath: '.secretRef.key',
      },
    ],
  },
);

/** One plan's usage in its current period, as ApiKey status reports it (AWS's GetUsage). */
export const KeyUsage = Type.Object(
  {
    plan: Type.String({ description: 'The UsagePlan.', maxLength: 253 }),
    period: Type.String({
      description: "The current period's first day, YYYY-MM-DD in the plan's time zone.",
      maxLength: 10,
    }),
    used: Type.Integer({
      description:
        "Quota used this period, across every stage the plan is bound to (for a plan that counts by Customer, the customer's shared count).",
      minimum: 0,
    }),
    granted: Type.Optional(
      Type.Integer({
        description:
          'Quota granted (positive) or taken back (negative) this period by UsageAdjustments; absent when none.',
      }),
    ),
    limit: Type.Optional(
      Type.Integer({ description: "The effective limit: the plan's quota limit plus granted.", minimum: 0 }),
    ),
    remaining: Type.Optional(
      Type.Integer({ description: 'Quota left this period: limit less used (below 0 after a take-back).' }),
    ),
    alerted: Type.Optional(
      Type.Integer({
        description:
          "The highest of the plan's alert thresholds (percent) announced by an Event this period: each is announced once.",
        minimum: 1,
        maximum: 100,
      }),
    ),
    updatedAt: Type.String({
      description: 'When the operator read these figures (it writes only when they change).',
      format: 'date-time',
    }),
  },
  { description: "A plan's usage by this key in the current period." },
);

/** ApiKey.status */
export const ApiKeyStatus = Type.Object(
  {
    observedGeneration: Type.Optional(ObservedGeneration),
    conditions: Type.Optional(Conditions),
    keyId: Type.Optional(
      Type.String({
        description:
          'The non-secret key id: usage, metrics and logs name the key by it. Part of a generated value, assigned for an imported one; it never changes.',
        maxLength: 64,
      }),
    ),
    secretName: Type.Optional(
      Type.String({ description: 'The Secret holding the value (or the key pair).', maxLength: 253 }),
    ),
    secretId: Type.Optional(
      Type.String({
        description: "A KeyPair's SecretId (not secret: clients send it with every request).",
        maxLength: 128,
      }),
    ),
    rotation: Type.Optional(
      Type.Object(
        {
          sequence: Type.Integer({
            description: 'The rotation.sequence the current value was made for.',
            minimum: 0,
          }),
          previousValidUntil: Type.Optional(
            Type.String({
              description: 'Until when the replaced value is still accepted.',
              format: 'date-time',
            }),
          ),
        },
        { description: 'The rotation the operator last carried out.' },
      ),
    ),
    plans: Type.Optional(
      Type.Array(Type.String({ description: "A plan and stage, as 'plan:api/stage'.", maxLength: 512 }), {
        description: 'Where the key is bound: its plan on each API stage (the first 256, sorted).',
        maxItems: 256,
      }),
    ),
    usage: Type.Optional(
      Type.Array(KeyUsage, {
        description: 'Usage in the current period, per plan (the first 64 plans by name).',
        maxItems: 64,
      }),
    ),
  },
  { description: 'What the operator observed. Never holds the key value.' },
);

/** The TypeScript type of an ApiKey's spec. */
export type ApiKeySpec = Static<typeof ApiKeySpec>;
/** The TypeScript type of an ApiKey's status. */
export type ApiKeyStatus = Static<typeof ApiKeyStatus>;
