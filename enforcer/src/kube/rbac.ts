/**
 * The RBAC an enforcer in watch mode needs, and no more: `get`, `list` and `watch` on its stages'
 * rendered ConfigMaps and Secrets, each named in `resourceNames` (the enforcer lists and watches with
 * `fieldSelector=metadata.name=<name>`, which is how the API server authorizes a list or watch against
 * resourceNames). It can never read another Secret of the namespace: not a customer's key Secret, not
 * anything else.
 *
 *   node enforcer/src/kube/rbac.ts --namespace shop --stages orders/prod,orders/beta [--max-shards 256] [--name keystile-enforcer]
 */
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { MAX_SHARDS, objectNames } from '../../../contract/src/identity.ts';

/** What the Role covers. */
export interface EnforcerRbacOptions {
  readonly namespace: string;
  /** `api/stage` pairs. */
  readonly stages: readonly { readonly api: string; readonly stage: string }[];
  /** The shards a stage may grow to (default 256, the contract's most: 512,000 keys a stage). */
  readonly maxShards?: number;
  /** The Role's, RoleBinding's and ServiceAccount's name (default keystile-enforcer). */
  readonly name?: string;
}

/** A ServiceAccount, a Role naming every object the stages may have, and their RoleBinding. */
export function enforcerRbac(o: EnforcerRbacOptions): Record<string, unknown>[] {
  const name = o.name ?? 'keystile-enforcer';
  const shards = Array.from({ length: o.maxShards ?? MAX_SHARDS }, (_, i) => i);
  const configMaps: string[] = [];
  const secrets: string[] = [];
  for (const s of o.stages) {
    const id = { namespace: o.namespace, ...s };
    configMaps.push(objectNames.index(id), ...shards.map((i) => objectNames.keys(id, i)));
    secrets.push(...shards.map((i) => objectNames.secrets(id, i)));
  }
  const verbs = ['get', 'list', 'watch'];
  const labels = {
    'app.kubernetes.io/name': 'keystile-enforcer',
    'app.kubernetes.io/managed-by': 'keystile',
  };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: o.namespace, labels } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name, namespace: o.namespace, labels },
      rules: [
        { apiGroups: [''], resources: ['configmaps'], resourceNames: configMaps, verbs },
        { apiGroups: [''], resources: ['secrets'], resourceNames: secrets, verbs },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name, namespace: o.namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: o.namespace }],
    },
  ];
}

/** The objects as a YAML stream. */
export function enforcerRbacYaml(o: EnforcerRbacOptions): string {
  return enforcerRbac(o)
    .map((d) => stringify(d, { aliasDuplicateObjects: false, singleQuote: true }))
    .join('---\n');
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      namespace: { type: 'string' },
      stages: { type: 'string' },
      'max-shards': { type: 'string', default: String(MAX_SHARDS) },
      name: { type: 'string', default: 'keystile-enforcer' },
    },
  });
  if (!values.namespace || !values.stages) {
    console.error(
      'usage: node enforcer/src/kube/rbac.ts --namespace NS --stages api/stage,... [--max-shards N] [--name NAME]',
    );
    process.exit(2);
  }
  const stages = values.stages.split(',').map((pair) => {
    const [api = '', stage = ''] = pair.trim().split('/');
    return { api, stage };
  });
  process.stdout.write(
    enforcerRbacYaml({
      namespace: values.namespace,
      stages,
      maxShards: Number(values['max-shards']),
      name: values.name,
    }),
  );
}
