import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The repository root. */
export const repoRoot: string = resolve(import.meta.dirname, '..', '..');

/** Where the local system keeps its state: certificates, kubeconfig, data, logs, pid files, local.env. */
export const stateDir: string = process.env['KEYSTILE_STATE_DIR'] ?? join(repoRoot, '.keystile');

/** Absolute paths of the real binaries the local system runs. */
export interface Binaries {
  readonly cache: string;
  readonly kubeApiserver: string;
  readonly kubeControllerManager: string;
  readonly kubectl: string;
  readonly etcd: string;
  readonly helm: string;
  readonly envoy: string;
  readonly redisServer: string;
  readonly prometheus: string;
  readonly promtool: string;
}

let cached: Binaries | undefined;

/**
 * Resolves the binaries' paths as test/ground/install.sh lays them out (it is the one place that knows
 * the cache layout and versions). Does not install anything: see {@link missingBinaries}.
 */
export function binaries(): Binaries {
  if (cached) return cached;
  const out = execFileSync('bash', [join(repoRoot, 'test/ground/install.sh'), 'paths'], { encoding: 'utf8' });
  const kv = new Map<string, string>();
  for (const line of out.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const get = (k: string): string => {
    const v = kv.get(k);
    if (v === undefined) throw new Error(`install.sh paths did not print ${k}`);
    return v;
  };
  cached = Object.freeze({
    cache: get('KEYSTILE_CACHE'),
    kubeApiserver: get('KUBE_APISERVER'),
    kubeControllerManager: get('KUBE_CONTROLLER_MANAGER'),
    kubectl: get('KUBECTL'),
    etcd: get('ETCD'),
    helm: get('HELM'),
    envoy: get('ENVOY'),
    redisServer: get('REDIS_SERVER'),
    prometheus: get('PROMETHEUS'),
    promtool: get('PROMTOOL'),
  });
  return cached;
}

/** The versions test/ground/versions.sh pins (KUBE_VERSION, ETCD_VERSION, HELM_VERSION, ENVOY_VERSION). */
export function groundVersions(): Readonly<Record<string, string>> {
  const text = readFileSync(join(repoRoot, 'test/ground/versions.sh'), 'utf8');
  const versions: Record<string, string> = {};
  for (const [, key, value] of text.matchAll(/^(\w+)=(\S+)$/gm)) {
    if (key !== undefined && value !== undefined) versions[key] = value;
  }
  return Object.freeze(versions);
}
