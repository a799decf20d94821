/**
 * How the enforcer's process runs, wherever it runs: its image (enforcer/Dockerfile, held to these by
 * test/dockerfiles.test.ts), the chart's gateway (charts/values.ts) and the benchmarks take these from
 * here; injected sidecars run the image's.
 */

/**
 * A small young generation: it lowers the resident memory of an enforcer holding many keys by some
 * 40 MB at no measurable cost per decision, and under load with the Redis store keeps the heap flat
 * (with V8's default, decisions in flight across a Redis round trip are promoted and the heap grows to
 * 100-165 MB between major collections; measured with 10,000 keys at 25,000 decisions/s).
 */
export const ENFORCER_NODE_OPTIONS = '--max-semi-space-size=4';

/**
 * glibc's malloc arenas: two are plenty for Node's one JavaScript thread; the default (up to 8 per core)
 * keeps more freed memory resident.
 */
export const ENFORCER_MALLOC_ARENA_MAX = '2';
