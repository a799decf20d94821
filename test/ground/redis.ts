import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { type GroundContext, partDir, waitReady } from './context.ts';

// Redis from Debian's redis-server, for shared counters.

/** Starts Redis (Debian's redis-server) on loopback, without persistence: counters in tests. */
export function startRedis(ctx: GroundContext): void {
  const dir = partDir(ctx, 'redis');
  mkdirSync(dir, { recursive: true });
  ctx.procs.start({
    name: 'redis',
    command: ctx.bins.redisServer,
    args: [
      '--bind',
      '127.0.0.1',
      '--port',
      String(ctx.ports.redis),
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
    ],
  });
}

/** Sends one PING in RESP and resolves with the reply line. */
export function redisPing(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(2_000, () => socket.destroy(new Error('timed out')));
    socket.once('error', reject);
    socket.once('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.once('data', (data) => {
      resolve(data.toString('utf8').trim());
      socket.end();
    });
  });
}

/** Waits until Redis answers PONG. */
export async function redisReady(ctx: GroundContext): Promise<void> {
  await waitReady(ctx, 'redis', async () => (await redisPing(ctx.ports.redis)) === '+PONG');
}
