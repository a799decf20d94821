import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const KEYSTILE = join(import.meta.dirname, 'keystile.ts');
const keystile = (...args: string[]) =>
  spawnSync(process.execPath, [KEYSTILE, ...args], { encoding: 'utf8' });

// Each case starts Node a few times (the CLI's imports take a second or more on a busy machine).
describe('keystile', { timeout: 60_000 }, () => {
  it('answers --help on standard output with exit 0, and no command with the usage and exit 2', () => {
    for (const flag of ['--help', '-h']) {
      const r = keystile(flag);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^usage: keystile <command>/);
      expect(r.stderr).toBe('');
    }
    const none = keystile();
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/^usage: keystile <command>/);
  });

  it("answers each command's --help on standard output with exit 0", () => {
    for (const command of ['render', 'inject', 'import', 'usage']) {
      const r = keystile(command, '--help');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: keystile ${command}`));
      expect(r.stderr).toBe('');
    }
  });
});
