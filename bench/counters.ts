/**
 * The shared counters' benchmark (issue 7's targets), every figure against a baseline measured in the
 * same run. Servers (enforcers and Redis) are pinned to CPU 0, this process (the load generator) to CPU 1.
 *
 *   node bench/counters.ts [--seconds 6] [--rounds 3]     # or npm run bench -- counters
 *
 * 1. The enforcer with the memory store (a) against the enforcer with the Redis store (b), 10,000 keys
 *    and 100 plans: decisions/s and b/a (target >= 0.50); p50/p99 of each at half of (b)'s rate, and
 *    p99(a)/p99(b) (target >= 0.50: the Redis store's p99 at most twice the memory store's), the median
 *    of the rounds' ratios as for b/a, over twice as many rounds.
 * 2. Three enforcers on one Redis: aggregate decisions/s against one enforcer on the same Redis; then the
 *    exactness: a quota of Q, 64 concurrent clients spread over the three, allowed = Q printed.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { generateKey } from '../contract/src/key-format.ts';
import { type EnforcerProcess, freePort, startEnforcerProcess } from '../enforcer/src/launch.ts';
import { plan, stageDocuments, standaloneConfig } from '../enforcer/testing/fixtures.ts';
import { redisPing } from '../test/ground/redis.ts';
import { binaries } from '../test/ground/paths.ts';
import { waitFor } from '../test/ground/wait.ts';
import { buildAsImagesRun, ENFORCER_IMAGE_ENV } from './built.ts';
import { type PacedResult, percentile, rawGet } from './enforcer-client.ts';
import {
  writeBenchConfig,
  CHECK_PATH,
  CLIENT_CPU,
  cpuSeconds,
  interleaved,
  interleavedPacedRounds,
  median,
  mergePaced,
  line,
  p50p99,
  pinSelf,
  SERVER_CPU,
  STAGE,
  startPinned,
  verdict,
} from './measure.ts';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '6' }, rounds: { type: 'string', default: '3' } },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const EXACT_QUOTA = 5000;
/** Latency rounds: twice the throughput's, each as long. */
const LATENCY_ROUNDS = ROUNDS * 2;

const pinned = pinSelf();
const built = buildAsImagesRun();
const dir = mkdtempSync(join(tmpdir(), 'keystile-bench-counters-'));
const spawned: ChildProcess[] = [];
const enforcers: EnforcerProcess[] = [];

/** Starts an enforcer on `config`, pinned with the other servers. */
async function enforcer(config: string, store: string[]): Promise<EnforcerProcess> {
  const e = await startEnforcerProcess({
    config,
    entry: built.enforcer,
    cpus: SERVER_CPU,
    env: ENFORCER_IMAGE_ENV,
    args: ['--log-level', 'warn', '--metrics-key-id', 'false', ...store],
  });
  enforcers.push(e);
  return e;
}

try {
  console.log(
    `keystile counters benchmark: ${SECONDS} s per measurement; the enforcers compiled, as their image runs them; servers on CPU ${SERVER_CPU}, load generator on CPU ${CLIENT_CPU}${pinned ? '' : ' (taskset unavailable: NOT pinned)'}`,
  );
  const redisPort = await freePort();
  const redis = startPinned(
    binaries().redisServer,
    ['--bind', '127.0.0.1', '--port', String(redisPort), '--save', '', '--appendonly', 'no'],
    spawned,
  );
  await waitFor(
    'redis-server',
    async () => {
      try {
        return (await redisPing(redisPort)) === '+PONG';
      } catch {
        return false;
      }
    },
    10_000,
    50,
  );
  const REDIS = ['--store', 'redis', '--redis-url', `redis://127.0.0.1:${redisPort}`];

  const smallFile = join(dir, 'config-10k.json');
  const keyHeaders = writeBenchConfig(10_000, smallFile).map((v) => ({ 'x-api-key': v }));

  // 1. The memory store (a) against the Redis store (b).
  const memory = await enforcer(smallFile, []);
  const shared = await enforcer(smallFile, REDIS);
  const phase1 = await interleaved(
    [
      { port: memory.httpPort, path: CHECK_PATH, pids: [memory.pid] },
      { port: shared.httpPort, path: CHECK_PATH, pids: [shared.pid, redis.pid ?? -1] },
    ],
    keyHeaders,
    ROUNDS,
    SECONDS,
  );
  const [rateA = NaN, rateB = NaN] = phase1.rates;
  const ratio = phase1.ratios[1] ?? NaN;
  console.log('\n1. the memory store (a) against the Redis store (b), 10,000 keys and 100 plans');
  line('(a) memory store, decisions/s', rateA.toFixed(0));
  line('(b) Redis store, decisions/s', rateB.toFixed(0));
  line('b / a (median of the rounds)', ratio.toFixed(3), `target >= 0.50  ${verdict(ratio >= 0.5)}`);
  line('(a) decisions per CPU-second (enforcer)', (phase1.perCpu[0] ?? NaN).toFixed(0));
  line('(b) decisions per CPU-second (enforcer + Redis)', (phase1.perCpu[1] ?? NaN).toFixed(0));
  // Deployed, Redis runs elsewhere: what one enforcer core decides then.
  line('(b) decisions per CPU-second of the enforcer alone', (phase1.perFirstCpu[1] ?? NaN).toFixed(0));
  line(
    "b / a by the enforcer's CPU-second alone (Redis off its core)",
    (phase1.firstCpuRatios[1] ?? NaN).toFixed(3),
  );
  const rate = Math.round(rateB / 2);
  const raw = keyHeaders.map((h) => rawGet(CHECK_PATH, h));
  // Twice the throughput's rounds, each as long: a tail percentile of a round is decided by the few
  // stalls of the machine that fall in it, so the ratio is taken round by round (each round's two runs
  // are neighbours in time) and its median reported, as b / a is; the merged figures are shown too.
  const [roundsA = [], roundsB = []] = await interleavedPacedRounds(
    [
      { port: memory.httpPort, requests: raw, rate },
      { port: shared.httpPort, requests: raw, rate },
    ],
    LATENCY_ROUNDS,
    (SECONDS / ROUNDS) * LATENCY_ROUNDS,
  );
  const latA = mergePaced(roundsA);
  const latB = mergePaced(roundsB);
  line(`at ${rate} decisions/s (half of b): (a) p50 / p99, microseconds`, p50p99(latA));
  line(`at ${rate} decisions/s (half of b): (b) p50 / p99, microseconds`, p50p99(latB));
  const p99 = (r: PacedResult): number => percentile(r.latenciesUs, 99);
  line(`p99 of each round, microseconds: (a)`, roundsA.map((r) => p99(r).toFixed(0)).join(' '));
  line(`p99 of each round, microseconds: (b)`, roundsB.map((r) => p99(r).toFixed(0)).join(' '));
  // "At least 0.50 of the in-memory figure" for a latency: p99(a) / p99(b), the Redis store's p99 at most twice.
  line('p99(a) / p99(b) of the merged rounds', (p99(latA) / p99(latB)).toFixed(3));
  const p99ratio = median(roundsA.map((a, i) => p99(a) / (roundsB[i] ? p99(roundsB[i]) : NaN)));
  line(
    'p99(a) / p99(b) (median of the rounds)',
    p99ratio.toFixed(3),
    `target >= 0.50  ${verdict(p99ratio >= 0.5)}`,
  );
  await memory.stop();

  // 2. Three enforcers on one Redis.
  const others = [await enforcer(smallFile, REDIS), await enforcer(smallFile, REDIS)];
  const three = [shared, ...others];
  const run = async (targets: EnforcerProcess[]): Promise<{ rate: number; perCpu: number }> => {
    const pids = [...targets.map((t) => t.pid), redis.pid ?? -1];
    const cpu0 = pids.reduce((n, pid) => n + cpuSeconds(pid), 0);
    const results = await Promise.all(
      targets.map((t) =>
        autocannon({
          url: `http://127.0.0.1:${t.httpPort}`,
          connections: Math.ceil(48 / targets.length),
          duration: SECONDS / ROUNDS,
          requests: keyHeaders.map((h) => ({ method: 'GET', path: CHECK_PATH, headers: h })),
        }),
      ),
    );
    const total = results.reduce((n, r) => n + r.requests.total, 0);
    const bad = results.reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0);
    if (bad > 0) throw new Error(`${bad} of ${total} decisions failed`);
    const cpu = pids.reduce((n, pid) => n + cpuSeconds(pid), 0) - cpu0;
    return { rate: total / (SECONDS / ROUNDS), perCpu: total / cpu };
  };
  const ones: number[] = [];
  const threes: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    ones.push((await run([shared])).rate);
    threes.push((await run(three)).rate);
  }
  console.log('\n2. three enforcers on one Redis (all on one server CPU: this shows cost, not scaling)');
  line('one enforcer, decisions/s', median(ones).toFixed(0));
  line('three enforcers, aggregate decisions/s', median(threes).toFixed(0));
  line('three / one', (median(threes) / median(ones)).toFixed(3));

  // The exactness: one key with a quota of Q, shared by the three.
  const { value, keyId } = generateKey();
  const exactFile = join(dir, 'config-exact.json');
  writeFileSync(
    exactFile,
    standaloneConfig([
      stageDocuments(
        STAGE,
        [
          plan('bench', 'exact', {
            throttle: { rate: 1_000_000, burst: 1_000_000 },
            quota: { limit: EXACT_QUOTA, period: 'MONTH', timeZone: 'UTC' },
            routes: [],
          }),
        ],
        [{ id: keyId, name: 'exact', plan: 'exact', values: [{ value }] }],
      ),
    ]),
  );
  const exact = await Promise.all([0, 1, 2].map(() => enforcer(exactFile, REDIS)));
  const statuses = new Map<number, number>();
  let next = 0;
  const total = EXACT_QUOTA * 2;
  await Promise.all(
    Array.from({ length: 64 }, async (_, i) => {
      for (;;) {
        const n = next++;
        if (n >= total) return;
        const e = exact[(i + n) % exact.length];
        if (e === undefined) return;
        const res = await fetch(`http://127.0.0.1:${e.httpPort}${CHECK_PATH}`, {
          headers: { 'x-api-key': value },
        });
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    }),
  );
  const allowed = statuses.get(200) ?? 0;
  line(`exactness: ${total} requests, 64 clients, 3 enforcers, quota Q`, String(EXACT_QUOTA));
  line(
    'allowed',
    String(allowed),
    `target = Q      ${verdict(allowed === EXACT_QUOTA)}  (429: ${statuses.get(429) ?? 0}, other: ${total - allowed - (statuses.get(429) ?? 0)})`,
  );
} finally {
  for (const e of enforcers.reverse()) await e.stop();
  for (const c of spawned) c.kill('SIGTERM');
}
