/**
 * What the benchmarks share: pinning to a CPU, a config of many keys, load at the maximum rate with
 * autocannon (requests per wall-clock second and per CPU-second of the servers), rounds interleaved so
 * that a busy machine falls on every target alike, and printing figures in one layout.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { generateKey } from '../contract/src/key-format.ts';
import { type FixtureKey, plan, stageDocuments, standaloneConfig } from '../enforcer/testing/fixtures.ts';
import { type PacedResult, paced, percentile, type RawRequest } from './enforcer-client.ts';

/** The CPU the servers run on, and the CPU of the load generator (this process). */
export const SERVER_CPU = '0';
export const CLIENT_CPU = '1';

/** The API stage every benchmark config serves. */
export const STAGE = Object.freeze({ namespace: 'bench', api: 'orders', stage: 'prod' });
/** Its key, as checks name it. */
export const STAGE_KEY = 'bench/orders/prod';
/** The check path of {@link STAGE} on the enforcer's HTTP port. */
export const CHECK_PATH = `/keystile/${STAGE_KEY}/v1/orders`;

/**
 * Pins this process, every thread of it, to {@link CLIENT_CPU}; false when taskset is unavailable.
 * Every thread: `taskset -p` alone moves only the main thread, and V8's helper threads (parallel
 * scavenges, concurrent compilation), started before this call, would stay free to run on the servers'
 * CPU, where they take its time and, waited for by this process's garbage collector, stall the load
 * generator itself.
 */
export function pinSelf(): boolean {
  try {
    execFileSync('taskset', ['-a', '-cp', CLIENT_CPU, String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A standalone config of `n` keys spread over 100 plans, limits high enough never to refuse. */
export function benchConfig(n: number, variant = ''): { text: string; values: string[] } {
  const plans = Array.from({ length: 100 }, (_, i) =>
    plan('bench', `plan-${i}`, {
      throttle: { rate: 1_000_000, burst: 1_000_000 },
      quota: { limit: 1_000_000_000_000, period: 'MONTH', timeZone: 'UTC' },
      routes: [{ name: 'reports', methods: ['*'], path: '/v1/reports/**', cost: 10 }],
    }),
  );
  const values: string[] = [];
  const keys: FixtureKey[] = [];
  for (let i = 0; i < n; i++) {
    const { value, keyId } = generateKey();
    values.push(value);
    keys.push({ id: keyId, name: `key-${i}${variant}`, plan: `plan-${i % 100}`, values: [{ value }] });
  }
  return { text: standaloneConfig([stageDocuments(STAGE, plans, keys)]), values };
}

/**
 * Writes a config of `n` keys ({@link benchConfig}) to `file` from a child process and returns the first
 * `values` key values: the config's text and its other values never live in this (the load generator's) heap.
 */
export function writeBenchConfig(n: number, file: string, variant = '', values = 1000): string[] {
  const out = execFileSync(
    process.execPath,
    [join(import.meta.dirname, 'write-config.ts'), String(n), file, variant, String(values)],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  return JSON.parse(out) as string[];
}

/** Prints one figure: a label, a value and, if any, its target and verdict. */
export function line(label: string, value: string, target = ''): void {
  console.log(`  ${label.padEnd(58)} ${value.padStart(16)}  ${target}`);
}

/** PASS or MISS. */
export const verdict = (ok: boolean): string => (ok ? 'PASS' : 'MISS');

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU seconds (user + system) a process has used, from /proc. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Resident memory of a process, MB. */
export function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}

/** What one load run measured. */
export interface Run {
  /** Requests answered per second of wall time. */
  readonly rate: number;
  /** Requests answered per CPU second of the server processes: what the servers could do alone on a core. */
  readonly perCpuSecond: number;
  /** Requests answered per CPU second of the first of them alone (the enforcer, without its Redis). */
  readonly perCpuSecondOfFirst: number;
}

/** A load target: a port and path, and the server processes whose CPU time it costs. */
export interface Target {
  readonly port: number;
  readonly path: string;
  readonly pids: readonly number[];
}

/**
 * Load with autocannon for `seconds` (after a short warm-up): requests/s, and requests per CPU-second
 * of `pids` (robust to other work on the machine taking CPU 0 from the servers). Throws on a failed request.
 */
export async function maxRate(
  target: Target,
  headers: readonly Record<string, string>[],
  seconds: number,
  connections = 32,
): Promise<Run> {
  const options = (duration: number): autocannon.Options => ({
    url: `http://127.0.0.1:${target.port}`,
    connections,
    duration,
    requests: headers.map((h) => ({ method: 'GET', path: target.path, headers: h })),
  });
  await autocannon(options(0.3));
  const before = target.pids.map(cpuSeconds);
  const result = await autocannon(options(seconds));
  const used = target.pids.map((pid, i) => cpuSeconds(pid) - (before[i] ?? NaN));
  const cpu = used.reduce((n, c) => n + c, 0);
  const bad = result.non2xx + result.errors + result.timeouts;
  if (bad > 0)
    throw new Error(`${bad} of ${result.requests.total} requests to :${target.port}${target.path} failed`);
  return {
    rate: result.requests.total / seconds,
    perCpuSecond: result.requests.total / cpu,
    perCpuSecondOfFirst: result.requests.total / (used[0] ?? NaN),
  };
}

/** The median. */
export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
};

/**
 * Runs each target in turn, `rounds` times, so that whatever else the machine does falls on all of
 * them alike: the median of each, and the median of each round's ratio to the first (the baseline),
 * by wall-clock rate and by requests per CPU-second.
 */
export async function interleaved(
  targets: readonly Target[],
  headers: readonly Record<string, string>[],
  rounds: number,
  seconds: number,
): Promise<{
  rates: number[];
  ratios: number[];
  perCpu: number[];
  cpuRatios: number[];
  perFirstCpu: number[];
  firstCpuRatios: number[];
}> {
  const runs: Run[][] = targets.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (const [i, t] of targets.entries()) runs[i]?.push(await maxRate(t, headers, seconds / rounds));
  }
  const base = runs[0] ?? [];
  /** Each target's median of `metric`, and the median of each round's ratio to the baseline's. */
  const of = (metric: (r: Run) => number): { medians: number[]; ratios: number[] } => ({
    medians: runs.map((r) => median(r.map(metric))),
    ratios: runs.map((r) => median(r.map((x, i) => metric(x) / (base[i] ? metric(base[i]) : NaN)))),
  });
  const rate = of((r) => r.rate);
  const cpu = of((r) => r.perCpuSecond);
  const firstCpu = of((r) => r.perCpuSecondOfFirst);
  return {
    rates: rate.medians,
    ratios: rate.ratios,
    perCpu: cpu.medians,
    cpuRatios: cpu.ratios,
    perFirstCpu: firstCpu.medians,
    firstCpuRatios: firstCpu.ratios,
  };
}

/** A latency target: where to send, what, and how many requests a second. */
export interface PacedTarget {
  readonly port: number;
  readonly requests: readonly RawRequest[];
  readonly rate: number;
}

/**
 * Paced runs of each target in turn, `rounds` times (as {@link interleaved}, so whatever else the
 * machine does falls on all of them alike): each target's runs, round by round.
 */
export async function interleavedPacedRounds(
  targets: readonly PacedTarget[],
  rounds: number,
  seconds: number,
): Promise<PacedResult[][]> {
  const runs: PacedResult[][] = targets.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (const [i, t] of targets.entries())
      runs[i]?.push(await paced(t.port, t.requests, t.rate, seconds / rounds));
  }
  return runs;
}

/** {@link interleavedPacedRounds}, each target's runs merged into one. */
export async function interleavedPaced(
  targets: readonly PacedTarget[],
  rounds: number,
  seconds: number,
): Promise<PacedResult[]> {
  return (await interleavedPacedRounds(targets, rounds, seconds)).map(mergePaced);
}

/** A paced result's `p50 / p99`, whole microseconds. */
export function p50p99(r: PacedResult): string {
  return `${percentile(r.latenciesUs, 50).toFixed(0)} / ${percentile(r.latenciesUs, 99).toFixed(0)}`;
}

/** Several paced runs as one. */
export function mergePaced(rs: readonly PacedResult[]): PacedResult {
  return {
    sent: rs.reduce((n, r) => n + r.sent, 0),
    completed: rs.reduce((n, r) => n + r.completed, 0),
    late: rs.reduce((n, r) => n + r.late, 0),
    latenciesUs: Float64Array.from(rs.flatMap((r) => [...r.latenciesUs])).sort(),
    statuses: rs.reduce((m, r) => {
      for (const [k, v] of r.statuses) m.set(k, (m.get(k) ?? 0) + v);
      return m;
    }, new Map<number, number>()),
  };
}

/** Starts `command` pinned to {@link SERVER_CPU}; `children` collects it for the clean-up. */
export function startPinned(
  command: string,
  args: readonly string[],
  children: ChildProcess[],
): ChildProcess {
  const child = spawn('taskset', ['-c', SERVER_CPU, command, ...args], { stdio: 'ignore' });
  children.push(child);
  return child;
}

/** Waits until something answers HTTP on `port`. */
export async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`nothing listens on ${port}`);
}
