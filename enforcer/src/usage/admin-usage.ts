/**
 * The usage API on the admin port (`contract/src/usage-api.ts`), read by the operator (ApiKey status,
 * adjustments) and by `keystile usage`:
 * - `GET /v1/usage/quotas`: which enforcer answers (store kind, instance, stages), and, with the memory
 *   store, every quota counter of a current period and the ids of the adjustments applied to them (with
 *   the Redis store both lists are empty: readers read Redis itself);
 * - `POST /v1/usage/days` `{keys: [...]}`: usage-per-day counters, one value per key, in order.
 * Reading costs nothing. A bad request gets a 400 naming what is wrong; a failing store a 503.
 */
import { hostname } from 'node:os';
import { Ajv } from 'ajv';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { parseCounterKey } from '../../../contract/src/identity.ts';
import {
  type DaysAnswer,
  DaysQuestion,
  type QuotaCounter,
  type QuotasAnswer,
  type StoreKind,
  USAGE_API_PATHS,
} from '../../../contract/src/usage-api.ts';
import type { CatalogView } from '../catalog/catalog.ts';
import type { Clock } from '../decision/clock.ts';
import type { CounterStore } from '../store/store.ts';

/** One quota counter as a memory store lists it (`MemoryStore.listQuotas`). */
export interface ListedQuota {
  /** The counter's key (`counterKeys(...).quota`). */
  readonly key: string;
  readonly used: number;
  /** Units adjustments granted (positive) or took back (negative) in the period. */
  readonly granted: number;
  /** The period's end, epoch ms. */
  readonly periodEnd: number;
  /** Ids of the adjustments applied to it. */
  readonly adjustments: readonly string[];
}

/** What a store that keeps its counters in this process can list (the memory store). */
export interface QuotaListing {
  /** Its quota counters of periods not yet ended at `now` (others are filtered out anyway). */
  listQuotas(now: number): Iterable<ListedQuota>;
}

/** What the usage API answers from. */
export interface UsageApiOptions {
  readonly catalog: CatalogView;
  readonly store: Pick<CounterStore, 'readDays'>;
  readonly storeKind: StoreKind;
  /** The memory store's listing; undefined with a shared store (Redis), whose readers read it directly. */
  readonly listing?: QuotaListing | undefined;
  readonly clock: Clock;
  /** Which enforcer this is (default: host name and pid). */
  readonly instance?: string;
}

/** Which enforcer answers: `<host name>:<pid>`. */
export function instanceId(): string {
  return `${hostname()}:${process.pid}`;
}

const ajv = new Ajv({ strict: true, allErrors: false });
const validateDays = ajv.compile<DaysQuestion>(DaysQuestion);

/** The most bytes a days question may have (10,000 keys of up to 1 KiB would not fit; real ones do). */
const DAYS_BODY_LIMIT = 4 << 20;

/**
 * Checks a days question: the shape of {@link DaysQuestion}, and every key a day counter's key. Returns
 * the keys, or a message naming what is wrong (never a 500, whatever the body).
 */
export function checkDaysQuestion(body: unknown): readonly string[] | string {
  if (body === undefined || body === null)
    return 'the body must be JSON: {"keys": ["ks:{<plan>|<subject>}:day:<YYYY-MM-DD>", ...]}';
  if (!validateDays(body)) {
    const e = validateDays.errors?.[0];
    return `the body is invalid at ${e?.instancePath || '/'}: ${e?.message ?? 'unknown'}`;
  }
  for (let i = 0; i < body.keys.length; i++) {
    const key = body.keys[i] ?? '';
    if (parseCounterKey(key)?.kind !== 'day') {
      return `keys/${i} is not a day counter's key (ks:{<plan>|<subject>}:day:<YYYY-MM-DD>)`;
    }
  }
  return body.keys;
}

function fail(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').send({ message });
}

/** Registers the usage API's routes on the admin server. */
export function registerUsageApi(app: FastifyInstance, opts: UsageApiOptions): void {
  const instance = opts.instance ?? instanceId();
  void app.register((scope, _options, done) => {
    // Framework errors (a body that is not JSON, too large, of another media type) keep their 4xx and
    // say what was wrong; anything else is the store or a bug: 503, named.
    scope.setErrorHandler((err: FastifyError, _request, reply) => {
      const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
      if (status === 415) return fail(reply, 415, 'the body must be application/json');
      if (status >= 400 && status < 500) return fail(reply, status, err.message);
      return fail(reply, 503, `the usage API failed: ${err.message}`);
    });

    scope.get(USAGE_API_PATHS.quotas, (_request, reply) => {
      const now = opts.clock.now();
      const catalog = opts.catalog.current();
      const quotas: QuotaCounter[] = [];
      const adjustments: string[] = [];
      for (const q of opts.listing?.listQuotas(now) ?? []) {
        if (!(q.periodEnd > now)) continue;
        quotas.push({
          key: q.key,
          used: q.used,
          granted: q.granted,
          periodEnd: new Date(q.periodEnd).toISOString(),
        });
        adjustments.push(...q.adjustments);
      }
      const answer: QuotasAnswer = {
        store: opts.storeKind,
        instance,
        stages: [...(catalog?.stages.keys() ?? [])].sort(),
        now: new Date(now).toISOString(),
        quotas,
        adjustments: [...new Set(adjustments)],
      };
      return reply.header('cache-control', 'no-store').send(answer);
    });

    scope.post(USAGE_API_PATHS.days, { bodyLimit: DAYS_BODY_LIMIT }, async (request, reply) => {
      const keys = checkDaysQuestion(request.body);
      if (typeof keys === 'string') return fail(reply, 400, keys);
      let values: number[];
      try {
        values = keys.length === 0 ? [] : await opts.store.readDays(keys);
      } catch (err) {
        return fail(
          reply,
          503,
          `the counter store could not be read: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      const answer: DaysAnswer = { values };
      return reply.header('cache-control', 'no-store').send(answer);
    });

    // A path under /v1/usage that is not one of the above: a JSON 404 (or 405 for a wrong method).
    scope.all('/v1/usage/*', (request, reply) => {
      const path = request.url.split('?')[0] ?? '';
      const known = (Object.values(USAGE_API_PATHS) as string[]).includes(path);
      return known
        ? fail(reply, 405, `${request.method} is not allowed here`)
        : fail(reply, 404, `no usage API at ${path}`);
    });
    done();
  });
}
