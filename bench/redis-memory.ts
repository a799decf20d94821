/**
 * What the Redis store's counters cost in Redis memory (docs/counters.md, "Memory").
 *
 *   node bench/redis-memory.ts [--keys 10000] [--days 30]
 *
 * Starts a redis-server of its own (Debian's, on a free loopback port, no persistence), then drives the
 * real `RedisStore.consume` as the enforcer does: every API key makes one request a day for `--days`
 * days of one month (June 2026), each with a token bucket, a monthly quota and the day's usage counter
 * (90 days' retention). Prints Redis's `used_memory` above the empty server, per API key, and the
 * number of Redis keys. For comparison it then writes the layout before the month hashes (a string key
 * per day, beside the same bucket and quota) by hand, and measures it the same way.
 */
import { parseArgs } from 'node:util';
import { counterKeys, dayHashOf, dayKey, type Subject } from '../contract/src/identity.ts';
import { newKeyId } from '../contract/src/key-format.ts';
import { RedisStore } from '../enforcer/src/store/redis-store.ts';
import type { ConsumeRequest } from '../enforcer/src/store/store.ts';
import { RedisServer } from '../test/ground/redis.ts';

const { values } = parseArgs({
  options: { keys: { type: 'string', default: '10000' }, days: { type: 'string', default: '30' } },
});
const KEYS = Number(values.keys);
const DAYS = Number(values.days);
if (!Number.isInteger(KEYS) || KEYS < 1 || !Number.isInteger(DAYS) || DAYS < 1 || DAYS > 30) {
  console.error('--keys must be a whole number from 1, --days one from 1 to 30');
  process.exit(2);
}

const DAY = 86_400_000;
const RETENTION = 90 * DAY;
const PLAN = 'shop/gold';
const JUNE = '2026-06-01';
const JULY_1 = Date.UTC(2026, 6, 1);
/** Requests in flight at once (auto-pipelining sends each event-loop turn's in one write). */
const WINDOW = 2000;

const subjects: Subject[] = Array.from({ length: KEYS }, () => ({ kind: 'key', id: newKeyId() }));
const dayOf = (d: number): string => `2026-06-${String(d).padStart(2, '0')}`;
/** The June hash of `subject`'s days, as the store places them. */
const juneHash = (subject: Subject): string => dayHashOf(dayKey(PLAN, subject, dayOf(1)))?.key ?? '';

/** One request of `subject` at noon on June `d`: a bucket (slow to refill, so it stays), the quota, the day. */
function request(subject: Subject, d: number): ConsumeRequest {
  const keys = counterKeys(PLAN, subject, JUNE);
  const start = Date.UTC(2026, 5, d);
  return {
    bucketKey: keys.bucket,
    bucketLimit: { rate: 0.01, burst: 100 },
    quotaKey: keys.quota,
    quotaLimit: 1_000_000,
    cost: 1,
    periodEnd: JULY_1,
    now: start + DAY / 2,
    dayKey: dayKey(PLAN, subject, dayOf(d)),
    dayExpiresAt: start + DAY + RETENTION,
  };
}

/** Redis's `used_memory`, bytes. */
async function usedMemory(store: RedisStore): Promise<number> {
  const info = await store.client.info('memory');
  const m = /^used_memory:(\d+)/m.exec(info);
  if (m?.[1] === undefined) throw new Error('INFO memory has no used_memory');
  return Number(m[1]);
}

const line = (label: string, value: string | number): void =>
  console.log(`  ${label.padEnd(62)} ${String(value).padStart(12)}`);

const server = await RedisServer.start();
const store = new RedisStore({
  connection: { kind: 'standalone', url: server.url },
  commandTimeoutMs: 30_000,
  connectionName: 'keystile-bench',
});
try {
  if (!(await store.waitReady(10_000))) throw new Error('could not connect to the benchmark Redis');
  const c = store.client;
  const version = /^redis_version:(\S+)/m.exec(await c.info('server'))?.[1] ?? '?';
  console.log(
    `keystile Redis memory: ${KEYS} API keys x ${DAYS} days, one request a day each (bucket, monthly quota, day); redis-server ${version} on port ${server.port}`,
  );

  // The script cache and the connection are part of the empty server: load the script, then empty it.
  await store.consume(request({ kind: 'key', id: 'warmupwarmup' }, 1));
  await c.flushall();
  const empty = await usedMemory(store);

  let allowed = 0;
  for (let d = 1; d <= DAYS; d++) {
    for (let i = 0; i < KEYS; i += WINDOW) {
      const batch = subjects.slice(i, i + WINDOW).map((s) => store.consume(request(s, d)));
      for (const r of await Promise.all(batch)) if (r.allowed) allowed++;
    }
  }
  if (allowed !== KEYS * DAYS) throw new Error(`${KEYS * DAYS - allowed} requests were refused`);
  const used = (await usedMemory(store)) - empty;
  const redisKeys = await c.dbsize();
  const sample = subjects[0] as Subject;
  const sampleHash = juneHash(sample);
  const encoding = String(await c.object('ENCODING', sampleHash));
  const fields = await c.hlen(sampleHash);
  if (fields !== DAYS) throw new Error(`${sampleHash} has ${fields} days, not ${DAYS}`);

  // What the month hashes alone take: delete them and see what is left.
  for (let i = 0; i < KEYS; i += WINDOW) {
    await c.del(...subjects.slice(i, i + WINDOW).map(juneHash));
  }
  const hashes = used - ((await usedMemory(store)) - empty);

  console.log('\nthe Redis store (one hash per subject and month: ks:{<plan>|<subject>}:days:<YYYY-MM>)');
  line('Redis keys', redisKeys);
  line('Redis keys per API key', (redisKeys / KEYS).toFixed(1));
  line(`encoding of a month hash of ${DAYS} days (OBJECT ENCODING)`, encoding);
  line('used_memory above the empty server, bytes', used);
  line('  per API key (bucket, quota, month hash), bytes', Math.round(used / KEYS));
  line(`  per month hash of ${DAYS} days, bytes`, Math.round(hashes / KEYS));

  // The layout before: a string key per day, with the same bucket and quota, written by hand as the
  // script wrote it (INCRBY then PEXPIRE on the first count; SET ... PX; HINCRBY and PEXPIRE).
  await c.flushall();
  const emptyAgain = await usedMemory(store);
  const last = request(sample, DAYS);
  for (let i = 0; i < KEYS; i += WINDOW) {
    const p = c.pipeline();
    for (const s of subjects.slice(i, i + WINDOW)) {
      const keys = counterKeys(PLAN, s, JUNE);
      p.set(keys.bucket, `99 ${last.now}`, 'PX', 100_000);
      p.hincrby(keys.quota, 'used', DAYS);
      p.pexpire(keys.quota, JULY_1 + DAY - last.now);
      for (let d = 1; d <= DAYS; d++) {
        const r = request(s, d);
        const k = dayKey(PLAN, s, dayOf(d));
        p.incrby(k, 1);
        p.pexpire(k, (r.dayExpiresAt ?? 0) - r.now);
      }
    }
    const results = await p.exec();
    const failed = results?.find(([err]) => err !== null);
    if (failed) throw failed[0] as Error;
  }
  const before = (await usedMemory(store)) - emptyAgain;
  const beforeKeys = await c.dbsize();
  console.log(
    '\nfor comparison: a string key per day (ks:{<plan>|<subject>}:day:<YYYY-MM-DD>), written by hand',
  );
  line('Redis keys', beforeKeys);
  line('used_memory above the empty server, bytes', before);
  line('  per API key (bucket, quota, days), bytes', Math.round(before / KEYS));
  line('month hash / string key per day (per API key)', (used / before).toFixed(3));
} finally {
  await store.close();
  await server.stop();
}
