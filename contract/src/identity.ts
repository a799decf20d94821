/**
 * Identities every part agrees on (docs/adr/0002-api-stage-identity.md, 0003-counter-identity.md): an API
 * stage's, the names of its rendered objects, which shard a key lives in, and a counter's.
 */
import { createHash } from 'node:crypto';
import type { ApiStageId } from './format.ts';

/** Labels on every rendered object. */
export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  api: 'keystile.dev/api',
  stage: 'keystile.dev/stage',
  role: 'keystile.dev/role',
} as const;

/** The value of app.kubernetes.io/managed-by on what Keystile writes. */
export const MANAGED_BY = 'keystile';

/** An API stage as one string: `<namespace>/<api>/<stage>`. */
export function stageKey(s: ApiStageId): string {
  return `${s.namespace}/${s.api}/${s.stage}`;
}

/** Parses `<namespace>/<api>/<stage>` (each a DNS label), or undefined. */
export function parseStageKey(text: string): ApiStageId | undefined {
  const m =
    /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\/([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\/([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$/.exec(
      text,
    );
  if (!m?.[1] || !m[3] || !m[5]) return undefined;
  return { namespace: m[1], api: m[3], stage: m[5] };
}

/**
 * The names of a stage's rendered objects (in the stage's namespace): `keystile-<api>.<stage>`, then
 * `.keys-<i>` and `.secrets-<i>`. The dot cannot appear in an api or stage name (DNS labels), so no two
 * stages share a name: with a hyphen, api `a-b` stage `c` and api `a` stage `b-c` would.
 */
export const objectNames = {
  index: (s: ApiStageId): string => `keystile-${s.api}.${s.stage}`,
  keys: (s: ApiStageId, shard: number): string => `keystile-${s.api}.${s.stage}.keys-${shard}`,
  secrets: (s: ApiStageId, shard: number): string => `keystile-${s.api}.${s.stage}.secrets-${shard}`,
} as const;

/** The data keys inside the rendered objects. */
export const DATA_KEYS = { index: 'index.json', keys: 'keys.json', secrets: 'secrets.json' } as const;

/** At most this many keys per shard before the shard count doubles (keeps objects near 300 KiB). */
export const KEYS_PER_SHARD = 2000;
/** The most shards one stage has (512,000 keys). */
export const MAX_SHARDS = 256;

/**
 * How many shards a stage of `keyCount` keys has: the smallest power of two that keeps every shard at or
 * under {@link KEYS_PER_SHARD} on average. Powers of two so that growth is rare (a resharding rewrites
 * every shard, once per doubling) and one more key otherwise rewrites one shard.
 */
export function shardCount(keyCount: number, keysPerShard: number = KEYS_PER_SHARD): number {
  let n = 1;
  while (n < MAX_SHARDS && keyCount > n * keysPerShard) n *= 2;
  return n;
}

/** The shard a key id lives in: the first 32 bits of SHA-256(key id), modulo the shard count. */
export function shardOf(keyId: string, shards: number): number {
  return createHash('sha256').update(keyId).digest().readUInt32BE(0) % shards;
}

/** SHA-256 of a string, hex: the content hash the index records for each shard. */
export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** A plan's counter identity: `<namespace>/<plan>`. Usage is counted per plan across all its stages. */
export function planId(namespace: string, plan: string): string {
  return `${namespace}/${plan}`;
}

/** Who a counter counts: a key (by id) or, for plans that count by Customer, a customer. */
export type Subject =
  { readonly kind: 'key'; readonly id: string } | { readonly kind: 'customer'; readonly name: string };

/** A subject as a string: `key:<id>` or `customer:<name>`. */
export function subjectKey(s: Subject): string {
  return s.kind === 'key' ? `key:${s.id}` : `customer:${s.name}`;
}

/**
 * A counter's identity, the same in every store and in usage reports: plan, subject and, for quotas, the
 * period's id (its first local day, YYYY-MM-DD); a route with a throttle of its own has its own bucket,
 * named by the route. The part in braces is a Redis Cluster hash tag, so one
 * subject's bucket and quota live on one slot and one script can update both atomically.
 */
export function counterKeys(
  plan: string,
  subject: Subject,
  periodId: string,
  route?: string,
): { bucket: string; quota: string } {
  const tag = `{${plan}|${subjectKey(subject)}}`;
  return {
    bucket: route === undefined ? `ks:${tag}:bucket` : `ks:${tag}:bucket:${route}`,
    quota: `ks:${tag}:quota:${periodId}`,
  };
}

/**
 * The usage-per-day counter of a subject on a plan: `ks:{<plan>|<subject>}:day:<YYYY-MM-DD>` (the plan's
 * local day). Stores and the usage API name days by it; Redis keeps it as a field of its month's hash
 * ({@link dayHashOf}).
 */
export function dayKey(plan: string, subject: Subject, day: string): string {
  return `ks:{${plan}|${subjectKey(subject)}}:day:${day}`;
}

/**
 * Where Redis keeps the usage-per-day counters: one hash per plan, subject and month,
 * `ks:{<plan>|<subject>}:days:<YYYY-MM>` (the plan's local month), whose fields are the days of the month
 * (`DD`). A month is at most 31 small fields, which Redis stores as one compact listpack: far less memory
 * than a string key per day (docs/counters.md, "Memory"). Same hash tag as the subject's other counters: same Cluster slot.
 */
export function dayHashKey(plan: string, subject: Subject, month: string): string {
  return `ks:{${plan}|${subjectKey(subject)}}:days:${month}`;
}

/** A usage-per-day counter's place in Redis (see {@link dayHashKey}). */
export interface DayHashSlot {
  /** The month's hash: `ks:{<plan>|<subject>}:days:<YYYY-MM>`. */
  readonly key: string;
  /** The day of the month, the hash's field: `01` to `31`. */
  readonly field: string;
  /** Days of the month after this one (0 on its last day): the hash outlives the month's last day. */
  readonly laterDays: number;
}

const DAY_ID = /^(\d{4})-(\d{2})-(\d{2})$/;

/**
 * Where Redis keeps the counter a {@link dayKey} names: its month's hash and the day's field. Undefined
 * for a key that is not a day counter's or names no calendar day (`2026-02-30`). Every Redis reader and
 * writer maps day keys with this one function.
 */
export function dayHashOf(key: string): DayHashSlot | undefined {
  const parsed = parseCounterKey(key);
  if (parsed?.kind !== 'day' || parsed.suffix === undefined) return undefined;
  const [, year = '', month = '', day = ''] = DAY_ID.exec(parsed.suffix) ?? [];
  const mo = Number(month);
  const d = Number(day);
  if (!(mo >= 1 && mo <= 12 && d >= 1)) return undefined;
  const y = Number(year);
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  const last = mo === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(mo) ? 30 : 31;
  if (d > last) return undefined;
  return {
    key: dayHashKey(parsed.plan, parsed.subject, `${year}-${month}`),
    field: day,
    laterDays: last - d,
  };
}

/** One HMGET's worth of day counters: a month's hash, the fields to read, and where each answer goes. */
export interface DayHashRead {
  /** The month's hash. */
  readonly key: string;
  /** Its fields (days) to read. */
  readonly fields: readonly string[];
  /** For each field, the position of its day key in the keys asked. */
  readonly positions: readonly number[];
}

/**
 * Groups day keys by their month's hash, so one HMGET per hash reads them (Redis readers: the enforcer's
 * Redis store, `keystile usage`). `invalid` holds the positions of keys {@link dayHashOf} cannot place.
 */
export function dayHashReads(dayKeys: readonly string[]): {
  reads: DayHashRead[];
  invalid: number[];
} {
  const byHash = new Map<string, { key: string; fields: string[]; positions: number[] }>();
  const invalid: number[] = [];
  dayKeys.forEach((dayKey, i) => {
    const slot = dayHashOf(dayKey);
    if (slot === undefined) {
      invalid.push(i);
      return;
    }
    let read = byHash.get(slot.key);
    if (read === undefined) {
      read = { key: slot.key, fields: [], positions: [] };
      byHash.set(slot.key, read);
    }
    read.fields.push(slot.field);
    read.positions.push(i);
  });
  return { reads: [...byHash.values()], invalid };
}

/** The marker that an adjustment was applied to a quota counter (set if absent: applied exactly once). */
export function adjustmentMarkerKey(quotaKey: string, adjustmentId: string): string {
  return `${quotaKey}:adj:${adjustmentId}`;
}

/** The set of alert thresholds (percent) already crossed by a quota counter in its period. */
export function alertsKey(quotaKey: string): string {
  return `${quotaKey}:alerts`;
}

/** What a counter key names, read back (usage reports read counters by key). */
export interface ParsedCounterKey {
  readonly plan: string;
  readonly subject: Subject;
  readonly kind: 'bucket' | 'quota' | 'day';
  /** The period id (quota), the day (day) or the route (a route's own bucket). */
  readonly suffix: string | undefined;
}

const COUNTER_KEY = /^ks:\{([^|{}]+)\|(key|customer):([^{}]+)\}:(bucket|quota|day)(?::(.+))?$/;

/** Parses a key made by {@link counterKeys} or {@link dayKey}; undefined for anything else. */
export function parseCounterKey(key: string): ParsedCounterKey | undefined {
  const m = COUNTER_KEY.exec(key);
  if (m === null) return undefined;
  const [, plan, kind, value, counter, suffix] = m;
  if (plan === undefined || value === undefined || counter === undefined) return undefined;
  // Markers beside a quota counter (`...:adj:<id>`, `...:alerts`) are not counters.
  if (counter !== 'bucket' && suffix?.includes(':') === true) return undefined;
  const subject: Subject = kind === 'key' ? { kind: 'key', id: value } : { kind: 'customer', name: value };
  return { plan, subject, kind: counter as ParsedCounterKey['kind'], suffix };
}
