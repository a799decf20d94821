import { describe, expect, it } from 'vitest';
import { makeMetrics, stoppedLeading } from './metrics.ts';

describe("the operator's metrics", () => {
  it('say a replica that stopped leading leads nothing and has nothing queued', async () => {
    const m = makeMetrics();
    m.leader.set(1);
    m.queueDepth.set(17); // its queues' depth when it lost the Lease
    stoppedLeading(m);
    expect((await m.leader.get()).values[0]?.value).toBe(0);
    expect((await m.queueDepth.get()).values[0]?.value).toBe(0);
  });
});
