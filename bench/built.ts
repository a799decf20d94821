/**
 * The benchmarks measure Keystile's processes as their images run them: the TypeScript compiled to
 * JavaScript (`npm run build`, as the Dockerfiles do), not the sources run directly. Node's type stripping
 * keeps a compiler of its own in memory (about 30 MB resident, measured beside the operator), which no
 * deployed process carries; resident-memory figures would otherwise measure it too.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ENFORCER_MALLOC_ARENA_MAX, ENFORCER_NODE_OPTIONS } from '../enforcer/src/runtime-settings.ts';

const root = join(import.meta.dirname, '..');

/** The compiled entry points, as the images run them. */
export interface BuiltEntryPoints {
  readonly enforcer: string;
  readonly operator: string;
}

/** Compiles the sources into dist/ (tsc -p tsconfig.build.json) and returns the entry points. */
export function buildAsImagesRun(): BuiltEntryPoints {
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')],
    { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  return {
    enforcer: join(root, 'dist/enforcer/src/main.js'),
    operator: join(root, 'dist/operator/src/main.js'),
  };
}

/**
 * The environment the enforcer's image gives it (enforcer/src/runtime-settings.ts): for every enforcer
 * process a benchmark starts.
 */
export const ENFORCER_IMAGE_ENV: Readonly<Record<string, string>> = {
  NODE_OPTIONS: ENFORCER_NODE_OPTIONS,
  MALLOC_ARENA_MAX: ENFORCER_MALLOC_ARENA_MAX,
};
