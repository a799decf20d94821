/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: a replica
 * leads while it renews the Lease within its duration; another takes over only after the Lease expires.
 * Every write is guarded by resourceVersion, so two replicas never both believe they lead.
 */
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describe, isConflict, isNotFound, microTime } from './errors.ts';

/**
 * The part of the Lease's duration within which the holder must have renewed it, or it stops leading
 * (another replica may take over when the Lease expires). A renewal interval must be shorter.
 */
export const RENEW_DEADLINE_FRACTION = 0.8;

/** Lease settings. */
export interface LeaseOptions {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly durationSeconds: number;
  readonly renewSeconds: number;
}

/** Runs leader election; `onStartedLeading` is called once leadership is won, `onStoppedLeading` when lost. */
export class LeaderElector {
  readonly #api: CoordinationV1Api;
  readonly #o: LeaseOptions;
  readonly #log: Logger;
  #leading = false;
  #lastRenew = 0;
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #stopped = false;
  /** The Lease record last read (holder, renewTime, transitions), and when, by this replica's clock. */
  #observed = '';
  #observedAt = 0;

  constructor(api: CoordinationV1Api, options: LeaseOptions, log: Logger) {
    this.#api = api;
    this.#o = options;
    this.#log = log;
  }

  /** Whether this replica holds the lease now. */
  get leading(): boolean {
    return this.#leading;
  }

  /** Tries until it leads, then keeps renewing; calls back on the transitions. */
  start(onStartedLeading: () => void, onStoppedLeading: () => void): void {
    const renewDeadlineMs = this.#o.durationSeconds * 1000 * RENEW_DEADLINE_FRACTION;
    const lose = (): void => {
      if (!this.#leading) return;
      // Not renewed in time: another replica may take over at expiry. Stop writing before it can.
      this.#leading = false;
      this.#log.error({ identity: this.#o.identity }, 'lease: lost leadership; still a candidate');
      onStoppedLeading();
    };
    const tick = async (): Promise<void> => {
      if (this.#stopped) return;
      // A call that hangs (a dead kept-alive connection) must not hold the tick: it is given up after a
      // renew interval, and the deadline below does not wait for it either.
      const ok = await withTimeout(this.#tryAcquireOrRenew(), this.#o.renewSeconds * 1000).catch(
        (err: unknown) => {
          this.#log.warn({ err: describe(err) }, 'lease: acquire or renew failed');
          return false;
        },
      );
      const now = Date.now();
      if (ok) {
        this.#lastRenew = now;
        // The deadline runs on its own timer: writes stop at 80% of the lease whatever the calls do.
        if (this.#deadline) clearTimeout(this.#deadline);
        this.#deadline = setTimeout(lose, renewDeadlineMs);
        this.#deadline.unref();
        if (!this.#leading) {
          this.#leading = true;
          this.#log.info(
            { lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity },
            'lease: started leading',
          );
          onStartedLeading();
        }
      } else if (now - this.#lastRenew > renewDeadlineMs) {
        lose();
      }
      if (!this.#stopped) this.#timer = setTimeout(() => void tick(), this.#o.renewSeconds * 1000);
    };
    void tick();
  }

  /** Stops renewing, and releases the lease if held so a successor need not wait for expiry. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#deadline) clearTimeout(this.#deadline);
    if (!this.#leading) return;
    this.#leading = false;
    try {
      const lease = await this.#api.readNamespacedLease({ name: this.#o.name, namespace: this.#o.namespace });
      if (lease.spec?.holderIdentity !== this.#o.identity) return;
      delete lease.spec.holderIdentity;
      lease.spec.leaseDurationSeconds = 1;
      await this.#api.replaceNamespacedLease({
        name: this.#o.name,
        namespace: this.#o.namespace,
        body: lease,
      });
    } catch (err) {
      this.#log.warn({ err: String(err) }, 'lease: release failed; it expires by itself');
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity, durationSeconds } = this.#o;
    const now = new Date();
    let lease: V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        await this.#api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: microTime(now) as unknown as Date,
              renewTime: microTime(now) as unknown as Date,
              leaseTransitions: 0,
            },
          },
        });
        return true;
      } catch (e) {
        if (isConflict(e)) return false;
        throw e;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity;
    const duration = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    // Expiry is timed by this replica's clock from when it last saw the record change, as client-go
    // does: the holder's renewTime is its own clock's, and a holder whose clock runs behind would
    // otherwise look expired while it still renews (two leaders).
    const record = `${holder ?? ''}|${String(spec.renewTime ?? '')}|${String(spec.leaseTransitions ?? '')}`;
    if (record !== this.#observed) {
      this.#observed = record;
      this.#observedAt = now.getTime();
    }
    const held =
      holder !== undefined &&
      holder !== '' &&
      holder !== identity &&
      this.#observedAt + duration > now.getTime();
    if (held) return false;
    const takingOver = holder !== identity;
    lease.spec = {
      ...(spec as Record<string, unknown>),
      holderIdentity: identity,
      leaseDurationSeconds: durationSeconds,
      renewTime: microTime(now) as unknown as Date,
      ...(takingOver && {
        acquireTime: microTime(now) as unknown as Date,
        leaseTransitions: (spec.leaseTransitions ?? 0) + 1,
      }),
    };
    try {
      // replace carries metadata.resourceVersion: a concurrent writer makes this a 409, not a split brain.
      await this.#api.replaceNamespacedLease({ name, namespace, body: lease });
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }
}

/** `p`, or a rejection after `ms` (the call itself is not cancelled: its answer is ignored). */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`no answer from the API server within ${ms} ms`));
    }, ms);
  });
  return Promise.race([p, timeout]).finally(() => {
    clearTimeout(timer);
  });
}
