// Writes docs/reference/fields.md, the field tables of every kind, from the TypeBox definitions in crds/src
// (the one source the CRDs come from too), so the reference cannot drift from what the API server admits.
//   node crds/docs.ts          write the file
//   node crds/docs.ts --check  exit 1, naming the file, if it differs from its source
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { plainSchema } from './src/crd.ts';
import { API_VERSION, type KindDefinition, KINDS } from './src/kinds.ts';
import type { CelRule } from './src/schema.ts';

/** The generated reference. */
export const FIELDS_DOC: string = join(import.meta.dirname, '..', 'docs', 'reference', 'fields.md');

/** A JSON schema as the CRD carries it (plain data). */
type Schema = Record<string, unknown>;

/** One row of a field table. */
export interface FieldRow {
  /** e.g. `spec.routes[].throttle.burstLimit` */
  readonly path: string;
  readonly type: string;
  readonly default: string;
  readonly constraints: string;
  readonly description: string;
}

/** One CEL rule, where the API server reports it, and what it says. */
export interface RuleRow {
  /** The field the error names, e.g. `spec.throttle.burstLimit`. */
  readonly reportedOn: string;
  readonly rule: string;
  readonly message: string;
  /** Transition rules (those reading oldSelf) run only when an object is updated. */
  readonly onUpdateOnly: boolean;
}

function props(schema: Schema): [string, Schema][] {
  return Object.entries((schema['properties'] as Record<string, Schema> | undefined) ?? {});
}

function items(schema: Schema): Schema | undefined {
  return schema['items'] as Schema | undefined;
}

function isObjectWithFields(schema: Schema): boolean {
  return schema['type'] === 'object' && schema['properties'] !== undefined;
}

/** `string`, `integer`, `[]object`, `map[string]string`, ... */
function typeOf(schema: Schema): string {
  if (schema['type'] === 'array') {
    const item = items(schema);
    return `[]${item ? typeOf(item) : 'unknown'}`;
  }
  const additional = schema['additionalProperties'];
  if (schema['type'] === 'object' && typeof additional === 'object' && additional !== null)
    return `map[string]${typeOf(additional as Schema)}`;
  return typeof schema['type'] === 'string' ? schema['type'] : 'unknown';
}

function code(value: unknown): string {
  return `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``;
}

function range(min: unknown, max: unknown, unit: string): string | undefined {
  const lo = typeof min === 'number' ? min : undefined;
  const hi = typeof max === 'number' ? max : undefined;
  const u = unit === '' ? '' : ` ${unit}`;
  if (lo !== undefined && hi !== undefined) return `${lo} to ${hi}${u}`;
  if (lo !== undefined) return `at least ${lo}${u}`;
  if (hi !== undefined) return `at most ${hi}${u}`;
  return undefined;
}

/** The structural constraints of one schema (not its CEL rules), in words. */
function constraintsOf(schema: Schema): string[] {
  const out: string[] = [];
  const values = schema['enum'] as unknown[] | undefined;
  if (values) out.push(`one of ${values.map(code).join(', ')}`);
  const numeric = range(schema['minimum'], schema['maximum'], '');
  if (numeric) out.push(numeric);
  // StringEnum adds maxLength only to bound CEL's cost: the enum already says it.
  if (!values) {
    const length = range(schema['minLength'], schema['maxLength'], 'characters');
    if (length) out.push(length);
  }
  if (typeof schema['pattern'] === 'string') out.push(`matches ${code(schema['pattern'])}`);
  if (schema['format'] === 'date-time') out.push('an RFC 3339 date-time');
  const count = range(schema['minItems'], schema['maxItems'], 'items');
  if (count) out.push(count);
  if (schema['x-kubernetes-list-type'] === 'set') out.push('no duplicates');
  const mapKeys = schema['x-kubernetes-list-map-keys'] as string[] | undefined;
  if (schema['x-kubernetes-list-type'] === 'map' && mapKeys) out.push(`unique by ${mapKeys.join(' and ')}`);
  const entries = range(schema['minProperties'], schema['maxProperties'], 'entries');
  if (entries) out.push(entries);
  const additional = schema['additionalProperties'];
  if (typeof additional === 'object' && additional !== null) {
    const inner = constraintsOf(additional as Schema);
    if (inner.length > 0) out.push(`each value: ${inner.join(', ')}`);
  }
  const item = items(schema);
  if (item && !isObjectWithFields(item)) {
    const inner = constraintsOf(item);
    if (inner.length > 0) out.push(`each item: ${inner.join(', ')}`);
  }
  return out;
}

/** Every field under `schema`, depth first, each object's fields after the object. */
export function fieldRows(schema: Schema, path: string): FieldRow[] {
  const rows: FieldRow[] = [];
  const required = new Set((schema['required'] as string[] | undefined) ?? []);
  for (const [name, child] of props(schema)) {
    const childPath = `${path}.${name}`;
    const constraints = [...(required.has(name) ? ['required'] : []), ...constraintsOf(child)];
    rows.push({
      path: childPath,
      type: typeOf(child),
      default: child['default'] === undefined ? '' : code(child['default']),
      constraints: constraints.join('; '),
      description: typeof child['description'] === 'string' ? child['description'] : '',
    });
    if (isObjectWithFields(child)) rows.push(...fieldRows(child, childPath));
    const item = items(child);
    if (item && isObjectWithFields(item)) rows.push(...fieldRows(item, `${childPath}[]`));
  }
  return rows;
}

/** Every CEL rule under `schema` (the schema's own included), with the field its error names. */
export function ruleRows(schema: Schema, path: string): RuleRow[] {
  const rows: RuleRow[] = ((schema['x-kubernetes-validations'] as CelRule[] | undefined) ?? []).map((r) => ({
    reportedOn: `${path}${r.fieldPath ?? ''}`,
    rule: r.rule,
    message: r.message ?? (r.messageExpression ? `computed: ${r.messageExpression}` : ''),
    onUpdateOnly: r.rule.includes('oldSelf'),
  }));
  for (const [name, child] of props(schema)) {
    rows.push(...ruleRows(child, `${path}.${name}`));
    const item = items(child);
    if (item) rows.push(...ruleRows(item, `${path}.${name}[]`));
  }
  return rows;
}

/** The CEL rules on a kind's whole object (they can read metadata.name), with the field their error names. */
export function objectRuleRows(def: KindDefinition): RuleRow[] {
  return (def.rules ?? []).map((r) => ({
    reportedOn: r.fieldPath?.replace(/^\./, '') ?? '<nil>',
    rule: r.rule,
    message: r.message ?? (r.messageExpression ? `computed: ${r.messageExpression}` : ''),
    onUpdateOnly: r.rule.includes('oldSelf'),
  }));
}

/** A Markdown table cell: one line, pipes escaped (also inside code spans, as GFM tables require). */
function cell(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
}

function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.map(cell).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function fieldTable(rows: readonly FieldRow[]): string {
  return markdownTable(
    ['field', 'type', 'default', 'constraints', 'description'],
    rows.map((r) => [code(r.path), code(r.type), r.default, r.constraints, r.description]),
  );
}

function kindSection(def: KindDefinition): string {
  const spec = plainSchema(def.spec);
  const status = plainSchema(def.status);
  const rules = [...objectRuleRows(def), ...ruleRows(spec, 'spec')];
  return [
    `## ${def.kind}`,
    def.description,
    `\`kubectl get ${def.plural}\`; short names ${def.shortNames.map(code).join(', ')}; singular ${code(def.singular)}. ` +
      `Namespaced, in the \`keystile\` category (\`kubectl get keystile\`).` +
      (def.nameMaxLength === undefined
        ? ''
        : ` Names (\`metadata.name\`) are at most ${def.nameMaxLength} characters.`),
    `### ${def.kind} printer columns`,
    markdownTable(
      ['column', 'value', 'shows', 'shown'],
      def.columns.map((c) => [
        c.name,
        code(c.jsonPath),
        c.description,
        c.priority !== undefined && c.priority > 0 ? 'with `-o wide`' : 'always',
      ]),
    ),
    `### ${def.kind} spec`,
    typeof spec['description'] === 'string' ? spec['description'] : '',
    fieldTable(fieldRows(spec, 'spec')),
    `### ${def.kind} validation rules`,
    rules.length === 0
      ? 'No CEL rules: the field constraints above are all.'
      : 'CEL rules the API server evaluates (`x-kubernetes-validations`), beside the field constraints above. ' +
        'A refused object gets an error naming the field the rule reports on, with the message.\n\n' +
        markdownTable(
          ['reported on', 'rule', 'message', 'checked'],
          rules.map((r) => [
            code(r.reportedOn),
            code(r.rule),
            r.message.startsWith('computed: ') ? `computed: ${code(r.message.slice(10))}` : r.message,
            r.onUpdateOnly ? 'on update' : 'on create and update',
          ]),
        ),
    `### ${def.kind} status`,
    typeof status['description'] === 'string' ? status['description'] : '',
    fieldTable(fieldRows(status, 'status')),
  ]
    .filter((part) => part !== '')
    .join('\n\n');
}

/** The whole of docs/reference/fields.md. */
export function renderFieldsDoc(): string {
  const toc = KINDS.map((k) => `- [${k.kind}](#${k.kind.toLowerCase()}) (\`${k.plural}\`)`).join('\n');
  return `${[
    '# Field reference',
    '<!-- Generated by `node crds/docs.ts` from crds/src/ (TypeBox). Do not edit by hand. -->',
    `Every field of the Keystile resources (\`apiVersion: ${API_VERSION}\`), generated from the same TypeBox ` +
      'definitions as the CRDs (`crds/src/`), so it says exactly what the API server admits. ' +
      'For what each resource is for, with examples, see [resources.md](../resources.md).',
    toc,
    ...KINDS.map(kindSection),
  ].join('\n\n')}\n`;
}

/**
 * Writes `file` from the source, or with `--check` leaves it alone and reports whether it is stale.
 * Returns the exit code: 1 when checking finds the file stale, else 0.
 */
export function main(argv: readonly string[], file: string = FIELDS_DOC): number {
  const content = renderFieldsDoc();
  let current: string | undefined;
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    // missing: stale
  }
  if (current === content) return 0;
  if (argv.includes('--check')) {
    console.error(`stale generated file (run 'node crds/docs.ts'):\n  ${file}`);
    return 1;
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
  return 0;
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2));
