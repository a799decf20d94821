import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseStandalone } from '../../contract/src/validate.ts';
import { hashKey, parseKey } from '../../contract/src/key-format.ts';
import { renderCommand } from './render-command.ts';

const RESOURCES = `
apiVersion: keystile.dev/v1alpha1
kind: UsagePlan
metadata: { name: gold }
spec: { throttle: { rateLimit: 100, burstLimit: 200 }, quota: { limit: 10000, period: MONTH } }
---
apiVersion: keystile.dev/v1alpha1
kind: ApiKey
metadata: { name: acme }
spec: { customer: acme }
---
apiVersion: keystile.dev/v1alpha1
kind: ApiKey
metadata: { name: legacy }
spec: { valueFrom: Secret, secretRef: { name: legacy-value } }
---
apiVersion: v1
kind: Secret
metadata: { name: legacy-value }
stringData: { value: apikey1234abcdefghij0123456789 }
---
apiVersion: keystile.dev/v1alpha1
kind: PlanBinding
metadata: { name: gold }
spec: { planRef: { name: gold }, keys: { names: [acme, legacy] }, apiStages: [{ api: orders, stage: prod }] }
`;

function workspace(resources: string): {
  dir: string;
  args: string[];
  lines: string[];
  log: (l: string) => void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'keystile-render-'));
  writeFileSync(join(dir, 'resources.yaml'), resources);
  const lines: string[] = [];
  return {
    dir,
    lines,
    log: (l) => lines.push(l),
    args: [
      join(dir, 'resources.yaml'),
      '--out',
      join(dir, 'config.json'),
      '--secrets',
      join(dir, 'keys.yaml'),
    ],
  };
}

function generatedValue(dir: string): string {
  const docs = parseAllDocuments(readFileSync(join(dir, 'keys.yaml'), 'utf8')).map(
    (d) => d.toJS() as { metadata: { name: string }; stringData: { value?: string } },
  );
  const value = docs.find((d) => d.metadata.name === 'keystile-key-acme')?.stringData.value;
  if (!value) throw new Error('no generated value for acme');
  return value;
}

describe('keystile render', () => {
  it('writes a standalone config the contract accepts, with hashes and never a value', () => {
    const w = workspace(RESOURCES);
    expect(renderCommand(w.args, w.log)).toBe(0);
    const text = readFileSync(join(w.dir, 'config.json'), 'utf8');
    const config = parseStandalone(text);
    expect(config.ok).toBe(true);
    const value = generatedValue(w.dir);
    expect(parseKey(value).kind).toBe('keystile');
    expect(text).not.toContain(value);
    expect(text).not.toContain('apikey1234abcdefghij0123456789');
    expect(text).toContain(hashKey(value));
    expect(text).toContain(hashKey('apikey1234abcdefghij0123456789'));
    expect(statSync(join(w.dir, 'config.json')).mode & 0o777).toBe(0o600);
    expect(statSync(join(w.dir, 'keys.yaml')).mode & 0o777).toBe(0o600);
  });

  it('answers a wrong command line with exit 2, the usage, and nothing written', () => {
    const w = workspace(RESOURCES);
    expect(renderCommand([...w.args, '--bogus'], w.log)).toBe(2);
    expect(w.lines.join('\n')).toMatch(/keystile render: Unknown option '--bogus'[\s\S]*--manifests/);
    expect(existsSync(join(w.dir, 'config.json'))).toBe(false);
    expect(renderCommand(['--out'], w.log)).toBe(2);
  });

  it('answers a FILE that cannot be read with exit 2, as import does, and writes nothing', () => {
    const w = workspace(RESOURCES);
    expect(renderCommand([...w.args, join(w.dir, 'missing.yaml')], w.log)).toBe(2);
    expect(w.lines.join('\n')).toMatch(/cannot read .*missing\.yaml: ENOENT/);
    expect(existsSync(join(w.dir, 'config.json'))).toBe(false);
  });

  it('answers --help on standard output with exit 0', () => {
    const out: string[] = [];
    const err: string[] = [];
    expect(
      renderCommand(
        ['--help'],
        (l) => err.push(l),
        (l) => out.push(l),
      ),
    ).toBe(0);
    expect(out.join('\n')).toMatch(/^usage: keystile render/);
    expect(err).toEqual([]);
  });

  it('keeps generated values across runs', () => {
    const w = workspace(RESOURCES);
    renderCommand(w.args, w.log);
    const first = generatedValue(w.dir);
    renderCommand(w.args, w.log);
    expect(generatedValue(w.dir)).toBe(first);
  });

  it('reads a secrets-file entry that names no namespace in --namespace, as the resources are', () => {
    const w = workspace(RESOURCES);
    const args = [...w.args, '--namespace', 'shop'];
    expect(renderCommand(args, w.log)).toBe(0);
    const first = generatedValue(w.dir);
    const file = join(w.dir, 'keys.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replaceAll(/^ +namespace: shop\n/gm, ''));
    expect(readFileSync(file, 'utf8')).not.toContain('namespace:');
    w.lines.length = 0;
    expect(renderCommand(args, w.log)).toBe(0);
    expect(generatedValue(w.dir)).toBe(first);
    expect(w.lines.join('\n')).not.toMatch(/new key value/);
  });

  it('follows an imported value and a raised rotation sequence across runs, as the operator does', () => {
    const w = workspace(RESOURCES);
    expect(renderCommand(w.args, w.log)).toBe(0);
    const first = generatedValue(w.dir);
    const hashes = (): string[] => {
      const parsed = parseStandalone(readFileSync(join(w.dir, 'config.json'), 'utf8'));
      if (!parsed.ok) throw new Error(parsed.error);
      return parsed.value.stages.flatMap((st) =>
        st.secrets.flatMap((text) =>
          (JSON.parse(text) as { credentials: { hashes?: { sha256: string }[] }[] }).credentials.flatMap(
            (c) => (c.hashes ?? []).map((h) => h.sha256),
          ),
        ),
      );
    };
    // The imported value changed, and acme's rotation sequence raised: both rotate, the old values kept
    // for the grace period.
    writeFileSync(
      join(w.dir, 'resources.yaml'),
      RESOURCES.replace('apikey1234abcdefghij0123456789', 'apikey5678abcdefghij0123456789').replace(
        'spec: { customer: acme }',
        'spec: { customer: acme, rotation: { sequence: 1 } }',
      ),
    );
    expect(renderCommand(w.args, w.log)).toBe(0);
    const second = generatedValue(w.dir);
    expect(second).not.toBe(first);
    expect(hashes()).toEqual(
      expect.arrayContaining([
        hashKey('apikey5678abcdefghij0123456789'),
        hashKey('apikey1234abcdefghij0123456789'),
        hashKey(second),
        hashKey(first),
      ]),
    );
    expect(w.lines.join('\n')).toMatch(/ApiKey legacy: a new value; the previous one is accepted until/);
    // The imported Secret removed: the key is not rendered, and its value withdrawn for good.
    writeFileSync(
      join(w.dir, 'resources.yaml'),
      RESOURCES.replace(
        '---\napiVersion: v1\nkind: Secret\nmetadata: { name: legacy-value }\nstringData: { value: apikey1234abcdefghij0123456789 }\n',
        '',
      ),
    );
    expect(renderCommand(w.args, w.log)).toBe(0);
    expect(hashes()).not.toContain(hashKey('apikey1234abcdefghij0123456789'));
    expect(hashes()).not.toContain(hashKey('apikey5678abcdefghij0123456789'));
  });

  it('names the file and document of a malformed resource or secrets file, and writes nothing', () => {
    const w = workspace(
      `${RESOURCES}---\napiVersion: keystile.dev/v1alpha1\nkind: ApiKey\nmetadata: foo\nspec: {}\n`,
    );
    expect(renderCommand(w.args, w.log)).toBe(1);
    expect(w.lines.join('\n')).toMatch(/resources\.yaml, document 6: ApiKey: metadata: must be an object/);
    expect(existsSync(join(w.dir, 'config.json'))).toBe(false);

    const v = workspace(RESOURCES);
    writeFileSync(join(v.dir, 'keys.yaml'), 'kind: Secret\nfoo: [\n');
    expect(() => renderCommand(v.args, v.log)).toThrow(/keys\.yaml, document 1: /);
    writeFileSync(join(v.dir, 'keys.yaml'), 'kind: Secret\nstringData: {}\n');
    expect(() => renderCommand(v.args, v.log)).toThrow(
      /keys\.yaml, document 1: Secret: metadata\.name: required/,
    );
    expect(existsSync(join(v.dir, 'config.json'))).toBe(false);
  });

  it('never quotes the source line of a YAML syntax error (it may hold a key value)', () => {
    const secret = 'apikeySECRETdoNotPrint0123456789';
    const w = workspace(`${RESOURCES}---\nkind: Secret\nstringData: { value: ${secret}: x }\n`);
    expect(renderCommand(w.args, w.log)).toBe(1);
    expect(w.lines.join('\n')).toMatch(/resources\.yaml, document 6: .*at line \d+, column \d+$/m);
    expect(w.lines.join('\n')).not.toContain(secret);

    const v = workspace(RESOURCES);
    writeFileSync(join(v.dir, 'keys.yaml'), `kind: Secret\nstringData:\n  value: ${secret}: x\n`);
    let message = '';
    try {
      renderCommand(v.args, v.log);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/keys\.yaml, document 1: /);
    expect(message).not.toContain(secret);
  });

  it('refuses a resource defined twice, naming both places, and writes nothing', () => {
    const w = workspace(RESOURCES);
    writeFileSync(
      join(w.dir, 'disable.yaml'),
      'apiVersion: keystile.dev/v1alpha1\nkind: ApiKey\nmetadata: { name: acme, namespace: default }\nspec: { customer: acme, enabled: false }\n',
    );
    expect(renderCommand([...w.args, join(w.dir, 'disable.yaml')], w.log)).toBe(1);
    expect(w.lines.join('\n')).toMatch(
      /disable\.yaml, document 1: ApiKey default\/acme is defined twice: also in .*resources\.yaml, document 2/,
    );
    expect(w.lines).toContain('nothing written');
    expect(existsSync(join(w.dir, 'config.json'))).toBe(false);
    expect(existsSync(join(w.dir, 'keys.yaml'))).toBe(false);
  });

  it('refuses a name the API server would refuse (not a DNS subdomain), and writes nothing', () => {
    const w = workspace(
      RESOURCES.replace(
        'metadata: { name: gold }\nspec: { throttle',
        'metadata: { name: Payments_Partner }\nspec: { throttle',
      ),
    );
    expect(renderCommand(w.args, w.log)).toBe(1);
    expect(w.lines.join('\n')).toMatch(
      /document 1: UsagePlan Payments_Partner: metadata\.name: must be a DNS subdomain/,
    );
    expect(existsSync(join(w.dir, 'config.json'))).toBe(false);
  });

  it('writes neither file when one cannot be written', () => {
    const w = workspace(RESOURCES);
    const args = [
      join(w.dir, 'resources.yaml'),
      '--out',
      join(w.dir, 'config.json'),
      '--secrets',
      join(w.dir, 'no', 'keys.yaml'),
    ];
    expect(() => renderCommand(args, w.log)).toThrow(/ENOENT/);
    expect(existsSync(join(w.dir, 'config.json'))).toBe(false);
  });

  it('writes no file when the manifests cannot be written', () => {
    const w = workspace(RESOURCES);
    writeFileSync(join(w.dir, 'not-a-dir'), '');
    expect(() => renderCommand([...w.args, '--manifests', join(w.dir, 'not-a-dir')], w.log)).toThrow(
      /EEXIST|ENOTDIR/,
    );
    expect(existsSync(join(w.dir, 'config.json'))).toBe(false);
    expect(existsSync(join(w.dir, 'keys.yaml'))).toBe(false);
    expect(renderCommand([...w.args, '--manifests', join(w.dir, 'manifests')], w.log)).toBe(0);
    expect(existsSync(join(w.dir, 'manifests', 'default.orders.prod.yaml'))).toBe(true);
  });

  it('removes the manifest files of stages no longer rendered, and nothing else', () => {
    const w = workspace(RESOURCES);
    const dir = join(w.dir, 'manifests');
    expect(renderCommand([...w.args, '--manifests', dir], w.log)).toBe(0);
    writeFileSync(join(w.dir, 'resources.yaml'), RESOURCES.replace('stage: prod', 'stage: beta'));
    writeFileSync(join(dir, 'notes.yaml'), 'mine\n');
    w.lines.length = 0;
    expect(renderCommand([...w.args, '--manifests', dir], w.log)).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['default.orders.beta.yaml', 'notes.yaml']);
    expect(w.lines.join('\n')).toMatch(
      /removed .*default\.orders\.prod\.yaml: its API stage is no longer rendered/,
    );
  });

  it('refuses a bad resource naming the field, and writes nothing', () => {
    const w = workspace(RESOURCES.replace('burstLimit: 200', 'burstLimit: -1'));
    expect(renderCommand(w.args, w.log)).toBe(1);
    expect(w.lines.join('\n')).toMatch(/UsagePlan gold: spec\.throttle\.burstLimit: must be >= 1/);
    expect(existsSync(join(w.dir, 'config.json'))).toBe(false);
  });

  // Offline there is no API server to run the CRDs' CEL rules: what it would refuse, and the enforcer
  // would then refuse to load, stops the render instead.
  it.each([
    [
      'an answer header whose name is not an HTTP token',
      "responses: [{ type: Throttled, status: 429, headers: { 'Retry After': '1' } }]",
      /^error: API stage default\/orders\/prod: index.json is invalid at \/plans\/0\/responses\/0\/headers: /,
    ],
    [
      'a time zone ICU does not know',
      'quota: { limit: 10, period: DAY, timeZone: posixrules }',
      /^error: UsagePlan default\/gold: quota: timeZone must be an IANA time zone name .*posixrules/,
    ],
    [
      'two routes of one name',
      'routes: [{ name: r, path: /a }, { name: r, path: /b }]',
      /^error: UsagePlan default\/gold: two routes are named r$/,
    ],
  ])('writes nothing for %s, and says why', (_what, spec, message) => {
    const w = workspace(RESOURCES.replace('quota: { limit: 10000, period: MONTH } }', `${spec} }`));
    expect(renderCommand(w.args, w.log)).toBe(1);
    expect(w.lines.find((l) => l.startsWith('error: '))).toMatch(message);
    expect(w.lines.at(-1)).toBe('nothing written');
    expect(existsSync(join(w.dir, 'config.json'))).toBe(false);
  });

  it('leaves out an imported KeyPair whose SecretId no client can send, with the reason', () => {
    const w = workspace(
      `${RESOURCES.replace('names: [acme, legacy]', 'names: [acme, legacy, pair]')}---
apiVersion: keystile.dev/v1alpha1
kind: ApiKey
metadata: { name: pair }
spec: { type: KeyPair, valueFrom: Secret, secretRef: { name: pair-value } }
---
apiVersion: v1
kind: Secret
metadata: { name: pair-value }
stringData: { secretId: 'AKID "quoted"', secretKey: abcdefghijklmnopqrstuvwxyz }
`,
    );
    expect(renderCommand(w.args, w.log)).toBe(0);
    expect(w.lines).toContain(
      'warning: ApiKey pair: InvalidValue: Secret pair-value, data key secretId: the SecretId must be 1 to 128 visible ASCII characters other than " and \\; the key is not rendered',
    );
    expect(readFileSync(join(w.dir, 'config.json'), 'utf8')).not.toContain('AKID');
    expect(w.lines.some((l) => l.startsWith('PlanBinding gold:'))).toBe(true); // pair: not bound, and why
  });
});
