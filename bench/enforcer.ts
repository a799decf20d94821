/**
 * The enforcer's benchmark (issue 6's targets), every figure a ratio against a baseline measured in the
 * same run. Servers are pinned to CPU 0 and this process (the load generator) to CPU 1 with taskset.
 *
 *   node bench/enforcer.ts [--seconds 4]
 *
 * 1. (a) a bare Fastify route answering 200 and (b) the enforcer deciding with 10,000 keys and 100 plans:
 *    requests/s of each (autocannon), b/a (target >= 0.85); p50/p99 of each at half of (a)'s rate with
 *    a paced client timing every request in microseconds (targets: p99(b) <= 1 ms and <= 1.5 x p99(a)).
 * 2. client -> Envoy -> enforcer -> upstream against client -> Envoy -> upstream, HTTP and gRPC
 *    ext_authz (target >= 0.60).
 * 3. a 100,000-key config: load time (target < 1 s), resident memory (< 150 MB), and the longest stall
 *    of the main thread while it reloads (< 50 ms), also seen as the longest decision during a reload.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { envoyWithEnforcer, envoyWithoutEnforcer } from '../enforcer/envoy/bootstrap.ts';
import { startEnvoy } from '../enforcer/envoy/start.ts';
import { type EnforcerProcess, freePort, startEnforcerProcess } from '../enforcer/src/launch.ts';
import { binaries } from '../test/ground/paths.ts';
import { buildAsImagesRun, ENFORCER_IMAGE_ENV } from './built.ts';
import { paced, percentile, rawGet } from './enforcer-client.ts';
import {
  CHECK_PATH,
  CLIENT_CPU,
  interleaved as interleavedRounds,
  interleavedPaced,
  line,
  p50p99,
  pinSelf,
  rssMb,
  SERVER_CPU,
  STAGE_KEY,
  startPinned,
  type Target,
  verdict,
  waitListening,
  writeBenchConfig,
} from './measure.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '3' },
    phases: { type: 'string', default: '1,2,3' },
  },
});
/** Seconds of load per target, split over the rounds. */
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
/** The phases to run (`--phases 1` for the Fastify ceiling alone). */
const PHASES = new Set(values.phases.split(',').map((p) => Number(p.trim())));

// ---- set-up --------------------------------------------------------------------------------------

const pinned = pinSelf();
// Every enforcer measured runs as its image runs it (compiled JavaScript; bench/built.ts says why).
const built = buildAsImagesRun();
const dir = mkdtempSync(join(tmpdir(), 'keystile-bench-'));
const children: (ChildProcess | { stop(): Promise<void> })[] = [];
const spawned: ChildProcess[] = [];

const interleaved = (
  targets: readonly Target[],
  headers: readonly Record<string, string>[],
): ReturnType<typeof interleavedRounds> => interleavedRounds(targets, headers, ROUNDS, SECONDS);

function startProcess(args: string[]): ChildProcess {
  return startPinned(process.execPath, args, spawned);
}

async function cleanup(): Promise<void> {
  for (const c of [...children, ...spawned].reverse()) {
    if ('stop' in c) await c.stop();
    else c.kill('SIGTERM');
  }
}

// ---- the run -------------------------------------------------------------------------------------

try {
  console.log(
    `keystile enforcer benchmark: ${SECONDS} s per measurement; servers on CPU ${SERVER_CPU}, load generator on CPU ${CLIENT_CPU}${pinned ? '' : ' (taskset unavailable: NOT pinned)'}`,
  );
  const smallFile = join(dir, 'config-10k.json');
  const smallValues = writeBenchConfig(10_000, smallFile);
  const valuesFile = join(dir, 'values-10k.json');
  writeFileSync(valuesFile, JSON.stringify(smallValues));
  const keyHeaders = smallValues.map((v) => ({ 'x-api-key': v }));

  // 1. (a) bare Fastify and (b) the enforcer, side by side.
  const basePort = await freePort();
  const baseline = startProcess([
    join(import.meta.dirname, 'enforcer-baseline.ts'),
    '--port',
    String(basePort),
  ]);
  await waitListening(basePort);
  // (c) the floor: the least a key check must do (SHA-256, one lookup, the allow's headers).
  const floorPort = await freePort();
  const floor = startProcess([
    join(import.meta.dirname, 'enforcer-floor.ts'),
    '--port',
    String(floorPort),
    '--values',
    valuesFile,
    '--keys',
    '10000',
  ]);
  await waitListening(floorPort);
  const enforcer: EnforcerProcess = await startEnforcerProcess({
    entry: built.enforcer,
    config: smallFile,
    cpus: SERVER_CPU,
    env: ENFORCER_IMAGE_ENV,
    args: ['--log-level', 'warn', '--metrics-key-id', 'false'],
  });
  children.push(enforcer);
  const checkPath = CHECK_PATH;

  if (PHASES.has(1)) {
    const phase1 = await interleaved(
      [
        { port: basePort, path: '/v1/orders', pids: [baseline.pid ?? -1] },
        { port: enforcer.httpPort, path: checkPath, pids: [enforcer.pid] },
        { port: floorPort, path: '/v1/orders', pids: [floor.pid ?? -1] },
      ],
      keyHeaders,
    );
    const [rateA = NaN, rateB = NaN, rateC = NaN] = phase1.rates;
    const ratioAB = phase1.ratios[1] ?? NaN;
    const ratioAC = phase1.ratios[2] ?? NaN;
    console.log('\n1. bare Fastify (a) against the enforcer with 10,000 keys and 100 plans (b), HTTP check');
    line('(a) bare Fastify route, requests/s', rateA.toFixed(0));
    line('(b) enforcer deciding, requests/s', rateB.toFixed(0));
    line("(c) the floor: SHA-256, one lookup, the allow's headers, requests/s", rateC.toFixed(0));
    line('b / a (median of the rounds)', ratioAB.toFixed(3), `target >= 0.85  ${verdict(ratioAB >= 0.85)}`);
    line('c / a: the most any check on this stack reaches', ratioAC.toFixed(3));
    line('b / c: the enforcer against that floor', (ratioAB / ratioAC).toFixed(3));
    const [cpuA = NaN, cpuB = NaN, cpuC = NaN] = phase1.perCpu;
    line('(a) requests per CPU-second of the server', cpuA.toFixed(0));
    line('(b) requests per CPU-second of the server', cpuB.toFixed(0));
    line('(c) requests per CPU-second of the server', cpuC.toFixed(0));
    line('b / a by CPU-second (robust to a busy machine)', (phase1.cpuRatios[1] ?? NaN).toFixed(3));
    line('c / a by CPU-second', (phase1.cpuRatios[2] ?? NaN).toFixed(3));

    const rate = Math.round(rateA / 2);
    const rawA = keyHeaders.map((h) => rawGet('/v1/orders', h));
    const rawB = keyHeaders.map((h) => rawGet(checkPath, h));
    const [latA, latB] = await interleavedPaced(
      [
        { port: basePort, requests: rawA, rate },
        { port: enforcer.httpPort, requests: rawB, rate },
      ],
      ROUNDS,
      SECONDS,
    );
    if (latA === undefined || latB === undefined) throw new Error('no latency measured');
    const p99a = percentile(latA.latenciesUs, 99);
    const p99b = percentile(latB.latenciesUs, 99);
    line(`at ${rate} requests/s (half of a): (a) p50 / p99, microseconds`, p50p99(latA));
    line(`at ${rate} requests/s (half of a): (b) p50 / p99, microseconds`, p50p99(latB));
    line('p99(b), microseconds', p99b.toFixed(0), `target <= 1000  ${verdict(p99b <= 1000)}`);
    line('p99(b) / p99(a)', (p99b / p99a).toFixed(2), `target <= 1.5   ${verdict(p99b / p99a <= 1.5)}`);
    // Half of (a)'s rate is most of what (b) and (c) can do, so their p99 there is mostly queueing behind
    // any pause: the floor at that rate, and (b) at half of its own maximum, say how much.
    const rateHalfB = Math.round(rateB / 2);
    const [latC, latHalfB] = await interleavedPaced(
      [
        { port: floorPort, requests: rawA, rate },
        { port: enforcer.httpPort, requests: rawB, rate: rateHalfB },
      ],
      ROUNDS,
      SECONDS,
    );
    if (latC === undefined || latHalfB === undefined) throw new Error('no latency measured');
    line(`at ${rate} requests/s (half of a): (c) p50 / p99, microseconds`, p50p99(latC));
    line(`at ${rateHalfB} requests/s (half of b): (b) p50 / p99, microseconds`, p50p99(latHalfB));
  }

  if (PHASES.has(2)) {
    // 2. Through Envoy: with the enforcer (HTTP, gRPC) against without.
    const upstreamPort = await freePort();
    // The upstream: a plain node:http server, pinned with the other servers.
    const upstream = startProcess([
      '-e',
      `require('node:http').createServer((q,s)=>{q.resume();s.writeHead(200,{'content-type':'text/plain','content-length':2});s.end('ok')}).listen(${upstreamPort},'127.0.0.1')`,
    ]);
    await waitListening(upstreamPort);
    const envoyBinary = binaries().envoy;
    // The ceilings: the same Envoys with a bare server answering every check (no decision).
    const bareGrpcPort = await freePort();
    const bareGrpc = startProcess([
      join(import.meta.dirname, 'enforcer-baseline-grpc.ts'),
      '--port',
      String(bareGrpcPort),
    ]);
    const envoyPorts = {
      plain: await freePort(),
      http: await freePort(),
      grpc: await freePort(),
      bareHttp: await freePort(),
      bareGrpc: await freePort(),
    };
    const envoys = await Promise.all([
      startEnvoy({
        binary: envoyBinary,
        cpus: SERVER_CPU,
        config: envoyWithoutEnforcer({
          listenPort: envoyPorts.plain,
          adminPort: await freePort(),
          upstreamPort,
        }),
      }),
      startEnvoy({
        binary: envoyBinary,
        cpus: SERVER_CPU,
        config: envoyWithEnforcer({
          mode: 'http',
          listenPort: envoyPorts.http,
          stage: STAGE_KEY,
          adminPort: await freePort(),
          upstreamPort,
          enforcerHttpPort: enforcer.httpPort,
        }),
      }),
      startEnvoy({
        binary: envoyBinary,
        cpus: SERVER_CPU,
        config: envoyWithEnforcer({
          mode: 'grpc',
          listenPort: envoyPorts.grpc,
          stage: STAGE_KEY,
          adminPort: await freePort(),
          upstreamPort,
          enforcerGrpcPort: enforcer.grpcPort,
        }),
      }),
      startEnvoy({
        binary: envoyBinary,
        cpus: SERVER_CPU,
        config: envoyWithEnforcer({
          mode: 'http',
          listenPort: envoyPorts.bareHttp,
          stage: STAGE_KEY,
          adminPort: await freePort(),
          upstreamPort,
          enforcerHttpPort: basePort,
        }),
      }),
      startEnvoy({
        binary: envoyBinary,
        cpus: SERVER_CPU,
        config: envoyWithEnforcer({
          mode: 'grpc',
          listenPort: envoyPorts.bareGrpc,
          stage: STAGE_KEY,
          adminPort: await freePort(),
          upstreamPort,
          enforcerGrpcPort: bareGrpcPort,
        }),
      }),
    ]);
    children.push(...envoys);
    const [plainEnvoy, httpEnvoy, grpcEnvoy, bareHttpEnvoy, bareGrpcEnvoy] = envoys;
    const phase2 = await interleaved(
      [
        { port: envoyPorts.plain, path: '/v1/orders', pids: [plainEnvoy.pid, upstream.pid ?? -1] },
        {
          port: envoyPorts.http,
          path: '/v1/orders',
          pids: [httpEnvoy.pid, enforcer.pid, upstream.pid ?? -1],
        },
        {
          port: envoyPorts.grpc,
          path: '/v1/orders',
          pids: [grpcEnvoy.pid, enforcer.pid, upstream.pid ?? -1],
        },
        {
          port: envoyPorts.bareHttp,
          path: '/v1/orders',
          pids: [bareHttpEnvoy.pid, baseline.pid ?? -1, upstream.pid ?? -1],
        },
        {
          port: envoyPorts.bareGrpc,
          path: '/v1/orders',
          pids: [bareGrpcEnvoy.pid, bareGrpc.pid ?? -1, upstream.pid ?? -1],
        },
      ],
      keyHeaders,
    );
    const [plain = NaN, viaHttp = NaN, viaGrpc = NaN, viaBareHttp = NaN, viaBareGrpc = NaN] = phase2.rates;
    const [, httpRatio = NaN, grpcRatio = NaN, bareHttpRatio = NaN, bareGrpcRatio = NaN] = phase2.ratios;
    console.log('\n2. client -> Envoy -> (enforcer) -> upstream');
    line('Envoy -> upstream, requests/s', plain.toFixed(0));
    line('Envoy -> enforcer (HTTP ext_authz) -> upstream, requests/s', viaHttp.toFixed(0));
    line('Envoy -> enforcer (gRPC ext_authz) -> upstream, requests/s', viaGrpc.toFixed(0));
    line(
      'HTTP ext_authz / none (median of the rounds)',
      httpRatio.toFixed(3),
      `target >= 0.60  ${verdict(httpRatio >= 0.6)}`,
    );
    line(
      'gRPC ext_authz / none (median of the rounds)',
      grpcRatio.toFixed(3),
      `target >= 0.60  ${verdict(grpcRatio >= 0.6)}`,
    );
    const [, httpCpu = NaN, grpcCpu = NaN] = phase2.cpuRatios;
    line('HTTP ext_authz / none by CPU-second of all the servers', httpCpu.toFixed(3));
    line('gRPC ext_authz / none by CPU-second of all the servers', grpcCpu.toFixed(3));
    // What Envoy's ext_authz costs whatever answers it: the same set-ups with a bare server answering.
    line('Envoy -> bare Fastify 200 (HTTP ext_authz) -> upstream, requests/s', viaBareHttp.toFixed(0));
    line('Envoy -> bare grpc-js OK (gRPC ext_authz) -> upstream, requests/s', viaBareGrpc.toFixed(0));
    line('the HTTP ceiling: bare HTTP ext_authz / none', bareHttpRatio.toFixed(3));
    line('the gRPC ceiling: bare gRPC ext_authz / none', bareGrpcRatio.toFixed(3));
    line('the enforcer against its ceiling, HTTP', (httpRatio / bareHttpRatio).toFixed(3));
    line('the enforcer against its ceiling, gRPC', (grpcRatio / bareGrpcRatio).toFixed(3));
    for (const e of envoys) await e.stop();
  }
  await enforcer.stop();

  if (PHASES.has(3)) {
    // 3. 100,000 keys: load, memory, and stalls during a reload.
    console.log('\n3. a config of 100,000 keys and 100 plans');
    const fileA = join(dir, 'config-100k-a.json');
    const fileB = join(dir, 'config-100k-b.json');
    const bigValues = writeBenchConfig(100_000, fileA);
    writeBenchConfig(100_000, fileB, '-b', 0);
    // The image's settings (a small young generation, two malloc arenas), as every enforcer here runs.
    const probe = JSON.parse(
      execFileSync(
        'taskset',
        [
          '-c',
          SERVER_CPU,
          process.execPath,
          '--expose-gc',
          join(import.meta.dirname, 'enforcer-stall.ts'),
          fileA,
          fileB,
        ],
        { encoding: 'utf8', env: { ...process.env, ...ENFORCER_IMAGE_ENV } },
      ),
    ) as {
      keys: number;
      loadMs: number;
      rssMb: number;
      rssWithWorkerMb: number;
      heapMb: number;
      reloadMs: number;
      longestStallMs: number;
    };
    line(
      'load time (read, validate, index; parse process started ahead), ms',
      probe.loadMs.toFixed(0),
      `target < 1000  ${verdict(probe.loadMs < 1000)}`,
    );
    line('  heap in use after it (the catalog and the loader code), MB', probe.heapMb.toFixed(0));
    line('  resident memory of the loading process after it, MB', probe.rssMb.toFixed(0));
    line('  (with the parse process alive, this process alone, MB)', probe.rssWithWorkerMb.toFixed(0));
    line('reload of a config whose every shard changed (cold parse process), ms', probe.reloadMs.toFixed(0));
    line(
      'longest main-thread stall during the reload, ms',
      probe.longestStallMs.toFixed(1),
      `target < 50    ${verdict(probe.longestStallMs < 50)}`,
    );

    // The whole enforcer process: its memory with 10 keys and with 100,000, and decisions during a reload.
    const rssOf = rssMb;
    const lean = {
      entry: built.enforcer,
      cpus: SERVER_CPU,
      env: ENFORCER_IMAGE_ENV,
      readyTimeoutMs: 60_000,
    };
    const e10k = await startEnforcerProcess({ ...lean, config: smallFile, args: ['--log-level', 'warn'] });
    children.push(e10k);
    await sleep(1500);
    const rssSmall = rssOf(e10k.pid);
    await e10k.stop();
    const live = join(dir, 'config-live.json');
    copyFileSync(fileA, live);
    const e100k = await startEnforcerProcess({
      ...lean,
      config: live,
      args: ['--log-level', 'warn', '--metrics-key-id', 'false', '--poll-interval', '0.2'],
    });
    children.push(e100k);
    await sleep(1500);
    const rssBig = rssOf(e100k.pid);
    // V8 keeps the pages the load freed pooled for a while, then its memory reducer returns them (within
    // about 15 s of quiet, measured): the process's memory right after the load, and once settled.
    await sleep(18_500);
    const rssBigSettled = rssOf(e100k.pid);
    line('the enforcer process (compiled), 10,000 keys, resident MB', rssSmall.toFixed(0));
    line(
      'the enforcer process (compiled), 100,000 keys, 1.5 s after ready, resident MB',
      rssBig.toFixed(0),
      `target < 150   ${verdict(rssBig < 150)}`,
    );
    line(
      'the same, 20 s after ready (settled), resident MB',
      rssBigSettled.toFixed(0),
      `target < 150   ${verdict(rssBigSettled < 150)}`,
    );
    const rawBig = bigValues.map((v) => rawGet(checkPath, { 'x-api-key': v }));
    // A warm-up (new connections, code not yet optimised), then the control: the same load without a
    // reload, so a stall of the machine is not blamed on the reload.
    await paced(e100k.httpPort, rawBig, 2000, 1);
    const quiet = await paced(e100k.httpPort, rawBig, 2000, 3);
    const quietWorst = quiet.latenciesUs[quiet.latenciesUs.length - 1] ?? NaN;
    line('longest decision without a reload (2000 req/s, the control), ms', (quietWorst / 1000).toFixed(1));
    // The next config is copied beside the live one first: copying 30 MB during the measurement would
    // stall this process, the load generator, and be charged to the enforcer. During it, only a rename.
    copyFileSync(fileB, `${live}.next`);
    const during = paced(e100k.httpPort, rawBig, 2000, 3);
    await sleep(500);
    renameSync(`${live}.next`, live);
    const r = await during;
    const reloaded = await (await fetch(`http://127.0.0.1:${e100k.adminPort}/metrics`)).text();
    const generation = Number(/keystile_config_generation (\d+)/.exec(reloaded)?.[1] ?? 0);
    const worst = r.latenciesUs[r.latenciesUs.length - 1] ?? NaN;
    line(
      `longest decision during the reload (2000 req/s, generation ${generation}), ms`,
      (worst / 1000).toFixed(1),
      `target < 50    ${verdict(worst / 1000 < 50 && generation === 2)}`,
    );
  }
} finally {
  await cleanup();
}
