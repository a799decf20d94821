/** UsagePlan: how much and how fast a key (or a customer) may call the API stages it is bound to. */
import { type Static, Type } from '@sinclair/typebox';
import { Conditions, DnsLabel, Obj, ObservedGeneration, StringEnum, StringMap } from './schema.ts';

/** The HTTP methods a route can name; '*' is any. */
export const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'CONNECT',
  'TRACE',
  '*',
] as const;

/** The denial types whose answer a plan can configure (AWS's gateway responses). */
export const PLAN_DENIALS = ['Forbidden', 'Throttled', 'QuotaExceeded'] as const;

/** Weekdays, for a WEEK quota's first day. */
export const WEEKDAYS = [
  'MONDAY',
  'TUESDAY',
  'WEDNESDAY',
  'THURSDAY',
  'FRIDAY',
  'SATURDAY',
  'SUNDAY',
] as const;

/**
 * A route path pattern: '/'-separated segments, each literal or '*' (exactly one segment), optionally
 * ending in '/**' (any number of further segments, none included). Literal segments take the
 * characters RFC 3986 allows in a path segment.
 */
export const ROUTE_PATH_PATTERN =
  "^/(([A-Za-z0-9._~!$&'()+,;=:@%-]+|\\*)(/([A-Za-z0-9._~!$&'()+,;=:@%-]+|\\*))*)?(/\\*\\*)?$";

/**
 * A '.' or '..' segment in a route path, also percent-encoded (`%2e`): Envoy normalises them away
 * (`normalize_path`) before the enforcer sees the path, so a route naming one would never match.
 */
export const DOT_SEGMENT_PATTERN = '/(\\.|%2[eE]){1,2}(/|$)';

/** The characters of an HTTP token (RFC 9110 tchar) other than letters, for a character class ('-' last). */
const TCHAR_NOT_LETTERS = "!#$%&'*+.^_`|~0-9-";

/** An HTTP field name (RFC 9110 token), in any case; the contract holds it in lower case. */
export const HEADER_NAME_PATTERN = `^[A-Za-z${TCHAR_NOT_LETTERS}]+$`;

/** An HTTP field name in lower case, as the contract holds it. */
export const LOWER_CASE_HEADER_NAME_PATTERN = `^[a-z${TCHAR_NOT_LETTERS}]+$`;

/** An HTTP field value a plan may set: visible ASCII, spaces and tabs (no line breaks, no controls). */
export const HEADER_VALUE_PATTERN = '^[\\t\\x20-\\x7e]*$';

/** A media type, with parameters if any: `text/plain; charset=utf-8`. */
export const MEDIA_TYPE_PATTERN = `^[A-Za-z${TCHAR_NOT_LETTERS}]+/[A-Za-z${TCHAR_NOT_LETTERS}]+([\\t ]*;[\\t\\x20-\\x7e]*)?$`;

/**
 * Response headers a plan may not set: the framing the enforcer and Envoy own (a second Content-Length
 * would break the answer), hop-by-hop fields, and Content-Type (the answer's `contentType` sets it).
 */
export const RESERVED_RESPONSE_HEADERS = [
  'connection',
  'content-length',
  'content-type',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
] as const;

/** The longest route path pattern. */
export const ROUTE_PATH_MAX_LENGTH = 256;

/** A token bucket: a steady rate and a burst. */
export const Throttle = Obj(
  {
    rateLimit: Type.Number({
      description:
        'The steady-state rate, in requests per second, at which the bucket refills. May be fractional: 0.5 is one request every two seconds. At least 0.001.',
      minimum: 0.001,
      maximum: 1_000_000,
    }),
    burstLimit: Type.Integer({
      description:
        'The bucket size: how many requests may arrive at once after a quiet spell. At least 1, and at least the rate (a bucket smaller than one second of traffic cannot sustain the rate).',
      minimum: 1,
      maximum: 10_000_000,
    }),
  },
  {
    description: 'A token bucket per key (or per customer): a steady rate and a burst.',
    rules: [
      {
        // minimum alone is not enough: the API server compares an integer 0 with minimum 0.001 truncated to 0.
        rule: 'self.rateLimit >= 0.001',
        message: 'rateLimit must be at least 0.001 requests per second',
        fieldPath: '.rateLimit',
      },
      {
        rule: 'double(self.burstLimit) >= self.rateLimit',
        message:
          'burstLimit must be at least rateLimit: a bucket smaller than one second of traffic cannot sustain the rate',
        fieldPath: '.burstLimit',
      },
    ],
  },
);

/** A quota: so many requests per calendar period. */
export const Quota = Obj(
  {
    limit: Type.Integer({
      description: 'How many requests (weighted by route cost) a key may make in one period.',
      minimum: 1,
      maximum: 1_000_000_000_000,
    }),
    period: StringEnum(['DAY', 'WEEK', 'MONTH'] as const, {
      description:
        'The calendar period the limit applies to: DAY, WEEK or MONTH (true month lengths, not 30 days). Periods start at midnight in timeZone.',
    }),
    startDay: Type.Optional(
      Type.Integer({
        description:
          "MONTH only: the day of the month each period starts (1 to 28, so every month has it). Default 1. AWS's quota 'offset' read as a start day maps here.",
        minimum: 1,
        maximum: 28,
      }),
    ),
    startWeekday: Type.Optional(
      StringEnum(WEEKDAYS, { description: 'WEEK only: the weekday each period starts. Default MONDAY.' }),
    ),
    timeZone: Type.Optional(
      Type.String({
        description:
          "The IANA time zone whose midnights bound the periods, e.g. 'Europe/Berlin'. Default UTC.",
        default: 'UTC',
        minLength: 1,
        maxLength: 64,
        pattern: '^[A-Za-z0-9_+/-]+$',
        'x-kubernetes-validations': [
          {
            // CEL has no list of zones, but converting a timestamp to an unknown zone fails, so admission
            // refuses it. The API server reads its host's zoneinfo files, which also hold names that are
            // not zones an enforcer knows (ICU's list): 'Local' and 'localtime' (the API server's own
            // zone), 'Factory', 'posixrules', and the 'posix/' and 'right/' copies of every zone.
            rule: "!(self in ['Local', 'localtime', 'Factory', 'posixrules']) && !self.startsWith('posix/') && !self.startsWith('right/') && timestamp('2000-01-01T00:00:00Z').getHours(self) >= 0",
            messageExpression:
              "'timeZone ' + self + \" is not an IANA time zone, e.g. 'UTC' or 'Europe/Berlin'\"",
          },
        ],
      }),
    ),
  },
  {
    description: 'A quota: a number of requests per calendar period, counted per key (or per customer).',
    rules: [
      {
        rule: "!has(self.startDay) || self.period == 'MONTH'",
        messageExpression:
          "'startDay applies to MONTH periods only; for a ' + self.period + ' period remove it'",
        fieldPath: '.startDay',
      },
      {
        rule: "!has(self.startWeekday) || self.period == 'WEEK'",
        messageExpression:
          "'startWeekday applies to WEEK periods only; for a ' + self.period + ' period remove it'",
        fieldPath: '.startWeekday',
      },
    ],
  },
);

/** A per-route override: its own throttle, and a cost in quota units. */
export const Route = Obj(
  {
    name: Type.Optional(
      DnsLabel('A name for the route, shown in metrics and logs. Default: the method and path.'),
    ),
    methods: Type.Optional(
      Type.Array(StringEnum(HTTP_METHODS, { description: "An HTTP method, or '*' for any." }), {
        description: "The methods the route matches. Default: any ('*').",
        maxItems: 10,
        'x-kubernetes-list-type': 'set',
      }),
    ),
    path: Type.String({
      description:
        "The path pattern: '/'-separated segments, each literal or '*' (one segment), optionally ending in '/**' (any rest). E.g. '/v1/reports', '/v1/orders/*', '/v1/admin/**'. The query string is not matched.",
      minLength: 1,
      maxLength: ROUTE_PATH_MAX_LENGTH,
    }),
    throttle: Type.Optional(Throttle),
    cost: Type.Optional(
      Type.Integer({
        description:
          'How many requests of quota one request on this route uses, e.g. 10 for an expensive report. At least 1.',
        minimum: 1,
        maximum: 1_000_000,
        default: 1,
      }),
    ),
  },
  {
    description:
      "A route with its own throttle (replacing the plan's for matching requests, as AWS's per-method throttling) and its own cost. The first matching route applies.",
    rules: [
      {
        rule: `self.path.matches(r"${ROUTE_PATH_PATTERN}")`,
        messageExpression:
          "'path ' + self.path + \" is not a route pattern: '/'-separated segments, each literal or '*', optionally ending in '/**'\"",
        fieldPath: '.path',
      },
      {
        rule: `!self.path.matches(r"${DOT_SEGMENT_PATTERN}")`,
        messageExpression:
          "'path ' + self.path + \" has a '.' or '..' segment: Envoy normalises those away before matching, so the route would never match; write the path without them\"",
        fieldPath: '.path',
      },
    ],
  },
);

/** A configured answer for one denial type. */
export const DenialResponse = Obj(
  {
    type: StringEnum(PLAN_DENIALS, {
      description:
        'The denial: Forbidden (a known key that is disabled, expired or rotated out, or whose signature is refused; an unknown key, or one not bound on the stage, has no plan and gets the default answer), Throttled (the bucket is empty) or QuotaExceeded (the period quota is used up).',
    }),
    status: Type.Integer({
      description: 'The HTTP status to answer with, 400 to 599.',
      minimum: 400,
      maximum: 599,
    }),
    body: Type.Optional(Type.String({ description: 'The response body, sent as is.', maxLength: 4096 })),
    contentType: Type.Optional(
      Type.String({ description: "The body's content type. Default application/json.", maxLength: 128 }),
    ),
    headers: Type.Optional(
      StringMap({ description: 'Extra response headers.', maxProperties: 16, maxValueLength: 1024 }),
    ),
  },
  {
    description: "The answer for one denial type, replacing Keystile's default (as AWS's gateway responses).",
    rules: [
      {
        rule: '!has(self.contentType) || has(self.body)',
        message: 'contentType is the type of body: set a body, or remove contentType',
        fieldPath: '.contentType',
      },
      {
        rule: `!has(self.contentType) || self.contentType.matches(r"${MEDIA_TYPE_PATTERN}")`,
        messageExpression:
          "'contentType ' + self.contentType + ' is not a media type such as text/plain; charset=utf-8'",
        fieldPath: '.contentType',
      },
      {
        rule: `!has(self.headers) || self.headers.all(name, name.matches(r"${HEADER_NAME_PATTERN}"))`,
        message: "header names must be HTTP tokens: letters, digits and !#$%&'*+-.^_`|~, no spaces or colons",
        fieldPath: '.headers',
      },
      {
        rule: `!has(self.headers) || self.headers.all(name, !(name.lowerAscii() in ${JSON.stringify(RESERVED_RESPONSE_HEADERS)}))`,
        message: `headers may not set ${RESERVED_RESPONSE_HEADERS.join(', ')}: the gateway frames the answer, and contentType sets its type`,
        fieldPath: '.headers',
      },
      {
        rule: '!has(self.headers) || self.headers.all(name, self.headers.all(other, other == name || other.lowerAscii() != name.lowerAscii()))',
        message: 'header names must differ in more than case: HTTP field names are case-insensitive',
        fieldPath: '.headers',
      },
      {
        rule: `!has(self.headers) || self.headers.all(name, self.headers[name].matches(r"${HEADER_VALUE_PATTERN}"))`,
        message: 'header values may hold only visible ASCII characters, spaces and tabs: no line breaks',
        fieldPath: '.headers',
      },
    ],
  },
);

/** UsagePlan.spec */
export const UsagePlanSpec = Obj(
  {
    displayName: Type.Optional(
      Type.String({ description: 'A name for people, up to 128 characters.', maxLength: 128 }),
    ),
    description: Type.Optional(Type.String({ description: 'What the plan is for.', maxLength: 1024 })),
    throttle: Type.Optional(Throttle),
    quota: Type.Optional(Quota),
    routes: Type.Optional(
      Type.Array(Route, {
        description:
          'Per-route throttles and costs, matched in order; the first match applies. Names are unique.',
        maxItems: 64,
        'x-kubernetes-validations': [
          {
            // A route's name is its bucket's and its metrics' name: two routes of one name would share both.
            rule: 'self.all(r, !has(r.name) || self.filter(o, has(o.name) && o.name == r.name).size() == 1)',
            message:
              "route names must be unique: a name is its route's own throttle bucket and metrics label",
          },
        ],
      }),
    ),
    maxKeys: Type.Optional(
      Type.Integer({
        description:
          "The most keys the plan accepts across all its bindings (Tencent's limit on keys per plan); bindings beyond it report PlanFull. Default: no limit.",
        minimum: 1,
        maximum: 1_000_000,
      }),
    ),
    shadow: Type.Optional(
      Type.Boolean({
        description:
          'Shadow mode: decide and count exactly as enforcing would, report what would have been denied (metrics, logs), and never deny. For trying a plan on live traffic.',
        default: false,
      }),
    ),
    countBy: Type.Optional(
      StringEnum(['Key', 'Customer'] as const, {
        description:
          "Key (default, as AWS): each key has its own throttle and quota. Customer: all of a customer's keys share one (keys without a customer count alone).",
        default: 'Key',
      }),
    ),
    responses: Type.Optional(
      Type.Array(DenialResponse, {
        description: 'Answers per denial type for keys on this plan.',
        maxItems: 3,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
      }),
    ),
    alerts: Type.Optional(
      Obj(
        {
          thresholds: Type.Array(
            Type.Integer({ description: 'A percentage of the quota, 1 to 100.', minimum: 1, maximum: 100 }),
            {
              description:
                'Usage levels, as percentages of the quota, whose crossing emits an Event on the ApiKey and a metric, once per period. E.g. [80, 100].',
              maxItems: 5,
              'x-kubernetes-list-type': 'set',
            },
          ),
        },
        {
          description: 'Usage alerts.',
          rules: [
            {
              rule: 'has(self.thresholds) ? size(self.thresholds) > 0 : true',
              message: 'thresholds must not be empty',
            },
          ],
        },
      ),
    ),
  },
  {
    description:
      'How much and how fast: a throttle, a quota, per-route overrides, and how denials are answered.',
    rules: [
      {
        rule: '!has(self.alerts) || has(self.quota)',
        message: 'alerts need a quota: thresholds are percentages of quota.limit',
        fieldPath: '.alerts',
      },
      {
        // A request on such a route would need more than a whole period's quota: always QuotaExceeded,
        // with a Retry-After that never comes true.
        rule: '!has(self.quota) || !has(self.routes) || self.routes.all(r, !has(r.cost) || r.cost <= self.quota.limit)',
        message:
          "a route's cost may not exceed quota.limit: a request on it would need more than a whole period's quota, and always be refused",
        fieldPath: '.routes',
      },
    ],
  },
);

/** UsagePlan.status */
export const UsagePlanStatus = Type.Object(
  {
    observedGeneration: Type.Optional(ObservedGeneration),
    conditions: Type.Optional(Conditions),
    keyCount: Type.Optional(
      Type.Integer({ description: 'How many keys are bound to the plan, across its bindings.', minimum: 0 }),
    ),
    apiStages: Type.Optional(
      Type.Array(Type.String({ description: "An API stage, as 'api/stage'.", maxLength: 128 }), {
        description: 'The API stages the plan is bound to (the first 256, sorted).',
        maxItems: 256,
      }),
    ),
  },
  { description: 'What the operator observed.' },
);

/** The TypeScript type of a UsagePlan's spec. */
export type UsagePlanSpec = Static<typeof UsagePlanSpec>;
/** The TypeScript type of a UsagePlan's status. */
export type UsagePlanStatus = Static<typeof UsagePlanStatus>;
/** A throttle (rate and burst). */
export type Throttle = Static<typeof Throttle>;
/** A quota. */
export type Quota = Static<typeof Quota>;
/** A route override. */
export type Route = Static<typeof Route>;
