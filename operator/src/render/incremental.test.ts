// The incremental renderer against the pure one: random sequences of changes (keys added, edited,
// relabelled, given values, rotated, removed, status-only writes; plans, bindings and adjustments
// changed; time passing), and after every step both renders must be equal, byte for byte.
import { describe, expect, it } from 'vitest';
import type { ApiKey, PlanBinding, UsageAdjustment, UsagePlan } from '../../../crds/src/index.ts';
import { IncrementalRenderer } from './incremental.ts';
import { render } from './render.ts';
import type { KeyMaterial, RenderInput, RenderOutput } from './types.ts';

const ns = 'shop';

/** A small deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The namespace as an informer holds it: objects replaced (never mutated) when they change. */
class World {
  readonly rnd: () => number;
  now = Date.parse('2026-11-23T00:00:00Z');
  plans = new Map<string, UsagePlan>();
  bindings = new Map<string, PlanBinding>();
  keys = new Map<string, ApiKey>();
  materials = new Map<string, KeyMaterial>();
  adjustments = new Map<string, UsageAdjustment>();
  /** Keys are named k0 .. k<keyRange - 1>: a small range empties stages and bindings often. */
  readonly keyRange: number;
  #serial = 0;

  constructor(seed: number, keyRange = 40) {
    this.rnd = prng(seed);
    this.keyRange = keyRange;
  }

  pick<T>(xs: readonly T[]): T | undefined {
    return xs.length === 0 ? undefined : xs[Math.floor(this.rnd() * xs.length)];
  }

  stamp(): string {
    // Creation times of one-second resolution, several objects per second (ties broken by name).
    return new Date(Date.parse('2026-11-01T00:00:00Z') + Math.floor(this.#serial++ / 3) * 1000)
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z');
  }

  plan(name: string): void {
    const r = this.rnd();
    this.plans.set(name, {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'UsagePlan',
      metadata: { name, namespace: ns, uid: `p-${name}-${this.#serial}`, creationTimestamp: this.stamp() },
      spec: {
        throttle: { rateLimit: 10, burstLimit: 20 },
        ...(r < 0.7 && {
          quota: {
            limit: 100 + Math.floor(this.rnd() * 100),
            period: 'MONTH' as const,
            // Now and then a zone enforcers refuse: the plan's result says so, in both renderers alike.
            ...(r < 0.05 && { timeZone: 'posixrules' }),
          },
        }),
        ...(r > 0.75 && { maxKeys: 2 + Math.floor(this.rnd() * 4) }),
        ...(this.rnd() < 0.3 && { countBy: 'Customer' as const }),
      },
    });
  }

  binding(name: string): void {
    const plan = this.pick([...this.plans.keys(), 'nowhere']) ?? 'nowhere';
    const stages = Array.from({ length: 1 + Math.floor(this.rnd() * 2) }, () => ({
      api: this.pick(['orders', 'payments']) ?? 'orders',
      stage: this.pick(['prod', 'beta', 'dev']) ?? 'prod',
    }));
    const byName = this.rnd() < 0.3;
    this.bindings.set(name, {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'PlanBinding',
      metadata: {
        name,
        namespace: ns,
        uid: `b-${name}-${this.#serial}`,
        creationTimestamp: this.stamp(),
      },
      spec: {
        planRef: { name: plan },
        keys: byName
          ? { names: Array.from({ length: 3 }, () => `k${Math.floor(this.rnd() * this.keyRange)}`) }
          : this.rnd() < 0.2
            ? { selector: {} }
            : { selector: { matchLabels: { tier: this.pick(['a', 'b', 'c']) ?? 'a' } } },
        apiStages: stages,
      },
    });
  }

  key(name: string): void {
    const previous = this.keys.get(name);
    const type = previous?.spec.type ?? (this.rnd() < 0.2 ? 'KeyPair' : 'ApiKey');
    const expires = this.rnd() < 0.15 ? this.now + Math.floor((this.rnd() - 0.3) * 20) * 60_000 : undefined;
    this.keys.set(name, {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'ApiKey',
      metadata: {
        name,
        namespace: ns,
        uid: previous?.metadata.uid ?? `k-${name}-${this.#serial}`,
        creationTimestamp: previous?.metadata.creationTimestamp ?? this.stamp(),
        resourceVersion: String(this.#serial++),
        labels: { tier: this.pick(['a', 'b', 'c']) ?? 'a' },
      },
      spec: {
        type,
        ...(this.rnd() < 0.15 && { enabled: false }),
        // Now and then an expiry the renderer cannot read (admitted before the CRD checked it).
        ...(expires !== undefined && {
          expiresAt: this.rnd() < 0.2 ? '2030-01-01T00:00:00,5Z' : new Date(expires).toISOString(),
        }),
        ...(this.rnd() < 0.5 && { customer: this.pick(['acme', 'globex']) ?? 'acme' }),
      },
    });
  }

  /** A status write: a new object, the same in everything rendering reads. */
  touch(name: string): void {
    const k = this.keys.get(name);
    if (!k) return;
    this.keys.set(name, {
      ...k,
      metadata: { ...k.metadata, resourceVersion: String(this.#serial++) },
      status: { observedGeneration: 1 },
    });
  }

  material(name: string, duplicates = true): void {
    const k = this.keys.get(name);
    if (!k) return;
    // Now and then a value (or key id) another key has: a duplicate, reported on the newer key.
    const dup = duplicates && this.rnd() < 0.08 ? this.pick([...this.materials.values()]) : undefined;
    // Half of those share the value, half the key id.
    const sameId = this.rnd() < 0.5;
    const id = (sameId ? dup?.keyId : undefined) ?? `id${Math.floor(this.rnd() * 1e9).toString(36)}`;
    const value = `v${Math.floor(this.rnd() * 1e9).toString(36)}`;
    const previous = this.rnd() < 0.2 ? new Date(this.now + 3_600_000).toISOString() : undefined;
    this.materials.set(
      name,
      k.spec.type === 'KeyPair'
        ? {
            keyId: id,
            secretId: (sameId ? undefined : dup?.secretId) ?? `AKID${id}`,
            secretKeys: [{ value }, ...(previous ? [{ value: `${value}-old`, validUntil: previous }] : [])],
          }
        : {
            keyId: id,
            hashes: [
              { sha256: (sameId ? undefined : dup?.hashes?.[0]?.sha256) ?? `h-${value}` },
              ...(previous ? [{ sha256: `h-${value}-old`, validUntil: previous }] : []),
            ],
          },
    );
  }

  adjustment(name: string): void {
    const plan = this.pick([...this.plans.keys()]) ?? 'gold';
    const customer = this.rnd() < 0.3;
    this.adjustments.set(name, {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'UsageAdjustment',
      metadata: { name, namespace: ns, uid: `a-${name}`, creationTimestamp: this.stamp() },
      spec: {
        planRef: { name: plan },
        ...(customer
          ? { customer: this.pick(['acme', 'globex']) ?? 'acme' }
          : { keyRef: { name: `k${Math.floor(this.rnd() * this.keyRange)}` } }),
        amount: 50,
      },
    });
  }

  input(keysPerShard: number): RenderInput {
    return {
      namespace: ns,
      plans: [...this.plans.values()],
      keys: [...this.keys.values()],
      bindings: [...this.bindings.values()],
      adjustments: [...this.adjustments.values()],
      materials: this.materials,
      now: new Date(this.now),
      keysPerShard,
    };
  }
}

/** An output in a comparable form: maps as sorted entries. */
function normal(out: RenderOutput): unknown {
  const sorted = <V>(m: ReadonlyMap<string, V>): [string, V][] =>
    [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    stages: out.stages,
    bindings: sorted(out.bindings),
    plans: sorted(out.plans),
    keys: sorted(out.keys),
    adjustments: sorted(out.adjustments),
  };
}

/** One random step: what an operator would see happen between two renders. */
function step(w: World): string {
  const r = w.rnd();
  const someKey = (): string => w.pick([...w.keys.keys()]) ?? 'k0';
  if (r < 0.3) {
    const name = `k${Math.floor(w.rnd() * w.keyRange)}`;
    w.key(name);
    if (w.rnd() < 0.8) w.material(name);
    return `key ${name}`;
  }
  if (r < 0.45) {
    const name = someKey();
    w.material(name);
    return `material ${name}`;
  }
  if (r < 0.6) {
    const name = someKey();
    w.touch(name);
    return `status ${name}`;
  }
  if (r < 0.7) {
    const name = someKey();
    w.keys.delete(name);
    if (w.rnd() < 0.5) w.materials.delete(name);
    return `delete ${name}`;
  }
  if (r < 0.75) {
    for (let i = 0; i < 5; i++) {
      const name = `k${Math.floor(w.rnd() * w.keyRange)}`;
      w.key(name);
      w.material(name);
    }
    return 'five keys';
  }
  if (r < 0.8) {
    w.now += Math.floor(w.rnd() * 10) * 60_000;
    return 'time passes';
  }
  if (r < 0.85) {
    w.plan(w.pick([...w.plans.keys()]) ?? 'gold');
    return 'plan edited';
  }
  if (r < 0.9) {
    const name = `b${Math.floor(w.rnd() * 6)}`;
    if (w.bindings.has(name) && w.rnd() < 0.4) w.bindings.delete(name);
    else w.binding(name);
    return `binding ${name}`;
  }
  if (r < 0.95) {
    const name = `adj${Math.floor(w.rnd() * 4)}`;
    if (w.adjustments.has(name) && w.rnd() < 0.4) w.adjustments.delete(name);
    else w.adjustment(name);
    return `adjustment ${name}`;
  }
  if (r < 0.975) {
    for (const name of [...w.keys.keys()].slice(0, 3)) w.touch(name);
    return 'statuses';
  }
  // The operator's own status writes on a plan and a binding: new objects, the same specs.
  const p = w.pick([...w.plans.values()]);
  if (p) w.plans.set(p.metadata.name, { ...p, status: { observedGeneration: 1 } });
  const b = w.pick([...w.bindings.values()]);
  if (b) w.bindings.set(b.metadata.name, { ...b, status: { observedGeneration: 1, boundKeys: 1 } });
  return 'plan and binding statuses';
}

describe('IncrementalRenderer', () => {
  it('renders what render() renders, byte for byte, through random sequences of changes', () => {
    let incremental = 0;
    let steps = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const w = new World(seed, seed % 3 === 0 ? 6 : 40);
      for (const p of ['gold', 'silver', 'bronze']) w.plan(p);
      for (let i = 0; i < 4; i++) w.binding(`b${i}`);
      for (let i = 0; i < w.keyRange / 2; i++) {
        w.key(`k${i}`);
        if (w.rnd() < 0.85) w.material(`k${i}`);
      }
      const keysPerShard = 1 + Math.floor(w.rnd() * 4);
      const r = new IncrementalRenderer();
      const history: string[] = [];
      for (let i = 0; i < 80; i++) {
        const input = w.input(keysPerShard);
        const want = normal(render(input));
        const got = normal(r.render(input));
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          // Fails with the seed and the steps that led here, and the difference.
          expect({ seed, history, got }).toEqual({ seed, history, got: want });
        }
        steps++;
        if (r.stats.mode === 'incremental') incremental++;
        history.push(step(w));
      }
    }
    // Most steps are key changes, which are followed key by key.
    expect(incremental / steps).toBeGreaterThan(0.4);
  }, 120_000);

  it('re-renders only the shard a changed key is in, and keeps the other objects as they were', () => {
    const w = new World(7);
    w.plans.clear();
    w.plan('gold');
    const gold = w.plans.get('gold');
    if (gold) w.plans.set('gold', { ...gold, spec: { throttle: { rateLimit: 1, burstLimit: 1 } } });
    w.bindings.set('all', {
      apiVersion: 'keystile.dev/v1alpha1',
      kind: 'PlanBinding',
      metadata: { name: 'all', namespace: ns, uid: 'b-all', creationTimestamp: '2026-11-01T00:00:00Z' },
      spec: {
        planRef: { name: 'gold' },
        keys: { selector: {} },
        apiStages: [{ api: 'orders', stage: 'prod' }],
      },
    });
    for (let i = 0; i < 400; i++) {
      w.key(`k${i}`);
      const k = w.keys.get(`k${i}`);
      if (k) w.keys.set(`k${i}`, { ...k, spec: { type: 'ApiKey' } });
      w.material(`k${i}`, false);
    }
    const r = new IncrementalRenderer();
    const before = r.render(w.input(50)).stages[0]?.objects ?? [];
    expect(before).toHaveLength(8 * 2 + 1);
    const k = w.keys.get('k7');
    if (k)
      w.keys.set('k7', {
        ...k,
        metadata: { ...k.metadata, resourceVersion: `${k.metadata.resourceVersion ?? ''}-2` },
        spec: { ...k.spec, enabled: false },
      });
    const input = w.input(50);
    const after = r.render(input).stages[0]?.objects ?? [];
    expect(r.stats).toEqual({ mode: 'incremental', changedKeys: 1 });
    expect(JSON.stringify(normal(render(input)))).toBe(JSON.stringify(normal(r.render(input))));
    const changed = after.filter((o, i) => o !== before[i]).map((o) => o.name);
    // Its keys shard (the enabled flag) and the index; its secrets shard is the same object.
    expect(changed).toHaveLength(2);
    expect(changed.some((n) => n.includes('.keys-'))).toBe(true);
    expect(changed.some((n) => n === 'keystile-orders.prod')).toBe(true);
  });
});
