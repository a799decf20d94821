import { describe, expect, it } from 'vitest';
import { generateKey, hashKey } from '../../../contract/src/key-format.ts';
import { parseIndex } from '../../../contract/src/validate.ts';
import type { UsagePlan } from '../../../crds/src/index.ts';
import { Reason } from '../status/reasons.ts';
import { renderPlan } from './plan.ts';
import { render } from './render.ts';
import type { RenderOutput } from './types.ts';

const ns = 'shop';
const key = generateKey();

function plan(responses: NonNullable<UsagePlan['spec']['responses']>): UsagePlan {
  return {
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'UsagePlan',
    metadata: { name: 'gold', namespace: ns },
    spec: { throttle: { rateLimit: 10, burstLimit: 20 }, responses },
  };
}

/** A namespace holding `p` and one key on it, bound to orders/prod: rendered. */
function renderWith(p: UsagePlan): RenderOutput {
  return render({
    namespace: ns,
    plans: [p],
    keys: [
      {
        apiVersion: 'keystile.dev/v1alpha1',
        kind: 'ApiKey',
        metadata: { name: 'k', namespace: ns },
        spec: {},
      },
    ],
    bindings: [
      {
        apiVersion: 'keystile.dev/v1alpha1',
        kind: 'PlanBinding',
        metadata: { name: 'gold', namespace: ns, uid: 'b-uid' },
        spec: {
          planRef: { name: 'gold' },
          keys: { names: ['k'] },
          apiStages: [{ api: 'orders', stage: 'prod' }],
        },
      },
    ],
    materials: new Map([['k', { keyId: key.keyId, hashes: [{ sha256: hashKey(key.value) }] }]]),
    now: new Date('2026-11-23T00:00:00Z'),
  });
}

/** The index.json of {@link renderWith}'s stage. */
function indexText(p: UsagePlan): string {
  return renderWith(p).stages[0]!.objects.at(-1)!.data['index.json']!;
}

describe("a plan's configured answers", () => {
  it('render header names in lower case, sorted, and the contract schema accepts them', () => {
    const p = plan([
      {
        type: 'QuotaExceeded',
        status: 429,
        body: 'Upgrade your plan.',
        contentType: 'text/plain; charset=utf-8',
        headers: { 'X-Upgrade-URL': 'https://example.com/plans', 'Cache-Control': 'no-store' },
      },
    ]);
    expect(renderPlan(p, ns).responses).toEqual([
      {
        type: 'QuotaExceeded',
        status: 429,
        body: 'Upgrade your plan.',
        contentType: 'text/plain; charset=utf-8',
        headers: { 'cache-control': 'no-store', 'x-upgrade-url': 'https://example.com/plans' },
      },
    ]);
    expect(Object.keys(renderPlan(p, ns).responses[0]!.headers!)).toEqual(['cache-control', 'x-upgrade-url']);
    expect(parseIndex(indexText(p))).toMatchObject({ ok: true });
  });

  // What the CRD refuses, the contract refuses too: a hand-written standalone file, or an object stored
  // before the CRD had its rules, is refused by the enforcer (which keeps its last good config) rather
  // than breaking the answers it writes.
  it.each([
    ['a name with a space', { 'retry after': '1' }, '/headers'],
    ['a name the gateway owns', { 'content-length': '0' }, '/headers'],
    ['content-type, which contentType sets', { 'content-type': 'text/html' }, '/headers'],
    ['a value with a line break', { 'x-help': 'see\nthe docs' }, '/headers/x-help'],
    ['a value with a control character', { 'x-help': 'bell\u0007' }, '/headers/x-help'],
    ['a value beyond ASCII', { 'x-help': 'prix 5 €' }, '/headers/x-help'],
  ])('refuse %s in the contract', (_what, headers, at) => {
    const text = indexText(plan([{ type: 'Forbidden', status: 401, headers }]));
    const parsed = parseIndex(text);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.error).toContain(`/plans/0/responses/0${at}`);
  });

  it('refuse a content type that is not a media type in the contract', () => {
    const parsed = parseIndex(
      indexText(plan([{ type: 'Forbidden', status: 401, body: 'x', contentType: 'text' }])),
    );
    expect(parsed.ok ? '' : parsed.error).toContain('/plans/0/responses/0/contentType');
  });
});

describe('a plan enforcers would refuse', () => {
  it('is rendered as it is, and reported: Ready False, InvalidPlan, saying what and where', () => {
    // Admitted before the CRD refused such names, or by an API server whose zoneinfo differs from ICU's.
    const p: UsagePlan = {
      ...plan([]),
      spec: { quota: { limit: 10, period: 'DAY', timeZone: 'posixrules' } },
    };
    const out = renderWith(p);
    expect(out.stages).toHaveLength(1);
    expect(out.plans.get('gold')?.ready).toEqual({
      status: 'False',
      reason: Reason.InvalidPlan,
      message: expect.stringMatching(
        /^quota: timeZone must be an IANA time zone name .*posixrules.*: the enforcers of orders\/prod refuse their new config and keep the previous one until the plan is fixed$/,
      ) as string,
    });
  });
});
