import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { counterValue, enforcerDayReader, redactUrl } from './usage-sources.ts';
import { plansOfStatus } from './usage-command.ts';
import { redact } from './import-command.ts';

describe('reading day counters', () => {
  it('takes a stored count, 0 for none, and refuses anything else', () => {
    expect(counterValue('k', '42')).toBe(42);
    expect(counterValue('k', null)).toBe(0);
    expect(() => counterValue('ks:x', 'abc')).toThrow('counter ks:x holds "abc", not a count');
    expect(() => counterValue('ks:x', '-1')).toThrow(/not a count/);
  });

  it('never shows a Redis password', () => {
    expect(redactUrl('redis://user:hunter2@redis:6379/0')).toBe('redis://user:***@redis:6379/0');
    expect(redactUrl('not a url')).toBe('(a Redis URL)');
  });

  it('reads the plans of a key status once each', () => {
    expect(plansOfStatus(['gold:orders/beta', 'gold:orders/prod', 'silver:shop/live'])).toEqual([
      'gold',
      'silver',
    ]);
    expect(plansOfStatus(undefined)).toEqual([]);
  });

  it('takes a key value out of an error message, base64 too', () => {
    const v = 'apikey1234abcdefghij0123456789';
    expect(redact(`bad ${v} and ${Buffer.from(v).toString('base64')}`, v)).toBe(
      'bad <redacted> and <redacted>',
    );
  });
});

// A stand-in for enforcers' admin ports speaking the usage API (the real enforcers are in
// test/e2e/usage-cli.test.ts): each answers its own counts, the reader adds them up.
describe('enforcerDayReader', () => {
  const servers: Server[] = [];
  const urls: string[] = [];
  const start = async (answer: (keys: string[]) => unknown, status = 200): Promise<string> => {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const keys = (JSON.parse(body) as { keys: string[] }).keys;
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer(keys)));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    const address = server.address();
    return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  };

  beforeAll(async () => {
    urls.push(await start((keys) => ({ values: keys.map((_, i) => i) })));
    urls.push(await start((keys) => ({ values: keys.map(() => 10) })));
    urls.push(await start(() => ({ values: [1] })));
    urls.push(await start(() => ({ error: 'x' }), 503));
  });

  afterAll(() => {
    for (const s of servers) s.close();
  });

  it('adds up the answers of every enforcer', async () => {
    const reader = enforcerDayReader([urls[0]!, urls[1]!]);
    expect(await reader.read(['a', 'b', 'c'])).toEqual([10, 11, 12]);
  });

  it('fails clearly on an answer that is not the usage API, a failing enforcer, or none', async () => {
    await expect(enforcerDayReader([urls[2]!]).read(['a', 'b'])).rejects.toThrow(/is not the usage API's/);
    await expect(enforcerDayReader([urls[3]!]).read(['a'])).rejects.toThrow(/answered 503/);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const address = closed.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    await new Promise((r) => closed.close(r));
    await expect(enforcerDayReader([`http://127.0.0.1:${port}`]).read(['a'])).rejects.toThrow(
      `enforcer http://127.0.0.1:${port}: ECONNREFUSED`,
    );
  });
});
