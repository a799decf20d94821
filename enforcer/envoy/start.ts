/**
 * Starts Envoy on a bootstrap from bootstrap.ts (for end-to-end suites, benchmarks and the local
 * system), and waits until its admin says it is ready.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import type { EnvoyConfig } from './bootstrap.ts';

/** A running Envoy. */
export interface EnvoyProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** The bootstrap file it runs. */
  readonly configFile: string;
  /** Stops it and waits until it has exited. */
  stop(): Promise<void>;
}

/** How to start Envoy. */
export interface StartEnvoyOptions {
  /** The envoy binary (the test ground's: `bash test/ground/install.sh paths` prints ENVOY=...). */
  readonly binary: string;
  readonly config: EnvoyConfig;
  /** Where to write the bootstrap and the log (default: a new temporary directory). */
  readonly dir?: string;
  /** Envoy's worker threads (default 1). */
  readonly concurrency?: number;
  /** Pin to CPUs with taskset, e.g. '1' (benchmarks). */
  readonly cpus?: string;
  /** Default 'warn'. */
  readonly logLevel?: string;
}

/** Starts Envoy and resolves once its admin `/ready` answers 200. */
export async function startEnvoy(o: StartEnvoyOptions): Promise<EnvoyProcess> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'keystile-envoy-'));
  const configFile = join(dir, 'envoy.yaml');
  writeFileSync(configFile, stringify(o.config));
  const args = [
    '-c',
    configFile,
    // Hot restart shares memory between Envoys on a machine; off, so several can run side by side.
    '--disable-hot-restart',
    '--concurrency',
    String(o.concurrency ?? 1),
    '--log-level',
    o.logLevel ?? 'warn',
  ];
  const [command, argv] = o.cpus ? ['taskset', ['-c', o.cpus, o.binary, ...args]] : [o.binary, args];
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(join(dir, 'envoy.log'));
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.on('exit', () => {
      exited = true;
      resolve();
    });
  });
  const stop = async (): Promise<void> => {
    if (!exited) child.kill('SIGTERM');
    await exit;
  };
  const admin = (o.config['admin'] as { address: { socket_address: { port_value: number } } }).address
    .socket_address.port_value;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`envoy exited before it was ready; see ${join(dir, 'envoy.log')}`);
    try {
      if ((await fetch(`http://127.0.0.1:${admin}/ready`)).status === 200) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`envoy was not ready after 30 s; see ${join(dir, 'envoy.log')}`);
    }
    await sleep(50);
  }
  return { pid: child.pid ?? -1, child, configFile, stop };
}
