import { describe, expect, it } from 'vitest';
import { formatUsage, type UsageReport } from './usage-report.ts';

const keyReport: UsageReport = {
  scope: { namespace: 'shop', key: 'acme-prod', keyId: 'reb5rb7kcy5p', customer: 'acme' },
  days: ['2026-11-01', '2026-11-02'],
  plans: [
    { plan: 'gold', countBy: 'Key', subjects: ['key:reb5rb7kcy5p'], requests: [120, 3] },
    { plan: 'shared', countBy: 'Customer', subjects: ['customer:acme'], requests: [0, 1000] },
  ],
};

const customerReport: UsageReport = {
  scope: { namespace: 'shop', customer: 'acme', keys: ['acme-a', 'acme-b'] },
  days: ['2026-11-01'],
  plans: [
    { plan: 'gold', countBy: 'Key', subjects: ['key:aaaaaaaaaaaa', 'key:bbbbbbbbbbbb'], requests: [7] },
  ],
};

describe('formatUsage', () => {
  it('prints a table with a total per plan, and says when a plan counts by customer', () => {
    expect(formatUsage(keyReport, 'table')).toBe(
      [
        'ApiKey acme-prod (key id reb5rb7kcy5p, customer acme) in namespace shop, 2026-11-01 to 2026-11-02',
        "plan shared counts by customer: its figures are the customer's, all keys together (customer:acme)",
        '',
        'DATE         PLAN     REQUESTS',
        '2026-11-01   gold          120',
        '2026-11-02   gold            3',
        '2026-11-01   shared          0',
        '2026-11-02   shared       1000',
        'total        gold          123',
        'total        shared       1000',
        '',
      ].join('\n'),
    );
    expect(formatUsage(customerReport, 'table')).toMatch(
      /^customer acme \(2 keys: acme-a, acme-b\) in namespace shop/,
    );
  });

  it('writes one CSV row per day and plan, for billing', () => {
    expect(formatUsage(keyReport, 'csv')).toBe(
      [
        'date,namespace,customer,key,key_id,plan,counted_by,requests',
        '2026-11-01,shop,acme,acme-prod,reb5rb7kcy5p,gold,key,120',
        '2026-11-02,shop,acme,acme-prod,reb5rb7kcy5p,gold,key,3',
        '2026-11-01,shop,acme,acme-prod,reb5rb7kcy5p,shared,customer,0',
        '2026-11-02,shop,acme,acme-prod,reb5rb7kcy5p,shared,customer,1000',
        '',
      ].join('\n'),
    );
    expect(formatUsage(customerReport, 'csv').split('\n')[1]).toBe('2026-11-01,shop,acme,,,gold,key,7');
  });

  it('writes JSON with totals and every day', () => {
    expect(JSON.parse(formatUsage(customerReport, 'json'))).toEqual({
      namespace: 'shop',
      customer: 'acme',
      keys: ['acme-a', 'acme-b'],
      from: '2026-11-01',
      to: '2026-11-01',
      plans: [
        {
          plan: 'gold',
          countedBy: 'key',
          subjects: ['key:aaaaaaaaaaaa', 'key:bbbbbbbbbbbb'],
          total: 7,
          days: [{ date: '2026-11-01', requests: 7 }],
        },
      ],
    });
  });
});
