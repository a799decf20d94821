import { createServer, type Server } from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dayHashOf, dayKey } from '../../contract/src/identity.ts';
import { RedisServer } from '../../test/ground/redis.ts';
import { counterValue, enforcerDayReader, redactUrl, redisDayReader } from './usage-sources.ts';
import { plansOfStatus, usageCommand } from './usage-command.ts';
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

  it('refuses an --enforcer that is not an http(s) URL, or carries user info, before anything (exit 2)', async () => {
    const run = async (url: string): Promise<{ code: number; err: string }> => {
      const err: string[] = [];
      const code = await usageCommand(['k', '--from', '2026-11-01', '--enforcer', url], {
        out: () => {},
        err: (l) => err.push(l),
        now: () => new Date('2026-11-02T00:00:00Z'),
      });
      return { code, err: err.join('\n') };
    };
    const withUser = await run('http://u:pw1234secret@127.0.0.1:9190');
    expect(withUser.code).toBe(2);
    expect(withUser.err).toMatch(/^keystile usage: --enforcer: a URL with a user name or password/);
    expect(withUser.err).not.toContain('pw1234secret');
    const notUrl = await run('127.0.0.1:9190');
    expect(notUrl.code).toBe(2);
    expect(notUrl.err).toMatch(/^keystile usage: --enforcer: '127\.0\.0\.1:9190' is not an http/);
    const bad = await run('http://u:pw1234secret@[bad');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--enforcer: a URL is not an http/);
    expect(bad.err).not.toContain('pw1234secret');
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

// A real Redis (Debian's redis-server, on a free port) holding days as the enforcer's Redis store lays
// them out: one hash per subject and month, a field per day.
describe('redisDayReader', () => {
  let server: RedisServer;
  let client: Redis;
  const subject = { kind: 'key', id: 'abc123' } as const;
  const day = (d: string): string => dayKey('shop/gold', subject, d);
  beforeAll(async () => {
    server = await RedisServer.start();
    client = new Redis(server.url);
    for (const [d, n] of [
      ['2026-06-29', '5'],
      ['2026-06-30', '6'],
      ['2026-07-01', '7'],
      ['2026-08-15', 'lots'],
    ] as const) {
      const slot = dayHashOf(day(d));
      if (slot === undefined) throw new Error(`no slot for ${d}`);
      await client.hset(slot.key, slot.field, n);
    }
  }, 30_000);
  afterAll(async () => {
    client.disconnect();
    await server.stop();
  });

  it("reads the days of each month's hash in the order asked, 0 where nothing was counted", async () => {
    const reader = redisDayReader({ url: server.url });
    try {
      const days = ['2026-07-02', '2026-06-30', '2026-07-01', '2026-05-31', '2026-06-29'].map(day);
      expect(await reader.read(days)).toEqual([0, 6, 7, 0, 5]);
      expect(await reader.read([])).toEqual([]);
    } finally {
      await reader.close();
    }
  });

  it('refuses a key that is not a day, a stored value that is not a count, and a Redis it cannot reach', async () => {
    const reader = redisDayReader({ url: server.url });
    try {
      await expect(reader.read([day('2026-06-30'), day('2026-02-30')])).rejects.toThrow(
        "ks:{shop/gold|key:abc123}:day:2026-02-30 is not a day counter's key",
      );
      await expect(reader.read([day('2026-08-15')])).rejects.toThrow(
        'counter ks:{shop/gold|key:abc123}:day:2026-08-15 holds "lots", not a count',
      );
    } finally {
      await reader.close();
    }
    const dead = redisDayReader({ url: 'redis://127.0.0.1:9' });
    try {
      await expect(dead.read([day('2026-06-30')])).rejects.toThrow(/^Redis redis:\/\/127\.0\.0\.1:9/);
    } finally {
      await dead.close();
    }
  });
});

// A stand-in for enforcers' admin ports speaking the usage API (the real enforcers are in
// test/e2e/usage-cli.test.ts): each answers its own counts, the reader adds them up.
describe('enforcerDayReader', () => {
  const servers: Server[] = [];
  const urls: string[] = [];
  let instances = 0;
  const start = async (
    answer: (keys: string[]) => unknown,
    status = 200,
    who: { store: 'memory' | 'redis'; instance?: string } = { store: 'memory' },
  ): Promise<string> => {
    const instance = who.instance ?? `host:${++instances}`;
    const server = createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/v1/usage/quotas') {
        const quotas = {
          store: who.store,
          instance,
          stages: [],
          now: new Date().toISOString(),
          quotas: [],
          adjustments: [],
        };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(quotas));
        return;
      }
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
    urls.push(
      await start((keys) => ({ values: keys.map(() => 7) }), 200, { store: 'redis', instance: 'r:1' }),
    );
    urls.push(
      await start((keys) => ({ values: keys.map(() => 7) }), 200, { store: 'redis', instance: 'r:2' }),
    );
  });

  afterAll(() => {
    for (const s of servers) s.close();
  });

  it('adds up the answers of every enforcer', async () => {
    const reader = enforcerDayReader([urls[0]!, urls[1]!]);
    expect(await reader.read(['a', 'b', 'c'])).toEqual([10, 11, 12]);
  });

  it('refuses the same enforcer twice, and adds up no answers of enforcers sharing Redis', async () => {
    // The same enforcer by two URLs (with and without the trailing slash): one instance.
    const twice = [urls[0]!, `${urls[0]!}/`];
    await expect(enforcerDayReader(twice).read(['a'])).rejects.toThrow(
      /are the same enforcer \(instance host:1\)/,
    );
    await expect(enforcerDayReader([urls[4]!, urls[5]!]).read(['a'])).rejects.toThrow(
      /counts in Redis.*name one --enforcer/,
    );
    await expect(enforcerDayReader([urls[0]!, urls[4]!]).read(['a'])).rejects.toThrow(/counts in Redis/);
    expect(await enforcerDayReader([urls[4]!]).read(['a', 'b'])).toEqual([7, 7]);
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
