import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashKey } from '../../../contract/src/key-format.ts';
import { plan, stageDocuments, stageTexts, standaloneConfig, testLoader } from '../../testing/fixtures.ts';
import { keyOf } from './catalog.ts';
import { ThresholdParser } from './parser.ts';
import { CatalogLoader } from './loader.ts';

const PROD = { namespace: 'shop', api: 'orders', stage: 'prod' };
const BETA = { namespace: 'shop', api: 'orders', stage: 'beta' };
const gold = plan('shop', 'gold', { throttle: { rate: 10, burst: 10 } });

/** A stage of `n` keys over 4 shards (2 keys a shard on average). */
function docs(n: number, enabled = true, stage = PROD): ReturnType<typeof stageDocuments> {
  return stageDocuments(
    stage,
    [gold],
    Array.from({ length: n }, (_, i) => ({
      id: `key${String(i).padStart(4, '0')}abcde`.slice(0, 12),
      plan: 'gold',
      values: [{ value: `imported-value-number-${i}-xxxxxxxx` }],
      enabled: i === 0 ? enabled : true,
    })),
    2,
  );
}

const lookup = (loader: CatalogLoader, i: number, stage = 'shop/orders/prod'): boolean | undefined => {
  const entry = loader
    .current()
    ?.stages.get(stage)
    ?.byHash.get(hashKey(`imported-value-number-${i}-xxxxxxxx`));
  return entry === undefined ? undefined : keyOf(entry).enabled;
};

describe('the catalog loader', () => {
  it('indexes every key of every shard by the SHA-256 of its value', async () => {
    const { loader, swaps } = testLoader();
    const d = docs(8);
    expect(d.index.shards.length).toBe(4);
    await loader.load({ kind: 'stages', stages: [stageTexts(d)] });
    expect(swaps).toHaveLength(1);
    const stage = loader.current()?.stages.get('shop/orders/prod');
    expect(stage?.keyCount).toBe(8);
    for (let i = 0; i < 8; i++) expect(lookup(loader, i)).toBe(true);
    expect(stage?.plans.get('gold')?.id).toBe('shop/gold');
  });

  it('swaps only when every shard the index names has arrived with its hash; until then the last good config serves', async () => {
    const { loader, swaps, refusals } = testLoader();
    await loader.load({ kind: 'stages', stages: [stageTexts(docs(8))] });
    const next = docs(8, false); // key 0 disabled: its shard and the index change
    const changed = next.keys.findIndex((k, i) => k !== docs(8).keys[i]);
    expect(changed).toBeGreaterThanOrEqual(0);

    // The new index has arrived, the changed shard not yet (the old bytes are still there).
    const early = { ...next, keys: docs(8).keys, secrets: docs(8).secrets };
    await loader.load({ kind: 'stages', stages: [stageTexts(early)] });
    expect(refusals.at(-1)?.error.code).toBe('Incomplete');
    expect(swaps).toHaveLength(1);
    expect(lookup(loader, 0)).toBe(true);

    // A shard missing altogether is the same.
    const missing = { ...next, keys: next.keys.map((k, i) => (i === changed ? undefined : k)) };
    await loader.load({ kind: 'stages', stages: [{ ...stageTexts(next), keys: missing.keys }] });
    expect(refusals.at(-1)?.error.code).toBe('Incomplete');
    expect(lookup(loader, 0)).toBe(true);

    // Everything arrived: the swap happens.
    await loader.load({ kind: 'stages', stages: [stageTexts(next)] });
    expect(swaps).toHaveLength(2);
    expect(lookup(loader, 0)).toBe(false);
  });

  it('keeps the last good config when a document fails validation, and says why', async () => {
    const { loader, refusals } = testLoader();
    await loader.load({ kind: 'stages', stages: [stageTexts(docs(4))] });
    const bad = docs(4);
    // A shard that hashes right (the index is recomputed over it) but breaks the schema.
    const broken = bad.keys[0]!.replace('"enabled":true', '"enabled":"yes"');
    const reindexed = stageDocuments(PROD, [gold], []);
    const index = {
      ...bad.index,
      revision: reindexed.index.revision,
      shards: bad.index.shards.map((s, i) =>
        i === 0 ? { ...s, keys: { ...s.keys, sha256: hashKey(broken) } } : s,
      ),
    };
    await loader.load({
      kind: 'stages',
      stages: [{ ...stageTexts(bad), index, keys: [broken, ...bad.keys.slice(1)] }],
    });
    expect(refusals.at(-1)?.error.code).toBe('Invalid');
    expect(refusals.at(-1)?.error.message).toContain('keys.json is invalid');
    expect(lookup(loader, 1)).toBe(true);
  });

  it('never quotes a refused document in its message', async () => {
    const { loader, refusals } = testLoader();
    const d = docs(2);
    const credentials = (JSON.parse(d.secrets[0]!) as { credentials: { hashes: { sha256: string }[] }[] })
      .credentials;
    const material = credentials.map((c) => c.hashes[0]!.sha256.slice(0, 8));
    // Not JSON any more, broken just before the first credential's hash, where JSON.parse's own message
    // quotes the document: what a careless message would pass on.
    const secret = d.secrets[0]!.replace('"sha256":"', '"sha256":x"');
    expect(() => {
      JSON.parse(secret);
    }).toThrow(material[0]);
    const index = {
      ...d.index,
      shards: d.index.shards.map((s, i) =>
        i === 0 ? { ...s, secrets: { ...s.secrets, sha256: hashKey(secret) } } : s,
      ),
    };
    await loader.load({
      kind: 'stages',
      stages: [{ ...stageTexts(d), index, secrets: [secret, ...d.secrets.slice(1)] }],
    });
    const message = refusals[0]?.error.message;
    for (const m of material) expect(message).not.toContain(m);
    expect(message).toBe('shop/orders/prod shard 0: secrets.json is not JSON');
  });

  it('removes a stage its source no longer has, keeps the others', async () => {
    const { loader } = testLoader();
    await loader.load({ kind: 'stages', stages: [stageTexts(docs(2)), stageTexts(docs(2, true, BETA))] });
    expect([...(loader.current()?.stages.keys() ?? [])].sort()).toEqual([
      'shop/orders/beta',
      'shop/orders/prod',
    ]);
    await loader.load({ kind: 'stages', stages: [stageTexts(docs(2, true, BETA))] });
    expect([...(loader.current()?.stages.keys() ?? [])]).toEqual(['shop/orders/beta']);
  });

  it('is not ready (no catalog) while the first config is refused', async () => {
    const { loader } = testLoader();
    await loader.load({
      kind: 'stages',
      stages: [{ origin: 'x', error: { code: 'Invalid', message: 'bad' } }],
    });
    expect(loader.current()).toBeUndefined();
  });

  it('reuses unchanged shards and does not swap for an identical config', async () => {
    const { loader, swaps } = testLoader();
    await loader.load({ kind: 'stages', stages: [stageTexts(docs(8))] });
    const first = loader.current()?.stages.get('shop/orders/prod');
    await loader.load({ kind: 'stages', stages: [stageTexts(docs(8))] });
    expect(swaps).toHaveLength(1);
    await loader.load({ kind: 'stages', stages: [stageTexts(docs(8, false))] });
    const second = loader.current()?.stages.get('shop/orders/prod');
    const reused = second?.shards.filter((s, i) => s === first?.shards[i]).length;
    expect(reused).toBe(3);
  });

  it('loads a standalone file, in a parse process above the threshold, the same as inline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keystile-loader-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, standaloneConfig([docs(8), docs(3, true, BETA)]));
    const swaps: number[] = [];
    const worker = new CatalogLoader(new ThresholdParser(0), {
      swapped: (c) => swaps.push(c.keyCount),
      refused: (_o, e) => {
        throw new Error(e.message);
      },
    });
    await worker.load({ kind: 'file', path: file });
    await worker.close();
    expect(swaps).toEqual([11]);
    expect(lookup(worker, 5)).toBe(true);
    expect(lookup(worker, 2, 'shop/orders/beta')).toBe(true);

    const { loader: inline } = testLoader();
    await inline.load({ kind: 'file', path: file });
    expect(inline.current()?.keyCount).toBe(11);
  });

  it('refuses an unreadable or invalid standalone file, keeping what it has', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keystile-loader-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, standaloneConfig([docs(2)]));
    const { loader, refusals } = testLoader();
    await loader.load({ kind: 'file', path: file });
    writeFileSync(
      file,
      '{"version":"keystile.dev/contract/v9","kind":"KeystileStandaloneConfig","stages":[]}',
    );
    await loader.load({ kind: 'file', path: file });
    expect(refusals.at(-1)?.error).toMatchObject({ code: 'Invalid' });
    expect(refusals.at(-1)?.error.message).toContain('contract version keystile.dev/contract/v9');
    await loader.load({ kind: 'file', path: join(dir, 'missing.json') });
    expect(refusals.at(-1)?.error.code).toBe('Unreadable');
    expect(loader.current()?.keyCount).toBe(2);
  });

  it('refuses a stage whose plan does not compile (a time zone this Node does not know)', async () => {
    const { loader, refusals } = testLoader();
    const d = stageDocuments(
      PROD,
      [plan('shop', 'gold', { quota: { limit: 1, period: 'DAY', timeZone: 'Mars/Olympus' } })],
      [],
    );
    await loader.load({ kind: 'stages', stages: [stageTexts(d)] });
    expect(refusals[0]?.error.message).toContain('timeZone must be an IANA time zone');
  });

  it('says a load is up to date only when it refused nothing: a swap, or a config confirmed as it was', async () => {
    const events: string[] = [];
    const loader = new CatalogLoader(new ThresholdParser(Infinity), {
      swapped: () => events.push('swapped'),
      refused: (_o, e) => events.push(`refused ${e.code}`),
      upToDate: () => events.push('upToDate'),
    });
    const good = docs(8);
    await loader.load({ kind: 'stages', stages: [stageTexts(good)] });
    expect(events.splice(0)).toEqual(['swapped', 'upToDate']);
    // A new index before its shard: refused (Incomplete), the last good config serves, not up to date.
    const next = docs(8, false);
    await loader.load({
      kind: 'stages',
      stages: [stageTexts({ ...next, keys: good.keys, secrets: good.secrets })],
    });
    expect(events.splice(0)).toEqual(['refused Incomplete']);
    // The change withdrawn: what is given is what serves, though nothing is swapped.
    await loader.load({ kind: 'stages', stages: [stageTexts(good)] });
    expect(events.splice(0)).toEqual(['upToDate']);
    // One stage refused beside another swapped in: not up to date.
    const bad = { ...docs(3, true, BETA), keys: ['{'] };
    await loader.load({ kind: 'stages', stages: [stageTexts(next), stageTexts(bad)] });
    expect(events.splice(0)).toEqual([expect.stringMatching(/^refused /), 'swapped']);
    await loader.close();
  });
});
