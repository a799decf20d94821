// The generated dashboard and rule file: current with their source, valid PromQL everywhere (Debian's
// promtool parses every query), a sound Grafana model (the current schema version, every panel on the
// data-source variable, no two panels on the same cells), and a runbook on the docs page for every alert.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defaultDashboard, type Panel, type RowPanel } from '@grafana/schema';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { allAlerts, RUNBOOK_PAGE, runbookAnchor } from '../../charts/observability/alerts.ts';
import {
  dashboardQueries,
  keystileDashboard,
  ROWS,
  UNCHARTED,
} from '../../charts/observability/dashboard.ts';
import { generated, PATHS } from '../../charts/observability/generate.ts';
import { substitute } from '../../charts/observability/promql.ts';
import { binaries, repoRoot } from '../ground/paths.ts';

const run = promisify(execFile);

const isRow = (p: Panel | RowPanel): p is RowPanel => p.type === 'row';

describe('the generated observability files', () => {
  it('are current with charts/observability (npm run gen)', async () => {
    const stale = (await generated())
      .filter(({ path, content }) => readFileSync(path, 'utf8') !== content)
      .map(({ path }) => path);
    expect(stale, "stale: run 'npm run gen'").toEqual([]);
    // The file on disk is the dashboard the source describes.
    expect(JSON.parse(readFileSync(PATHS.dashboard, 'utf8'))).toEqual(
      JSON.parse(JSON.stringify(keystileDashboard())),
    );
  }, 30_000);

  it('hold only valid PromQL: promtool parses every query, variable selector, alert and probe', async () => {
    const values = {
      namespace: 'shop',
      api: 'orders',
      stage: 'prod',
      plan: '.*',
      rateInterval: '1m',
      range: '1h',
    };
    const exprs = [
      ...dashboardQueries(),
      ...allAlerts().flatMap((a) => [
        { where: `alert ${a.alert}`, expr: a.expr },
        { where: `probe of ${a.alert}`, expr: a.probe },
      ]),
    ];
    // Recording rules are the one place promtool parses PromQL offline.
    const rules = {
      groups: [
        {
          name: 'queries',
          rules: exprs.map((e, i) => ({ record: `keystile:query_${i}`, expr: substitute(e.expr, values) })),
        },
      ],
    };
    const file = join(mkdtempSync(join(tmpdir(), 'keystile-queries-')), 'queries.yaml');
    writeFileSync(file, stringify(rules, { lineWidth: 0 }));
    let output = '';
    try {
      const r = await run(binaries().promtool, ['check', 'rules', file]);
      output = r.stdout + r.stderr;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      output = `${e.stdout ?? ''}${e.stderr ?? e.message}`;
      // Name the queries promtool refused: its messages number the rules.
      const bad = [...output.matchAll(/rule (\d+)/g)].map((m) => exprs[Number(m[1]) - 1]?.where);
      throw new Error(`promtool refused queries (${bad.join('; ')}):\n${output}`);
    }
    expect(output).toContain(`SUCCESS: ${exprs.length} rules found`);
  }, 30_000);

  it('substitute the variables as Grafana does for single values and All', () => {
    const q =
      'sum(rate(keystile_decisions_total{namespace=~"$namespace", plan=~"(.+/)?$plan"}[$__rate_interval]))';
    expect(
      substitute(q, {
        namespace: 'shop',
        api: '.*',
        stage: '.*',
        plan: '.*',
        rateInterval: '2m',
        range: '1h',
      }),
    ).toBe('sum(rate(keystile_decisions_total{namespace=~"shop", plan=~"(.+/)?.*"}[2m]))');
  });

  it("is a dashboard of Grafana's current schema with every panel on the data-source variable", () => {
    const d = keystileDashboard();
    expect(d.schemaVersion).toBe(defaultDashboard.schemaVersion);
    expect(d.schemaVersion).toBeGreaterThanOrEqual(41);
    expect(d.uid).toMatch(/^[a-zA-Z0-9-]{1,40}$/);
    const vars = d.templating?.list?.map((v) => v.name);
    expect(vars).toEqual(['datasource', 'namespace', 'api', 'stage', 'plan']);
    const panels = (d.panels ?? []).filter((p): p is Panel => !isRow(p));
    expect(panels.length).toBe(ROWS.flatMap((r) => r.panels).length);
    for (const p of panels) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.description?.length, p.title).toBeGreaterThan(20);
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) expect(t['datasource'], p.title).toEqual(p.datasource);
    }
  });

  it('lays panels out on the 24-column grid with unique ids and no overlap', () => {
    const all = keystileDashboard().panels ?? [];
    const ids = all.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Map<string, string>();
    const overlaps: string[] = [];
    for (const p of all) {
      const g = p.gridPos;
      if (g === undefined) throw new Error(`panel ${p.title ?? '?'} has no gridPos`);
      expect(g.x + g.w, p.title).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          const other = cells.get(`${x},${y}`);
          if (other !== undefined) overlaps.push(`${p.title ?? '?'} on ${other}`);
          cells.set(`${x},${y}`, p.title ?? '?');
        }
      }
    }
    expect([...new Set(overlaps)]).toEqual([]);
  });

  it('name only panels that exist, wherever a text points at one', () => {
    const titles = new Set(ROWS.flatMap((r) => r.panels.map((p) => p.title)));
    const texts = [
      ...allAlerts().flatMap((a) => [
        { where: `alert ${a.alert}`, text: [a.description, ...a.runbook].join(' ') },
      ]),
      ...ROWS.flatMap((r) => [
        { where: `row ${r.title}`, text: r.about },
        ...r.panels.map((p) => ({ where: `panel ${p.title}`, text: p.description })),
      ]),
      ...Object.entries(UNCHARTED).map(([metric, text]) => ({ where: `UNCHARTED ${metric}`, text })),
    ];
    const named = texts.flatMap(({ where, text }) =>
      [
        // `A` panel, `A` and `B` panels; see "A" (a panel's text pointing at another)
        ...[...text.matchAll(/((?:`[^`]+`(?:, |,? and )?)+) panels?\b/g)].flatMap((m) =>
          [...(m[1] ?? '').matchAll(/`([^`]+)`/g)].map((n) => n[1] ?? ''),
        ),
        ...[...text.matchAll(/[Ss]ee "([^"]+)"/g)].map((m) => m[1] ?? ''),
      ].map((name) => ({ where, name })),
    );
    expect(named.length).toBeGreaterThan(5);
    expect(named.filter(({ name }) => !titles.has(name))).toEqual([]);
  });

  it('give every alert a runbook on the docs page, where runbook_url points', () => {
    const page = readFileSync(join(repoRoot, RUNBOOK_PAGE), 'utf8');
    const headings = new Set(
      [...page.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
        (m[1] ?? '')
          .toLowerCase()
          .replace(/[^\w\- ]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    const missing = allAlerts()
      .map((a) => runbookAnchor(a.alert))
      .filter((anchor) => !headings.has(anchor));
    expect(missing).toEqual([]);
    const rules = readFileSync(PATHS.rules, 'utf8');
    for (const a of allAlerts())
      expect(rules).toContain(`runbook_url: ${RUNBOOK_PAGE}#${runbookAnchor(a.alert)}`);
  });
});
