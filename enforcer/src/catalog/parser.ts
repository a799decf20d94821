/**
 * Runs parse jobs inline (small configs: between events the main thread yields, so each slice is one
 * shard) or in a parse process (large configs, parse-process.ts), so that indexing a large config never
 * stalls decisions. The process is started on first use (or ahead of it, {@link ThresholdParser.prewarm})
 * and ended as soon as it idles, so the memory it used for a large config goes back to the system.
 */
import { statSync } from 'node:fs';
import { extname } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.ts';
import { type ParseEvent, type ParseJob, parseEvents, reuseKey } from './parse-job.ts';
import type { ParseReply, ParseRequest } from './parse-process.ts';

/** Runs parse jobs. */
export interface Parser {
  /** The job's events, in order. Never rejects: failures are `error` events. */
  run(job: ParseJob): AsyncIterable<ParseEvent>;
  /** Ends the parse process, if any. */
  close(): Promise<void>;
}

/** How many bytes of documents a job reads (a standalone file: its size). */
export function jobSize(job: ParseJob): number {
  if (job.snapshot.kind === 'file') {
    try {
      return statSync(job.snapshot.path).size;
    } catch {
      return 0;
    }
  }
  const reusable = new Set(job.reusable);
  let n = 0;
  for (const s of job.snapshot.stages) {
    if (!('keys' in s)) continue;
    s.index.shards.forEach((ref, i) => {
      if (reusable.has(reuseKey(ref.keys.sha256, ref.secrets.sha256))) return;
      n += (s.keys[i]?.length ?? 0) + (s.secrets[i]?.length ?? 0);
    });
  }
  return n;
}

/** Runs jobs on the main thread, yielding to the event loop after every event. */
export async function* runInline(job: ParseJob): AsyncGenerator<ParseEvent> {
  for (const event of parseEvents(job)) {
    yield event;
    await yieldToLoop();
  }
}

const PROCESS_URL = new URL(`./parse-process${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/** Parses jobs larger than `thresholdBytes` in a parse process, smaller ones inline. */
export class ThresholdParser implements Parser {
  readonly #thresholdBytes: number;
  readonly #idleMs: number;
  #process: ChildProcess | undefined;
  #idle: NodeJS.Timeout | undefined;
  #nextId = 1;

  /** `idleMs`: how long the parse process lives after its last job (default 0: it ends at once). */
  constructor(thresholdBytes: number, idleMs = 0) {
    this.#thresholdBytes = thresholdBytes;
    this.#idleMs = idleMs;
  }

  run(job: ParseJob): AsyncIterable<ParseEvent> {
    return jobSize(job) > this.#thresholdBytes ? this.#inProcess(job) : runInline(job);
  }

  async *#inProcess(job: ParseJob): AsyncGenerator<ParseEvent> {
    if (this.#idle) clearTimeout(this.#idle);
    const child = (this.#process ??= this.#start());
    // While a job runs, its messages keep the enforcer's event loop alive.
    child.channel?.ref();
    const id = this.#nextId++;
    const queue: (ParseEvent | 'end')[] = [];
    let wake: (() => void) | undefined;
    const push = (item: ParseEvent | 'end'): void => {
      queue.push(item);
      wake?.();
    };
    const onMessage = (reply: ParseReply): void => {
      if (reply.id !== id) return;
      push('end' in reply ? 'end' : reply.event);
    };
    const onFailure = (err: unknown): void => {
      const message = err instanceof Error ? err.message : `exited with code ${String(err)}`;
      push({
        type: 'error',
        error: { code: ConfigError.Unreadable, message: `the parse process failed: ${message}` },
      });
      push('end');
    };
    child.on('message', onMessage);
    child.on('error', onFailure);
    child.on('exit', onFailure);
    try {
      child.send({ id, job } satisfies ParseRequest, (err) => {
        if (err) onFailure(err);
      });
      for (;;) {
        const item = queue.shift();
        if (item === undefined) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        if (item === 'end') return;
        yield item;
      }
    } finally {
      child.off('message', onMessage);
      child.off('error', onFailure);
      child.off('exit', onFailure);
      child.channel?.unref();
      this.#idle = setTimeout(() => void this.close(), this.#idleMs);
      this.#idle.unref();
    }
  }

  #start(): ChildProcess {
    // The V8 serializer carries the packed shards' typed arrays; Node's own flags are inherited.
    const child = fork(PROCESS_URL, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    // Neither the process nor its channel keeps the enforcer alive.
    child.unref();
    child.channel?.unref();
    child.on('exit', () => {
      if (this.#process === child) this.#process = undefined;
    });
    child.on('error', () => {
      if (this.#process === child) this.#process = undefined;
    });
    return child;
  }

  /**
   * Starts the parse process now, so that the first large load does not wait for it to load its
   * modules (a few hundred milliseconds); ended after `unusedMs` if no job came.
   */
  prewarm(unusedMs = 30_000): void {
    if (this.#process) return;
    this.#process = this.#start();
    this.#idle = setTimeout(() => void this.close(), unusedMs);
    this.#idle.unref();
  }

  async close(): Promise<void> {
    if (this.#idle) clearTimeout(this.#idle);
    const child = this.#process;
    this.#process = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.ref(); // its exit, awaited here, keeps the event loop alive until it comes
      child.kill('SIGKILL');
      await exited;
    }
  }
}
