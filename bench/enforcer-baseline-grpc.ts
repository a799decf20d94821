/**
 * The gRPC ceiling for the benchmark: a bare grpc-js server with the enforcer's own Authorization
 * service definition (the same protos and codecs) answering every Check with an empty OK, no decision.
 *   node bench/enforcer-baseline-grpc.ts --port N
 */
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { checkServiceDefinition } from '../enforcer/src/transport/grpc-check.ts';

const { values } = parseArgs({ options: { port: { type: 'string' } } });
const OK = { status: { code: 0 }, ok_response: {} };
const server = new grpc.Server({
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5000,
});
server.addService(checkServiceDefinition(), {
  Check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
    callback(null, OK);
  },
});
server.bindAsync(`127.0.0.1:${values.port ?? '0'}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    console.error(err.message);
    process.exit(1);
  }
});
process.on('SIGTERM', () => {
  server.tryShutdown(() => process.exit(0));
});
