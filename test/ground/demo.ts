import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { envoyWithEnforcer } from '../../enforcer/envoy/bootstrap.ts';
import { ENFORCER_MAIN } from '../../enforcer/src/launch.ts';
import { enforcerRbac } from '../../enforcer/src/kube/rbac.ts';
import { type GroundContext, partDir, waitReady } from './context.ts';
import { get } from './http-probe.ts';
import { serviceAccountKubeconfig } from './keystile.ts';
import { addPrometheusTarget } from './prometheus.ts';

// The demo `npm start` shows: the enforcer in watch mode on the examples' rendered objects (the operator's
// real output), as the keystile-enforcer ServiceAccount whose Role names only those objects, and Envoy
// asking it before every request: HTTP ext_authz for the orders API, gRPC ext_authz for payments.

/** Where `npm start` applies the examples. */
export const DEMO_NAMESPACE = 'keystile-demo';

/** The examples' API stages, and the Envoy listener of each (an offset from KEYSTILE_PORT_BASE). */
export const DEMO_STAGES = [
  { api: 'orders', stage: 'prod', offset: 180, mode: 'http' },
  { api: 'orders', stage: 'beta', offset: 181, mode: 'http' },
  { api: 'payments', stage: 'release', offset: 182, mode: 'grpc' },
  { api: 'payments', stage: 'prepub', offset: 183, mode: 'grpc' },
  { api: 'payments', stage: 'test', offset: 184, mode: 'grpc' },
] as const;

/** What the demo serves. */
export interface Demo {
  /** orders/prod, behind HTTP ext_authz. */
  readonly ordersUrl: string;
  /** payments/release, behind gRPC ext_authz. */
  readonly paymentsUrl: string;
  readonly enforcerAdminUrl: string;
}

/** Starts (or finds running) the demo's enforcer and its two Envoys. */
export async function startDemo(ctx: GroundContext, adminKubeconfig: string): Promise<Demo> {
  const base = ctx.ports.apiserver - 443;
  const port = (offset: number): number => base + offset;
  const http = {
    check: ctx.ports.demoEnforcerHttp,
    grpc: ctx.ports.demoEnforcerGrpc,
    admin: ctx.ports.demoEnforcerAdmin,
    selfService: ctx.ports.demoEnforcerSelfService,
  };
  const dir = partDir(ctx, 'demo');
  mkdirSync(dir, { recursive: true });

  if (!ctx.procs.running('enforcer')) {
    const rbac = enforcerRbac({
      namespace: DEMO_NAMESPACE,
      stages: DEMO_STAGES.map((s) => ({ api: s.api, stage: s.stage })),
      maxShards: 8,
    });
    execFileSync(ctx.bins.kubectl, ['apply', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rbac }),
      env: { ...process.env, KUBECONFIG: adminKubeconfig },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    const kubeconfig = serviceAccountKubeconfig(
      ctx,
      adminKubeconfig,
      DEMO_NAMESPACE,
      'keystile-enforcer',
      join(dir, 'enforcer.kubeconfig'),
    );
    ctx.procs.start({
      name: 'enforcer',
      command: process.execPath,
      args: [
        ENFORCER_MAIN,
        '--watch-namespace',
        DEMO_NAMESPACE,
        '--stages',
        DEMO_STAGES.map((s) => `${s.api}/${s.stage}`).join(','),
        '--http-port',
        String(http.check),
        '--grpc-port',
        String(http.grpc),
        '--admin-port',
        String(http.admin),
        '--admin-host',
        '127.0.0.1',
        '--self-service-port',
        String(http.selfService),
        '--counters-file',
        join(dir, 'counters.json'),
      ],
      env: { ...process.env, KUBECONFIG: kubeconfig },
    });
  }
  await waitReady(
    ctx,
    'enforcer',
    // Ready means a config is loaded; the demo also waits until every stage of the examples has arrived.
    async () => {
      const metrics = await get(`http://127.0.0.1:${http.admin}/metrics`);
      return /^keystile_config_stages (\d+)$/m.exec(metrics.body)?.[1] === String(DEMO_STAGES.length);
    },
    30_000,
  );
  addPrometheusTarget(ctx, 'keystile-enforcer', http.admin);

  for (const mode of ['http', 'grpc'] as const) {
    const name = `envoy-${mode}`;
    if (ctx.procs.running(name)) continue;
    const config = envoyWithEnforcer({
      mode,
      listeners: DEMO_STAGES.filter((s) => s.mode === mode).map((s) => ({
        port: port(s.offset),
        stage: `${DEMO_NAMESPACE}/${s.api}/${s.stage}`,
      })),
      adminPort: port(mode === 'http' ? 902 : 903),
      upstreamPort: ctx.ports.upstream,
      enforcerHttpPort: http.check,
      enforcerGrpcPort: http.grpc,
      enforcerSelfServicePort: http.selfService,
      timeout: '1s',
    });
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, stringify(config));
    ctx.procs.start({
      name,
      command: ctx.bins.envoy,
      args: ['-c', file, '--disable-hot-restart', '--concurrency', '1', '--log-level', 'warn'],
    });
    const admin = port(mode === 'http' ? 902 : 903);
    await waitReady(ctx, name, async () => (await get(`http://127.0.0.1:${admin}/ready`)).status === 200);
  }
  return {
    ordersUrl: `http://127.0.0.1:${port(180)}`,
    paymentsUrl: `http://127.0.0.1:${port(182)}`,
    enforcerAdminUrl: `http://127.0.0.1:${http.admin}`,
  };
}
