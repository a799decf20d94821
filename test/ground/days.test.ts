import { afterEach, describe, expect, it, vi } from 'vitest';
import { onOneUtcDay, utcDay } from './days.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('onOneUtcDay', () => {
  it('runs a failing check once more only when the UTC day changed while it ran', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-11-23T23:59:59.500Z'));
    const days: string[] = [];
    await onOneUtcDay(async (now) => {
      days.push(utcDay(now));
      if (days.length === 1) {
        vi.setSystemTime(new Date('2026-11-24T00:00:00.100Z'));
        throw new Error('counted on the next day');
      }
      await Promise.resolve();
    });
    expect(days).toEqual(['2026-11-23', '2026-11-24']);
  });

  it('lets the failure stand when the day did not change, or when the second run fails too', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-11-23T12:00:00Z'));
    let runs = 0;
    await expect(
      onOneUtcDay(() => {
        runs++;
        return Promise.reject(new Error('a real failure'));
      }),
    ).rejects.toThrow('a real failure');
    expect(runs).toBe(1);

    vi.setSystemTime(new Date('2026-11-23T23:59:59.900Z'));
    runs = 0;
    await expect(
      onOneUtcDay(() => {
        runs++;
        if (runs === 1) vi.setSystemTime(new Date('2026-11-24T00:00:00.100Z'));
        return Promise.reject(new Error(`failure ${runs}`));
      }),
    ).rejects.toThrow('failure 2');
    expect(runs).toBe(2);
  });

  it('gives the UTC day of a time, and of days before and after it', () => {
    const t = Date.parse('2026-03-01T00:30:00Z');
    expect([utcDay(t, -1), utcDay(t), utcDay(t, 1)]).toEqual(['2026-02-28', '2026-03-01', '2026-03-02']);
  });
});
