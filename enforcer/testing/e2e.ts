/**
 * What the enforcer's end-to-end suites share: rendering resources with the real `keystile render`,
 * reading the key values it generated, and running an enforcer with Envoy (HTTP or gRPC ext_authz)
 * in front of an echo upstream, each on free loopback ports.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { binaries, repoRoot } from '../../test/ground/paths.ts';
import { envoyWithEnforcer } from '../envoy/bootstrap.ts';
import { type EnvoyProcess, startEnvoy } from '../envoy/start.ts';
import {
  type EnforcerProcess,
  type EnforcerProcessOptions,
  freePort,
  startEnforcerProcess,
} from '../src/launch.ts';

const execFileAsync = promisify(execFile);

/** The Envoy binary; throws naming the prerequisite and how to install it when it is missing. */
export function envoyBinary(): string {
  const envoy = binaries().envoy;
  if (!existsSync(envoy)) {
    throw new Error(
      `missing prerequisite: envoy (${envoy}). Run 'bash test/ground/install.sh all' (npm start and npm test do).`,
    );
  }
  return envoy;
}

/**
 * Runs `keystile render` on `resources` (YAML text) in `dir`: writes resources.yaml, then
 * keystile-config.json and keys.yaml (reused by the next render, so values stay), and with
 * `manifests` the ConfigMaps and Secrets per stage in dir/manifests.
 */
export async function render(
  dir: string,
  resources: string,
  options: { namespace?: string; manifests?: boolean } = {},
): Promise<{ config: string; keys: string; manifests: string }> {
  mkdirSync(dir, { recursive: true });
  const input = join(dir, 'resources.yaml');
  writeFileSync(input, resources);
  const config = join(dir, 'keystile-config.json');
  const keys = join(dir, 'keys.yaml');
  const manifests = join(dir, 'manifests');
  const tmp = join(dir, 'keystile-config.json.next');
  await execFileAsync(process.execPath, [
    join(repoRoot, 'cli/keystile.ts'),
    'render',
    input,
    '--out',
    tmp,
    '--secrets',
    keys,
    '--namespace',
    options.namespace ?? 'default',
    ...(options.manifests ? ['--manifests', manifests] : []),
  ]);
  // Replace the config in one rename, as a careful deployment would: a watcher never reads half a file.
  await execFileAsync('mv', ['-f', tmp, config]);
  return { config, keys, manifests };
}

/** A key Secret `keystile render` wrote: its data by name. */
export function keySecret(keysFile: string, apiKey: string): Record<string, string> {
  for (const doc of parseAllDocuments(readFileSync(keysFile, 'utf8'))) {
    const s = doc.toJS() as { metadata?: { name?: string }; stringData?: Record<string, string> } | null;
    if (s?.metadata?.name === `keystile-key-${apiKey}`) return s.stringData ?? {};
  }
  throw new Error(`${keysFile} has no key Secret for ApiKey ${apiKey}`);
}

/** An ApiKey's generated value. */
export function keyValue(keysFile: string, apiKey: string): string {
  const value = keySecret(keysFile, apiKey)['value'];
  if (value === undefined) throw new Error(`ApiKey ${apiKey} has no generated value`);
  return value;
}

/** An echo upstream: answers every request with its method, path and headers as JSON. */
export async function startEchoUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, path: req.url, headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An enforcer behind Envoy, in front of an echo upstream. */
export interface Stack {
  readonly mode: 'http' | 'grpc';
  /** Envoy's URL per stage (`<namespace>/<api>/<stage>`). */
  readonly urls: ReadonlyMap<string, string>;
  readonly enforcer: EnforcerProcess;
  readonly envoy: EnvoyProcess;
  readonly upstreamPort: number;
  /** Stops everything this stack started. */
  stop(): Promise<void>;
}

/** Starts an enforcer (with `enforcer` options) and an Envoy listener per stage, HTTP or gRPC. */
export async function startStack(
  mode: 'http' | 'grpc',
  stages: readonly string[],
  enforcer: EnforcerProcessOptions,
  dir: string,
): Promise<Stack> {
  const binary = envoyBinary();
  const upstream = await startEchoUpstream();
  const proc = await startEnforcerProcess({ logFile: join(dir, `enforcer-${mode}.log`), ...enforcer });
  const listeners = await Promise.all(stages.map(async (stage) => ({ stage, port: await freePort() })));
  const envoyDir = join(dir, `envoy-${mode}`);
  mkdirSync(envoyDir, { recursive: true });
  let envoy: EnvoyProcess;
  try {
    envoy = await startEnvoy({
      binary,
      dir: envoyDir,
      config: envoyWithEnforcer({
        mode,
        listeners,
        adminPort: await freePort(),
        upstreamPort: upstream.port,
        enforcerHttpPort: proc.httpPort,
        enforcerGrpcPort: proc.grpcPort,
        timeout: '2s',
      }),
    });
  } catch (err) {
    await proc.stop();
    await upstream.close();
    throw err;
  }
  return {
    mode,
    urls: new Map(listeners.map((l) => [l.stage, `http://127.0.0.1:${l.port}`])),
    enforcer: proc,
    envoy,
    upstreamPort: upstream.port,
    stop: async () => {
      await envoy.stop();
      await proc.stop();
      await upstream.close();
    },
  };
}

/** What a request through Envoy got. */
export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The upstream's echo, when the request reached it. */
  readonly upstream: { method: string; path: string; headers: Record<string, string> } | undefined;
}

/** Sends a request and reads the answer. */
export async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init);
  const text = await res.text();
  let upstream: Answer['upstream'];
  if (res.status === 200 && res.headers.get('content-type')?.startsWith('application/json')) {
    upstream = JSON.parse(text) as Answer['upstream'];
  }
  return { status: res.status, headers: res.headers, text, upstream };
}
