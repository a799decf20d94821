/**
 * Keeps an informer running, and says when its cache is complete.
 *
 * client-node's ListWatch stops after a failed list or a watch that ended with an error (other than
 * 410 Gone and a client timeout, which it handles itself): it tells its 'error' handlers and nothing
 * else. Its `start()` resolves even when the list failed, with the cache empty, and resets its own
 * reconnect backoff. So the restart lives here: after an error the informer is started again, waiting
 * 1 s, then twice as long each time up to 30 s, until it lists or receives an event again.
 *
 * `listed` resolves only after a list has succeeded: an operator that took an empty cache for the
 * cluster's state would render every stage without its keys (and delete what it rendered before).
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describe } from './errors.ts';
import { listCount, type Watched } from './informers.ts';

/** The first wait before a restart, ms. */
export const RESTART_BASE_MS = 1000;
/** The longest wait before a restart, ms. */
export const RESTART_MAX_MS = 30_000;

/** A supervised informer. */
export interface Supervised {
  /** Resolves once the informer's list has succeeded (its cache holds the cluster's state). */
  readonly listed: Promise<void>;
  /** Whether {@link listed} has resolved. */
  readonly hasListed: () => boolean;
  /** Stops restarting (the caller stops the informer itself). */
  readonly stop: () => void;
}

/** What {@link supervise} needs besides the informer; timers are injectable for tests. */
export interface SuperviseOptions {
  readonly name: string;
  readonly log: Logger;
  readonly setTimer?: (fn: () => void, ms: number) => object;
  readonly clearTimer?: (t: unknown) => void;
}

/** Starts the informer and keeps it running; see the module's comment. */
export function supervise(inf: Watched<KubernetesObject>, opts: SuperviseOptions): Supervised {
  const setTimer = opts.setTimer ?? ((fn: () => void, ms: number) => setTimeout(fn, ms).unref());
  const clearTimer = opts.clearTimer ?? ((t: unknown) => clearTimeout(t as NodeJS.Timeout));
  const listed = Promise.withResolvers<undefined>();
  let hasListed = false;
  let delay = RESTART_BASE_MS;
  let timer: unknown;
  let stopped = false;

  // A list that succeeded, or an event after the first list, means the informer works: the next
  // failure waits 1 s again.
  const listedNow = (): void => {
    delay = RESTART_BASE_MS;
    if (hasListed) return;
    hasListed = true;
    listed.resolve(undefined);
  };
  const restartLater = (err: unknown): void => {
    if (stopped || timer !== undefined) return;
    const wait = delay;
    delay = Math.min(delay * 2, RESTART_MAX_MS);
    opts.log.warn(
      { informer: opts.name, err: describe(err), retryInMs: wait },
      hasListed ? 'watch ended; restarting' : 'list failed; not synced until it succeeds',
    );
    timer = setTimer(() => {
      timer = undefined;
      run();
    }, wait);
  };
  const run = (): void => {
    if (stopped) return;
    const before = listCount(inf);
    const settled = (): void => {
      if (listCount(inf) > before) listedNow();
    };
    inf.start().then(settled, (err: unknown) => {
      settled();
      restartLater(err);
    });
  };

  inf.on('error', (err: unknown) => restartLater(err));
  for (const verb of ['add', 'update', 'delete'] as const) {
    inf.on(verb, () => {
      if (hasListed) delay = RESTART_BASE_MS;
    });
  }
  run();
  return {
    listed: listed.promise,
    hasListed: () => hasListed,
    stop: () => {
      stopped = true;
      if (timer !== undefined) clearTimer(timer);
      timer = undefined;
    },
  };
}
