import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { openStore, type StoreSettings } from './open-store.ts';

const settings = (countersFile: string): StoreSettings => ({
  store: 'memory',
  countersFile,
  checkpointIntervalMs: 60_000,
  redis: undefined,
  redisPassword: undefined,
  redisSentinelPassword: undefined,
  redisUnavailable: 'closed',
  redisTimeoutMs: 500,
});

describe('opening the memory store', () => {
  it('refuses to start on a checkpoint it cannot read, naming it and the way out', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'keystile-open-')), 'counters.json');
    writeFileSync(file, '');
    await expect(
      openStore(settings(file), { now: () => 0, logger: pino({ level: 'silent' }) }),
    ).rejects.toThrow(
      `${file} is not a checkpoint of version keystile.dev/counters/v1: it is empty; not starting with fresh counters: move the file away to do that`,
    );
  });

  it('starts from zero when there is no checkpoint yet, and writes one on close', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'keystile-open-')), 'counters.json');
    const opened = await openStore(settings(file), { now: () => 0, logger: pino({ level: 'silent' }) });
    expect(opened.kind).toBe('memory');
    expect(existsSync(file)).toBe(false);
    await opened.close();
    expect(readFileSync(file, 'utf8')).toBe('{"version":"keystile.dev/counters/v1","savedAt":0}\n');
  });
});
