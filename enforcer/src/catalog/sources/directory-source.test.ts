import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { objectNames } from '../../../../contract/src/identity.ts';
import { plan, stageDocuments, testLoader } from '../../../testing/fixtures.ts';
import { readDirectory } from './directory-source.ts';

const stage = { namespace: 'shop', api: 'orders', stage: 'prod' };

function mount(dir: string, docs: ReturnType<typeof stageDocuments>, skipShard?: number): void {
  const put = (name: string, key: string, text: string): void => {
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(join(dir, name, key), text);
  };
  docs.keys.forEach((text, i) => {
    if (i !== skipShard) put(objectNames.keys(stage, i), 'keys.json', text);
  });
  docs.secrets.forEach((text, i) => put(objectNames.secrets(stage, i), 'secrets.json', text));
  put(objectNames.index(stage), 'index.json', JSON.stringify(docs.index));
}

describe('the mounted directory', () => {
  const docs = stageDocuments(
    stage,
    [plan('shop', 'gold')],
    Array.from({ length: 6 }, (_, i) => ({
      id: `dirkey${i}abcde`.slice(0, 12),
      plan: 'gold',
      values: [{ value: `imported-directory-value-${i}` }],
    })),
    2,
  );

  it('reads every index and the shards it names; an unchanged revision is not read again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keystile-dir-'));
    mount(dir, docs);
    const { loader, refusals } = testLoader();
    await loader.load(await readDirectory(dir, loader));
    expect(refusals).toEqual([]);
    expect(loader.current()?.stages.get('shop/orders/prod')?.keyCount).toBe(6);
    const again = await readDirectory(dir, loader);
    expect(again).toEqual({
      kind: 'stages',
      stages: [{ origin: join(dir, objectNames.index(stage)), unchanged: docs.index.revision }],
    });
  });

  it('refuses, as Incomplete, an index whose shard has not been mounted yet', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keystile-dir-'));
    mount(dir, docs, 1);
    const { loader, refusals } = testLoader();
    await loader.load(await readDirectory(dir, loader));
    expect(refusals[0]?.error.code).toBe('Incomplete');
    expect(loader.current()).toBeUndefined();
  });

  it('refuses an index that is not valid, naming where it is', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keystile-dir-'));
    mkdirSync(join(dir, 'keystile-orders.prod'));
    writeFileSync(join(dir, 'keystile-orders.prod', 'index.json'), '{"version":"keystile.dev/contract/v1"}');
    const { loader, refusals } = testLoader();
    await loader.load(await readDirectory(dir, loader));
    expect(refusals[0]?.origin).toBe(join(dir, 'keystile-orders.prod'));
    expect(refusals[0]?.error.code).toBe('Invalid');
  });
});
