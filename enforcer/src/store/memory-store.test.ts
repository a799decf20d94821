import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpointer, readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import { MemoryStore } from './memory-store.ts';
import type { ConsumeRequest } from './store.ts';

const T0 = Date.UTC(2026, 5, 10);
const MONTH_END = Date.UTC(2026, 6, 1);

function request(now: number, overrides: Partial<ConsumeRequest> = {}): ConsumeRequest {
  return {
    bucketKey: 'ks:{shop/gold|key:a}:bucket',
    bucketLimit: { rate: 1, burst: 2 },
    quotaKey: 'ks:{shop/gold|key:a}:quota:2026-06-01',
    quotaLimit: 3,
    cost: 1,
    periodEnd: MONTH_END,
    now,
    ...overrides,
  };
}

describe('the memory store', () => {
  it('charges the bucket and the quota together, and neither when one refuses', () => {
    const store = new MemoryStore();
    expect(store.consume(request(T0))).toMatchObject({
      allowed: true,
      bucket: { remaining: 1 },
      quota: { used: 1, remaining: 2 },
    });
    expect(store.consume(request(T0))).toMatchObject({
      allowed: true,
      bucket: { remaining: 0 },
      quota: { used: 2 },
    });
    // Throttled: the quota is not charged.
    const throttled = store.consume(request(T0));
    expect(throttled).toMatchObject({
      allowed: false,
      deniedBy: 'throttle',
      bucket: { retryAfterMs: 1000 },
      quota: { used: 2, remaining: 1 },
    });
    expect(store.consume(request(T0 + 1000))).toMatchObject({
      allowed: true,
      quota: { used: 3, remaining: 0 },
    });
    // Over quota: the bucket is not charged (it refilled one token in the second that passed).
    const over = store.consume(request(T0 + 2000));
    expect(over).toMatchObject({
      allowed: false,
      deniedBy: 'quota',
      bucket: { remaining: 1 },
      quota: { used: 3, remaining: 0 },
    });
    expect(store.consume(request(T0 + 2000, { quotaKey: undefined, quotaLimit: undefined }))).toMatchObject({
      allowed: true,
      bucket: { remaining: 0 },
      quota: undefined,
    });
  });

  it('takes the cost from the quota and one token from the bucket', () => {
    const store = new MemoryStore();
    expect(store.consume(request(T0, { cost: 3 }))).toMatchObject({
      allowed: true,
      bucket: { remaining: 1 },
      quota: { used: 3 },
    });
    expect(store.consume(request(T0, { cost: 1 }))).toMatchObject({ allowed: false, deniedBy: 'quota' });
  });

  it('forgets a quota a day after its period and a bucket once it is full', () => {
    const store = new MemoryStore();
    store.consume(request(T0));
    store.consume(
      request(T0, { dayKey: 'ks:{shop/gold|key:a}:day:2026-06-10', dayExpiresAt: MONTH_END + 1 }),
    );
    expect(store.size).toEqual({ buckets: 1, quotas: 1, days: 1 });
    store.sweep(T0 + 999);
    expect(store.size).toEqual({ buckets: 1, quotas: 1, days: 1 });
    // Two tokens taken at 1 token/s: full again, the same as no bucket, two seconds later.
    store.sweep(T0 + 2000);
    expect(store.size).toEqual({ buckets: 0, quotas: 1, days: 1 });
    store.sweep(MONTH_END + 1);
    expect(store.size).toEqual({ buckets: 0, quotas: 1, days: 0 });
    expect(store.listQuotas(MONTH_END + 1)).toEqual([]);
    store.sweep(MONTH_END + 86_400_000);
    expect(store.size).toEqual({ buckets: 0, quotas: 0, days: 0 });
  });

  it('keeps a used-up quota until the later end when the period end moves (a time zone change), refusals included', () => {
    const store = new MemoryStore();
    const quotaOnly = (now: number, periodEnd: number): ConsumeRequest =>
      request(now, { bucketKey: undefined, bucketLimit: undefined, periodEnd });
    for (let i = 0; i < 3; i++) store.consume(quotaOnly(T0, MONTH_END));
    // The plan moves from UTC to America/Los_Angeles: the same key, 2026-06-01, now ends 7 hours later.
    const LA_END = MONTH_END + 7 * 3_600_000;
    expect(store.consume(quotaOnly(T0 + 1, LA_END))).toMatchObject({ allowed: false, deniedBy: 'quota' });
    store.sweep(MONTH_END + 1);
    expect(store.consume(quotaOnly(MONTH_END + 3_600_000, LA_END))).toMatchObject({
      allowed: false,
      deniedBy: 'quota',
      quota: { used: 3, remaining: 0 },
    });
    expect(store.listQuotas(MONTH_END + 3_600_000)).toMatchObject([{ used: 3, periodEnd: LA_END }]);
    store.sweep(LA_END + 86_400_000);
    expect(store.size.quotas).toBe(0);
  });

  it('keeps the count when no request reaches the record before its first end, through a sweep and a restart', async () => {
    const store = new MemoryStore();
    const quotaOnly = (now: number, periodEnd: number): ConsumeRequest =>
      request(now, { bucketKey: undefined, bucketLimit: undefined, periodEnd });
    for (let i = 0; i < 3; i++) store.consume(quotaOnly(T0, MONTH_END));
    // The plan moves to America/Los_Angeles; its next request comes after the UTC end.
    const LA_END = MONTH_END + 7 * 3_600_000;
    store.sweep(MONTH_END + 1);
    const file = join(mkdtempSync(join(tmpdir(), 'keystile-store-')), 'counters.json');
    await writeCheckpoint(store, file, MONTH_END + 1);
    const restarted = new MemoryStore();
    expect(await readCheckpoint(restarted, file, MONTH_END + 2)).toMatchObject({ restored: 1 });
    expect(restarted.consume(quotaOnly(MONTH_END + 3_600_000, LA_END))).toMatchObject({
      allowed: false,
      deniedBy: 'quota',
      quota: { used: 3, remaining: 0 },
    });
    restarted.sweep(LA_END + 86_400_000);
    expect(restarted.size.quotas).toBe(0);
  });

  it("never counts an ended period's record in a later period that starts on the same day (a DAY quota made MONTH)", () => {
    const store = new MemoryStore();
    const quotaOnly = (now: number, periodEnd: number): ConsumeRequest =>
      request(now, { bucketKey: undefined, bucketLimit: undefined, periodEnd });
    // A DAY quota on the period's first day, used up; no sweep runs.
    const DAY_END = T0 + 86_400_000;
    for (let i = 0; i < 3; i++) store.consume(quotaOnly(T0, DAY_END));
    // Two days later the plan counts by MONTH: the same key (its first day), a later end. A fresh count.
    expect(store.consume(quotaOnly(DAY_END + 2 * 86_400_000, MONTH_END))).toMatchObject({
      allowed: true,
      quota: { used: 1 },
    });
  });
});

describe('the checkpoint', () => {
  it('survives a restart: the quota used and the bucket state come back, periods ended a day ago do not', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'keystile-store-')), 'counters.json');
    const before = new MemoryStore();
    before.consume(request(T0));
    before.consume(request(T0));
    before.consume(
      request(T0, {
        quotaKey: 'ks:{shop/gold|key:b}:quota:2026-05-01',
        periodEnd: T0 - 86_400_000,
        bucketKey: undefined,
      }),
    );
    expect(await writeCheckpoint(before, file, T0)).toBe(2);

    const after = new MemoryStore();
    expect(await readCheckpoint(after, file, T0)).toEqual({ restored: 2, skipped: 0, found: true });
    // Two of three used, and the bucket is as empty as it was: a restart hands out nothing fresh.
    expect(after.consume(request(T0))).toMatchObject({
      allowed: false,
      deniedBy: 'throttle',
      quota: { used: 2 },
    });
    expect(after.consume(request(T0 + 1000))).toMatchObject({
      allowed: true,
      quota: { used: 3, remaining: 0 },
    });
    expect(after.consume(request(T0 + 60_000))).toMatchObject({ allowed: false, deniedBy: 'quota' });
  });

  it('keeps a counter, its grants, applied adjustments and reported alerts together, and day counters', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'keystile-store-')), 'counters.json');
    const quotaKey = 'ks:{shop/gold|key:a}:quota:2026-06-01';
    const dayKey = 'ks:{shop/gold|key:a}:day:2026-06-10';
    const before = new MemoryStore();
    expect(await before.adjust({ quotaKey, id: 'adj-1', amount: 2, periodEnd: MONTH_END, now: T0 })).toBe(
      true,
    );
    const first = before.consume(
      request(T0, { cost: 3, thresholds: [50, 100], dayKey, dayExpiresAt: MONTH_END + 90 * 86_400_000 }),
    );
    expect(first).toMatchObject({ allowed: true, quota: { used: 3, remaining: 2 }, crossed: [50] });
    expect(await writeCheckpoint(before, file, T0)).toBe(3);
    expect(readFileSync(file, 'utf8')).toContain(`["q","${quotaKey}",3,${MONTH_END},2,["adj-1"],[50]]`);

    const after = new MemoryStore();
    expect(await readCheckpoint(after, file, T0)).toEqual({ restored: 3, skipped: 0, found: true });
    // The adjustment is known as applied: applying it again after the restart changes nothing.
    expect(await after.adjust({ quotaKey, id: 'adj-1', amount: 2, periodEnd: MONTH_END, now: T0 })).toBe(
      false,
    );
    expect(await after.readQuotas([quotaKey])).toEqual([{ used: 3, granted: 2 }]);
    expect(await after.readDays([dayKey])).toEqual([3]);
    // 50% was reported before the restart; 100% is the next to report.
    expect(after.consume(request(T0 + 5000, { cost: 2, thresholds: [50, 100] }))).toMatchObject({
      allowed: true,
      quota: { used: 5, remaining: 0 },
      crossed: [100],
    });
    expect(after.listQuotas(T0)).toEqual([
      { key: quotaKey, used: 5, granted: 2, periodEnd: MONTH_END, adjustments: ['adj-1'] },
    ]);
  });

  it('starts empty without a file, refuses a file of another format, skips malformed lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keystile-store-'));
    expect(await readCheckpoint(new MemoryStore(), join(dir, 'none.json'), T0)).toMatchObject({
      found: false,
    });
    writeFileSync(join(dir, 'other.json'), '{"version":"something/else"}\n');
    await expect(readCheckpoint(new MemoryStore(), join(dir, 'other.json'), T0)).rejects.toThrow(
      /not a checkpoint/,
    );
    writeFileSync(
      join(dir, 'partial.json'),
      `{"version":"keystile.dev/counters/v1","savedAt":${T0}}\n["q","a",1,${MONTH_END}]\n["q","b",-1,${MONTH_END}]\nnot json\n["q","c",1`,
    );
    expect(await readCheckpoint(new MemoryStore(), join(dir, 'partial.json'), T0)).toEqual({
      restored: 1,
      skipped: 3,
      found: true,
    });
    // An empty file or a damaged first line is named, never read as a fresh start.
    writeFileSync(join(dir, 'empty.json'), '');
    await expect(readCheckpoint(new MemoryStore(), join(dir, 'empty.json'), T0)).rejects.toThrow(
      `${join(dir, 'empty.json')} is not a checkpoint of version keystile.dev/counters/v1: it is empty`,
    );
    writeFileSync(join(dir, 'damaged.json'), `{"version":"keystile.dev/coun\n["q","a",1,${MONTH_END}]\n`);
    await expect(readCheckpoint(new MemoryStore(), join(dir, 'damaged.json'), T0)).rejects.toThrow(
      `${join(dir, 'damaged.json')} is not a checkpoint`,
    );
  });

  it('never queues interval writes behind a slow one', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'keystile-store-')), 'counters.json');
    const store = new MemoryStore();
    // Enough counters that one write takes several of the 1 ms intervals.
    for (let i = 0; i < 30_000; i++) {
      store.consume(
        request(T0, { quotaKey: `ks:{shop/gold|key:k${i}}:quota:2026-06-01`, bucketKey: undefined }),
      );
    }
    let sweeps = 0;
    const sweep = store.sweep.bind(store);
    store.sweep = (now) => {
      sweeps++;
      sweep(now);
    };
    const checkpointer = new Checkpointer(
      store,
      file,
      () => T0,
      () => undefined,
    );
    checkpointer.start(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = sweeps;
    await checkpointer.stop();
    // The write in progress when stop() was called, and the last one: nothing queued behind them.
    expect(sweeps - before).toBeLessThanOrEqual(2);
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(30_001);
  });

  it('writes a last checkpoint on stop, atomically replacing the previous one', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'keystile-store-')), 'counters.json');
    const store = new MemoryStore();
    const errors: unknown[] = [];
    const checkpointer = new Checkpointer(
      store,
      file,
      () => T0,
      (e) => errors.push(e),
    );
    checkpointer.start(60_000);
    store.consume(request(T0));
    await checkpointer.write();
    store.consume(request(T0, { cost: 2, bucketKey: undefined }));
    await checkpointer.stop();
    expect(errors).toEqual([]);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines[1]).toBe(`["q","ks:{shop/gold|key:a}:quota:2026-06-01",3,${MONTH_END}]`);
  });
});
