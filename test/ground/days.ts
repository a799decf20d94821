/**
 * Dates as the product counts them: UTC days (the plans' time zone). The product reads its own clock, so
 * a test expecting "today" disagrees with it when the run crosses midnight UTC: {@link onOneUtcDay} runs
 * such a check once more, and only then.
 */
const DAY_MS = 86_400_000;

/** The UTC day (YYYY-MM-DD) `offset` days from the day of `ms` (a time in milliseconds). */
export function utcDay(ms: number, offset = 0): string {
  return new Date(ms + offset * DAY_MS).toISOString().slice(0, 10);
}

/**
 * Runs `body` with one reading of the clock, from which it takes its dates. If it fails and the UTC day
 * has changed since that reading, the failure may be the day boundary's rather than the product's: it
 * runs once more, with a new reading, and that run's outcome stands. `body` must be repeatable on the new
 * day (whose day and daily-quota counters start at 0).
 */
export async function onOneUtcDay(body: (now: number) => Promise<void>): Promise<void> {
  const now = Date.now();
  try {
    await body(now);
  } catch (err) {
    if (utcDay(Date.now()) === utcDay(now)) throw err;
    await body(Date.now());
  }
}
