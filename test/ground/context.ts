import { join } from 'node:path';
import type { Binaries } from './paths.ts';
import type { Ports } from './ports.ts';
import type { ProcessTable } from './processes.ts';
import { GaveUp, waitFor } from './wait.ts';

/** What every part of the local system is started with. */
export interface GroundContext {
  readonly stateDir: string;
  readonly ports: Ports;
  readonly bins: Binaries;
  readonly procs: ProcessTable;
}

/** A folder for one part's data under the state dir. */
export function partDir(ctx: GroundContext, part: string): string {
  return join(ctx.stateDir, part);
}

/**
 * Waits for a started process to become ready; fails at once, with the end of its log, if the process
 * exits instead (a port in use, a bad flag), rather than after the whole timeout.
 */
export async function waitReady(
  ctx: GroundContext,
  name: string,
  probe: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  await waitFor(
    name,
    async () => {
      if (!ctx.procs.running(name)) {
        throw new GaveUp(`${name} exited; the end of ${ctx.procs.logPath(name)}:\n${ctx.procs.tail(name)}`);
      }
      return probe();
    },
    timeoutMs,
  );
}
