/**
 * Meta-test evaluation of a checkpoint: fresh tasks, no outer step.
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { Params } from '../surrogates/batch.ts';
import { CheckpointError, readCheckpoint, tensorsFromJson } from './checkpoint.ts';
import type { TrainConfig } from './config.ts';
import { evaluateParams } from './iteration.ts';
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
}

/**
 * Meta-test evaluation: loads a checkpoint (a file or a run directory) and measures the average return
 * at each adaptation level on `tasks` fresh tasks (default: the run's tasks per iteration), drawn from
 * `seed` (default 0), with no outer step.
 */
export const evaluateCheckpoint = async (
  file: string,
  options: { readonly tasks?: number; readonly seed?: number } & SamplingOptions = {},
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
  try {
    const trainer = await trainerFor(checkpoint.config, options);
    try {
      const averageReturn = await evaluateParams(trainer, params, seed, tasks);
      return { averageReturn, checkpoint: where, config: checkpoint.config, iterations: checkpoint.nextIteration, tasks, seed };
    } finally {
      await trainer.sampler.close();
    }
  } finally {
    tf.dispose(Object.values(params));
  }
};
