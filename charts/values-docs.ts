/**
 * The chart's values, written out from values.schema.json: `values.yaml` (every default, described) and
 * docs/reference/values.md (a table per section). Pure functions of the schema; charts/generate.ts
 * writes the files and checks them for staleness.
 */
import { stringify } from 'yaml';

/** A JSON schema as values.schema.json holds it (plain data). */
export type Schema = Record<string, unknown>;

/** One setting of the reference: a row of its table. */
export interface ValueRow {
  /** e.g. `gateway.stages[].port` */
  readonly path: string;
  readonly type: string;
  /** The default as YAML flow text; empty for objects described by their fields. */
  readonly default: string;
  readonly constraints: string;
  readonly description: string;
}

const properties = (s: Schema): [string, Schema][] =>
  Object.entries((s['properties'] as Record<string, Schema> | undefined) ?? {});
const describe = (s: Schema): string => (typeof s['description'] === 'string' ? s['description'] : '');
const hasFields = (s: Schema): boolean => s['type'] === 'object' && s['properties'] !== undefined;

function typeOf(s: Schema): string {
  if (s['type'] === 'array') {
    const item = s['items'] as Schema | undefined;
    return `[]${item ? typeOf(item) : 'unknown'}`;
  }
  const extra = s['additionalProperties'];
  if (s['type'] === 'object' && typeof extra === 'object' && extra !== null)
    return `map[string]${typeOf(extra as Schema)}`;
  return typeof s['type'] === 'string' ? s['type'] : 'unknown';
}

/** YAML flow text of a value, on one line. */
export function flow(value: unknown): string {
  if (value === undefined) return '';
  return stringify(value, { collectionStyle: 'flow', lineWidth: 0, singleQuote: true }).trim();
}

function constraintsOf(s: Schema): string {
  const out: string[] = [];
  const values = s['enum'] as unknown[] | undefined;
  if (values) out.push(`one of ${values.map((v) => `\`${String(v)}\``).join(', ')}`);
  const min = s['minimum'] as number | undefined;
  const max = s['maximum'] as number | undefined;
  if (min !== undefined && max !== undefined) out.push(`${min} to ${max}`);
  else if (min !== undefined) out.push(`at least ${min}`);
  else if (max !== undefined) out.push(`at most ${max}`);
  if (typeof s['pattern'] === 'string') out.push(`matches \`${s['pattern']}\``);
  if (typeof s['maxLength'] === 'number') out.push(`at most ${s['maxLength']} characters`);
  return out.join('; ');
}

/** Every setting under `schema`, depth first, in the schema's order. */
export function valueRows(schema: Schema, prefix = ''): ValueRow[] {
  const rows: ValueRow[] = [];
  for (const [name, s] of properties(schema)) {
    const path = prefix === '' ? name : `${prefix}.${name}`;
    const fields = hasFields(s);
    rows.push({
      path,
      type: typeOf(s),
      default: fields ? '' : flow(s['default']),
      constraints: constraintsOf(s),
      description: describe(s),
    });
    if (fields) rows.push(...valueRows(s, path));
    const item = s['items'] as Schema | undefined;
    if (s['type'] === 'array' && item && hasFields(item)) {
      const itemRows = valueRows(item, `${path}[]`);
      const required = new Set((item['required'] as string[] | undefined) ?? []);
      rows.push(
        ...itemRows.map((r) => {
          const leaf = r.path.slice(`${path}[].`.length);
          return required.has(leaf)
            ? { ...r, constraints: ['required', r.constraints].filter(Boolean).join('; ') }
            : r;
        }),
      );
    }
  }
  return rows;
}

/** The defaults the schema declares, as the object values.yaml holds. */
export function defaultsOf(schema: Schema): unknown {
  if (hasFields(schema)) {
    return Object.fromEntries(properties(schema).map(([name, s]) => [name, defaultsOf(s)]));
  }
  return schema['default'];
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

function yamlLines(schema: Schema, indent: string, topLevel: boolean): string[] {
  const out: string[] = [];
  for (const [name, s] of properties(schema)) {
    if (topLevel && out.length > 0) out.push('');
    for (const line of wrap(describe(s), 104 - indent.length)) out.push(`${indent}# ${line}`);
    if (hasFields(s)) {
      out.push(`${indent}${name}:`);
      out.push(...yamlLines(s, `${indent}  `, false));
    } else {
      const text = stringify({ [name]: s['default'] }, { lineWidth: 0, singleQuote: true }).trimEnd();
      out.push(...text.split('\n').map((l) => `${indent}${l}`));
    }
  }
  return out;
}

/** values.yaml: every default, each with its description as a comment (not yet formatted). */
export function valuesYaml(schema: Schema): string {
  return [
    "# The keystile chart's values. Generated by charts/generate.ts from charts/values.ts (the same",
    '# definition as values.schema.json and docs/reference/values.md): edit that, then run `npm run gen`.',
    '',
    ...yamlLines(schema, '', true),
    '',
  ].join('\n');
}

const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

/** docs/reference/values.md: a section per top-level value, a row per setting. */
export function valuesDoc(schema: Schema): string {
  const parts = [
    '# Helm chart values',
    '',
    '<!-- Generated by charts/generate.ts from charts/values.ts (values.schema.json). Do not edit by hand. -->',
    '',
    'Every value the `charts/keystile` chart takes, its default and its meaning. Helm checks every install',
    'and upgrade against `values.schema.json`: an unknown key, a wrong type or a value out of range is',
    'refused before anything is applied. See [install.md](../install.md) for how they fit together.',
    '',
  ];
  const table = (rows: ValueRow[]): string[] => [
    '| value | type | default | constraints | meaning |',
    '|---|---|---|---|---|',
    ...rows.map((r) => {
      const def = r.default === '' ? '' : `\`${cell(r.default)}\``;
      return `| \`${r.path}\` | ${cell(r.type)} | ${def} | ${cell(r.constraints)} | ${cell(r.description)} |`;
    }),
    '',
  ];
  const general = properties(schema).filter(([name, s]) => name !== 'global' && !hasFields(s));
  parts.push('## General', '', ...table(valueRows({ properties: Object.fromEntries(general) })));
  for (const [name, s] of properties(schema)) {
    if (!hasFields(s)) continue;
    parts.push(`## \`${name}\``, '', describe(s), '', ...table(valueRows(s, name)));
  }
  return parts.join('\n');
}
