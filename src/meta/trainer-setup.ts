/**
 * The trainer a config describes (distribution, policy, compiled meta-objective, sampler), and the
 * move of its sampling onto worker threads.
 */
import { availableParallelism } from 'node:os';
import { environmentDescriptor, loadTaskDistribution, type AnyTaskDistribution, type EnvironmentDescriptor } from '../envs/index.ts';
import { policyActionSpace } from '../envs/action-normalization.ts';
import type { TrainConfig } from './config.ts';
import { makeTrainer, type Trainer } from './iteration.ts';
import { outerWorkers, type OuterWorkers } from './outer-workers.ts';
import { currentBackendName, defaultWorkerCount, workerSampler } from './parallel-sampler.ts';
import { mlpPolicyFor, type Policy } from './policy.ts';
import { RunError } from './run-directory.ts';
import type { Sampler } from './sampler.ts';

/** How a trainer samples: the number of worker threads (1: this thread) and the backend they load. */
export interface SamplingOptions {
  /** Default: one per core (os.availableParallelism()). */
  readonly workers?: number;
  /** The tfjs backend workers load (default: this thread's). */
  readonly backend?: string;
}

/**
 * A task distribution and/or a policy of your own, in place of the built-in distribution `config.env`
 * names and the MLP the config describes (docs/extending.md). The distribution's `name` must equal
 * `config.env`. Worker threads rebuild only built-in parts, so these are sampled in this thread, and a
 * run that uses them cannot be resumed or evaluated from its checkpoint by name.
 */
export interface TrainerParts {
  readonly distribution?: AnyTaskDistribution;
  readonly policy?: Policy;
}

/** Refuses worker threads for parts they cannot rebuild; the number of workers to use. */
export const workersFor = (parts: TrainerParts, workers: number | undefined): number | undefined => {
  if (parts.distribution === undefined && parts.policy === undefined) return workers;
  if (workers !== undefined && workers !== 1) {
    throw new RunError(`a task distribution or policy of your own is sampled in this thread (worker threads rebuild only built-in ones): use workers 1, got ${workers}`);
  }
  return 1;
};

/**
 * The trainer (distribution, policy, compiled meta-objective, sampler) a config describes; loads MuJoCo
 * when the environment needs it and starts the sampler's worker threads. Close `trainer.sampler` when
 * done with it.
 */
export const trainerFor = async (config: TrainConfig, sampling: SamplingOptions & TrainerParts = {}): Promise<Trainer> => {
  const workers = workersFor(sampling, sampling.workers);
  if (sampling.distribution !== undefined && sampling.distribution.name !== config.env) {
    throw new RunError(`the task distribution is named '${sampling.distribution.name}' but config.env is '${config.env}'`);
  }
  const distribution = sampling.distribution ?? (await loadTaskDistribution(config.env));
  const policy = sampling.policy ?? configPolicy(config, distribution);
  // Built first, so that a config the algorithms refuse fails before any thread starts.
  return withWorkerSampler(makeTrainer(config, distribution, policy), { ...sampling, ...(workers !== undefined ? { workers } : {}) });
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
  // The Adam / ProMP outer step's per-task terms go to as many threads (TRPO's stay here); they close
  // with the sampler.
  const outer = trainer.algorithm.optimizer === 'trpo' ? undefined : await startOuterWorkers(config, sampling.backend ?? currentBackendName(), workers, sampler);
  if (outer === undefined) return { ...trainer, sampler };
  return {
    ...trainer,
    sampler: { ...sampler, close: async () => void (await Promise.all([sampler.close(), outer.close()])) },
    outerWorkers: outer,
  };
};

/** Outer-step workers, or the sampler closed and the failure passed on. */
const startOuterWorkers = async (config: TrainConfig, backend: string, workers: number, sampler: Sampler): Promise<OuterWorkers> => {
  try {
    return await outerWorkers({ config, backend }, workers);
  } catch (e) {
    await sampler.close();
    throw e;
  }
};

/**
 * The MLP policy a config describes for `distribution`: its widths and initial log-std, acting in the
 * normalised box [−10, 10] or in the environment's units (config `actionNormalization`, default the
 * environment's: src/envs/action-normalization.ts).
 */
export const configPolicy = (config: TrainConfig, distribution: Pick<EnvironmentDescriptor, 'observationDim' | 'action' | 'actionNormalization'>): Policy =>
  mlpPolicyFor(distribution.observationDim, policyActionSpace(distribution.action, config.actionNormalization ?? distribution.actionNormalization ?? 'raw'), {
    hidden: config.hidden,
    initLogStd: config.initLogStd,
  });

export const trainerShapes = (config: TrainConfig): Readonly<Record<string, readonly number[]>> => configPolicy(config, environmentDescriptor(config.env)).paramShapes;
