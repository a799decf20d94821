import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import type { GroundInfo } from './harness.ts';
import { kubeconfigPath } from './controlplane.ts';
import { groundContext, startLocalSystem, stopLocalSystem } from './local-system.ts';

/**
 * Starts the local system for the e2e suites (the same start as `npm start`), or reuses it when it already
 * runs. When KUBECONFIG names another cluster (kind, a real one), that cluster is used instead of the local
 * control plane; Envoy, Redis and Prometheus still run locally. Stops only what it started.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const ctx = groundContext();
  const given = process.env['KUBECONFIG'];
  const external =
    given !== undefined && given !== '' && resolve(given) !== resolve(kubeconfigPath(ctx))
      ? given
      : undefined;
  const system = await startLocalSystem({ externalKubeconfig: external });
  const info: GroundInfo = {
    kubeconfig: system.kubeconfig,
    localControlPlane: system.localControlPlane,
    envoyUrl: system.envoyUrl,
    envoyAdminUrl: system.envoyAdminUrl,
    upstreamUrl: system.upstreamUrl,
    redisUrl: system.redisUrl,
    prometheusUrl: system.prometheusUrl,
    operatorUrl: system.operatorUrl,
    operatorKubeconfig: system.operatorKubeconfig,
    kubectl: system.bins.kubectl,
    helm: system.bins.helm,
    promtool: system.bins.promtool,
    stateDir: system.stateDir,
    runId: randomBytes(3).toString('hex'),
  };
  project.provide('ground', info);
  console.log(
    `[e2e] local system ready in ${system.seconds.toFixed(1)} s (${system.started.length ? `started ${system.started.join(', ')}` : 'reused'})` +
      (external ? `; cluster from KUBECONFIG=${external}` : ''),
  );
  return async () => {
    if (system.started.length > 0) await stopLocalSystem(system.started);
  };
}
