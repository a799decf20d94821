import { describe, expect, it } from 'vitest';
import type { RenderedPlan } from './format.ts';
import { renderedPlanProblem } from './plan-check.ts';
import { plan as fixturePlan } from '../testing/plans.ts';

const plan = (spec: Partial<RenderedPlan> = {}): RenderedPlan => fixturePlan('shop', 'gold', spec);
const route = (name: string, path: string): RenderedPlan['routes'][number] => ({
  name,
  methods: ['*'],
  path,
  cost: 1,
});

describe('renderedPlanProblem', () => {
  it('finds nothing wrong with a plan an enforcer loads', () => {
    expect(
      renderedPlanProblem(
        plan({
          quota: { limit: 10, period: 'MONTH', startDay: 28, timeZone: 'America/Argentina/ComodRivadavia' },
          routes: [route('a', '/v1/a/**'), route('* /v1/a', '/v1/a'), route('* /v1/a (2)', '/v1/a')],
        }),
      ),
    ).toBeUndefined();
  });

  it.each([
    [
      "a zoneinfo file the API server reads but ICU does not know ('posixrules')",
      plan({ quota: { limit: 10, period: 'DAY', timeZone: 'posixrules' } }),
      /^quota: timeZone must be an IANA time zone name .*posixrules/,
    ],
    [
      'startDay with a WEEK period',
      plan({ quota: { limit: 10, period: 'WEEK', startDay: 3, timeZone: 'UTC' } }),
      /^quota: startDay applies only to period MONTH/,
    ],
    [
      'two routes of one name',
      plan({ routes: [route('r', '/a'), route('r', '/b')] }),
      /^two routes are named r$/,
    ],
    [
      "a path with '**' in the middle",
      plan({ routes: [route('r', '/a/**/b')] }),
      /^route r: '\/a\/\*\*\/b' is not a route pattern$/,
    ],
  ])('names %s', (_what, p, message) => {
    expect(renderedPlanProblem(p)).toMatch(message);
  });
});
