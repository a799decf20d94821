// The local system's upstream: a small HTTP server standing for the customer's API behind Envoy. It
// answers every request with what it received (method, path, headers) as JSON, so a test or a person
// can see exactly which headers Envoy and the enforcer passed on.
//   node test/ground/upstream.ts --port 17081
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0) {
  console.error('upstream: --port N is required');
  process.exit(2);
}

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const body = JSON.stringify({
      upstream: 'keystile-local',
      method: req.method,
      path: req.url,
      headers: req.headers,
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(port, values.host, () => {
  console.log(`upstream listening on http://${values.host}:${port}`);
});
const stop = (): void => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
