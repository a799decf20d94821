/**
 * What `keystile import` writes for the rows of a CSV, decided purely from the rows, what the namespace
 * holds already, and the options: per good row a Secret holding the value and an ApiKey importing it, per
 * plan a PlanBinding selecting the imported keys, and every row that cannot be imported, with why.
 *
 * - The Secret is `keystile-import-<name>`, labelled `keystile.dev/key-material=true` so the operator
 *   watches it from the start (adoption: docs/operator.md) and `keystile.dev/apikey=<name>` so a change
 *   reaches the right key; once the ApiKey exists the Secret is owned by it (deleted with it).
 * - The ApiKey has `valueFrom: Secret`; it carries one label per plan, `plan.import.keystile.dev/<plan>`,
 *   and the binding `<plan>-imported` selects that label. An existing binding is left as it is.
 * - A value is never overwritten: an ApiKey that exists with another value, or that is not an imported
 *   key of this command, or a value another ApiKey holds, makes the row bad.
 */
import { hashKey } from '../../contract/src/key-format.ts';
import { LABELS } from '../../contract/src/identity.ts';
import { API_VERSION } from '../../crds/src/index.ts';
import { API_KEY_LABEL, KEY_MATERIAL_LABEL } from '../../operator/src/kube/informers.ts';
import { DNS_LABEL, type ImportRow, type RowProblem } from './import-csv.ts';

/** The field manager of every write (server-side apply), and the managed-by label's value. */
export const IMPORT_MANAGER = 'keystile-import';
/** The prefix of the per-plan label on imported ApiKeys: `plan.import.keystile.dev/<plan>: "true"`. */
export const PLAN_LABEL_PREFIX = 'plan.import.keystile.dev/';
/** The data key of the value in an import Secret. */
export const VALUE_KEY = 'value';

/** The Secret holding an imported key's value. */
export function importSecretName(apiKey: string): string {
  return `keystile-import-${apiKey}`;
}

/** The label that puts an imported key on a plan. */
export function planLabel(plan: string): string {
  return `${PLAN_LABEL_PREFIX}${plan}`;
}

/** The PlanBinding `keystile import` creates for a plan. */
export function importBindingName(plan: string): string {
  return `${plan}-imported`;
}

/** An API stage from `--stage [PLAN=]api/stage`; without a plan it is for every binding created. */
export interface StageOption {
  readonly plan?: string;
  readonly api: string;
  readonly stage: string;
}

/** Parses `--stage` values; throws an Error naming the bad one. */
export function parseStageOptions(values: readonly string[]): StageOption[] {
  return values.map((v) => {
    const m = /^(?:([^=]+)=)?([^/=]+)\/([^/=]+)$/.exec(v);
    const [, plan, api, stage] = m ?? [];
    if (!api || !stage || !DNS_LABEL.test(api) || !DNS_LABEL.test(stage)) {
      throw new Error(`--stage ${v}: expected api/stage or PLAN=api/stage, api and stage DNS labels`);
    }
    return { api, stage, ...(plan !== undefined && { plan }) };
  });
}

/** Parses `--plan-id AWSID=PLAN` values (AWS usage plan ids to UsagePlan names); throws on a bad one. */
export function parsePlanIds(values: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const m = /^([^=]+)=(.+)$/.exec(v);
    if (!m?.[1] || !m[2]) throw new Error(`--plan-id ${v}: expected AWSID=PLAN`);
    out.set(m[1].trim(), m[2].trim());
  }
  return out;
}

/** An ApiKey that exists, as far as import cares. */
export interface ExistingKey {
  readonly uid?: string;
  readonly valueFrom?: string;
  readonly type?: string;
  readonly secretRefName?: string;
}

/** A PlanBinding that exists. */
export interface ExistingBinding {
  readonly plan: string;
  readonly matchLabels: Readonly<Record<string, string>>;
  readonly names: readonly string[];
}

/** What the namespace holds. */
export interface ClusterState {
  readonly namespace: string;
  /** UsagePlan names. */
  readonly plans: ReadonlySet<string>;
  readonly keys: ReadonlyMap<string, ExistingKey>;
  readonly bindings: ReadonlyMap<string, ExistingBinding>;
  /** SHA-256 of each ApiKey's current value, by ApiKey name, where known. */
  readonly valueHashes: ReadonlyMap<string, string>;
}

/** The options that shape the output. */
export interface PlanOptions {
  readonly stages: readonly StageOption[];
  /** AWS usage plan id -> UsagePlan name. */
  readonly planIds: ReadonlyMap<string, string>;
}

/** A Kubernetes object to apply, as JSON. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string }[];
  };
  [field: string]: unknown;
}

/** A row to write. */
export interface RowWrite {
  readonly row: ImportRow;
  /** The Secret, without owner (add it with {@link withOwner} once the ApiKey's uid is known). */
  readonly secret: Manifest;
  readonly apiKey: Manifest;
  /** The UsagePlan names the key goes on. */
  readonly plans: readonly string[];
  /** The uid of the ApiKey when it exists already. */
  readonly existingUid?: string;
}

/** A binding, to create or left as it is. */
export interface BindingAction {
  readonly plan: string;
  readonly name: string;
  /** Present when the binding must be created. */
  readonly create?: Manifest;
  /** Why an existing binding may not bind the imported keys. */
  readonly warning?: string;
}

/** The whole plan. */
export interface ImportPlan {
  readonly writes: readonly RowWrite[];
  readonly problems: readonly RowProblem[];
  readonly bindings: readonly BindingAction[];
  /** Problems with the command line that stop everything (nothing is written). */
  readonly fatal: readonly string[];
}

/** Decides every write; pure. */
export function planImport(
  rows: readonly ImportRow[],
  state: ClusterState,
  options: PlanOptions,
): ImportPlan {
  const ns = state.namespace;
  const problems: RowProblem[] = [];
  const writes: RowWrite[] = [];
  const holders = new Map<string, string>();
  for (const [name, hash] of state.valueHashes) if (!holders.has(hash)) holders.set(hash, name);

  for (const row of rows) {
    const bad = (reason: string): void => {
      problems.push({ line: row.line, name: row.name, reason });
    };
    const plans = row.plans.map((p) => options.planIds.get(p) ?? p);
    const missing = plans.filter((p) => !state.plans.has(p));
    if (missing.length > 0) {
      bad(
        `${missing.length === 1 ? 'usage plan' : 'usage plans'} ${missing.join(', ')} ${missing.length === 1 ? 'does' : 'do'} not exist in namespace ${ns}${options.planIds.size === 0 ? ' (map AWS usage plan ids to UsagePlan names with --plan-id ID=NAME)' : ''}`,
      );
      continue;
    }
    const unlabelable = plans.find((p) => !DNS_LABEL.test(p));
    if (unlabelable !== undefined) {
      bad(
        `usage plan ${unlabelable}: a plan named in a CSV must have a DNS-label name (up to 63 characters)`,
      );
      continue;
    }
    const secretName = importSecretName(row.name);
    const existing = state.keys.get(row.name);
    if (existing && (existing.valueFrom !== 'Secret' || existing.secretRefName !== secretName)) {
      bad(
        `ApiKey ${row.name} already exists and is not a key imported by keystile import (${existing.valueFrom === 'Secret' ? `its value is in Secret ${existing.secretRefName ?? '?'}` : 'its value is generated'}); left unchanged`,
      );
      continue;
    }
    const hash = hashKey(row.value);
    const current = state.valueHashes.get(row.name);
    if (current !== undefined && current !== hash) {
      bad(
        `ApiKey ${row.name} already exists with a different value; not overwritten (to change it, edit Secret ${secretName}: the operator rotates to the new value)`,
      );
      continue;
    }
    const holder = holders.get(hash);
    if (holder !== undefined && holder !== row.name) {
      bad(`the key value is already held by ApiKey ${holder} in namespace ${ns} (keys are unique by value)`);
      continue;
    }
    const labels: Record<string, string> = { [LABELS.managedBy]: IMPORT_MANAGER };
    for (const p of plans) labels[planLabel(p)] = 'true';
    writes.push({
      row,
      plans,
      secret: {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: {
          name: secretName,
          namespace: ns,
          labels: {
            [LABELS.managedBy]: IMPORT_MANAGER,
            [KEY_MATERIAL_LABEL]: 'true',
            [API_KEY_LABEL]: row.name,
          },
        },
        data: { [VALUE_KEY]: Buffer.from(row.value, 'utf8').toString('base64') },
      },
      apiKey: {
        apiVersion: API_VERSION,
        kind: 'ApiKey',
        metadata: { name: row.name, namespace: ns, labels },
        spec: {
          valueFrom: 'Secret',
          secretRef: { name: secretName, key: VALUE_KEY },
          enabled: row.enabled,
          ...(row.description !== undefined && { description: row.description }),
        },
      },
      ...(existing?.uid !== undefined && { existingUid: existing.uid }),
    });
  }

  const bindings: BindingAction[] = [];
  const fatal: string[] = [];
  const used = [...new Set(writes.flatMap((w) => w.plans))].sort();
  for (const plan of used) {
    const name = importBindingName(plan);
    const label = planLabel(plan);
    const found = state.bindings.get(name);
    if (found) {
      const selects = found.matchLabels[label] === 'true';
      const warning =
        found.plan !== plan
          ? `PlanBinding ${name} exists but binds plan ${found.plan}, not ${plan}: the keys imported for ${plan} are not bound by it`
          : !selects
            ? `PlanBinding ${name} exists but does not select ${label}=true: it binds only the keys it names or selects`
            : undefined;
      bindings.push({ plan, name, ...(warning !== undefined && { warning }) });
      continue;
    }
    const stages = options.stages.filter((s) => s.plan === undefined || s.plan === plan);
    if (stages.length === 0) {
      fatal.push(
        `PlanBinding ${name} does not exist: give the API stages for plan ${plan} with --stage api/stage (or --stage ${plan}=api/stage)`,
      );
      continue;
    }
    const apiStages = [
      ...new Map(stages.map((s) => [`${s.api}/${s.stage}`, { api: s.api, stage: s.stage }])).values(),
    ];
    bindings.push({
      plan,
      name,
      create: {
        apiVersion: API_VERSION,
        kind: 'PlanBinding',
        metadata: { name, namespace: ns, labels: { [LABELS.managedBy]: IMPORT_MANAGER } },
        spec: {
          planRef: { name: plan },
          keys: { selector: { matchLabels: { [label]: 'true' } } },
          apiStages,
        },
      },
    });
  }
  const unknownStagePlans = options.stages
    .map((s) => s.plan)
    .filter((p): p is string => p !== undefined && !state.plans.has(p));
  for (const p of new Set(unknownStagePlans))
    fatal.push(`--stage ${p}=...: usage plan ${p} does not exist in namespace ${ns}`);
  problems.sort((a, b) => a.line - b.line);
  return { writes, problems, bindings, fatal };
}

/** The Secret owned by the ApiKey (so the garbage collector deletes it with the key). */
export function withOwner(secret: Manifest, apiKey: string, uid: string): Manifest {
  return {
    ...secret,
    metadata: {
      ...secret.metadata,
      ownerReferences: [{ apiVersion: API_VERSION, kind: 'ApiKey', name: apiKey, uid }],
    },
  };
}

/**
 * What of an object a person would call its content (labels, owners, spec, data), as one comparable
 * string: equal before and after a write means the write changed nothing.
 */
export function fingerprint(o: unknown): string {
  if (o === undefined || o === null) return '';
  const obj = o as {
    metadata?: { labels?: unknown; annotations?: Record<string, string>; ownerReferences?: unknown[] };
    spec?: unknown;
    data?: unknown;
    type?: unknown;
  };
  const annotations = { ...(obj.metadata?.annotations ?? {}) };
  delete annotations['kubectl.kubernetes.io/last-applied-configuration'];
  const owners = (obj.metadata?.ownerReferences ?? []).map((r) => {
    const { kind, name, uid } = r as { kind?: string; name?: string; uid?: string };
    return { kind, name, uid };
  });
  return stable({
    labels: obj.metadata?.labels ?? {},
    annotations,
    owners,
    spec: obj.spec ?? null,
    data: obj.data ?? null,
    type: obj.type ?? null,
  });
}

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stable(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
