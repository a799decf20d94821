import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../../contract/src/key-format.ts';
import { testChecker } from '../../testing/checker.ts';
import { catalogOf, plan, stageDocuments } from '../../testing/fixtures.ts';
import type { Decision } from '../decision/answers.ts';
import type { Checker } from './checker.ts';
import {
  authorizationService,
  checkHandler,
  checkRequestOf,
  checkServiceDefinition,
  type CheckRequestMessage,
  startGrpcCheck,
  stopGrpcCheck,
} from './grpc-check.ts';

const T0 = Date.UTC(2026, 3, 1, 12);
const key = generateKey('grpccheckkey');

interface CheckResponse {
  status?: { code?: number };
  ok_response?: {
    headers?: { header: { key: string; value: string }; append_action?: string }[];
    headers_to_remove?: string[];
    response_headers_to_add?: { header: { key: string; value: string } }[];
  };
  denied_response?: {
    status?: { code?: string };
    headers?: { header: { key: string; value: string } }[];
    body?: string;
  };
}

type Client = grpc.Client & {
  Check(req: unknown, cb: (err: grpc.ServiceError | null, res: CheckResponse) => void): void;
};

describe('the gRPC check', () => {
  let server: grpc.Server;
  let client: Client;

  beforeAll(async () => {
    const catalog = await catalogOf(
      stageDocuments(
        { namespace: 'shop', api: 'orders', stage: 'prod' },
        [plan('shop', 'gold', { throttle: { rate: 1, burst: 1 } })],
        [{ id: key.keyId, plan: 'gold', values: [{ value: key.value }] }],
      ),
    );
    const started = await startGrpcCheck(testChecker(catalog, T0).checker, '127.0.0.1', 0);
    server = started.server;
    const Ctor = grpc.makeGenericClientConstructor(authorizationService(), 'Authorization');
    client = new Ctor(`127.0.0.1:${started.port}`, grpc.credentials.createInsecure()) as unknown as Client;
  });
  afterAll(async () => {
    client.close();
    await stopGrpcCheck(server);
  });

  const check = (request: unknown): Promise<CheckResponse> =>
    new Promise((resolve, reject) => {
      client.Check(request, (err, res) => (err ? reject(err) : resolve(res)));
    });
  const request = (headers: Record<string, string>, stage?: string): unknown => ({
    attributes: {
      ...(stage !== undefined && { context_extensions: { 'keystile.dev/api-stage': stage } }),
      request: { http: { method: 'GET', path: '/v1/orders?x=1', headers } },
    },
  });

  it('allows with upstream headers set, the key header removed and the RateLimit fields for the client', async () => {
    const res = await check(request({ 'x-api-key': key.value }, 'shop/orders/prod'));
    expect(res.status?.code ?? 0).toBe(0);
    const set = Object.fromEntries(
      (res.ok_response?.headers ?? []).map((h) => [h.header.key, h.header.value]),
    );
    expect(set).toEqual({ 'x-keystile-key-id': key.keyId, 'x-keystile-plan': 'gold' });
    expect(res.ok_response?.headers?.[0]?.append_action).toBe('OVERWRITE_IF_EXISTS_OR_ADD');
    expect(res.ok_response?.headers_to_remove).toContain('x-api-key');
    expect(res.ok_response?.response_headers_to_add?.map((h) => h.header.key)).toEqual([
      'ratelimit-policy',
      'ratelimit',
    ]);
  });

  it('denies with the HTTP status, headers and body of the answer', async () => {
    const throttled = await check(request({ 'x-api-key': key.value }, 'shop/orders/prod'));
    expect(throttled.status?.code).toBe(7);
    expect(throttled.denied_response?.status?.code).toBe('TooManyRequests');
    expect(throttled.denied_response?.body).toBe('{"message":"Too Many Requests"}');
    expect(throttled.denied_response?.headers?.map((h) => h.header.key)).toContain('retry-after');
    // The stage comes from the context extension only: none, or a malformed one, is refused.
    for (const stage of [undefined, 'shop/orders', 'shop/orders/dev']) {
      const res = await check(request({ 'x-api-key': key.value }, stage));
      expect(res.denied_response?.status?.code).toBe('Forbidden');
    }
    const empty = await check({});
    expect(empty.denied_response?.status?.code).toBe('Forbidden');
  });

  it('reads raw header lists (encode_raw_headers) and ignores prototype names', () => {
    const facts = checkRequestOf({
      attributes: {
        request: {
          http: {
            header_map: {
              headers: [
                { key: 'X-Api-Key', raw_value: Buffer.from('v1') },
                { key: 'x-api-key', value: 'v2' },
              ],
            },
          },
        },
      },
    });
    expect(facts.header('x-api-key')).toBe('v1');
    const proto = checkRequestOf({ attributes: { request: { http: { headers: { a: 'b' } } } } });
    expect(proto.header('__proto__')).toBeUndefined();
    expect(proto.header('constructor')).toBeUndefined();
  });

  it('reads raw header values from a request decoded by the check server (proto3 defaults are "")', () => {
    // Through the server's own codec: protobufjs message objects, where an unset `value` is "" and an
    // unset `raw_value` is empty bytes, as Envoy sends them with encode_raw_headers: true.
    const checkOf = (service: grpc.ServiceDefinition): grpc.MethodDefinition<unknown, unknown> => {
      const method = service['Check'];
      if (method === undefined) throw new Error('no Check method');
      return method;
    };
    const encode = (message: unknown): Buffer => checkOf(authorizationService()).requestSerialize(message);
    const decode = (bytes: Buffer): CheckRequestMessage =>
      checkOf(checkServiceDefinition()).requestDeserialize(bytes) as CheckRequestMessage;
    const bytes = encode({
      attributes: {
        context_extensions: { 'keystile.dev/api-stage': 'shop/orders/prod' },
        request: {
          http: {
            method: 'GET',
            path: '/v1',
            header_map: {
              headers: [
                { key: 'X-Api-Key', raw_value: Buffer.from(key.value) },
                { key: 'x-other', value: 'plain' },
                { key: 'x-empty', raw_value: Buffer.alloc(0) },
              ],
            },
          },
        },
      },
    });
    const facts = checkRequestOf(decode(bytes));
    expect(facts.header('x-api-key')).toBe(key.value);
    expect(facts.header('x-other')).toBe('plain');
    expect(facts.header('x-empty')).toBe('');
    expect(facts.stage).toBe('shop/orders/prod');
    // A request without a method or path reads as GET / (not the proto3 default "").
    const bare = decode(encode({ attributes: { request: { http: {} } } }));
    expect(checkRequestOf(bare)).toMatchObject({ method: 'GET', path: '/' });
  });

  it('answers a plain 503 when a decision cannot be made into a response, and throws for the checker to count', () => {
    // A checker handing over a decision the response builder cannot read (a bug), as Checker.answer would.
    const thrown: unknown[] = [];
    const broken = { allowed: true, upstreamHeaders: undefined } as unknown as Decision;
    const checker = {
      answer: (_facts: unknown, _transport: unknown, send: (d: Decision) => void) => {
        try {
          send(broken);
        } catch (err) {
          thrown.push(err);
        }
      },
    } as unknown as Checker;
    const answers: unknown[] = [];
    const handler = checkHandler(checker);
    handler(
      { request: {} } as Parameters<typeof handler>[0],
      (err: unknown, response: unknown) => void answers.push([err, response]),
    );
    expect(thrown).toHaveLength(1);
    expect(answers).toHaveLength(1);
    expect(answers[0]).toMatchObject([
      null,
      {
        status: { code: 14 },
        denied_response: {
          status: { code: 503 },
          headers: expect.arrayContaining([
            expect.objectContaining({ header: { key: 'retry-after', value: '1' } }),
          ]) as unknown,
          body: '{"message":"Service Unavailable"}',
        },
      },
    ]);
  });
});
