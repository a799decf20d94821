#!/usr/bin/env node
// The keystile command (Node 24): `node cli/keystile.ts <command>`, or `npm run keystile -- <command>`.
import { importCommand } from './src/import-command.ts';
import { injectCommand } from './src/inject-command.ts';
import { renderCommand } from './src/render-command.ts';
import { usageCommand } from './src/usage-command.ts';

const COMMANDS: Record<string, (argv: readonly string[]) => number | Promise<number>> = {
  render: renderCommand,
  import: importCommand,
  inject: (argv) => injectCommand(argv),
  usage: usageCommand,
};

const USAGE = `usage: keystile <command> [options]\ncommands: ${Object.keys(COMMANDS).join(', ')} (each answers --help)`;

const [command, ...rest] = process.argv.slice(2);
const run = command === undefined ? undefined : COMMANDS[command];
if (command === '--help' || command === '-h' || command === 'help') {
  // Asked for: the usage on standard output, exit 0, as every command answers --help.
  console.log(USAGE);
  process.exitCode = 0;
} else if (!run) {
  console.error(USAGE);
  process.exitCode = 2;
} else {
  try {
    process.exitCode = await run(rest);
  } catch (err) {
    console.error(`keystile ${command ?? ''}: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
