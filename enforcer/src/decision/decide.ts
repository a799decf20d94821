/**
 * The decision (ADR 0004), in its order, stopping at the first denial:
 *   1. the stage Envoy names (ADR 0002);
 *   2. the key: present, well-formed, known (by SHA-256, or by SecretId with a valid, fresh signature),
 *      a rotated-out value only before its validUntil, enabled, not expired, bound on this stage;
 *   3. the route: the first of the plan's routes matching method and path;
 *   4. + 5. the throttle (the route's, else the plan's: one token) and the quota (the route's cost),
 *      decided together by the store and committed only if both allow.
 * Shadow mode makes the same decision and state changes, and answers allow with what would have been
 * denied. Pure: the catalog, the request, the time and the store come in; nothing here reads a clock.
 *
 * Split in two so the transports can call an asynchronous store in between: {@link identify} (steps
 * 1 to 3, pure) and {@link conclude} (the answer, from the store's result); {@link decide} does both.
 */
import { hash } from 'node:crypto';
import { MAX_KEY_LENGTH, parseKey } from '../../../contract/src/key-format.ts';
import type { Catalog, KeyEntry, PlanEntry, RouteEntry, StageCatalog } from '../catalog/catalog.ts';
import { isRotated, keyOf } from '../catalog/catalog.ts';
import { Reason } from '../errors.ts';
import type { ConsumeRequest, ConsumeResult, CounterStore } from '../store/store.ts';
import {
  allow,
  type AnswerOptions,
  type Decision,
  deny,
  UPSTREAM_HEADER_NAMES,
  UPSTREAM_HEADERS,
} from './answers.ts';
import { PeriodCache, type PeriodWindow } from '../../../contract/src/calendar-period.ts';
import { KeyCache } from './key-cache.ts';
import type { Clock } from './clock.ts';
import {
  parseHmacAuthorization,
  type SignatureFailure,
  verifyKeyPairSignature,
  type VerifySignatureOptions,
} from './key-pair-signature.ts';
import { type KeySource, presentedKey } from './key-source.ts';
import { rateLimitField, rateLimitHeaders, retryAfterSeconds } from './ratelimit-headers.ts';
import { matchMethod, matchPathIn, pathEnd, slashesDecoded } from './route-match.ts';

export type { Decision } from './answers.ts';

/** What the transport knows of the request being checked. */
export interface CheckRequest {
  /** The API stage Envoy named (`<namespace>/<api>/<stage>`), or undefined when it named none. */
  readonly stage: string | undefined;
  /** The original request's method. */
  readonly method: string;
  /** The original request's path, with its query. */
  readonly path: string;
  /** A request header by lower-case name (the first value), or undefined. Must not throw. */
  readonly header: (name: string) => string | undefined;
}

/** How decisions are made and answered. */
export interface DecideOptions extends AnswerOptions {
  /** Where the key is read from, in order. */
  readonly keySources: readonly KeySource[];
  /** Accept `Authorization: hmac ...` key-pair signatures. */
  readonly keyPairs: boolean;
  /** Freshness window and method/path requirement of signatures. */
  readonly signature: VerifySignatureOptions;
  /** Allow when no config is loaded, or when the store fails. */
  readonly failOpen: boolean;
  /** On allow, have Envoy remove the header that carried the key. */
  readonly stripKey: boolean;
  /** Days the usage-per-day counters are kept after their day (default 90). */
  readonly usageRetentionDays?: number;
}

/** Default of {@link DecideOptions.usageRetentionDays}. */
export const DEFAULT_USAGE_RETENTION_DAYS = 90;

/** Everything a decision reads besides the request: the options and two caches. */
export interface DecideContext {
  readonly options: DecideOptions;
  /** Remembers each quota spec's current window (one computation per period). */
  readonly periods: PeriodCache;
  /** Remembers each key's windows, counter keys and upstream headers. */
  readonly keys: KeyCache;
}

const DAY_MS = 86_400_000;

/** A context with fresh caches. */
export function decideContext(options: DecideOptions): DecideContext {
  return { options, periods: new PeriodCache(), keys: new KeyCache() };
}

/** SHA-256 of a presented value, hex: `hashKey` of contract/src/key-format.ts, in one call (a test keeps them equal). */
export function sha256Hex(value: string): string {
  return hash('sha256', value, 'hex');
}

/** A request whose key is known and whose counters are to be consulted. */
export interface Identified {
  readonly stage: StageCatalog;
  readonly key: KeyEntry;
  readonly plan: PlanEntry;
  readonly route: RouteEntry | undefined;
  /** The store's part. */
  readonly consume: ConsumeRequest;
  /** The quota's current period, when the plan has a quota. */
  readonly window: PeriodWindow | undefined;
  /** The throttle that applies (the route's or the plan's), if any. */
  readonly throttle: { readonly rate: number; readonly burst: number } | undefined;
  /** The header that carried the key, to remove before the upstream. */
  readonly keyHeader: string | undefined;
  /** The query parameter that carried the key, to remove before the upstream (gRPC ext_authz only). */
  readonly keyQuery: string | undefined;
  /** The headers an allow sets on the upstream request (shared: never modify). */
  readonly upstream: Readonly<Record<string, string>>;
}

const SIGNATURE_REASONS: Readonly<Record<SignatureFailure, Reason>> = {
  malformed: Reason.MalformedSignature,
  'missing-header': Reason.SignedHeaderMissing,
  'bad-date': Reason.BadSignatureDate,
  'stale-date': Reason.StaleSignature,
  'method-path-not-signed': Reason.MethodPathNotSigned,
  'bad-signature': Reason.BadSignature,
};

/** Steps 1 to 3: a denial, or the identified key with what the store must decide. Never throws. */
export function identify(
  catalog: Catalog | undefined,
  request: CheckRequest,
  now: number,
  context: DecideContext,
): Decision | Identified {
  const { options } = context;
  if (catalog === undefined) return unavailable(Reason.NoConfig, options);
  // 1. The stage.
  const stage = request.stage === undefined ? undefined : catalog.stages.get(request.stage);
  if (stage === undefined) return deny(Reason.UnknownStage, {}, options);

  // 2. The key.
  let key: KeyEntry;
  let keyHeader: string | undefined;
  let keyQuery: string | undefined;
  const presented = presentedKey(options.keySources, request.header, request.path);
  if (presented !== undefined) {
    const value = presented.value;
    // The lookup comes first and the format check (ADR 0001's checksum) only when it misses: every
    // value in the catalog is well-formed (the operator refuses others), so the answer is the same
    // and a valid key skips the checksum. The length bound keeps hashing cheap.
    const hash = value.length <= MAX_KEY_LENGTH ? sha256Hex(value) : '';
    const entry = hash === '' ? undefined : stage.byHash.get(hash);
    if (entry === undefined) {
      if (parseKey(value).kind === 'malformed')
        return deny(Reason.MalformedKey, { stage: stage.key }, options);
      return deny(
        boundElsewhere(catalog, stage, hash) ? Reason.KeyNotBound : Reason.UnknownKey,
        { stage: stage.key },
        options,
      );
    }
    key = keyOf(entry);
    if (isRotated(entry) && !(now < entry.validUntil)) {
      return deny(
        Reason.KeyRotatedOut,
        { stage: stage.key, plan: stage.plans.get(key.plan), keyId: key.id },
        options,
      );
    }
    keyHeader = presented.header;
    keyQuery = presented.query;
  } else {
    const authorization = options.keyPairs ? request.header('authorization') : undefined;
    if (authorization === undefined || !/^hmac[ \t]/i.test(authorization)) {
      return deny(Reason.MissingKey, { stage: stage.key }, options);
    }
    const parsed = parseHmacAuthorization(authorization);
    if (!parsed.ok) return deny(Reason.MalformedSignature, { stage: stage.key }, options);
    const pair = stage.bySecretId.get(parsed.value.id);
    if (pair === undefined) {
      const elsewhere = pairElsewhere(catalog, stage, parsed.value.id);
      return deny(elsewhere ? Reason.KeyNotBound : Reason.UnknownKey, { stage: stage.key }, options);
    }
    const plan = stage.plans.get(pair.key.plan);
    let failure: SignatureFailure | undefined;
    let verified = false;
    for (const secret of pair.secretKeys) {
      const result = verifyKeyPairSignature(
        parsed.value,
        request.header,
        request.method,
        request.path,
        secret.value,
        now,
        options.signature,
      );
      if (result.ok) {
        if (secret.validUntil !== undefined && !(now < secret.validUntil)) {
          return deny(Reason.KeyRotatedOut, { stage: stage.key, plan, keyId: pair.key.id }, options);
        }
        verified = true;
        break;
      }
      // A failure that does not depend on the secret is the same for every secret: answer it.
      failure = result.reason;
      if (result.reason !== 'bad-signature') break;
    }
    if (!verified) {
      return deny(
        SIGNATURE_REASONS[failure ?? 'bad-signature'],
        { stage: stage.key, plan, keyId: pair.key.id },
        options,
      );
    }
    key = pair.key;
    // The signature is the key's proof: replayable until its date goes stale, so stripped as a key is.
    keyHeader = 'authorization';
  }
  const plan = stage.plans.get(key.plan);
  if (!key.enabled) return deny(Reason.KeyDisabled, { stage: stage.key, plan, keyId: key.id }, options);
  if (key.expiresAt !== undefined && !(now < key.expiresAt)) {
    return deny(Reason.KeyExpired, { stage: stage.key, plan, keyId: key.id }, options);
  }
  if (plan === undefined) return deny(Reason.KeyNotBound, { stage: stage.key, plan, keyId: key.id }, options);

  // 3. The route.
  let route: RouteEntry | undefined;
  const routes = plan.routes;
  if (routes.length > 0) {
    const path = slashesDecoded(request.path);
    const end = pathEnd(path);
    for (const r of routes) {
      if (matchMethod(r.methods, request.method) && matchPathIn(r.path, path, end)) {
        route = r;
        break;
      }
    }
  }

  // 4. and 5., prepared for the store.
  const throttle = route?.throttle ?? plan.throttle;
  const quota = plan.quota;
  const state = context.keys.at(
    key,
    plan,
    route,
    now,
    context.periods,
    (options.usageRetentionDays ?? DEFAULT_USAGE_RETENTION_DAYS) * DAY_MS,
  );
  const window = state.window;
  const consume: ConsumeRequest = {
    bucketKey: throttle === undefined ? undefined : state.bucket,
    bucketLimit: throttle,
    quotaKey: quota === undefined ? undefined : state.quota,
    quotaLimit: quota?.limit,
    cost: route?.cost ?? 1,
    periodEnd: window?.end ?? now,
    now,
    dayKey: state.dayKey,
    dayExpiresAt: state.dayExpiresAt,
    thresholds: quota !== undefined && plan.alertThresholds.length > 0 ? plan.alertThresholds : undefined,
  };
  return {
    stage,
    key,
    plan,
    route,
    consume,
    window,
    throttle,
    keyHeader,
    keyQuery,
    upstream: state.upstream,
  };
}

/** Whether a value unknown on `stage` is known on another stage this enforcer serves. */
function boundElsewhere(catalog: Catalog, stage: StageCatalog, hash: string): boolean {
  if (catalog.stages.size < 2) return false;
  for (const other of catalog.stages.values()) {
    if (other !== stage && other.byHash.has(hash)) return true;
  }
  return false;
}

/** Whether a SecretId unknown on `stage` is known on another stage this enforcer serves. */
function pairElsewhere(catalog: Catalog, stage: StageCatalog, secretId: string): boolean {
  if (catalog.stages.size < 2) return false;
  for (const other of catalog.stages.values()) {
    if (other !== stage && other.bySecretId.has(secretId)) return true;
  }
  return false;
}

function unavailable(reason: Reason, options: DecideOptions): Decision {
  if (options.failOpen) return failOpenUnidentified(options);
  return deny(reason, {}, options, { 'retry-after': '1' });
}

/**
 * The removals of an allow that does not know which source carried the key (fail-open with no config,
 * or a bug before the key was known): every x-keystile-* header and, under `stripKey`, every configured
 * key source (its header, `authorization` for a bearer source or key pairs, its query parameter). Made
 * once per options object.
 */
const unidentifiedRemovals = new WeakMap<
  DecideOptions,
  { readonly headers: readonly string[]; readonly query: readonly string[] }
>();

/** The fail-open allow of a request whose key is not known: sets no header, removes as above. */
function failOpenUnidentified(options: DecideOptions): Decision {
  let removals = unidentifiedRemovals.get(options);
  if (removals === undefined) {
    const headers = new Set(UPSTREAM_HEADER_NAMES);
    const query = new Set<string>();
    if (options.stripKey) {
      for (const source of options.keySources) {
        if (source.kind === 'header') headers.add(source.name);
        else if (source.kind === 'bearer') headers.add('authorization');
        else query.add(source.name);
      }
      // A key pair's signature (`Authorization: hmac ...`).
      if (options.keyPairs) headers.add('authorization');
    }
    removals = { headers: Object.freeze([...headers]), query: Object.freeze([...query]) };
    unidentifiedRemovals.set(options, removals);
  }
  return allow(Reason.FailOpen, {}, {}, {}, removals.headers, undefined, removals.query);
}

/**
 * The request headers an allow removes: the x-keystile-* headers it does not set (which depends only on
 * whether it sets a customer and a shadow verdict) and the key's header. Four lists per key header,
 * made once.
 */
const removals = new Map<string, readonly (readonly string[])[]>();
function headersToRemove(
  customer: boolean,
  shadow: boolean,
  keyHeader: string | undefined,
): readonly string[] {
  let lists = removals.get(keyHeader ?? '');
  if (lists === undefined) {
    lists = [0, 1, 2, 3].map((bits) => [
      ...UPSTREAM_HEADER_NAMES.filter(
        (name) =>
          name !== UPSTREAM_HEADERS.keyId &&
          name !== UPSTREAM_HEADERS.plan &&
          !(name === UPSTREAM_HEADERS.customer && (bits & 1) === 1) &&
          !(name === UPSTREAM_HEADERS.shadow && (bits & 2) === 2),
      ),
      ...(keyHeader === undefined ? [] : [keyHeader]),
    ]);
    if (removals.size > 64) removals.clear();
    removals.set(keyHeader ?? '', lists);
  }
  return lists[(customer ? 1 : 0) | (shadow ? 2 : 0)] ?? [];
}

/** The query parameters an allow removes: the key's, when it came in the query (one list per name). */
const queryRemovals = new Map<string, readonly string[]>();
function queryToRemove(name: string | undefined): readonly string[] | undefined {
  if (name === undefined) return undefined;
  let list = queryRemovals.get(name);
  if (list === undefined) {
    list = Object.freeze([name]);
    if (queryRemovals.size > 64) queryRemovals.clear();
    queryRemovals.set(name, list);
  }
  return list;
}

/** The RateLimit-Policy field of a throttle and quota, cached: it changes only with the period. */
const policies = new WeakMap<object, { window: PeriodWindow | undefined; value: string | undefined }>();
function policyOf(id: Identified, now: number): string | undefined {
  const owner: object = id.route?.throttle ?? id.plan;
  const cached = policies.get(owner);
  if (cached !== undefined && cached.window === id.window) return cached.value;
  const fields = rateLimitHeaders(
    id.throttle && { rate: id.throttle.rate, burst: id.throttle.burst, remaining: 0, fullInSeconds: 0 },
    id.plan.quota && id.window
      ? {
          limit: id.plan.quota.limit,
          remaining: 0,
          resetInSeconds: (id.window.end - now) / 1000,
          windowSeconds: (id.window.end - id.window.start) / 1000,
        }
      : undefined,
  );
  const value = fields?.['ratelimit-policy'];
  policies.set(owner, { window: id.window, value });
  return value;
}

/** The answer to an identified request, from the store's result. Never throws. */
export function conclude(
  id: Identified,
  result: ConsumeResult,
  now: number,
  options: DecideOptions,
): Decision {
  const context = { stage: id.stage.key, plan: id.plan, keyId: id.key.id, route: id.route?.name };
  const headers: Record<string, string> = {};
  const policy = policyOf(id, now);
  const field = rateLimitField(
    id.throttle && result.bucket
      ? {
          rate: id.throttle.rate,
          burst: id.throttle.burst,
          remaining: result.bucket.remaining,
          fullInSeconds: result.bucket.fullInMs / 1000,
        }
      : undefined,
    id.plan.quota && id.window && result.quota
      ? {
          limit: id.plan.quota.limit,
          remaining: result.quota.remaining,
          resetInSeconds: (id.window.end - now) / 1000,
          windowSeconds: 0,
        }
      : undefined,
  );
  if (policy !== undefined && field !== undefined) {
    headers['ratelimit-policy'] = policy;
    headers['ratelimit'] = field;
  }
  let denial: Reason | undefined;
  if (result.deniedBy === 'throttle') {
    denial = Reason.Throttled;
    headers['retry-after'] = String(retryAfterSeconds(result.bucket?.retryAfterMs ?? 1000));
  } else if (result.deniedBy === 'quota') {
    denial = Reason.QuotaExceeded;
    headers['retry-after'] = String(retryAfterSeconds((id.window?.end ?? now + 1000) - now));
  }
  if (denial !== undefined && !id.plan.shadow) {
    const denied = deny(denial, context, options, headers);
    return result.crossed === undefined ? denied : { ...denied, crossed: result.crossed };
  }

  let upstream = id.upstream;
  let reason: Reason = Reason.Allowed;
  if (denial !== undefined) {
    upstream = {
      ...upstream,
      [UPSTREAM_HEADERS.shadow]: denial === Reason.Throttled ? 'throttled' : 'quota-exceeded',
    };
    delete headers['retry-after'];
    reason = denial === Reason.Throttled ? Reason.ShadowThrottled : Reason.ShadowQuotaExceeded;
  }
  const remove = headersToRemove(
    id.key.customer !== undefined,
    denial !== undefined,
    options.stripKey ? id.keyHeader : undefined,
  );
  const removeQuery = options.stripKey ? queryToRemove(id.keyQuery) : undefined;
  const allowed = allow(reason, context, headers, upstream, remove, denial, removeQuery);
  return result.crossed === undefined ? allowed : { ...allowed, crossed: result.crossed };
}

/**
 * The answer when the store failed: 503 (fail closed), or allow when configured to fail open, with the
 * upstream headers and removals of a normal allow (the key's header or query parameter under
 * `stripKey`), without the RateLimit fields.
 */
export function storeFailed(id: Identified, options: DecideOptions): Decision {
  if (options.failOpen) {
    return allow(
      Reason.FailOpen,
      { stage: id.stage.key, plan: id.plan, keyId: id.key.id, route: id.route?.name },
      {},
      id.upstream,
      headersToRemove(id.key.customer !== undefined, false, options.stripKey ? id.keyHeader : undefined),
      undefined,
      options.stripKey ? queryToRemove(id.keyQuery) : undefined,
    );
  }
  return deny(
    Reason.InternalError,
    { stage: id.stage.key, plan: id.plan, keyId: id.key.id, route: id.route?.name },
    options,
    { 'retry-after': '1' },
  );
}

/** Whether {@link identify} returned a finished decision. */
export function isDecision(value: Decision | Identified): value is Decision {
  return 'allowed' in value;
}

/**
 * The whole decision: {@link identify}, the store, {@link conclude}, handed to `done` exactly once:
 * before this returns when the store answers synchronously (the memory store), else when its promise
 * settles (one promise reaction between the store and `done`: the transports' hot path). Never throws
 * (unless `done` does: it must not, as after an async store its throw is an unhandled rejection); a
 * failing store, or a bug, gives 503.
 */
export function decideInto(
  catalog: Catalog | undefined,
  request: CheckRequest,
  store: CounterStore,
  clock: Clock,
  context: DecideContext,
  done: (decision: Decision) => void,
): void {
  const now = clock.now();
  let identified: Decision | Identified;
  try {
    identified = identify(catalog, request, now, context);
  } catch {
    done(
      context.options.failOpen
        ? failOpenUnidentified(context.options)
        : deny(Reason.InternalError, {}, context.options, { 'retry-after': '1' }),
    );
    return;
  }
  if (isDecision(identified)) {
    done(identified);
    return;
  }
  const id = identified;
  let result: ConsumeResult | Promise<ConsumeResult>;
  try {
    result = store.consume(id.consume);
  } catch {
    done(storeFailed(id, context.options));
    return;
  }
  if (result instanceof Promise) {
    result.then(
      (r) => {
        done(concludeSafely(id, r, now, context.options));
      },
      () => {
        done(storeFailed(id, context.options));
      },
    );
    return;
  }
  done(concludeSafely(id, result, now, context.options));
}

/** {@link conclude}, or the internal-error answer if it throws (a bug): `done` is always called. */
function concludeSafely(
  id: Identified,
  result: ConsumeResult,
  now: number,
  options: DecideOptions,
): Decision {
  try {
    return conclude(id, result, now, options);
  } catch {
    return storeFailed(id, options);
  }
}

/**
 * {@link decideInto} as a value: the decision when the store answered synchronously, else a promise of
 * it. Never throws and never rejects.
 */
export function decide(
  catalog: Catalog | undefined,
  request: CheckRequest,
  store: CounterStore,
  clock: Clock,
  context: DecideContext,
): Decision | Promise<Decision> {
  return settleOnce((done) => {
    decideInto(catalog, request, store, clock, context, done);
  });
}

/**
 * Runs `start` with a callback: the value it was called with, when that happened before `start`
 * returned, else a promise of it.
 */
export function settleOnce<T>(start: (done: (value: T) => void) => void): T | Promise<T> {
  let settled = false;
  let value: T | undefined;
  let resolve: ((value: T) => void) | undefined;
  start((v) => {
    if (resolve !== undefined) resolve(v);
    else {
      settled = true;
      value = v;
    }
  });
  if (settled) return value as T;
  return new Promise<T>((r) => (resolve = r));
}
