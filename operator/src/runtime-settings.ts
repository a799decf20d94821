/**
 * How the operator's process runs, wherever it runs: its image and chart (charts/values.ts), the local
 * system and the benchmarks (test/ground/keystile.ts) take these from here.
 */

/**
 * The heap the operator runs with, as its image does: its live set is small (about 110 MB of heap at
 * 10,000 keys, docs/operator.md) but it allocates fast, and an uncapped V8 heap grows to several times
 * the live set before collecting.
 */
export const OPERATOR_NODE_OPTIONS = '--max-old-space-size=160 --max-semi-space-size=4';

/**
 * glibc's malloc arenas for the operator, as its image runs it. By default glibc gives each thread that
 * allocates at once an arena of its own (up to 8 per core), and their free pages stay resident; two are
 * plenty for a process whose JavaScript runs on one thread. Measured at 10,000 keys: peak resident memory
 * 262 MB without, 250 MB with (npm run bench -- operator).
 */
export const OPERATOR_MALLOC_ARENA_MAX = '2';
