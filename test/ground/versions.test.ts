import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { groundVersions, repoRoot } from './paths.ts';

// versions.sh is the one place the real parts' versions are set; the Go wrapper modules must agree.
describe('test ground versions', () => {
  const v = groundVersions();
  const read = (p: string): string => readFileSync(join(repoRoot, 'test/ground', p), 'utf8');
  /** The version go.mod requires of a module, in a one-line require or a require block. */
  const required = (mod: string, path: string): string | undefined =>
    new RegExp(`^(?:require )?\\s*${path.replaceAll('.', '\\.')} (v\\S+)`, 'm').exec(mod)?.[1];

  it('pins a supported Kubernetes minor (1.33 or newer)', () => {
    const [major, minor] = (v['KUBE_VERSION'] ?? '').split('.').map(Number);
    expect(major).toBe(1);
    expect(minor).toBeGreaterThanOrEqual(33);
  });

  it('builds the Kubernetes version versions.sh names, with every staging module at its v0 twin', () => {
    const mod = read('kube/go.mod');
    const kube = v['KUBE_VERSION'] ?? '';
    expect(required(mod, 'k8s.io/kubernetes')).toBe(`v${kube}`);
    const replaces = [...mod.matchAll(/^\t(k8s\.io\/[\w-]+) => (k8s\.io\/[\w-]+) (v\S+)$/gm)];
    expect(replaces.length).toBeGreaterThan(25);
    for (const [, from, to, version] of replaces) {
      expect(to).toBe(from);
      expect(version).toBe(`v0.${kube.slice(2)}`);
    }
  });

  it('builds the etcd version versions.sh names', () => {
    expect(required(read('etcd/go.mod'), 'go.etcd.io/etcd/server/v3')).toBe(`v${v['ETCD_VERSION'] ?? ''}`);
  });
});
