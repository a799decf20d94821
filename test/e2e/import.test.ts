// `keystile import` on the real control plane, run as a user runs it (node cli/keystile.ts, KUBECONFIG):
// an AWS-format CSV with good and bad rows, the operator (the local system's, watching every namespace)
// making the imported keys Ready, the rendered Secrets carrying their hashes, a real enforcer accepting
// the imported values, and a second run changing nothing.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../contract/src/key-format.ts';
import { parseIndex, parseSecretsShard } from '../../contract/src/validate.ts';
import { type EnforcerProcess, startEnforcerProcess } from '../../enforcer/src/launch.ts';
import { createNamespace, ground, kubectl, kubectlJson } from '../ground/harness.ts';
import { repoRoot } from '../ground/paths.ts';
import { waitFor } from '../ground/wait.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `keystile ARGS` as a user would, against the test cluster. */
function keystile(args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(repoRoot, 'cli/keystile.ts'), ...args],
      { env: { ...process.env, KUBECONFIG: ground().kubeconfig }, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

interface Obj {
  metadata: {
    name: string;
    resourceVersion: string;
    labels?: Record<string, string>;
    ownerReferences?: { kind: string; name: string }[];
  };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  status?: { keyId?: string; conditions?: { type: string; status: string; reason: string }[] };
}

/** A value nobody else imports: 40 printable characters. */
const value = (): string => `imp${randomBytes(20).toString('hex')}`.slice(0, 40);

describe('keystile import', () => {
  let ns: string;
  let dir: string;
  let csv: string;
  let enforcer: EnforcerProcess | undefined;
  const v = { alpha: value(), bravo: value(), charlie: value(), dup: value(), late: value() };
  let first: Run;

  beforeAll(async () => {
    ns = await createNamespace('import');
    dir = mkdtempSync(join(tmpdir(), 'keystile-import-'));
    for (const [name, quota] of [
      ['gold', 1000],
      ['silver', 100],
    ] as const) {
      await kubectl(
        ['-n', ns, 'apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'keystile.dev/v1alpha1',
          kind: 'UsagePlan',
          metadata: { name },
          spec: { quota: { limit: quota, period: 'DAY' } },
        }),
      );
    }
    // AWS's format, columns in another order, header in other cases, a quoted plan list, bad rows between.
    csv = join(dir, 'keys.csv');
    writeFileSync(
      csv,
      [
        'key,NAME,Enabled,UsagePlanIds,description', // 1
        `${v.alpha},alpha,TRUE,"gold,silver",Alpha Corp`, // 2: on two plans
        `${v.bravo},bravo,false,gold,`, // 3: disabled
        `${v.charlie},charlie,,'gold',"Charlie, Inc."`, // 4: Enabled empty = true, plan in single quotes
        `,nokey,true,gold,`, // 5: no key
        `${value()},maybe,yes,gold,`, // 6: bad Enabled
        `${value()},Not_A_Label,true,gold,`, // 7: not a DNS label
        `${v.dup},twice,true,gold,`, // 8: duplicate name (with 9)
        `${value()},twice,true,gold,`, // 9
        `${v.alpha}x,delta,true,platinum,`, // 10: a plan that does not exist
        `${v.dup},echo,true,gold,`, // 11: duplicate value (with 8)
        `short,foxtrot,true,gold,`, // 12: too short a value
      ].join('\n'),
    );
    // A key is on at most one plan per API stage: gold on prod, silver on beta.
    first = await keystile([
      'import',
      csv,
      '--namespace',
      ns,
      '--stage',
      'gold=orders/prod',
      '--stage',
      'silver=orders/beta',
    ]);
  });

  afterAll(async () => {
    await enforcer?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  it('imports the good rows, reports each bad one by line and reason, and exits non-zero', () => {
    expect(first.code).toBe(1);
    const problems = first.stderr.trim().split('\n');
    expect(problems).toEqual([
      'line 5: nokey: Key is empty',
      expect.stringMatching(/^line 6: maybe: Enabled must be true or false .*"yes"$/),
      expect.stringMatching(
        /^line 7: Name is not a DNS label .*: 11 characters, the first bad one at position 1 \(an upper-case letter\)$/,
      ),
      'line 8: twice: the name twice is also on line 9',
      'line 9: twice: the name twice is also on line 8',
      'line 10: delta: usage plan platinum does not exist in namespace ' +
        ns +
        ' (map AWS usage plan ids to UsagePlan names with --plan-id ID=NAME)',
      'line 11: echo: the same key value is also on line 8',
      'line 12: foxtrot: Key: the value is too short (20 to 128 printable characters)',
    ]);
    expect(first.stdout).toContain('line 2: ApiKey alpha on gold, silver: created');
    expect(first.stdout).toContain('line 3: ApiKey bravo on gold: created');
    expect(first.stdout).toContain('line 4: ApiKey charlie on gold: created');
    expect(first.stdout).toContain('PlanBinding gold-imported (plan gold on orders/prod): created');
    expect(first.stdout).toContain('PlanBinding silver-imported (plan silver on orders/beta): created');
    expect(first.stdout).toMatch(
      /3 of 11 rows imported \(3 created, 0 updated, 0 unchanged\) into namespace \S+; 8 failed/,
    );
    for (const secret of Object.values(v)) expect(first.stdout + first.stderr).not.toContain(secret);
  });

  it('writes a labelled Secret owned by each ApiKey, and the ApiKey with its description and plans', async () => {
    const key = await kubectlJson<Obj>(['-n', ns, 'get', 'apikey', 'charlie']);
    expect(key.spec).toEqual({
      type: 'ApiKey',
      valueFrom: 'Secret',
      secretRef: { name: 'keystile-import-charlie', key: 'value' },
      enabled: true,
      description: 'Charlie, Inc.',
    });
    expect(key.metadata.labels).toEqual({
      'app.kubernetes.io/managed-by': 'keystile-import',
      'plan.import.keystile.dev/gold': 'true',
    });
    const secret = await kubectlJson<Obj>(['-n', ns, 'get', 'secret', 'keystile-import-charlie']);
    expect(Buffer.from(secret.data?.['value'] ?? '', 'base64').toString()).toBe(v.charlie);
    expect(secret.metadata.labels).toMatchObject({
      'keystile.dev/key-material': 'true',
      'keystile.dev/apikey': 'charlie',
    });
    expect(secret.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'ApiKey', name: 'charlie' }),
    ]);
    const bravo = await kubectlJson<Obj>(['-n', ns, 'get', 'apikey', 'bravo']);
    expect(bravo.spec?.['enabled']).toBe(false);
  });

  it('gets the keys Ready (the disabled one reported as such) and their hashes rendered', async () => {
    await kubectl([
      '-n',
      ns,
      'wait',
      '--for=condition=Ready',
      '--timeout=60s',
      'apikey/alpha',
      'apikey/charlie',
    ]);
    await waitFor(
      'bravo reported disabled',
      async () =>
        (await kubectlJson<Obj>(['-n', ns, 'get', 'apikey', 'bravo'])).status?.conditions?.find(
          (c) => c.type === 'Ready',
        )?.reason === 'Disabled',
      30_000,
      200,
    );
    const hashes = async (stage: string): Promise<string[]> => {
      const index = parseIndex(
        (await kubectlJson<Obj>(['-n', ns, 'get', 'configmap', `keystile-orders.${stage}`])).data?.[
          'index.json'
        ] ?? '',
      );
      if (!index.ok) throw new Error(index.error);
      const out: string[] = [];
      for (const s of index.value.shards) {
        const shard = parseSecretsShard(
          Buffer.from(
            (await kubectlJson<Obj>(['-n', ns, 'get', 'secret', s.secrets.name])).data?.['secrets.json'] ??
              '',
            'base64',
          ).toString(),
        );
        if (!shard.ok) throw new Error(shard.error);
        out.push(...(JSON.stringify(shard.value).match(/[0-9a-f]{64}/g) ?? []));
      }
      return out;
    };
    await waitFor(
      'the imported hashes rendered',
      async () => {
        const prod = await hashes('prod').catch((): string[] => []);
        return prod.includes(hashKey(v.alpha)) && prod.includes(hashKey(v.charlie));
      },
      30_000,
      200,
    );
    expect(await hashes('beta')).toContain(hashKey(v.alpha)); // alpha is on silver, bound on beta too
    // What enforcers read holds hashes, never a value.
    const rendered = await kubectl([
      '-n',
      ns,
      'get',
      'secrets,configmaps',
      '-l',
      'keystile.dev/role',
      '-o',
      'json',
    ]);
    const decoded = rendered.replace(/"([A-Za-z0-9+/=]{40,})"/g, (_, b64: string) =>
      Buffer.from(b64, 'base64').toString(),
    );
    for (const secret of Object.values(v)) expect(decoded).not.toContain(secret);
  });

  it('lets a request with an imported value through a real enforcer, and refuses the disabled one', async () => {
    enforcer = await startEnforcerProcess({
      watch: { namespace: ns, stages: ['orders/prod'] },
      env: { KUBECONFIG: ground().kubeconfig },
      logFile: join(dir, 'enforcer.log'),
    });
    const check = async (key: string): Promise<number> =>
      (
        await fetch(`http://127.0.0.1:${enforcer?.httpPort ?? 0}/keystile/${ns}/orders/prod/v1/orders`, {
          headers: { 'x-api-key': key },
        })
      ).status;
    await waitFor('alpha accepted', async () => (await check(v.alpha)) === 200, 20_000, 200);
    expect(await check(v.charlie)).toBe(200);
    expect(await check(v.bravo)).toBe(403);
    expect(await check(value())).toBe(403);
  });

  it('changes nothing when run again, and leaves the bindings as they are', async () => {
    const versions = async (): Promise<string> =>
      kubectl([
        '-n',
        ns,
        'get',
        'apikeys,planbindings,secrets',
        '-l',
        'app.kubernetes.io/managed-by=keystile-import',
        '-o',
        'jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion} {end}',
      ]);
    const before = await versions();
    expect(before.split(' ').filter(Boolean)).toHaveLength(3 + 3 + 2);
    const again = await keystile(['import', csv, '--namespace', ns]); // no --stage: the bindings exist
    expect(again.code).toBe(1);
    expect(again.stdout).toContain('PlanBinding gold-imported: exists, left as it is');
    expect(again.stdout).toMatch(/3 of 11 rows imported \(0 created, 0 updated, 3 unchanged\)/);
    expect(again.stderr.trim().split('\n')).toHaveLength(8);
    expect(await versions()).toBe(before);
  });

  it('never overwrites a value: a row with another value for an existing key is reported', async () => {
    const file = join(dir, 'changed.csv');
    writeFileSync(file, `Name,Key,UsagePlanIds\nalpha,${value()},gold\ncharlie,${v.alpha},gold\n`);
    const run = await keystile(['import', file, '-n', ns]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      'line 2: alpha: ApiKey alpha already exists with a different value; not overwritten',
    );
    expect(run.stderr).toMatch(/line 3: charlie: ApiKey charlie already exists with a different value/);
    const secret = await kubectlJson<Obj>(['-n', ns, 'get', 'secret', 'keystile-import-alpha']);
    expect(Buffer.from(secret.data?.['value'] ?? '', 'base64').toString()).toBe(v.alpha);
  });

  it('updates what a row changes (Enabled), and a dry run writes nothing', async () => {
    const file = join(dir, 'update.csv');
    writeFileSync(
      file,
      `Name,Key,Enabled,UsagePlanIds\nbravo,${v.bravo},true,gold\nlate,${v.late},true,gold\n`,
    );
    const dry = await keystile(['import', file, '-n', ns, '--dry-run']);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('line 2: ApiKey bravo on gold: would be updated');
    expect(dry.stdout).toContain('line 3: ApiKey late on gold: would be created');
    expect(await kubectl(['-n', ns, 'get', 'apikey', 'late', '--ignore-not-found', '-o', 'name'])).toBe('');
    expect((await kubectlJson<Obj>(['-n', ns, 'get', 'apikey', 'bravo'])).spec?.['enabled']).toBe(false);

    const run = await keystile(['import', file, '-n', ns]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('line 2: ApiKey bravo on gold: updated');
    expect(run.stdout).toContain('line 3: ApiKey late on gold: created');
    expect((await kubectlJson<Obj>(['-n', ns, 'get', 'apikey', 'bravo'])).spec?.['enabled']).toBe(true);
    await kubectl([
      '-n',
      ns,
      'wait',
      '--for=condition=Ready',
      '--timeout=60s',
      'apikey/bravo',
      'apikey/late',
    ]);
  });

  it('says what is wrong with the command line, and writes nothing', async () => {
    const file = join(dir, 'new-plan.csv');
    await kubectl(
      ['-n', ns, 'apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'keystile.dev/v1alpha1',
        kind: 'UsagePlan',
        metadata: { name: 'bronze' },
        spec: {},
      }),
    );
    writeFileSync(file, `Name,Key,UsagePlanIds\nhotel,${value()},bronze\n`);
    const run = await keystile(['import', file, '-n', ns]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      'error: PlanBinding bronze-imported does not exist: give the API stages for plan bronze with --stage',
    );
    expect(await kubectl(['-n', ns, 'get', 'apikey', 'hotel', '--ignore-not-found', '-o', 'name'])).toBe('');
    const missing = await keystile(['import', join(dir, 'nope.csv'), '-n', ns]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*nope\.csv: ENOENT/);
    const noNs = await keystile(['import', file, '-n', `${ns}-absent`]);
    expect(noNs.code).toBe(2);
    expect(noNs.stderr).toContain(`namespace ${ns}-absent does not exist`);
  });
});
