import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GroundContext } from './context.ts';
import { waitReady } from './context.ts';
import { get } from './http-probe.ts';
import { repoRoot } from './paths.ts';
import { OPERATOR_MALLOC_ARENA_MAX, OPERATOR_NODE_OPTIONS } from '../../operator/src/runtime-settings.ts';

// Keystile's own parts on the test ground: the CRDs and the operator's RBAC from the shipped files, and
// the operator run as its ServiceAccount (out of cluster, with a TokenRequest token), as the chart
// would run it in a pod.

/** The namespace the operator's ServiceAccount lives in. */
export const SYSTEM_NAMESPACE = 'keystile-system';
/** The operator's ServiceAccount. */
export const OPERATOR_SERVICE_ACCOUNT = 'keystile-operator';

function kubectl(ctx: GroundContext, kubeconfig: string, args: readonly string[], input?: string): string {
  return execFileSync(ctx.bins.kubectl, args, {
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: kubeconfig },
    ...(input !== undefined && { input }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Applies the CRDs (crds/*.yaml) and the operator's RBAC, and waits for the CRDs to be Established. */
export function installKeystile(ctx: GroundContext, kubeconfig: string): void {
  kubectl(
    ctx,
    kubeconfig,
    ['apply', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: SYSTEM_NAMESPACE } }),
  );
  kubectl(ctx, kubeconfig, ['apply', '--server-side', '--force-conflicts', '-f', join(repoRoot, 'crds')]);
  kubectl(ctx, kubeconfig, [
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd',
    '-l',
    'app.kubernetes.io/part-of=keystile',
  ]);
  kubectl(ctx, kubeconfig, [
    'apply',
    '--server-side',
    '--force-conflicts',
    '-f',
    join(repoRoot, 'operator/deploy/rbac.yaml'),
  ]);
}

/**
 * Writes a kubeconfig that authenticates as a ServiceAccount with a TokenRequest token (the identity a pod
 * of that ServiceAccount would have), and returns its path.
 */
export function serviceAccountKubeconfig(
  ctx: GroundContext,
  adminKubeconfig: string,
  namespace: string,
  serviceAccount: string,
  file: string,
): string {
  const token = kubectl(ctx, adminKubeconfig, [
    '-n',
    namespace,
    'create',
    'token',
    serviceAccount,
    '--duration=24h',
  ]).trim();
  const view = JSON.parse(
    kubectl(ctx, adminKubeconfig, ['config', 'view', '--raw', '--minify', '-o', 'json']),
  ) as {
    clusters: { name: string; cluster: Record<string, unknown> }[];
  };
  const cluster = view.clusters[0];
  if (!cluster) throw new Error('the admin kubeconfig names no cluster');
  const user = `system:serviceaccount:${namespace}:${serviceAccount}`;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [cluster],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: user, context: { cluster: cluster.name, user, namespace } }],
    'current-context': user,
  };
  writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return file;
}

/** How to run one operator process. */
export interface OperatorProcess {
  readonly name: string;
  readonly healthPort: number;
  readonly kubeconfig: string;
  readonly env?: Record<string, string>;
  /** The script to run: the operator's sources by default; the benchmarks give the compiled one. */
  readonly entry?: string;
}

/**
 * A Role and RoleBinding letting the operator's ServiceAccount hold one more Lease: operator/deploy/rbac.yaml
 * names only the Lease `keystile-operator`, and a suite running an operator of its own beside the local
 * one gives it a Lease of its own. Apply it before starting that operator; `leaseGrantName` deletes it.
 */
export function leaseGrant(leaseName: string): string {
  const name = leaseGrantName(leaseName);
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name, namespace: SYSTEM_NAMESPACE },
        rules: [
          {
            apiGroups: ['coordination.k8s.io'],
            resources: ['leases'],
            resourceNames: [leaseName],
            verbs: ['get', 'update'],
          },
        ],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name, namespace: SYSTEM_NAMESPACE },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [{ kind: 'ServiceAccount', name: OPERATOR_SERVICE_ACCOUNT, namespace: SYSTEM_NAMESPACE }],
      },
    ],
  });
}

/** The name of {@link leaseGrant}'s Role and RoleBinding. */
export function leaseGrantName(leaseName: string): string {
  return `lease-${leaseName}`;
}

/** Starts the operator (node operator/src/main.ts, or `entry`) as a background process of the local system. */
export function startOperatorProcess(ctx: GroundContext, p: OperatorProcess): void {
  ctx.procs.start({
    name: p.name,
    command: process.execPath,
    args: [p.entry ?? join(repoRoot, 'operator/src/main.ts')],
    env: {
      ...process.env,
      KUBECONFIG: p.kubeconfig,
      KEYSTILE_HEALTH_PORT: String(p.healthPort),
      KEYSTILE_HEALTH_HOST: '127.0.0.1',
      KEYSTILE_LEASE_NAMESPACE: SYSTEM_NAMESPACE,
      KEYSTILE_IDENTITY: p.name,
      KEYSTILE_LEASE_DURATION_SECONDS: '6',
      KEYSTILE_LEASE_RENEW_SECONDS: '2',
      NODE_OPTIONS: OPERATOR_NODE_OPTIONS,
      MALLOC_ARENA_MAX: OPERATOR_MALLOC_ARENA_MAX,
      ...p.env,
    },
  });
}

/** Waits until an operator process's caches have synced (/readyz). */
export async function operatorReady(
  ctx: GroundContext,
  p: OperatorProcess,
  timeoutMs = 30_000,
): Promise<void> {
  await waitReady(
    ctx,
    p.name,
    async () => (await get(`http://127.0.0.1:${p.healthPort}/readyz`)).status === 200,
    timeoutMs,
  );
}
