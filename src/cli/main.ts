/**
 * The `magicbox` command. Each subcommand lives in its own module and returns an exit status; this
 * file only parses arguments (commander) and selects the tfjs backend for the commands that compute.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { BackendError, selectBackend } from '../backend.ts';
import { runValidate, type Output } from './validate.ts';
import { runVerify } from './verify.ts';

const console_: Output = { log: (s) => console.log(s), error: (s) => console.error(s) };

const program = new Command()
  .name('magicbox')
  .description('Meta-RL objectives as stochastic computation graphs, with estimators exact at every derivative order')
  .version((JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version)
  .showHelpAfterError()
  .exitOverride();

program
  .command('verify')
  .description('check every estimator against exact enumeration, at derivative orders 1-3')
  .argument('[graph]', 'a graph file (JSON) whose stochastic nodes are categorical; default: the built-in graphs')
  .option('--json', 'print the report as one JSON object', false)
  .action(async (graph: string | undefined, opts: { json: boolean }) => {
    const backend = await selectBackend();
    process.exitCode = await runVerify(graph, opts, backend, console_);
  });

program
  .command('validate')
  .description('list the problems of a graph file; exit status 1 when there are any')
  .argument('<graph>', 'a graph file (JSON)')
  .action(async (graph: string) => {
    process.exitCode = await runValidate(graph, console_);
  });

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode;
  } else if (e instanceof BackendError) {
    console.error(`magicbox: ${e.message}`);
    process.exitCode = 1;
  } else {
    throw e;
  }
}
