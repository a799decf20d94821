/**
 * The quota rule, in one place: a request costing `cost` units passes when the units used in the period
 * plus the cost stay within the limit, and a refused request uses nothing. Stores that apply the rule
 * atomically elsewhere (e.g. a Redis script) must mirror exactly this.
 */

/** The outcome of {@link takeQuota}. */
export interface QuotaDecision {
  /** Whether the request may pass. */
  readonly allowed: boolean;
  /** Units used in the period after this request (unchanged when refused). */
  readonly used: number;
  /** Units left in the period after this request, never below 0. */
  readonly remaining: number;
}

/**
 * Applies the quota rule: allowed iff `used + cost <= limit`; when allowed `used` grows by `cost`, when
 * refused it stays. `used` may already exceed `limit` (after an adjustment took quota back), in which
 * case `remaining` is 0 and every request with a cost is refused. A cost of 0 passes while `used <= limit`.
 * The arguments are counts: non-negative integers; anything else is a caller bug and gives a refusal.
 */
export function takeQuota(used: number, limit: number, cost: number): QuotaDecision {
  // Written so that NaN anywhere refuses (every comparison with NaN is false).
  const allowed = used + cost <= limit && cost >= 0;
  const after = allowed ? used + cost : used;
  const left = limit - after;
  return { allowed, used: after, remaining: left > 0 ? left : 0 };
}
