/**
 * Reads AWS API Gateway's API-key CSV (the "API key file format" of `ImportApiKeys`) into rows, with every
 * bad row named by its line number and a reason. Pure: text in, rows and problems out.
 *
 * The format: a header naming the columns `Name`, `Key`, `Description`, `Enabled`, `UsagePlanIds` in any
 * order, case-insensitive; other columns are ignored. `UsagePlanIds` holds a comma-separated list in a
 * quoted field (AWS allows double or single quotes). `Enabled` defaults to true.
 *
 * Keystile's choices, where AWS and Kubernetes differ (docs/cli.md says the same):
 * - `Name` and `Key` are both required, as AWS requires both columns. The name becomes the ApiKey's name,
 *   so it must be a DNS label (lower-case letters, digits, `-`, up to 63 characters); it is never rewritten
 *   (`Acme` and `acme` would merge) nor made up from the value (that would print a fingerprint of it).
 * - A name or a value that appears on two rows makes every such row bad: which one was meant is not ours
 *   to guess (AWS keeps the last).
 *
 * Reasons never quote a key value.
 */
import { CsvError, type InfoField, parse } from 'csv-parse/sync';
import { checkImportedValue } from '../../contract/src/key-format.ts';

/** One good row. */
export interface ImportRow {
  /** The line the row starts on (1-based; the header is line 1 in most files). */
  readonly line: number;
  /** The ApiKey's name (a DNS label). */
  readonly name: string;
  /** The key value (secret: never print it). */
  readonly value: string;
  /** The Description column, if not empty. */
  readonly description?: string;
  /** The Enabled column (default true). */
  readonly enabled: boolean;
  /** The UsagePlanIds column, split, deduplicated, in order. */
  readonly plans: readonly string[];
}

/** A bad row, or a problem with the file. */
export interface RowProblem {
  /** The line (0 for the file as a whole). */
  readonly line: number;
  /** The ApiKey name, when the row had a usable one. */
  readonly name?: string;
  /** Why; never quotes the value. */
  readonly reason: string;
}

/** What a file holds. */
export interface ParsedCsv {
  readonly rows: readonly ImportRow[];
  readonly problems: readonly RowProblem[];
  /** How many data rows the file has (good and bad). */
  readonly dataRows: number;
}

/** The columns Keystile reads, lower-cased. */
export const CSV_COLUMNS = ['name', 'key', 'description', 'enabled', 'usageplanids'] as const;
type Column = (typeof CSV_COLUMNS)[number];

/** A DNS label: what an ApiKey name must be for its Secrets and labels to work. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** AWS's limit on a key's description and name. */
const MAX_DESCRIPTION = 1024;

/** A record as the CSV parser gave it, with the line it starts on. */
interface RawRecord {
  readonly line: number;
  readonly fields: readonly string[];
  /** Whether each field was quoted (with double quotes) in the text. */
  readonly quoted: readonly boolean[];
}

/** Parses the file's text; never throws. */
export function parseImportCsv(text: string): ParsedCsv {
  const { records, problems } = readRecords(text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n'));
  const out: RowProblem[] = [...problems];
  const [header, ...data] = records;
  if (header === undefined) {
    return {
      rows: [],
      problems: [...out, { line: 0, reason: 'the file has no header line (Name,Key,...)' }],
      dataRows: 0,
    };
  }
  const columns = new Map<Column, number>();
  header.fields.forEach((f, i) => {
    const c = f.trim().toLowerCase() as Column;
    if ((CSV_COLUMNS as readonly string[]).includes(c) && !columns.has(c)) columns.set(c, i);
  });
  const missing = (['name', 'key'] as const).filter((c) => !columns.has(c));
  if (missing.length > 0) {
    return {
      rows: [],
      problems: [
        ...out,
        {
          line: header.line,
          reason: `the header must name the columns Name and Key (AWS's API key file format); ${missing.map((c) => (c === 'key' ? 'Key' : 'Name')).join(' and ')} missing`,
        },
      ],
      dataRows: countData(data) + problems.length,
    };
  }

  const candidates: ImportRow[] = [];
  const byName = new Map<string, number[]>();
  const byValue = new Map<string, number[]>();
  for (const record of data) {
    if (record.fields.every((f) => f.trim() === '')) continue; // a line of spaces
    const fields = fitToHeader(record, header.fields.length);
    if (typeof fields === 'string') {
      out.push({ line: record.line, reason: fields });
      continue;
    }
    const cell = (c: Column): string => {
      const i = columns.get(c);
      return i === undefined ? '' : (fields[i] ?? '').trim();
    };
    // Every record with a name or a value counts for uniqueness, good or bad: a row must not be imported
    // because the other row with its name or value happens to be bad for another reason.
    if (cell('name') !== '') addLine(byName, cell('name'), record.line);
    if (cell('key') !== '') addLine(byValue, cell('key'), record.line);
    const row = checkRow(record.line, cell);
    if ('reason' in row) out.push(row);
    else candidates.push(row);
  }

  // Names and values are unique within the file: every row of a duplicate is bad.
  const rows: ImportRow[] = [];
  for (const r of candidates) {
    const sameName = (byName.get(r.name) ?? []).filter((l) => l !== r.line);
    const sameValue = (byValue.get(r.value) ?? []).filter((l) => l !== r.line);
    if (sameName.length > 0) {
      out.push({ line: r.line, name: r.name, reason: `the name ${r.name} is also on ${lines(sameName)}` });
    } else if (sameValue.length > 0) {
      out.push({ line: r.line, name: r.name, reason: `the same key value is also on ${lines(sameValue)}` });
    } else rows.push(r);
  }
  out.sort((a, b) => a.line - b.line);
  return { rows, problems: out, dataRows: countData(data) + problems.length };
}

function countData(records: readonly RawRecord[]): number {
  return records.filter((r) => r.fields.some((f) => f.trim() !== '')).length;
}

function lines(ls: readonly number[]): string {
  return ls.length === 1 ? `line ${ls[0] ?? ''}` : `lines ${ls.join(', ')}`;
}

function addLine(m: Map<string, number[]>, cell: string, line: number): void {
  m.set(cell, [...(m.get(cell) ?? []), line]);
}

/** Checks one record's cells: a row, or the first thing wrong with it. */
function checkRow(line: number, cell: (c: Column) => string): ImportRow | RowProblem {
  const name = cell('name');
  const value = cell('key');
  const bad = (reason: string): RowProblem => ({
    line,
    ...(name !== '' && DNS_LABEL.test(name) && { name }),
    reason,
  });
  if (name === '') return bad('Name is empty: every key needs a name (it becomes the ApiKey name)');
  if (!DNS_LABEL.test(name))
    return bad(
      `Name is not a DNS label (lower-case letters, digits and '-', up to 63 characters): ${labelFault(name)}`,
    );
  if (value === '') return bad('Key is empty');
  const valueProblem = checkImportedValue(value);
  if (valueProblem !== undefined) return bad(`Key: ${valueProblem}`);
  const enabledText = cell('enabled').toLowerCase();
  if (enabledText !== '' && enabledText !== 'true' && enabledText !== 'false') {
    return bad(
      `Enabled must be true or false (or empty, meaning true), got ${cell('enabled').length <= 10 ? JSON.stringify(cell('enabled')) : `${cell('enabled').length} characters`}`,
    );
  }
  const description = cell('description');
  if (description.length > MAX_DESCRIPTION)
    return bad(`Description is longer than ${MAX_DESCRIPTION} characters`);
  const plans: string[] = [];
  for (const p of unquote(cell('usageplanids')).split(',')) {
    const id = p.trim();
    if (id !== '' && !plans.includes(id)) plans.push(id);
  }
  return {
    line,
    name,
    value,
    enabled: enabledText !== 'false',
    plans,
    ...(description !== '' && { description }),
  };
}

/**
 * What is wrong with a Name that is not a DNS label, without quoting it: with the columns swapped the
 * cell is a key value. Its length, and the position (1-based) and kind of its first bad character.
 */
function labelFault(name: string): string {
  const length = `${name.length} character${name.length === 1 ? '' : 's'}`;
  const bad = name.search(/[^a-z0-9-]/);
  if (bad >= 0) {
    const c = name.charAt(bad);
    const kind = /[A-Z]/.test(c)
      ? 'an upper-case letter'
      : c === '_'
        ? "'_'"
        : c === '.'
          ? "'.'"
          : 'a character not allowed';
    return `${length}, the first bad one at position ${bad + 1} (${kind})`;
  }
  if (name.length > 63) return `${length}, more than 63`;
  return `${length}, starting or ending with '-'`;
}

/** A single-quoted UsagePlanIds cell without a comma inside arrives with its quotes: strip them. */
function unquote(s: string): string {
  return s.length >= 2 && s.startsWith("'") && s.endsWith("'") ? s.slice(1, -1) : s;
}

/**
 * A record's fields, as many as the header has: AWS allows the UsagePlanIds list in single quotes, which
 * a CSV parser splits at its commas; such a record is mended from the fields the parser gave: a run from
 * an unquoted field starting with `'` to the next unquoted one ending with `'` is one field again, joined
 * with the commas it was split at, without those quotes. (Reading the raw row again with `'` as the quote
 * would take the double quotes of the other fields into their values.) Fewer fields than the header leave
 * the rest empty (AWS's defaults). Returns the reason when it cannot be made to fit.
 */
function fitToHeader(record: RawRecord, width: number): readonly string[] | string {
  if (record.fields.length <= width) return record.fields;
  const fields: string[] = [];
  for (let i = 0; i < record.fields.length; i++) {
    const f = record.fields[i] ?? '';
    const opens = !record.quoted[i] && f.trimStart().startsWith("'");
    const closesItself = f.trim().length >= 2 && f.trim().endsWith("'");
    if (!opens || closesItself) {
      fields.push(f);
      continue;
    }
    let end = i + 1;
    while (
      end < record.fields.length &&
      (record.quoted[end] || !(record.fields[end] ?? '').trimEnd().endsWith("'"))
    )
      end++;
    if (end >= record.fields.length) {
      fields.push(f);
      continue;
    }
    const joined = record.fields
      .slice(i, end + 1)
      .join(',')
      .trim();
    fields.push(joined.slice(1, -1));
    i = end;
  }
  if (fields.length <= width) return fields;
  return `the row has ${record.fields.length} fields but the header names ${width}; quote a field that holds a comma`;
}

/**
 * Every record of the text, each with the line it starts on. A record the parser refuses (a quote not
 * closed, text after a closing quote) is reported at its first line, and reading resumes at the next
 * line, so one broken row does not hide the rows after it.
 */
function readRecords(text: string): { records: RawRecord[]; problems: RowProblem[] } {
  const records: RawRecord[] = [];
  const problems: RowProblem[] = [];
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) lineStarts.push(i + 1);
  let from = 1; // the physical line this pass starts on
  while (from <= lineStarts.length) {
    const offset = lineStarts[from - 1] ?? text.length;
    const chunk = text.slice(offset);
    let lastEnd = from - 1;
    let quoting: boolean[] = [];
    try {
      // With `raw`, each record arrives with its text; `lines` is the line the record ends on.
      const onRecord = (got: unknown, { lines }: { lines: number }): null => {
        const { record, raw } = got as { record: string[]; raw: string };
        const end = lines + from - 1;
        const body = raw.replace(/^\n+/, '').replace(/\n$/, '');
        const start = end - (body.match(/\n/g)?.length ?? 0);
        records.push({ line: start, fields: record, quoted: quoting.slice(-record.length) });
        quoting = [];
        lastEnd = end;
        return null;
      };
      parse(chunk, {
        relax_column_count: true,
        skip_empty_lines: true,
        raw: true,
        on_record: onRecord,
        // Called for each field before its record is complete: notes whether it was quoted.
        cast: (value: string, context: InfoField) => {
          quoting.push(context.quoting);
          return value;
        },
      });
      break;
    } catch (err) {
      // The refused record starts at the first non-empty line after the last good one.
      let start = lastEnd + 1;
      while (start < lineStarts.length && lineAt(text, lineStarts, start).trim() === '') start++;
      problems.push({ line: start, reason: csvReason(err) });
      from = start + 1;
    }
  }
  return { records, problems };
}

function lineAt(text: string, starts: readonly number[], line: number): string {
  const begin = starts[line - 1] ?? text.length;
  const end = starts[line] ?? text.length;
  return text.slice(begin, end);
}

/** The parser's complaint in words that never quote the row (it may hold a key value). */
function csvReason(err: unknown): string {
  const code: string | undefined = err instanceof CsvError ? err.code : undefined;
  switch (code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return 'not valid CSV: a quoted field is not closed';
    case 'CSV_INVALID_CLOSING_QUOTE':
      return 'not valid CSV: text follows a closing quote (double a quote inside a quoted field: "")';
    case 'INVALID_OPENING_QUOTE': // csv-parse's code for this one has no CSV_ prefix
      return 'not valid CSV: a quote inside an unquoted field (quote the whole field)';
    default:
      return `not valid CSV${code ? ` (${code})` : ''}`;
  }
}
