import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A background process the local system started, as its pid file records it. */
export interface ProcessRecord {
  readonly name: string;
  readonly pid: number;
  readonly command: string;
  readonly args: readonly string[];
  readonly log: string;
  readonly startedAt: string;
}

/** What to start: the name is the pid file's and the log's name. */
export interface ProcessSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/**
 * Starts, finds and stops the local system's background processes. Each runs detached in its own
 * process group (so a stop ends its children too), writes to `<dir>/logs/<name>.log` and is recorded in
 * `<dir>/run/<name>.json`, so `npm stop` in another shell finds it.
 */
export class ProcessTable {
  readonly #runDir: string;
  readonly #logDir: string;

  constructor(stateDir: string) {
    this.#runDir = join(stateDir, 'run');
    this.#logDir = join(stateDir, 'logs');
  }

  /** The path of a process's log file. */
  logPath(name: string): string {
    return join(this.#logDir, `${name}.log`);
  }

  /** The record of a running process of that name, or undefined when none runs (a stale record is removed). */
  running(name: string): ProcessRecord | undefined {
    const file = join(this.#runDir, `${name}.json`);
    if (!existsSync(file)) return undefined;
    const record = JSON.parse(readFileSync(file, 'utf8')) as ProcessRecord;
    if (isSameProcess(record)) return record;
    rmSync(file, { force: true });
    return undefined;
  }

  /** Every running process the table records. */
  all(names: readonly string[]): ProcessRecord[] {
    return names.flatMap((n) => this.running(n) ?? []);
  }

  /** Starts the process detached unless one of that name already runs; returns its record. */
  start(spec: ProcessSpec): ProcessRecord {
    const existing = this.running(spec.name);
    if (existing) return existing;
    mkdirSync(this.#runDir, { recursive: true });
    mkdirSync(this.#logDir, { recursive: true });
    const log = this.logPath(spec.name);
    const fd = openSync(log, 'a');
    try {
      const child = spawn(spec.command, spec.args, {
        cwd: spec.cwd,
        env: spec.env ?? process.env,
        detached: true,
        stdio: ['ignore', fd, fd],
      });
      if (child.pid === undefined) throw new Error(`could not start ${spec.name} (${spec.command})`);
      child.unref();
      const record: ProcessRecord = {
        name: spec.name,
        pid: child.pid,
        command: spec.command,
        args: spec.args,
        log,
        startedAt: new Date().toISOString(),
      };
      writeFileSync(join(this.#runDir, `${spec.name}.json`), JSON.stringify(record, null, 2));
      return record;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Stops a process group: SIGTERM, then SIGKILL after `graceMs`. Resolves once it is gone. Returns
   * whether anything was running.
   */
  async stop(name: string, graceMs = 10_000): Promise<boolean> {
    const record = this.running(name);
    if (!record) return false;
    signalGroup(record.pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (isAlive(record.pid) && Date.now() < deadline) await sleep(50);
    if (isAlive(record.pid)) {
      signalGroup(record.pid, 'SIGKILL');
      while (isAlive(record.pid)) await sleep(20);
    }
    rmSync(join(this.#runDir, `${name}.json`), { force: true });
    return true;
  }

  /** Reads the last `lines` lines of a process's log, for error messages. */
  tail(name: string, lines = 20): string {
    try {
      return readFileSync(this.logPath(name), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** True while the pid exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/**
 * Guards against pid reuse: the pid must still run the recorded binary. Compares executables, not
 * command lines, because some servers (redis-server) rewrite their process title.
 */
function isSameProcess(record: ProcessRecord): boolean {
  if (!isAlive(record.pid)) return false;
  try {
    // A binary replaced on disk since (npm ci reinstalled node) reads as '<path> (deleted)': still ours.
    return (
      readlinkSync(`/proc/${record.pid}/exe`).replace(/ \(deleted\)$/, '') === realpathSync(record.command)
    );
  } catch {
    return true;
  }
}
