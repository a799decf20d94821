import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../test/ground/paths.ts';
import { describe, expect, it, vi } from 'vitest';
import { FIELDS_DOC, main, renderFieldsDoc } from './docs.ts';
import { plainSchema } from './src/crd.ts';
import { KINDS } from './src/kinds.ts';

describe('docs/reference/fields.md', () => {
  it('is up to date with crds/src', () => {
    expect(readFileSync(FIELDS_DOC, 'utf8'), "run 'node crds/docs.ts'").toBe(renderFieldsDoc());
  });
});

/** The cells of a Markdown table row; an escaped pipe (`\|`) stays inside its cell, as GFM reads it. */
function cells(row: string): string[] {
  return row
    .slice(1, -1)
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

/** The tables of a Markdown document, each a list of rows. */
function tables(doc: string): string[][] {
  const out: string[][] = [];
  let current: string[] | undefined;
  for (const line of doc.split('\n')) {
    if (!line.startsWith('|')) {
      current = undefined;
      continue;
    }
    if (!current) out.push((current = []));
    current.push(line);
  }
  return out;
}

/** Every field path under a schema, walked independently of the renderer. */
function* fieldPaths(schema: Record<string, unknown>, path: string): Generator<string> {
  const props = (schema['properties'] ?? {}) as Record<string, Record<string, unknown>>;
  for (const [name, child] of Object.entries(props)) {
    yield `${path}.${name}`;
    yield* fieldPaths(child, `${path}.${name}`);
    const items = child['items'] as Record<string, unknown> | undefined;
    if (items) yield* fieldPaths(items, `${path}.${name}[]`);
  }
}

describe('renderFieldsDoc', () => {
  const doc = renderFieldsDoc();
  const rows = tables(doc).flat();
  const rowOf = (first: string): string[] | undefined => rows.map(cells).find((c) => c[0] === `\`${first}\``);

  it('gives every row of a table as many cells as its header (pipes in patterns and rules escaped)', () => {
    const bad = tables(doc).flatMap((table) => {
      const width = cells(table[0] ?? '').length;
      return table.filter((row) => cells(row).length !== width);
    });
    expect(bad).toEqual([]);
    // The route pattern and the `||` rules hold pipes: they are in the doc, escaped.
    expect(doc).toContain('\\|\\| has(self.quota)');
  });

  it.each(KINDS.map((k) => [k.kind, k] as const))(
    'has a row for every spec and status field of %s',
    (_, def) => {
      const documented = new Set(rows.map((r) => cells(r)[0]));
      const missing = [
        ...fieldPaths(plainSchema(def.spec), 'spec'),
        ...fieldPaths(plainSchema(def.status), 'status'),
      ].filter((p) => !documented.has(`\`${p}\``));
      expect(missing).toEqual([]);
    },
  );

  it("shows a field's type, default, constraints and description", () => {
    expect(rowOf('spec.quota.timeZone')).toEqual([
      '`spec.quota.timeZone`',
      '`string`',
      '`UTC`',
      '1 to 64 characters; matches `^[A-Za-z0-9_+/-]+$`',
      expect.stringContaining('IANA time zone'),
    ]);
    expect(rowOf('spec.throttle.burstLimit')?.slice(0, 4)).toEqual([
      '`spec.throttle.burstLimit`',
      '`integer`',
      '',
      'required; 1 to 10000000',
    ]);
    expect(rowOf('spec.alerts.thresholds')?.[3]).toBe(
      'required; at most 5 items; no duplicates; each item: 1 to 100',
    );
    expect(rowOf('spec.apiStages')?.[3]).toBe('required; 1 to 64 items; unique by api and stage');
  });

  it('lists the CEL rules by the field their error names, transition rules as on update', () => {
    const burst = rows.map(cells).filter((c) => c[0] === '`spec.throttle.burstLimit`');
    expect(burst.map((c) => c[2])).toContainEqual(
      expect.stringContaining('burstLimit must be at least rateLimit'),
    );
    const typeRule = rows.map(cells).find((c) => c[0] === '`spec.type`' && c[1]?.includes('oldSelf'));
    expect(typeRule?.[2]).toBe('type cannot change: create a new ApiKey');
    expect(typeRule?.[3]).toBe('on update');
  });

  it('shows the short names and printer columns of each kind', () => {
    for (const def of KINDS) {
      expect(doc).toContain(`short names ${def.shortNames.map((s) => `\`${s}\``).join(', ')}`);
      for (const column of def.columns) expect(doc).toContain(`| ${column.name} | \`${column.jsonPath}\``);
    }
  });
});

describe('node crds/docs.ts', () => {
  it('--check exits 1 on a stale file and leaves it alone; without --check it rewrites the file', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'keystile-docs-')), 'fields.md');
    writeFileSync(file, 'stale\n');
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      expect(main(['--check'], file)).toBe(1);
      expect(error).toHaveBeenCalledWith(expect.stringContaining(file));
    } finally {
      error.mockRestore();
    }
    expect(readFileSync(file, 'utf8')).toBe('stale\n');
    expect(main([], file)).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(renderFieldsDoc());
    expect(main(['--check'], file)).toBe(0);
  });
});

describe('docs/resources.md', () => {
  const prose = readFileSync(join(repoRoot, 'docs', 'resources.md'), 'utf8');

  it('shows the example files verbatim', () => {
    const blocks = [...prose.matchAll(/```yaml\n# (examples\/\S+\.yaml)\n([\s\S]*?)```/g)];
    expect(blocks.length).toBeGreaterThan(0);
    for (const [, file = '', body] of blocks) {
      expect(body, file).toBe(readFileSync(join(repoRoot, file), 'utf8'));
    }
  });

  it('links only to headings the field reference has', () => {
    const headings = new Set(
      renderFieldsDoc()
        .split('\n')
        .filter((l) => l.startsWith('#'))
        .map((l) => l.replace(/^#+ /, '').toLowerCase().replace(/ /g, '-')),
    );
    const anchors = [...prose.matchAll(/reference\/fields\.md#([\w-]+)/g)].map((m) => m[1]);
    expect(anchors.length).toBeGreaterThan(0);
    expect(anchors.filter((a) => a === undefined || !headings.has(a))).toEqual([]);
  });
});
