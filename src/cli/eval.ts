/**
 * `magicbox eval CHECKPOINT [--tasks N] [--seed S] [--trajectories K] [--json]`: meta-test evaluation of a
 * checkpoint (a checkpoint file or a run directory) on fresh tasks: the average return at each
 * adaptation level, with its spread over tasks (mean ± std; each task's value in --json).
 */
import { describeBackend, selectBackend } from '../backend.ts';
import { CheckpointError, evaluateCheckpoint } from '../meta/train.ts';
import { parseWorkers } from './train.ts';
import type { Output } from './validate.ts';

export interface EvalCliOptions {
  readonly tasks?: string;
  readonly seed?: string;
  readonly trajectories?: string;
  readonly workers?: string;
  readonly json: boolean;
}

const wholeNumber = (flag: string, text: string | undefined, min: number): { value?: number; error?: string } => {
  if (text === undefined) return {};
  const value = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || value < min) return { error: `${flag}: expected a whole number ≥ ${min}, got ${JSON.stringify(text)}` };
  return { value };
};

const levelName = (j: number): string => (j === 0 ? 'pre-update' : `after ${j} step${j === 1 ? '' : 's'}`);

/** Evaluates one checkpoint; returns the exit status (0, or 1 for bad input or an unreadable checkpoint). */
export async function runEval(checkpoint: string, opts: EvalCliOptions, out: Output): Promise<number> {
  const tasks = wholeNumber('--tasks', opts.tasks, 1);
  const seed = wholeNumber('--seed', opts.seed, 0);
  const trajectories = wholeNumber('--trajectories', opts.trajectories, 1);
  const workers = parseWorkers(opts.workers);
  const errors = [tasks.error, seed.error, trajectories.error, 'error' in workers ? workers.error : undefined].filter((e): e is string => e !== undefined);
  if (errors.length > 0) {
    errors.forEach((e) => out.error(`magicbox eval: ${e}`));
    return 1;
  }
  if ('warning' in workers && workers.warning !== undefined) out.error(`magicbox eval: ${workers.warning}`);
  const backend = await selectBackend();
  let result;
  try {
    result = await evaluateCheckpoint(checkpoint, {
      ...(tasks.value !== undefined ? { tasks: tasks.value } : {}),
      ...(seed.value !== undefined ? { seed: seed.value } : {}),
      ...(trajectories.value !== undefined ? { trajectoriesPerTask: trajectories.value } : {}),
      ...('value' in workers && workers.value !== undefined ? { workers: workers.value } : {}),
      backend: backend.tfjsName,
    });
  } catch (e) {
    if (e instanceof CheckpointError) {
      out.error(`magicbox eval: ${e.message}`);
      return 1;
    }
    throw e;
  }
  const { config } = result;
  if (opts.json) {
    out.log(
      JSON.stringify({
        checkpoint: result.checkpoint,
        algo: config.algo,
        env: config.env,
        iterations: result.iterations,
        tasks: result.tasks,
        trajectoriesPerTask: result.trajectoriesPerTask,
        seed: result.seed,
        backend: backend.backend,
        averageReturn: result.averageReturn,
        std: result.spread.map((s) => s.std),
        perTask: result.perTask,
      }),
    );
    return 0;
  }
  out.log(describeBackend(backend));
  out.log(`${result.checkpoint}: ${config.algo} on ${config.env} after ${result.iterations} iteration(s)`);
  out.log(`average return on ${result.tasks} fresh task(s) × ${result.trajectoriesPerTask} trajectories (seed ${result.seed}), mean ± std over tasks:`);
  const width = Math.max(...result.averageReturn.map((_, j) => levelName(j).length));
  result.averageReturn.forEach((r, j) => out.log(`  ${levelName(j).padEnd(width)}  ${r.toFixed(3)} ± ${result.spread[j]!.std.toFixed(3)}`));
  return 0;
}
