/**
 * What makes a rendered plan unloadable beyond the contract's JSON Schema: the checks an enforcer applies
 * when it compiles a plan (enforcer/src/catalog/catalog.ts) that a schema cannot state. One function, so
 * that the operator reports on the UsagePlan exactly what would make its stages' enforcers refuse the
 * config (and keep their previous one). Pure.
 */
import { ROUTE_PATH_PATTERN } from '../../crds/src/usage-plan.ts';
import { checkPeriodSpec } from './calendar-period.ts';
import type { RenderedPlan } from './format.ts';

const ROUTE_PATH = new RegExp(ROUTE_PATH_PATTERN);

/** Why enforcers would refuse `plan` (and with it the config of every stage holding it), or undefined. */
export function renderedPlanProblem(plan: RenderedPlan): string | undefined {
  if (plan.quota) {
    const problem = checkPeriodSpec({
      period: plan.quota.period,
      ...(plan.quota.startDay !== undefined && { startDay: plan.quota.startDay }),
      ...(plan.quota.startWeekday !== undefined && { startWeekday: plan.quota.startWeekday }),
      timeZone: plan.quota.timeZone,
    });
    if (problem) return `quota: ${problem}`;
  }
  const names = new Set<string>();
  for (const r of plan.routes) {
    if (!ROUTE_PATH.test(r.path)) return `route ${r.name}: '${r.path}' is not a route pattern`;
    if (names.has(r.name)) return `two routes are named ${r.name}`;
    names.add(r.name);
  }
  return undefined;
}
