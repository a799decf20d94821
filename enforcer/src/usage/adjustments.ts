/**
 * Applying quota adjustments (UsageAdjustment, AWS's UpdateUsage). The rendered index of each stage lists
 * its plans' adjustments (`StageIndex.adjustments`); after every config swap the enforcer applies each one
 * whose period is its plan's current period to the subject's quota counter, through `store.adjust`, which
 * sets a marker of the adjustment's id beside the counter in the same atomic step: applied exactly once,
 * however many times it is asked, by however many enforcers, across restarts (the memory store keeps its
 * markers in its checkpoint). An adjustment of a past period is ignored; one of a future period waits,
 * and a timer applies it when that period starts.
 *
 * {@link planAdjustments} is pure (the catalog and the time in, what to apply out); {@link AdjustmentApplier}
 * is the small I/O part: it calls the store, remembers what it has done, logs and counts.
 */
import type { Logger } from 'pino';
import type { RenderedAdjustment } from '../../../contract/src/format.ts';
import { counterKeys, type Subject } from '../../../contract/src/identity.ts';
import { PeriodCache } from '../../../contract/src/calendar-period.ts';
import type { Catalog, CatalogView, PlanEntry } from '../catalog/catalog.ts';
import type { Clock } from '../decision/clock.ts';
import type { AdjustRequest, CounterStore } from '../store/store.ts';

/** An adjustment to apply now: the rendered one, its plan's id, and what the store is asked. */
export interface DueAdjustment {
  readonly adjustment: RenderedAdjustment;
  /** The plan's counter identity, `<namespace>/<name>`. */
  readonly planId: string;
  readonly request: AdjustRequest;
}

/** An adjustment that is not applied, and why. */
export interface SkippedAdjustment {
  readonly adjustment: RenderedAdjustment;
  /** The stage whose index listed it. */
  readonly stage: string;
  readonly why: 'past-period' | 'unknown-plan' | 'no-quota' | 'bad-subject';
}

/** What {@link planAdjustments} found. */
export interface AdjustmentPlan {
  /** Adjustments of their plan's current period, each once (by counter and id) even when several stages list it. */
  readonly due: readonly DueAdjustment[];
  /** How many wait for a future period. */
  readonly waiting: number;
  /** When the earliest waiting one may become due (epoch ms: the end of its plan's current period). */
  readonly nextCheckAt: number | undefined;
  readonly skipped: readonly SkippedAdjustment[];
}

/** Parses a rendered subject (`key:<id>` or `customer:<name>`), or undefined. */
export function parseSubject(text: string): Subject | undefined {
  const colon = text.indexOf(':');
  const value = text.slice(colon + 1);
  if (colon < 0 || value === '' || /[{}|]/.test(value)) return undefined;
  const kind = text.slice(0, colon);
  if (kind === 'key') return { kind: 'key', id: value };
  if (kind === 'customer') return { kind: 'customer', name: value };
  return undefined;
}

/**
 * Which adjustments of `catalog` are due at `now`: those whose period id is their plan's current period
 * id. Pure; never throws (a plan whose period cannot be computed skips its adjustments as `no-quota`).
 */
export function planAdjustments(
  catalog: Catalog | undefined,
  now: number,
  periods: PeriodCache,
): AdjustmentPlan {
  const due: DueAdjustment[] = [];
  const skipped: SkippedAdjustment[] = [];
  const seen = new Set<string>();
  let waiting = 0;
  let nextCheckAt: number | undefined;
  for (const stage of catalog?.stages.values() ?? []) {
    for (const adjustment of stage.adjustments) {
      const skip = (why: SkippedAdjustment['why']): void => {
        skipped.push({ adjustment, stage: stage.key, why });
      };
      const plan: PlanEntry | undefined = stage.plans.get(adjustment.plan);
      if (plan === undefined) {
        skip('unknown-plan');
        continue;
      }
      const subject = parseSubject(adjustment.subject);
      if (subject === undefined) {
        skip('bad-subject');
        continue;
      }
      if (plan.quota === undefined) {
        skip('no-quota');
        continue;
      }
      let window;
      try {
        window = periods.window(plan.quota.spec, now);
      } catch {
        skip('no-quota');
        continue;
      }
      // Period ids are dates, YYYY-MM-DD: their order as strings is their order in time.
      if (adjustment.period < window.id) {
        skip('past-period');
        continue;
      }
      if (adjustment.period > window.id) {
        waiting++;
        if (nextCheckAt === undefined || window.end < nextCheckAt) nextCheckAt = window.end;
        continue;
      }
      const quotaKey = counterKeys(plan.id, subject, window.id).quota;
      const once = `${quotaKey}\n${adjustment.id}`;
      if (seen.has(once)) continue;
      seen.add(once);
      due.push({
        adjustment,
        planId: plan.id,
        request: { quotaKey, id: adjustment.id, amount: adjustment.amount, periodEnd: window.end, now },
      });
    }
  }
  return { due, waiting, nextCheckAt, skipped };
}

/** What one run of the applier did. */
export interface ApplyReport {
  /** Applied now (the store had not applied them before). */
  readonly applied: number;
  /** Found already applied (by this process earlier, another enforcer, or before a restart). */
  readonly alreadyApplied: number;
  /** The store failed on these: retried later. */
  readonly failed: number;
  readonly waiting: number;
  readonly skipped: number;
}

/** What the applier needs. */
export interface ApplierDeps {
  readonly catalog: CatalogView;
  readonly store: Pick<CounterStore, 'adjust'>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Told of each adjustment applied now (the metric), by plan id. */
  readonly applied?: (planId: string) => void;
  /** Ms before retrying adjustments the store failed on (default 5000). */
  readonly retryMs?: number;
  /** How many store calls run at once (default 16). */
  readonly concurrency?: number;
}

/** The longest a timer may be set for (setTimeout's limit, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Applies the due adjustments of the current catalog: {@link trigger} after every config swap, and by
 * itself when a waiting adjustment's period starts or after a store failure. Runs never overlap; a
 * trigger during a run makes one more run after it.
 */
export class AdjustmentApplier {
  readonly #deps: ApplierDeps;
  readonly #periods = new PeriodCache();
  /** `quotaKey \n id` of adjustments the store has answered for (applied now or before). */
  #done = new Set<string>();
  /** Adjustments already reported as skipped (logged once). */
  #reported = new Set<string>();
  #running: Promise<ApplyReport> | undefined;
  #next: Promise<ApplyReport> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  /** An applier over `deps`; nothing runs until {@link trigger}. */
  constructor(deps: ApplierDeps) {
    this.#deps = deps;
  }

  /**
   * Applies what is due in the current catalog. Resolves with the report of the run that included this
   * request; never rejects.
   */
  trigger(): Promise<ApplyReport> {
    if (this.#stopped) {
      return Promise.resolve({ applied: 0, alreadyApplied: 0, failed: 0, waiting: 0, skipped: 0 });
    }
    if (this.#running !== undefined) {
      // One more run after this one, shared by every trigger made meanwhile.
      this.#next ??= this.#running.then(() => {
        this.#next = undefined;
        return this.trigger();
      });
      return this.#next;
    }
    const run = this.#run().finally(() => {
      this.#running = undefined;
    });
    this.#running = run;
    return run;
  }

  /** Stops the timer; later triggers do nothing. Waits for a run in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  async #run(): Promise<ApplyReport> {
    const d = this.#deps;
    const now = d.clock.now();
    const plan = planAdjustments(d.catalog.current(), now, this.#periods);
    this.#reportSkipped(plan.skipped);

    // Forget what the catalog no longer lists (its period ended, or it was withdrawn): memory stays bounded.
    const listed = new Set(plan.due.map((a) => `${a.request.quotaKey}\n${a.request.id}`));
    if (this.#done.size > 0) this.#done = new Set([...this.#done].filter((k) => listed.has(k)));
    const todo = plan.due.filter((a) => !this.#done.has(`${a.request.quotaKey}\n${a.request.id}`));

    let applied = 0;
    let alreadyApplied = 0;
    let failed = 0;
    const concurrency = Math.max(1, d.concurrency ?? 16);
    for (let i = 0; i < todo.length; i += concurrency) {
      const slice = todo.slice(i, i + concurrency);
      const results = await Promise.allSettled(slice.map((a) => d.store.adjust(a.request)));
      results.forEach((result, j) => {
        const a = slice[j];
        if (a === undefined) return;
        const fields = {
          adjustment: a.adjustment.id,
          plan: a.planId,
          subject: a.adjustment.subject,
          period: a.adjustment.period,
          amount: a.adjustment.amount,
        };
        if (result.status === 'rejected') {
          failed++;
          d.logger.warn(
            {
              ...fields,
              err: result.reason instanceof Error ? result.reason.message : String(result.reason),
            },
            'could not apply a quota adjustment; retrying',
          );
          return;
        }
        this.#done.add(`${a.request.quotaKey}\n${a.request.id}`);
        if (result.value) {
          applied++;
          d.applied?.(a.planId);
          d.logger.info(fields, 'quota adjustment applied');
        } else {
          alreadyApplied++;
          d.logger.debug(fields, 'quota adjustment was already applied');
        }
      });
    }
    this.#schedule(failed > 0, plan.nextCheckAt, now);
    return { applied, alreadyApplied, failed, waiting: plan.waiting, skipped: plan.skipped.length };
  }

  #schedule(retry: boolean, nextCheckAt: number | undefined, now: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#stopped) return;
    let delay: number | undefined = retry ? (this.#deps.retryMs ?? 5000) : undefined;
    if (nextCheckAt !== undefined) {
      // Just after the period ends, so that the next window is the waiting adjustment's.
      const untilNext = Math.max(0, nextCheckAt - now) + 10;
      delay = delay === undefined ? untilNext : Math.min(delay, untilNext);
    }
    if (delay === undefined) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        void this.trigger();
      },
      Math.min(delay, MAX_TIMER_MS),
    );
    this.#timer.unref();
  }

  #reportSkipped(skipped: readonly SkippedAdjustment[]): void {
    const now = new Set<string>();
    for (const s of skipped) {
      const id = `${s.stage}\n${s.adjustment.id}`;
      now.add(id);
      if (this.#reported.has(id)) continue;
      const fields = {
        adjustment: s.adjustment.id,
        stage: s.stage,
        plan: s.adjustment.plan,
        period: s.adjustment.period,
        why: s.why,
      };
      // A past period is expected (the operator renders an adjustment until its period ends); the others are not.
      if (s.why === 'past-period')
        this.#deps.logger.debug(fields, 'quota adjustment of a past period ignored');
      else this.#deps.logger.warn(fields, 'quota adjustment not applied');
    }
    this.#reported = now;
  }
}
