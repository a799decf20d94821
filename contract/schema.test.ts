import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generatedSchema } from './generate.ts';

describe('contract/schema/v1.json', () => {
  it('is up to date with contract/src/format.ts', () => {
    const { file, content } = generatedSchema();
    expect(readFileSync(file, 'utf8'), "run 'npm run gen'").toBe(content);
  });
});
