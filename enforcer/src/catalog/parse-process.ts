/**
 * The parse process: runs {@link parseEvents} in a child process for large configs and sends each event
 * as it comes, so the enforcer receives one shard at a time (a few milliseconds of deserialising) and
 * never stalls on a whole config.
 *
 * A process, not a worker thread, for two reasons measured on the benchmark's 100,000 keys: the memory
 * it used is the system's again the moment it exits (a worker thread's stayed in the enforcer's
 * allocators for about 15 s: 160 MB resident right after a load, 141 MB once settled), and every one of
 * its threads runs at the lowest priority, V8's compiler and garbage-collector helpers included (a
 * worker thread shares those helpers with the enforcer, at the enforcer's priority).
 */
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import { type ParseEvent, type ParseJob, parseEvents } from './parse-job.ts';

/** A job for the parse process. */
export interface ParseRequest {
  readonly id: number;
  readonly job: ParseJob;
}

/** What the parse process sends: an event of job `id`, or its end. */
export type ParseReply =
  { readonly id: number; readonly event: ParseEvent } | { readonly id: number; readonly end: true };

/**
 * Lowers every thread of this process to the lowest priority (on Linux a thread is a task with a
 * priority of its own; threads started later inherit the main thread's). Where that is not permitted
 * or not supported, parsing competes at the same priority.
 */
function lowestPriority(): void {
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    tasks = [String(process.pid)];
  }
  for (const task of tasks) {
    try {
      setPriority(Number(task), 19);
    } catch {
      // not permitted, or the thread has ended
    }
  }
}

lowestPriority();
process.on('message', (request: ParseRequest) => {
  for (const event of parseEvents(request.job))
    process.send?.({ id: request.id, event } satisfies ParseReply);
  process.send?.({ id: request.id, end: true } satisfies ParseReply);
});
// The enforcer going away (its end of the channel closed) ends this process too.
process.on('disconnect', () => process.exit(0));
