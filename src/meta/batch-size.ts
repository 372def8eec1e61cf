/**
 * What one iteration of a config samples, and a rough bound on the memory its meta-gradient takes:
 * shown before a run starts with the paper's default sizes, so that a user learns the size of the
 * job (and whether it fits the wasm heap) before it runs out of memory minutes in. The outer step keeps
 * one stack of tasks' second-order tapes at a time (task-sum.ts, task-stack.ts: one task on the tfjs
 * engine and for TRPO), so the bound is one stack's tapes plus every task's batch.
 */
import { environmentDescriptor } from '../envs/index.ts';
import { algorithms } from './algorithms.ts';
import type { TrainConfig } from './config.ts';
import { networkWidth, stackSize } from './task-stack.ts';

/** The wasm32 heap tfjs-backend-wasm can grow to (DESIGN.md §7). */
export const wasmHeapBytes = 4 * 1024 ** 3;

/**
 * Floats kept per sampled step and per unit of width (observation, hidden layers, action) by a
 * second-order meta-gradient's tape on the general path, calibrated on the 4.7 GB RSS measured when
 * the paper's 40 × 20 point-navigation batch kept every task's tape alive at once (160,000 steps × 132
 * units × 4 B × 56): an upper bound for the fused engine, whose tape is smaller.
 */
const tapeFloatsPerUnit = 56;
/** Floats kept per sampled step and per observation/action coordinate by a batch (arrays and tensors). */
const batchFloatsPerUnit = 4;

export interface BatchSize {
  /** Environment steps sampled per iteration (tasks × trajectories × horizon × adaptation levels). */
  readonly steps: number;
  /** Rough upper bound, in bytes, of one iteration's memory: one stack's tapes and every task's batch. */
  readonly memoryBytes: number;
  /** `40 tasks × 20 trajectories × horizon 100 × 2 levels = 160,000 environment steps` */
  readonly description: string;
}

export const batchSize = (config: TrainConfig): BatchSize => {
  const env = environmentDescriptor(config.env);
  const horizon = config.horizon ?? env.horizon;
  const levels = (config.adaptationSteps ?? env.adaptationSteps) + 1;
  const steps = config.tasksPerIteration * config.trajectoriesPerTask * horizon * levels;
  const actionWidth = env.action.kind === 'continuous' ? env.action.dim : env.action.n;
  const width = networkWidth(env.observationDim, config.hidden, actionWidth);
  const perTask = steps / config.tasksPerIteration;
  // Tasks stacked into one outer-step computation (iteration.ts outerStackSize; fewer with outer workers).
  const stacked =
    config.engine === 'fused' && algorithms[config.algo].optimizer !== 'trpo'
      ? Math.min(config.tasksPerIteration, stackSize(config.trajectoriesPerTask * horizon, width))
      : 1;
  const memoryBytes = stacked * perTask * width * 4 * tapeFloatsPerUnit + steps * (env.observationDim + actionWidth + 4) * 4 * batchFloatsPerUnit;
  return {
    steps,
    memoryBytes,
    description: `${config.tasksPerIteration} tasks × ${config.trajectoriesPerTask} trajectories × horizon ${horizon} × ${levels} levels = ${steps.toLocaleString('en-US')} environment steps`,
  };
};

/** `1.2 GB`, `340 MB`. */
export const formatBytes = (bytes: number): string =>
  bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GB` : `${Math.max(1, Math.round(bytes / 1024 ** 2))} MB`;
