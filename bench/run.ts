// `npm run bench [-- NAME...]`: runs the benchmarks (default: all). Each prints its own figures, as
// ratios against a baseline measured in the same run where the target is a ratio.
//
// Only the operator's and the revocation benchmarks need the local system (revocation also `npm
// start`'s examples, enforcer and Envoys): it is started for them if it is not running, and stopped
// again after; the others start the servers they measure themselves and run first, on a
// machine with nothing else of Keystile's running, since whatever else runs shares their CPUs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runningProcesses, startLocalSystem, stopLocalSystem } from '../test/ground/local-system.ts';

const BENCHES = ['enforcer', 'counters', 'redis-memory', 'operator', 'revocation'] as const;
/** The benchmarks that run on the local system... */
const ON_LOCAL_SYSTEM: ReadonlySet<string> = new Set(['operator', 'revocation']);
/** ...and those that need `npm start`'s examples, enforcer and Envoys on it too. */
const ON_DEMO: ReadonlySet<string> = new Set(['revocation']);
const asked = process.argv.slice(2);
const names = asked.length > 0 ? asked : [...BENCHES];
for (const n of names) {
  if (!(BENCHES as readonly string[]).includes(n)) {
    console.error(`unknown benchmark '${n}' (${BENCHES.join(', ')})`);
    process.exit(2);
  }
}
// The standalone ones first, in the order BENCHES gives.
const order = [...BENCHES].filter((b) => names.includes(b));

let failed = false;
let started: readonly string[] = [];
try {
  for (const name of order) {
    const file = join(import.meta.dirname, `${name}.ts`);
    if (!existsSync(file)) {
      console.error(`\n== ${name}: not written yet (${file})`);
      failed = true;
      continue;
    }
    if (ON_DEMO.has(name)) {
      const before = new Set(runningProcesses().map((p) => p.name));
      const start = spawnSync(
        process.execPath,
        [join(import.meta.dirname, '..', 'test', 'ground', 'cli.ts'), 'start'],
        {
          encoding: 'utf8',
        },
      );
      const now = runningProcesses().map((p) => p.name);
      started = [...started, ...now.filter((n) => !before.has(n))];
      if (start.status !== 0) throw new Error(`npm start failed:\n${start.stdout}${start.stderr}`);
    } else if (ON_LOCAL_SYSTEM.has(name)) {
      const system = await startLocalSystem();
      started = [...started, ...system.started];
    } else if (runningProcesses().length > 0) {
      console.log(
        `\n(the local system is running: its processes share the CPUs this benchmark measures; \`npm stop\` for quieter figures)`,
      );
    }
    console.log(`\n== ${name}`);
    const r = spawnSync(process.execPath, [file], { stdio: 'inherit' });
    if (r.status !== 0) failed = true;
  }
} finally {
  if (started.length > 0) await stopLocalSystem(started);
}
process.exitCode = failed ? 1 : 0;
