/**
 * The benchmark's baseline: a bare Fastify route answering 200, the ceiling of any Fastify service here.
 *   node bench/enforcer-baseline.ts --port N
 */
import { parseArgs } from 'node:util';
import Fastify from 'fastify';

const { values } = parseArgs({ options: { port: { type: 'string' } } });
const app = Fastify({ logger: false, keepAliveTimeout: 75_000 });
app.get('/*', (_request, reply) => reply.code(200).send());
await app.listen({ host: '127.0.0.1', port: Number(values.port) });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
