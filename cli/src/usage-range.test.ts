import { describe, expect, it } from 'vitest';
import { daysInRange, MAX_RANGE_DAYS, parseDay, retentionWarning } from './usage-range.ts';

describe('usage ranges', () => {
  it('lists every day, both ends included, across months and a leap day', () => {
    expect(daysInRange('2028-02-27', '2028-03-01')).toEqual([
      '2028-02-27',
      '2028-02-28',
      '2028-02-29',
      '2028-03-01',
    ]);
    expect(daysInRange('2026-12-31', '2026-12-31')).toEqual(['2026-12-31']);
  });

  it('refuses what is not a date, a range backwards, and a range too long', () => {
    expect(() => parseDay('2026-02-30', '--from')).toThrow('--from "2026-02-30": expected a date YYYY-MM-DD');
    expect(() => parseDay('2026-1-5', '--to')).toThrow(/--to "2026-1-5"/);
    expect(() => parseDay('yesterday', '--from')).toThrow(/expected a date/);
    expect(() => daysInRange('2026-11-02', '2026-11-01')).toThrow(
      '--to 2026-11-01 is before --from 2026-11-02',
    );
    expect(() => daysInRange('2000-01-01', '2026-01-01')).toThrow(`at most ${MAX_RANGE_DAYS} at once`);
  });

  it('warns when the range reaches past the retention', () => {
    const today = '2026-11-23';
    expect(retentionWarning(daysInRange('2026-08-25', today), today, 90)).toBeUndefined();
    expect(retentionWarning(daysInRange('2026-08-24', today), today, 90)).toBe(
      'day counters are kept 90 days (--retention-days): days before 2026-08-25 have expired and read as 0',
    );
    expect(retentionWarning(daysInRange('2026-11-01', '2026-11-30'), today, 7)).toMatch(/kept 7 days/);
    expect(retentionWarning([], today, 90)).toBeUndefined();
  });
});
