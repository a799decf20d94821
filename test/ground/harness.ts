import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { inject } from 'vitest';

/** What the e2e global setup hands every suite (see global-setup.ts). */
export interface GroundInfo {
  readonly kubeconfig: string;
  readonly localControlPlane: boolean;
  readonly envoyUrl: string;
  readonly envoyAdminUrl: string;
  readonly upstreamUrl: string;
  readonly redisUrl: string;
  readonly prometheusUrl: string;
  readonly operatorUrl: string;
  readonly operatorKubeconfig: string;
  readonly kubectl: string;
  readonly helm: string;
  readonly promtool: string;
  readonly stateDir: string;
  /** A short id for this run: suites name and label what they create with it. */
  readonly runId: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    ground: GroundInfo;
  }
}

/** The local system (or the cluster KUBECONFIG named) this run's e2e suites use. */
export function ground(): GroundInfo {
  return inject('ground');
}

const execFileAsync = promisify(execFile);

/** Runs kubectl against the test cluster, as a user would; rejects with kubectl's stderr on failure. */
export async function kubectl(args: readonly string[], input?: string): Promise<string> {
  const g = ground();
  const child = execFileAsync(g.kubectl, args, {
    env: { ...process.env, KUBECONFIG: g.kubeconfig },
    maxBuffer: 64 << 20,
  });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  try {
    const { stdout } = await child;
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`kubectl ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** Parses kubectl's `-o json` output. */
export async function kubectlJson<T>(args: readonly string[]): Promise<T> {
  return JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
}

/** A namespace of this suite's own, labelled with the run id; returns its name. */
export async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${ground().runId}`;
  await kubectl(['create', 'namespace', name]);
  await kubectl(['label', 'namespace', name, `keystile.dev/test-run=${ground().runId}`]);
  return name;
}
