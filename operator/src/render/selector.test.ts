import { describe, expect, it } from 'vitest';
import { matchesSelector } from './selector.ts';

describe('label selectors', () => {
  const labels = { tier: 'gold', region: 'eu' };
  it.each([
    [{}, true],
    [{ matchLabels: { tier: 'gold' } }, true],
    [{ matchLabels: { tier: 'gold', region: 'us' } }, false],
    [{ matchExpressions: [{ key: 'tier', operator: 'In' as const, values: ['gold', 'silver'] }] }, true],
    [{ matchExpressions: [{ key: 'tier', operator: 'NotIn' as const, values: ['gold'] }] }, false],
    [{ matchExpressions: [{ key: 'missing', operator: 'NotIn' as const, values: ['x'] }] }, true],
    [{ matchExpressions: [{ key: 'region', operator: 'Exists' as const }] }, true],
    [{ matchExpressions: [{ key: 'region', operator: 'DoesNotExist' as const }] }, false],
    [{ matchExpressions: [{ key: 'missing', operator: 'In' as const, values: ['x'] }] }, false],
  ])('%j matches: %s', (selector, expected) => {
    expect(matchesSelector(selector, labels)).toBe(expected);
  });
});
