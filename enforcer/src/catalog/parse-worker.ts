/**
 * The parse worker: runs {@link parseEvents} off the main thread for large configs and posts each event
 * as it comes, so the main thread receives one shard at a time (a few milliseconds of deserialising)
 * and never stalls on a whole config.
 */
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { transferables } from './packed-shard.ts';
import { type ParseEvent, type ParseJob, parseEvents } from './parse-job.ts';

/** A job for the worker. */
export interface WorkerRequest {
  readonly id: number;
  readonly job: ParseJob;
}

/** What the worker posts: an event of job `id`, or its end. */
export type WorkerReply =
  { readonly id: number; readonly event: ParseEvent } | { readonly id: number; readonly end: true };

// The lowest priority, for this thread alone (on Linux a thread is a task): when the enforcer has one
// core, decisions on the main thread always come first and parsing takes what they leave.
try {
  setPriority(19);
} catch {
  // Not permitted or not supported: parsing then competes at the same priority.
}

parentPort?.on('message', (request: WorkerRequest) => {
  for (const event of parseEvents(request.job)) {
    // A packed shard's typed arrays move to the main thread without a copy.
    const transfer = event.type === 'shard' ? transferables(event.packed) : [];
    parentPort?.postMessage({ id: request.id, event } satisfies WorkerReply, transfer);
  }
  parentPort?.postMessage({ id: request.id, end: true } satisfies WorkerReply);
});
