import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandEndpoint, pollEndpoints } from './endpoints.ts';

// Real HTTP servers on loopback standing in for enforcers' admin ports.
const answer = (instance: string) => ({
  store: 'memory',
  instance,
  stages: ['shop/orders/prod'],
  now: '2026-11-23T12:00:00.000Z',
  quotas: [
    {
      key: 'ks:{shop/gold|key:k}:quota:2026-11-01',
      used: 3,
      granted: 0,
      periodEnd: '2026-12-01T00:00:00.000Z',
    },
  ],
  adjustments: [],
});

let good: Server;
let bad: Server;
const port = (s: Server): number => (s.address() as AddressInfo).port;

beforeAll(async () => {
  good = createServer((req, res) => {
    if (req.url === '/v1/usage/quotas')
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer('pod-a:1')));
    else res.writeHead(404).end();
  });
  bad = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"store":"disk"}'),
  );
  for (const s of [good, bad]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
});
afterAll(() => {
  good.close();
  bad.close();
});

describe('pollEndpoints', () => {
  it('reads each enforcer once, even when two endpoints reach it, and names the ones that fail', async () => {
    const poll = await pollEndpoints(
      [
        `http://127.0.0.1:${port(good)}`,
        `http://localhost:${port(good)}/`,
        `http://127.0.0.1:${port(bad)}`,
        'http://127.0.0.1:1',
      ],
      2000,
    );
    expect(poll.answers.map((a) => a.instance)).toEqual(['pod-a:1']);
    expect(poll.errors.map((e) => e.endpoint).sort()).toEqual(
      [`http://127.0.0.1:${port(bad)}`, 'http://127.0.0.1:1'].sort(),
    );
    expect(poll.errors.find((e) => e.endpoint.endsWith(String(port(bad))))?.error).toMatch(
      /not a usage answer/,
    );
  });

  it('expands dns+http://name:port to every A record of the name', async () => {
    const resolve4 = (name: string): Promise<string[]> =>
      Promise.resolve(name === 'enforcers.shop.svc' ? ['10.0.0.2', '10.0.0.1', '10.0.0.2'] : []);
    expect(await expandEndpoint('dns+http://enforcers.shop.svc:9190', { resolve4, fetch })).toEqual([
      'http://10.0.0.1:9190',
      'http://10.0.0.2:9190',
    ]);
    const poll = await pollEndpoints([`dns+http://localhost:${port(good)}`], 2000, {
      resolve4: () => Promise.resolve(['127.0.0.1']),
      fetch,
    });
    expect(poll.answers).toHaveLength(1);
  });
});
