import { describe, expect, it } from 'vitest';
import {
  compilePathPattern,
  matchPath,
  matchPathIn,
  pathEnd,
  pathSegments,
  slashesDecoded,
} from './route-match.ts';

const PATTERNS = [
  '/',
  '/**',
  '/v1',
  '/v1/**',
  '/v1/reports',
  '/v1/reports/**',
  '/v1/*',
  '/v1/*/items',
  '/v1/*/items/**',
  '/*',
  '/*/**',
  '/*/*',
  '/a/b/c',
  '/v1/report',
];

const PATHS = [
  '',
  '/',
  '//',
  '///',
  '?',
  '#',
  '/?x=1',
  '/#f',
  'v1',
  '/v1',
  '/v1/',
  '/v1//',
  '//v1',
  '/v1/reports',
  '/v1/reports/',
  '/v1/reports//',
  '/v1/reports?x=/a/b',
  '/v1/reports#/a',
  '/v1/reports/2026/01',
  '/v1/reports2',
  '/v1/report',
  '/v1/reportsx/a',
  '/v1/x/items',
  '/v1/x/items/',
  '/v1/x/items/1',
  '/v1//items',
  '/v1/x//items',
  '/a/b/c',
  '/a/b/c/',
  '/a/b/c/d',
  '/a/b',
  '/a//b/c',
  '/a/b/c?/d',
  '/a/b/c#?x',
  '/a/b/c?x#y',
  '/v1?x#/a',
  '/v1#x?/a',
  '/%2F/x',
  '/v1/%2A/items',
];

describe('matchPathIn', () => {
  it('answers as matchPath of pathSegments, for every pattern and path', () => {
    for (const text of PATTERNS) {
      const pattern = compilePathPattern(text);
      if (pattern === undefined) throw new Error(`${text} does not compile`);
      for (const path of PATHS) {
        const expected = matchPath(pattern, pathSegments(path));
        expect(matchPathIn(pattern, path, pathEnd(path)), `${text} on '${path}'`).toBe(expected);
      }
    }
  });

  it('agrees with the segment matcher on random paths', () => {
    const alphabet = ['/', '/', '/', 'v1', 'a', 'x', 'reports', 'items', '?', '#', '*'];
    let seed = 12345;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const patterns = PATTERNS.map((p) => {
      const compiled = compilePathPattern(p);
      if (compiled === undefined) throw new Error(`${p} does not compile`);
      return compiled;
    });
    for (let i = 0; i < 5000; i++) {
      let path = '';
      for (let n = next(8); n > 0; n--) path += alphabet[next(alphabet.length)] ?? '';
      for (const pattern of patterns) {
        expect(matchPathIn(pattern, path, pathEnd(path)), path).toBe(matchPath(pattern, pathSegments(path)));
      }
    }
  });
});

describe('slashesDecoded', () => {
  it('makes an encoded slash a separator in the path part only, and merges the slashes', () => {
    expect(slashesDecoded('/v1/reports%2Fexport')).toBe('/v1/reports/export');
    expect(slashesDecoded('/v1/reports%2f%2F/export?x=%2F')).toBe('/v1/reports/export?x=%2F');
    expect(slashesDecoded('/v1/%2e%2e/x')).toBe('/v1/%2e%2e/x');
    const plain = '/v1/reports/export?q=1';
    expect(slashesDecoded(plain)).toBe(plain);
  });

  it('merges runs of slashes in the path part when there is no encoded slash (a proxy that does not merge them)', () => {
    expect(slashesDecoded('/v1/reports//export')).toBe('/v1/reports/export');
    expect(slashesDecoded('//v1///reports/export//?next=http://x//y')).toBe(
      '/v1/reports/export/?next=http://x//y',
    );
    const query = '/v1/reports/export?next=http://x//y';
    expect(slashesDecoded(query)).toBe(query);
  });

  it('lets no encoded slash nor doubled slash dodge a route', () => {
    const route = compilePathPattern('/v1/reports/export');
    if (!route) throw new Error('not a pattern');
    for (const path of [
      '/v1/reports%2Fexport',
      '/v1%2freports%2Fexport/',
      '/v1/reports%2F%2Fexport',
      '/v1/reports//export',
      '//v1//reports///export//',
    ]) {
      const p = slashesDecoded(path);
      expect(matchPathIn(route, p, pathEnd(p)), path).toBe(true);
    }
  });
});
