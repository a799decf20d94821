/**
 * `keystile import FILE.csv`: imports API keys from AWS API Gateway's API-key CSV into a namespace, as a
 * Secret holding each value and an ApiKey importing it, and binds them to their usage plans. Bad rows are
 * reported with their line and reason and the good ones are still imported; running it twice changes
 * nothing (server-side apply, field manager `keystile-import`). Key values are never printed.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  type V1Secret,
} from '@kubernetes/client-node';
import { hashKey } from '../../contract/src/key-format.ts';
import { LABELS } from '../../contract/src/identity.ts';
import { GROUP, VERSION } from '../../crds/src/index.ts';
import { forEachLimit } from '../../operator/src/controllers/pool.ts';
import { describe, isNotFound, statusOf } from '../../operator/src/kube/errors.ts';
import { API_KEY_LABEL, KEY_MATERIAL_LABEL } from '../../operator/src/kube/informers.ts';
import { keySecretName } from '../../operator/src/keys/key-secret.ts';
import { parseImportCsv, type RowProblem } from './import-csv.ts';
import { loadKubeConfig } from './kubeconfig.ts';
import {
  type ClusterState,
  type ExistingBinding,
  type ExistingKey,
  fingerprint,
  IMPORT_MANAGER,
  importSecretName,
  type Manifest,
  parsePlanIds,
  parseStageOptions,
  planImport,
  type RowWrite,
  VALUE_KEY,
  withOwner,
} from './import-plan.ts';

const USAGE = `usage: keystile import FILE.csv [--namespace NS] [--stage [PLAN=]api/stage]... [--plan-id AWSID=PLAN]... [--dry-run]
  Imports API keys from AWS API Gateway's API key CSV (columns Name, Key, Description, Enabled,
  UsagePlanIds, any order, header case-insensitive). Per row: a Secret keystile-import-<name> with the
  value, and an ApiKey <name> (valueFrom: Secret) labelled plan.import.keystile.dev/<plan>=true for each
  plan; per plan a PlanBinding <plan>-imported selecting that label (an existing one is left as it is).
  --namespace  where to import (default: the kubeconfig context's namespace, else 'default')
  --stage      the API stages of the bindings to create, repeatable; PLAN=api/stage for one plan only.
               Needed only when a binding does not exist yet
  --plan-id    maps an AWS usage plan id in UsagePlanIds to a UsagePlan name, repeatable
  --dry-run    show what would change (the API server checks every write, nothing is stored)
  Exit status: 0 all rows imported, 1 some rows were not (each is listed), 2 nothing done (usage).
  The kubeconfig is found as kubectl finds it (KUBECONFIG, ~/.kube/config, in-cluster).`;

/** Where the command writes: results to `out`, problems and warnings to `err`. */
export interface CommandIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  /** The cluster; default: loaded as kubectl does. */
  readonly kubeConfig?: KubeConfig;
}

const DEFAULT_IO: CommandIo = { out: (l) => console.log(l), err: (l) => console.error(l) };
const WRITE_CONCURRENCY = 8;

/** Runs the command; resolves to the exit code. */
export async function importCommand(argv: readonly string[], io: CommandIo = DEFAULT_IO): Promise<number> {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        namespace: { type: 'string', short: 'n' },
        stage: { type: 'string', multiple: true, default: [] },
        'plan-id': { type: 'string', multiple: true, default: [] },
        'dry-run': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.err(`keystile import: ${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] === undefined) {
    io.err(USAGE);
    return 2;
  }
  const file = positionals[0];
  let stages;
  let planIds;
  try {
    stages = parseStageOptions(values.stage);
    planIds = parsePlanIds(values['plan-id']);
  } catch (err) {
    io.err(`keystile import: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
  let text: string;
  try {
    text = decodeCsv(readFileSync(file));
  } catch (err) {
    io.err(
      `keystile import: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err))}`,
    );
    return 2;
  }
  const csv = parseImportCsv(text);
  if (csv.rows.length === 0) {
    for (const p of csv.problems) io.err(problemLine(p));
    io.out(`0 of ${csv.dataRows} row${csv.dataRows === 1 ? '' : 's'} imported: nothing to do`);
    return csv.problems.length > 0 ? 1 : 0;
  }

  const dryRun = values['dry-run'];
  let namespace: string;
  let kube: ImportKube;
  let state: ClusterState;
  try {
    const kc = io.kubeConfig ?? loadKubeConfig();
    namespace = values.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
    kube = new ImportKube(kc, namespace);
    await kube.checkNamespace();
    state = await kube.state(csv.rows.map((r) => r.name));
  } catch (err) {
    io.err(`keystile import: ${describe(err)}`);
    return 2;
  }
  const plan = planImport(csv.rows, state, { stages, planIds });
  const problems: RowProblem[] = [...csv.problems, ...plan.problems];
  if (plan.fatal.length > 0) {
    for (const p of problems.sort((a, b) => a.line - b.line)) io.err(problemLine(p));
    for (const f of plan.fatal) io.err(`error: ${f}`);
    io.err('nothing written');
    return 2;
  }

  const counts = { created: 0, updated: 0, unchanged: 0 };
  const would = dryRun ? 'would be ' : '';
  const done: { line: number; text: string }[] = [];
  await forEachLimit(plan.writes, WRITE_CONCURRENCY, async (w) => {
    try {
      const outcome = await kube.writeRow(w, dryRun);
      counts[outcome]++;
      if (outcome !== 'unchanged') {
        const on = w.plans.length > 0 ? ` on ${w.plans.join(', ')}` : '';
        done.push({
          line: w.row.line,
          text: `line ${w.row.line}: ApiKey ${w.row.name}${on}: ${would}${outcome}`,
        });
      }
    } catch (err) {
      problems.push({ line: w.row.line, name: w.row.name, reason: redact(describe(err), w.row.value) });
    }
  });
  for (const d of done.sort((a, b) => a.line - b.line)) io.out(d.text);
  for (const b of plan.bindings) {
    if (b.warning) io.err(`warning: ${b.warning}`);
    if (!b.create) {
      io.out(`PlanBinding ${b.name}: exists, left as it is`);
      continue;
    }
    try {
      await kube.apply(b.create, dryRun);
      const stagesText = (b.create.spec as { apiStages: { api: string; stage: string }[] }).apiStages
        .map((s) => `${s.api}/${s.stage}`)
        .join(', ');
      io.out(`PlanBinding ${b.name} (plan ${b.plan} on ${stagesText}): ${would}created`);
    } catch (err) {
      io.err(`error: PlanBinding ${b.name}: ${describe(err)}`);
      problems.push({ line: 0, reason: `PlanBinding ${b.name} was not created` });
    }
  }

  problems.sort((a, b) => a.line - b.line);
  for (const p of problems) io.err(problemLine(p));
  const imported = counts.created + counts.updated + counts.unchanged;
  const failedRows = new Set(problems.filter((p) => p.line > 0).map((p) => p.line)).size;
  io.out(
    `${dryRun ? 'dry run: ' : ''}${imported} of ${csv.dataRows} row${csv.dataRows === 1 ? '' : 's'} ${dryRun ? 'can be imported' : 'imported'} (${counts.created} ${would}created, ${counts.updated} ${would}updated, ${counts.unchanged} unchanged) into namespace ${namespace}${failedRows > 0 ? `; ${failedRows} failed` : ''}`,
  );
  return problems.length > 0 ? 1 : 0;
}

/**
 * The file's text, decoded as UTF-8 strictly: a byte sequence that is not UTF-8 (a file saved as Latin-1 or
 * UTF-16, as spreadsheet programs do) would otherwise become U+FFFD in names and key values, imported wrong
 * or refused with a misleading reason. Throws a message that never quotes the bytes.
 */
export function decodeCsv(bytes: Uint8Array): string {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))
    throw new Error('the file is UTF-16 (it starts with a UTF-16 byte order mark): save it as UTF-8');
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new Error('the file is not UTF-8 (a byte sequence UTF-8 does not have): save it as UTF-8');
  }
}

function problemLine(p: RowProblem): string {
  return `${p.line > 0 ? `line ${p.line}` : 'file'}: ${p.name !== undefined ? `${p.name}: ` : ''}${p.reason}`;
}

/** Removes a key value (and its base64) from a message, should the API server ever echo it. */
export function redact(message: string, value: string): string {
  const b64 = Buffer.from(value, 'utf8').toString('base64');
  return message.split(value).join('<redacted>').split(b64).join('<redacted>');
}

interface ListResult<T> {
  items: T[];
  metadata?: { _continue?: string; continue?: string };
}

/** The reads and writes of an import, in one namespace. */
class ImportKube {
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #objects: KubernetesObjectApi;
  readonly #ns: string;
  /** What exists now, by `kind/name`, for telling created, updated and unchanged apart. */
  readonly #before = new Map<string, KubernetesObject>();

  constructor(kc: KubeConfig, namespace: string) {
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#custom = kc.makeApiClient(CustomObjectsApi);
    this.#objects = KubernetesObjectApi.makeApiClient(kc);
    this.#ns = namespace;
  }

  /** Throws a clear error when the namespace does not exist (a 403 on reading it is not ours to judge). */
  async checkNamespace(): Promise<void> {
    try {
      await this.#core.readNamespace({ name: this.#ns });
    } catch (err) {
      if (isNotFound(err)) throw new Error(`namespace ${this.#ns} does not exist`);
      if (statusOf(err) !== 403) throw err;
    }
  }

  /** What the namespace holds, for the rows' names. */
  async state(names: readonly string[]): Promise<ClusterState> {
    const plans = await this.#list<{ metadata: { name: string } }>('usageplans');
    const keys = await this.#list<{
      metadata: { name: string; uid?: string };
      spec?: { valueFrom?: string; type?: string; secretRef?: { name?: string } };
    }>('apikeys');
    const bindings = await this.#list<{
      metadata: { name: string };
      spec?: {
        planRef?: { name?: string };
        keys?: { names?: string[]; selector?: { matchLabels?: Record<string, string> } };
      };
    }>('planbindings');
    const secrets = new Map<string, V1Secret>();
    let cont: string | undefined;
    do {
      const page = await this.#core.listNamespacedSecret({
        namespace: this.#ns,
        labelSelector: `${KEY_MATERIAL_LABEL}=true`,
        limit: 500,
        ...(cont !== undefined && { _continue: cont }),
      });
      for (const s of page.items) if (s.metadata?.name) secrets.set(s.metadata.name, s);
      cont = page.metadata?._continue || undefined;
    } while (cont !== undefined);
    // An import Secret that lost its label still holds a value that must not be overwritten.
    for (const name of names) {
      const secretName = importSecretName(name);
      if (secrets.has(secretName)) continue;
      try {
        secrets.set(
          secretName,
          await this.#core.readNamespacedSecret({ name: secretName, namespace: this.#ns }),
        );
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }

    const existingKeys = new Map<string, ExistingKey>();
    for (const k of keys) {
      existingKeys.set(k.metadata.name, {
        ...(k.metadata.uid !== undefined && { uid: k.metadata.uid }),
        valueFrom: k.spec?.valueFrom ?? 'Generated',
        ...(k.spec?.type !== undefined && { type: k.spec.type }),
        ...(k.spec?.secretRef?.name !== undefined && { secretRefName: k.spec.secretRef.name }),
      });
      this.#before.set(`ApiKey/${k.metadata.name}`, k);
    }
    for (const [name, s] of secrets) this.#before.set(`Secret/${name}`, s);

    // The current value of each key, as a hash: the import Secret's, else the operator's key Secret's.
    const valueHashes = new Map<string, string>();
    for (const s of secrets.values()) {
      const owner = s.metadata?.labels?.[API_KEY_LABEL];
      const data = s.data ?? {};
      const decoded = (k: string): string | undefined =>
        data[k] === undefined ? undefined : Buffer.from(data[k], 'base64').toString('utf8');
      const name = s.metadata?.name ?? '';
      if (s.metadata?.labels?.[LABELS.managedBy] === IMPORT_MANAGER || name.startsWith('keystile-import-')) {
        const apiKey = owner ?? name.slice('keystile-import-'.length);
        const value = decoded(VALUE_KEY);
        if (value !== undefined) valueHashes.set(apiKey, hashKey(value));
      }
    }
    for (const s of secrets.values()) {
      const owner = s.metadata?.labels?.[API_KEY_LABEL];
      if (!owner || s.metadata?.name !== keySecretName(owner) || valueHashes.has(owner)) continue;
      const data = s.data ?? {};
      const value =
        data['value'] === undefined ? undefined : Buffer.from(data['value'], 'base64').toString('utf8');
      const sha =
        value !== undefined
          ? hashKey(value)
          : data['sha256'] && Buffer.from(data['sha256'], 'base64').toString('utf8');
      if (sha) valueHashes.set(owner, sha);
    }

    const existingBindings = new Map<string, ExistingBinding>();
    for (const b of bindings) {
      existingBindings.set(b.metadata.name, {
        plan: b.spec?.planRef?.name ?? '',
        matchLabels: b.spec?.keys?.selector?.matchLabels ?? {},
        names: b.spec?.keys?.names ?? [],
      });
    }
    return {
      namespace: this.#ns,
      plans: new Set(plans.map((p) => p.metadata.name)),
      keys: existingKeys,
      bindings: existingBindings,
      valueHashes,
    };
  }

  /** Writes one row's Secret and ApiKey; says whether anything changed. */
  async writeRow(w: RowWrite, dryRun: boolean): Promise<'created' | 'updated' | 'unchanged'> {
    const name = w.row.name;
    const keyBefore = this.#before.get(`ApiKey/${name}`);
    const secretBefore = this.#before.get(`Secret/${w.secret.metadata.name}`);
    let secretAfter: KubernetesObject;
    let keyAfter: KubernetesObject;
    // The ApiKey after the Secret: should it fail, a Secret this run created would be left holding the
    // value with no key to own it (and none to delete it with): it is deleted before the row is reported.
    const applyKey = async (): Promise<KubernetesObject> => {
      try {
        return await this.apply(w.apiKey, dryRun);
      } catch (err) {
        const left = !dryRun && !secretBefore ? await this.#deleteSecret(w.secret.metadata.name) : undefined;
        if (left !== undefined) throw new Error(`${describe(err)}; ${left}`, { cause: err });
        throw err;
      }
    };
    if (w.existingUid !== undefined) {
      secretAfter = await this.apply(withOwner(w.secret, name, w.existingUid), dryRun);
      keyAfter = await applyKey();
    } else {
      // The Secret first, labelled, so the operator finds the value the moment the ApiKey appears; then
      // the ApiKey; then the Secret again, owned by it, so that deleting the key deletes its value.
      secretAfter = await this.apply(w.secret, dryRun);
      keyAfter = await applyKey();
      const uid = keyAfter.metadata?.uid;
      if (!dryRun && uid) secretAfter = await this.apply(withOwner(w.secret, name, uid), dryRun);
    }
    if (!keyBefore) return 'created';
    return fingerprint(keyBefore) === fingerprint(keyAfter) &&
      fingerprint(secretBefore) === fingerprint(secretAfter)
      ? 'unchanged'
      : 'updated';
  }

  /** Deletes a Secret this run created; says what was left behind if it could not. */
  async #deleteSecret(name: string): Promise<string | undefined> {
    try {
      await this.#core.deleteNamespacedSecret({ name, namespace: this.#ns });
      return undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      return `and its Secret ${name}, holding the value, could not be deleted (${describe(err)}): delete it`;
    }
  }

  /** Server-side apply with the import's field manager, taking over the fields it sets. */
  async apply(m: Manifest, dryRun: boolean): Promise<KubernetesObject> {
    return this.#objects.patch(
      m,
      undefined,
      dryRun ? 'All' : undefined,
      IMPORT_MANAGER,
      true,
      PatchStrategy.ServerSideApply,
    );
  }

  async #list<T>(plural: string): Promise<T[]> {
    const out: T[] = [];
    let cont: string | undefined;
    do {
      const page = (await this.#custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: this.#ns,
        plural,
        limit: 500,
        ...(cont !== undefined && { _continue: cont }),
      })) as ListResult<T>;
      out.push(...page.items);
      cont = page.metadata?.continue || page.metadata?._continue || undefined;
    } while (cont !== undefined);
    return out;
  }
}
