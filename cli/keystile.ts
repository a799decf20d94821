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

const [command, ...rest] = process.argv.slice(2);
const run = command === undefined ? undefined : COMMANDS[command];
if (!run) {
  console.error(`usage: keystile <command> [options]\ncommands: ${Object.keys(COMMANDS).join(', ')}`);
  process.exitCode = 2;
} else {
  try {
    process.exitCode = await run(rest);
  } catch (err) {
    console.error(`keystile ${command ?? ''}: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
