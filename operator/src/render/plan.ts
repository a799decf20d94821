/** A UsagePlan as the contract renders it. */
import type { UsagePlan } from '../../../crds/src/index.ts';
import type { RenderedPlan, RenderedRoute } from '../../../contract/src/format.ts';
import { planId } from '../../../contract/src/identity.ts';

/** Renders a plan, filling in the schema's defaults (they are set already on anything the API server admitted). */
export function renderPlan(plan: UsagePlan, namespace: string): RenderedPlan {
  const s = plan.spec;
  const names = new Set<string>();
  const routes: RenderedRoute[] = (s.routes ?? []).map((r) => {
    const methods = [...(r.methods ?? ['*'])].sort();
    const name = r.name ?? defaultRouteName(`${methods.join(',')} ${r.path}`, names);
    names.add(name);
    return {
      name,
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

/**
 * An unnamed route's name: its methods and path, with ` (2)`, ` (3)`, ... when an earlier route has the
 * same methods and path (the later one never matches, as the first match applies, but every route of a
 * plan needs a name of its own). Explicit names are DNS labels and unique (the CRD says so): no space, so
 * never one of these.
 */
function defaultRouteName(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) if (!taken.has(`${base} (${n})`)) return `${base} (${n})`;
}

/** Header names in lower case (the contract's form; the CRD admits any case, no two alike), sorted. */
function lowerCaseNames(r: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(r)
      .map(([name, value]) => [name.toLowerCase(), value] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}
