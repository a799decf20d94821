import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseImportCsv } from './import-csv.ts';

const V1 = 'apikey1234abcdefghij0123456789';
const V2 = 'apikey1234abcdefghij0123456780';
const V3 = 'apikey1234abcdefghij0123456781';

describe('parseImportCsv', () => {
  it("reads AWS's examples: any column order, case-insensitive headers, quoted plan lists", () => {
    expect(parseImportCsv(`Key,name\n${V1},first\n`).rows).toEqual([
      { line: 2, name: 'first', value: V1, enabled: true, plans: [] },
    ]);
    expect(
      parseImportCsv(`Name,key,description,Enabled,usageplanIds\nfirst,${V1},An imported key,TRUE,c7y23b\n`)
        .rows,
    ).toEqual([
      { line: 2, name: 'first', value: V1, description: 'An imported key', enabled: true, plans: ['c7y23b'] },
    ]);
    expect(parseImportCsv(`Enabled,Name,key,UsageplanIds\nfalse,first,${V1},"c7y23b,glvrsr"\n`).rows).toEqual(
      [{ line: 2, name: 'first', value: V1, enabled: false, plans: ['c7y23b', 'glvrsr'] }],
    );
  });

  it('takes a plan list in single quotes, as AWS allows', () => {
    const r = parseImportCsv(
      `Name,Key,Description,Enabled,UsagePlanIds\na,${V1},Bob's key,true,'gold,silver'\nb,${V2},,true,'gold'\n`,
    );
    expect(r.problems).toEqual([]);
    expect(r.rows.map((x) => [x.name, x.description, x.plans])).toEqual([
      ['a', "Bob's key", ['gold', 'silver']],
      ['b', undefined, ['gold']],
    ]);
  });

  it('mends a single-quoted plan list without taking the double quotes of other fields into their values', () => {
    const key = 'ZZZZZZZZZZZZZZZZZZZZZZZZZ7';
    const r = parseImportCsv(
      `Name,Key,Description,Enabled,UsagePlanIds\nzeta,"${key}","Eta",true,'gold,silver'\nmobile,${V1},"Mobile, app",true,'gold, silver'\n`,
    );
    expect(r.problems).toEqual([]);
    expect(r.rows.map((x) => [x.name, x.value, x.description, x.plans])).toEqual([
      ['zeta', key, 'Eta', ['gold', 'silver']],
      ['mobile', V1, 'Mobile, app', ['gold', 'silver']],
    ]);
    // A description that starts with a quote, quoted itself, is not the start of a plan list.
    const q = parseImportCsv(`Name,Key,Description,UsagePlanIds\na,${V2},"'tis, so",'gold,silver'\n`);
    expect(q.problems).toEqual([]);
    expect(q.rows.map((x) => [x.description, x.plans])).toEqual([["'tis, so", ['gold', 'silver']]]);
  });

  it('ignores unknown columns, a BOM, CRLF line ends and blank lines; defaults Enabled to true', () => {
    const r = parseImportCsv(`\uFEFFName,Key,Owner\r\na,${V1},ops\r\n\r\n  \r\nb,${V2},dev\r\n`);
    expect(r.problems).toEqual([]);
    expect(r.rows.map((x) => [x.line, x.name, x.enabled])).toEqual([
      [2, 'a', true],
      [5, 'b', true],
    ]);
  });

  it('numbers a row by the line it starts on, across quoted line breaks', () => {
    const r = parseImportCsv(`Name,Key,Description\na,${V1},"two\nlines"\nb,${V2},x\n`);
    expect(r.rows.map((x) => [x.line, x.name, x.description])).toEqual([
      [2, 'a', 'two\nlines'],
      [4, 'b', 'x'],
    ]);
  });

  it('reports every bad row with its line and reason, and keeps the good ones', () => {
    const text = [
      'Name,Key,Description,Enabled,UsagePlanIds',
      `good,${V1},ok,true,gold`, // 2
      `nokey,,x,true,gold`, // 3
      `,${V2},x,true,gold`, // 4
      `Bad_Name,${V2},x,true,gold`, // 5
      `maybe,${V2},x,maybe,gold`, // 6
      `short,tooshort,x,true,gold`, // 7
      `ks,ks_aaaaaaaaaaaa_${'a'.repeat(49)},x,true,gold`, // 8
      `broken,"${V3}"x,x,true,gold`, // 9
      `extra,${V3},a,true,gold,silver`, // 10
      `last,${V3},fine,false,`, // 11
    ].join('\n');
    const r = parseImportCsv(text);
    expect(r.rows.map((x) => [x.line, x.name])).toEqual([
      [2, 'good'],
      [11, 'last'],
    ]);
    expect(r.dataRows).toBe(10);
    const reasons = Object.fromEntries(r.problems.map((p) => [p.line, p.reason]));
    expect(Object.keys(reasons).map(Number)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    expect(reasons[3]).toBe('Key is empty');
    expect(reasons[4]).toMatch(/Name is empty/);
    expect(reasons[5]).toBe(
      "Name is not a DNS label (lower-case letters, digits and '-', up to 63 characters): 8 characters, the first bad one at position 1 (an upper-case letter)",
    );
    expect(reasons[6]).toMatch(/Enabled must be true or false.*"maybe"/);
    expect(reasons[7]).toBe('Key: the value is too short (20 to 128 printable characters)');
    expect(reasons[8]).toMatch(/^Key: the value is bad checksum/);
    expect(reasons[9]).toMatch(/not valid CSV: text follows a closing quote/);
    expect(reasons[10]).toMatch(/the row has 6 fields but the header names 5/);
  });

  it('never quotes a key value in a reason', () => {
    const secret = 'apikey-SECRET-0123456789';
    const r = parseImportCsv(
      `Name,Key,Enabled\nA,${secret},true\nb,${secret}x"y,true\nc,"${secret}"z,true\nd,${secret},nope\ne,"${secret},true\n`,
    );
    expect(r.rows).toEqual([]);
    expect(r.problems.length).toBeGreaterThanOrEqual(4);
    for (const p of r.problems) expect(p.reason).not.toContain('SECRET');
  });

  it('never quotes a Name cell that is not a DNS label: with the columns swapped it is the key value', () => {
    const key = 'EXAMPLEKEYzetaDoNotUse0123456789';
    const r = parseImportCsv(
      `Name,Key,Enabled\n${key},zeta,true\n${'a'.repeat(64)},${V2},true\n-x,${V3},true\n`,
    );
    const reasons = r.problems.map((p) => p.reason);
    expect(reasons).toEqual([
      expect.stringMatching(/: 32 characters, the first bad one at position 1 \(an upper-case letter\)$/),
      expect.stringMatching(/: 64 characters, more than 63$/),
      expect.stringMatching(/: 2 characters, starting or ending with '-'$/),
    ]);
    for (const reason of reasons) {
      expect(reason).not.toContain(key);
      expect(reason).not.toContain('examplekeyzeta');
    }
  });

  it('makes every row of a duplicate name or value bad', () => {
    const r = parseImportCsv(`Name,Key\na,${V1}\nb,${V2}\na,${V3}\nc,${V2}\nd,${V3}x\n`);
    expect(r.rows.map((x) => x.name)).toEqual(['d']);
    expect(r.problems).toEqual([
      { line: 2, name: 'a', reason: 'the name a is also on line 4' },
      { line: 3, name: 'b', reason: 'the same key value is also on line 5' },
      { line: 4, name: 'a', reason: 'the name a is also on line 2' },
      { line: 5, name: 'c', reason: 'the same key value is also on line 3' },
    ]);
  });

  it('counts a name or value on a row that is bad for another reason as a duplicate all the same', () => {
    const r = parseImportCsv(`Name,Key,Enabled\na,${V1},true\na,${V2},maybe\nb,${V3},true\nc,${V3},maybe\n`);
    expect(r.rows).toEqual([]);
    expect(r.problems.map((p) => [p.line, p.reason])).toEqual([
      [2, 'the name a is also on line 3'],
      [3, expect.stringMatching(/^Enabled must be true or false/)],
      [4, 'the same key value is also on line 5'],
      [5, expect.stringMatching(/^Enabled must be true or false/)],
    ]);
  });

  it('says in words what a quote inside an unquoted field is', () => {
    const r = parseImportCsv(`Name,Key\na,ab"cd${V1}\nb,${V2}\n`);
    expect(r.problems).toEqual([
      { line: 2, reason: 'not valid CSV: a quote inside an unquoted field (quote the whole field)' },
    ]);
    expect(r.rows.map((x) => x.name)).toEqual(['b']);
  });

  it('goes on after a quote that is never closed', () => {
    const r = parseImportCsv(`Name,Key,Description\na,${V1},"open\nb,${V2},fine\n`);
    expect(r.problems).toEqual([{ line: 2, reason: 'not valid CSV: a quoted field is not closed' }]);
    expect(r.rows.map((x) => x.name)).toEqual(['b']);
  });

  it('refuses a file without the Name and Key columns, or without a header', () => {
    expect(parseImportCsv(`Key,Description\n${V1},x\n`).problems).toEqual([
      {
        line: 1,
        reason: expect.stringMatching(/must name the columns Name and Key.*Name missing/) as string,
      },
    ]);
    expect(parseImportCsv('').problems).toEqual([
      { line: 0, reason: expect.stringMatching(/no header/) as string },
    ]);
  });

  it('reads the shipped example without a problem', () => {
    const r = parseImportCsv(
      readFileSync(join(import.meta.dirname, '../../examples/import/keys.csv'), 'utf8'),
    );
    expect(r.problems).toEqual([]);
    expect(r.rows.map((x) => [x.name, x.enabled, x.plans, x.description])).toEqual([
      ['mobile-app', true, ['gold'], 'Mobile app, all platforms'],
      ['partner-feed', true, ['gold'], 'Partner data feed'],
      ['batch-export', false, [], 'Retired nightly export'],
    ]);
  });
});
