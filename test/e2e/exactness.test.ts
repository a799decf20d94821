// Exact quotas across replicas, shown on real processes: three enforcers sharing one real Redis
// (Debian's redis-server) under many concurrent clients allow exactly Q requests of a quota of Q; the
// throttle across replicas stays within the bucket's bounds; an enforcer killed with SIGKILL under load
// loses no counts; a Redis restart behaves as docs/counters.md says. And the memory store across a crash:
// at most one checkpoint interval of counts lost.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EnforcerProcess, startEnforcerProcess } from '../../enforcer/src/launch.ts';
import { keyValue, render } from '../../enforcer/testing/e2e.ts';
import { RedisServer } from '../ground/redis.ts';
import { waitFor } from '../ground/wait.ts';

const STAGE = 'shop/orders/prod';

/** A plan with a quota of `quota` (and a throttle too generous to matter) and one with a tight throttle. */
function resources(quota: number): string {
  const plan = (name: string, spec: object): object => ({
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'UsagePlan',
    metadata: { name },
    spec,
  });
  const key = (name: string): object => ({
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'ApiKey',
    metadata: { name },
    spec: {},
  });
  const binding = (name: string, planName: string, keys: string[]): object => ({
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'PlanBinding',
    metadata: { name },
    spec: {
      planRef: { name: planName },
      keys: { names: keys },
      apiStages: [{ api: 'orders', stage: 'prod' }],
    },
  });
  return [
    plan('metered', {
      throttle: { rateLimit: 1_000_000, burstLimit: 10_000_000 },
      quota: { limit: quota, period: 'MONTH' },
    }),
    plan('throttled', { throttle: { rateLimit: 5, burstLimit: 40 } }),
    key('alpha'),
    key('beta'),
    key('gamma'),
    key('delta'),
    key('slow'),
    binding('metered-prod', 'metered', ['alpha', 'beta', 'gamma', 'delta']),
    binding('throttled-prod', 'throttled', ['slow']),
  ]
    .map((d) => stringify(d))
    .join('---\n');
}

/** One check through an enforcer's HTTP check port: its status, or 0 when the connection failed. */
async function check(e: EnforcerProcess, key: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${e.httpPort}/keystile/${STAGE}/v1/orders`, {
      headers: { 'x-api-key': key },
      signal: AbortSignal.timeout(5_000),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** One answer: its status (0 when the connection failed), and which of the enforcers given gave it. */
interface Answer {
  readonly status: number;
  readonly enforcer: number;
}

/** Counts of the statuses seen. */
type Tally = Map<number, number>;

function tally(answers: readonly Answer[]): Tally {
  const t: Tally = new Map();
  for (const { status } of answers) t.set(status, (t.get(status) ?? 0) + 1);
  return t;
}

/**
 * Sends `total` checks with `key` from `clients` concurrent loops, loop i asking enforcer i mod n
 * (skipping enforcers that were stopped), and returns every answer.
 */
async function load(
  enforcers: readonly EnforcerProcess[],
  key: string,
  total: number,
  clients: number,
  onProgress?: (sent: number) => void,
): Promise<Answer[]> {
  const answers: Answer[] = [];
  let next = 0;
  const loop = async (i: number): Promise<void> => {
    for (;;) {
      const n = next++;
      if (n >= total) return;
      onProgress?.(n);
      const live = enforcers.filter((e) => e.running());
      const target = live[(i + n) % live.length];
      if (target === undefined) return;
      answers.push({ status: await check(target, key), enforcer: enforcers.indexOf(target) });
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, i) => loop(i)));
  return answers;
}

describe('three enforcers on one Redis', () => {
  const QUOTA = 600;
  let dir: string;
  let redis: RedisServer;
  let enforcers: EnforcerProcess[] = [];
  let keys: string;

  const startEnforcer = (i: number): Promise<EnforcerProcess> =>
    startEnforcerProcess({
      config: join(dir, 'keystile-config.json'),
      logFile: join(dir, `enforcer-${i}.log`),
      args: ['--store', 'redis', '--redis-url', redis.url, '--redis-unavailable', 'closed'],
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keystile-e2e-exactness-'));
    keys = (await render(dir, resources(QUOTA), { namespace: 'shop' })).keys;
    // Appending every write to its AOF, so that a restart keeps the counters (docs/counters.md).
    redis = await RedisServer.start({ dir, args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    enforcers = await Promise.all([0, 1, 2].map((i) => startEnforcer(i)));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(enforcers.map((e) => e.stop('SIGKILL')));
    await redis.stop();
  });

  it(`allow exactly Q = ${QUOTA} requests of a quota of Q to 48 concurrent clients, never Q + 1`, async () => {
    const answers = await load(enforcers, keyValue(keys, 'alpha'), QUOTA + 400, 48);
    const t = tally(answers);
    expect(t.get(200)).toBe(QUOTA);
    expect(t.get(429)).toBe(400);
    expect(t.size).toBe(2);
    // Each enforcer let some through: the quota is shared by the three, not granted three times.
    for (const i of [0, 1, 2]) {
      const allowed = answers.filter((a) => a.enforcer === i && a.status === 200).length;
      expect(allowed, `requests enforcer ${i} allowed`).toBeGreaterThan(0);
    }
  }, 120_000);

  it('keep the throttle across replicas within the bucket: burst + rate x elapsed', async () => {
    const started = performance.now();
    const answers = await load(enforcers, keyValue(keys, 'slow'), 300, 30);
    const elapsedS = (performance.now() - started) / 1000;
    const allowed = tally(answers).get(200) ?? 0;
    // A bucket of 40 at 5/s: at least the burst, at most the burst and what refilled meanwhile.
    expect(allowed).toBeGreaterThanOrEqual(40);
    expect(allowed).toBeLessThanOrEqual(40 + Math.ceil(5 * elapsedS) + 1);
    expect((tally(answers).get(429) ?? 0) + allowed).toBe(300);
  }, 120_000);

  it('lose no counts when an enforcer is killed with SIGKILL under load', async () => {
    const key = keyValue(keys, 'beta');
    const victim = enforcers[2];
    if (victim === undefined) throw new Error('no third enforcer');
    let killed = false;
    const first = await load(enforcers, key, QUOTA, 36, (sent) => {
      if (!killed && sent >= QUOTA / 3) {
        killed = true;
        victim.child.kill('SIGKILL');
      }
    });
    // Then ask the survivors until the quota says no: every allowed request was counted, so the total
    // allowed is at most Q; a request the victim counted but could not answer is the only shortfall.
    const rest = await load(
      enforcers.filter((e) => e !== victim),
      key,
      QUOTA,
      12,
    );
    const all = tally([...first, ...rest]);
    const allowed = all.get(200) ?? 0;
    const failed = all.get(0) ?? 0;
    expect(killed).toBe(true);
    expect(failed).toBeGreaterThan(0);
    expect(allowed).toBeLessThanOrEqual(QUOTA);
    expect(QUOTA - allowed).toBeLessThanOrEqual(failed);
    enforcers[2] = await startEnforcer(2);
  }, 120_000);

  it('answer 503 while Redis is gone (fail closed), and keep the counts across its restart', async () => {
    const key = keyValue(keys, 'gamma');
    const before = tally(await load(enforcers, key, 200, 12));
    expect(before.get(200)).toBe(200);
    await redis.stop();
    const during = tally(await load(enforcers, key, 30, 6));
    expect(during.get(503)).toBe(30);
    await redis.restart();
    // The enforcers reconnect by themselves.
    await waitFor(
      'the enforcers to reach Redis again',
      async () =>
        (await Promise.all(enforcers.map((e) => check(e, keyValue(keys, 'delta'))))).every((s) => s === 200),
      20_000,
      100,
    );
    // The AOF kept the 200 counted before: QUOTA - 200 more are allowed, not QUOTA.
    const after = tally(await load(enforcers, key, QUOTA, 24));
    expect(after.get(200)).toBe(QUOTA - 200);
  }, 120_000);
});

/** The quota used that the memory store's checkpoint file records, summed over its quota lines (0 if none yet). */
function checkpointedUsed(file: string): number {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let used = 0;
  for (const line of text.split('\n').slice(1)) {
    if (line === '') continue;
    const record = JSON.parse(line) as unknown[];
    if (record[0] === 'q') used += record[2] as number;
  }
  return used;
}

describe('the memory store across a crash', () => {
  it('loses at most one checkpoint interval of counts (SIGKILL, no last checkpoint)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keystile-e2e-crash-'));
    const QUOTA = 100;
    const files = await render(dir, resources(QUOTA), { namespace: 'shop' });
    const countersFile = join(dir, 'counters.ndjson');
    const key = keyValue(files.keys, 'alpha');
    const start = (): Promise<EnforcerProcess> =>
      startEnforcerProcess({
        config: files.config,
        countersFile,
        logFile: join(dir, 'enforcer.log'),
        args: ['--checkpoint-interval', '0.5'],
      });
    let e = await start();
    try {
      const early = tally(await load([e], key, 40, 4));
      expect(early.get(200)).toBe(40);
      // Until a checkpoint holds the 40 (the file is replaced by a rename: it is read whole or not at all).
      await waitFor('a checkpoint holding the 40', () => checkpointedUsed(countersFile) === 40, 20_000, 20);
      const late = tally(await load([e], key, 10, 2));
      expect(late.get(200)).toBe(10);
      await e.stop('SIGKILL');
      e = await start();
      // At least the checkpointed 40 survived; at most the 10 after it were lost.
      const allowedAfter = tally(await load([e], key, QUOTA, 4)).get(200) ?? 0;
      expect(allowedAfter).toBeLessThanOrEqual(QUOTA - 40);
      expect(allowedAfter).toBeGreaterThanOrEqual(QUOTA - 50);
    } finally {
      await e.stop();
    }
  }, 60_000);
});
