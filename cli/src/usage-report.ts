/**
 * A usage report, per day and plan, and its three forms: a table for people, CSV and JSON for billing.
 * Pure: the figures come from `usage-sources.ts`, the plan and subjects from `usage-command.ts`.
 */

/** What the report is about: one ApiKey, or every key of a customer. */
export interface UsageScope {
  readonly namespace: string;
  /** The ApiKey (key mode). */
  readonly key?: string;
  readonly keyId?: string;
  /** The key's customer (key mode), or the customer reported on (customer mode). */
  readonly customer?: string;
  /** Customer mode: the keys counted. */
  readonly keys?: readonly string[];
}

/** One plan's figures. */
export interface PlanUsage {
  readonly plan: string;
  /** How the plan counts: per key, or per customer (then a key's figures are its customer's). */
  readonly countBy: 'Key' | 'Customer';
  /** The counter subjects added up (`key:<id>`, `customer:<name>`). */
  readonly subjects: readonly string[];
  /** Requests per day, in the order of the report's days. */
  readonly requests: readonly number[];
}

/** A whole report. */
export interface UsageReport {
  readonly scope: UsageScope;
  readonly days: readonly string[];
  readonly plans: readonly PlanUsage[];
}

/** The output formats. */
export const USAGE_FORMATS = ['table', 'csv', 'json'] as const;
/** An output format. */
export type UsageFormat = (typeof USAGE_FORMATS)[number];

/** The report in `format`, ending with a newline. */
export function formatUsage(report: UsageReport, format: UsageFormat): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(usageJson(report), null, 2)}\n`;
    case 'csv':
      return usageCsv(report);
    case 'table':
      return usageTable(report);
  }
}

/** The CSV columns, one row per day and plan. */
export const CSV_HEADER = [
  'date',
  'namespace',
  'customer',
  'key',
  'key_id',
  'plan',
  'counted_by',
  'requests',
] as const;

function usageCsv(r: UsageReport): string {
  const rows: (string | number)[][] = [[...CSV_HEADER]];
  for (const p of r.plans) {
    r.days.forEach((day, i) => {
      rows.push([
        day,
        r.scope.namespace,
        r.scope.customer ?? '',
        r.scope.key ?? '',
        r.scope.keyId ?? '',
        p.plan,
        p.countBy === 'Customer' ? 'customer' : 'key',
        p.requests[i] ?? 0,
      ]);
    });
  }
  return rows.map((row) => row.map((cell) => csvCell(String(cell))).join(',')).join('\n') + '\n';
}

/** A CSV cell, quoted (RFC 4180) only when it must be: names and dates here never need it. */
function csvCell(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The JSON form. */
export interface UsageJson {
  namespace: string;
  key?: string;
  keyId?: string;
  customer?: string;
  keys?: string[];
  from: string;
  to: string;
  plans: {
    plan: string;
    countedBy: 'key' | 'customer';
    subjects: string[];
    total: number;
    days: { date: string; requests: number }[];
  }[];
}

function usageJson(r: UsageReport): UsageJson {
  return {
    namespace: r.scope.namespace,
    ...(r.scope.key !== undefined && { key: r.scope.key }),
    ...(r.scope.keyId !== undefined && { keyId: r.scope.keyId }),
    ...(r.scope.customer !== undefined && { customer: r.scope.customer }),
    ...(r.scope.keys !== undefined && { keys: [...r.scope.keys] }),
    from: r.days[0] ?? '',
    to: r.days.at(-1) ?? '',
    plans: r.plans.map((p) => ({
      plan: p.plan,
      countedBy: p.countBy === 'Customer' ? 'customer' : 'key',
      subjects: [...p.subjects],
      total: sum(p.requests),
      days: r.days.map((date, i) => ({ date, requests: p.requests[i] ?? 0 })),
    })),
  };
}

function usageTable(r: UsageReport): string {
  const s = r.scope;
  const who =
    s.key !== undefined
      ? `ApiKey ${s.key} (key id ${s.keyId ?? '?'}${s.customer !== undefined ? `, customer ${s.customer}` : ''})`
      : `customer ${s.customer ?? '?'} (${s.keys?.length ?? 0} key${s.keys?.length === 1 ? '' : 's'}: ${(s.keys ?? []).join(', ')})`;
  const lines = [`${who} in namespace ${s.namespace}, ${r.days[0] ?? ''} to ${r.days.at(-1) ?? ''}`];
  for (const p of r.plans) {
    if (p.countBy === 'Customer' && s.key !== undefined) {
      lines.push(
        `plan ${p.plan} counts by customer: its figures are the customer's, all keys together (${p.subjects.join(', ')})`,
      );
    }
  }
  const rows: string[][] = [['DATE', 'PLAN', 'REQUESTS']];
  for (const p of r.plans) r.days.forEach((day, i) => rows.push([day, p.plan, String(p.requests[i] ?? 0)]));
  for (const p of r.plans) rows.push(['total', p.plan, String(sum(p.requests))]);
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((row) => (row[c] ?? '').length)));
  const table = rows.map((row, n) =>
    row
      .map((cell, c) => (c === 2 && n > 0 ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0)))
      .join('   ')
      .trimEnd(),
  );
  if (r.plans.length === 0) table.push('(no plans)');
  return `${[...lines, '', ...table].join('\n')}\n`;
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
