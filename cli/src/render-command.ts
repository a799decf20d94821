/**
 * `keystile render FILE...`: renders resources offline, with no cluster, into the standalone config file
 * an enforcer runs from (`enforcer --config FILE`), and optionally the ConfigMaps and Secrets the operator
 * would write. Generated key values go to a secrets file of key Secrets (the operator's format), reused on
 * the next run so values never change; hand them to customers from there.
 */
import {
  accessSync,
  chmodSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { CONTRACT_VERSION, type StandaloneConfig } from '../../contract/src/format.ts';
import { parseIndex, parseKeysShard, parseSecretsShard } from '../../contract/src/validate.ts';
import type { ApiKey } from '../../crds/src/index.ts';
import { planKeySecret } from '../../operator/src/keys/key-plan.ts';
import { type KeySecretData, keySecretName, materialFromSecret } from '../../operator/src/keys/key-secret.ts';
import { render } from '../../operator/src/render/render.ts';
import type { KeyMaterial, RenderedObject, RenderOutput } from '../../operator/src/render/types.ts';
import { readResources, secretData, type SecretDoc, yamlProblem } from './read-resources.ts';

const USAGE = `usage: keystile render FILE... [--out config.json] [--secrets keys.yaml] [--manifests DIR] [--namespace NS]
  --out        the standalone config file for enforcers (default keystile-config.json; holds hashes and
               KeyPair SecretKeys: written mode 0600)
  --secrets    generated key values, as Secrets (default keystile-keys.yaml; read first, so a value is
               generated once; mode 0600)
  --manifests  also write the ConfigMaps and Secrets the operator would write, one YAML file per stage
  --namespace  the namespace of resources that name none (default 'default')`;

/** Runs the command; returns the exit code. */
export function renderCommand(
  argv: readonly string[],
  log: (line: string) => void = console.error,
  out: (line: string) => void = console.log,
): number {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        out: { type: 'string', default: 'keystile-config.json' },
        secrets: { type: 'string', default: 'keystile-keys.yaml' },
        manifests: { type: 'string' },
        namespace: { type: 'string', default: 'default' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    // A wrong command line: nothing done (exit 2), as every command answers it.
    log(`keystile render: ${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out(USAGE); // asked for: standard output, exit 0
    return 0;
  }
  if (positionals.length === 0) {
    log(USAGE);
    return 2;
  }
  // A FILE that cannot be read is a wrong command line: nothing done, exit 2 (as import answers it).
  for (const file of positionals) {
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      log(`keystile render: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      return 2;
    }
  }
  const input = readResources(positionals, values.namespace);
  if (input.problems.length > 0) {
    for (const p of input.problems) log(`error: ${p}`);
    log('nothing written');
    return 1;
  }
  const now = new Date();
  const keySecrets = readKeySecrets(values.secrets, values.namespace);
  const materials = new Map<string, Map<string, KeyMaterial>>();
  let generated = 0;
  for (const key of input.keys) {
    const ns = key.metadata.namespace ?? values.namespace;
    const secretName = `${ns}/${keySecretName(key.metadata.name)}`;
    const planned = planKey(key, keySecrets.get(secretName), input.secrets, now, log);
    if (planned.store) keySecrets.set(secretName, planned.store);
    if (planned.generated) generated += 1;
    const data = planned.render ? planned.store : undefined;
    if (!data) continue;
    const m = materialFromSecret(key.spec.type ?? 'ApiKey', data, now);
    if (!m) continue;
    const byNs = materials.get(ns) ?? new Map<string, KeyMaterial>();
    byNs.set(key.metadata.name, m);
    materials.set(ns, byNs);
  }

  const namespaces = [
    ...new Set(
      [...input.plans, ...input.keys, ...input.bindings].map((r) => r.metadata.namespace ?? values.namespace),
    ),
  ].sort();
  const outputs = namespaces.map((ns) =>
    render({
      namespace: ns,
      plans: input.plans.filter((r) => r.metadata.namespace === ns),
      keys: input.keys.filter((r) => r.metadata.namespace === ns),
      bindings: input.bindings.filter((r) => r.metadata.namespace === ns),
      materials: materials.get(ns) ?? new Map(),
      now,
    }),
  );

  // What the API server's CEL rules and the operator would catch, and the enforcer would refuse: checked
  // here, offline, so that a file is never written that the enforcer cannot load.
  const refused = outputs.flatMap((o, i) => [
    ...[...o.plans].flatMap(([name, p]) =>
      p.problem === undefined ? [] : [`UsagePlan ${namespaces[i] ?? ''}/${name}: ${p.problem}`],
    ),
    ...o.stages.flatMap((st) => stageRefusals(st.documents)),
  ]);
  if (refused.length > 0) {
    for (const r of refused) log(`error: ${r}`);
    log('nothing written');
    return 1;
  }

  const config: StandaloneConfig = {
    version: CONTRACT_VERSION,
    kind: 'KeystileStandaloneConfig',
    stages: outputs.flatMap((o) => o.stages.map((s) => s.documents)),
  };
  // Every file or none: a config written beside a secrets file that failed would hold the hashes of
  // values saved nowhere, and manifests that failed after both were written would leave a half-done run
  // (the manifests directory is made first, then everything is written to temporary files, then renamed).
  if (values.manifests) mkdirSync(values.manifests, { recursive: true, mode: 0o700 });
  const manifests = values.manifests ? manifestFiles(values.manifests, outputs) : [];
  writeAllPrivate([
    [values.secrets, keySecretsYaml(keySecrets)],
    [values.out, `${JSON.stringify(config, null, 2)}\n`],
    ...manifests,
  ]);
  if (values.manifests) {
    for (const file of staleManifests(values.manifests, manifests)) {
      rmSync(file, { force: true });
      log(`removed ${file}: its API stage is no longer rendered`);
    }
  }

  for (const o of outputs) report(o, log);
  log(
    `wrote ${values.out} (${config.stages.length} API stage${config.stages.length === 1 ? '' : 's'}) and ${values.secrets}${generated ? ` (${generated} new key value${generated === 1 ? '' : 's'})` : ''}`,
  );
  return 0;
}

/**
 * What a key's Secret holds after this run, as the operator would decide it (keys/key-plan.ts) from what
 * the secrets file held: a value generated once and again at each raised rotation sequence; an imported
 * one following its input Secret (a changed value is a rotation with its grace period; a missing or bad
 * one withdraws the value it held). `render`: whether the key is rendered.
 */
function planKey(
  key: ApiKey,
  existing: KeySecretData | undefined,
  secrets: readonly SecretDoc[],
  now: Date,
  log: (l: string) => void,
): { store: KeySecretData | undefined; render: boolean; generated: boolean } {
  const name = key.metadata.name;
  let imported: Record<string, string> | 'missing' | undefined;
  if (key.spec.valueFrom === 'Secret') {
    const ref = key.spec.secretRef;
    const doc = secrets.find(
      (s) => s.metadata.name === ref?.name && (s.metadata.namespace ?? '') === (key.metadata.namespace ?? ''),
    );
    imported = doc ? secretData(doc) : 'missing';
    if (!doc)
      log(
        `warning: ApiKey ${name}: Secret ${ref?.name ?? '?'} is not among the inputs; the key is not rendered`,
      );
  }
  const plan = planKeySecret({ key, existing, ...(imported !== undefined && { imported }), now });
  if (plan.kind === 'keep') return { store: existing, render: true, generated: false };
  if (plan.kind === 'write') {
    if (plan.rotated)
      log(
        `ApiKey ${name}: a new value; the previous one is accepted until ${plan.rotated.previousValidUntil}`,
      );
    return { store: plan.data, render: true, generated: key.spec.valueFrom !== 'Secret' };
  }
  if (imported !== 'missing')
    log(`warning: ApiKey ${name}: ${plan.reason}: ${plan.message}; the key is not rendered`);
  return { store: plan.withdraw ?? existing, render: false, generated: false };
}

/** Why the enforcer would refuse a stage's documents (the contract schema's words), if it would. */
function stageRefusals(docs: StandaloneConfig['stages'][number]): string[] {
  const stage = `${docs.index.apiStage.namespace}/${docs.index.apiStage.api}/${docs.index.apiStage.stage}`;
  const results = [
    parseIndex(JSON.stringify(docs.index)),
    ...docs.keys.map((k) => parseKeysShard(k)),
    ...docs.secrets.map((k) => parseSecretsShard(k)),
  ];
  return results.flatMap((r) => (r.ok ? [] : [`API stage ${stage}: ${r.error}`]));
}

/** The secrets file's key Secrets, by `namespace/name`; one naming no namespace is in `namespace`. */
function readKeySecrets(file: string, namespace: string): Map<string, KeySecretData> {
  const out = new Map<string, KeySecretData>();
  if (!existsSync(file)) return out;
  parseAllDocuments(readFileSync(file, 'utf8')).forEach((doc, i) => {
    // The values of every key rendered before: a file that cannot be read is a stop, never a fresh start
    // (new values would replace the ones customers hold).
    const where = `${file}, document ${i + 1}`;
    if (doc.errors.length > 0) throw new Error(`${where}: ${yamlProblem(doc.errors)}`);
    const s = doc.toJS() as SecretDoc | null;
    if (s?.kind !== 'Secret') return;
    if (typeof s.metadata?.name !== 'string') throw new Error(`${where}: Secret: metadata.name: required`);
    out.set(`${s.metadata.namespace ?? namespace}/${s.metadata.name}`, secretData(s));
  });
  return out;
}

function keySecretsYaml(secrets: ReadonlyMap<string, KeySecretData>): string {
  const docs = [...secrets]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([id, data]) => {
      const [namespace, name] = id.split('/');
      return stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: { name, namespace },
        stringData: data,
      });
    });
  return `# Key values generated by 'keystile render'. Secret: hand each value to its customer, keep this file safe.\n${docs.join('---\n')}`;
}

/**
 * Writes each file readable by its owner alone, all or none: each to a temporary file beside it first,
 * then renamed into place once every one is written.
 */
function writeAllPrivate(files: readonly (readonly [string, string])[]): void {
  const temps: [string, string][] = [];
  try {
    for (const [file, content] of files) {
      const temp = `${file}.tmp-${process.pid}`;
      writePrivate(temp, content);
      temps.push([temp, file]);
    }
  } catch (err) {
    for (const [temp] of temps) rmSync(temp, { force: true });
    throw err;
  }
  for (const [temp, file] of temps) renameSync(temp, file);
}

function writePrivate(file: string, content: string): void {
  writeFileSync(file, content, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** The Kubernetes manifest of a rendered object. */
export function manifest(o: RenderedObject): Record<string, unknown> {
  const metadata = {
    name: o.name,
    namespace: o.namespace,
    labels: o.labels,
    ...(o.owners.length > 0 && {
      ownerReferences: o.owners.map((w) => ({
        apiVersion: 'keystile.dev/v1alpha1',
        kind: 'PlanBinding',
        name: w.name,
        uid: w.uid,
      })),
    }),
  };
  return o.kind === 'ConfigMap'
    ? { apiVersion: 'v1', kind: 'ConfigMap', metadata, data: o.data }
    : {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata,
        data: Object.fromEntries(
          Object.entries(o.data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
        ),
      };
}

/** The manifest files of `--manifests DIR`: one per API stage, `<namespace>.<api>.<stage>.yaml`. */
function manifestFiles(dir: string, outputs: readonly RenderOutput[]): [string, string][] {
  return outputs.flatMap((o) =>
    o.stages.map((s): [string, string] => [
      join(dir, `${s.apiStage.namespace}.${s.apiStage.api}.${s.apiStage.stage}.yaml`),
      s.objects.map((obj) => stringify(manifest(obj))).join('---\n'),
    ]),
  );
}

/** A manifest file's name: `<namespace>.<api>.<stage>.yaml`, each part a DNS label. */
const MANIFEST_FILE =
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\.[a-z0-9]([-a-z0-9]*[a-z0-9])?\.[a-z0-9]([-a-z0-9]*[a-z0-9])?\.yaml$/;

/**
 * The manifest files of earlier runs in `dir` that this run did not write (a stage no longer rendered):
 * left in place, they would be applied with the rest and bring back objects of a stage that is gone.
 */
function staleManifests(dir: string, written: readonly (readonly [string, string])[]): string[] {
  const now = new Set(written.map(([file]) => basename(file)));
  return readdirSync(dir)
    .filter((name) => MANIFEST_FILE.test(name) && !now.has(name))
    .sort()
    .map((name) => join(dir, name));
}

function report(o: RenderOutput, log: (l: string) => void): void {
  for (const [name, b] of o.bindings) {
    if (b.ready.status !== 'True') log(`PlanBinding ${name}: ${b.ready.reason}: ${b.ready.message}`);
  }
  for (const [name, k] of o.keys) {
    if (k.problem) log(`ApiKey ${name}: ${k.problem.reason}: ${k.problem.message}`);
  }
}
