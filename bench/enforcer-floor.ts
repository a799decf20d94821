/**
 * The least any key check must do on this stack, for the benchmark to compare the enforcer with: a bare
 * Fastify route that reads the key header, looks its SHA-256 up among as many hashes as the enforcer's
 * config holds, counts the request, and answers 200 with headers of the same shape and size as the
 * enforcer's allow (RateLimit-Policy, RateLimit with the count, key id, plan, the headers Envoy removes).
 * No plan, throttle, quota period, metrics or logging: what it costs beyond (a) is the floor of (b).
 *   node bench/enforcer-floor.ts --port N --values VALUES.json --keys 10000
 */
import { hash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    values: { type: 'string' },
    keys: { type: 'string', default: '10000' },
  },
});
const known = JSON.parse(readFileSync(values.values ?? '', 'utf8')) as string[];
const table = new Map<string, { id: string; count: number }>();
for (const value of known) table.set(hash('sha256', value, 'hex'), { id: value.slice(3, 15), count: 0 });
while (table.size < Number(values.keys)) {
  table.set(hash('sha256', randomBytes(24).toString('hex'), 'hex'), { id: 'unused', count: 0 });
}
const POLICY = '"burst";q=1000000;w=1, "quota";q=1000000000000;w=2678400';
const REMOVE = 'x-keystile-customer,x-keystile-shadow,x-api-key';

const app = Fastify({ logger: false, keepAliveTimeout: 75_000 });
app.get('/*', (request, reply) => {
  const key = request.headers['x-api-key'];
  const entry = typeof key === 'string' ? table.get(hash('sha256', key, 'hex')) : undefined;
  reply.hijack();
  if (entry === undefined) {
    reply.raw.writeHead(403, ['content-length', '0']);
    reply.raw.end('');
    return;
  }
  entry.count++;
  reply.raw.writeHead(200, [
    'ratelimit-policy',
    POLICY,
    'ratelimit',
    `"burst";r=${999_999 - (entry.count % 1000)};t=1, "quota";r=${1_000_000_000_000 - entry.count};t=2270491`,
    'x-keystile-key-id',
    entry.id,
    'x-keystile-plan',
    'plan-0',
    'x-envoy-auth-headers-to-remove',
    REMOVE,
    'content-length',
    '0',
  ]);
  reply.raw.end('');
});
await app.listen({ host: '127.0.0.1', port: Number(values.port) });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
