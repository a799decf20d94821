import { describe, expect, it } from 'vitest';
import { slim } from './informers.ts';

describe('slim', () => {
  it('drops managedFields and kubectl last-applied annotation from a cached object, keeping the rest', () => {
    const o = {
      metadata: {
        name: 'acme',
        annotations: {
          'kubectl.kubernetes.io/last-applied-configuration': '{"big":"json"}',
          'example.com/owner': 'team-a',
        },
        managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
      },
      spec: { enabled: true },
    };
    slim(o);
    expect(JSON.parse(JSON.stringify(o))).toEqual({
      metadata: { name: 'acme', annotations: { 'example.com/owner': 'team-a' } },
      spec: { enabled: true },
    });
  });

  it('leaves an object without either untouched', () => {
    const o = { metadata: { name: 'acme', labels: { a: 'b' } } };
    slim(o);
    expect(o).toEqual({ metadata: { name: 'acme', labels: { a: 'b' } } });
    expect(Object.keys(o.metadata)).toEqual(['name', 'labels']);
  });
});
