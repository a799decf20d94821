import { ApiException, type CoordinationV1Api } from '@kubernetes/client-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { LeaderElector } from './lease.ts';

/** A Lease API stand-in that answers until `hang()`, then never answers again (a dead connection). */
/** A Lease as the stand-in keeps it: a plain object. */
interface Lease {
  readonly metadata?: { readonly resourceVersion?: string };
  readonly spec?: Record<string, unknown>;
}

const apiError = (code: number): ApiException<string> => new ApiException(code, `HTTP ${code}`, '', {});

function leaseApi() {
  let lease: Lease | undefined;
  let rv = 1;
  let hanging = false;
  const never = new Promise<never>(() => undefined);
  const api = {
    readNamespacedLease: () => {
      if (hanging) return never;
      if (!lease) return Promise.reject(apiError(404));
      return Promise.resolve(structuredClone(lease));
    },
    createNamespacedLease: ({ body }: { body: Lease }) => {
      if (hanging) return never;
      lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(rv++) } };
      return Promise.resolve(lease);
    },
    replaceNamespacedLease: ({ body }: { body: Lease }) => {
      if (hanging) return never;
      if (body.metadata?.resourceVersion !== lease?.metadata?.resourceVersion)
        return Promise.reject(apiError(409));
      lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(rv++) } };
      return Promise.resolve(lease);
    },
  } as unknown as CoordinationV1Api;
  return {
    api,
    hang: () => (hanging = true),
    /** Another replica holds it, renewing with its own clock's times. */
    holdAs: (holder: string, renewTime: string) => {
      lease = {
        metadata: { resourceVersion: String(rv++) },
        spec: { holderIdentity: holder, leaseDurationSeconds: 2, renewTime, leaseTransitions: 0 },
      };
    },
  };
}

const until = async (what: string, probe: () => boolean, ms: number): Promise<void> => {
  const end = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('LeaderElector', () => {
  it('stops leading at 80% of the lease when the renew call hangs, not when the call gives up', async () => {
    const { api, hang } = leaseApi();
    const elector = new LeaderElector(
      api,
      // A 2 s lease renewed every 0.2 s: writes must stop 1.6 s after the last renew, before it expires.
      { namespace: 'keystile-system', name: 'op', identity: 'a', durationSeconds: 2, renewSeconds: 0.2 },
      pino({ level: 'silent' }),
    );
    let leading = false;
    let stoppedAt = 0;
    elector.start(
      () => (leading = true),
      () => {
        leading = false;
        stoppedAt = Date.now();
      },
    );
    await until('leading', () => leading, 2000);
    await new Promise((r) => setTimeout(r, 300)); // a renew or two
    const hungAt = Date.now();
    hang();
    await until('stopped leading', () => !leading, 5000);
    // Before the Lease can expire (2 s after the last renew, which was before the hang), so that no
    // other replica can lead while this one still writes.
    expect(stoppedAt - hungAt).toBeLessThan(2000);
    expect(elector.leading).toBe(false);
    await elector.stop();
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
      await new Promise((r) => setTimeout(r, 3000));
      expect(leading).toBe(false);
      clearInterval(renewing);
      // No renewal for a lease duration, by this replica's clock: it takes over.
      await until('leading after the holder stopped renewing', () => leading, 5000);
    } finally {
      clearInterval(renewing);
      await elector.stop();
    }
  }, 15_000);
});
