/**
 * The benchmarks' latency client: `bench/paced` (Go), an open-loop HTTP/1.1 load generator that sends
 * requests at a fixed rate over keep-alive connections and times each from the instant it was due, in
 * nanoseconds, so a server that falls behind is charged for the wait (no coordinated omission). It is
 * built once into the test ground's cache and runs pinned to the load generator's CPU.
 *
 * Why not JavaScript: a Node.js client at tens of thousands of requests a second on one core charged its
 * own garbage-collection pauses to the server (the bare route's p99 measured 5 to 26 ms at half its
 * maximum rate; this client measures it at about 0.3 ms), and autocannon's histogram has millisecond
 * resolution.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { binaries } from '../test/ground/paths.ts';

/** One request to send, as its raw HTTP/1.1 text. */
export type RawRequest = string;

/** Builds a GET request's text. */
export function rawGet(path: string, headers: Record<string, string>): RawRequest {
  const lines = [
    `GET ${path} HTTP/1.1`,
    'host: bench',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** What a paced run measured. */
export interface PacedResult {
  readonly sent: number;
  readonly completed: number;
  /** Latencies in microseconds, sorted. */
  readonly latenciesUs: Float64Array;
  /** Statuses seen, with counts. */
  readonly statuses: ReadonlyMap<number, number>;
  /** Requests that could not be sent on time because every connection was busy (their wait is counted). */
  readonly late: number;
}

/** A percentile of sorted values. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const execFileAsync = promisify(execFile);

const SOURCE = join(import.meta.dirname, 'paced');

let built: string | undefined;

/** Builds bench/paced with the machine's Go into the cache (once per source version); its path. */
export function pacedBinary(): string {
  if (built !== undefined) return built;
  const source = readFileSync(join(SOURCE, 'main.go'));
  const version = createHash('sha256')
    .update(source)
    .update(readFileSync(join(SOURCE, 'go.mod')))
    .digest('hex');
  const binary = join(binaries().cache, 'bench', `paced-${version.slice(0, 16)}`);
  if (!existsSync(binary)) {
    mkdirSync(join(binaries().cache, 'bench'), { recursive: true });
    execFileSync('go', ['build', '-trimpath', '-o', binary, '.'], {
      cwd: SOURCE,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, GOTOOLCHAIN: 'local', CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false' },
    });
  }
  built = binary;
  return binary;
}

/**
 * Sends `rate` requests a second for `seconds` (cycling through `requests`) over `connections`
 * keep-alive connections to 127.0.0.1:`port`, and measures each one's latency from when it was due.
 * The client runs on this process's CPUs (the benchmarks pin themselves to the load generator's).
 */
export async function paced(
  port: number,
  requests: readonly RawRequest[],
  rate: number,
  seconds: number,
  connections = 64,
): Promise<PacedResult> {
  const dir = mkdtempSync(join(tmpdir(), 'keystile-paced-'));
  try {
    const file = join(dir, 'requests.json');
    writeFileSync(file, JSON.stringify(requests));
    const { stdout: out } = await execFileAsync(
      pacedBinary(),
      ['-port', String(port), '-rate', String(rate), '-seconds', String(seconds)].concat([
        '-connections',
        String(connections),
        '-requests',
        file,
      ]),
      { encoding: 'utf8', maxBuffer: 1 << 30 },
    );
    const r = JSON.parse(out) as {
      sent: number;
      completed: number;
      late: number;
      statuses: Record<string, number>;
      latenciesUs: number[];
    };
    return {
      sent: r.sent,
      completed: r.completed,
      late: r.late,
      latenciesUs: Float64Array.from(r.latenciesUs),
      statuses: new Map(Object.entries(r.statuses).map(([k, v]) => [Number(k), v])),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
