/**
 * Meta-test evaluation of a checkpoint: fresh tasks, no outer step.
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { Params } from '../surrogates/batch.ts';
import { CheckpointError, readCheckpoint, tensorsFromJson, type CheckpointPayload } from './checkpoint.ts';
import type { TrainConfig } from './config.ts';
import { evaluateParams } from './iteration.ts';
import { averageReturn, type SampleRequest } from './sampler.ts';
import { runFiles } from './run-directory.ts';
import { trainerFor, trainerShapes, type SamplingOptions } from './trainer-setup.ts';

export interface CheckpointEvaluation {
  /** Average return per trajectory at each adaptation level (0: pre-update) on fresh tasks. */
  readonly averageReturn: number[];
  readonly checkpoint: string;
  readonly config: TrainConfig;
  /** Iterations the checkpointed parameters were trained for. */
  readonly iterations: number;
  readonly tasks: number;
  readonly seed: number;
  /** Trajectories per task and level. */
  readonly trajectoriesPerTask: number;
  /** Per adaptation level, each task's average return (the spread behind averageReturn). */
  readonly perTask: number[][];
  /** Per adaptation level, the mean and the population std (ddof 0) over tasks of the per-task returns. */
  readonly spread: Array<{ readonly mean: number; readonly std: number }>;
}

const meanStd = (xs: readonly number[]): { mean: number; std: number } => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, std: Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length) };
};

/** The largest |value| among the parameters: a diverged run's checkpoint shows it. */
const largestMagnitude = (checkpoint: CheckpointPayload): number =>
  Math.max(...Object.values(checkpoint.params).flatMap((t) => t.values.map(Math.abs)));

/**
 * Meta-test evaluation: loads a checkpoint (a file or a run directory) and measures the average return
 * at each adaptation level on `tasks` fresh tasks (default: the run's tasks per iteration), drawn from
 * `seed` (default 0), with no outer step; `trajectoriesPerTask` (default: the run's) per task and level.
 * Reports the spread over tasks too (each task's average return, mean ± std per level). A checkpoint
 * whose policy yields non-finite actions (a diverged run) is a CheckpointError saying so.
 */
export const evaluateCheckpoint = async (
  file: string,
  options: { readonly tasks?: number; readonly seed?: number; readonly trajectoriesPerTask?: number } & SamplingOptions = {},
): Promise<CheckpointEvaluation> => {
  const checkpoint = readCheckpoint(file);
  const where = fs.existsSync(file) && fs.statSync(file).isDirectory() ? runFiles(file).checkpoint : file;
  let params: Params;
  try {
    params = tensorsFromJson(checkpoint.params, trainerShapes(checkpoint.config), 'params');
  } catch (e) {
    throw new CheckpointError(`checkpoint ${where}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const tasks = options.tasks ?? checkpoint.config.tasksPerIteration;
  const seed = options.seed ?? 0;
  const trajectoriesPerTask = options.trajectoriesPerTask ?? checkpoint.config.trajectoriesPerTask;
  try {
    const trainer = await trainerFor({ ...checkpoint.config, trajectoriesPerTask }, options);
    // Each level samples every task once: recording those per-task returns gives the spread.
    const perTask: number[][] = [];
    const recording = {
      ...trainer,
      sampler: {
        ...trainer.sampler,
        sample: async (request: SampleRequest) => {
          const trajectories = await trainer.sampler.sample(request);
          perTask.push(trajectories.map(averageReturn));
          return trajectories;
        },
      },
    };
    try {
      const returns = await evaluateParams(recording, params, seed, tasks);
      return { averageReturn: returns, checkpoint: where, config: checkpoint.config, iterations: checkpoint.nextIteration, tasks, seed, trajectoriesPerTask, perTask, spread: perTask.map(meanStd) };
    } catch (e) {
      if (e instanceof Error && /NaN|Infinity|non-finite/.test(e.message)) {
        throw new CheckpointError(
          `checkpoint ${where}: evaluation failed: ${e.message.split('\n')[0]} (its parameters reach |${largestMagnitude(checkpoint).toExponential(2)}|: the run diverged; evaluate an earlier checkpoint)`,
        );
      }
      throw e;
    } finally {
      await trainer.sampler.close();
    }
  } finally {
    tf.dispose(Object.values(params));
  }
};
