// `npm run bench [-- NAME...]`: runs the benchmarks (default: all) on the local system, starting it if it
// is not running (and stopping again what it started). Each benchmark prints its own figures, as ratios
// against a baseline measured in the same run where the target is a ratio.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalSystem, stopLocalSystem } from '../test/ground/local-system.ts';

const BENCHES = ['operator', 'enforcer', 'counters', 'redis-memory'] as const;
const asked = process.argv.slice(2);
const names = asked.length > 0 ? asked : [...BENCHES];
for (const n of names) {
  if (!(BENCHES as readonly string[]).includes(n)) {
    console.error(`unknown benchmark '${n}' (${BENCHES.join(', ')})`);
    process.exit(2);
  }
}

const system = await startLocalSystem();
let failed = false;
try {
  for (const name of names) {
    const file = join(import.meta.dirname, `${name}.ts`);
    if (!existsSync(file)) {
      console.error(`\n== ${name}: not written yet (${file})`);
      failed = true;
      continue;
    }
    console.log(`\n== ${name}`);
    const r = spawnSync(process.execPath, [file], { stdio: 'inherit' });
    if (r.status !== 0) failed = true;
  }
} finally {
  if (system.started.length > 0) await stopLocalSystem(system.started);
}
process.exitCode = failed ? 1 : 0;
