// The local system's command line: `npm start`, `npm stop`, `npm run status`.
//   node test/ground/cli.ts start | stop [--purge] | status
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { localEnvPath, runningProcesses, startLocalSystem, stopLocalSystem } from './local-system.ts';
import { repoRoot, stateDir } from './paths.ts';

/** Where `npm start` applies the examples. */
const DEMO_NAMESPACE = 'keystile-demo';

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

  const label = (s: string): string => s.padEnd(24);
  console.log(`
Keystile local system is up (${system.seconds.toFixed(1)} s; started: ${system.started.join(', ') || 'nothing, all was running'}).
  ${label(`Kubernetes ${version ?? '?'}`)}${system.kubeconfig}
  ${label('Keystile operator')}${system.operatorUrl}/metrics
  ${label('Envoy -> upstream')}${system.envoyUrl}  (GET /hello answered ${through.status})
  ${label('Redis')}${system.redisUrl}
  ${label('Prometheus')}${system.prometheusUrl}

The examples (examples/aws-style, examples/tencent-style) are applied in namespace ${DEMO_NAMESPACE}:
${resources.replace(/^/gm, '  ')}

Try:
  source ${env}
  kubectl -n ${DEMO_NAMESPACE} get apikeys,usageplans,planbindings
  kubectl -n ${DEMO_NAMESPACE} get configmaps,secrets -l app.kubernetes.io/managed-by=keystile
  kubectl -n ${DEMO_NAMESPACE} describe planbinding gold-orders
  curl -s $KEYSTILE_ENVOY_URL/hello
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
