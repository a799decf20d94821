import { createServer, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeCsv, importCommand } from './import-command.ts';

const VALUE = 'EXAMPLEKEYalphaDoNotUse0123456789';

/** A stand-in API server for one namespace: records each request; `fail` answers the ApiKey writes 500. */
async function fakeApi(opts: {
  failKey: boolean;
}): Promise<{ server: Server; kc: KubeConfig; requests: string[] }> {
  const requests: string[] = [];
  const json = (res: ServerResponse, status: number, body: unknown): boolean => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    return true;
  };
  const status = (code: number, message: string): unknown => ({
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    code,
    message,
  });
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0] ?? '';
      requests.push(`${req.method ?? ''} ${path}`);
      if (req.method === 'GET' && path === '/api/v1/namespaces/shop')
        return json(res, 200, { kind: 'Namespace', metadata: { name: 'shop' } });
      if (req.method === 'GET' && path === '/api/v1')
        return json(res, 200, {
          kind: 'APIResourceList',
          groupVersion: 'v1',
          resources: [{ name: 'secrets', namespaced: true, kind: 'Secret', verbs: [] }],
        });
      if (req.method === 'GET' && path === '/apis/keystile.dev/v1alpha1')
        return json(res, 200, {
          kind: 'APIResourceList',
          groupVersion: 'keystile.dev/v1alpha1',
          resources: ['ApiKey', 'UsagePlan', 'PlanBinding'].map((k) => ({
            name: `${k.toLowerCase()}s`,
            namespaced: true,
            kind: k,
            verbs: [],
          })),
        });
      const list = /^\/apis\/keystile\.dev\/v1alpha1\/namespaces\/shop\/(\w+)$/.exec(path);
      if (req.method === 'GET' && list)
        return json(res, 200, {
          items: list[1] === 'usageplans' ? [{ metadata: { name: 'gold' } }] : [],
          metadata: {},
        });
      if (req.method === 'GET' && path === '/api/v1/namespaces/shop/secrets')
        return json(res, 200, { items: [], metadata: {} });
      if (req.method === 'GET' && path.startsWith('/api/v1/namespaces/shop/secrets/'))
        return json(res, 404, status(404, 'not found'));
      if (req.method === 'PATCH' || req.method === 'DELETE') {
        if (opts.failKey && req.method === 'PATCH' && path.includes('/apikeys/'))
          return json(res, 500, status(500, 'etcd is down'));
        const obj = body ? (JSON.parse(body) as { metadata?: object }) : {};
        return json(res, 200, { ...obj, metadata: { ...obj.metadata, uid: 'u-1', resourceVersion: '1' } });
      }
      json(res, 404, status(404, `no route ${path}`));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u', namespace: 'shop' }],
    currentContext: 'x',
  });
  return { server, kc, requests };
}

describe('keystile import, writing a row', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  const run = async (
    failKey: boolean,
    args: string[] = [],
  ): Promise<{ code: number; err: string; requests: string[] }> => {
    const api = await fakeApi({ failKey });
    server = api.server;
    const dir = mkdtempSync(join(tmpdir(), 'keystile-import-'));
    writeFileSync(join(dir, 'keys.csv'), `Name,Key,UsagePlanIds\nalpha,${VALUE},gold\n`);
    const err: string[] = [];
    const code = await importCommand([join(dir, 'keys.csv'), '--stage', 'orders/prod', ...args], {
      out: () => {},
      err: (l) => err.push(l),
      kubeConfig: api.kc,
    });
    return { code, err: err.join('\n'), requests: api.requests };
  };

  it('deletes the Secret it created when the ApiKey cannot be written, then reports the row', async () => {
    const r = await run(true);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^line 2: alpha: HTTP 500: etcd is down$/m);
    expect(r.err).not.toContain(VALUE);
    expect(r.requests).toContain('DELETE /api/v1/namespaces/shop/secrets/keystile-import-alpha');
  });

  it('deletes nothing when the ApiKey is written, or in a dry run', async () => {
    expect((await run(false)).requests.filter((q) => q.startsWith('DELETE'))).toEqual([]);
    const dry = await run(true, ['--dry-run']);
    expect(dry.code).toBe(1);
    expect(dry.requests.filter((q) => q.startsWith('DELETE'))).toEqual([]);
  });
});

describe('keystile import, reading the file', () => {
  it('decodes UTF-8 strictly, and refuses UTF-16 or another encoding with exit 2', async () => {
    expect(decodeCsv(Buffer.from('\uFEFFName,Key\nré,x\n', 'utf8'))).toBe('\uFEFFName,Key\nré,x\n');
    expect(() => decodeCsv(Buffer.from('\uFEFFName,Key\n', 'utf16le'))).toThrow(/is UTF-16/);
    expect(() => decodeCsv(Buffer.from('Name,Key\nr\xe9,x\n', 'latin1'))).toThrow(/is not UTF-8/);
    const dir = mkdtempSync(join(tmpdir(), 'keystile-import-'));
    writeFileSync(join(dir, 'keys.csv'), Buffer.from(`Name,Key\nalpha,${VALUE}\xe9\n`, 'latin1'));
    const err: string[] = [];
    const code = await importCommand([join(dir, 'keys.csv')], { out: () => {}, err: (l) => err.push(l) });
    expect(code).toBe(2);
    expect(err.join('\n')).toMatch(/cannot read .*keys\.csv: the file is not UTF-8/);
    expect(err.join('\n')).not.toContain(VALUE);
  });
});
