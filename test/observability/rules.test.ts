// The alerts on Debian's promtool: the rule file passes `promtool check rules`, and the cases of
// rule-cases.ts pass `promtool test rules` (each alert firing, with its labels and rendered annotations,
// and not firing). A control run shows the cases are not vacuous: each firing expectation removed
// makes promtool fail.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { allAlerts } from '../../charts/observability/alerts.ts';
import { PATHS } from '../../charts/observability/generate.ts';
import { binaries } from '../ground/paths.ts';
import { promtoolTests, RULE_CASES, type RuleCase } from './rule-cases.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'keystile-rules-'));

/** Runs promtool; resolves with its exit code and output (it exits 1 on a failed test). */
async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(binaries().promtool, args);
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number')
      throw new Error(`promtool did not run (${binaries().promtool}): ${e.message}`);
    return { code: e.code, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

async function testRules(
  name: string,
  cases: readonly RuleCase[],
): Promise<{ code: number; output: string }> {
  const file = join(dir, `${name}.test.yaml`);
  writeFileSync(file, promtoolTests(cases));
  return promtool('test', 'rules', file);
}

describe('the Prometheus alerts', () => {
  it('pass promtool check rules', async () => {
    const { code, output } = await promtool('check', 'rules', PATHS.rules);
    expect(output).toContain(`SUCCESS: ${allAlerts().length} rules found`);
    expect(code).toBe(0);
  });

  it('pass promtool test rules: each alert fires with its labels and annotations, and stays quiet', async () => {
    const { code, output } = await testRules('all', RULE_CASES);
    expect(output).toContain('SUCCESS');
    expect(code, output).toBe(0);
  }, 30_000);

  it('have, for every alert, a case where it fires and one where it must not', () => {
    const checks = RULE_CASES.flatMap((c) => c.checks);
    const missing = allAlerts().flatMap((a) => {
      const mine = checks.filter((c) => c.alert === a.alert);
      return [
        ...(mine.some((c) => c.fires.length > 0) ? [] : [`${a.alert}: no case where it fires`]),
        ...(mine.some((c) => c.fires.length === 0) ? [] : [`${a.alert}: no case where it stays quiet`]),
      ];
    });
    expect(missing).toEqual([]);
  });

  it('are tested for real: without any one firing expectation, promtool fails', async () => {
    const vacuous: string[] = [];
    for (const c of RULE_CASES) {
      for (const [i, check] of c.checks.entries()) {
        if (check.fires.length === 0) continue;
        const mutated: RuleCase = {
          ...c,
          checks: c.checks.map((k, j) => (j === i ? { ...k, fires: [] } : k)),
        };
        const { code } = await testRules(`control-${check.alert}-${i}`, [mutated]);
        if (code === 0) vacuous.push(`${c.name}: ${check.alert} at ${check.at}`);
      }
    }
    expect(vacuous).toEqual([]);
  }, 60_000);
});
