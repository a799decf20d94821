/**
 * A paced HTTP/1.1 client for the benchmark: sends requests at a fixed rate over keep-alive connections
 * and times each with process.hrtime (microseconds, unlike autocannon's millisecond histogram), from
 * the instant it was due, so a server that falls behind is charged for the wait (no coordinated
 * omission). Raw sockets: the client costs as little as it can.
 */
import { connect, type Socket } from 'node:net';

/** One request to send, as raw bytes. */
export type RawRequest = Buffer;

/** Builds a GET request's bytes. */
export function rawGet(path: string, headers: Record<string, string>): RawRequest {
  const lines = [
    `GET ${path} HTTP/1.1`,
    'host: bench',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/** What a paced run measured. */
export interface PacedResult {
  readonly sent: number;
  readonly completed: number;
  /** Latencies in microseconds, sorted. */
  readonly latenciesUs: Float64Array;
  /** Statuses seen, with counts. */
  readonly statuses: ReadonlyMap<number, number>;
  /** Requests that could not be sent on time because every connection was busy. */
  readonly late: number;
}

/** A percentile of sorted values. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

class Connection {
  readonly socket: Socket;
  busy = false;
  due = 0n;
  #buffer: Buffer = Buffer.alloc(0);
  readonly #done: (status: number, due: bigint) => void;

  constructor(port: number, done: (status: number, due: bigint) => void) {
    this.#done = done;
    this.socket = connect({ port, host: '127.0.0.1', noDelay: true });
    this.socket.on('data', (d: Buffer) => this.#read(d));
    this.socket.on('error', () => undefined);
  }

  send(request: RawRequest, due: bigint): void {
    this.busy = true;
    this.due = due;
    this.socket.write(request);
  }

  #read(d: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? d : Buffer.concat([this.#buffer, d]);
    for (;;) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.#buffer.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (this.#buffer.length < end + 4 + length) return;
      this.#buffer = this.#buffer.subarray(end + 4 + length);
      const status = Number(head.slice(9, 12));
      this.busy = false;
      this.#done(status, this.due);
    }
  }
}

/**
 * Sends `rate` requests a second for `seconds` (cycling through `requests`) over `connections`
 * keep-alive connections, and measures each one's latency from when it was due.
 */
export async function paced(
  port: number,
  requests: readonly RawRequest[],
  rate: number,
  seconds: number,
  connections = 64,
): Promise<PacedResult> {
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  let completed = 0;
  const done = (status: number, due: bigint): void => {
    latencies.push(Number(process.hrtime.bigint() - due) / 1000);
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    completed++;
  };
  const pool = Array.from({ length: connections }, () => new Connection(port, done));
  await Promise.all(pool.map((c) => new Promise((resolve) => c.socket.once('connect', resolve))));
  const start = process.hrtime.bigint();
  const intervalNs = 1e9 / rate;
  const total = Math.floor(rate * seconds);
  let sent = 0;
  let late = 0;
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = process.hrtime.bigint();
      const elapsed = Number(now - start);
      while (sent < total && sent * intervalNs <= elapsed) {
        let c: Connection | undefined;
        for (let i = 0; i < pool.length; i++) {
          const candidate = pool[(next + i) % pool.length];
          if (candidate && !candidate.busy) {
            c = candidate;
            next = (next + i + 1) % pool.length;
            break;
          }
        }
        if (c === undefined) {
          late++;
          break; // every connection busy: try again on the next tick; the wait counts in the latency
        }
        const request = requests[sent % requests.length];
        if (request === undefined) break;
        c.send(request, start + BigInt(Math.round(sent * intervalNs)));
        sent++;
      }
      if (sent >= total && completed >= sent) resolve();
      else if (Number(process.hrtime.bigint() - start) > (seconds + 10) * 1e9) resolve();
      else setImmediate(tick);
    };
    tick();
  });
  for (const c of pool) c.socket.destroy();
  return { sent, completed, latenciesUs: Float64Array.from(latencies).sort(), statuses, late };
}
