import { join } from 'node:path';
import { type GroundContext, waitReady } from './context.ts';
import { get } from './http-probe.ts';
import { repoRoot } from './paths.ts';

// The local system's stand-in for a customer's API (its server is test/ground/upstream.ts).

/** Starts the echo upstream (test/ground/upstream.ts) on Node 24. */
export function startUpstream(ctx: GroundContext): void {
  ctx.procs.start({
    name: 'upstream',
    command: process.execPath,
    args: [join(repoRoot, 'test/ground/upstream.ts'), `--port=${ctx.ports.upstream}`],
  });
}

/** Waits until the upstream answers. */
export async function upstreamReady(ctx: GroundContext): Promise<void> {
  await waitReady(
    ctx,
    'upstream',
    async () => (await get(`http://127.0.0.1:${ctx.ports.upstream}/`)).status === 200,
  );
}
