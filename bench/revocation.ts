// How long a disabled or deleted key keeps working, through the whole local system: from the change
// sent to the API server until Envoy (HTTP ext_authz, the enforcer in watch mode on the operator's
// output) answers 403 to the key. The target (issue 6): within 1 s. Runs on the local system (`npm run
// bench -- revocation` starts it if it is not running).
//
//   1. An ApiKey disabled (`spec.enabled: false`), then enabled again: 20 of each, the time until Envoy
//      answers 403, then 200 again.
//   2. An ApiKey deleted: 10 keys put on orders/prod with the demo's plan (a binding of the benchmark's
//      own), admitted, then deleted one at a time: the time until Envoy answers 403.
//
// The key is asked every 10 ms (100 a second, the demo plan's rate: no 429 within a round). Figures are
// wall time on this machine, with everything of the local system on its two CPUs.
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { keySecretName } from '../operator/src/keys/key-secret.ts';
import { DEMO_NAMESPACE } from '../test/ground/demo.ts';
import { readLocalEnv } from '../test/ground/local-system.ts';
import { waitFor } from '../test/ground/wait.ts';

const group = 'keystile.dev';
const version = 'v1alpha1';
const POLL_MS = 10;
const GIVE_UP_MS = 30_000;

const env = readLocalEnv();
const kubeconfigPath = env.get('KUBECONFIG');
const envoy = env.get('KEYSTILE_ENVOY_URL');
if (kubeconfigPath === undefined || envoy === undefined) {
  throw new Error('the local system is not running: `npm start` (or `npm run bench -- revocation`)');
}
const kc = new KubeConfig();
kc.loadFromFile(kubeconfigPath);
const custom = kc.makeApiClient(CustomObjectsApi);
const core = kc.makeApiClient(CoreV1Api);

/** Envoy's status for a request to orders/prod with this key. */
async function status(key: string): Promise<number> {
  const res = await fetch(`${envoy}/v1/orders`, { headers: { 'x-api-key': key } });
  await res.body?.cancel();
  return res.status;
}

/** Milliseconds from `start` until Envoy answers `want` to the key. */
async function until(key: string, want: number, start: number): Promise<number> {
  await waitFor(
    `Envoy answering ${want} to the key`,
    async () => (await status(key)) === want,
    GIVE_UP_MS,
    POLL_MS,
  );
  return performance.now() - start;
}

/** The key value of an ApiKey (its key Secret), waiting until the operator made it. */
async function keyValue(name: string): Promise<string> {
  let value: string | undefined;
  await waitFor(
    `a value for ApiKey ${name}`,
    async () => {
      const v = (await core.readNamespacedSecret({ name: keySecretName(name), namespace: DEMO_NAMESPACE }))
        .data?.['value'];
      value = v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
      return value !== undefined;
    },
    GIVE_UP_MS,
  );
  return value ?? '';
}

const setEnabled = (name: string, enabled: boolean): Promise<unknown> =>
  custom.patchNamespacedCustomObject({
    group,
    version,
    namespace: DEMO_NAMESPACE,
    plural: 'apikeys',
    name,
    body: [{ op: 'replace', path: '/spec/enabled', value: enabled }],
  });

const summary = (ms: number[]): string => {
  const s = [...ms].sort((a, b) => a - b);
  const median = s[Math.floor(s.length / 2)] ?? 0;
  const worst = s.at(-1) ?? 0;
  const verdict = median < 1000 ? 'PASS' : 'MISS';
  return `median ${median.toFixed(0)} ms, worst ${worst.toFixed(0)} ms of ${s.length} (target median < 1 s)  ${verdict}`;
};

// 1. Disabled and enabled again: the demo's acme-prod key, put back as it was at the end.
const DEMO_KEY = 'acme-prod';
const value = await keyValue(DEMO_KEY);
if ((await status(value)) !== 200) throw new Error(`${DEMO_KEY} is not admitted to start with`);
const disabled: number[] = [];
const enabled: number[] = [];
try {
  for (let i = 0; i < 20; i++) {
    let start = performance.now();
    await setEnabled(DEMO_KEY, false);
    disabled.push(await until(value, 403, start));
    start = performance.now();
    await setEnabled(DEMO_KEY, true);
    enabled.push(await until(value, 200, start));
  }
} finally {
  await setEnabled(DEMO_KEY, true);
}
console.log(`1. ApiKey ${DEMO_KEY} disabled until Envoy answers 403: ${summary(disabled)}`);
console.log(`   enabled again until Envoy answers 200: ${summary(enabled)}`);

// 2. Deleted: keys of their own, put on orders/prod with the demo's plan by a binding of their own.
const names = Array.from({ length: 10 }, (_, i) => `bench-revocation-${i}`);
const BINDING = 'bench-revocation';
const create = (plural: string, body: object): Promise<unknown> =>
  custom.createNamespacedCustomObject({ group, version, namespace: DEMO_NAMESPACE, plural, body });
const remove = (plural: string, name: string): Promise<unknown> =>
  custom.deleteNamespacedCustomObject({ group, version, namespace: DEMO_NAMESPACE, plural, name });
const deleted: number[] = [];
try {
  await create('planbindings', {
    apiVersion: `${group}/${version}`,
    kind: 'PlanBinding',
    metadata: { name: BINDING },
    spec: {
      planRef: { name: 'gold' },
      keys: { selector: { matchLabels: { 'bench.keystile.dev/revocation': 'yes' } } },
      apiStages: [{ api: 'orders', stage: 'prod' }],
    },
  });
  for (const name of names) {
    await create('apikeys', {
      apiVersion: `${group}/${version}`,
      kind: 'ApiKey',
      metadata: { name, labels: { 'bench.keystile.dev/revocation': 'yes' } },
      spec: {},
    });
  }
  for (const name of names) {
    const key = await keyValue(name);
    await until(key, 200, performance.now());
    const start = performance.now();
    await remove('apikeys', name);
    deleted.push(await until(key, 403, start));
  }
} finally {
  for (const name of names) await remove('apikeys', name).catch(() => undefined);
  await remove('planbindings', BINDING).catch(() => undefined);
}
console.log(`2. an ApiKey deleted until Envoy answers 403: ${summary(deleted)}`);
