/**
 * `keystile inject [FILE...]`: reads workload YAML (files, or standard input) and prints it with the
 * Envoy and enforcer sidecars added (see inject.ts), ready for `kubectl apply -f -`. Messages go to
 * standard error; on a problem nothing is printed and the exit code is 1 (2 for bad usage).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigUsageError, parseKeySources } from '../../enforcer/src/config.ts';
import { MAX_SHARDS } from '../../contract/src/identity.ts';
import { inject, type InjectOptions, parseWorkloadStage } from './inject.ts';
import { DEFAULT_IMAGES, DEFAULT_PORTS, type SidecarPorts } from './inject-sidecars.ts';

/** Shards the projected volume mounts in mounted mode unless --max-shards says otherwise (16,000 keys). */
export const DEFAULT_MOUNTED_SHARDS = 8;

const USAGE = `usage: keystile inject [FILE...] [options]     (no FILE, or -: standard input; the result: standard output)
  kubectl get deploy,svc orders -o yaml | keystile inject --api orders --stage prod | kubectl apply -f -

  --api API --stage STAGE   the API stage of the workloads; a workload's annotation
                            keystile.dev/api-stage: api/stage wins, keystile.dev/inject: "false" keeps it out
  --mode watch|mounted      how the enforcer gets its stage's config: watch (default; by name through the
                            API, changes within a second) or mounted (a projected volume of the rendered
                            ConfigMaps and Secrets: no API access, changes after the kubelet's sync, ~1 min)
  --check http|grpc         Envoy's ext_authz to the enforcer (default http)
  --port PORT               the app's port Envoy forwards to: a number or a container port's name
                            (default: the first port the app's containers declare)
  --service-account NAME    watch mode: run the pod as this existing ServiceAccount (the Role is bound to it)
  --rbac true|false         watch mode: also print the ServiceAccount keystile-enforcer-<api>.<stage>, the
                            Role naming the stage's objects and the RoleBinding (default true)
  --max-shards N            shards of the stage the Role names (watch; default ${MAX_SHARDS}) or the volume
                            mounts (mounted; default ${DEFAULT_MOUNTED_SHARDS}, 2,000 keys each)
  --enforcer-image IMAGE    default ${DEFAULT_IMAGES.enforcer}
  --envoy-image IMAGE       default ${DEFAULT_IMAGES.envoy}
  --key-source SOURCES      the enforcer's --key-source (header names are also let through Envoy)
  --enforcer-arg=ARG        one more enforcer flag, repeatable: --enforcer-arg=--problem-json
  --enforcer-secret-env VAR=SECRET/KEY
                            an enforcer environment variable from a Secret's key, repeatable:
                            --enforcer-secret-env KEYSTILE_REDIS_PASSWORD=redis/password
  --proxy-port N            Envoy's listener, what the Service targets (default ${DEFAULT_PORTS.proxy})
  --proxy-admin-port N      Envoy's admin, loopback (default ${DEFAULT_PORTS.proxyAdmin})
  --proxy-ready-port N      Envoy's /ready for the kubelet (default ${DEFAULT_PORTS.proxyReady})
  --check-port N            the enforcer's check port, loopback (default ${DEFAULT_PORTS.check}; ${DEFAULT_PORTS.grpcCheck} with --check grpc)
  --enforcer-admin-port N   the enforcer's /healthz, /readyz, /metrics (default ${DEFAULT_PORTS.enforcerAdmin})`;

/** A usage problem: the message and the usage text are shown, exit code 2. */
class UsageError extends Error {}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${flag} must be ${allowed.join(' or ')}, not '${value}'`);
  }
  return value as T;
}

function whole(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < min || n > max) {
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max}, not '${value}'`);
  }
  return n;
}

/** The enforcer's flags that take a password: given by --enforcer-arg, it would be in the pod spec. */
const PASSWORD_FLAGS = /^--?(redis-password|redis-sentinel-password)(=|$)/;
/** A URL with a password in its user info (`redis://:pw@host`, `rediss://user:pw@host`). */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i;

/**
 * Refuses enforcer arguments that would write a credential into the pod spec (readable by whoever reads
 * the workload): a password flag, or a URL carrying a password, whether as `--flag=URL` or as the argument
 * after `--flag`. The message names the flag, never the value.
 */
function checkEnforcerArgs(args: readonly string[]): void {
  const flagName = (arg: string | undefined): string | undefined => {
    const name = arg?.split('=')[0];
    return name !== undefined && /^--?[a-z0-9][-a-z0-9]*$/i.test(name) ? name : undefined;
  };
  args.forEach((arg, i) => {
    const pw = PASSWORD_FLAGS.exec(arg);
    if (pw)
      throw new UsageError(
        `--enforcer-arg: --${pw[1] ?? ''} would write the password into the pod spec: give it from a Secret with --enforcer-secret-env ${pw[1] === 'redis-password' ? 'KEYSTILE_REDIS_PASSWORD' : 'KEYSTILE_REDIS_SENTINEL_PASSWORD'}=<secret>/<key>`,
      );
    const inline = arg.startsWith('-') && arg.includes('=');
    const value = inline ? arg.slice(arg.indexOf('=') + 1) : arg;
    if (!URL_WITH_PASSWORD.test(value)) return;
    const previous = args[i - 1];
    const flag = inline
      ? flagName(arg)
      : previous?.startsWith('-') && !previous.includes('=')
        ? flagName(previous)
        : undefined;
    throw new UsageError(
      `--enforcer-arg: ${flag ?? 'an argument'} carries a password in its URL, which would be written into the pod spec: give the password with --enforcer-secret-env KEYSTILE_REDIS_PASSWORD=<secret>/<key>`,
    );
  });
}

/** Parses the command line into the options of {@link inject} and the input files. */
export function parseInjectArgs(argv: readonly string[]): {
  options: InjectOptions;
  files: string[];
  help: boolean;
} {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        api: { type: 'string' },
        stage: { type: 'string' },
        mode: { type: 'string', default: 'watch' },
        check: { type: 'string', default: 'http' },
        port: { type: 'string' },
        'service-account': { type: 'string' },
        rbac: { type: 'string', default: 'true' },
        'max-shards': { type: 'string' },
        'enforcer-image': { type: 'string', default: DEFAULT_IMAGES.enforcer },
        'envoy-image': { type: 'string', default: DEFAULT_IMAGES.envoy },
        'key-source': { type: 'string' },
        'enforcer-arg': { type: 'string', multiple: true, default: [] },
        'enforcer-secret-env': { type: 'string', multiple: true, default: [] },
        'proxy-port': { type: 'string', default: String(DEFAULT_PORTS.proxy) },
        'proxy-admin-port': { type: 'string', default: String(DEFAULT_PORTS.proxyAdmin) },
        'proxy-ready-port': { type: 'string', default: String(DEFAULT_PORTS.proxyReady) },
        'check-port': { type: 'string' },
        'enforcer-admin-port': { type: 'string', default: String(DEFAULT_PORTS.enforcerAdmin) },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values;
  // What inject() would refuse later about the flags themselves: a usage error here (exit 2), as the
  // other flags' are, not a failed injection (exit 1).
  if ((v.api === undefined) !== (v.stage === undefined))
    throw new UsageError('give --api and --stage together');
  if (v.api !== undefined && v.stage !== undefined && parseWorkloadStage(`${v.api}/${v.stage}`) === undefined)
    throw new UsageError(
      `--api ${v.api} --stage ${v.stage}: each must be a DNS label (lower-case letters, digits, '-')`,
    );
  if (v.port !== undefined && (v.port.trim() === '' || /^\d+$/.test(v.port.trim())))
    whole('port', v.port, 1, 65535);
  const mode = oneOf('mode', v.mode, ['watch', 'mounted'] as const);
  const check = oneOf('check', v.check, ['http', 'grpc'] as const);
  const port = (flag: string, value: string | undefined): number => whole(flag, value ?? '', 1, 65535);
  const ports: SidecarPorts = {
    proxy: port('proxy-port', v['proxy-port']),
    proxyAdmin: port('proxy-admin-port', v['proxy-admin-port']),
    proxyReady: port('proxy-ready-port', v['proxy-ready-port']),
    check: port(
      'check-port',
      v['check-port'] ?? String(check === 'grpc' ? DEFAULT_PORTS.grpcCheck : DEFAULT_PORTS.check),
    ),
    enforcerAdmin: port('enforcer-admin-port', v['enforcer-admin-port']),
  };
  if (new Set(Object.values(ports)).size !== Object.values(ports).length) {
    throw new UsageError('the sidecar ports must all differ');
  }
  if (v['key-source'] !== undefined) {
    try {
      parseKeySources(v['key-source']);
    } catch (err) {
      if (err instanceof ConfigUsageError) throw new UsageError(err.message);
      throw err;
    }
  }
  const shards =
    v['max-shards'] === undefined ? undefined : whole('max-shards', v['max-shards'], 1, MAX_SHARDS);
  const secretEnv = v['enforcer-secret-env'].map((text) => {
    const m =
      /^([A-Za-z_][A-Za-z0-9_]*)=([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)\/([-._a-zA-Z0-9]{1,253})$/.exec(text);
    if (!m) throw new UsageError(`--enforcer-secret-env: '${text}' is not VAR=SECRET/KEY`);
    return { name: m[1] ?? '', secret: m[2] ?? '', key: m[4] ?? '' };
  });
  checkEnforcerArgs(v['enforcer-arg']);
  const sa = v['service-account'];
  // A ServiceAccount's name is a DNS subdomain: anything else the API server refuses, after the apply began.
  if (
    sa !== undefined &&
    !/^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(sa)
  )
    throw new UsageError(
      `--service-account: '${sa}' is not a ServiceAccount name (lower-case letters, digits, '-' and '.', up to 253 characters)`,
    );
  for (const image of [v['enforcer-image'], v['envoy-image']]) {
    if (image.trim() === '' || /\s/.test(image)) throw new UsageError(`'${image}' is not an image reference`);
  }
  return {
    help: v.help === true,
    files: parsed.positionals,
    options: {
      api: v.api,
      stage: v.stage,
      mode,
      check,
      port: v.port,
      serviceAccount: v['service-account'],
      rbac: oneOf('rbac', v.rbac, ['true', 'false'] as const) === 'true',
      roleShards: shards ?? MAX_SHARDS,
      mountedShards: shards ?? DEFAULT_MOUNTED_SHARDS,
      enforcerImage: v['enforcer-image'],
      envoyImage: v['envoy-image'],
      keySource: v['key-source'],
      enforcerArgs: v['enforcer-arg'],
      enforcerSecretEnv: secretEnv,
      ports,
    },
  };
}

/** Where the command reads and writes (the process's streams by default; tests pass their own). */
export interface InjectIo {
  readonly readFile: (path: string) => string;
  /** Standard input, or undefined when it is a terminal (nothing piped in). */
  readonly readStdin: () => string | undefined;
  readonly out: (text: string) => void;
  readonly log: (line: string) => void;
}

const processIo: InjectIo = {
  readFile: (path) => readFileSync(path, 'utf8'),
  readStdin: () => (process.stdin.isTTY ? undefined : readFileSync(0, 'utf8')),
  out: (text) => process.stdout.write(text),
  log: (line) => {
    console.error(line);
  },
};

/** Runs the command; returns the exit code. */
export function injectCommand(argv: readonly string[], io: InjectIo = processIo): number {
  let args;
  try {
    args = parseInjectArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.log(`keystile inject: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    io.out(`${USAGE}\n`); // asked for: standard output, exit 0
    return 0;
  }
  const texts: string[] = [];
  const files = args.files.length === 0 ? ['-'] : args.files;
  for (const file of files) {
    if (file === '-') {
      const text = io.readStdin();
      if (text === undefined) {
        io.log(`keystile inject: no input: give a FILE or pipe YAML in\n\n${USAGE}`);
        return 2;
      }
      texts.push(text);
      continue;
    }
    try {
      texts.push(io.readFile(file));
    } catch (err) {
      // A FILE that cannot be read is a wrong command line: nothing done, exit 2 (as import answers it).
      io.log(
        `keystile inject: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err))}`,
      );
      return 2;
    }
  }
  const result = inject(texts.map((t) => (t.endsWith('\n') ? t : `${t}\n`)).join('---\n'), args.options);
  for (const w of result.warnings) io.log(`warning: ${w}`);
  if (result.errors.length > 0) {
    for (const e of result.errors) io.log(`error: ${e}`);
    io.log('nothing printed');
    return 1;
  }
  if (result.injected.length === 0) {
    io.log(
      'warning: no workload injected: give --api and --stage, or annotate workloads keystile.dev/api-stage: api/stage',
    );
  }
  for (const line of result.injected) io.log(`injected ${line}`);
  io.out(result.output);
  return 0;
}
