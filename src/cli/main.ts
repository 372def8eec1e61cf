/**
 * The `magicbox` command. Each subcommand lives in its own module and returns an exit status; this
 * file only parses arguments (commander) and selects the tfjs backend for the commands that compute.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { BackendError, selectBackend } from '../backend.ts';
import { environmentNames } from '../envs/index.ts';
import { algorithmNames } from '../meta/algorithm-names.ts';
import { defaultConfig } from '../meta/config.ts';
import { runValidate, type Output } from './validate.ts';
import { runVerify } from './verify.ts';
import { runDiagram, type DiagramOptions } from './diagram.ts';
import { runTrain, type TrainCliOptions } from './train.ts';
import { runEval, type EvalCliOptions } from './eval.ts';
import { runPlot, type PlotCliOptions } from './plot.ts';
import { runReproduce, type ReproduceCliOptions } from './reproduce.ts';
import { runRollouts, type RolloutsCliOptions } from './rollouts.ts';
import { reportFailure } from './failure.ts';
import type { WorkerCliOptions } from './worker.ts';

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

program
  .command('train')
  .description('meta-train a policy; writes config.json, progress.csv/.jsonl and checkpoint.json to a run directory')
  .option('--algo <name>', `${algorithmNames.join(', ')} (default: ${defaultConfig.algo})`)
  .option('--env <name>', `${environmentNames.join(', ')} (default: ${defaultConfig.env})`)
  .option('--iterations <n>', `meta-training iterations (default: ${defaultConfig.iterations})`)
  .option('--seed <s>', `random seed, 0 to 2^53 − 1 (default: ${defaultConfig.seed})`)
  .option('--out <dir>', 'run directory (default: runs/<algo>-<env>-<seed>-<timestamp>); must not exist or be empty')
  .option('--config <file>', 'a JSON config file with any TrainConfig field (command-line values override it); other defaults: the paper\'s (docs/cli.md)')
  .option('--resume <runDir>', 'continue the run in RUN_DIR from its checkpoint (only --iterations and --checkpoint-every may change)')
  .option('--tasks <n>', `tasks per iteration (default: ${defaultConfig.tasksPerIteration})`)
  .option('--trajectories <n>', `trajectories per task and adaptation level (default: ${defaultConfig.trajectoriesPerTask})`)
  .option('--horizon <t>', 'steps per trajectory (default: the environment\'s)')
  .option('--adaptation-steps <k>', 'inner adaptation steps (default: the environment\'s)')
  .option('--checkpoint-every <n>', `write a checkpoint every N iterations, and after any iteration ending a minute or more after the last (default: ${defaultConfig.checkpointEvery})`)
  .option('--engine <name>', `how the policy's log-probability is differentiated: fused (its own op and kernels, orders 1–2) or tfjs (the general path, any order; TRPO always uses it) (default: ${defaultConfig.engine})`)
  .option('--action-normalization <mode>', "normalized (the policy acts in [−10, 10], mapped onto the action bounds: the released code's normalize()) or raw (the environment's units) (default: the environment's)")
  .option('--progress <mode>', 'auto (a bar on a terminal, lines otherwise), bar, lines or off (default: auto)')
  .option('--workers <n>', 'sampler worker threads, at most 4 per core (default: one per core; 1 samples in the main thread); results do not depend on it')
  .option('--redis <url>', 'sample on `magicbox worker` processes through this Redis server (redis:// or rediss://; password also from MAGICBOX_REDIS_PASSWORD); results do not depend on it')
  .option('--redis-timeout <s>', 'with --redis: seconds with no live worker or no server before training stops (default 60)')
  .action(async (opts: TrainCliOptions) => {
    process.exitCode = await runTrain(opts, console_);
  });

program
  .command('worker')
  .description('sample for trainers run with --redis: takes jobs from the Redis queue until interrupted')
  .option('--redis <url>', 'the Redis server (redis://[user[:password]@]host[:port][/db] or rediss://…; password also from MAGICBOX_REDIS_PASSWORD)')
  .option('--concurrency <n>', 'jobs sampled at once, one thread each (default 1)')
  .option('--prefetch <n>', 'jobs held beyond --concurrency, waiting for a thread, so none idles between jobs (default 1; 0: none)')
  .option('--queue <name>', 'the queue (default magicbox-sampling)')
  .option('--lock-seconds <s>', 'a job held by a worker that stops (killed) goes to another after about this (default 30)')
  .option('--verbose', 'a line per job', false)
  .action(async (opts: WorkerCliOptions) => {
    // Loaded on use: BullMQ and ioredis take a noticeable part of a second to import.
    const { runWorker } = await import('./worker.ts');
    process.exitCode = await runWorker(opts, console_);
  });

program
  .command('eval')
  .description('meta-test a checkpoint on fresh tasks: the average return at each adaptation level')
  .argument('<checkpoint>', 'a checkpoint file or a run directory')
  .option('--tasks <n>', 'fresh tasks to evaluate on (default: the run\'s tasks per iteration)')
  .option('--seed <s>', 'seed of the fresh tasks (default 0)')
  .option('--trajectories <n>', 'trajectories per task and adaptation level (default: the run\'s)')
  .option('--workers <n>', 'sampler worker threads (default: one per core; 1 samples in the main thread)')
  .option('--json', 'print the result as one JSON object', false)
  .action(async (checkpoint: string, opts: EvalCliOptions) => {
    process.exitCode = await runEval(checkpoint, opts, console_);
  });

program
  .command('plot')
  .description('learning curves of training runs (average return against timesteps) as SVG; mean ± std over seeds of runs sharing a config')
  .argument('<runDir...>', 'run directories written by magicbox train')
  .requiredOption('--out <file>', 'the SVG file to write')
  .option('--pre', 'also draw the pre-update curves (dashed)', false)
  .option('--title <text>', 'the plot title')
  .action(async (runDirs: string[], opts: PlotCliOptions) => {
    process.exitCode = await runPlot(runDirs, opts, console_);
  });

program
  .command('rollouts')
  .description("draw a trained policy's pre-update and post-update trajectories in the plane (2D point environments) as SVG")
  .argument('<checkpoint>', 'a checkpoint file or a run directory')
  .requiredOption('--out <file>', 'the SVG file to write')
  .option('--tasks <n>', 'distinct fresh tasks to draw, 1-16 (default 4)')
  .option('--trajectories <n>', 'trajectories per task and adaptation level (default 10)')
  .option('--seed <s>', 'seed of the tasks and trajectories (default 0)')
  .option('--title <text>', 'the panel title (default: algorithm, environment, iterations)')
  .action(async (checkpoint: string, opts: RolloutsCliOptions) => {
    process.exitCode = await runRollouts(checkpoint, opts, console_);
  });

program
  .command('reproduce')
  .description("run one of the ProMP paper's figures by its released protocol (resumable); writes raw numbers (JSON/CSV) and the figure (SVG)")
  .argument('<figure>', 'fig2, fig4, fig5 or fig6')
  .option('--scale <scale>', 'small (fits a 2-core machine in under an hour; says what it cut) or paper (the released settings) (default: small)')
  .option('--seeds <n>', "number of seeds (default: the figure's)")
  .option('--out <dir>', 'output directory, created if missing; a rerun with the same one resumes (default: reproductions/<figure>-<scale>)')
  .option('--progress <mode>', 'auto (a bar on a terminal, lines otherwise), bar, lines or off (default: auto)')
  .action(async (figure: string, opts: ReproduceCliOptions) => {
    process.exitCode = await runReproduce(figure, opts, console_);
  });

program
  .command('diagram')
  .description('draw a graph as SVG (stochastic nodes as circles, deterministic as squares), optionally with the credit paths of a cost in red')
  .argument('<graph>', 'a graph file (JSON), or a .ts/.js module exporting a graph as `graph` or default')
  .requiredOption('--out <file>', 'the SVG file to write')
  .option('--credit <cost>', 'colour the edges through which this cost assigns credit to sampling distributions')
  .addOption(new Option('--direction <dir>', 'layout direction').choices(['LR', 'TB']).default('LR'))
  .option('--title <text>', 'the diagram title (default: the graph name)')
  .action(async (graph: string, opts: DiagramOptions) => {
    process.exitCode = await runDiagram(graph, opts, console_);
  });

// The subcommand named on the command line, for the prefix of a failure's message.
const commandName = program.commands.find((c) => process.argv.slice(2).includes(c.name()))?.name();
// Errors that escape an action's own promise (a worker's, a stream's) end the command the same way;
// first in line, because tfjs-backend-wasm's own listeners rethrow, which prints its minified source.
const fail = (e: unknown) => {
  process.exitCode = reportFailure(e, commandName, console_);
  process.exit();
};
process.prependListener('uncaughtException', fail);
process.prependListener('unhandledRejection', fail);
try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode;
  } else {
    process.exitCode = reportFailure(e, e instanceof BackendError ? undefined : commandName, console_);
  }
}
