import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generatedCrds } from './generate.ts';
import { KINDS } from './src/kinds.ts';
import { plainSchema } from './src/crd.ts';
import { validateResource } from './src/validate.ts';

describe('generated CRDs', () => {
  it.each(generatedCrds().map((g) => [g.file.split('/').pop(), g] as const))(
    '%s is up to date with crds/src',
    (_, g) => {
      expect(readFileSync(g.file, 'utf8'), "run 'npm run gen'").toBe(g.content);
    },
  );
});

/** Walks a schema, yielding the path of every property schema that has no description. */
function* undescribed(schema: Record<string, unknown>, path: string): Generator<string> {
  if (typeof schema['description'] !== 'string' || schema['description'] === '') yield path;
  const props = schema['properties'] as Record<string, Record<string, unknown>> | undefined;
  for (const [name, child] of Object.entries(props ?? {})) yield* undescribed(child, `${path}.${name}`);
  const items = schema['items'] as Record<string, unknown> | undefined;
  if (items) yield* undescribed(items, `${path}[]`);
}

/** Walks a schema, yielding every string without maxLength and array without maxItems (CEL cost). */
function* unbounded(schema: Record<string, unknown>, path: string): Generator<string> {
  if (schema['type'] === 'string' && schema['maxLength'] === undefined && schema['format'] !== 'date-time')
    yield path;
  if (schema['type'] === 'array' && schema['maxItems'] === undefined) yield path;
  const props = schema['properties'] as Record<string, Record<string, unknown>> | undefined;
  for (const [name, child] of Object.entries(props ?? {})) yield* unbounded(child, `${path}.${name}`);
  const items = schema['items'] as Record<string, unknown> | undefined;
  if (items) yield* unbounded(items, `${path}[]`);
  const additional = schema['additionalProperties'];
  if (typeof additional === 'object' && additional !== null)
    yield* unbounded(additional as Record<string, unknown>, `${path}{}`);
}

describe.each(KINDS.map((k) => [k.kind, k] as const))('%s schema', (_, def) => {
  it('describes every field, so kubectl explain teaches', () => {
    expect([
      ...undescribed(plainSchema(def.spec), 'spec'),
      ...undescribed(plainSchema(def.status), 'status'),
    ]).toEqual([]);
  });
  it('bounds every string and list, so CEL rules stay within the cost budget', () => {
    expect([
      ...unbounded(plainSchema(def.spec), 'spec'),
      ...unbounded(plainSchema(def.status), 'status'),
    ]).toEqual([]);
  });
});

describe('validateResource (offline, structural)', () => {
  it('accepts a valid plan and fills in defaults', () => {
    const plan = {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'UsagePlan',
      metadata: { name: 'gold' },
      spec: { throttle: { rateLimit: 100, burstLimit: 200 }, quota: { limit: 10_000, period: 'MONTH' } },
    };
    expect(validateResource(plan)).toEqual([]);
    expect(plan.spec).toMatchObject({ shadow: false, countBy: 'Key', quota: { timeZone: 'UTC' } });
  });

  it('names the field of each problem', () => {
    const errors = validateResource({
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'UsagePlan',
      metadata: { name: 'bad' },
      spec: { throttle: { rateLimit: 0, burstLimit: 1.5 }, quota: { period: 'YEAR' } },
    });
    expect(errors.map((e) => e.field).sort()).toEqual([
      'spec.quota.limit',
      'spec.quota.period',
      'spec.throttle.burstLimit',
      'spec.throttle.rateLimit',
    ]);
  });

  it("refuses an ApiKey's name over 63 characters, and an expiry JavaScript cannot read", () => {
    const key = (name: string, spec: Record<string, unknown>) => ({
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'ApiKey',
      metadata: { name },
      spec,
    });
    expect(validateResource(key('k'.repeat(63), {}))).toEqual([]);
    expect(validateResource(key('k'.repeat(64), {}))).toEqual([
      { field: 'metadata.name', message: 'must be at most 63 characters' },
    ]);
    expect(validateResource(key('Payments_Partner', {})).map((e) => e.message)).toEqual([
      expect.stringMatching(/^must be a DNS subdomain/),
    ]);
    expect(validateResource(key('orders.v2-key', {}))).toEqual([]);
    expect(validateResource(key('k', { expiresAt: '2030-01-01T00:00:00.5+02:00' }))).toEqual([]);
    for (const expiresAt of ['2030-01-01T00:00:00,5Z', '2030-01-01T00:00:00+99:99'])
      expect(validateResource(key('k', { expiresAt })).map((e) => e.field)).toContain('spec.expiresAt');
  });

  it('refuses an unknown kind and a wrong apiVersion', () => {
    expect(
      validateResource({
        apiVersion: 'keystile.dev/v1alpha1',
        kind: 'Nope',
        metadata: { name: 'x' },
        spec: {},
      })[0]?.field,
    ).toBe('kind');
    expect(
      validateResource({ apiVersion: 'v1', kind: 'ApiKey', metadata: { name: 'x' }, spec: {} })[0]?.field,
    ).toBe('apiVersion');
  });
});
