/**
 * Runs parse jobs inline (small configs: between events the main thread yields, so each slice is one
 * shard) or in a worker thread (large configs), so that indexing a large config never stalls
 * decisions. The worker is started on first use (or ahead of it, {@link ThresholdParser.prewarm}) and
 * ended as soon as it idles, so the memory it used for a large config goes back to the system.
 */
import { statSync } from 'node:fs';
import { extname } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ConfigError } from '../errors.ts';
import { type ParseEvent, type ParseJob, parseEvents, reuseKey } from './parse-job.ts';
import type { WorkerReply, WorkerRequest } from './parse-worker.ts';

/** Runs parse jobs. */
export interface Parser {
  /** The job's events, in order. Never rejects: failures are `error` events. */
  run(job: ParseJob): AsyncIterable<ParseEvent>;
  /** Ends the worker, if any. */
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

const WORKER_URL = new URL(`./parse-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/** Parses jobs larger than `thresholdBytes` in a worker thread, smaller ones inline. */
export class ThresholdParser implements Parser {
  readonly #thresholdBytes: number;
  readonly #idleMs: number;
  #worker: Worker | undefined;
  #idle: NodeJS.Timeout | undefined;
  #nextId = 1;

  /** `idleMs`: how long a worker lives after its last job (default 0: it ends at once). */
  constructor(thresholdBytes: number, idleMs = 0) {
    this.#thresholdBytes = thresholdBytes;
    this.#idleMs = idleMs;
  }

  run(job: ParseJob): AsyncIterable<ParseEvent> {
    return jobSize(job) > this.#thresholdBytes ? this.#inWorker(job) : runInline(job);
  }

  async *#inWorker(job: ParseJob): AsyncGenerator<ParseEvent> {
    if (this.#idle) clearTimeout(this.#idle);
    const worker = (this.#worker ??= this.#start());
    const id = this.#nextId++;
    const queue: (ParseEvent | 'end')[] = [];
    let wake: (() => void) | undefined;
    const push = (item: ParseEvent | 'end'): void => {
      queue.push(item);
      wake?.();
    };
    const onMessage = (reply: WorkerReply): void => {
      if (reply.id !== id) return;
      push('end' in reply ? 'end' : reply.event);
    };
    const onFailure = (err: unknown): void => {
      const message = err instanceof Error ? err.message : `exited with code ${String(err)}`;
      push({
        type: 'error',
        error: { code: ConfigError.Unreadable, message: `the parse worker failed: ${message}` },
      });
      push('end');
    };
    worker.on('message', onMessage);
    worker.on('error', onFailure);
    worker.on('exit', onFailure);
    try {
      worker.postMessage({ id, job } satisfies WorkerRequest);
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
      worker.off('message', onMessage);
      worker.off('error', onFailure);
      worker.off('exit', onFailure);
      this.#idle = setTimeout(() => void this.close(), this.#idleMs);
      this.#idle.unref();
    }
  }

  #start(): Worker {
    // A small young generation: the worker allocates big short-lived documents, and its pages are returned on exit.
    const worker = new Worker(WORKER_URL, { resourceLimits: { maxYoungGenerationSizeMb: 16 } });
    worker.unref();
    worker.on('exit', () => {
      if (this.#worker === worker) this.#worker = undefined;
    });
    worker.on('error', () => {
      if (this.#worker === worker) this.#worker = undefined;
    });
    return worker;
  }

  /**
   * Starts the worker now, so that the first large load does not wait for it to load its modules (a
   * few hundred milliseconds); ended after `unusedMs` if no job came.
   */
  prewarm(unusedMs = 30_000): void {
    if (this.#worker) return;
    this.#worker = this.#start();
    this.#idle = setTimeout(() => void this.close(), unusedMs);
    this.#idle.unref();
  }

  async close(): Promise<void> {
    if (this.#idle) clearTimeout(this.#idle);
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker) await worker.terminate();
  }
}
