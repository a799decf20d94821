/** A UsagePlan as the contract renders it. */
import type { UsagePlan } from '../../../crds/src/index.ts';
import type { RenderedPlan, RenderedRoute } from '../../../contract/src/format.ts';
import { planId } from '../../../contract/src/identity.ts';

/** Renders a plan, filling in the schema's defaults (they are set already on anything the API server admitted). */
export function renderPlan(plan: UsagePlan, namespace: string): RenderedPlan {
  const s = plan.spec;
  const routes: RenderedRoute[] = (s.routes ?? []).map((r) => {
    const methods = [...(r.methods ?? ['*'])].sort();
    return {
      name: r.name ?? `${methods.join(',')} ${r.path}`,
      methods,
      path: r.path,
      ...(r.throttle && { throttle: { rate: r.throttle.rateLimit, burst: r.throttle.burstLimit } }),
      cost: r.cost ?? 1,
    };
  });
  return {
    id: planId(namespace, plan.metadata.name),
    name: plan.metadata.name,
    ...(s.throttle && { throttle: { rate: s.throttle.rateLimit, burst: s.throttle.burstLimit } }),
    ...(s.quota && {
      quota: {
        limit: s.quota.limit,
        period: s.quota.period,
        ...(s.quota.startDay !== undefined && { startDay: s.quota.startDay }),
        ...(s.quota.startWeekday !== undefined && { startWeekday: s.quota.startWeekday }),
        timeZone: s.quota.timeZone ?? 'UTC',
      },
    }),
    routes,
    shadow: s.shadow ?? false,
    countBy: s.countBy ?? 'Key',
    responses: [...(s.responses ?? [])]
      .sort((a, b) => a.type.localeCompare(b.type))
      .map((r) => ({
        type: r.type,
        status: r.status,
        ...(r.body !== undefined && { body: r.body }),
        ...(r.contentType !== undefined && { contentType: r.contentType }),
        ...(r.headers !== undefined && { headers: lowerCaseNames(r.headers) }),
      })),
    alertThresholds: [...(s.alerts?.thresholds ?? [])].sort((a, b) => a - b),
  };
}

/** Header names in lower case (the contract's form; the CRD admits any case, no two alike), sorted. */
function lowerCaseNames(r: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(r)
      .map(([name, value]) => [name.toLowerCase(), value] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}
