/**
 * The trainer a config describes (distribution, policy, compiled meta-objective, sampler), and the
 * move of its sampling onto worker threads.
 */
import { availableParallelism } from 'node:os';
import { environmentDescriptor, loadTaskDistribution } from '../envs/index.ts';
import type { TrainConfig } from './config.ts';
import { makeTrainer, type Trainer } from './iteration.ts';
import { currentBackendName, defaultWorkerCount, workerSampler } from './parallel-sampler.ts';
import { mlpPolicyFor } from './policy.ts';
import { RunError } from './run-directory.ts';

/** How a trainer samples: the number of worker threads (1: this thread) and the backend they load. */
export interface SamplingOptions {
  /** Default: one per core (os.availableParallelism()). */
  readonly workers?: number;
  /** The tfjs backend workers load (default: this thread's). */
  readonly backend?: string;
}

/**
 * The trainer (distribution, policy, compiled meta-objective, sampler) a config describes; loads MuJoCo
 * when the environment needs it and starts the sampler's worker threads. Close `trainer.sampler` when
 * done with it.
 */
export const trainerFor = async (config: TrainConfig, sampling: SamplingOptions = {}): Promise<Trainer> => {
  const distribution = await loadTaskDistribution(config.env);
  const policy = mlpPolicyFor(distribution.observationDim, distribution.action, { hidden: config.hidden, initLogStd: config.initLogStd });
  // Built first, so that a config the algorithms refuse fails before any thread starts.
  return withWorkerSampler(makeTrainer(config, distribution, policy), sampling);
};

/**
 * The trainer with its sampling moved to `sampling.workers` worker threads (default one per core; 1
 * keeps it in this thread). The policy must be the MLP its config describes (as `trainerFor` makes).
 */
export const withWorkerSampler = async (trainer: Trainer, sampling: SamplingOptions = {}): Promise<Trainer> => {
  const workers = sampling.workers ?? defaultWorkerCount();
  if (!Number.isInteger(workers) || workers < 1) throw new RunError(`workers must be a whole number ≥ 1, got ${workers}`);
  // Each worker loads a backend and an environment: far above the cores, only memory grows.
  if (workers > 4 * availableParallelism()) throw new RunError(`workers: ${workers} is far above the ${availableParallelism()} core(s) of this machine (at most ${4 * availableParallelism()})`);
  if (workers === 1) return trainer;
  const { config, distribution, policy } = trainer;
  const initLogStd = config.initLogStd;
  const sampler = await workerSampler({
    environment: config.env,
    policy: { observationDim: policy.observationDim, action: policy.action, hidden: policy.hidden, ...(initLogStd !== undefined ? { initLogStd } : {}) },
    backend: sampling.backend ?? currentBackendName(),
    workers,
    describeTask: distribution.describeTask,
  });
  await trainer.sampler.close();
  return { ...trainer, sampler };
};

export const trainerShapes = (config: TrainConfig): Readonly<Record<string, readonly number[]>> => {
  const distribution = environmentDescriptor(config.env);
  return mlpPolicyFor(distribution.observationDim, distribution.action, { hidden: config.hidden, initLogStd: config.initLogStd }).paramShapes;
};
