/** Test builders for the rendered contract's documents, shared by the contract's, the operator's and the enforcer's tests. */
import type { RenderedPlan } from '../src/format.ts';

/** A rendered plan with the renderer's defaults filled in. */
export function plan(namespace: string, name: string, spec: Partial<RenderedPlan> = {}): RenderedPlan {
  return {
    id: `${namespace}/${name}`,
    name,
    routes: [],
    shadow: false,
    countBy: 'Key',
    responses: [],
    alertThresholds: [],
    ...spec,
  };
}
