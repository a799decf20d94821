/**
 * gRPC ext_authz: `envoy.service.auth.v3.Authorization/Check`, on a port of its own, sharing the one
 * decision path with the HTTP check. The stage comes from the route's context extension
 * `keystile.dev/api-stage` (ADR 0002), which only Envoy's configuration can set. The protos are the
 * ones `@grpc/grpc-js-xds` ships (deps/envoy-api and its include dirs), loaded once.
 */
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import type { Decision } from '../decision/answers.ts';
import type { CheckRequest } from '../decision/decide.ts';
import type { Checker } from './checker.ts';
import { contextStage, STAGE_CONTEXT_EXTENSION } from './check-request.ts';

/** The proto file of the service, relative to the envoy-api include dir. */
export const EXTERNAL_AUTH_PROTO = 'envoy/service/auth/v3/external_auth.proto';

/** The include dirs of the Envoy protos inside @grpc/grpc-js-xds. */
export function protoIncludeDirs(): string[] {
  const deps = join(
    dirname(createRequire(import.meta.url).resolve('@grpc/grpc-js-xds/package.json')),
    'deps',
  );
  return ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d));
}

let definition: grpc.ServiceDefinition | undefined;

/** The Authorization service's definition (loaded once: parsing the protos takes ~150 ms). */
export function authorizationService(): grpc.ServiceDefinition {
  if (definition) return definition;
  const packageDefinition = protoLoader.loadSync(EXTERNAL_AUTH_PROTO, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
    includeDirs: protoIncludeDirs(),
  });
  const service = packageDefinition['envoy.service.auth.v3.Authorization'];
  if (service === undefined || !('Check' in service)) {
    throw new Error(`${EXTERNAL_AUTH_PROTO} does not define envoy.service.auth.v3.Authorization`);
  }
  definition = service;
  return definition;
}

/** The Check method's path. */
const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

let fastDefinition: grpc.ServiceDefinition | undefined;

/**
 * The Authorization service as the check server runs it: the same protos and method, with protobufjs
 * codecs of its own. A request is decoded into protobufjs's message objects and not converted to plain
 * objects (proto-loader's \`toObject\`: a copy of every field, the handler reads five); a response is
 * encoded from plain objects with numeric enums (no \`fromObject\`). The wire format is the same, so
 * a client with {@link authorizationService} talks to it.
 */
export function checkServiceDefinition(): grpc.ServiceDefinition {
  if (fastDefinition) return fastDefinition;
  // The well-known protos protobufjs lacks (descriptor.proto, which validate.proto imports) were added
  // to it when this module imported @grpc/proto-loader.
  const root = new protobuf.Root();
  const dirs = protoIncludeDirs();
  root.resolvePath = (_origin, target) => {
    if (isAbsolute(target)) return target;
    for (const dir of dirs) {
      try {
        accessSync(join(dir, target), constants.R_OK);
        return join(dir, target);
      } catch {
        // not in this include dir
      }
    }
    return target;
  };
  root.loadSync(EXTERNAL_AUTH_PROTO, { keepCase: true });
  root.resolveAll();
  const request = root.lookupType('envoy.service.auth.v3.CheckRequest');
  const response = root.lookupType('envoy.service.auth.v3.CheckResponse');
  const overwrite = root.lookupEnum('envoy.config.core.v3.HeaderValueOption.HeaderAppendAction').values[
    'OVERWRITE_IF_EXISTS_OR_ADD'
  ];
  if (overwrite === undefined) throw new Error(`${EXTERNAL_AUTH_PROTO}: no OVERWRITE_IF_EXISTS_OR_ADD`);
  overwriteIfExistsOrAdd = overwrite;
  const encode =
    (type: protobuf.Type) =>
    (message: object): Buffer => {
      const bytes = type.encode(message).finish();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    };
  const decode =
    (type: protobuf.Type) =>
    (bytes: Buffer): object =>
      type.decode(bytes);
  fastDefinition = {
    Check: {
      path: CHECK_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: encode(request),
      requestDeserialize: decode(request),
      responseSerialize: encode(response),
      responseDeserialize: decode(response),
    },
  };
  return fastDefinition;
}

/** HeaderValueOption's OVERWRITE_IF_EXISTS_OR_ADD, read from the protos by {@link checkServiceDefinition}. */
let overwriteIfExistsOrAdd = 2;

/** The parts of a CheckRequest the decision reads (field names as in the proto). */
export interface CheckRequestMessage {
  readonly attributes?: {
    readonly context_extensions?: Readonly<Record<string, string>>;
    readonly request?: {
      readonly http?: {
        readonly method?: string;
        readonly path?: string;
        readonly headers?: Readonly<Record<string, string>>;
        readonly header_map?: {
          readonly headers?: readonly { key?: string; value?: string; raw_value?: Uint8Array }[];
        };
      };
    };
  };
}

/** The request's facts for the decision. Throws on a message too broken to read (the caller denies). */
export function checkRequestOf(message: CheckRequestMessage): CheckRequest {
  const attributes = message.attributes;
  const extensions = attributes?.context_extensions;
  const http = attributes?.request?.http;
  const headers = http?.headers;
  let lookup: (name: string) => string | undefined;
  if (headers !== undefined && hasOwnKeys(headers)) {
    lookup = (name) =>
      Object.hasOwn(headers, name) && typeof headers[name] === 'string' ? headers[name] : undefined;
  } else {
    // encode_raw_headers: a list, possibly with repeated names (the first one counts). Envoy sets
    // raw_value and not value; a decoded message (protobufjs, no conversion to a plain object) reads
    // an unset string as "" and unset bytes as empty, so raw_value counts when it is not empty.
    const map = new Map<string, string>();
    for (const h of http?.header_map?.headers ?? []) {
      const key = h.key?.toLowerCase();
      if (key === undefined || map.has(key)) continue;
      const raw = h.raw_value;
      map.set(
        key,
        raw !== undefined && raw.length > 0
          ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8')
          : (h.value ?? ''),
      );
    }
    lookup = (name) => map.get(name);
  }
  const stage =
    extensions !== undefined && Object.hasOwn(extensions, STAGE_CONTEXT_EXTENSION)
      ? extensions[STAGE_CONTEXT_EXTENSION]
      : undefined;
  return {
    stage: extensionStage(stage),
    // Unset, a decoded message's strings read "" (the proto3 default).
    method: http?.method || 'GET',
    path: http?.path || '/',
    header: lookup,
  };
}

/** Whether an object has an own enumerable property (without listing them all). */
function hasOwnKeys(object: object): boolean {
  for (const name in object) if (Object.hasOwn(object, name)) return true;
  return false;
}

/** The last context extension and the stage it names: a route sends the same one on every check. */
let lastExtension: { readonly value: string; readonly stage: string | undefined } | undefined;
function extensionStage(value: string | undefined): string | undefined {
  const last = lastExtension;
  if (value !== undefined && last !== undefined && value === last.value) return last.stage;
  const stage = contextStage(value);
  if (typeof value === 'string') lastExtension = { value, stage };
  return stage;
}

const OK = 0;
const PERMISSION_DENIED = 7;
const UNAVAILABLE = 14;

const header = (key: string, value: string): Record<string, unknown> => ({
  header: { key, value },
  append_action: overwriteIfExistsOrAdd,
});

/**
 * The header options of a decision's upstream headers, remembered per headers object: a key's allows
 * share one (decision/key-cache.ts), so its options are built once.
 */
const upstreamOptions = new WeakMap<object, Record<string, unknown>[]>();
function upstreamHeaderOptions(headers: Readonly<Record<string, string>>): Record<string, unknown>[] {
  let options = upstreamOptions.get(headers);
  if (options === undefined) {
    options = Object.entries(headers).map(([k, v]) => header(k, v));
    if (Object.isFrozen(headers)) upstreamOptions.set(headers, options);
  }
  return options;
}

/** A decision as a CheckResponse (enums as numbers: {@link checkServiceDefinition} encodes it as it is). */
export function checkResponseOf(d: Decision): Record<string, unknown> {
  if (d.allowed) {
    return {
      status: { code: OK },
      ok_response: {
        headers: upstreamHeaderOptions(d.upstreamHeaders),
        headers_to_remove: d.removeHeaders,
        query_parameters_to_remove: d.removeQueryParameters,
        response_headers_to_add: Object.entries(d.clientHeaders).map(([k, v]) => header(k, v)),
      },
    };
  }
  return {
    status: { code: d.status === 503 ? UNAVAILABLE : PERMISSION_DENIED },
    denied_response: {
      status: { code: d.status },
      headers: Object.entries(d.clientHeaders).map(([k, v]) => header(k, v)),
      body: d.body,
    },
  };
}

const UNSENDABLE_BODY = '{"message":"Service Unavailable"}';
/** The answer when a decision cannot be made into a CheckResponse: a plain 503, as the HTTP check's. */
function unsendableResponse(): Record<string, unknown> {
  return {
    status: { code: UNAVAILABLE },
    denied_response: {
      status: { code: 503 },
      headers: [header('content-type', 'application/json'), header('retry-after', '1')],
      body: UNSENDABLE_BODY,
    },
  };
}

/** The Check handler. */
export function checkHandler(
  checker: Checker,
): grpc.handleUnaryCall<CheckRequestMessage, Record<string, unknown>> {
  return (call, callback) => {
    let facts: CheckRequest;
    try {
      facts = checkRequestOf(call.request);
    } catch {
      callback(null, checkResponseOf(checker.failed('grpc', 'malformed')));
      return;
    }
    checker.answer(facts, 'grpc', (d) => {
      let response: Record<string, unknown>;
      try {
        response = checkResponseOf(d);
      } catch (err) {
        // A bug: answer a plain 503 rather than leave Envoy waiting, and throw for the checker to count.
        callback(null, unsendableResponse());
        throw err;
      }
      callback(null, response);
    });
  };
}

/** Starts the gRPC check server on `host:port` (0: a free port); resolves with it and the bound port. */
export async function startGrpcCheck(
  checker: Checker,
  host: string,
  port: number,
): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server({
    // Envoy keeps its connection open and pings it; accept its keepalives.
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5000,
  });
  server.addService(checkServiceDefinition(), { Check: checkHandler(checker) });
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `${host.includes(':') ? `[${host}]` : host}:${port}`,
      grpc.ServerCredentials.createInsecure(),
      (err, actual) => {
        if (err) reject(err);
        else resolve(actual);
      },
    );
  });
  return { server, port: bound };
}

/** Stops the server: in-flight checks finish, or after `graceMs` are cancelled. */
export async function stopGrpcCheck(server: grpc.Server, graceMs = 2000): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
