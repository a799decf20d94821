/**
 * Starts the enforcer as a process of its own (for the local system, end-to-end suites and benchmarks):
 * the same `node enforcer/src/main.ts` a user runs, on ports chosen by the caller (see {@link freePort}),
 * resolved once its admin port says it is ready.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The enforcer's entry point. */
export const ENFORCER_MAIN: string = join(import.meta.dirname, 'main.ts');

/**
 * Where {@link freePort} looks: below Linux's ephemeral range (32768-60999 by default), whose ports any
 * outgoing connection may take between a port being found free and bound (a Sentinel connecting out
 * took one in a test run), and clear of the local system's (KEYSTILE_PORT_BASE, 17000 by default).
 */
const FREE_PORTS = { from: 20_000, to: 27_000 } as const;

/** Whether a loopback listener can bind `port` now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port the kernel picks (in its ephemeral range). */
function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/**
 * The ports this process has handed out. A caller often takes several before binding any (a test picks
 * an enforcer's, its Envoy's and their admin ports at once), and a port found free but not yet bound
 * would be found free again: never handing one out twice keeps them apart.
 */
const handedOut = new Set<number>();

/**
 * A free loopback TCP port, released again for the caller to bind soon after: one at random from
 * {@link FREE_PORTS} that binds now and this process has not handed out before, else (all tries
 * taken) one the kernel picks.
 */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = FREE_PORTS.from + Math.floor(Math.random() * (FREE_PORTS.to - FREE_PORTS.from));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (await canListen(port)) return port;
  }
  for (;;) {
    const port = await kernelPort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** How to start an enforcer. */
export interface EnforcerProcessOptions {
  /** Standalone mode: the file `keystile render` wrote. */
  readonly config?: string;
  /** Mounted mode: the directory of mounted objects. */
  readonly configDir?: string;
  /** Watch mode: the namespace and `api/stage` pairs (KUBECONFIG comes from `env`). */
  readonly watch?: { readonly namespace: string; readonly stages: readonly string[] };
  /** The ports (each defaults to a free one). */
  readonly httpPort?: number;
  readonly grpcPort?: number;
  readonly adminPort?: number;
  /** Where the counters are checkpointed. */
  readonly countersFile?: string;
  /** More flags, e.g. ['--problem-json']. */
  readonly args?: readonly string[];
  /** More environment (e.g. KUBECONFIG). */
  readonly env?: Readonly<Record<string, string>>;
  /** The process's log (stdout and stderr); default: discarded. */
  readonly logFile?: string;
  /** Node to run it with (default: this process's). */
  readonly node?: string;
  /** Options for Node itself, e.g. ['--max-semi-space-size=4']. */
  readonly nodeArgs?: readonly string[];
  /** The entry point (default enforcer/src/main.ts; the built dist/enforcer/src/main.js runs the same). */
  readonly entry?: string;
  /** Pin to CPUs with taskset, e.g. '0' (benchmarks). */
  readonly cpus?: string;
  /** How long to wait for /readyz (default 30 s). Set `waitReady: false` to return once it listens. */
  readonly readyTimeoutMs?: number;
  readonly waitReady?: boolean;
}

/** A running enforcer. */
export interface EnforcerProcess {
  readonly pid: number;
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly adminPort: number;
  readonly child: ChildProcess;
  /** Stops it with SIGTERM (it checkpoints its counters) and waits until it has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Whether it is still running. */
  running(): boolean;
}

/** Starts an enforcer process and waits until it is ready (a config loaded) or at least listening. */
export async function startEnforcerProcess(opts: EnforcerProcessOptions): Promise<EnforcerProcess> {
  const httpPort = opts.httpPort ?? (await freePort());
  const grpcPort = opts.grpcPort ?? (await freePort());
  const adminPort = opts.adminPort ?? (await freePort());
  const args = [
    ...(opts.nodeArgs ?? []),
    opts.entry ?? ENFORCER_MAIN,
    ...(opts.config ? ['--config', opts.config] : []),
    ...(opts.configDir ? ['--config-dir', opts.configDir] : []),
    ...(opts.watch
      ? ['--watch-namespace', opts.watch.namespace, '--stages', opts.watch.stages.join(',')]
      : []),
    ...(opts.countersFile ? ['--counters-file', opts.countersFile] : []),
    '--http-port',
    String(httpPort),
    '--grpc-port',
    String(grpcPort),
    '--admin-port',
    String(adminPort),
    '--admin-host',
    '127.0.0.1',
    ...(opts.args ?? []),
  ];
  const node = opts.node ?? process.execPath;
  const [command, argv] = opts.cpus ? ['taskset', ['-c', opts.cpus, node, ...args]] : [node, args];
  const child = spawn(command, argv, {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', opts.logFile ? 'pipe' : 'ignore', opts.logFile ? 'pipe' : 'ignore'],
  });
  if (opts.logFile) {
    const log = createWriteStream(opts.logFile, { flags: 'a' });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
  }
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.on('exit', () => {
      exited = true;
      resolve();
    });
  });
  const proc: EnforcerProcess = {
    pid: child.pid ?? -1,
    httpPort,
    grpcPort,
    adminPort,
    child,
    running: () => !exited,
    stop: async (signal = 'SIGTERM') => {
      if (!exited) child.kill(signal);
      await exit;
    },
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  const path = opts.waitReady === false ? '/healthz' : '/readyz';
  for (;;) {
    if (exited) {
      throw new Error(
        `the enforcer exited before it was ready${opts.logFile ? `; see ${opts.logFile}` : ''}`,
      );
    }
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}${path}`);
      if (res.status === 200) return proc;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await proc.stop('SIGKILL');
      throw new Error(`the enforcer was not ready after ${opts.readyTimeoutMs ?? 30_000} ms`);
    }
    await sleep(50);
  }
}
