/**
 * Polling enforcers' admin ports (the memory store: each enforcer holds its own counters): GET
 * /v1/usage/quotas of every endpoint, answers validated against contract/src/usage-api.ts. An endpoint
 * `dns+http://name:port` stands for every A record of `name`, so a headless Service finds every enforcer
 * pod with no RBAC at all. The same enforcer reached twice (by a URL and by DNS) is counted once, by the
 * `instance` it names.
 */
import { resolve4 as dnsResolve4 } from 'node:dns/promises';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { QuotasAnswer, USAGE_API_PATHS } from '../../../contract/src/usage-api.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const validate = addFormats(new Ajv({ strict: false, allErrors: false })).compile<QuotasAnswer>(QuotasAnswer);

/** One endpoint that did not answer well, and why (no body, no key material: enforcers send none). */
export interface EndpointError {
  readonly endpoint: string;
  readonly error: string;
}

/** One poll of every endpoint. */
export interface EndpointPoll {
  /** The answers, one per distinct instance. */
  readonly answers: readonly QuotasAnswer[];
  readonly errors: readonly EndpointError[];
}

/** What polling needs from the outside world (tests pass their own). */
export interface EndpointDeps {
  readonly resolve4: (name: string) => Promise<string[]>;
  readonly fetch: typeof fetch;
}

const defaultDeps: EndpointDeps = { resolve4: dnsResolve4, fetch: globalThis.fetch };

/** The URLs an endpoint stands for: itself, or one per A record of a `dns+` endpoint. */
export async function expandEndpoint(endpoint: string, deps: EndpointDeps = defaultDeps): Promise<string[]> {
  const url = new URL(endpoint);
  if (!url.protocol.startsWith('dns+')) return [endpoint.replace(/\/+$/, '')];
  const scheme = url.protocol.slice('dns+'.length);
  const addresses = await deps.resolve4(url.hostname);
  const path = url.pathname.replace(/\/+$/, '');
  return [...new Set(addresses)].sort().map((a) => `${scheme}//${a}:${url.port}${path}`);
}

/** Polls every endpoint at once; never rejects (failures are in `errors`). */
export async function pollEndpoints(
  endpoints: readonly string[],
  timeoutMs: number,
  deps: EndpointDeps = defaultDeps,
): Promise<EndpointPoll> {
  const errors: EndpointError[] = [];
  const urls: string[] = [];
  await Promise.all(
    endpoints.map(async (e) => {
      try {
        urls.push(...(await expandEndpoint(e, deps)));
      } catch (err) {
        errors.push({
          endpoint: e,
          error: `cannot resolve: ${err instanceof Error ? err.message : String(err)}`,
        });
      }
    }),
  );
  const answers = new Map<string, QuotasAnswer>();
  await Promise.all(
    [...new Set(urls)].map(async (base) => {
      try {
        const res = await deps.fetch(`${base}${USAGE_API_PATHS.quotas}`, {
          signal: AbortSignal.timeout(timeoutMs),
          headers: { accept: 'application/json' },
        });
        if (res.status !== 200) {
          await res.body?.cancel();
          throw new Error(`HTTP ${res.status}`);
        }
        const body: unknown = await res.json();
        if (!validate(body)) {
          const e = validate.errors?.[0];
          throw new Error(`not a usage answer: ${e?.instancePath || '/'} ${e?.message ?? ''}`.trim());
        }
        answers.set(body.instance, body);
      } catch (err) {
        errors.push({ endpoint: base, error: err instanceof Error ? err.message : String(err) });
      }
    }),
  );
  return { answers: [...answers.values()], errors };
}
