import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type GroundContext, partDir, waitReady } from './context.ts';
import { get } from './http-probe.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { ensurePki, type Pki } from './pki.ts';

/** The controllers kube-controller-manager runs here: enough for owner references and namespaces to behave. */
export const CONTROLLERS = [
  'garbage-collector-controller',
  'namespace-controller',
  'serviceaccount-controller',
  'root-ca-certificate-publisher-controller',
] as const;

/** How to reach the local control plane once it runs. */
export interface ControlPlane {
  readonly server: string;
  readonly kubeconfig: string;
  readonly pki: Pki;
}

/** The admin kubeconfig's path: written for tests and for people (`export KUBECONFIG=...`). */
export function kubeconfigPath(ctx: GroundContext): string {
  return join(ctx.stateDir, 'kubeconfig');
}

/** Starts etcd (3.6, built from its Go module) on loopback. Fast and not durable: a test store. */
export function startEtcd(ctx: GroundContext): void {
  const dir = partDir(ctx, 'etcd');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const client = `http://127.0.0.1:${ctx.ports.etcdClient}`;
  const peer = `http://127.0.0.1:${ctx.ports.etcdPeer}`;
  ctx.procs.start({
    name: 'etcd',
    command: ctx.bins.etcd,
    args: [
      '--name=keystile',
      `--data-dir=${dir}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=keystile=${peer}`,
      // A test store: skipping fsync makes writes fast and loses nothing unless the machine crashes.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ],
  });
}

/** Waits until etcd answers its health endpoint. */
export async function etcdReady(ctx: GroundContext): Promise<void> {
  await waitReady(ctx, 'etcd', async () => {
    const res = await get(`http://127.0.0.1:${ctx.ports.etcdClient}/health`);
    return res.status === 200;
  });
}

/**
 * Starts kube-apiserver the way controller-runtime's envtest does: loopback only, certificates made at
 * start, client-certificate authentication, RBAC authorization, and service-account issuer and keys so
 * TokenRequest works.
 */
export function startApiserver(ctx: GroundContext): ControlPlane {
  const pki = ensurePki(ctx.stateDir);
  const server = `https://127.0.0.1:${ctx.ports.apiserver}`;
  const certDir = partDir(ctx, 'apiserver');
  mkdirSync(certDir, { recursive: true });
  ctx.procs.start({
    name: 'kube-apiserver',
    command: ctx.bins.kubeApiserver,
    args: [
      `--etcd-servers=http://127.0.0.1:${ctx.ports.etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${ctx.ports.apiserver}`,
      `--cert-dir=${certDir}`,
      `--tls-cert-file=${pki.servingCert}`,
      `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caCert}`,
      '--authorization-mode=RBAC',
      `--service-account-issuer=${server}`,
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      '--endpoint-reconciler-type=none',
      '--v=1',
    ],
  });
  const kubeconfig = kubeconfigPath(ctx);
  writeKubeconfig(kubeconfig, server, pki.caCert, {
    name: 'keystile-admin',
    cert: pki.adminCert,
    key: pki.adminKey,
  });
  return { server, kubeconfig, pki };
}

/** Waits until the API server reports ready (every post-start hook done, RBAC bootstrapped). */
export async function apiserverReady(ctx: GroundContext, cp: ControlPlane): Promise<void> {
  const tls = { ca: cp.pki.caCert, cert: cp.pki.adminCert, key: cp.pki.adminKey };
  await waitReady(
    ctx,
    'kube-apiserver',
    async () => (await get(`${cp.server}/readyz`, { tls })).status === 200,
    60_000,
  );
}

/**
 * Starts kube-controller-manager as `system:kube-controller-manager`, each controller under its own
 * service account as in a real cluster, running the controllers in {@link CONTROLLERS}.
 */
export function startControllerManager(ctx: GroundContext, cp: ControlPlane): void {
  const dir = partDir(ctx, 'controller-manager');
  mkdirSync(dir, { recursive: true });
  const kubeconfig = join(dir, 'kubeconfig');
  writeKubeconfig(kubeconfig, cp.server, cp.pki.caCert, {
    name: 'system:kube-controller-manager',
    cert: cp.pki.controllerManagerCert,
    key: cp.pki.controllerManagerKey,
  });
  ctx.procs.start({
    name: 'kube-controller-manager',
    command: ctx.bins.kubeControllerManager,
    args: [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${ctx.ports.controllerManager}`,
      `--cert-dir=${dir}`,
      `--controllers=${CONTROLLERS.join(',')}`,
      '--use-service-account-credentials=true',
      `--root-ca-file=${cp.pki.caCert}`,
      `--service-account-private-key-file=${cp.pki.serviceAccountKey}`,
      '--leader-elect=false',
      '--v=1',
    ],
  });
}

/** Waits until kube-controller-manager serves /healthz (its controllers are then started). */
export async function controllerManagerReady(ctx: GroundContext): Promise<void> {
  await waitReady(ctx, 'kube-controller-manager', async () => {
    // It serves a self-signed certificate of its own, on loopback only.
    const res = await get(`https://127.0.0.1:${ctx.ports.controllerManager}/healthz`, { tls: 'insecure' });
    return res.status === 200;
  });
}
