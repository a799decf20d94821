import { createServer, type Server, type ServerResponse } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usageCommand } from './usage-command.ts';

// Stand-ins for the API server (an ApiKey, a customer's keys, their plan) and an enforcer's admin port.
describe('keystile usage, the command', () => {
  const servers: Server[] = [];
  let kc: KubeConfig;
  let enforcer = '';
  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const listen = async (server: Server): Promise<string> => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    const address = server.address();
    return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  };
  const key = {
    apiVersion: 'keystile.dev/v1alpha1',
    kind: 'ApiKey',
    metadata: { name: 'acme-prod', namespace: 'shop' },
    spec: { customer: 'acme' },
    status: { keyId: 'reb5rb7kcy5p', plans: ['gold:orders/prod'] },
  };

  beforeAll(async () => {
    const api = await listen(
      createServer((req, res) => {
        const path = (req.url ?? '').split('?')[0] ?? '';
        const base = '/apis/keystile.dev/v1alpha1/namespaces/shop';
        if (path === `${base}/apikeys/acme-prod`) json(res, 200, key);
        else if (path === `${base}/apikeys`) json(res, 200, { items: [key], metadata: {} });
        else if (path === `${base}/usageplans/gold`)
          json(res, 200, { metadata: { name: 'gold' }, spec: { countBy: 'Key' } });
        else json(res, 404, { kind: 'Status', code: 404, message: 'not found' });
      }),
    );
    enforcer = await listen(
      createServer((req, res) => {
        if (req.method === 'GET') {
          json(res, 200, {
            store: 'memory',
            instance: 'h:1',
            stages: [],
            now: '',
            quotas: [],
            adjustments: [],
          });
          return;
        }
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          const keys = (JSON.parse(body) as { keys: string[] }).keys;
          json(res, 200, { values: keys.map(() => 5) });
        });
      }),
    );
    kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: api, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u', namespace: 'shop' }],
      currentContext: 'x',
    });
  });

  afterAll(() => {
    for (const s of servers) s.close();
  });

  const run = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = '';
    const err: string[] = [];
    const code = await usageCommand(
      [...args, '--from', '2026-11-01', '--to', '2026-11-02', '--format', 'csv', '--enforcer', enforcer],
      {
        out: (t) => (out += t),
        err: (l) => err.push(l),
        kubeConfig: kc,
        now: () => new Date('2026-11-03T00:00:00Z'),
      },
    );
    return { code, out, err: err.join('\n') };
  };

  it('reports a plan named twice with --plan once', async () => {
    for (const who of [['acme-prod'], ['--customer', 'acme']]) {
      const r = await run([...who, '--plan', 'gold', '--plan', 'gold']);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      const rows = r.out.trim().split('\n').slice(1);
      expect(rows.map((l) => l.split(',').slice(0, 1).concat(l.split(',').slice(5)))).toEqual([
        ['2026-11-01', 'gold', 'key', '5'],
        ['2026-11-02', 'gold', 'key', '5'],
      ]);
    }
  });
});
