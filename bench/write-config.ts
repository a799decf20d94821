/**
 * Writes a benchmark config in a process of its own and prints the first key values the load will use,
 * so the load generator never holds a config's tens of megabytes: a major collection of them in the
 * load generator during a measurement would be charged to the server as latency.
 *   node bench/write-config.ts KEYS FILE [VARIANT] [VALUES]
 */
import { writeFileSync } from 'node:fs';
import { benchConfig } from './measure.ts';

const [keys, file, variant = '', values = '1000'] = process.argv.slice(2);
if (keys === undefined || file === undefined) {
  console.error('usage: node bench/write-config.ts KEYS FILE [VARIANT] [VALUES]');
  process.exit(2);
}
const config = benchConfig(Number(keys), variant);
writeFileSync(file, config.text);
console.log(JSON.stringify(config.values.slice(0, Number(values))));
