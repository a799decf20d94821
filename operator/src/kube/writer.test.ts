import type { V1Secret } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { RenderedObject } from '../render/types.ts';
import { makeMetrics } from '../telemetry/metrics.ts';
import type { Clients } from './clients.ts';
import { Writer } from './writer.ts';

/** A ConfigMap as the stand-in keeps it: a plain object. */
interface Stored {
  readonly metadata?: { readonly resourceVersion?: string };
  readonly data?: Record<string, string>;
}

/** A Writer over an API server stand-in that keeps one object and enforces resourceVersion guards. */
function world() {
  let stored: { rv: number; body: Stored } | undefined;
  const calls: { method: string; rv: string | undefined }[] = [];
  const raw = {
    write: (method: 'POST' | 'PUT', _path: string, body: Stored): Promise<string | undefined> => {
      const rv = body.metadata?.resourceVersion;
      calls.push({ method, rv });
      if (method === 'POST' && stored)
        return Promise.reject(Object.assign(new Error('exists'), { code: 409 }));
      if (method === 'PUT' && !stored) return Promise.reject(Object.assign(new Error('gone'), { code: 404 }));
      if (method === 'PUT' && String(stored?.rv) !== rv)
        return Promise.reject(Object.assign(new Error('conflict'), { code: 409 }));
      const next = (stored?.rv ?? 9) + 1;
      stored = { rv: next, body: { ...body, metadata: { ...body.metadata, resourceVersion: String(next) } } };
      return Promise.resolve(String(next));
    },
  };
  const writer = new Writer({ raw } as unknown as Clients, makeMetrics());
  return {
    writer,
    calls,
    /** The informer's copy as of now (what an up-to-date watch would hold). */
    snapshot: (): Stored | undefined => stored && structuredClone(stored.body),
    /** Someone else writes the object. */
    touch: () => {
      if (stored) {
        const rv = stored.rv + 1;
        stored = {
          rv,
          body: { ...stored.body, metadata: { ...stored.body.metadata, resourceVersion: String(rv) } },
        };
      }
    },
  };
}

const cm = (data: string): RenderedObject => ({
  kind: 'ConfigMap',
  name: 'keystile-orders.prod.keys-0',
  namespace: 'shop',
  labels: { 'app.kubernetes.io/managed-by': 'keystile' },
  owners: [{ name: 'b', uid: 'uid-b' }],
  data: { 'keys.json': data },
});

describe('Writer.applyRendered', () => {
  it('guards a write by its own last version while the informer has not seen it: no certain 409 when renders come faster than the watch', async () => {
    const w = world();
    await w.writer.applyRendered(cm('one'), undefined);
    // The informer has not seen the create yet: a second render replaces it, guarded by the create's version.
    await w.writer.applyRendered(cm('two'), undefined);
    const stale = w.snapshot();
    await w.writer.applyRendered(cm('three'), stale);
    // A third with the informer one write behind: guarded by our last write, not by the stale copy.
    await w.writer.applyRendered(cm('four'), stale);
    expect(w.calls).toEqual([
      { method: 'POST', rv: undefined },
      { method: 'PUT', rv: '10' },
      { method: 'PUT', rv: '11' },
      { method: 'PUT', rv: '12' },
    ]);
    expect(w.snapshot()?.data).toEqual({ 'keys.json': 'four' });
  });

  it("goes by the informer's copy again after someone else's write made its own version stale", async () => {
    const w = world();
    await w.writer.applyRendered(cm('one'), undefined);
    w.touch(); // another writer: version 11
    await expect(w.writer.applyRendered(cm('two'), undefined)).rejects.toMatchObject({ code: 409 });
    // The retry reads the informer's (now current) copy.
    await w.writer.applyRendered(cm('two'), w.snapshot());
    expect(w.calls.at(-1)).toEqual({ method: 'PUT', rv: '11' });
    expect(w.snapshot()?.data).toEqual({ 'keys.json': 'two' });
  });

  it('writes nothing when the informer holds what it would write', async () => {
    const w = world();
    await w.writer.applyRendered(cm('one'), undefined);
    const current = w.snapshot();
    // Its echo arrives: the informer's handler asks, and the writer forgets the pending version.
    expect(current && w.writer.isOwnWrite('ConfigMap', current)).toBe(true);
    expect(await w.writer.applyRendered(cm('one'), current)).toEqual({ bytes: 0, resourceVersion: '10' });
    expect(w.calls).toHaveLength(1);
  });
});

describe('Writer.labelSecret', () => {
  it("counts a write of verb label, a verb the writes counter's help (and so the dashboard) names", async () => {
    const metrics = makeMetrics();
    const core = { replaceNamespacedSecret: () => Promise.resolve({}) };
    const writer = new Writer({ core } as unknown as Clients, metrics);
    await writer.labelSecret(
      { metadata: { name: 'imported', namespace: 'shop' }, data: {} },
      { 'keystile.dev/x': 'y' },
    );
    const writes = await metrics.writes.get();
    expect(writes.values).toEqual([{ labels: { resource: 'secrets', verb: 'label' }, value: 1 }]);
    expect(writes.help).toContain('label');
  });
});

describe('Writer.writeKeySecret', () => {
  it("keeps the Secret's annotations, finalizers and owners other than ApiKeys", async () => {
    const bodies: V1Secret[] = [];
    const raw = {
      write: (_method: string, _path: string, body: V1Secret) => {
        bodies.push(body);
        return Promise.resolve('2');
      },
    };
    const writer = new Writer({ raw } as unknown as Clients, makeMetrics());
    const backup = { apiVersion: 'backup.example/v1', kind: 'Backup', name: 'nightly', uid: 'uid-backup' };
    const current: V1Secret = {
      metadata: {
        name: 'keystile-key-acme',
        namespace: 'shop',
        resourceVersion: '1',
        labels: { team: 'payments' },
        annotations: { 'example.com/owner': 'payments' },
        finalizers: ['example.com/hold'],
        ownerReferences: [
          {
            apiVersion: 'keystile.dev/v1alpha1',
            kind: 'ApiKey',
            name: 'acme',
            uid: 'uid-old',
            controller: true,
          },
          backup,
          { apiVersion: 'v1', kind: 'ConfigMap', name: 'claims', uid: 'uid-cm', controller: true },
        ],
      },
      data: {},
    };
    await writer.writeKeySecret(
      { metadata: { name: 'acme', namespace: 'shop', uid: 'uid-acme' } },
      'keystile-key-acme',
      { 'keystile.dev/key-material': 'true' },
      { keyId: 'abcdefghijkl' },
      current,
    );
    const m = bodies[0]?.metadata;
    expect(m?.annotations).toEqual({ 'example.com/owner': 'payments' });
    expect(m?.finalizers).toEqual(['example.com/hold']);
    expect(m?.labels).toEqual({ team: 'payments', 'keystile.dev/key-material': 'true' });
    expect(m?.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'ApiKey', name: 'acme', uid: 'uid-acme', controller: true }),
      backup,
      { apiVersion: 'v1', kind: 'ConfigMap', name: 'claims', uid: 'uid-cm', controller: false },
    ]);
  });
});
