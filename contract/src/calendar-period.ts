/**
 * Calendar-aligned quota periods: the DAY, WEEK or MONTH containing an instant, bounded by local
 * midnights in the plan's time zone, and the period id (its first local date, `YYYY-MM-DD`) that names
 * the period in counter keys and usage reports.
 *
 * Why the platform's `Intl` and not luxon: the time-zone rules are the tz database that ships inside
 * Node's ICU, which luxon also reads through `Intl`, so a library adds no data, only arithmetic. And its
 * arithmetic answers a different question: luxon resolves a local time that does not exist by shifting
 * it by the length of the gap (Temporal's "compatible"), which is the first instant of the day only when
 * the gap starts exactly at midnight. What we need is Temporal's `startOfDay`: the first instant whose
 * local date is the day. So this file does that one resolution itself (`startOfLocalDay`), in a dozen
 * lines checked by tests against real transitions (Europe/Berlin, America/New_York, America/Santiago,
 * America/Havana, America/Sao_Paulo, America/Goose_Bay, Pacific/Apia), and does all calendar arithmetic
 * (month lengths, leap years, weekdays) on plain dates with `Date.UTC`, where no offset is involved.
 */

/** The length of a quota period. */
export type QuotaPeriod = 'DAY' | 'WEEK' | 'MONTH';

import { WEEKDAYS } from '../../crds/src/usage-plan.ts';

/** A day of the week, as the CRD spells it. */
export type Weekday = (typeof WEEKDAYS)[number];

/** Every quota period, in order of length. */
export const QUOTA_PERIODS: readonly QuotaPeriod[] = Object.freeze(['DAY', 'WEEK', 'MONTH']);

/** Every weekday, Monday first: the CRD's own list, so the two cannot drift. */
export { WEEKDAYS };

/** The latest day of the month a MONTH period may start on: every month has it. */
export const MAX_START_DAY = 28;

/** How a plan's quota period is calendar-aligned. Validate with {@link checkPeriodSpec}. */
export interface PeriodSpec {
  /** DAY, WEEK or MONTH. */
  readonly period: QuotaPeriod;
  /** MONTH only: the day of the month the period starts, 1 to {@link MAX_START_DAY}; default 1. */
  readonly startDay?: number;
  /** WEEK only: the weekday the period starts; default MONDAY. */
  readonly startWeekday?: Weekday;
  /** IANA time zone whose local midnights bound the periods; default 'UTC'. */
  readonly timeZone?: string;
}

/** One period: `[start, end)` in epoch milliseconds, and its id. */
export interface PeriodWindow {
  /** First instant of the period: the first instant of its first local day. */
  readonly start: number;
  /** First instant of the next period (exclusive). */
  readonly end: number;
  /**
   * The period's first local date, `YYYY-MM-DD` (for a MONTH starting on the 15th, always `…-15`). It is
   * the calendar date even in the rare zone that skipped that whole date (Pacific/Apia, 2011-12-30).
   */
  readonly id: string;
}

/** Earliest `now` accepted by {@link periodWindow} (1900-01-01T00:00Z). */
export const MIN_PERIOD_TIME = Date.UTC(1900, 0, 1);
/** `now` must be before this (9999-01-01T00:00Z), so that ids keep four-digit years. */
export const MAX_PERIOD_TIME = Date.UTC(9999, 0, 1);

const DAY_MS = 86_400_000;
const TIME_ZONE_SHAPE = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/;

/**
 * Checks a period spec from configuration. Returns a message naming the offending field, or undefined
 * when the spec is valid. Never throws, whatever the input.
 */
export function checkPeriodSpec(spec: PeriodSpec): string | undefined {
  const raw: unknown = spec; // configuration may be anything at run time
  if (typeof raw !== 'object' || raw === null) return 'quota period spec must be an object';
  const { period, startDay, startWeekday, timeZone } = raw as Record<string, unknown>;
  if (!QUOTA_PERIODS.includes(period as QuotaPeriod)) {
    return `period must be one of ${QUOTA_PERIODS.join(', ')}, got ${show(period)}`;
  }
  if (startDay !== undefined) {
    if (period !== 'MONTH') return `startDay applies only to period MONTH, not ${String(period)}`;
    if (
      typeof startDay !== 'number' ||
      !Number.isInteger(startDay) ||
      startDay < 1 ||
      startDay > MAX_START_DAY
    ) {
      return `startDay must be an integer from 1 to ${MAX_START_DAY} (a day every month has), got ${show(startDay)}`;
    }
  }
  if (startWeekday !== undefined) {
    if (period !== 'WEEK') return `startWeekday applies only to period WEEK, not ${String(period)}`;
    if (!WEEKDAYS.includes(startWeekday as Weekday)) {
      return `startWeekday must be one of ${WEEKDAYS.join(', ')}, got ${show(startWeekday)}`;
    }
  }
  if (timeZone !== undefined && zoneFormatter(timeZone) === undefined) {
    return `timeZone must be an IANA time zone name such as "Europe/Berlin", got ${show(timeZone)}`;
  }
  return undefined;
}

/**
 * The period of `spec` that contains `now` (epoch ms): `start <= now < end`. Consecutive periods tile
 * the timeline (one's `end` is the next one's `start`). A local midnight that does not exist (a DST gap
 * at midnight, as in America/Santiago) is replaced by the first instant of that local day; a midnight
 * that occurs twice counts from its first occurrence. Throws an Error naming the field on an invalid
 * spec, and a RangeError when `now` is outside [{@link MIN_PERIOD_TIME}, {@link MAX_PERIOD_TIME}).
 */
export function periodWindow(spec: PeriodSpec, now: number): PeriodWindow {
  const problem = checkPeriodSpec(spec);
  if (problem !== undefined) throw new Error(`invalid quota period: ${problem}`);
  if (!(now >= MIN_PERIOD_TIME && now < MAX_PERIOD_TIME)) {
    throw new RangeError(`quota period: now must be an epoch ms in [1900-01-01, 9999-01-01), got ${now}`);
  }
  const zone =
    spec.timeZone === undefined || spec.timeZone === 'UTC' ? undefined : zoneFormatter(spec.timeZone);
  const startDay = spec.startDay ?? 1;
  const weekStart = WEEKDAYS.indexOf(spec.startWeekday ?? 'MONDAY');

  // Nominal dates are UTC-midnight ms of a local calendar date: pure calendar values, no offset inside.
  let first = nominalStart(spec.period, localDate(zone, now), startDay, weekStart);
  // The local date of `now` is a guess: where a clock fell back across midnight (America/Goose_Bay),
  // an instant can show yesterday's date after today began. Step until the window holds `now`.
  for (let step = 0; step < 8; step++) {
    const start = startOfLocalDay(zone, first);
    if (now < start) {
      first = shift(spec.period, first, -1, startDay);
      continue;
    }
    const next = shift(spec.period, first, 1, startDay);
    const end = startOfLocalDay(zone, next);
    if (now >= end) {
      first = next;
      continue;
    }
    return { start, end, id: new Date(first).toISOString().slice(0, 10) };
  }
  throw new Error(`quota period: no period of ${spec.period} in ${spec.timeZone ?? 'UTC'} contains ${now}`);
}

/**
 * Remembers the current window per spec, so the hot path computes a window once per period: it returns
 * the cached window while `start <= now < end` and recomputes otherwise (also when the clock went back).
 * Specs are keyed by value, so equal specs from different objects share an entry.
 */
export class PeriodCache {
  readonly #windows = new Map<string, PeriodWindow>();
  /** The same windows by spec object (a frozen spec of a loaded plan is looked up by identity). */
  #bySpec = new WeakMap<PeriodSpec, PeriodWindow>();
  #last: { readonly spec: PeriodSpec; readonly window: PeriodWindow } | undefined;
  readonly #maxEntries: number;

  /** `maxEntries` (default 10 000) bounds the memory: past it the cache starts over. */
  constructor(maxEntries = 10_000) {
    this.#maxEntries = maxEntries;
  }

  /** The window of `spec` containing `now`; throws as {@link periodWindow}. */
  window(spec: PeriodSpec, now: number): PeriodWindow {
    // The hot path: the same spec object as last time, still in its window (no key to build).
    const memo = this.#last;
    if (memo !== undefined && memo.spec === spec && now >= memo.window.start && now < memo.window.end) {
      return memo.window;
    }
    const last = this.#bySpec.get(spec);
    if (last !== undefined && now >= last.start && now < last.end) {
      this.#last = { spec, window: last };
      return last;
    }
    const key = specKey(spec);
    const cached = this.#windows.get(key);
    if (cached !== undefined && now >= cached.start && now < cached.end) return cached;
    const fresh = periodWindow(spec, now);
    if (cached === undefined && this.#windows.size >= this.#maxEntries) this.#windows.clear();
    this.#windows.set(key, fresh);
    this.#bySpec.set(spec, fresh);
    this.#last = { spec, window: fresh };
    return fresh;
  }

  /** The number of specs with a cached window. */
  get size(): number {
    return this.#windows.size;
  }

  /** Forgets every cached window. */
  clear(): void {
    this.#windows.clear();
    this.#bySpec = new WeakMap();
    this.#last = undefined;
  }
}

function specKey(spec: PeriodSpec): string {
  const startDay = spec.period === 'MONTH' ? (spec.startDay ?? 1) : spec.startDay;
  const weekday = spec.period === 'WEEK' ? (spec.startWeekday ?? 'MONDAY') : spec.startWeekday;
  return `${spec.period}|${String(startDay)}|${String(weekday)}|${spec.timeZone ?? 'UTC'}`;
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

// ---- calendar arithmetic on nominal dates (UTC-midnight ms) -------------------------------------

function nominalStart(period: QuotaPeriod, day: number, startDay: number, weekStart: number): number {
  switch (period) {
    case 'DAY':
      return day;
    case 'WEEK': {
      // 1970-01-01 was a Thursday, index 3 counting from Monday.
      const weekday = (((day / DAY_MS + 3) % 7) + 7) % 7;
      return day - ((weekday - weekStart + 7) % 7) * DAY_MS;
    }
    case 'MONTH': {
      const date = new Date(day);
      const month = date.getUTCDate() >= startDay ? date.getUTCMonth() : date.getUTCMonth() - 1;
      return Date.UTC(date.getUTCFullYear(), month, startDay);
    }
  }
}

function shift(period: QuotaPeriod, first: number, by: 1 | -1, startDay: number): number {
  switch (period) {
    case 'DAY':
      return first + by * DAY_MS;
    case 'WEEK':
      return first + by * 7 * DAY_MS;
    case 'MONTH': {
      const date = new Date(first);
      return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + by, startDay);
    }
  }
}

// ---- time-zone resolution ---------------------------------------------------------------------

const formatters = new Map<string, Intl.DateTimeFormat>();

/** A formatter giving the local wall clock in `timeZone`, or undefined when the name is not a zone. */
function zoneFormatter(timeZone: unknown): Intl.DateTimeFormat | undefined {
  if (typeof timeZone !== 'string') return undefined;
  let formatter = formatters.get(timeZone);
  if (formatter !== undefined) return formatter;
  // Only IANA-shaped names: Intl would also take offsets such as "+05:00" in some versions.
  if (timeZone.length > 64 || !TIME_ZONE_SHAPE.test(timeZone)) return undefined;
  try {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      calendar: 'gregory',
      numberingSystem: 'latn',
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch {
    return undefined; // RangeError: not a time zone ICU knows
  }
  formatters.set(timeZone, formatter);
  return formatter;
}

/** The offset (local minus UTC, ms, whole seconds) in force at instant `t`; 0 for UTC. */
function offsetAt(zone: Intl.DateTimeFormat | undefined, t: number): number {
  if (zone === undefined) return 0;
  let year = 0;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  for (const part of zone.formatToParts(t)) {
    switch (part.type) {
      case 'year':
        year = Number(part.value);
        break;
      case 'month':
        month = Number(part.value);
        break;
      case 'day':
        day = Number(part.value);
        break;
      case 'hour':
        hour = Number(part.value);
        break;
      case 'minute':
        minute = Number(part.value);
        break;
      case 'second':
        second = Number(part.value);
        break;
      default:
        break;
    }
  }
  return Date.UTC(year, month - 1, day, hour, minute, second) - Math.floor(t / 1000) * 1000;
}

/** The local calendar date of instant `t`, as a nominal date. */
function localDate(zone: Intl.DateTimeFormat | undefined, t: number): number {
  return Math.floor((t + offsetAt(zone, t)) / DAY_MS) * DAY_MS;
}

/**
 * The first instant whose local wall clock reads `day` 00:00 or later: the local midnight, its first
 * occurrence when it occurs twice, or the end of the DST gap when it does not occur. Assumes at most
 * one offset change in the day either side of `day`, on a whole second, as holds for the tz database.
 */
function startOfLocalDay(zone: Intl.DateTimeFormat | undefined, day: number): number {
  if (zone === undefined) return day;
  const before = offsetAt(zone, day - DAY_MS);
  const after = offsetAt(zone, day + DAY_MS);
  // The midnight read with each offset is a real instant when that offset is in force there.
  let earliest = Infinity;
  if (offsetAt(zone, day - before) === before) earliest = day - before;
  if (after !== before && day - after < earliest && offsetAt(zone, day - after) === after) {
    earliest = day - after;
  }
  if (earliest !== Infinity) return earliest;
  if (after <= before) return day - after; // not a gap: cannot happen with one transition
  // A gap over midnight: the clock jumps from before `day` to after it at one transition instant, which
  // lies in [day - after, day - before]. Find it by bisection over whole seconds.
  let low = (day - after) / 1000; // wall clock still before `day`
  let high = (day - before) / 1000; // wall clock already past it
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    const t = mid * 1000;
    if (t + offsetAt(zone, t) >= day) high = mid;
    else low = mid;
  }
  return high * 1000;
}
