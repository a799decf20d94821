// The local system's command line: `npm start`, `npm stop`, `npm run status`.
//   node test/ground/cli.ts start | stop [--purge] | status
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DEMO_NAMESPACE, startDemo } from './demo.ts';
import {
  groundContext,
  localEnvPath,
  runningProcesses,
  startLocalSystem,
  stopLocalSystem,
  writeLocalEnv,
} from './local-system.ts';
import { repoRoot, stateDir } from './paths.ts';

async function start(): Promise<void> {
  const system = await startLocalSystem();
  const env = relative(process.cwd(), localEnvPath) || localEnvPath;
  const kubectl = (args: string[], input?: string): string =>
    execFileSync(system.bins.kubectl, args, {
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG: system.kubeconfig },
      ...(input !== undefined && { input }),
    }).trim();
  const serverVersion = kubectl(['version', '-o', 'json']);
  const version = (JSON.parse(serverVersion) as { serverVersion?: { gitVersion?: string } }).serverVersion
    ?.gitVersion;
  const through = await fetch(`${system.envoyUrl}/hello`);
  // The examples, in a namespace of their own: the operator renders them within a second or two.
  kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: DEMO_NAMESPACE } }),
  );
  for (const dir of ['examples/aws-style', 'examples/tencent-style'])
    kubectl(['-n', DEMO_NAMESPACE, 'apply', '-f', join(repoRoot, dir)]);
  kubectl(['-n', DEMO_NAMESPACE, 'wait', '--for=condition=Ready', '--timeout=30s', 'planbindings', '--all']);
  const resources = kubectl(['-n', DEMO_NAMESPACE, 'get', 'apikeys,usageplans,planbindings']);

  // The enforcer behind Envoy, on the operator's output; then show it deciding.
  const demo = await startDemo(groundContext(), system.kubeconfig);
  writeLocalEnv(system, {
    KEYSTILE_ENVOY_URL: demo.ordersUrl,
    KEYSTILE_ENVOY_GRPC_URL: demo.paymentsUrl,
    KEYSTILE_ENFORCER_URL: demo.enforcerAdminUrl,
  });
  const acme = Buffer.from(
    kubectl([
      '-n',
      DEMO_NAMESPACE,
      'get',
      'secret',
      'keystile-key-acme-prod',
      '-o',
      'jsonpath={.data.value}',
    ]),
    'base64',
  ).toString();
  const noKey = (await fetch(`${demo.ordersUrl}/v1/orders`)).status;
  const withKey = await fetch(`${demo.ordersUrl}/v1/orders`, { headers: { 'x-api-key': acme } });
  const seen = ((await withKey.json()) as { headers: Record<string, string> }).headers;
  const burst = await Promise.all(
    Array.from({ length: 260 }, () =>
      fetch(`${demo.ordersUrl}/v1/orders`, { headers: { 'x-api-key': acme } }).then((r) => r.status),
    ),
  );
  const count = (code: number): number => burst.filter((s) => s === code).length;
  // The key holder's own view, through the same Envoy (ext_authz off for it; it costs no quota).
  const own = await fetch(`${demo.ordersUrl}/keystile/usage`, { headers: { 'x-api-key': acme } });
  const view = (await own.json()) as {
    plan?: string;
    quota?: { used: number; remaining: number; limit: number };
  };

  const label = (s: string): string => s.padEnd(24);
  console.log(`
Keystile local system is up (${system.seconds.toFixed(1)} s; started: ${system.started.join(', ') || 'nothing, all was running'}).
  ${label(`Kubernetes ${version ?? '?'}`)}${system.kubeconfig}
  ${label('Keystile operator')}${system.operatorUrl}/metrics
  ${label('Envoy + enforcer (HTTP)')}${demo.ordersUrl}   orders/prod
  ${label('Envoy + enforcer (gRPC)')}${demo.paymentsUrl}   payments/release
  ${label('Enforcer metrics')}${demo.enforcerAdminUrl}/metrics
  ${label('Envoy, no check')}${system.envoyUrl}  (GET /hello answered ${through.status})
  ${label('Redis')}${system.redisUrl}
  ${label('Prometheus')}${system.prometheusUrl}

The examples (examples/aws-style, examples/tencent-style) are applied in namespace ${DEMO_NAMESPACE}:
${resources.replace(/^/gm, '  ')}

The enforcer decides every request to orders/prod (plan gold: 100 requests/s, burst 200):
  without a key                      ${noKey}
  with acme-prod's key               ${withKey.status}; the upstream saw x-keystile-key-id: ${seen['x-keystile-key-id'] ?? '(none)'}, x-keystile-plan: ${seen['x-keystile-plan'] ?? '(none)'}
  260 requests at once with it       ${count(200)} x 200, ${count(429)} x 429 (the bucket holds 200)
  its own view, /keystile/usage      ${own.status}; plan ${view.plan ?? '?'}, ${view.quota ? `${view.quota.used} of ${view.quota.limit} used this month, ${view.quota.remaining} left` : 'no quota'}

Try:
  source ${env}
  KEY=$(kubectl -n ${DEMO_NAMESPACE} get secret keystile-key-acme-prod -o jsonpath='{.data.value}' | base64 -d)
  curl -i $KEYSTILE_ENVOY_URL/v1/orders                          # 403
  curl -i -H "x-api-key: $KEY" $KEYSTILE_ENVOY_URL/v1/orders     # 200, with RateLimit headers
  curl -s -H "x-api-key: $KEY" $KEYSTILE_ENVOY_URL/keystile/usage  # the key's plan, usage and remaining quota
  kubectl -n ${DEMO_NAMESPACE} get apikeys -o wide               # usage in status, within 30 s
  npm run keystile -- usage acme-prod -n ${DEMO_NAMESPACE} --from $(date -u +%Y-%m-01) --enforcer $KEYSTILE_ENFORCER_URL
  kubectl -n ${DEMO_NAMESPACE} patch apikey acme-prod --type=merge -p '{"spec":{"enabled":false}}'   # then 403 within a second
  kubectl -n ${DEMO_NAMESPACE} get apikeys,usageplans,planbindings
  kubectl -n ${DEMO_NAMESPACE} get configmaps,secrets -l app.kubernetes.io/managed-by=keystile,keystile.dev/role
  kubectl -n ${DEMO_NAMESPACE} describe planbinding gold-orders
  curl -s $KEYSTILE_ENVOY_OPEN_URL/hello
  npm stop          # ends every process npm start started
`);
}

async function stop(purge: boolean): Promise<void> {
  const stopped = await stopLocalSystem();
  console.log(stopped.length ? `stopped: ${stopped.join(', ')}` : 'nothing was running');
  if (purge) {
    rmSync(stateDir, { recursive: true, force: true });
    console.log(`removed ${relative(repoRoot, stateDir)}/ (data, certificates, logs)`);
  }
}

function status(): void {
  const running = runningProcesses();
  if (running.length === 0) console.log('nothing is running');
  for (const r of running)
    console.log(
      `${r.name.padEnd(26)} pid ${String(r.pid).padEnd(8)} since ${r.startedAt}  log ${relative(repoRoot, r.log)}`,
    );
}

const [command, ...rest] = process.argv.slice(2);
try {
  switch (command) {
    case 'start':
      await start();
      break;
    case 'stop':
      await stop(rest.includes('--purge'));
      break;
    case 'status':
      status();
      break;
    default:
      console.error('usage: cli.ts start | stop [--purge] | status');
      process.exitCode = 2;
  }
} catch (err) {
  console.error(`keystile: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
