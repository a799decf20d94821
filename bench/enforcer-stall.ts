/**
 * The benchmark's load probe, in a process of its own: loads a standalone config (file A) through the
 * enforcer's real loader (its parse process started ahead, as the enforcer does), reports the time and
 * the resident memory, then reloads (a cold parse process this time) a config whose every
 * shard differs (file B) while timing the main thread's longest stall (the longest gap between two
 * turns of a 1 ms timer, read with microsecond resolution). Prints one JSON line.
 *   node bench/enforcer-stall.ts A.json B.json
 */
import { CatalogLoader } from '../enforcer/src/catalog/loader.ts';
import { ThresholdParser } from '../enforcer/src/catalog/parser.ts';

const [fileA, fileB] = process.argv.slice(2);
if (fileA === undefined || fileB === undefined) {
  console.error('usage: node bench/enforcer-stall.ts A.json B.json');
  process.exit(2);
}
const refused: string[] = [];
const parser = new ThresholdParser(1 << 20);
// As the enforcer does at start: the parse process loads its modules while the process starts its servers.
parser.prewarm();
await new Promise((resolve) => setTimeout(resolve, 1000));
const loader = new CatalogLoader(parser, {
  swapped: () => undefined,
  refused: (_origin, error) => refused.push(error.message),
});

let t = performance.now();
await loader.load({ kind: 'file', path: fileA });
const loadMs = performance.now() - t;
const keys = loader.current()?.keyCount ?? 0;
const rssWithWorkerMb = process.memoryUsage().rss / 2 ** 20;
await loader.close(); // the parse process ends after its job; what stays is the catalog
global.gc?.();
const rssMb = process.memoryUsage().rss / 2 ** 20;
const heapMb = process.memoryUsage().heapUsed / 2 ** 20;

// The reload, with the event loop's longest gap measured by a timer due every millisecond (a busy
// probe would itself take the CPU the parse process, at the lowest priority, needs).
let last = process.hrtime.bigint();
let maxGapNs = 0n;
const probe = setInterval(() => {
  const now = process.hrtime.bigint();
  if (now - last > maxGapNs) maxGapNs = now - last;
  last = now;
}, 1);
t = performance.now();
await loader.load({ kind: 'file', path: fileB });
const reloadMs = performance.now() - t;
clearInterval(probe);
await loader.close();

console.log(
  JSON.stringify({
    keys,
    loadMs,
    rssMb,
    rssWithWorkerMb,
    heapMb,
    reloadMs,
    reloadKeys: loader.current()?.keyCount ?? 0,
    longestStallMs: Number(maxGapNs) / 1e6,
    refused,
  }),
);
