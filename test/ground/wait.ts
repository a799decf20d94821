import { setTimeout as sleep } from 'node:timers/promises';

/** Thrown by a probe to stop waiting at once: the thing waited for can no longer happen. */
export class GaveUp extends Error {}

/**
 * Polls `probe` until it returns true, or throws after `timeoutMs` with `what` and the last error, so a
 * part that never comes up fails with a message that names it. Used only to wait for servers to start:
 * the local system has no other way to learn that a process is ready.
 */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean> | boolean,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await probe()) return;
      last = undefined;
    } catch (err) {
      if (err instanceof GaveUp) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`${what} was not ready after ${timeoutMs / 1000} s${why}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Waits until `url`, a route behind Envoy's ext_authz, answers with a decision (anything but 503).
 * Envoy's /ready says its listeners are up, not that a just-started enforcer answers within the
 * ext_authz timeout: a first check slower than that (a machine the whole suite loads) is a 503, fail
 * closed as it must be. A 503 lasting `timeoutMs` fails with `explain()` (the processes' logs, say).
 */
export async function untilDecided(
  url: string,
  explain: () => string = () => '',
  timeoutMs = 30_000,
): Promise<void> {
  try {
    await waitFor(`a decision at ${url}`, async () => (await fetch(url)).status !== 503, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${explain()}`, { cause: err });
  }
}
