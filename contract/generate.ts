// Writes contract/schema/v1.json, the JSON Schema of the rendered contract, from contract/src/format.ts.
//   node contract/generate.ts          write it
//   node contract/generate.ts --check  exit 1 if it is stale
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeysShard, SecretsShard, StageIndex, StandaloneConfig } from './src/format.ts';

/** The generated schema file and its content. */
export function generatedSchema(): { file: string; content: string } {
  const schema = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://keystile.dev/contract/v1.json',
    title: 'Keystile rendered contract v1',
    description:
      'What the operator writes and the enforcer reads, per API stage. Generated from contract/src/format.ts; see docs/contract.md.',
    $defs: { StageIndex, KeysShard, SecretsShard, StandaloneConfig },
  };
  return {
    file: join(import.meta.dirname, 'schema', 'v1.json'),
    content: `${JSON.stringify(schema, null, 2)}\n`,
  };
}

if (import.meta.main) {
  const { file, content } = generatedSchema();
  let current = '';
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    // missing
  }
  if (current !== content) {
    if (process.argv.includes('--check')) {
      console.error(`stale: ${file} (run 'npm run gen')`);
      process.exitCode = 1;
    } else writeFileSync(file, content);
  }
}
