/** Reads Keystile resources and Secrets from YAML or JSON files, checking each against its schema. */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { ApiKey, PlanBinding, UsagePlan } from '../../crds/src/index.ts';
import { API_VERSION } from '../../crds/src/index.ts';
import { validateResource } from '../../crds/src/validate.ts';

/** A Kubernetes Secret as read from a file (data base64, or stringData). */
export interface SecretDoc {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** Everything read, by kind, with each problem found (file, document, field, message). */
export interface ReadResult {
  plans: UsagePlan[];
  keys: ApiKey[];
  bindings: PlanBinding[];
  secrets: SecretDoc[];
  problems: string[];
}

/** Reads files of YAML (multi-document) or JSON; Kubernetes `List`s are unpacked. */
export function readResources(files: readonly string[], defaultNamespace: string): ReadResult {
  const out: ReadResult = { plans: [], keys: [], bindings: [], secrets: [], problems: [] };
  const seen = new Map<string, string>();
  for (const file of files) {
    const docs = parseAllDocuments(readFileSync(file, 'utf8'));
    docs.forEach((doc, i) => {
      const where = `${file}, document ${i + 1}`;
      if (doc.errors.length > 0) {
        out.problems.push(`${where}: ${yamlProblem(doc.errors)}`);
        return;
      }
      const value = doc.toJS() as unknown;
      const items = isList(value) ? value.items : [value];
      for (const item of items) add(item, where, defaultNamespace, out, seen);
    });
  }
  return out;
}

/**
 * A YAML parse error in words that never quote the input: the parser's message ends with an excerpt of the
 * offending line, which may hold a key value, a password or a token; only its first line (the reason and
 * position) is kept.
 */
export function yamlProblem(errors: readonly { message: string }[]): string {
  const first = errors[0]?.message.split('\n')[0]?.replace(/:$/, '').trim();
  return first || 'not YAML';
}

function isList(v: unknown): v is { items: unknown[] } {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'List';
}

/**
 * Adds one item. `seen`: where each resource (kind, namespace and name) was defined first: a second
 * definition (a later file disabling a key, say) is a problem naming both places, never a silent choice.
 */
function add(item: unknown, where: string, ns: string, out: ReadResult, seen: Map<string, string>): void {
  if (item === null || item === undefined) return;
  if (typeof item !== 'object' || Array.isArray(item)) {
    out.problems.push(`${where}: not a resource (an object with apiVersion, kind and metadata)`);
    return;
  }
  const obj = item as {
    apiVersion?: string;
    kind?: string;
    metadata?: { name?: string; namespace?: string };
  };
  const ours = obj.apiVersion === API_VERSION || (obj.apiVersion === 'v1' && obj.kind === 'Secret');
  if (ours && (typeof obj.metadata !== 'object' || obj.metadata === null || Array.isArray(obj.metadata))) {
    out.problems.push(`${where}: ${obj.kind ?? '?'}: metadata: must be an object with a name`);
    return;
  }
  if (obj.metadata && obj.metadata.namespace === undefined) obj.metadata.namespace = ns;
  const twice = (): boolean => {
    const id = `${obj.kind ?? '?'} ${obj.metadata?.namespace ?? ns}/${obj.metadata?.name ?? '?'}`;
    const first = seen.get(id);
    if (first === undefined) {
      seen.set(id, where);
      return false;
    }
    out.problems.push(`${where}: ${id} is defined twice: also in ${first} (keep one definition)`);
    return true;
  };
  if (obj.apiVersion === 'v1' && obj.kind === 'Secret') {
    if (typeof obj.metadata?.name !== 'string') {
      out.problems.push(`${where}: Secret: metadata.name: required`);
      return;
    }
    if (!twice()) out.secrets.push(obj as SecretDoc);
    return;
  }
  if (obj.apiVersion !== API_VERSION) return; // other resources (a Namespace, a Deployment) are not ours
  const errors = validateResource(obj);
  if (errors.length > 0) {
    const name = obj.metadata?.name ?? '?';
    for (const e of errors)
      out.problems.push(`${where}: ${obj.kind ?? '?'} ${name}: ${e.field}: ${e.message}`);
    return;
  }
  if (twice()) return;
  if (obj.kind === 'UsagePlan') out.plans.push(obj as UsagePlan);
  else if (obj.kind === 'ApiKey') out.keys.push(obj as ApiKey);
  else if (obj.kind === 'PlanBinding') out.bindings.push(obj as PlanBinding);
}

/** A Secret's data, decoded to text. */
export function secretData(s: SecretDoc): Record<string, string> {
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) data[k] = Buffer.from(v, 'base64').toString('utf8');
  return { ...data, ...(s.stringData ?? {}) };
}
