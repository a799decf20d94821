import { describe, expect, it } from 'vitest';
import { parseHostPort } from './host-port.ts';

describe('parseHostPort', () => {
  it('reads a host or an IPv4 address and a port', () => {
    expect(parseHostPort('redis-0.redis:6379')).toEqual({ host: 'redis-0.redis', port: 6379 });
    expect(parseHostPort('10.0.0.7:26379')).toEqual({ host: '10.0.0.7', port: 26379 });
  });

  it('reads a bracketed IPv6 address', () => {
    expect(parseHostPort('[::1]:6379')).toEqual({ host: '::1', port: 6379 });
    expect(parseHostPort('[fd00::7]:1')).toEqual({ host: 'fd00::7', port: 1 });
  });

  it('refuses what is not host:port', () => {
    for (const bad of [
      '',
      'redis',
      ':6379',
      'redis:',
      'redis:0',
      'redis:65536',
      'redis:6379x',
      'redis: 6379',
      'redis:1e3',
      'redis:+80',
      '[]:6379',
    ]) {
      expect(parseHostPort(bad), bad).toBeUndefined();
    }
  });
});
