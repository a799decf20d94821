import { ApiException, type CoordinationV1Api } from '@kubernetes/client-node';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LeaderElector } from './lease.ts';

/** A Lease as the stand-in keeps it: a plain object. */
interface Lease {
  readonly metadata?: { readonly resourceVersion?: string };
  readonly spec?: Record<string, unknown>;
}

const apiError = (code: number): ApiException<string> => new ApiException(code, `HTTP ${code}`, '', {});

/** A Lease API stand-in that answers until `hang()`, then never answers again (a dead connection). */
function leaseApi() {
  let lease: Lease | undefined;
  let rv = 1;
  let hanging = false;
  /** When (by the clock the test runs on) a create or replace last succeeded. */
  let lastWriteAt = Number.NaN;
  const never = new Promise<never>(() => undefined);
  const write = (body: Lease): Lease => {
    lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(rv++) } };
    lastWriteAt = Date.now();
    return lease;
  };
  const api = {
    readNamespacedLease: () => {
      if (hanging) return never;
      if (!lease) return Promise.reject(apiError(404));
      return Promise.resolve(structuredClone(lease));
    },
    createNamespacedLease: ({ body }: { body: Lease }) => {
      if (hanging) return never;
      return Promise.resolve(write(body));
    },
    replaceNamespacedLease: ({ body }: { body: Lease }) => {
      if (hanging) return never;
      if (body.metadata?.resourceVersion !== lease?.metadata?.resourceVersion)
        return Promise.reject(apiError(409));
      return Promise.resolve(write(body));
    },
  } as unknown as CoordinationV1Api;
  return {
    api,
    hang: () => (hanging = true),
    lastWriteAt: () => lastWriteAt,
    /** Another replica holds it, renewing with its own clock's times. */
    holdAs: (holder: string, renewTime: string) => {
      lease = {
        metadata: { resourceVersion: String(rv++) },
        spec: { holderIdentity: holder, leaseDurationSeconds: 2, renewTime, leaseTransitions: 0 },
      };
    },
  };
}

// Fake timers (and Date): the elector's renew ticks, call timeouts and deadline all run on the test's
// clock, so when it stops leading is exact, not a wall-clock estimate.
beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('LeaderElector', () => {
  it('stops leading at 80% of the lease when the renew call hangs, not when the call gives up', async () => {
    const { api, hang, lastWriteAt } = leaseApi();
    const elector = new LeaderElector(
      api,
      // A 2 s lease renewed every 0.2 s: writes must stop 1.6 s after the last renew, before it expires.
      { namespace: 'keystile-system', name: 'op', identity: 'a', durationSeconds: 2, renewSeconds: 0.2 },
      pino({ level: 'silent' }),
    );
    let leading = false;
    let stoppedAt = Number.NaN;
    elector.start(
      () => (leading = true),
      () => {
        leading = false;
        stoppedAt = Date.now();
      },
    );
    try {
      await vi.advanceTimersByTimeAsync(0);
      expect(leading).toBe(true);
      const acquiredAt = lastWriteAt();
      await vi.advanceTimersByTimeAsync(300); // a renew or two
      const lastRenewAt = lastWriteAt();
      expect(lastRenewAt).toBeGreaterThan(acquiredAt);
      hang();
      await vi.advanceTimersByTimeAsync(1599 - (Date.now() - lastRenewAt));
      expect(leading).toBe(true); // the calls time out every 0.2 s; that alone does not stop it
      await vi.advanceTimersByTimeAsync(5000);
      expect(leading).toBe(false);
      expect(elector.leading).toBe(false);
      expect(lastWriteAt()).toBe(lastRenewAt);
      // At 80% of the lease after the last renew: before the Lease can expire (2 s after it), so that
      // no other replica can lead while this one still writes.
      expect(stoppedAt - lastRenewAt).toBe(0.8 * 2000);
      expect(stoppedAt - lastRenewAt).toBeLessThan(2000);
    } finally {
      await elector.stop();
    }
  });

  it("does not take over a Lease its holder renews, however far behind the holder's clock is; does once it stops", async () => {
    const { api, holdAs } = leaseApi();
    // The holder's clock is an hour behind: each renewTime it writes is an hour old by ours.
    const skewed = (): string => new Date(Date.now() - 3_600_000).toISOString().replace('Z', '000Z');
    holdAs('b', skewed());
    const renewing = setInterval(() => holdAs('b', skewed()), 100);
    const elector = new LeaderElector(
      api,
      { namespace: 'keystile-system', name: 'op', identity: 'a', durationSeconds: 2, renewSeconds: 0.2 },
      pino({ level: 'silent' }),
    );
    let leading = false;
    elector.start(
      () => (leading = true),
      () => (leading = false),
    );
    try {
      await vi.advanceTimersByTimeAsync(3000);
      expect(leading).toBe(false);
      clearInterval(renewing);
      // No renewal for a lease duration (2 s), by this replica's clock: it takes over then, not before.
      // It sees the holder's last renewal at its next tick (within 0.2 s), and takes over at the first
      // tick 2 s after that.
      await vi.advanceTimersByTimeAsync(1800);
      expect(leading).toBe(false);
      await vi.advanceTimersByTimeAsync(600);
      expect(leading).toBe(true);
    } finally {
      clearInterval(renewing);
      await elector.stop();
    }
  });
});
