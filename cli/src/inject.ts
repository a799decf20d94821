/**
 * `keystile inject` (pure): reads workload YAML and adds, to each workload that serves an API stage, an
 * Envoy that the workload's Service now points at and an enforcer that Envoy asks before every request,
 * much as `linkerd inject` or `istioctl kube-inject` do. Everything else passes through untouched, with its
 * comments and layout (the yaml library's document model is edited in place).
 *
 * Idempotent: what inject added is recognised by name (containers and volumes `keystile-*`, the
 * ServiceAccount `keystile-enforcer-*`, RBAC objects annotated `keystile.dev/generated-by`) and replaced,
 * so injecting its own output again gives the same bytes.
 */
import { Document, isMap, isSeq, parseAllDocuments } from 'yaml';
import { parseStageKey } from '../../contract/src/identity.ts';
import { enforcerRbac } from '../../enforcer/src/kube/rbac.ts';
import { INJECTED, type SidecarOptions, sidecars, type WorkloadStage } from './inject-sidecars.ts';
import { yamlProblem } from './read-resources.ts';

/** The annotation naming the API stage a workload serves: `api/stage`. */
export const STAGE_ANNOTATION = 'keystile.dev/api-stage';
/** The annotation that keeps a workload out (`"false"`), even when --api and --stage are given. */
export const OPT_OUT_ANNOTATION = 'keystile.dev/inject';
/** The annotation marking the RBAC objects inject writes (so it replaces, never duplicates, them). */
export const GENERATED_ANNOTATION = 'keystile.dev/generated-by';
const GENERATED_BY = 'keystile-inject';
/** The prefix of the ServiceAccounts inject creates: `keystile-enforcer-<api>.<stage>`. */
export const SERVICE_ACCOUNT_PREFIX = 'keystile-enforcer-';

/** What `inject` does, besides building the sidecars. */
export interface InjectOptions extends SidecarOptions {
  /** The stage of workloads without the annotation; both or neither. */
  readonly api?: string | undefined;
  readonly stage?: string | undefined;
  /** The app's port Envoy forwards to: a number, or a container port's name. Default: the first declared. */
  readonly port?: string | undefined;
  /** Watch mode: run the pod as this existing ServiceAccount (not written; the Role is bound to it). */
  readonly serviceAccount?: string | undefined;
  /** Watch mode: write the ServiceAccount, Role and RoleBinding (default true). */
  readonly rbac: boolean;
  /** Watch mode: how many shards of the stage the Role names (default 256, the contract's most). */
  readonly roleShards: number;
}

/** The outcome: the YAML to print, and lines for the user (stderr). */
export interface InjectResult {
  /** The output YAML, or '' when there are errors. */
  readonly output: string;
  /** One line per workload injected. */
  readonly injected: readonly string[];
  readonly warnings: readonly string[];
  /** Problems that stop the command: nothing is printed. */
  readonly errors: readonly string[];
}

type Json = Record<string, unknown>;
type Path = readonly (string | number)[];

/** Where the pod template of each workload kind is. */
const WORKLOADS: Record<string, { apiVersion: string; pod: Path }> = {
  Deployment: { apiVersion: 'apps/v1', pod: ['spec', 'template'] },
  StatefulSet: { apiVersion: 'apps/v1', pod: ['spec', 'template'] },
  DaemonSet: { apiVersion: 'apps/v1', pod: ['spec', 'template'] },
  Pod: { apiVersion: 'v1', pod: [] },
};
/** Workloads whose pods end: a sidecar that never exits would keep them running. */
const NOT_INJECTED = new Set(['Job', 'CronJob']);

/** One object of the input: a document, or an item of a `List` document. */
interface Target {
  readonly doc: Document;
  readonly path: Path;
  readonly obj: Json;
  readonly where: string;
}

/** A workload that was injected: what the Service rewrite and the RBAC need. */
interface Injected {
  /** The document it is in. */
  readonly doc: Document;
  readonly namespace: string | undefined;
  readonly podLabels: Record<string, string>;
  readonly appPort: { readonly number: number; readonly name: string | undefined };
  readonly stage: WorkloadStage;
  readonly serviceAccount: string | undefined;
  readonly emitServiceAccount: boolean;
  /** `Kind namespace/name`. */
  readonly what: string;
  /** What was done, for the user. */
  readonly label: string;
}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const metaOf = (o: Json): Json => (isObj(o['metadata']) ? o['metadata'] : {});
const describe = (o: Json): string => {
  const m = metaOf(o);
  const ns = str(m['namespace']);
  return `${str(o['kind']) ?? '?'} ${ns === undefined ? '' : `${ns}/`}${str(m['name']) ?? '?'}`;
};

/** Parses `api/stage` (two DNS labels); undefined when it is not one. */
export function parseWorkloadStage(text: string): WorkloadStage | undefined {
  const id = parseStageKey(`x/${text.trim()}`);
  return id === undefined ? undefined : { api: id.api, stage: id.stage };
}

/** Injects the sidecars into the workloads of `text` (YAML, one or more documents). */
export function inject(text: string, o: InjectOptions): InjectResult {
  const errors: string[] = [];
  const warnings: string[] = [];
  const injectedLines: string[] = [];
  if ((o.api === undefined) !== (o.stage === undefined)) errors.push('give --api and --stage together');
  const flagStage =
    o.api !== undefined && o.stage !== undefined ? parseWorkloadStage(`${o.api}/${o.stage}`) : undefined;
  if (o.api !== undefined && o.stage !== undefined && flagStage === undefined) {
    errors.push(
      `--api ${o.api} --stage ${o.stage}: each must be a DNS label (lower-case letters, digits, '-')`,
    );
  }

  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) {
    return { output: '', injected: [], warnings: [], errors: ['the input is not YAML'] };
  }
  const kept: Document[] = [];
  const targets: Target[] = [];
  docs.forEach((doc, i) => {
    const where = `document ${i + 1}`;
    if (doc.errors.length > 0) {
      errors.push(`${where}: ${yamlProblem(doc.errors)}`);
      return;
    }
    const js = doc.toJS() as unknown;
    if (js === null && !doc.commentBefore && !doc.comment) return; // an empty document
    if (isObj(js) && isGenerated(js)) return; // what an earlier inject wrote: written again below
    kept.push(doc);
    if (!isObj(js)) return;
    if (js['kind'] === 'List' && Array.isArray(js['items'])) {
      const items = doc.getIn(['items']);
      if (isSeq(items)) {
        // Drop generated items (from the end, so the indexes stay right), then target the rest.
        for (let j = js['items'].length - 1; j >= 0; j--) {
          if (isObj(js['items'][j]) && isGenerated(js['items'][j] as Json)) items.items.splice(j, 1);
        }
      }
      const listJs = doc.toJS() as { items: unknown[] };
      listJs.items.forEach((item, j) => {
        if (isObj(item))
          targets.push({ doc, path: ['items', j], obj: item, where: `${where}, item ${j + 1}` });
      });
      return;
    }
    targets.push({ doc, path: [], obj: js, where });
  });
  if (errors.length > 0) return { output: '', injected: [], warnings, errors };

  const done: Injected[] = [];
  for (const t of targets) {
    const kind = str(t.obj['kind']) ?? '';
    const annotations = metaOf(t.obj)['annotations'];
    const ann = isObj(annotations) ? annotations : {};
    const wanted = str(ann[STAGE_ANNOTATION]);
    if (NOT_INJECTED.has(kind) && (wanted !== undefined || flagStage !== undefined)) {
      warnings.push(`${describe(t.obj)}: not injected: its pods end, and a sidecar would keep them running`);
      continue;
    }
    const spec = WORKLOADS[kind];
    if (spec === undefined || t.obj['apiVersion'] !== spec.apiVersion) continue;
    if (str(ann[OPT_OUT_ANNOTATION]) === 'false') continue;
    let stage = flagStage;
    if (wanted !== undefined) {
      stage = parseWorkloadStage(wanted);
      if (stage === undefined) {
        errors.push(
          `${describe(t.obj)}: annotation ${STAGE_ANNOTATION}: '${wanted}' is not api/stage (one API stage, two DNS labels)`,
        );
        continue;
      }
      if (flagStage !== undefined && (flagStage.api !== stage.api || flagStage.stage !== stage.stage)) {
        warnings.push(
          `${describe(t.obj)}: its annotation ${STAGE_ANNOTATION}: ${wanted} wins over --api and --stage`,
        );
      }
    }
    if (stage === undefined) continue;
    const result = injectWorkload(t, spec.pod, stage, o);
    if (typeof result === 'string') {
      errors.push(result);
      continue;
    }
    done.push(result.injected);
    warnings.push(...result.warnings);
    injectedLines.push(result.injected.label);
  }
  if (errors.length > 0) return { output: '', injected: [], warnings, errors };

  // The Services in front of injected workloads now target Envoy.
  const served = new Set<Injected>();
  for (const t of targets) {
    if (t.obj['kind'] !== 'Service' || t.obj['apiVersion'] !== 'v1') continue;
    for (const w of done) {
      if (rewriteService(t, w)) served.add(w);
    }
  }
  for (const w of done) {
    if (!served.has(w)) {
      warnings.push(
        `${w.what}: no Service in the input selects it on port ${w.appPort.number}: point its Service's targetPort at '${INJECTED.proxyPortName}'`,
      );
    }
  }

  // The RBAC objects go just before the first injected workload: after any Namespace they need, and
  // before the pods that run as their ServiceAccount.
  const generated = (o.mode === 'watch' && o.rbac ? rbacObjects(done, o.roleShards) : []).map(
    (g) => new Document(g, { aliasDuplicateObjects: false }),
  );
  const first = done[0] === undefined ? kept.length : kept.indexOf(done[0].doc);
  const out = [...kept.slice(0, first), ...generated, ...kept.slice(first)]
    .map((d) => {
      // Each document is separated below; a `---` of its own would double it.
      if (d.directives) d.directives.docStart = null;
      return d.toString({ lineWidth: 0 });
    })
    .join('---\n');
  return { output: out, injected: injectedLines, warnings, errors };
}

function isGenerated(o: Json): boolean {
  const annotations = metaOf(o)['annotations'];
  return isObj(annotations) && annotations[GENERATED_ANNOTATION] === GENERATED_BY;
}

/** The app's containers (not the injected ones) and the ports they declare. */
function appPorts(podSpec: Json): { number: number; name: string | undefined }[] {
  const containers: unknown[] = Array.isArray(podSpec['containers']) ? podSpec['containers'] : [];
  return containers
    .filter(isObj)
    .filter((c) => c['name'] !== INJECTED.envoy && c['name'] !== INJECTED.enforcer)
    .flatMap((c): unknown[] => (Array.isArray(c['ports']) ? c['ports'] : []))
    .filter(isObj)
    .flatMap((p) =>
      typeof p['containerPort'] === 'number' ? [{ number: p['containerPort'], name: str(p['name']) }] : [],
    );
}

/** Edits one workload's pod spec in place; returns what it did, or an error line. */
function injectWorkload(
  t: Target,
  podPath: Path,
  stage: WorkloadStage,
  o: InjectOptions,
): { injected: Injected; warnings: string[] } | string {
  const what = describe(t.obj);
  const warnings: string[] = [];
  const pod = podPath.reduce<unknown>((v, k) => (isObj(v) ? v[k] : undefined), t.obj);
  const podSpec = isObj(pod) && isObj(pod['spec']) ? pod['spec'] : undefined;
  if (!isObj(pod) || podSpec === undefined || !Array.isArray(podSpec['containers'])) {
    return `${what}: has no pod spec with containers (${t.where})`;
  }
  const specPath = [...t.path, ...podPath, 'spec'];

  // The app's port.
  const declared = appPorts(podSpec);
  let appPort: { number: number; name: string | undefined } | undefined;
  if (o.port !== undefined) {
    const n = Number(o.port);
    appPort = /^\d+$/.test(o.port)
      ? (declared.find((p) => p.number === n) ?? { number: n, name: undefined })
      : declared.find((p) => p.name === o.port);
    if (appPort === undefined) return `${what}: no container port is named '${o.port}' (--port)`;
  } else {
    appPort = declared[0];
    if (appPort === undefined) {
      return `${what}: its containers declare no port for Envoy to forward to: give --port`;
    }
  }
  if (!Number.isInteger(appPort.number) || appPort.number < 1 || appPort.number > 65535) {
    return `${what}: --port ${o.port ?? ''} is not a port number from 1 to 65535`;
  }
  const ours: [string, number][] = [
    ['--proxy-port', o.ports.proxy],
    ['--proxy-admin-port', o.ports.proxyAdmin],
    ['--proxy-ready-port', o.ports.proxyReady],
    ['--check-port', o.ports.check],
    ['--enforcer-admin-port', o.ports.enforcerAdmin],
  ];
  for (const [flag, port] of ours) {
    if (declared.some((p) => p.number === port) || appPort.number === port) {
      return `${what}: the app uses port ${port}, which the sidecars need: choose another with ${flag}`;
    }
  }

  const ownToken = podSpec['automountServiceAccountToken'] === false;
  const add = sidecars(stage, appPort.number, o, ownToken);
  replaceItems(
    t.doc,
    [...specPath, 'containers'],
    (n) => n === INJECTED.envoy || n === INJECTED.enforcer,
    add.containers,
  );
  replaceItems(
    t.doc,
    [...specPath, 'volumes'],
    (n) => n === INJECTED.countersVolume || n === INJECTED.configVolume || n === INJECTED.tokenVolume,
    add.volumes,
  );

  // The ServiceAccount (watch mode: the enforcer reads its stage's objects as the pod's ServiceAccount);
  // set after the volumes, so a field inject adds always lands in the same place.
  const current = str(podSpec['serviceAccountName']) ?? str(podSpec['serviceAccount']);
  const isOurs = current?.startsWith(SERVICE_ACCOUNT_PREFIX) === true;
  let serviceAccount: string | undefined;
  let emitServiceAccount = false;
  if (o.mode === 'watch') {
    if (o.serviceAccount !== undefined) {
      serviceAccount = o.serviceAccount;
    } else if (current !== undefined && current !== 'default' && !isOurs) {
      serviceAccount = current;
      warnings.push(
        `${what}: the enforcer runs as the pod's ServiceAccount ${current}, which the app shares: the app can read what the enforcer reads (its stage's key hashes and KeyPair SecretKeys). --mode mounted keeps them in the enforcer's container alone`,
      );
    } else if (o.rbac) {
      serviceAccount = `${SERVICE_ACCOUNT_PREFIX}${stage.api}.${stage.stage}`;
      emitServiceAccount = true;
    } else {
      // No RBAC written: a ServiceAccount an earlier inject made goes too.
      serviceAccount = isOurs ? undefined : current;
      warnings.push(
        `${what}: --rbac false: grant the pod's ServiceAccount (${serviceAccount ?? 'default'}) the Role of 'node enforcer/src/kube/rbac.ts --stages ${stage.api}/${stage.stage}', or give --service-account`,
      );
    }
    if (serviceAccount !== undefined && serviceAccount !== current) {
      t.doc.setIn([...specPath, 'serviceAccountName'], t.doc.createNode(serviceAccount));
      if (podSpec['serviceAccount'] !== undefined) t.doc.deleteIn([...specPath, 'serviceAccount']);
    } else if (serviceAccount === undefined && isOurs) {
      t.doc.deleteIn([...specPath, 'serviceAccountName']);
      if (podSpec['serviceAccount'] !== undefined) t.doc.deleteIn([...specPath, 'serviceAccount']);
    }
  } else if (isOurs) {
    // Injected in watch mode before: the pod goes back to the namespace's default ServiceAccount.
    t.doc.deleteIn([...specPath, 'serviceAccountName']);
    if (podSpec['serviceAccount'] !== undefined) t.doc.deleteIn([...specPath, 'serviceAccount']);
  }

  const kind = str(t.obj['kind']);
  const spec = isObj(t.obj['spec']) ? t.obj['spec'] : {};
  const replicas =
    kind === 'DaemonSet'
      ? 2
      : kind === 'Pod'
        ? 1
        : typeof spec['replicas'] === 'number'
          ? spec['replicas']
          : 1;
  if (replicas > 1 || kind === 'DaemonSet') {
    const many = kind === 'DaemonSet' ? 'one pod per node lets through' : `${replicas} replicas let through`;
    warnings.push(
      `${what}: each pod's enforcer counts in its own memory, so ${many} the plan's rate and quota that many times over: share the counters in Redis (docs/enforcer.md, passed with --enforcer-arg), or run one replica`,
    );
  }
  const labels = metaOf(pod)['labels'];
  const namespace = str(metaOf(t.obj)['namespace']);
  return {
    injected: {
      doc: t.doc,
      namespace,
      podLabels: isObj(labels)
        ? Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)]))
        : {},
      appPort,
      stage,
      serviceAccount,
      emitServiceAccount,
      what,
      label: `${what} for ${stage.api}/${stage.stage} (${o.mode} mode, ${o.check === 'grpc' ? 'gRPC' : 'HTTP'} check, Envoy on ${o.ports.proxy} in front of port ${appPort.number})`,
    },
    warnings,
  };
}

/** Removes the items of the sequence at `path` whose `name` matches, and appends `items`. */
function replaceItems(
  doc: Document,
  path: Path,
  ours: (name: string) => boolean,
  items: readonly Json[],
): void {
  const seq = doc.getIn(path, true);
  if (!isSeq(seq)) {
    if (items.length > 0) doc.setIn(path, doc.createNode(items, { aliasDuplicateObjects: false }));
    return;
  }
  seq.items = seq.items.filter((item) => {
    const name = isMap(item) ? item.get('name') : undefined;
    return !(typeof name === 'string' && ours(name));
  });
  for (const item of items) seq.items.push(doc.createNode(item, { aliasDuplicateObjects: false }));
}

/** Points the Service's ports that reach the app's port at Envoy; returns whether it selects the workload. */
function rewriteService(t: Target, w: Injected): boolean {
  if (str(metaOf(t.obj)['namespace']) !== w.namespace) return false;
  const spec = isObj(t.obj['spec']) ? t.obj['spec'] : {};
  if (spec['type'] === 'ExternalName') return false;
  const selector = isObj(spec['selector']) ? spec['selector'] : {};
  const entries = Object.entries(selector);
  if (entries.length === 0 || !entries.every(([k, v]) => w.podLabels[k] === String(v))) return false;
  const ports = Array.isArray(spec['ports']) ? spec['ports'] : [];
  let matched = false;
  ports.forEach((p, i) => {
    if (!isObj(p)) return;
    const target = p['targetPort'] ?? p['port'];
    if (target === INJECTED.proxyPortName) {
      matched = true; // already injected
      return;
    }
    const reaches =
      target === w.appPort.number ||
      (typeof target === 'string' && (target === String(w.appPort.number) || target === w.appPort.name));
    if (reaches) {
      t.doc.setIn([...t.path, 'spec', 'ports', i, 'targetPort'], t.doc.createNode(INJECTED.proxyPortName));
      matched = true;
    }
  });
  return matched;
}

/**
 * The ServiceAccounts, Roles and RoleBindings watch mode needs: per namespace and stage one Role (its
 * rules from `enforcerRbac`: the stage's objects by name, nothing else) bound to every ServiceAccount that
 * serves the stage. Sorted, so the output does not depend on the order of the input.
 */
function rbacObjects(done: readonly Injected[], roleShards: number): Json[] {
  const labels = {
    'app.kubernetes.io/name': 'keystile-enforcer',
    'app.kubernetes.io/managed-by': 'keystile',
  };
  const metadata = (name: string, namespace: string | undefined): Json => ({
    name,
    ...(namespace !== undefined && { namespace }),
    labels,
    annotations: { [GENERATED_ANNOTATION]: GENERATED_BY },
  });
  const accounts = new Map<string, Json>();
  const roles = new Map<
    string,
    { role: Json; subjects: Map<string, Json>; name: string; namespace: string | undefined }
  >();
  for (const w of done) {
    if (w.serviceAccount === undefined) continue;
    const nsKey = w.namespace ?? '';
    if (w.emitServiceAccount) {
      accounts.set(`${nsKey}/${w.serviceAccount}`, {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: metadata(w.serviceAccount, w.namespace),
      });
    }
    const name = `${SERVICE_ACCOUNT_PREFIX}${w.stage.api}.${w.stage.stage}`;
    const key = `${nsKey}/${name}`;
    let entry = roles.get(key);
    if (entry === undefined) {
      const role = enforcerRbac({
        namespace: w.namespace ?? 'default',
        stages: [w.stage],
        maxShards: roleShards,
      }).find((d) => d['kind'] === 'Role');
      entry = {
        role: { ...role, metadata: metadata(name, w.namespace) },
        subjects: new Map(),
        name,
        namespace: w.namespace,
      };
      roles.set(key, entry);
    }
    entry.subjects.set(w.serviceAccount, {
      kind: 'ServiceAccount',
      name: w.serviceAccount,
      ...(w.namespace !== undefined && { namespace: w.namespace }),
    });
  }
  const sorted = <T>(m: Map<string, T>): T[] =>
    [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  return [
    ...sorted(accounts),
    ...sorted(roles).flatMap((r) => [
      r.role,
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: metadata(r.name, r.namespace),
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: r.name },
        subjects: sorted(r.subjects),
      },
    ]),
  ];
}
