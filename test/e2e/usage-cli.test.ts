// `keystile usage` on real parts, run as a user runs it: keys and plans on the real control plane (the
// operator assigns the key ids and reports the plans), day counters in the local system's real Redis
// written with the enforcer's Redis layout (`dayHashOf(dayKey(...))`: a field of the subject's month
// hash), read back in the three formats; the same from a real Redis Cluster; then counters kept by two
// real enforcers (memory store each), read from their admin ports and added up.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DayHashSlot, dayHashOf, dayKey, planId, type Subject } from '../../contract/src/identity.ts';
import { type EnforcerProcess, startEnforcerProcess } from '../../enforcer/src/launch.ts';
import { createNamespace, ground, kubectl, kubectlJson } from '../ground/harness.ts';
import { startSentinelled } from '../ground/redis.ts';
import { RedisCluster } from '../ground/redis-cluster.ts';
import { onOneUtcDay, utcDay } from '../ground/days.ts';
import { repoRoot } from '../ground/paths.ts';
import { waitFor } from '../ground/wait.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `keystile ARGS` as a user would, against the test cluster (no $KEYSTILE_REDIS_URL: sources are named). */
function keystile(args: readonly string[], extraEnv: Record<string, string> = {}): Promise<Run> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    KUBECONFIG: ground().kubeconfig,
    ...extraEnv,
  };
  delete env['KEYSTILE_REDIS_URL'];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(repoRoot, 'cli/keystile.ts'), ...args],
      { env },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

/** The CSV rows' last columns (plan, counted by, requests), past the header. */
function planCountColumns(csv: string): string[] {
  return csv
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(',').slice(5).join(','));
}

/** Where the enforcer's Redis store keeps the day counter of `subject` on `plan` (its month hash's field). */
function daySlot(plan: string, subject: Subject, d: string): DayHashSlot {
  const slot = dayHashOf(dayKey(plan, subject, d));
  if (slot === undefined) throw new Error(`${d} is not a day`);
  return slot;
}

interface KeyObj {
  metadata: { name: string };
  status?: { keyId?: string; plans?: string[] };
}

describe('keystile usage', () => {
  let ns: string;
  let redis: Redis;
  const written: string[] = [];
  const ids: Record<string, string> = {};
  const enforcers: EnforcerProcess[] = [];
  // Three days ending on the day the suite starts (UTC, the plans' time zone), from one clock reading.
  // The cases on Redis name them with --from and --to, so a run that crosses midnight reads the same
  // days; the cases that rely on the CLI's or the enforcers' own today run on one day (onOneUtcDay).
  const started = Date.now();
  const [d0, d1, d2] = [utcDay(started, -2), utcDay(started, -1), utcDay(started)];

  beforeAll(async () => {
    ns = await createNamespace('usage');
    const doc = (kind: string, name: string, spec: Record<string, unknown>): string =>
      JSON.stringify({ apiVersion: 'keystile.dev/v1alpha1', kind, metadata: { name }, spec });
    for (const d of [
      doc('UsagePlan', 'metered', { quota: { limit: 1000, period: 'DAY' } }),
      doc('UsagePlan', 'pooled', { quota: { limit: 1000, period: 'DAY' }, countBy: 'Customer' }),
      doc('ApiKey', 'acme-a', { customer: 'acme' }),
      doc('ApiKey', 'acme-b', { customer: 'acme' }),
      doc('ApiKey', 'solo', {}),
      doc('PlanBinding', 'metered', {
        planRef: { name: 'metered' },
        keys: { names: ['acme-a', 'acme-b', 'solo'] },
        apiStages: [{ api: 'shop', stage: 'live' }],
      }),
      doc('PlanBinding', 'pooled', {
        planRef: { name: 'pooled' },
        keys: { names: ['acme-a', 'acme-b'] },
        apiStages: [{ api: 'shop', stage: 'beta' }],
      }),
    ])
      await kubectl(['-n', ns, 'apply', '-f', '-'], d);
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', '--timeout=60s', 'apikeys', '--all']);
    await waitFor(
      'the keys report their plans',
      async () => {
        const keys = await kubectlJson<{ items: KeyObj[] }>(['-n', ns, 'get', 'apikeys']);
        for (const k of keys.items) if (k.status?.keyId) ids[k.metadata.name] = k.status.keyId;
        const plans = Object.fromEntries(
          keys.items.map((k) => [k.metadata.name, k.status?.plans?.length ?? 0]),
        );
        return plans['acme-a'] === 2 && plans['acme-b'] === 2 && plans['solo'] === 1;
      },
      30_000,
      200,
    );

    redis = new Redis(ground().redisUrl, { maxRetriesPerRequest: 1 });
    const put = async (plan: string, subject: string, d: string, n: number): Promise<void> => {
      const [kind, value] = subject.split(':') as ['key' | 'customer', string];
      const slot = daySlot(planId(ns, plan), kind === 'key' ? { kind, id: value } : { kind, name: value }, d);
      written.push(slot.key);
      await redis.hset(slot.key, slot.field, String(n));
      await redis.expire(slot.key, 3600);
    };
    await put('metered', `key:${ids['acme-a'] ?? ''}`, d0, 10);
    await put('metered', `key:${ids['acme-a'] ?? ''}`, d2, 3);
    await put('metered', `key:${ids['acme-b'] ?? ''}`, d1, 4);
    await put('metered', `key:${ids['solo'] ?? ''}`, d2, 7);
    await put('pooled', 'customer:acme', d0, 100);
    await put('pooled', 'customer:acme', d1, 200);
  });

  afterAll(async () => {
    for (const e of enforcers) await e.stop();
    if (written.length > 0) await redis.del(...written);
    redis.disconnect();
    await kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  const fromRedis = (...args: string[]): Promise<Run> =>
    keystile(['usage', ...args, '-n', ns, '--from', d0, '--to', d2, '--redis-url', ground().redisUrl]);

  it("prints a key's usage per day and plan as a table, saying when a plan counts by customer", async () => {
    const run = await fromRedis('acme-a');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const a = ids['acme-a'] ?? '';
    expect(run.stdout).toBe(
      [
        `ApiKey acme-a (key id ${a}, customer acme) in namespace ${ns}, ${d0} to ${d2}`,
        "plan pooled counts by customer: its figures are the customer's, all keys together (customer:acme)",
        '',
        'DATE         PLAN      REQUESTS',
        `${d0}   metered         10`,
        `${d1}   metered          0`,
        `${d2}   metered          3`,
        `${d0}   pooled         100`,
        `${d1}   pooled         200`,
        `${d2}   pooled           0`,
        'total        metered         13',
        'total        pooled         300',
        '',
      ].join('\n'),
    );
  });

  it('writes CSV for billing', async () => {
    const run = await fromRedis('acme-a', '--format', 'csv');
    expect(run.code).toBe(0);
    const a = ids['acme-a'] ?? '';
    expect(run.stdout).toBe(
      [
        'date,namespace,customer,key,key_id,plan,counted_by,requests',
        `${d0},${ns},acme,acme-a,${a},metered,key,10`,
        `${d1},${ns},acme,acme-a,${a},metered,key,0`,
        `${d2},${ns},acme,acme-a,${a},metered,key,3`,
        `${d0},${ns},acme,acme-a,${a},pooled,customer,100`,
        `${d1},${ns},acme,acme-a,${a},pooled,customer,200`,
        `${d2},${ns},acme,acme-a,${a},pooled,customer,0`,
        '',
      ].join('\n'),
    );
  });

  it('writes JSON with totals', async () => {
    const run = await fromRedis('solo', '--format', 'json');
    expect(run.code).toBe(0);
    const s = ids['solo'] ?? '';
    expect(JSON.parse(run.stdout)).toEqual({
      namespace: ns,
      key: 'solo',
      keyId: s,
      from: d0,
      to: d2,
      plans: [
        {
          plan: 'metered',
          countedBy: 'key',
          subjects: [`key:${s}`],
          total: 7,
          days: [
            { date: d0, requests: 0 },
            { date: d1, requests: 0 },
            { date: d2, requests: 7 },
          ],
        },
      ],
    });
  });

  it("adds up every key of a customer per day and plan, counting a customer's shared counter once", async () => {
    const run = await fromRedis('--customer', 'acme', '--format', 'csv');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      [
        'date,namespace,customer,key,key_id,plan,counted_by,requests',
        `${d0},${ns},acme,,,metered,key,10`,
        `${d1},${ns},acme,,,metered,key,4`,
        `${d2},${ns},acme,,,metered,key,3`,
        `${d0},${ns},acme,,,pooled,customer,100`,
        `${d1},${ns},acme,,,pooled,customer,200`,
        `${d2},${ns},acme,,,pooled,customer,0`,
        '',
      ].join('\n'),
    );
    const table = await fromRedis('--customer', 'acme', '--plan', 'metered');
    expect(table.stdout).toMatch(
      new RegExp(`^customer acme \\(2 keys: acme-a, acme-b\\) in namespace ${ns}`),
    );
    expect(table.stdout).toContain('total        metered         17');
    expect(table.stdout).not.toContain('pooled');
  });

  it('warns when the range reaches past the retention, and refuses bad input clearly', async () => {
    // From 120 days ago to the CLI's today (--to left out).
    await onOneUtcDay(async (now) => {
      const long = await keystile([
        'usage',
        'solo',
        '-n',
        ns,
        '--from',
        utcDay(now, -120),
        '--redis-url',
        ground().redisUrl,
        '--format',
        'csv',
      ]);
      expect(long.code).toBe(0);
      expect(long.stderr).toBe(
        `warning: day counters are kept 90 days (--retention-days): days before ${utcDay(now, -90)} have expired and read as 0\n`,
      );
      expect(long.stdout.trim().split('\n')).toHaveLength(1 + 121);
      expect(long.stdout.trim().split('\n').at(-1)).toMatch(new RegExp(`^${utcDay(now)},`));
    });
    const shorter = await keystile([
      'usage',
      'solo',
      '-n',
      ns,
      '--from',
      utcDay(started, -120),
      '--redis-url',
      ground().redisUrl,
      '--retention-days',
      '400',
    ]);
    expect(shorter.stderr).toBe('');

    const unknown = await fromRedis('nobody');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(`keystile usage: ApiKey nobody does not exist in namespace ${ns}\n`);
    const badDate = await keystile([
      'usage',
      'solo',
      '-n',
      ns,
      '--from',
      '2026-02-30',
      '--redis-url',
      ground().redisUrl,
    ]);
    expect(badDate.code).toBe(2);
    expect(badDate.stderr).toContain('--from "2026-02-30": expected a date YYYY-MM-DD');
    const noSource = await keystile(['usage', 'solo', '-n', ns, '--from', d0]);
    expect(noSource.code).toBe(2);
    expect(noSource.stderr).toMatch(/give --redis-url/);
    const deadRedis = await keystile([
      'usage',
      'solo',
      '-n',
      ns,
      '--from',
      d0,
      '--redis-url',
      'redis://127.0.0.1:9',
    ]);
    expect(deadRedis.code).toBe(1);
    expect(deadRedis.stderr).toMatch(/^keystile usage: Redis redis:\/\/127\.0\.0\.1:9/);
  });

  it("reads a Redis Cluster, where each subject's days share one slot", async () => {
    const cluster = await RedisCluster.start(3);
    const client = new Cluster(cluster.seeds, { redisOptions: { maxRetriesPerRequest: 1 } });
    try {
      const a = { kind: 'key' as const, id: ids['acme-a'] ?? '' };
      for (const [slot, n] of [
        [daySlot(planId(ns, 'metered'), a, d1), '21'],
        [daySlot(planId(ns, 'pooled'), { kind: 'customer', name: 'acme' }, d2), '34'],
      ] as const)
        await client.hset(slot.key, slot.field, n);
      const run = await keystile([
        'usage',
        'acme-a',
        '-n',
        ns,
        '--from',
        d1,
        '--to',
        d2,
        '--format',
        'csv',
        '--redis-cluster-nodes',
        cluster.seeds.map((n) => `${n.host}:${n.port}`).join(','),
      ]);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(planCountColumns(run.stdout)).toEqual([
        'metered,key,21',
        'metered,key,0',
        'pooled,customer,0',
        'pooled,customer,34',
      ]);
    } finally {
      client.disconnect();
      await cluster.stop();
    }
  });

  it('reads the master a Sentinel names, with the passwords from $KEYSTILE_REDIS_PASSWORD and $KEYSTILE_REDIS_SENTINEL_PASSWORD', async () => {
    const password = 'usage-master-pw';
    const sentinelPassword = 'usage-sentinel-pw';
    const pair = await startSentinelled({ masterPassword: password, sentinelPassword });
    const client = new Redis({ port: pair.master.port, password, maxRetriesPerRequest: 1 });
    try {
      const slot = daySlot(planId(ns, 'metered'), { kind: 'key', id: ids['acme-a'] ?? '' }, d2);
      await client.hset(slot.key, slot.field, '55');
      const args = [
        'usage',
        'acme-a',
        '-n',
        ns,
        '--from',
        d2,
        '--to',
        d2,
        '--format',
        'csv',
        '--plan',
        'metered',
        '--redis-sentinels',
        `127.0.0.1:${pair.sentinel.port}`,
        '--redis-sentinel-name',
        'keystile',
      ];
      const run = await keystile(args, {
        KEYSTILE_REDIS_PASSWORD: password,
        KEYSTILE_REDIS_SENTINEL_PASSWORD: sentinelPassword,
      });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(planCountColumns(run.stdout)).toEqual(['metered,key,55']);
      // Without the master's password the master refuses, without the sentinels' the sentinels do; the
      // message says which, without any password in it.
      const noMaster = await keystile(args, { KEYSTILE_REDIS_SENTINEL_PASSWORD: sentinelPassword });
      expect(noMaster.code).toBe(1);
      expect(noMaster.stderr).toMatch(
        /^keystile usage: Redis master keystile of the sentinels 127\.0\.0\.1:\d+: .*NOAUTH/,
      );
      const noSentinel = await keystile(args, { KEYSTILE_REDIS_PASSWORD: password });
      expect(noSentinel.code).toBe(1);
      expect(noSentinel.stderr).toMatch(
        /^keystile usage: Redis master keystile of the sentinels 127\.0\.0\.1:\d+: All sentinels are unreachable.*NOAUTH/,
      );
      for (const refused of [noMaster, noSentinel]) {
        expect(refused.stderr).not.toContain(password);
        expect(refused.stderr).not.toContain(sentinelPassword);
      }
      // A name without sentinels, or sentinels without a name, is a usage error.
      expect((await keystile([...args.slice(0, -4), '--redis-sentinel-name', 'keystile'])).stderr).toContain(
        '--redis-sentinel-name applies only with --redis-sentinels',
      );
      expect((await keystile(args.slice(0, -2))).stderr).toContain(
        '--redis-sentinels needs --redis-sentinel-name',
      );
    } finally {
      client.disconnect();
      await pair.stop();
    }
  });

  it('reads the counters of enforcers with the memory store from their admin ports, added up', async () => {
    const value = Buffer.from(
      await kubectl(['-n', ns, 'get', 'secret', 'keystile-key-solo', '-o', 'jsonpath={.data.value}']),
      'base64',
    ).toString();
    const s = ids['solo'] ?? '';
    // The enforcers count on their own today: fresh ones (empty memory) for each run on one day.
    await onOneUtcDay(async (now) => {
      const [yesterday, today] = [utcDay(now, -1), utcDay(now)];
      const dir = mkdtempSync(join(tmpdir(), 'keystile-usage-'));
      const started: EnforcerProcess[] = [];
      for (const i of [0, 1]) {
        const e = await startEnforcerProcess({
          watch: { namespace: ns, stages: ['shop/live'] },
          env: { KUBECONFIG: ground().kubeconfig },
          logFile: join(dir, `enforcer-${i}.log`),
        });
        started.push(e);
        enforcers.push(e);
      }
      const call = async (e: EnforcerProcess): Promise<number> =>
        (
          await fetch(`http://127.0.0.1:${e.httpPort}/keystile/${ns}/shop/live/v1/things`, {
            headers: { 'x-api-key': value },
          })
        ).status;
      const [first, second] = started as [EnforcerProcess, EnforcerProcess];
      for (let i = 0; i < 3; i++) expect(await call(first)).toBe(200);
      for (let i = 0; i < 2; i++) expect(await call(second)).toBe(200);
      const admin = (e: EnforcerProcess): string => `http://127.0.0.1:${e.adminPort}`;
      const run = await keystile([
        'usage',
        'solo',
        '-n',
        ns,
        '--from',
        yesterday,
        '--to',
        today,
        '--format',
        'csv',
        '--enforcer',
        admin(first),
        '--enforcer',
        admin(second),
      ]);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toBe(
        [
          'date,namespace,customer,key,key_id,plan,counted_by,requests',
          `${yesterday},${ns},,solo,${s},metered,key,0`,
          `${today},${ns},,solo,${s},metered,key,5`,
          '',
        ].join('\n'),
      );
      const one = await keystile([
        'usage',
        'solo',
        '-n',
        ns,
        '--from',
        today,
        '--to',
        today,
        '--format',
        'json',
        '--enforcer',
        admin(second),
      ]);
      expect((JSON.parse(one.stdout) as { plans: { total: number }[] }).plans[0]?.total).toBe(2);
    });
  });
});
