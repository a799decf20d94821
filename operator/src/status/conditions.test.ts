import { describe, expect, it } from 'vitest';
import { setCondition } from './conditions.ts';

const t1 = new Date('2026-11-23T10:00:00.123Z');
const t2 = new Date('2026-11-23T11:00:00Z');

describe('setCondition', () => {
  it('stamps a new condition with the time, to the second', () => {
    const list = setCondition(
      undefined,
      { type: 'Ready', status: 'True', reason: 'Bound', message: 'ok', observedGeneration: 1 },
      t1,
    );
    expect(list).toEqual([
      {
        type: 'Ready',
        status: 'True',
        reason: 'Bound',
        message: 'ok',
        observedGeneration: 1,
        lastTransitionTime: '2026-11-23T10:00:00Z',
      },
    ]);
  });

  it('keeps lastTransitionTime when only reason or message change', () => {
    const a = setCondition(
      undefined,
      { type: 'Ready', status: 'False', reason: 'KeyNotFound', message: 'x' },
      t1,
    );
    const b = setCondition(
      a,
      { type: 'Ready', status: 'False', reason: 'PlanFull', message: 'y', observedGeneration: 2 },
      t2,
    );
    expect(b[0]).toMatchObject({
      reason: 'PlanFull',
      message: 'y',
      observedGeneration: 2,
      lastTransitionTime: '2026-11-23T10:00:00Z',
    });
  });

  it('moves lastTransitionTime when the status changes', () => {
    const a = setCondition(
      undefined,
      { type: 'Ready', status: 'False', reason: 'KeyNotFound', message: 'x' },
      t1,
    );
    const b = setCondition(a, { type: 'Ready', status: 'True', reason: 'Bound', message: 'ok' }, t2);
    expect(b[0]?.lastTransitionTime).toBe('2026-11-23T11:00:00Z');
  });

  it('leaves other conditions alone and keeps the list sorted', () => {
    const a = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'r', message: 'm' }, t1);
    const b = setCondition(a, { type: 'Expired', status: 'False', reason: 'r', message: 'm' }, t2);
    expect(b.map((c) => c.type)).toEqual(['Expired', 'Ready']);
    expect(b[1]).toEqual(a[0]);
  });
});
