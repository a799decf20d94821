// The shipped CRDs on the real API server: the examples are admitted with the schema's defaults filled in,
// bad resources are refused with an error naming the field and what is wrong, and kubectl teaches the
// resources (explain, printer columns, short names, the `keystile` category).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { generateKey, hashKey } from '../../contract/src/key-format.ts';
import { parseIndex, parseKeysShard, parseSecretsShard } from '../../contract/src/validate.ts';
import type { ApiKey, PlanBinding, UsagePlan } from '../../crds/src/index.ts';
import { API_VERSION, GROUP, KINDS } from '../../crds/src/kinds.ts';
import { Throttle } from '../../crds/src/usage-plan.ts';
import { testLoader } from '../../enforcer/testing/fixtures.ts';
import { renderPlan } from '../../operator/src/render/plan.ts';
import { render } from '../../operator/src/render/render.ts';
import { createNamespace, kubectl, kubectlJson } from '../ground/harness.ts';
import { repoRoot } from '../ground/paths.ts';
import { waitFor } from '../ground/wait.ts';

/** Any Kubernetes object as a manifest. */
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  [field: string]: unknown;
}

/** A Keystile resource as the API server stores it. */
type Stored = ApiKey | UsagePlan | PlanBinding;

const crdDir = join(repoRoot, 'crds');
const examplesDir = join(repoRoot, 'examples');
const EXAMPLE_SETS = ['aws-style', 'tencent-style'] as const;
/** The kinds the examples are listed by: `kubectl get apikeys,usageplans,planbindings`. */
const LISTED_KINDS = ['ApiKey', 'UsagePlan', 'PlanBinding'];

/** The YAML files of an example set, relative to its folder, sub-folders included. */
function exampleFiles(set: string): string[] {
  return readdirSync(join(examplesDir, set), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.yaml'))
    .sort();
}

/** The manifests in one YAML file. */
function manifestsIn(path: string): Manifest[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((doc) => doc.toJS() as Manifest);
}

/** Every manifest of an example set. */
function exampleManifests(set: string): Manifest[] {
  return exampleFiles(set).flatMap((f) => manifestsIn(join(examplesDir, set, f)));
}

/** `kind/name` of every object, for comparing what was applied with what the server lists. */
function ids(objects: readonly { kind: string; metadata: { name: string } }[]): string[] {
  return objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
}

/**
 * The spec the API server should store for a declared spec: what was declared plus the schema's defaults.
 * Spelled out here on purpose, so that a changed default in crds/src is a change someone sees.
 */
function withDefaults(m: Manifest): Record<string, unknown> {
  const spec = m.spec ?? {};
  switch (m.kind) {
    case 'ApiKey': {
      const s = spec as ApiKey['spec'];
      return {
        type: 'ApiKey',
        enabled: true,
        valueFrom: 'Generated',
        ...s,
        rotation: s.rotation && { sequence: 0, gracePeriod: '24h', ...s.rotation },
      };
    }
    case 'UsagePlan': {
      const s = spec as UsagePlan['spec'];
      return {
        shadow: false,
        countBy: 'Key',
        ...s,
        quota: s.quota && { timeZone: 'UTC', ...s.quota },
        routes: s.routes?.map((r) => ({ cost: 1, ...r })),
      };
    }
    default:
      return spec;
  }
}

/** Runs kubectl expecting a refusal; returns the error kubectl printed. */
async function refusal(args: readonly string[], input?: string): Promise<string> {
  let out: string;
  try {
    out = await kubectl(args, input);
  } catch (err) {
    if (err instanceof Error) return err.message;
    throw err;
  }
  return expect.fail(`the API server admitted it: ${out.trim()}`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The error line for `field` carries `message`: `spec.x: Invalid value: ...message...`. */
function expectFieldError(error: string, field: string, message: string): void {
  expect(error).toMatch(new RegExp(`(^|[\\s*])${escapeRegExp(field)}: [^\\n]*${escapeRegExp(message)}`));
}

/** Parses kubectl's table output into rows keyed by column header (cells sliced at header offsets). */
function table(text: string): Record<string, string>[] {
  const [header = '', ...rows] = text.split('\n').filter((l) => l.trim() !== '');
  const columns = [...header.matchAll(/\S+(?: \S+)*/g)].map((m) => ({ name: m[0], start: m.index }));
  return rows.map((row) =>
    Object.fromEntries(
      columns.map((c, i) => [c.name, row.slice(c.start, columns[i + 1]?.start ?? row.length).trim()]),
    ),
  );
}

async function deleteNamespace(ns: string | undefined): Promise<void> {
  // The namespace controller deletes the resources in it: wait for it to finish.
  if (ns) await kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=120s']);
}

beforeAll(async () => {
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', `${crdDir}/`]);
  const crds = readdirSync(crdDir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => manifestsIn(join(crdDir, f)))
    .map((crd) => `crd/${crd.metadata.name}`);
  expect(crds.sort()).toEqual(KINDS.map((k) => `crd/${k.plural}.${GROUP}`).sort());
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...crds]);
});

describe.each(EXAMPLE_SETS)('examples/%s', (set) => {
  const dir = join(examplesDir, set);
  let ns: string;

  beforeAll(async () => {
    ns = await createNamespace(`crds-${set}`);
  });
  afterAll(async () => {
    await deleteNamespace(ns);
  });

  it.each(exampleFiles(set))('%s passes a server-side dry run', async (file) => {
    const out = await kubectl(['apply', '-n', ns, '--dry-run=server', '-f', join(dir, file)]);
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(manifestsIn(join(dir, file)).length);
    for (const line of lines) expect(line).toMatch(/ created \(server dry run\)$/);
  });

  it('is admitted for real, and kubectl get lists it with the defaults filled in by the API server', async () => {
    await kubectl(['apply', '-n', ns, '--recursive', '-f', dir]);
    const declared = exampleManifests(set).filter((m) => LISTED_KINDS.includes(m.kind));
    const listed = await kubectlJson<{ items: Stored[] }>([
      'get',
      '-n',
      ns,
      'apikeys,usageplans,planbindings',
    ]);

    expect(ids(listed.items)).toEqual(ids(declared));
    for (const m of declared) {
      const stored = listed.items.find((o) => o.kind === m.kind && o.metadata.name === m.metadata.name);
      expect(stored?.spec, `${m.kind}/${m.metadata.name}`).toEqual(withDefaults(m));
    }
    // The defaults the examples lean on, named.
    for (const key of listed.items.filter((o): o is ApiKey => o.kind === 'ApiKey'))
      expect(key.spec.enabled, key.metadata.name).toBe(true);
    const plans = listed.items.filter((o): o is UsagePlan => o.kind === 'UsagePlan');
    expect(plans.length).toBeGreaterThan(0);
    for (const plan of plans) {
      const declaredPlan = declared.find(
        (m) => m.kind === 'UsagePlan' && m.metadata.name === plan.metadata.name,
      );
      const zone = (declaredPlan?.spec?.['quota'] as { timeZone?: string } | undefined)?.timeZone ?? 'UTC';
      expect(plan.spec.quota?.timeZone, plan.metadata.name).toBe(zone);
      expect(plan.spec.shadow, plan.metadata.name).toBe(false);
    }
  });
});

describe('the AWS-style example', () => {
  it('is the set-up it says it is', () => {
    const [plan] = exampleManifests('aws-style').filter(
      (m): m is Manifest & UsagePlan => m.kind === 'UsagePlan',
    );
    expect(plan?.spec).toMatchObject({
      throttle: { rateLimit: 100, burstLimit: 200 },
      quota: { limit: 10_000, period: 'MONTH' },
      alerts: { thresholds: [80, 100] },
    });
    expect(plan?.spec.routes).toContainEqual(expect.objectContaining({ path: '/v1/reports/**', cost: 10 }));
    expect(plan?.spec.routes?.some((r) => r.throttle !== undefined)).toBe(true);
    const [binding] = exampleManifests('aws-style').filter(
      (m): m is Manifest & PlanBinding => m.kind === 'PlanBinding',
    );
    expect(binding?.spec.apiStages).toEqual([
      { api: 'orders', stage: 'prod' },
      { api: 'orders', stage: 'beta' },
    ]);
  });
});

describe('the Tencent-style example', () => {
  const manifests = exampleManifests('tencent-style');

  it('binds a key pair and an imported key by label to three environments of one service', () => {
    const keys = manifests.filter((m): m is Manifest & ApiKey => m.kind === 'ApiKey');
    expect(keys.map((k) => k.spec.type ?? 'ApiKey').sort()).toEqual(['ApiKey', 'KeyPair']);
    const [binding] = manifests.filter((m): m is Manifest & PlanBinding => m.kind === 'PlanBinding');
    expect(binding?.spec.keys.selector?.matchLabels).toBeDefined();
    expect(binding?.spec.apiStages.map((s) => `${s.api}/${s.stage}`)).toEqual([
      'payments/release',
      'payments/prepub',
      'payments/test',
    ]);
  });

  it("imports a value of a length AWS's import accepts (20 to 128 characters)", () => {
    const imported = manifests.filter(
      (m): m is Manifest & ApiKey => m.kind === 'ApiKey' && m.spec?.['valueFrom'] === 'Secret',
    );
    expect(imported).toHaveLength(1);
    for (const key of imported) {
      const ref = key.spec.secretRef;
      const secret = manifests.find((m) => m.kind === 'Secret' && m.metadata.name === ref?.name);
      const value = (secret?.['stringData'] as Record<string, string> | undefined)?.[ref?.key ?? 'value'];
      expect(value?.length).toBeGreaterThanOrEqual(20);
      expect(value?.length).toBeLessThanOrEqual(128);
    }
  });
});

/** A Keystile manifest of `kind` named `name`. */
function resource(kind: string, name: string, spec: Record<string, unknown>): Manifest {
  return { apiVersion: API_VERSION, kind, metadata: { name }, spec };
}
const plan = (spec: Record<string, unknown>): Manifest => resource('UsagePlan', 'bad-plan', spec);
const key = (spec: Record<string, unknown>): Manifest => resource('ApiKey', 'bad-key', spec);
const binding = (spec: Record<string, unknown>): Manifest =>
  resource('PlanBinding', 'bad-binding', { planRef: { name: 'gold' }, ...spec });
const adjustment = (spec: Record<string, unknown>): Manifest =>
  resource('UsageAdjustment', 'bad-adjustment', { planRef: { name: 'gold' }, ...spec });
const stages = [{ api: 'orders', stage: 'prod' }];
const month = { limit: 1000, period: 'MONTH' };

/** A resource the API server must refuse at creation, the field its error names, and what it says. */
interface Refused {
  readonly name: string;
  readonly manifest: Manifest;
  readonly field: string;
  readonly message: string;
}

const REFUSED: readonly Refused[] = [
  {
    name: 'a rate of 0',
    manifest: plan({ throttle: { rateLimit: 0, burstLimit: 1 } }),
    field: 'spec.throttle.rateLimit',
    message: 'rateLimit must be at least 0.001 requests per second',
  },
  ...['posix/Europe/Berlin', 'right/UTC', 'posixrules', 'localtime'].map((timeZone) => ({
    name: `the time zone '${timeZone}' (a file of the API server's zoneinfo, not a zone an enforcer knows)`,
    manifest: plan({ quota: { ...month, timeZone } }),
    field: 'spec.quota.timeZone',
    message: `timeZone ${timeZone} is not an IANA time zone`,
  })),
  {
    name: 'two routes of one name (they would share a bucket and a metrics label)',
    manifest: plan({
      routes: [
        { name: 'reports', path: '/v1/reports' },
        { name: 'reports', path: '/v2/reports' },
      ],
    }),
    field: 'spec.routes',
    message: 'route names must be unique',
  },
  {
    name: "the time zone 'Local' (the API server's own, not one an enforcer knows)",
    manifest: plan({ quota: { ...month, timeZone: 'Local' } }),
    field: 'spec.quota.timeZone',
    message: 'timeZone Local is not an IANA time zone',
  },
  {
    name: 'an ApiKey named with more than 63 characters (the label on its value Secret could not hold it)',
    manifest: resource('ApiKey', `k${'e'.repeat(62)}y`, {}),
    field: 'metadata.name',
    message: 'Too long: may not be more than 63 bytes',
  },
  {
    name: 'a binding naming an ApiKey by a name no ApiKey can have (over 63 characters)',
    manifest: binding({ keys: { names: [`k${'e'.repeat(62)}y`] }, apiStages: stages }),
    field: 'spec.keys.names[0]',
    message: 'Too long: may not be more than 63 bytes',
  },
  {
    name: 'an adjustment naming an ApiKey by a name no ApiKey can have (over 63 characters)',
    manifest: adjustment({ keyRef: { name: `k${'e'.repeat(62)}y` }, amount: 100 }),
    field: 'spec.keyRef.name',
    message: 'Too long: may not be more than 63 bytes',
  },
  {
    name: 'a binding whose keys.names is empty, with no selector',
    manifest: binding({ keys: { names: [] }, apiStages: stages }),
    field: 'spec.keys.names',
    message: 'should have at least 1 items',
  },
  {
    name: 'a matchExpression with In and no values',
    manifest: binding({
      keys: { selector: { matchExpressions: [{ key: 'tier', operator: 'In' }] } },
      apiStages: stages,
    }),
    field: 'spec.keys.selector.matchExpressions[0]',
    message: 'In and NotIn need values; Exists and DoesNotExist take none',
  },
  {
    name: "a KeyPair's secretRef.key",
    manifest: key({ type: 'KeyPair', valueFrom: 'Secret', secretRef: { name: 'pair', key: 'value' } }),
    field: 'spec.secretRef.key',
    message: 'secretRef.key is for ApiKeys',
  },
  {
    name: 'a burst below the rate',
    manifest: plan({ throttle: { rateLimit: 100, burstLimit: 50 } }),
    field: 'spec.throttle.burstLimit',
    message: 'burstLimit must be at least rateLimit',
  },
  {
    name: "a route's burst below its rate",
    manifest: plan({ routes: [{ path: '/v1/orders', throttle: { rateLimit: 10, burstLimit: 5 } }] }),
    field: 'spec.routes[0].throttle.burstLimit',
    message: 'burstLimit must be at least rateLimit',
  },
  {
    name: 'a rate below 0.001 per second',
    manifest: plan({ throttle: { rateLimit: 0.0005, burstLimit: 1 } }),
    field: 'spec.throttle.rateLimit',
    message: 'should be greater than or equal to 0.001',
  },
  {
    name: 'a negative rate',
    manifest: plan({ throttle: { rateLimit: -1, burstLimit: 1 } }),
    field: 'spec.throttle.rateLimit',
    message: 'should be greater than or equal to',
  },
  {
    name: 'startDay with a WEEK period',
    manifest: plan({ quota: { limit: 10, period: 'WEEK', startDay: 3 } }),
    field: 'spec.quota.startDay',
    message: 'startDay applies to MONTH periods only; for a WEEK period remove it',
  },
  {
    name: 'startWeekday with a MONTH period',
    manifest: plan({ quota: { ...month, startWeekday: 'MONDAY' } }),
    field: 'spec.quota.startWeekday',
    message: 'startWeekday applies to WEEK periods only; for a MONTH period remove it',
  },
  {
    name: 'startDay 29 (not every month has it)',
    manifest: plan({ quota: { ...month, startDay: 29 } }),
    field: 'spec.quota.startDay',
    message: 'should be less than or equal to 28',
  },
  {
    name: 'a YEAR period',
    manifest: plan({ quota: { limit: 10, period: 'YEAR' } }),
    field: 'spec.quota.period',
    message: 'Unsupported value: "YEAR": supported values: "DAY", "WEEK", "MONTH"',
  },
  {
    // CEL cannot list zones: converting a timestamp to an unknown one errors, and the API server reports
    // that error (naming the zone) on the field, in place of the rule's own message.
    name: 'an unknown time zone',
    manifest: plan({ quota: { ...month, timeZone: 'Mars/Olympus_Mons' } }),
    field: 'spec.quota.timeZone',
    message: 'unknown time zone Mars/Olympus_Mons',
  },
  {
    name: "a route path with '**' in the middle",
    manifest: plan({ routes: [{ path: '/v1/**/reports' }] }),
    field: 'spec.routes[0].path',
    message: "path /v1/**/reports is not a route pattern: '/'-separated segments, each literal or '*'",
  },
  {
    name: "a route path without the leading '/'",
    manifest: plan({ routes: [{ path: 'v1/reports' }] }),
    field: 'spec.routes[0].path',
    message: 'path v1/reports is not a route pattern',
  },
  {
    name: "a route cost above the quota's limit (a request on it could never be allowed)",
    manifest: plan({ quota: month, routes: [{ path: '/v1/reports' }, { path: '/v1/export', cost: 1001 }] }),
    field: 'spec.routes',
    message: "a route's cost may not exceed quota.limit",
  },
  // Envoy normalises dot segments (also encoded) away before the enforcer sees a path.
  ...['/v1/../admin', '/v1/./reports', '/v1/%2e%2E/admin', '/v1/.%2e', '/v1/./**'].map((path) => ({
    name: `the route path ${path} (a dot segment: the route would never match)`,
    manifest: plan({ routes: [{ path }] }),
    field: 'spec.routes[0].path',
    message: `path ${path} has a '.' or '..' segment`,
  })),
  {
    name: 'a route cost of 0',
    manifest: plan({ routes: [{ path: '/v1/reports/**', cost: 0 }] }),
    field: 'spec.routes[0].cost',
    message: 'should be greater than or equal to 1',
  },
  {
    name: 'alerts without a quota',
    manifest: plan({ throttle: { rateLimit: 1, burstLimit: 1 }, alerts: { thresholds: [80, 100] } }),
    field: 'spec.alerts',
    message: 'alerts need a quota: thresholds are percentages of quota.limit',
  },
  {
    name: 'an alert threshold above 100 %',
    manifest: plan({ quota: month, alerts: { thresholds: [120] } }),
    field: 'spec.alerts.thresholds[0]',
    message: 'should be less than or equal to 100',
  },
  {
    name: 'an answer with a 2xx status for a denial',
    manifest: plan({ responses: [{ type: 'Throttled', status: 200 }] }),
    field: 'spec.responses[0].status',
    message: 'should be greater than or equal to 400',
  },
  {
    name: 'an answer header whose name is not an HTTP token',
    manifest: plan({ responses: [{ type: 'Throttled', status: 429, headers: { 'Retry After': '1' } }] }),
    field: 'spec.responses[0].headers',
    message: 'header names must be HTTP tokens',
  },
  {
    name: 'an answer header the gateway owns (Content-Length)',
    manifest: plan({ responses: [{ type: 'Forbidden', status: 401, headers: { 'Content-Length': '0' } }] }),
    field: 'spec.responses[0].headers',
    message: 'headers may not set connection, content-length, content-type',
  },
  {
    name: 'answer header names that differ only in case',
    manifest: plan({
      responses: [{ type: 'Forbidden', status: 401, headers: { 'X-Help': 'a', 'x-help': 'b' } }],
    }),
    field: 'spec.responses[0].headers',
    message: 'header names must differ in more than case',
  },
  {
    name: 'an answer header value with a line break (a YAML block scalar keeps one)',
    manifest: plan({
      responses: [{ type: 'QuotaExceeded', status: 429, headers: { 'x-help': 'see the docs\n' } }],
    }),
    field: 'spec.responses[0].headers',
    message: 'header values may hold only visible ASCII characters, spaces and tabs',
  },
  {
    name: 'an answer content type that is not a media type',
    manifest: plan({ responses: [{ type: 'QuotaExceeded', status: 429, body: 'no', contentType: 'text' }] }),
    field: 'spec.responses[0].contentType',
    message: 'contentType text is not a media type',
  },
  {
    name: 'an answer content type without a body (it would be ignored)',
    manifest: plan({ responses: [{ type: 'QuotaExceeded', status: 429, contentType: 'text/plain' }] }),
    field: 'spec.responses[0].contentType',
    message: 'contentType is the type of body: set a body, or remove contentType',
  },
  {
    name: 'a displayName with spaces',
    manifest: key({ displayName: 'Acme production' }),
    field: 'spec.displayName',
    message: 'displayName may hold only letters, digits and underscores',
  },
  {
    name: 'a displayName over 50 characters',
    manifest: key({ displayName: 'a'.repeat(51) }),
    field: 'spec.displayName',
    message: 'Too long: may not be more than 50',
  },
  {
    name: 'valueFrom Secret without secretRef',
    manifest: key({ valueFrom: 'Secret' }),
    field: 'spec.secretRef',
    message: 'secretRef is required when valueFrom is Secret',
  },
  {
    name: 'a secretRef on a Generated key',
    manifest: key({ valueFrom: 'Generated', secretRef: { name: 'some-secret' } }),
    field: 'spec.secretRef',
    message: 'secretRef is only read when valueFrom is Secret',
  },
  {
    name: 'an unknown key type',
    manifest: key({ type: 'Bearer' }),
    field: 'spec.type',
    message: 'Unsupported value: "Bearer": supported values: "ApiKey", "KeyPair"',
  },
  {
    name: 'an expiry that is not a date-time',
    manifest: key({ expiresAt: 'next month' }),
    field: 'spec.expiresAt',
    message: 'must be of type date-time',
  },
  // Date-times the API server's own check admits but JavaScript's Date cannot read: the operator could
  // not render the namespace.
  ...['2030-01-01T00:00:00,5Z', '2030-01-01T00:00:00+99:99', '2030-01-01T00:00:00ZT'].map((expiresAt) => ({
    name: `the expiry ${expiresAt} (a date-time JavaScript cannot read)`,
    manifest: key({ expiresAt }),
    field: 'spec.expiresAt',
    message: 'should match',
  })),
  // In UTC, years the contract cannot hold (10000, -1); and before 1970.
  ...['9999-12-31T23:59:59-05:00', '0000-01-01T00:00:00+01:00', '1969-12-31T23:59:59Z'].map((expiresAt) => ({
    name: `the expiry ${expiresAt} (out of range)`,
    manifest: key({ expiresAt }),
    field: 'spec.expiresAt',
    message: 'expiresAt must be from 1970-01-01T00:00:00Z to before 9999-01-01T00:00:00Z',
  })),
  // Longer than a year; the first two are also too long for a Go duration (CEL's conversion error, with
  // the rule's message after it).
  ...['9999999999h', '70000000h', '8761h'].map((gracePeriod) => ({
    name: `a grace period of ${gracePeriod}`,
    manifest: key({ rotation: { gracePeriod } }),
    field: 'spec.rotation.gracePeriod',
    message: 'gracePeriod may be at most 8760h (a year)',
  })),
  {
    name: "a key imported from the Secret the operator writes for it (it would overwrite the user's value)",
    manifest: key({ valueFrom: 'Secret', secretRef: { name: 'keystile-key-bad-key' } }),
    field: 'spec.secretRef.name',
    message:
      'secretRef.name keystile-key-bad-key is the Secret the operator writes for this ApiKey (keystile-key-<name>)',
  },
  {
    name: 'a key imported from the Secret the operator writes for another key (a Secret that key owns)',
    manifest: key({ valueFrom: 'Secret', secretRef: { name: 'keystile-key-other' } }),
    field: 'spec.secretRef.name',
    message:
      'secretRef.name keystile-key-other is named as the Secrets the operator writes for ApiKeys (keystile-key-<name>)',
  },
  {
    name: 'a rotation sequence on an imported key (the operator never rotates its value)',
    manifest: key({ valueFrom: 'Secret', secretRef: { name: 'legacy' }, rotation: { sequence: 1 } }),
    field: 'spec.rotation.sequence',
    message: 'rotation.sequence rotates generated keys',
  },
  {
    name: 'a customer with spaces',
    manifest: key({ customer: 'Acme Corp' }),
    field: 'spec.customer',
    message: 'should match',
  },
  {
    name: 'a binding with neither keys.names nor keys.selector',
    manifest: binding({ keys: {}, apiStages: stages }),
    field: 'spec.keys',
    message: 'name keys in keys.names, select them with keys.selector, or both',
  },
  {
    name: 'a binding without a plan',
    manifest: resource('PlanBinding', 'bad-binding', { keys: { names: ['k'] }, apiStages: stages }),
    field: 'spec.planRef',
    message: 'Required value',
  },
  {
    name: 'a binding without apiStages',
    manifest: binding({ keys: { names: ['k'] } }),
    field: 'spec.apiStages',
    message: 'Required value',
  },
  {
    name: 'a binding with an empty apiStages list',
    manifest: binding({ keys: { names: ['k'] }, apiStages: [] }),
    field: 'spec.apiStages',
    message: 'should have at least 1 items',
  },
  {
    name: 'an upper-case stage name',
    manifest: binding({ keys: { names: ['k'] }, apiStages: [{ api: 'orders', stage: 'Prod' }] }),
    field: 'spec.apiStages[0].stage',
    message: "should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'",
  },
  {
    name: 'the same API stage twice',
    manifest: binding({ keys: { names: ['k'] }, apiStages: [...stages, ...stages] }),
    field: 'spec.apiStages[1]',
    message: 'Duplicate value: {"api":"orders","stage":"prod"}',
  },
  {
    name: 'an adjustment naming both keyRef and customer',
    manifest: adjustment({ keyRef: { name: 'acme-prod' }, customer: 'acme', amount: 100 }),
    field: 'spec',
    message: 'name exactly one of keyRef and customer',
  },
  {
    name: 'an adjustment naming neither keyRef nor customer',
    manifest: adjustment({ amount: 100 }),
    field: 'spec',
    message: 'name exactly one of keyRef and customer',
  },
  {
    name: 'an adjustment of 0',
    manifest: adjustment({ keyRef: { name: 'acme-prod' }, amount: 0 }),
    field: 'spec.amount',
    message: 'amount must not be 0',
  },
];

/** A change the API server must refuse on an object it admitted: a JSON merge patch, and the error. */
interface RefusedChange extends Refused {
  readonly patch: Record<string, unknown>;
}

const REFUSED_CHANGES: readonly RefusedChange[] = [
  {
    name: "removing an ApiKey's rotation (which would drop its sequence back to 0)",
    manifest: resource('ApiKey', 'unrotated', { rotation: { sequence: 3 } }),
    patch: { spec: { rotation: null } },
    field: 'spec.rotation',
    message: 'rotation.sequence cannot go down (nor rotation be removed)',
  },
  {
    name: "changing an ApiKey's valueFrom",
    manifest: resource('ApiKey', 'sourced', {}),
    patch: { spec: { valueFrom: 'Secret', secretRef: { name: 'imported' } } },
    field: 'spec.valueFrom',
    message: 'valueFrom cannot change',
  },
  {
    name: "editing a UsageAdjustment's spec",
    manifest: resource('UsageAdjustment', 'grant', {
      planRef: { name: 'gold' },
      keyRef: { name: 'acme-prod' },
      amount: 500,
    }),
    patch: { spec: { amount: 600 } },
    field: 'spec',
    message: 'a UsageAdjustment is immutable: create a new one to adjust again',
  },
  {
    name: "lowering an ApiKey's rotation.sequence",
    manifest: resource('ApiKey', 'rotated', { rotation: { sequence: 3 } }),
    patch: { spec: { rotation: { sequence: 2 } } },
    field: 'spec.rotation',
    message: 'rotation.sequence cannot go down (nor rotation be removed): raise it to rotate',
  },
  {
    name: "lowering a plan's quota below a route's cost",
    manifest: resource('UsagePlan', 'costly', { quota: month, routes: [{ path: '/v1/export', cost: 500 }] }),
    patch: { spec: { quota: { limit: 100 } } },
    field: 'spec.routes',
    message: "a route's cost may not exceed quota.limit",
  },
  {
    name: "raising an imported ApiKey's rotation.sequence (its value rotates with its Secret)",
    manifest: resource('ApiKey', 'imported', { valueFrom: 'Secret', secretRef: { name: 'legacy' } }),
    patch: { spec: { rotation: { sequence: 1 } } },
    field: 'spec.rotation.sequence',
    message: 'rotation.sequence rotates generated keys',
  },
  {
    name: "changing an ApiKey's type",
    manifest: resource('ApiKey', 'typed', { type: 'ApiKey' }),
    patch: { spec: { type: 'KeyPair' } },
    field: 'spec.type',
    message: 'type cannot change: create a new ApiKey',
  },
];

describe('the API server refuses', () => {
  let ns: string;

  beforeAll(async () => {
    ns = await createNamespace('crds-refused');
  });
  afterAll(async () => {
    await deleteNamespace(ns);
  });

  it.each(REFUSED)('$name, naming $field', async ({ manifest, field, message }) => {
    const error = await refusal(
      ['create', '-n', ns, '--dry-run=server', '-f', '-'],
      JSON.stringify(manifest),
    );
    expect(error).toContain('is invalid');
    expectFieldError(error, field, message);
  });

  it('admits answers with ordinary headers in any case and a media type with parameters', async () => {
    const manifest = plan({
      responses: [
        {
          type: 'QuotaExceeded',
          status: 429,
          body: 'Upgrade your plan.',
          contentType: 'text/plain; charset=utf-8',
          headers: { 'Cache-Control': 'no-store', 'X-Upgrade-URL': 'https://example.com/plans?from=gold' },
        },
      ],
    });
    const out = await kubectl(['create', '-n', ns, '--dry-run=server', '-f', '-'], JSON.stringify(manifest));
    expect(out).toMatch(/usageplan.keystile.dev\/\S+ created \(server dry run\)/);
  });

  it('admits what the bounds leave in: the last expiry, a year of grace, a cost of the whole quota, dots in a segment', async () => {
    const manifests = [
      resource('ApiKey', 'edges', {
        expiresAt: '9998-12-31T23:59:59.999999999Z',
        rotation: { gracePeriod: '8760h' },
      }),
      resource('ApiKey', 'offset', { expiresAt: '1970-01-01T01:00:00+01:00' }),
      resource('ApiKey', 'imported-edges', {
        valueFrom: 'Secret',
        secretRef: { name: 'imported-key-values' },
        rotation: { sequence: 0, gracePeriod: '1h' },
      }),
      resource('UsagePlan', 'edges', {
        quota: month,
        routes: [{ path: '/.well-known/...', cost: month.limit }],
        responses: [{ type: 'Forbidden', status: 403, contentType: 'text/plain', body: '' }],
      }),
    ];
    for (const manifest of manifests) {
      const out = await kubectl(
        ['create', '-n', ns, '--dry-run=server', '-f', '-'],
        JSON.stringify(manifest),
      );
      expect(out).toMatch(/ created \(server dry run\)/);
    }
  });

  it.each(REFUSED_CHANGES)('$name, naming $field', async ({ manifest, patch, field, message }) => {
    await kubectl(['create', '-n', ns, '-f', '-'], JSON.stringify(manifest));
    const target = `${manifest.kind.toLowerCase()}/${manifest.metadata.name}`;
    const error = await refusal(['patch', '-n', ns, target, '--type=merge', '-p', JSON.stringify(patch)]);
    expectFieldError(error, field, message);
    // The refused change left the stored object as it was.
    const stored = await kubectlJson<Manifest>(['get', '-n', ns, target]);
    expect(stored.spec).toMatchObject(manifest.spec ?? {});
  });
});

describe('kubectl teaches the resources', () => {
  let ns: string;

  beforeAll(async () => {
    ns = await createNamespace('crds-kubectl');
    for (const set of EXAMPLE_SETS)
      await kubectl(['apply', '-n', ns, '--recursive', '-f', join(examplesDir, set)]);
  });
  afterAll(async () => {
    await deleteNamespace(ns);
  });

  it('explain prints the description of usageplan.spec.throttle.burstLimit', async () => {
    const words = (s: string): string => s.replace(/\s+/g, ' ').trim();
    let out = '';
    // The API server publishes a new CRD's OpenAPI a moment after it is Established.
    await waitFor('kubectl explain to know UsagePlan', async () => {
      out = await kubectl(['explain', 'usageplan.spec.throttle.burstLimit']);
      return true;
    });
    expect(out).toMatch(/FIELD: +burstLimit <integer>/);
    const description = Throttle.properties.burstLimit.description ?? '';
    expect(description).toMatch(/^The bucket size/);
    expect(words(out)).toContain(words(description));
  });

  it('get keystile lists every kind (the category), and each short name names its kind', async () => {
    const listed = (await kubectl(['get', '-n', ns, 'keystile', '-o', 'name'])).trim().split('\n');
    const kinds = new Set(listed.map((l) => l.split('/')[0]));
    expect([...kinds].sort()).toEqual(KINDS.map((k) => `${k.kind.toLowerCase()}.${GROUP}`).sort());
    for (const def of KINDS) {
      for (const short of def.shortNames) {
        const names = (await kubectl(['get', '-n', ns, short, '-o', 'name'])).trim().split('\n');
        expect(names.length, short).toBeGreaterThan(0);
        for (const n of names) expect(n, short).toMatch(new RegExp(`^${def.kind.toLowerCase()}\\.`));
      }
    }
  });

  it('get shows the printer columns: rate, burst, quota and period; type, enabled and customer; plan', async () => {
    const plans = table(await kubectl(['get', '-n', ns, 'usageplans']));
    expect(plans).toContainEqual(
      expect.objectContaining({ NAME: 'gold', RATE: '100', BURST: '200', QUOTA: '10000', PERIOD: 'MONTH' }),
    );
    expect(plans).toContainEqual(
      expect.objectContaining({
        NAME: 'payments-standard',
        RATE: '50',
        BURST: '100',
        QUOTA: '1000000',
        PERIOD: 'DAY',
      }),
    );
    const keys = table(await kubectl(['get', '-n', ns, 'apikeys']));
    expect(keys).toContainEqual(
      expect.objectContaining({
        NAME: 'payments-partner',
        TYPE: 'KeyPair',
        ENABLED: 'true',
        CUSTOMER: 'partner-01',
      }),
    );
    const bindings = table(await kubectl(['get', '-n', ns, 'planbindings']));
    expect(bindings).toContainEqual(expect.objectContaining({ NAME: 'gold-orders', PLAN: 'gold' }));
    const adjustments = table(await kubectl(['get', '-n', ns, 'usageadjustments']));
    expect(adjustments).toContainEqual(
      expect.objectContaining({ NAME: 'acme-prod-extra-500', PLAN: 'gold', KEY: 'acme-prod', AMOUNT: '500' }),
    );
  });
});

// Whatever the API server admits, the operator must render into a config every enforcer accepts: a field
// the CRD lets through but the contract refuses would stop a whole stage's config from loading. The
// largest objects the schema allows, admitted for real (defaults filled in), rendered, and read back.
describe('the largest resources the API server admits', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await createNamespace('crds-largest');
  });
  afterAll(async () => {
    await deleteNamespace(ns);
  });

  /**
   * Renders `plans`, `keys` and `bindings` as admitted, with generated material for every key, and
   * checks every document against the contract schema and the stage with the enforcer's own loader.
   */
  async function renderedAndLoaded(
    plans: UsagePlan[],
    keys: ApiKey[],
    bindings: PlanBinding[],
  ): Promise<void> {
    const materials = new Map(
      keys.map((k) => {
        const g = generateKey();
        return [k.metadata.name ?? '', { keyId: g.keyId, hashes: [{ sha256: hashKey(g.value) }] }] as const;
      }),
    );
    const out = render({ namespace: ns, plans, keys, bindings, materials, now: new Date() });
    expect(out.stages).toHaveLength(1);
    const objects = out.stages[0]?.objects ?? [];
    const data = new Map(objects.map((o) => [o.name, o.data]));
    for (const o of objects) {
      expect(o.name.length, o.name).toBeLessThanOrEqual(253);
      // Every object fits in etcd's request limit (1.5 MiB), with room to spare.
      expect(JSON.stringify(o.data).length, o.name).toBeLessThan(1024 * 1024);
      for (const [file, text] of Object.entries(o.data)) {
        const parsed =
          file === 'index.json'
            ? parseIndex(text)
            : file === 'keys.json'
              ? parseKeysShard(text)
              : parseSecretsShard(text);
        expect(parsed.ok ? 'accepted' : parsed.error, `${o.name}/${file}`).toBe('accepted');
      }
    }
    const indexText = objects.find((o) => o.data['index.json'] !== undefined)?.data['index.json'] ?? '';
    const index = parseIndex(indexText);
    if (!index.ok) throw new Error(index.error);
    const { loader, refusals } = testLoader();
    await loader.load({
      kind: 'stages',
      stages: [
        {
          origin: 'rendered',
          index: index.value,
          keys: index.value.shards.map((sh) => data.get(sh.keys.name)?.['keys.json']),
          secrets: index.value.shards.map((sh) => data.get(sh.secrets.name)?.['secrets.json']),
        },
      ],
    });
    expect(refusals.map((r) => r.error.message)).toEqual([]);
    expect(loader.current()?.keyCount).toBe(keys.length);
  }

  /** Admitted by a server-side dry run: the object as the API server would store it. */
  async function admitted<T>(manifest: Manifest): Promise<T> {
    return JSON.parse(
      await kubectl(
        ['create', '-n', ns, '--dry-run=server', '-o', 'json', '-f', '-'],
        JSON.stringify(manifest),
      ),
    ) as T;
  }

  it('render into documents the contract schema and the enforcer accept', async () => {
    const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE', '*'];
    const segment = (i: number): string => `s${String(i).padStart(2, '0')}`;
    // A path of exactly 256 characters: '/' and 63-character segments, ending in '/**'.
    const path = (i: number): string => {
      const body = `/${segment(i)}${'x'.repeat(60)}/${'y'.repeat(63)}/${'z'.repeat(63)}/`;
      return `${body}${'w'.repeat(256 - body.length - 3)}/**`;
    };
    const throttle = { rateLimit: 1_000_000, burstLimit: 10_000_000 };
    const name = `p${'l'.repeat(61)}n`;
    const headerName = (i: number): string => `X-${String(i).padStart(2, '0')}-${'h'.repeat(60)}`;
    const planManifest: Manifest = {
      ...resource('UsagePlan', name, {
        displayName: 'd'.repeat(128),
        description: 'e'.repeat(1024),
        throttle,
        quota: {
          limit: 1_000_000_000,
          period: 'MONTH',
          startDay: 28,
          timeZone: 'America/Argentina/ComodRivadavia',
        },
        routes: Array.from({ length: 64 }, (_, i) => ({
          methods: ALL_METHODS,
          path: path(i),
          throttle,
          cost: 1_000_000,
        })),
        shadow: true,
        countBy: 'Customer',
        responses: ['Forbidden', 'Throttled', 'QuotaExceeded'].map((type) => ({
          type,
          status: 599,
          body: 'b'.repeat(4096),
          contentType: `application/vnd.keystile+json; ${'p'.repeat(100)}=1`.slice(0, 128),
          headers: Object.fromEntries(
            Array.from({ length: 16 }, (_, i) => [headerName(i), '~'.repeat(1024)]),
          ),
        })),
        alerts: { thresholds: [20, 40, 60, 80, 100] },
      }),
    };
    expect(path(0)).toHaveLength(256);
    const keyName = `k${'-'.repeat(61)}y`;
    expect(keyName).toHaveLength(63);
    const keyManifest = resource('ApiKey', keyName, {
      displayName: 'D'.repeat(50),
      description: 'e'.repeat(1024),
      customer: `c${'-'.repeat(126)}c`,
      expiresAt: '2999-12-31T23:59:59Z',
    });
    const bindingManifest = resource('PlanBinding', name, {
      planRef: { name },
      keys: { names: [keyName] },
      apiStages: [{ api: 'a'.repeat(63), stage: 's'.repeat(63) }],
    });

    await renderedAndLoaded(
      [await admitted<UsagePlan>(planManifest)],
      [await admitted<ApiKey>(keyManifest)],
      [await admitted<PlanBinding>(bindingManifest)],
    );
  });

  it('routes repeating an earlier one (unnamed, the same methods and path) render, and load', async () => {
    const planManifest = resource('UsagePlan', 'repeats', {
      routes: [
        { methods: ['GET', 'POST'], path: '/v1/reports', cost: 5 },
        { methods: ['POST', 'GET'], path: '/v1/reports', cost: 7 },
        { path: '/v1/x' },
        { methods: ['*'], path: '/v1/x' },
      ],
    });
    const stored = await admitted<UsagePlan>(planManifest);
    expect(renderPlan(stored, ns).routes.map((r) => r.name)).toEqual([
      'GET,POST /v1/reports',
      'GET,POST /v1/reports (2)',
      '* /v1/x',
      '* /v1/x (2)',
    ]);
    await renderedAndLoaded(
      [stored],
      [await admitted<ApiKey>(resource('ApiKey', 'one', {}))],
      [
        await admitted<PlanBinding>(
          resource('PlanBinding', 'repeats', {
            planRef: { name: 'repeats' },
            keys: { names: ['one'] },
            apiStages: stages,
          }),
        ),
      ],
    );
  });
});
