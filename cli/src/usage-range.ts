/**
 * The days of a `keystile usage` range: `YYYY-MM-DD` dates checked to be real, listed from first to last,
 * and the warning when part of the range lies beyond the retention of the day counters. Pure.
 */

const DAY_MS = 86_400_000;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The longest range the command reads at once (ten years of days). */
export const MAX_RANGE_DAYS = 3660;

/** How long the enforcers keep the per-day counters, by default (the flag `--retention-days`). */
export const DEFAULT_RETENTION_DAYS = 90;

/** A date as the UTC midnight it names (epoch ms); throws an Error naming the flag when it is not a date. */
export function parseDay(text: string, flag: string): number {
  const m = DATE.exec(text);
  if (m) {
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const t = Date.UTC(y, mo - 1, d);
    const back = new Date(t);
    if (back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d) return t;
  }
  throw new Error(`${flag} ${JSON.stringify(text)}: expected a date YYYY-MM-DD`);
}

/** A UTC midnight as `YYYY-MM-DD`. */
export function formatDay(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}

/** Every day from `from` to `to`, both included; throws when `to` is before `from` or the range is too long. */
export function daysInRange(from: string, to: string): string[] {
  const a = parseDay(from, '--from');
  const b = parseDay(to, '--to');
  if (b < a) throw new Error(`--to ${to} is before --from ${from}`);
  const count = (b - a) / DAY_MS + 1;
  if (count > MAX_RANGE_DAYS)
    throw new Error(`the range has ${count} days; at most ${MAX_RANGE_DAYS} at once`);
  return Array.from({ length: count }, (_, i) => formatDay(a + i * DAY_MS));
}

/**
 * Why part of the range may read as zero: days before the oldest day still kept (today less the
 * retention), or a range longer than the retention. Undefined when the whole range is within it.
 */
export function retentionWarning(
  days: readonly string[],
  today: string,
  retentionDays: number,
): string | undefined {
  const first = days[0];
  if (first === undefined) return undefined;
  // A day's counter lives until the day's end plus the retention: today less the retention is the oldest
  // day left, so a range within it has at most retention + 1 days.
  const oldest = formatDay(parseDay(today, 'today') - retentionDays * DAY_MS);
  if (first >= oldest && days.length <= retentionDays + 1) return undefined;
  return `day counters are kept ${retentionDays} days (--retention-days): days before ${oldest} have expired and read as 0`;
}
