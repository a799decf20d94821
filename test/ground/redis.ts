import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../enforcer/src/launch.ts';
import { type GroundContext, partDir, waitReady } from './context.ts';
import { binaries } from './paths.ts';
import { waitFor } from './wait.ts';

// Redis from Debian's redis-server, for shared counters: the local system's, and servers of a test's own.

/** Starts Redis (Debian's redis-server) on loopback, without persistence: counters in tests. */
export function startRedis(ctx: GroundContext): void {
  const dir = partDir(ctx, 'redis');
  mkdirSync(dir, { recursive: true });
  ctx.procs.start({
    name: 'redis',
    command: ctx.bins.redisServer,
    args: [
      '--bind',
      '127.0.0.1',
      '--port',
      String(ctx.ports.redis),
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
    ],
  });
}

/** Sends one PING in RESP and resolves with the reply line. */
export function redisPing(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(2_000, () => socket.destroy(new Error('timed out')));
    socket.once('error', reject);
    socket.once('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.once('data', (data) => {
      resolve(data.toString('utf8').trim());
      socket.end();
    });
  });
}

/** Waits until Redis answers PONG. */
export async function redisReady(ctx: GroundContext): Promise<void> {
  await waitReady(ctx, 'redis', async () => (await redisPing(ctx.ports.redis)) === '+PONG');
}

/** Options for {@link startRedisServer}. */
export interface RedisServerOptions {
  /** The port (default: a free one). */
  readonly port?: number;
  /** Its working directory (default: a new temporary one). */
  readonly dir?: string;
  /** More arguments, e.g. ['--cluster-enabled', 'yes']. */
  readonly args?: readonly string[];
  /**
   * Run as a Sentinel (`redis-server <dir>/sentinel.conf --sentinel`) with this configuration, e.g.
   * `sentinel monitor keystile 127.0.0.1 6379 1`; `args` then go after the config file.
   */
  readonly sentinel?: string;
}

/**
 * A redis-server of a test's own (Debian's binary, as `install.sh paths` names it), on loopback,
 * without persistence unless `args` ask for it. Tests stop, kill, pause (SIGSTOP: a Redis that hangs)
 * and restart it on the same port and directory.
 */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  readonly #options: RedisServerOptions;
  #child: ChildProcess | undefined;

  private constructor(port: number, dir: string, options: RedisServerOptions) {
    this.port = port;
    this.dir = dir;
    this.#options = options;
  }

  /** Starts one and waits until it answers PING (PONG, or NOAUTH with a password). */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const port = options.port ?? (await freePort());
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'keystile-redis-'));
    const server = new RedisServer(port, dir, options);
    await server.restart();
    return server;
  }

  /** `redis://127.0.0.1:<port>`. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The process id while it runs. */
  get pid(): number | undefined {
    return this.#child?.exitCode === null ? this.#child.pid : undefined;
  }

  /** Starts it again (same port, same directory) unless it runs; waits for PONG. */
  async restart(): Promise<void> {
    if (this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null) return;
    const base = ['--bind', '127.0.0.1', '--port', String(this.port), '--dir', this.dir, '--daemonize', 'no'];
    let args: string[];
    if (this.#options.sentinel !== undefined) {
      // Sentinel rewrites its config file: write it once, and keep what it learnt across restarts.
      const conf = join(this.dir, 'sentinel.conf');
      if (!existsSync(conf)) writeFileSync(conf, `${this.#options.sentinel}\n`);
      args = [conf, '--sentinel', ...base, ...(this.#options.args ?? [])];
    } else {
      args = [...base, '--save', '', '--appendonly', 'no', ...(this.#options.args ?? [])];
    }
    const log = openSync(join(this.dir, `redis-${this.port}.log`), 'a');
    const child = spawn(binaries().redisServer, args, { stdio: ['ignore', log, log] });
    closeSync(log);
    this.#child = child;
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) =>
        reject(new Error(`redis-server on ${this.port} exited (${code ?? signal}); see ${this.dir}`)),
      ),
    );
    exited.catch(() => undefined);
    try {
      await Promise.race([
        exited,
        waitFor(
          `redis-server on ${this.port}`,
          // A server with --requirepass answers NOAUTH: it is up all the same.
          async () => /^(\+PONG|-NOAUTH)/.test(await redisPing(this.port).catch(() => '')),
          10_000,
          25,
        ),
      ]);
    } catch (err) {
      // One that never answered is not left running after the test that started it has failed.
      await this.stop();
      throw err;
    }
  }

  /** Ends it with `signal` (default SIGKILL: no shutdown save) and waits until it has exited. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    if (signal !== 'SIGCONT') child.kill('SIGCONT'); // a paused process must be able to die
    child.kill(signal);
    await exited;
  }

  /** Freezes it (SIGSTOP): connections stay open and nothing answers, as with a hung Redis. */
  pause(): void {
    this.#child?.kill('SIGSTOP');
  }

  /** Thaws it after {@link pause}. */
  resume(): void {
    this.#child?.kill('SIGCONT');
  }
}

/** Options for {@link startSentinelled}. */
export interface SentinelledOptions {
  /** The master's `requirepass` (the sentinel is told it with `sentinel auth-pass`). */
  readonly masterPassword?: string;
  /** The sentinel's own `requirepass`. */
  readonly sentinelPassword?: string;
}

/** A master, and one Sentinel watching it under the name `keystile`. */
export interface Sentinelled {
  readonly master: RedisServer;
  readonly sentinel: RedisServer;
  /** Stops both, the sentinel first. */
  readonly stop: () => Promise<void>;
}

/** Starts a master and one Sentinel watching it as `keystile`, each requiring a password if given. */
export async function startSentinelled(options: SentinelledOptions = {}): Promise<Sentinelled> {
  const { masterPassword, sentinelPassword } = options;
  const master = await RedisServer.start(masterPassword ? { args: ['--requirepass', masterPassword] } : {});
  try {
    const sentinel = await RedisServer.start({
      sentinel: [
        ...(sentinelPassword ? [`requirepass ${sentinelPassword}`] : []),
        `sentinel monitor keystile 127.0.0.1 ${master.port} 1`,
        ...(masterPassword ? [`sentinel auth-pass keystile ${masterPassword}`] : []),
        'sentinel down-after-milliseconds keystile 5000',
      ].join('\n'),
    });
    return {
      master,
      sentinel,
      stop: async () => {
        await sentinel.stop();
        await master.stop();
      },
    };
  } catch (err) {
    await master.stop();
    throw err;
  }
}
