#!/usr/bin/env node
// `quickvat`: the command line over a host whose state lives in a directory
// (./.quickvat by default). Every failure is one line naming the input at
// fault, on stderr ({ "error": ... } with --json), with a non-zero exit; bad
// input leaves the state as it was. Exit codes: 0 ok, 1 error, 3 a check found
// problems (docs/cli.md). The commands live in *-commands.ts beside this file.
import { CommanderError } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT, jsonMode, program, ROOT } from './context.js';
import { printable } from './values.js';
import './contract-commands.js';
import './upgrade-commands.js';
import './state-commands.js';
import './replica-commands.js';

program
  .name('quickvat')
  .description('deterministic sandbox runtime for upgradable JavaScript contracts')
  .version(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string, '-V, --version', 'print the version')
  .option('--state <dir>', 'state directory (LMDB, plus names.json for --as)', './.quickvat')
  .option('--json', 'machine-readable output; errors as {"error": "..."} on stderr')
  .addHelpText('after', '\nExit codes: 0 ok, 1 error, 3 a check found problems (preflight).\nReference: docs/cli.md');

// Commander's messages start "error: "; ours are already one line naming the input.
function fail(message: string): void {
  const text = message.replace(/^error: /, '');
  // --json keeps the whole message; people get one line, with whatever a
  // contract put in it (newlines, escape sequences) made visible, not obeyed.
  process.stderr.write(jsonMode() ? `${JSON.stringify({ error: text })}\n` : `quickvat: ${printable(text)}\n`);
  process.exitCode = EXIT.error;
}

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return; // --help, --version
      if (jsonMode()) fail(err.message);
      else process.exitCode = EXIT.error; // commander already printed its one line
      return;
    }
    fail((err as Error)?.message ?? String(err));
  }
}

await main();
