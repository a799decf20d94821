import { describe, expect, it } from 'vitest';
import type { PeriodSpec } from './calendar-period.ts';
import { PeriodCache, checkPeriodSpec, periodWindow } from './calendar-period.ts';

/** Epoch ms of an ISO 8601 instant with an explicit offset. */
const at = (iso: string): number => {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`bad test instant ${iso}`);
  return ms;
};
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

interface Case {
  name: string;
  spec: PeriodSpec;
  now: string;
  start: string;
  end: string;
  id: string;
  hours?: number;
}

// Expected instants are written as local midnights with the offset in force there (checked with zdump
// against the system's tz database, independently of Node's ICU), so each case states its own answer.
const cases: Case[] = [
  // UTC, the default
  {
    name: 'UTC day',
    spec: { period: 'DAY' },
    now: '2026-05-17T13:45:12.345Z',
    start: '2026-05-17T00:00Z',
    end: '2026-05-18T00:00Z',
    id: '2026-05-17',
    hours: 24,
  },
  {
    name: 'UTC day, first instant',
    spec: { period: 'DAY' },
    now: '2026-05-17T00:00:00.000Z',
    start: '2026-05-17T00:00Z',
    end: '2026-05-18T00:00Z',
    id: '2026-05-17',
  },
  {
    name: 'UTC day, last instant',
    spec: { period: 'DAY' },
    now: '2026-05-17T23:59:59.999Z',
    start: '2026-05-17T00:00Z',
    end: '2026-05-18T00:00Z',
    id: '2026-05-17',
  },
  {
    name: 'explicit UTC zone',
    spec: { period: 'DAY', timeZone: 'Etc/UTC' },
    now: '2026-05-17T23:59:59.999Z',
    start: '2026-05-17T00:00Z',
    end: '2026-05-18T00:00Z',
    id: '2026-05-17',
  },
  {
    name: 'year boundary, day',
    spec: { period: 'DAY' },
    now: '2026-12-31T23:59:59.999Z',
    start: '2026-12-31T00:00Z',
    end: '2027-01-01T00:00Z',
    id: '2026-12-31',
  },
  {
    name: 'new year, day',
    spec: { period: 'DAY' },
    now: '2027-01-01T00:00:00.000Z',
    start: '2027-01-01T00:00Z',
    end: '2027-01-02T00:00Z',
    id: '2027-01-01',
  },
  // weeks: 2027-01-01 is a Friday, 2026-12-28 a Monday; 2026-05-16 a Saturday, 2026-05-17 a Sunday
  {
    name: 'week across the new year (Monday start)',
    spec: { period: 'WEEK' },
    now: '2027-01-01T12:00Z',
    start: '2026-12-28T00:00Z',
    end: '2027-01-04T00:00Z',
    id: '2026-12-28',
    hours: 168,
  },
  {
    name: 'week starting Sunday, on a Saturday',
    spec: { period: 'WEEK', startWeekday: 'SUNDAY' },
    now: '2026-05-16T23:59:59Z',
    start: '2026-05-10T00:00Z',
    end: '2026-05-17T00:00Z',
    id: '2026-05-10',
  },
  {
    name: 'week starting Sunday, on the Sunday',
    spec: { period: 'WEEK', startWeekday: 'SUNDAY' },
    now: '2026-05-17T00:00Z',
    start: '2026-05-17T00:00Z',
    end: '2026-05-24T00:00Z',
    id: '2026-05-17',
  },
  {
    name: 'week starting Monday, on a Sunday',
    spec: { period: 'WEEK', startWeekday: 'MONDAY' },
    now: '2026-05-17T08:00Z',
    start: '2026-05-11T00:00Z',
    end: '2026-05-18T00:00Z',
    id: '2026-05-11',
  },
  {
    name: 'week starting Wednesday',
    spec: { period: 'WEEK', startWeekday: 'WEDNESDAY' },
    now: '2026-05-17T08:00Z',
    start: '2026-05-13T00:00Z',
    end: '2026-05-20T00:00Z',
    id: '2026-05-13',
  },
  {
    name: 'week starting Saturday, on the Saturday',
    spec: { period: 'WEEK', startWeekday: 'SATURDAY' },
    now: '2026-05-16T00:00Z',
    start: '2026-05-16T00:00Z',
    end: '2026-05-23T00:00Z',
    id: '2026-05-16',
  },
  // months: true lengths and leap years
  {
    name: 'December, default start',
    spec: { period: 'MONTH' },
    now: '2026-12-15T10:00Z',
    start: '2026-12-01T00:00Z',
    end: '2027-01-01T00:00Z',
    id: '2026-12-01',
    hours: 31 * 24,
  },
  {
    name: 'month from the 15th across the new year',
    spec: { period: 'MONTH', startDay: 15 },
    now: '2027-01-10T00:00Z',
    start: '2026-12-15T00:00Z',
    end: '2027-01-15T00:00Z',
    id: '2026-12-15',
  },
  {
    name: 'month from the 15th, January to February',
    spec: { period: 'MONTH', startDay: 15 },
    now: '2026-01-15T00:00Z',
    start: '2026-01-15T00:00Z',
    end: '2026-02-15T00:00Z',
    id: '2026-01-15',
    hours: 31 * 24,
  },
  {
    name: 'month from the 15th, February in a common year',
    spec: { period: 'MONTH', startDay: 15 },
    now: '2026-03-14T23:59:59.999Z',
    start: '2026-02-15T00:00Z',
    end: '2026-03-15T00:00Z',
    id: '2026-02-15',
    hours: 28 * 24,
  },
  {
    name: 'month from the 15th, February in a leap year',
    spec: { period: 'MONTH', startDay: 15 },
    now: '2028-02-29T12:00Z',
    start: '2028-02-15T00:00Z',
    end: '2028-03-15T00:00Z',
    id: '2028-02-15',
    hours: 29 * 24,
  },
  {
    name: 'February 2028 (leap)',
    spec: { period: 'MONTH' },
    now: '2028-02-29T12:00Z',
    start: '2028-02-01T00:00Z',
    end: '2028-03-01T00:00Z',
    id: '2028-02-01',
    hours: 29 * 24,
  },
  {
    name: 'February 2027 (common)',
    spec: { period: 'MONTH', startDay: 1 },
    now: '2027-02-28T23:59Z',
    start: '2027-02-01T00:00Z',
    end: '2027-03-01T00:00Z',
    id: '2027-02-01',
    hours: 28 * 24,
  },
  {
    name: 'leap day',
    spec: { period: 'DAY' },
    now: '2028-02-29T12:00Z',
    start: '2028-02-29T00:00Z',
    end: '2028-03-01T00:00Z',
    id: '2028-02-29',
    hours: 24,
  },
  {
    name: 'month from the 28th on a leap day',
    spec: { period: 'MONTH', startDay: 28 },
    now: '2028-02-29T12:00Z',
    start: '2028-02-28T00:00Z',
    end: '2028-03-28T00:00Z',
    id: '2028-02-28',
    hours: 29 * 24,
  },
  {
    name: 'month from the 28th, the day before',
    spec: { period: 'MONTH', startDay: 28 },
    now: '2028-02-27T23:59:59.999Z',
    start: '2028-01-28T00:00Z',
    end: '2028-02-28T00:00Z',
    id: '2028-01-28',
  },
  // Europe/Berlin: CET +01, CEST +02; DST from 2026-03-29 02:00 to 2026-10-25 03:00
  {
    name: 'Berlin, spring-forward day',
    spec: { period: 'DAY', timeZone: 'Europe/Berlin' },
    now: '2026-03-29T12:00+02:00',
    start: '2026-03-29T00:00+01:00',
    end: '2026-03-30T00:00+02:00',
    id: '2026-03-29',
    hours: 23,
  },
  {
    name: 'Berlin, fall-back day',
    spec: { period: 'DAY', timeZone: 'Europe/Berlin' },
    now: '2026-10-25T02:30+01:00',
    start: '2026-10-25T00:00+02:00',
    end: '2026-10-26T00:00+01:00',
    id: '2026-10-25',
    hours: 25,
  },
  {
    name: 'Berlin, the local day before UTC midnight',
    spec: { period: 'DAY', timeZone: 'Europe/Berlin' },
    now: '2026-07-01T22:30Z',
    start: '2026-07-02T00:00+02:00',
    end: '2026-07-03T00:00+02:00',
    id: '2026-07-02',
  },
  {
    name: 'Berlin, week over spring forward',
    spec: { period: 'WEEK', timeZone: 'Europe/Berlin' },
    now: '2026-03-29T23:59+02:00',
    start: '2026-03-23T00:00+01:00',
    end: '2026-03-30T00:00+02:00',
    id: '2026-03-23',
    hours: 167,
  },
  {
    name: 'Berlin, March',
    spec: { period: 'MONTH', timeZone: 'Europe/Berlin' },
    now: '2026-03-31T23:59:59+02:00',
    start: '2026-03-01T00:00+01:00',
    end: '2026-04-01T00:00+02:00',
    id: '2026-03-01',
    hours: 31 * 24 - 1,
  },
  {
    name: 'Berlin, new year while UTC is still in December',
    spec: { period: 'MONTH', timeZone: 'Europe/Berlin' },
    now: '2026-12-31T23:30Z',
    start: '2027-01-01T00:00+01:00',
    end: '2027-02-01T00:00+01:00',
    id: '2027-01-01',
  },
  // America/New_York: EST -05, EDT -04; DST from 2026-03-08 to 2026-11-01
  {
    name: 'New York, spring-forward day',
    spec: { period: 'DAY', timeZone: 'America/New_York' },
    now: '2026-03-08T03:00-04:00',
    start: '2026-03-08T00:00-05:00',
    end: '2026-03-09T00:00-04:00',
    id: '2026-03-08',
    hours: 23,
  },
  {
    name: 'New York, fall-back day, in the repeated hour',
    spec: { period: 'DAY', timeZone: 'America/New_York' },
    now: '2026-11-01T01:30-05:00',
    start: '2026-11-01T00:00-04:00',
    end: '2026-11-02T00:00-05:00',
    id: '2026-11-01',
    hours: 25,
  },
  {
    name: 'New York, the local day after UTC midnight',
    spec: { period: 'DAY', timeZone: 'America/New_York' },
    now: '2026-07-02T03:59:59.999Z',
    start: '2026-07-01T00:00-04:00',
    end: '2026-07-02T00:00-04:00',
    id: '2026-07-01',
  },
  {
    name: 'New York, year boundary',
    spec: { period: 'WEEK', startWeekday: 'SUNDAY', timeZone: 'America/New_York' },
    now: '2027-01-01T04:59Z',
    start: '2026-12-27T00:00-05:00',
    end: '2027-01-03T00:00-05:00',
    id: '2026-12-27',
  },
  // Midnight that does not exist: clocks jump from 00:00 to 01:00, so the day starts at 01:00
  {
    name: 'Santiago, no midnight on 2022-09-11',
    spec: { period: 'DAY', timeZone: 'America/Santiago' },
    now: '2022-09-11T12:00-03:00',
    start: '2022-09-11T01:00-03:00',
    end: '2022-09-12T00:00-03:00',
    id: '2022-09-11',
    hours: 23,
  },
  {
    name: 'Santiago, the day before it',
    spec: { period: 'DAY', timeZone: 'America/Santiago' },
    now: '2022-09-10T23:59:59.999-04:00',
    start: '2022-09-10T00:00-04:00',
    end: '2022-09-11T01:00-03:00',
    id: '2022-09-10',
    hours: 24,
  },
  {
    name: 'Havana, no midnight on 2022-03-13',
    spec: { period: 'DAY', timeZone: 'America/Havana' },
    now: '2022-03-13T01:00-04:00',
    start: '2022-03-13T01:00-04:00',
    end: '2022-03-14T00:00-04:00',
    id: '2022-03-13',
    hours: 23,
  },
  {
    name: 'Havana, a month starting on the day with no midnight',
    spec: { period: 'MONTH', startDay: 13, timeZone: 'America/Havana' },
    now: '2022-03-20T00:00-04:00',
    start: '2022-03-13T01:00-04:00',
    end: '2022-04-13T00:00-04:00',
    id: '2022-03-13',
  },
  // Midnight twice (Havana falls back from 01:00 to 00:00): the day starts at the first one
  {
    name: 'Havana, midnight twice on 2022-11-06',
    spec: { period: 'DAY', timeZone: 'America/Havana' },
    now: '2022-11-06T00:30-05:00',
    start: '2022-11-06T00:00-04:00',
    end: '2022-11-07T00:00-05:00',
    id: '2022-11-06',
    hours: 25,
  },
  // Sao Paulo fell back at midnight to 23:00 of the day before: 2019-02-16 lasted 25 hours
  {
    name: 'Sao Paulo, 2019-02-16 with its hour twice',
    spec: { period: 'DAY', timeZone: 'America/Sao_Paulo' },
    now: '2019-02-16T23:30-03:00',
    start: '2019-02-16T00:00-02:00',
    end: '2019-02-17T00:00-03:00',
    id: '2019-02-16',
    hours: 25,
  },
  // Goose Bay fell back at 00:01 to 23:01 of the day before: after 03:01Z the wall clock shows
  // 2010-11-06 again, but those instants come after 2010-11-07 began, so they belong to it.
  {
    name: 'Goose Bay, wall clock back in yesterday',
    spec: { period: 'DAY', timeZone: 'America/Goose_Bay' },
    now: '2010-11-07T03:30Z',
    start: '2010-11-07T00:00-03:00',
    end: '2010-11-08T00:00-04:00',
    id: '2010-11-07',
    hours: 25,
  },
  {
    name: 'Goose Bay, the day before',
    spec: { period: 'DAY', timeZone: 'America/Goose_Bay' },
    now: '2010-11-07T02:59:59.999Z',
    start: '2010-11-06T00:00-03:00',
    end: '2010-11-07T00:00-03:00',
    id: '2010-11-06',
    hours: 24,
  },
  // Toronto 1919: clocks jumped from 23:30 to 00:30, over midnight; the day began at 00:30 (04:30Z)
  {
    name: 'Toronto 1919, a gap straddling midnight',
    spec: { period: 'DAY', timeZone: 'America/Toronto' },
    now: '1919-03-31T12:00-04:00',
    start: '1919-03-31T00:30-04:00',
    end: '1919-04-01T00:00-04:00',
    id: '1919-03-31',
    hours: 23.5,
  },
  {
    name: 'Toronto 1919, the day that ended at 23:30',
    spec: { period: 'DAY', timeZone: 'America/Toronto' },
    now: '1919-03-30T23:29:59-05:00',
    start: '1919-03-30T00:00-05:00',
    end: '1919-03-31T00:30-04:00',
    id: '1919-03-30',
    hours: 23.5,
  },
  // Apia skipped 2011-12-30 entirely (-10 to +14): no instant has that local date
  {
    name: 'Apia, the last instant of 2011-12-29',
    spec: { period: 'DAY', timeZone: 'Pacific/Apia' },
    now: '2011-12-30T09:59:59.999Z',
    start: '2011-12-29T00:00-10:00',
    end: '2011-12-31T00:00+14:00',
    id: '2011-12-29',
    hours: 24,
  },
  {
    name: 'Apia, next comes 2011-12-31',
    spec: { period: 'DAY', timeZone: 'Pacific/Apia' },
    now: '2011-12-30T10:00Z',
    start: '2011-12-31T00:00+14:00',
    end: '2012-01-01T00:00+14:00',
    id: '2011-12-31',
    hours: 24,
  },
  {
    name: 'Apia, a week whose first day never happened',
    spec: { period: 'WEEK', startWeekday: 'FRIDAY', timeZone: 'Pacific/Apia' },
    now: '2011-12-31T12:00+14:00',
    start: '2011-12-31T00:00+14:00',
    end: '2012-01-06T00:00+14:00',
    id: '2011-12-30',
    hours: 144,
  },
  // a zone east of UTC with a half-hour offset, month start in local time
  {
    name: 'Kolkata, month start before UTC midnight',
    spec: { period: 'MONTH', startDay: 5, timeZone: 'Asia/Kolkata' },
    now: '2026-06-04T18:30Z',
    start: '2026-06-05T00:00+05:30',
    end: '2026-07-05T00:00+05:30',
    id: '2026-06-05',
  },
];

describe('periodWindow', () => {
  it.each(cases)('$name', ({ spec, now, start, end, id, hours }) => {
    const window = periodWindow(spec, at(now));
    expect({
      start: new Date(window.start).toISOString(),
      end: new Date(window.end).toISOString(),
      id: window.id,
    }).toEqual({ start: new Date(at(start)).toISOString(), end: new Date(at(end)).toISOString(), id });
    if (hours !== undefined) expect((window.end - window.start) / HOUR).toBe(hours);
  });

  const zones = [
    'UTC',
    'Europe/Berlin',
    'America/New_York',
    'America/Santiago',
    'America/Havana',
    'America/Goose_Bay',
    'Australia/Lord_Howe',
    'Asia/Kathmandu',
    'Pacific/Apia',
    'Pacific/Chatham',
  ];
  const specs: PeriodSpec[] = zones.flatMap((timeZone) => [
    { period: 'DAY', timeZone },
    { period: 'WEEK', startWeekday: 'SUNDAY', timeZone },
    { period: 'MONTH', startDay: 28, timeZone },
  ]);

  it.each(specs)('tiles the timeline: $period in $timeZone', (spec) => {
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let i = 0; i < 60; i++) {
      const now = Date.UTC(2005, 0, 1) + Math.floor(random() * 25 * 365 * DAY);
      const window = periodWindow(spec, now);
      expect(window.start).toBeLessThanOrEqual(now);
      expect(window.end).toBeGreaterThan(now);
      expect(window.id).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      // every instant of the window gives the same window, and the neighbours meet it exactly
      expect(periodWindow(spec, window.start)).toEqual(window);
      expect(periodWindow(spec, window.end - 1)).toEqual(window);
      expect(periodWindow(spec, window.start - 1).end).toBe(window.start);
      expect(periodWindow(spec, window.end).start).toBe(window.end);
      const length = window.end - window.start;
      if (spec.period === 'DAY') expect(length).toBeGreaterThanOrEqual(22 * HOUR);
      if (spec.period === 'DAY') expect(length).toBeLessThanOrEqual(26 * HOUR);
      if (spec.period === 'WEEK') expect(Math.abs(length - 7 * DAY)).toBeLessThanOrEqual(2 * HOUR);
      if (spec.period === 'MONTH') expect(length).toBeGreaterThanOrEqual(28 * DAY - 2 * HOUR);
      if (spec.period === 'MONTH') expect(length).toBeLessThanOrEqual(31 * DAY + 2 * HOUR);
    }
  });

  it('gives ids that name the local start date', () => {
    const window = periodWindow(
      { period: 'DAY', timeZone: 'Pacific/Kiritimati' },
      at('2026-05-17T09:59:59Z'),
    );
    expect(window.id).toBe('2026-05-17'); // +14: 23:59:59 local
    expect(
      periodWindow({ period: 'DAY', timeZone: 'Pacific/Kiritimati' }, at('2026-05-17T10:00:00Z')).id,
    ).toBe('2026-05-18');
    expect(
      periodWindow({ period: 'DAY', timeZone: 'Pacific/Pago_Pago' }, at('2026-05-18T10:59:59Z')).id,
    ).toBe(
      '2026-05-17', // -11: 23:59:59 local
    );
  });

  it('throws an Error naming the field on an invalid spec', () => {
    expect(() => periodWindow({ period: 'MONTH', startDay: 31 }, 0)).toThrow(
      'invalid quota period: startDay must be an integer from 1 to 28 (a day every month has), got 31',
    );
    expect(() => periodWindow({ period: 'DAY', timeZone: 'Mars/Olympus_Mons' }, 0)).toThrow(/timeZone/);
  });

  it('throws a RangeError for a time outside the supported years', () => {
    expect(() => periodWindow({ period: 'DAY' }, Number.NaN)).toThrow(RangeError);
    expect(() => periodWindow({ period: 'DAY' }, Infinity)).toThrow(RangeError);
    expect(() => periodWindow({ period: 'DAY' }, Date.UTC(1899, 11, 31))).toThrow(RangeError);
    expect(() => periodWindow({ period: 'DAY' }, Date.UTC(9999, 0, 1))).toThrow(RangeError);
    expect(periodWindow({ period: 'DAY' }, Date.UTC(1900, 0, 1)).id).toBe('1900-01-01');
    expect(periodWindow({ period: 'MONTH' }, Date.UTC(9998, 11, 31)).id).toBe('9998-12-01');
    expect(periodWindow({ period: 'DAY' }, 0)).toEqual({ start: 0, end: DAY, id: '1970-01-01' });
  });
});

describe('checkPeriodSpec', () => {
  it.each<PeriodSpec>([
    { period: 'DAY' },
    { period: 'WEEK' },
    { period: 'MONTH' },
    { period: 'MONTH', startDay: 1 },
    { period: 'MONTH', startDay: 28, timeZone: 'Europe/Berlin' },
    { period: 'WEEK', startWeekday: 'SUNDAY', timeZone: 'America/Argentina/Buenos_Aires' },
    { period: 'DAY', timeZone: 'UTC' },
    { period: 'DAY', timeZone: 'Etc/GMT+5' },
    { period: 'DAY', timeZone: 'EST5EDT' },
  ])('accepts %o', (spec) => {
    expect(checkPeriodSpec(spec)).toBeUndefined();
  });

  it.each([
    [{ period: 'YEAR' }, 'period must be one of DAY, WEEK, MONTH, got "YEAR"'],
    [{ period: 'day' }, 'period must be one of DAY, WEEK, MONTH, got "day"'],
    [{}, 'period must be one of DAY, WEEK, MONTH, got undefined'],
    [
      { period: 'MONTH', startDay: 31 },
      'startDay must be an integer from 1 to 28 (a day every month has), got 31',
    ],
    [
      { period: 'MONTH', startDay: 29 },
      'startDay must be an integer from 1 to 28 (a day every month has), got 29',
    ],
    [
      { period: 'MONTH', startDay: 0 },
      'startDay must be an integer from 1 to 28 (a day every month has), got 0',
    ],
    [
      { period: 'MONTH', startDay: 1.5 },
      'startDay must be an integer from 1 to 28 (a day every month has), got 1.5',
    ],
    [
      { period: 'MONTH', startDay: '15' },
      'startDay must be an integer from 1 to 28 (a day every month has), got "15"',
    ],
    [{ period: 'WEEK', startDay: 1 }, 'startDay applies only to period MONTH, not WEEK'],
    [{ period: 'DAY', startDay: 1 }, 'startDay applies only to period MONTH, not DAY'],
    [{ period: 'MONTH', startWeekday: 'MONDAY' }, 'startWeekday applies only to period WEEK, not MONTH'],
    [
      { period: 'WEEK', startWeekday: 'monday' },
      expect.stringMatching(/^startWeekday must be one of MONDAY, .*SUNDAY, got "monday"$/),
    ],
    [{ period: 'WEEK', startWeekday: 1 }, expect.stringMatching(/^startWeekday must be one of .*, got 1$/)],
    [
      { period: 'DAY', timeZone: 'Mars/Olympus_Mons' },
      'timeZone must be an IANA time zone name such as "Europe/Berlin", got "Mars/Olympus_Mons"',
    ],
    [{ period: 'DAY', timeZone: '+05:00' }, expect.stringMatching(/^timeZone must be/)],
    [{ period: 'DAY', timeZone: '' }, expect.stringMatching(/^timeZone must be/)],
    [{ period: 'DAY', timeZone: 'Europe/Berlin ' }, expect.stringMatching(/^timeZone must be/)],
    [{ period: 'DAY', timeZone: '../../etc/passwd' }, expect.stringMatching(/^timeZone must be/)],
    [{ period: 'DAY', timeZone: 'A'.repeat(200) }, expect.stringMatching(/^timeZone must be/)],
    [
      { period: 'DAY', timeZone: 3 },
      'timeZone must be an IANA time zone name such as "Europe/Berlin", got 3',
    ],
  ])('refuses %o', (spec, message) => {
    expect(checkPeriodSpec(spec as unknown as PeriodSpec)).toEqual(message);
  });

  it('refuses what is not an object', () => {
    for (const spec of [null, undefined, 'DAY', 7]) {
      expect(checkPeriodSpec(spec as unknown as PeriodSpec)).toBe('quota period spec must be an object');
    }
  });
});

describe('PeriodCache', () => {
  const spec: PeriodSpec = { period: 'DAY', timeZone: 'Europe/Berlin' };

  it('returns the cached window while now is inside it and a new one after', () => {
    const cache = new PeriodCache();
    const first = cache.window(spec, at('2026-05-17T08:00+02:00'));
    expect(first.id).toBe('2026-05-17');
    expect(cache.window(spec, at('2026-05-17T23:59:59.999+02:00'))).toBe(first);
    const next = cache.window(spec, at('2026-05-18T00:00+02:00'));
    expect(next.id).toBe('2026-05-18');
    expect(next.start).toBe(first.end);
    expect(cache.size).toBe(1);
  });

  it('recomputes when the clock goes back before the window', () => {
    const cache = new PeriodCache();
    cache.window(spec, at('2026-05-17T08:00+02:00'));
    expect(cache.window(spec, at('2026-05-16T23:00+02:00')).id).toBe('2026-05-16');
  });

  it('keys specs by value, defaults included', () => {
    const cache = new PeriodCache();
    const now = at('2026-05-17T08:00Z');
    const month = cache.window({ period: 'MONTH' }, now);
    expect(cache.window({ period: 'MONTH', startDay: 1, timeZone: 'UTC' }, now)).toBe(month);
    expect(cache.window({ period: 'MONTH', startDay: 2 }, now).id).toBe('2026-05-02');
    const week = cache.window({ period: 'WEEK' }, now);
    expect(cache.window({ period: 'WEEK', startWeekday: 'MONDAY' }, now)).toBe(week);
    expect(cache.window({ period: 'WEEK', startWeekday: 'SUNDAY' }, now).id).toBe('2026-05-17');
    expect(cache.window({ period: 'DAY', timeZone: 'America/New_York' }, now).id).toBe('2026-05-17');
    expect(cache.window({ period: 'DAY', timeZone: 'Asia/Tokyo' }, at('2026-05-17T20:00Z')).id).toBe(
      '2026-05-18',
    );
    expect(cache.size).toBe(6);
    cache.clear();
    expect(cache.size).toBe(0);
  });

  it('throws on an invalid spec and caches nothing for it', () => {
    const cache = new PeriodCache();
    expect(() => cache.window({ period: 'MONTH', startDay: 30 }, 0)).toThrow(/startDay/);
    expect(cache.size).toBe(0);
  });

  it('starts over past its size bound', () => {
    const cache = new PeriodCache(2);
    cache.window({ period: 'DAY' }, 0);
    cache.window({ period: 'WEEK' }, 0);
    expect(cache.size).toBe(2);
    cache.window({ period: 'MONTH' }, 0);
    expect(cache.size).toBe(1);
  });
});
