// The images' Dockerfiles, checked without a Docker engine (there is none here): a lint for the rules
// that matter (pinned bases, multi-stage, a non-root numeric USER, no ADD of URLs, no secrets, exec-form
// entry points), the .dockerignore allowlist against every file a Dockerfile copies, and a dry build:
// each Dockerfile's build stage is replayed on the files its COPY lines would send (through the
// .dockerignore), `npm run build` compiles them, the runtime stage is assembled from its COPY --from
// lines, and its entry point runs on the machine's Node 24 (the enforcer decides a check; the operator
// loads every module and parses its settings). A static walk of the runtime's imports checks that every
// file it loads was copied and that every package is a production dependency.
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { stageDocuments, standaloneConfig, plan } from '../enforcer/testing/fixtures.ts';
import { startEnforcerProcess } from '../enforcer/src/launch.ts';
import { ENFORCER_MALLOC_ARENA_MAX, ENFORCER_NODE_OPTIONS } from '../enforcer/src/runtime-settings.ts';
import { OPERATOR_MALLOC_ARENA_MAX, OPERATOR_NODE_OPTIONS } from '../operator/src/runtime-settings.ts';

const repo = resolve(import.meta.dirname, '..');
const DOCKERFILES = ['enforcer/Dockerfile', 'operator/Dockerfile'] as const;
const execFileAsync = promisify(execFile);

/** One instruction: its keyword (upper-case) and the rest of its (joined) lines. */
interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

/** One stage: its base, its name, its instructions. */
interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Parses a Dockerfile into stages (line continuations joined, comments and directives dropped). */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i] ?? '';
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.trimEnd().endsWith('\\') && i + 1 < lines.length) {
      i++;
      const next = lines[i] ?? '';
      if (/^\s*#/.test(next)) continue; // comments inside a continued instruction
      line = `${line.trimEnd().slice(0, -1)} ${next.trim()}`;
    }
    const m = /^\s*(\w+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`line ${start + 1}: not an instruction: ${line}`);
    const keyword = (m[1] ?? '').toUpperCase();
    const args = (m[2] ?? '').trim();
    if (keyword === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`line ${start + 1}: cannot read FROM ${args}`);
      stages.push({ from: f[1] ?? '', name: f[2], instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`line ${start + 1}: ${keyword} before FROM`);
    stage.instructions.push({ keyword, args, line: start + 1 });
  }
  return stages;
}

/** A COPY's options, sources and destination. */
export function parseCopy(args: string): { from?: string; sources: string[]; dest: string } {
  const words = args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift() ?? '';
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
  }
  const dest = words.pop();
  if (dest === undefined || words.length === 0) throw new Error(`COPY ${args}: no source or destination`);
  return { ...(from !== undefined && { from }), sources: words, dest };
}

/** A .dockerignore: its patterns in order (Docker's semantics: last match wins, a parent's match counts). */
export function dockerignore(text: string): (path: string) => boolean {
  const patterns = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const p = posix.normalize((negate ? l.slice(1) : l).trim()).replace(/^\/+|\/+$/g, '');
      let re = '';
      for (let i = 0; i < p.length; i++) {
        const c = p.charAt(i);
        if (c === '*' && p.charAt(i + 1) === '*') {
          i++;
          if (p.charAt(i + 1) === '/') {
            i++;
            re += '(?:.*/)?';
          } else re += '.*';
        } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (path) => {
    const parts = path.split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const p of patterns) {
      if (prefixes.some((x) => p.re.test(x))) excluded = !p.negate;
    }
    return excluded;
  };
}

const ignored = dockerignore(readFileSync(join(repo, '.dockerignore'), 'utf8'));
const parsed = Object.fromEntries(
  DOCKERFILES.map((f) => [f, parseDockerfile(readFileSync(join(repo, f), 'utf8'))]),
) as Record<(typeof DOCKERFILES)[number], Stage[]>;

/** Every file under `path` (a file or a directory of the repository), repository-relative. */
function filesUnder(path: string): string[] {
  const abs = join(repo, path);
  if (!statSync(abs).isDirectory()) return [path];
  return readdirSync(abs, { recursive: true, encoding: 'utf8' })
    .map((f) => join(path, f))
    .filter((f) => statSync(join(repo, f)).isFile());
}

describe.each(DOCKERFILES)('%s', (file) => {
  const stages = parsed[file];
  const final = stages.at(-1)!;
  const all = stages.flatMap((s) => s.instructions);

  it('is multi-stage: Node 24 build stages, then a small runtime stage that builds nothing', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages.slice(0, -1)) {
      expect(s.name, `stage FROM ${s.from} needs a name`).toMatch(/^[a-z][a-z0-9-]*$/);
      expect(s.from).toMatch(/^node:24\.\d+\.\d+-[a-z]+-slim$/);
    }
    expect(final.from).toMatch(
      /^(gcr\.io\/distroless\/nodejs24-debian1[23](:nonroot)?|node:24\.\d+\.\d+-[a-z]+-slim)(@sha256:[0-9a-f]{64})?$/,
    );
    expect(final.instructions.filter((i) => i.keyword === 'RUN')).toEqual([]);
  });

  it('pins every base image to a version (never latest, never untagged)', () => {
    const names = new Set(stages.map((s) => s.name));
    for (const s of stages) {
      if (names.has(s.from)) continue;
      expect(s.from, `${s.from}: name a tag or digest`).toMatch(/(:[\w.-]+|@sha256:[0-9a-f]{64})$/);
      expect(s.from).not.toMatch(/:latest$/);
      expect(s.from).toMatch(/\d/); // a version, not a floating name
    }
  });

  it('runs as a non-root user given by number (what runAsNonRoot can verify)', () => {
    const users = final.instructions.filter((i) => i.keyword === 'USER');
    expect(users.length).toBeGreaterThan(0);
    const [uid, gid] = (users.at(-1)?.args ?? '').split(':');
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    if (gid !== undefined) expect(Number(gid)).toBeGreaterThan(0);
  });

  it('uses COPY, npm ci, exec-form entry points and absolute WORKDIRs; ships no secrets', () => {
    expect(all.filter((i) => i.keyword === 'ADD')).toEqual([]);
    for (const i of all.filter((x) => x.keyword === 'RUN')) {
      expect(i.args, `line ${i.line}`).not.toMatch(/npm (install|i)\b/);
      expect(i.args, `line ${i.line}`).not.toMatch(/\b(curl|wget)\b/);
    }
    for (const i of all.filter((x) => x.keyword === 'WORKDIR')) expect(i.args).toMatch(/^\//);
    const entry = final.instructions.filter((i) => i.keyword === 'ENTRYPOINT' || i.keyword === 'CMD');
    expect(entry.length).toBeGreaterThan(0);
    for (const e of entry)
      expect(() => JSON.parse(e.args) as unknown, `line ${e.line}: exec form`).not.toThrow();
    for (const i of all.filter((x) => x.keyword === 'ENV' || x.keyword === 'ARG')) {
      expect(i.args, `line ${i.line}`).not.toMatch(/(PASSWORD|SECRET|TOKEN|API_KEY|NPM_AUTH|_KEY=)/i);
    }
    for (const i of all.filter((x) => x.keyword === 'COPY')) {
      for (const s of parseCopy(i.args).sources)
        expect(s).not.toMatch(/(^|\/)(\.npmrc|\.env|\.keystile|\.git)(\/|$)/);
    }
  });

  it('copies only files that exist and that the .dockerignore lets through', () => {
    const copies = all
      .filter((i) => i.keyword === 'COPY')
      .map((i) => ({ ...parseCopy(i.args), line: i.line }));
    const names = new Set(stages.map((s) => s.name));
    for (const c of copies) {
      if (c.from !== undefined) {
        expect(names.has(c.from), `line ${c.line}: --from=${c.from} names no earlier stage`).toBe(true);
        continue;
      }
      for (const s of c.sources) {
        expect(existsSync(join(repo, s)), `line ${c.line}: ${s} does not exist`).toBe(true);
        const files = filesUnder(s).filter((f) => !f.endsWith('.test.ts'));
        expect(files.length).toBeGreaterThan(0);
        const kept = files.filter((f) => !ignored(f));
        expect(kept, `line ${c.line}: .dockerignore keeps ${s} out`).toEqual(files);
      }
    }
  });

  it('carries production dependencies only into the runtime stage', () => {
    const modules = final.instructions
      .filter((i) => i.keyword === 'COPY')
      .map((i) => parseCopy(i.args))
      .filter((c) => c.sources.some((s) => s.includes('node_modules')));
    expect(modules).toHaveLength(1);
    const from = stages.find((s) => s.name === modules[0]?.from);
    const installs = from?.instructions.filter((i) => i.keyword === 'RUN' && /npm ci/.test(i.args)) ?? [];
    expect(installs.length).toBe(1);
    expect(installs[0]?.args).toMatch(/--omit=dev/);
  });
});

describe.each([
  ['operator/Dockerfile', OPERATOR_NODE_OPTIONS, OPERATOR_MALLOC_ARENA_MAX],
  ['enforcer/Dockerfile', ENFORCER_NODE_OPTIONS, ENFORCER_MALLOC_ARENA_MAX],
] as const)('%s', (file, nodeOptions, mallocArenaMax) => {
  it('runs Node with the settings of its runtime-settings.ts, as the chart and the benchmarks do', () => {
    const final = parsed[file].at(-1);
    const env = (final?.instructions ?? [])
      .filter((i) => i.keyword === 'ENV')
      .map((i) => i.args)
      .join(' ');
    const value = (name: string): string | undefined =>
      new RegExp(`(?:^|\\s)${name}=("[^"]*"|\\S+)`).exec(env)?.[1]?.replace(/^"|"$/g, '');
    expect(value('NODE_OPTIONS')).toBe(nodeOptions);
    expect(value('MALLOC_ARENA_MAX')).toBe(mallocArenaMax);
  });
});

describe('production dependencies', () => {
  it("are JavaScript only: no native addon, no install script but protobufjs's notice (the images skip them)", () => {
    const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }>;
    };
    const prod = Object.entries(lock.packages).filter(([path, p]) => path !== '' && p.dev !== true);
    expect(prod.length).toBeGreaterThan(10);
    expect(prod.filter(([, p]) => p.hasInstallScript).map(([path]) => path)).toEqual([
      'node_modules/protobufjs',
    ]);
    const native = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory()
          ? e.name === 'node_modules'
            ? []
            : native(join(dir, e.name))
          : e.name.endsWith('.node') || e.name === 'binding.gyp'
            ? [join(dir, e.name)]
            : [],
      );
    for (const [path] of prod) {
      if (existsSync(join(repo, path))) expect(native(join(repo, path)), path).toEqual([]);
    }
  });
});

describe('.dockerignore', () => {
  it('keeps local state, dependencies, builds and secrets out of the build context', () => {
    for (const path of [
      'node_modules/yaml/package.json',
      '.git/config',
      '.keystile/kubeconfig',
      '.keystile/pki/ca.key',
      'dist/enforcer/src/main.js',
      '.env',
      '.npmrc',
      'test/ground/harness.ts',
      'enforcer/src/config.test.ts',
      'docs/enforcer.md',
    ]) {
      expect(ignored(path), path).toBe(true);
    }
    expect(ignored('enforcer/src/main.ts')).toBe(false);
    expect(ignored('package-lock.json')).toBe(false);
  });
});

// The dry build: slow (it compiles the project once per distinct build stage), so it runs once.
describe('a dry build of each image, on the machine Node 24', () => {
  const work = mkdtempSync(join(tmpdir(), 'keystile-dockerfiles-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  /** A stage's filesystem: container path -> a directory under `work`. */
  const roots = new Map<string, string>();
  const built = new Map<string, Promise<string>>();

  /** Copies repository files through the .dockerignore, as the build context would hold them. */
  function copyFromContext(source: string, dest: string): void {
    for (const f of filesUnder(source)) {
      if (ignored(f)) continue;
      const rel = statSync(join(repo, source)).isDirectory() ? relative(source, f) : basename(f);
      const target =
        statSync(join(repo, source)).isDirectory() || dest.endsWith('/') ? join(dest, rel) : dest;
      mkdirSync(dirname(target), { recursive: true });
      cpSync(join(repo, f), target);
    }
  }

  /** Replays one stage; returns its root directory. */
  async function replay(file: string, stages: Stage[], index: number): Promise<string> {
    const stage = stages[index]!;
    const key = JSON.stringify([stage.from, stage.instructions.map((i) => [i.keyword, i.args])]);
    const known = built.get(key);
    if (known) return known;
    const run = (async (): Promise<string> => {
      const root = join(work, `${basename(dirname(file))}-${stage.name ?? 'final'}`);
      mkdirSync(root, { recursive: true });
      let workdir = '/';
      const at = (p: string): string => join(root, posix.isAbsolute(p) ? p : posix.join(workdir, p));
      for (const i of stage.instructions) {
        if (i.keyword === 'WORKDIR') {
          workdir = i.args;
          mkdirSync(at('.'), { recursive: true });
        } else if (i.keyword === 'COPY') {
          const c = parseCopy(i.args);
          for (const s of c.sources) {
            const destPath = at(c.dest).replace(/\/+$/, '');
            if (c.from === undefined) {
              copyFromContext(s, c.dest.endsWith('/') ? `${destPath}/` : destPath);
              continue;
            }
            const from = await replay(
              file,
              stages,
              stages.findIndex((x) => x.name === c.from),
            );
            const src = join(from, s).replace(/\/+$/, '');
            mkdirSync(dirname(destPath), { recursive: true });
            // node_modules is a link to the repository's (the dry build cannot run npm ci).
            if (lstatSync(src).isSymbolicLink()) symlinkSync(realpathSync(src), destPath);
            else cpSync(src, destPath, { recursive: true });
          }
        } else if (i.keyword === 'RUN') {
          if (/^npm ci\b/.test(i.args)) {
            if (!existsSync(at('node_modules'))) symlinkSync(join(repo, 'node_modules'), at('node_modules'));
          } else if (i.args === 'npm run build') {
            const script = (
              JSON.parse(readFileSync(at('package.json'), 'utf8')) as { scripts: { build: string } }
            ).scripts.build;
            const [tool, ...args] = script.split(' ');
            expect(tool).toBe('tsc');
            // Type errors are `npm run check`'s to report; a file the context lacks is this test's.
            const r = await execFileAsync(
              process.execPath,
              [join(repo, 'node_modules/typescript/bin/tsc'), ...args],
              {
                cwd: at('.'),
              },
            ).catch((err: unknown) => ({ stdout: (err as { stdout?: string }).stdout ?? '' }));
            const missing = r.stdout.split('\n').filter((l) => /error TS(2307|2305|6053|5083|18003)/.test(l));
            expect(missing, 'files the build context lacks').toEqual([]);
          } else {
            throw new Error(`${file} line ${i.line}: the dry build cannot replay RUN ${i.args}: teach it`);
          }
        }
      }
      return root;
    })();
    built.set(key, run);
    return run;
  }

  /** The runtime's ENTRYPOINT, its container paths mapped into the dry build. */
  async function runtime(file: (typeof DOCKERFILES)[number]): Promise<{ root: string; entry: string }> {
    const stages = parsed[file];
    const root = await replay(file, stages, stages.length - 1);
    roots.set(file, root);
    const ep = stages.at(-1)!.instructions.find((i) => i.keyword === 'ENTRYPOINT');
    const [node, entry] = JSON.parse(ep?.args ?? '[]') as string[];
    expect(node).toBe('/nodejs/bin/node'); // the distroless image's Node
    expect(entry).toMatch(/^\/app\/dist\/.+\/main\.js$/);
    return { root, entry: join(root, entry ?? '') };
  }

  /** Every file the entry point loads, statically and by import(), checked present; packages checked to be production dependencies. */
  function walkImports(root: string, entry: string): { files: number; packages: Set<string> } {
    const pkg = JSON.parse(readFileSync(join(root, 'app/package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const seen = new Set<string>();
    const packages = new Set<string>();
    const queue = [entry];
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      expect(existsSync(file), `${relative(root, file)} is not in the image`).toBe(true);
      const text = readFileSync(file, 'utf8');
      const specs = [
        ...text.matchAll(/(?:^|[;\s])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]/gm),
        ...text.matchAll(/(?:^|[;\s])import\s*['"]([^'"]+)['"]/gm),
        ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g),
      ].map((m) => m[1] ?? '');
      // Workers started from a sibling file: new URL(`./parse-worker${ext}`, import.meta.url).
      for (const m of text.matchAll(/new URL\(\s*[`'"]\.\/([\w.-]+?)(?:\$\{[^}]*\})?[`'"]/g)) {
        expect(
          existsSync(join(dirname(file), `${m[1] ?? ''}.js`)),
          `${m[1] ?? ''}.js beside ${relative(root, file)}`,
        ).toBe(true);
      }
      for (const s of specs) {
        if (s.startsWith('node:')) continue;
        if (s.startsWith('.')) {
          if (!s.endsWith('.json')) queue.push(resolve(dirname(file), s));
          else expect(existsSync(resolve(dirname(file), s)), `${s} from ${relative(root, file)}`).toBe(true);
          continue;
        }
        const name = s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : (s.split('/')[0] ?? s);
        packages.add(name);
        expect(
          pkg.dependencies[name],
          `${name} (from ${relative(root, file)}) is not a production dependency`,
        ).toBeDefined();
      }
    }
    return { files: seen.size, packages };
  }

  it('the enforcer image: its build compiles from the context, its runtime loads only what it carries, and it decides', async () => {
    const { root, entry } = await runtime('enforcer/Dockerfile');
    const walked = walkImports(root, entry);
    expect(walked.files).toBeGreaterThan(20);
    expect(walked.packages.has('@kubernetes/client-node')).toBe(true); // watch mode's, loaded by import()
    const value = 'apikey1234abcdefghij0123456789';
    const stage = { namespace: 'shop', api: 'orders', stage: 'prod' };
    const configFile = join(work, 'config.json');
    writeFileSync(
      configFile,
      standaloneConfig([
        stageDocuments(
          stage,
          [plan('shop', 'gold', { throttle: { rate: 10, burst: 10 } })],
          [{ id: 'k1', plan: 'gold', values: [{ value }] }],
        ),
      ]),
    );
    const enforcer = await startEnforcerProcess({
      entry,
      config: configFile,
      logFile: join(work, 'enforcer.log'),
    });
    try {
      const check = (headers: Record<string, string>): Promise<Response> =>
        fetch(`http://127.0.0.1:${enforcer.httpPort}/keystile/shop/orders/prod/v1/orders`, { headers });
      expect((await check({ 'x-api-key': value })).status).toBe(200);
      expect((await check({})).status).toBe(403);
    } finally {
      await enforcer.stop();
    }
  }, 180_000);

  it('the operator image: its build compiles from the context, and its runtime loads every module and reads its settings', async () => {
    const { root, entry } = await runtime('operator/Dockerfile');
    const walked = walkImports(root, entry);
    expect(walked.packages.has('@kubernetes/client-node')).toBe(true);
    // Every module loads before the first line runs (ES modules): a bad setting is reported by the
    // operator itself, so the whole graph resolved.
    const r = await execFileAsync(process.execPath, [entry], {
      env: { ...process.env, KEYSTILE_LOG_LEVEL: 'loud' },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (err: unknown) => {
        const e = err as { code?: number; stderr?: string };
        return { code: e.code ?? -1, stderr: e.stderr ?? '' };
      },
    );
    expect(r.stderr).toMatch(/^keystile-operator: KEYSTILE_LOG_LEVEL must be/);
    expect(r.code).toBe(2);
  }, 180_000);
});
