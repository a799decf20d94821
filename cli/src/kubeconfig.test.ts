import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { importCommand } from './import-command.ts';
import { usageCommand } from './usage-command.ts';

const TOKEN = 'sha256~kubeTokenDoNotPrint0123456789';

describe('a kubeconfig that cannot be read', () => {
  let saved: string | undefined;
  let dir: string;
  beforeEach(() => {
    saved = process.env['KUBECONFIG'];
    dir = mkdtempSync(join(tmpdir(), 'keystile-kc-'));
    writeFileSync(
      join(dir, 'config'),
      `apiVersion: v1\nusers:\n- name: u\n  user:\n    token: ${TOKEN}: x\n`,
    );
    process.env['KUBECONFIG'] = join(dir, 'config');
  });
  afterEach(() => {
    if (saved === undefined) delete process.env['KUBECONFIG'];
    else process.env['KUBECONFIG'] = saved;
  });

  it("import: stops with exit 2 and the loader's first line, never the token", async () => {
    writeFileSync(join(dir, 'keys.csv'), 'Name,Key\nalpha,EXAMPLEKEYalphaDoNotUse0123456789\n');
    const err: string[] = [];
    const code = await importCommand([join(dir, 'keys.csv')], { out: () => {}, err: (l) => err.push(l) });
    expect(code).toBe(2);
    expect(err.join('\n')).toMatch(/^keystile import: cannot load the kubeconfig: [^\n]+$/);
    expect(err.join('\n')).not.toContain(TOKEN);
  });

  it("usage: fails with the loader's first line, never the token", async () => {
    const err: string[] = [];
    const code = await usageCommand(['k', '--from', '2026-11-01', '--enforcer', 'http://127.0.0.1:9'], {
      out: () => {},
      err: (l) => err.push(l),
      now: () => new Date('2026-11-02T00:00:00Z'),
    });
    expect(code).toBe(1);
    expect(err.join('\n')).toMatch(/^keystile usage: cannot load the kubeconfig: [^\n]+$/);
    expect(err.join('\n')).not.toContain(TOKEN);
  });
});
