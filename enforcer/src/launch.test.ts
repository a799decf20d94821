import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from './launch.ts';

describe('freePort', () => {
  it('finds ports below the ephemeral range that outgoing connections take, and free to bind', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(20_000);
      expect(port).toBeLessThan(27_000);
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', resolve);
      });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('never hands out a port twice, even when none of them has been bound yet', async () => {
    const ports = await Promise.all(Array.from({ length: 2000 }, () => freePort()));
    expect(new Set(ports).size).toBe(ports.length);
  });
});
