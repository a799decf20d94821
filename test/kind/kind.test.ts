// test/kind/run.sh runs the e2e suite on a kind cluster; it needs Docker, which this machine lacks, so it
// cannot run here. What can be checked is: it parses (bash -n), every repository path it uses exists,
// the kind config is one kind reads, and the chart accepts the values it installs with (helm template
// with the same --set flags, validated by the chart's values.schema.json).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { binaries } from '../ground/paths.ts';

const repo = resolve(import.meta.dirname, '../..');
const script = readFileSync(join(import.meta.dirname, 'run.sh'), 'utf8');
const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;

/** The `--set key=value` flags of the helm install, with the script's variables filled in. */
function helmSets(): [string, string][] {
  const vars: Record<string, string> = { tag: version };
  for (const m of script.matchAll(/^(\w+)=([^\s$"'`]+)$/gm)) vars[m[1] ?? ''] = m[2] ?? '';
  return [...script.matchAll(/--set ([\w.]+)=("?)(\S+?)\2(?:\s|$)/g)].map((m) => {
    const raw = m[3] ?? '';
    const value = raw.replace(/^\$(\w+)$/, (_, v: string) => {
      const known = vars[v];
      if (known === undefined)
        throw new Error(`run.sh: --set ${m[1] ?? ''} uses $${v}, which the test cannot fill`);
      return known;
    });
    return [m[1] ?? '', value];
  });
}

describe('test/kind/run.sh', () => {
  it('parses', () => {
    expect(() =>
      execFileSync('bash', ['-n', join(import.meta.dirname, 'run.sh')], { stdio: 'pipe' }),
    ).not.toThrow();
  });

  it('uses repository paths that exist', () => {
    const paths = new Set(
      [
        ...script.matchAll(/(?:^|[\s"'=])((?:test|operator|enforcer|charts|cli)\/[\w./-]+|package\.json)/gm),
      ].map((m) => (m[1] ?? '').replace(/[.,:;)]+$/, '')),
    );
    for (const p of [
      'test/kind/kind-config.yaml',
      'operator/Dockerfile',
      'enforcer/Dockerfile',
      'charts/keystile',
      'test/ground/bootstrap.sh',
      'test/ground/install.sh',
    ]) {
      expect(paths.has(p), `run.sh should use ${p}`).toBe(true);
    }
    for (const p of paths) expect(existsSync(join(repo, p)), `${p} (used by run.sh)`).toBe(true);
  });

  it('runs the e2e project, with KUBECONFIG on kind and a state directory and ports of its own', () => {
    const vitest = /KUBECONFIG="\$kubeconfig".*\n.*vitest" run --project e2e/.exec(script)?.[0] ?? '';
    expect(vitest).toMatch(/KEYSTILE_STATE_DIR=/);
    expect(vitest).toMatch(/KEYSTILE_PORT_BASE=/);
    // The images it builds are the ones the chart (and keystile inject) name.
    const values = parse(readFileSync(join(repo, 'charts/keystile/values.yaml'), 'utf8')) as {
      operator: { image: { repository: string } };
      gateway: { enforcer: { image: { repository: string } } };
    };
    expect(script).toContain(`operator_image=${values.operator.image.repository}\n`);
    expect(script).toContain(`enforcer_image=${values.gateway.enforcer.image.repository}\n`);
  });

  it('installs the chart with values its schema accepts', () => {
    const sets = helmSets();
    expect(sets.map(([k]) => k)).toContain('operator.image.tag');
    const out = execFileSync(
      binaries().helm,
      [
        'template',
        'keystile',
        join(repo, 'charts/keystile'),
        '--namespace',
        'keystile-system',
        ...sets.flatMap(([k, v]) => ['--set', `${k}=${v}`]),
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    expect(out).toContain(`image: ghcr.io/keystile/operator:${version}`);
    expect(out).toContain('imagePullPolicy: Never');
  }, 60_000);
});

describe('test/kind/kind-config.yaml', () => {
  it('is a kind Cluster config', () => {
    const config = parse(readFileSync(join(import.meta.dirname, 'kind-config.yaml'), 'utf8')) as {
      kind: string;
      apiVersion: string;
      nodes: { role: string }[];
    };
    expect(config.kind).toBe('Cluster');
    expect(config.apiVersion).toBe('kind.x-k8s.io/v1alpha4');
    expect(config.nodes.map((n) => n.role)).toContain('control-plane');
  });
});
