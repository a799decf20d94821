import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, generateKeyPair } from '../../../contract/src/key-format.ts';
import Fastify from 'fastify';
import { deny } from '../decision/answers.ts';
import { Reason } from '../errors.ts';
import { TEST_OPTIONS, testChecker } from '../../testing/checker.ts';
import { catalogOf, plan, stageDocuments } from '../../testing/fixtures.ts';
import { fuzzRandom } from '../../testing/seeded.ts';
import { buildApp } from '../app.ts';
import { splitCheckPath } from './check-request.ts';
import { checkRequestOf as grpcCheckRequestOf } from './grpc-check.ts';
import { sendDecision } from './http-check.ts';
import { imfFixdate, signRequest } from '../decision/key-pair-signature.ts';

const T0 = Date.UTC(2026, 3, 1, 12);
const key = generateKey('httpcheckkey');
const stage = { namespace: 'shop', api: 'orders', stage: 'prod' };

async function app(options = {}): Promise<ReturnType<typeof buildApp>> {
  const catalog = await catalogOf(
    stageDocuments(
      stage,
      [plan('shop', 'gold', { throttle: { rate: 1, burst: 1 } })],
      [{ id: key.keyId, plan: 'gold', values: [{ value: key.value }] }],
    ),
  );
  return buildApp({ checker: testChecker(catalog, T0, options).checker });
}

describe('splitCheckPath', () => {
  it.each([
    ['/keystile/shop/orders/prod/v1/orders?x=1', 'shop/orders/prod', '/v1/orders?x=1'],
    ['/keystile/shop/orders/prod', 'shop/orders/prod', '/'],
    ['/keystile/shop/orders/prod?x=1', 'shop/orders/prod', '/?x=1'],
    ['/keystile/shop/orders/prod/', 'shop/orders/prod', '/'],
    ['/keystile/shop/orders', undefined, '/keystile/shop/orders'],
    ['/keystile/Shop/orders/prod/x', undefined, '/keystile/Shop/orders/prod/x'],
    ['/v1/orders', undefined, '/v1/orders'],
    ['/keystile//orders/prod/x', undefined, '/keystile//orders/prod/x'],
    ['/keystile/shop/orders/prodx/y', 'shop/orders/prodx', '/y'],
    ['/keystile/shop/orders/prod#f', 'shop/orders/prod', '/#f'],
    ['/keystile/shop/orders/prod/', 'shop/orders/prod', '/'],
    ['/keystile/shop/orders/pro', 'shop/orders/pro', '/'],
  ])('%s -> %s %s', (url, s, path) => {
    expect(splitCheckPath(url)).toEqual({ stage: s, path });
    // The same answer whatever prefix came before (the last valid one is remembered).
    for (const before of [
      '/keystile/shop/orders/prod/v1',
      '/keystile/shop/orders/prodx',
      '/keystile/a/b/c?q',
    ]) {
      splitCheckPath(before);
      expect(splitCheckPath(url), `after ${before}`).toEqual({ stage: s, path });
      expect(splitCheckPath(url), `twice after ${before}`).toEqual({ stage: s, path });
    }
  });
});

describe('the HTTP check', () => {
  let server: ReturnType<typeof buildApp>;
  beforeAll(async () => {
    server = await app();
  });
  afterAll(async () => {
    await server.close();
  });

  it('allows with the upstream headers and the headers Envoy must remove', async () => {
    const res = await server.inject({
      method: 'POST',
      url: '/keystile/shop/orders/prod/v1/orders',
      headers: { 'x-api-key': key.value, 'content-type': 'application/json' },
      payload: '{"not":"read"',
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-keystile-key-id']).toBe(key.keyId);
    expect(res.headers['x-keystile-plan']).toBe('gold');
    expect(res.headers['x-envoy-auth-headers-to-remove']).toBe(
      'x-keystile-customer,x-keystile-shadow,x-api-key',
    );
    expect(res.headers['ratelimit']).toBe('"burst";r=0;t=1');
    expect(res.body).toBe('');
    expect(JSON.stringify(res.headers)).not.toContain(key.value);
  });

  it('throttles with 429, Retry-After and the body of the table', async () => {
    const res = await server.inject({
      url: '/keystile/shop/orders/prod/v1/orders',
      headers: { 'x-api-key': key.value },
    });
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json()).toEqual({ message: 'Too Many Requests' });
  });

  it.each(['GET', 'HEAD', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND', 'SEARCH', 'PURGE', 'REPORT', 'TRACE'])(
    'answers %s on any path with a decision, never a 404',
    async (method) => {
      for (const url of [
        '/',
        '/anything',
        '/keystile/shop/orders/prod/v1/x',
        '/keystile/shop/orders/dev/x',
        '//a//b',
      ]) {
        const res = await server.inject({ method: method as 'GET', url });
        expect(res.statusCode, `${method} ${url}`).toBe(403);
      }
    },
  );

  it('counts a request Node refuses (garbage on the socket) as a malformed check', async () => {
    const catalog = await catalogOf(
      stageDocuments(
        stage,
        [plan('shop', 'gold', {})],
        [{ id: key.keyId, plan: 'gold', values: [{ value: key.value }] }],
      ),
    );
    const t = testChecker(catalog, T0);
    const own = buildApp({ checker: t.checker });
    await own.listen({ port: 0, host: '127.0.0.1' });
    const port = (own.server.address() as { port: number }).port;
    const raw = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.end('NOT HTTP AT ALL\r\n\r\n'));
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString()));
      socket.on('close', () => resolve(data));
    });
    await own.close();
    expect(raw).toMatch(/^HTTP\/1\.1 403 Forbidden/);
    expect(await t.metrics.registry.metrics()).toMatch(
      /keystile_check_errors_total\{transport="http",class="malformed"\} 1/,
    );
  });

  it('answers a URL the router cannot parse without a key, and garbage on the socket, with 403', async () => {
    const bad = await server.inject({ url: '/keystile/shop/orders/prod/%E0%A4%A' });
    expect(bad.statusCode).toBe(403);
    await server.listen({ port: 0, host: '127.0.0.1' });
    const port = (server.server.address() as { port: number }).port;
    const raw = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.end('NOT HTTP AT ALL\r\n\r\n'));
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString()));
      socket.on('close', () => resolve(data));
    });
    expect(raw).toMatch(/^HTTP\/1\.1 403 Forbidden/);
    // Headers over Node's default 16 KiB but under Envoy's 60 KiB are still decided.
    const big = await fetch(`http://127.0.0.1:${port}/keystile/shop/orders/prod/x`, {
      headers: { 'x-api-key': 'x'.repeat(40_000) },
    });
    expect(big.status).toBe(403);
  });

  it('never answers 5xx to random requests', async () => {
    const random = fuzzRandom();
    for (let i = 0; i < 300; i++) {
      const junk = random
        .bytes(1 + (i % 64))
        .toString('latin1')
        .replace(/[\r\n\0]/g, 'x');
      const res = await server.inject({
        method: 'GET',
        url: `/keystile/shop/orders/prod/${encodeURIComponent(junk)}?${encodeURIComponent(junk)}=1`,
        headers: {
          'x-api-key': i % 3 === 0 ? `ks_${junk}` : junk.replace(/[^\x20-\x7e]/g, ''),
          authorization: `hmac id="${junk.replace(/[^\x21-\x7e]/g, '')}", headers="x-date", signature="${random.bytes(32).toString('base64')}"`,
          'x-date': junk.replace(/[^\x20-\x7e]/g, ''),
        },
      });
      expect(res.statusCode).toBeLessThan(500);
    }
  });
});

describe('the HTTP check on paths the router cannot decode', () => {
  // Envoy passes these paths on; Fastify's router (find-my-way) cannot decodeURI them.
  const paths = ['/files/%FF', '/files/100%', '/x/%E0%A4%A', '/files/%', '/a%2/b?q=%FF'];

  it('decides them with a valid key as the gRPC check does: allowed', async () => {
    const catalog = await catalogOf(
      stageDocuments(
        stage,
        [plan('shop', 'gold', { throttle: { rate: 100, burst: 100 } })],
        [{ id: key.keyId, plan: 'gold', values: [{ value: key.value }] }],
      ),
    );
    const { checker } = testChecker(catalog, T0);
    const server = buildApp({ checker });
    try {
      for (const path of paths) {
        for (const method of ['GET', 'POST', 'PROPFIND'] as const) {
          const res = await server.inject({
            method: method as 'GET',
            url: `/keystile/shop/orders/prod${path}`,
            headers: { 'x-api-key': key.value, 'content-type': 'text/plain' },
            ...(method === 'POST' && { payload: 'a body, never read' }),
          });
          expect(res.statusCode, `${method} ${path}`).toBe(200);
          expect(res.headers['x-keystile-key-id'], `${method} ${path}`).toBe(key.keyId);
          expect(res.headers['x-envoy-auth-headers-to-remove']).toBe(
            'x-keystile-customer,x-keystile-shadow,x-api-key',
          );
        }
        const grpc = await checker.check(
          grpcCheckRequestOf({
            attributes: {
              context_extensions: { 'keystile.dev/api-stage': 'shop/orders/prod' },
              request: { http: { method: 'GET', path, headers: { 'x-api-key': key.value } } },
            },
          }),
          'grpc',
        );
        expect(grpc, path).toMatchObject({ allowed: true, reason: 'Allowed' });
      }
      // And refused as any other path is: without a key, or on a stage it does not serve.
      const none = await server.inject({ url: '/keystile/shop/orders/prod/files/%FF' });
      expect(none.statusCode).toBe(403);
      const elsewhere = await server.inject({
        url: '/keystile/shop/orders/dev/files/%FF',
        headers: { 'x-api-key': key.value },
      });
      expect(elsewhere.statusCode).toBe(403);
    } finally {
      await server.close();
    }
  });
});

describe('the HTTP check whatever the content type', () => {
  // The check never reads a body: a content type Fastify cannot parse (Envoy joins a repeated header
  // with ','), or a QUERY without one, is decided as the gRPC check decides it.
  const types = ['application/json,application/json', '', 'text', '/', 'a b', ';;;', undefined];

  it('decides every method with any content type, or none: allowed with a valid key, refused without', async () => {
    const catalog = await catalogOf(
      stageDocuments(
        stage,
        [plan('shop', 'gold', { throttle: { rate: 1000, burst: 1000 } })],
        [{ id: key.keyId, plan: 'gold', values: [{ value: key.value }] }],
      ),
    );
    const server = buildApp({ checker: testChecker(catalog, T0).checker });
    try {
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'QUERY', 'GET', 'PROPFIND']) {
        for (const type of types) {
          for (const payload of [undefined, 'a body, never read']) {
            const what = `${method} ${JSON.stringify(type)} ${payload === undefined ? 'bodyless' : 'body'}`;
            const contentType = type === undefined ? {} : { 'content-type': type };
            const allowed = await server.inject({
              method: method as 'GET',
              url: '/keystile/shop/orders/prod/v1/orders',
              headers: { 'x-api-key': key.value, ...contentType },
              ...(payload !== undefined && { payload }),
            });
            expect(allowed.statusCode, what).toBe(200);
            expect(allowed.headers['x-keystile-key-id'], what).toBe(key.keyId);
            const refused = await server.inject({
              method: method as 'GET',
              url: '/keystile/shop/orders/prod/v1/orders',
              headers: { 'x-api-key': 'ks_wrong', ...contentType },
              ...(payload !== undefined && { payload }),
            });
            expect(refused.statusCode, what).toBe(403);
          }
        }
      }
      // Over a socket: the unread body is drained, and the connection answers the next request.
      await server.listen({ port: 0, host: '127.0.0.1' });
      const { port } = server.server.address() as { port: number };
      const socket = connect(port, '127.0.0.1');
      const request = (method: string, headers: string, body: string): string =>
        `${method} /keystile/shop/orders/prod/v1/orders HTTP/1.1\r\nhost: x\r\nx-api-key: ${key.value}\r\n${headers}content-length: ${body.length}\r\n\r\n${body}`;
      let received = '';
      const twoAnswers = new Promise<void>((resolve, reject) => {
        socket.on('data', (chunk: Buffer) => {
          received += chunk.toString('latin1');
          if ((received.match(/HTTP\/1\.1 /g) ?? []).length >= 2) resolve();
        });
        socket.on('error', reject);
        socket.on('close', () => {
          resolve();
        });
      });
      socket.write(request('POST', 'content-type: a b\r\n', 'x'.repeat(10_000)) + request('QUERY', '', 'q'));
      await twoAnswers;
      socket.destroy();
      expect(received.match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200']);
    } finally {
      await server.close();
    }
  });
});

/** Sends `head` (the request line and headers, UTF-8 encoded) on a socket; resolves to the status code. */
async function rawStatus(port: number, head: string): Promise<number> {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.includes('\r\n')) resolve();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      resolve();
    });
    socket.write(Buffer.from(`${head}\r\n`, 'utf8'));
  });
  socket.destroy();
  return Number(/^HTTP\/1\.1 (\d+)/.exec(received)?.[1]);
}

describe('the HTTP check on signed headers with non-ASCII values', () => {
  it('verifies them as the gRPC check does (Node reads header bytes as latin1; signatures are over UTF-8)', async () => {
    const pair = generateKeyPair();
    const catalog = await catalogOf(
      stageDocuments(
        stage,
        [plan('shop', 'gold', { throttle: { rate: 100, burst: 100 } })],
        [
          {
            id: 'pairhttpchek',
            plan: 'gold',
            secretId: pair.secretId,
            secretKeys: [{ value: pair.secretKey }],
          },
        ],
      ),
    );
    const { checker } = testChecker(catalog, T0);
    const server = buildApp({ checker });
    try {
      await server.listen({ port: 0, host: '127.0.0.1' });
      const { port } = server.server.address() as { port: number };
      for (const source of ['café', 'ünïcödé ✓ 日本', 'ascii']) {
        const headers = { 'x-date': imfFixdate(T0), source };
        const authorization = signRequest({ secretId: pair.secretId, secretKey: pair.secretKey, headers });
        const status = await rawStatus(
          port,
          `GET /keystile/shop/orders/prod/v1/orders HTTP/1.1\r\nhost: x\r\nx-date: ${headers['x-date']}\r\n` +
            `source: ${source}\r\nauthorization: ${authorization}\r\nconnection: close\r\n`,
        );
        expect(status, source).toBe(200);
        const grpc = await checker.check(
          grpcCheckRequestOf({
            attributes: {
              context_extensions: { 'keystile.dev/api-stage': 'shop/orders/prod' },
              request: {
                http: { method: 'GET', path: '/v1/orders', headers: { ...headers, authorization } },
              },
            },
          }),
          'grpc',
        );
        expect(grpc, source).toMatchObject({ allowed: true, reason: 'Allowed' });
        // Tampered: refused over both.
        const tampered = await rawStatus(
          port,
          `GET /keystile/shop/orders/prod/v1/orders HTTP/1.1\r\nhost: x\r\nx-date: ${headers['x-date']}\r\n` +
            `source: ${source}!\r\nauthorization: ${authorization}\r\nconnection: close\r\n`,
        );
        expect(tampered, source).toBe(403);
      }
    } finally {
      await server.close();
    }
  });
});

describe('the HTTP check without a config', () => {
  it('answers 503 (fail closed)', async () => {
    const server = buildApp({ checker: testChecker(undefined, T0).checker });
    const res = await server.inject({
      url: '/keystile/shop/orders/prod/x',
      headers: { 'x-api-key': key.value },
    });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ message: 'Service Unavailable' });
    await server.close();
  });
});

describe('sendDecision', () => {
  it('answers a plain 503 when Node refuses a header of the decision, and throws for the checker to count', async () => {
    const server = Fastify();
    const thrown: unknown[] = [];
    server.get('/', (_request, reply) => {
      const decision = deny(Reason.KeyDisabled, {}, TEST_OPTIONS, { 'x-help': 'two\nlines' });
      try {
        sendDecision(reply, decision);
      } catch (err) {
        thrown.push(err);
      }
    });
    const res = await server.inject({ url: '/' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json()).toEqual({ message: 'Service Unavailable' });
    expect(res.headers['x-help']).toBeUndefined();
    expect(thrown).toHaveLength(1);
    await server.close();
  });
});
