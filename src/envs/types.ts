/**
 * The task-distribution API every environment implements: sample tasks from a seeded generator, then
 * step many environments at once (one per trajectory being collected), with flat typed arrays so that
 * a batch of observations goes to the policy as one tensor.
 */

import type { ActionNormalization } from './action-normalization.ts';

/** A source of uniform numbers on [0, 1); pass a seeded one (src/random.ts) for reproducible runs. */
export type Uniform = () => number;

export type ActionSpace =
  | { readonly kind: 'continuous'; readonly dim: number; /** actions are clipped to [low, high] by the environment */ readonly low: number; readonly high: number }
  | { readonly kind: 'discrete'; readonly n: number };

/** What a batch step returns; arrays are row-major, one row per environment. */
export interface StepResult {
  /** [size × observationDim] the observation after the step */
  readonly observations: Float32Array;
  /** [size] */
  readonly rewards: Float32Array;
  /** [size] 1 where the episode ended at this step (an environment that is done stays done until reset) */
  readonly dones: Uint8Array;
}

/** `size` environments stepped together; environment i runs task tasks[i]. */
export interface VectorEnv {
  readonly size: number;
  /** Resets every environment; returns [size × observationDim]. */
  readonly reset: (uniform: Uniform) => Float32Array;
  /**
   * Steps every environment with `actions` ([size × dim] reals, or [size] indices for a discrete space).
   * Throws an error naming the environment, the row and the step if an action is NaN or infinite.
   */
  readonly step: (actions: Float32Array) => StepResult;
}

export interface TaskDistribution<Task = unknown> {
  /** The name used on the command line, e.g. 'point-corners'. */
  readonly name: string;
  readonly description: string;
  readonly observationDim: number;
  readonly action: ActionSpace;
  /** Episode length used unless a config says otherwise. */
  readonly horizon: number;
  /** The paper's number of inner adaptation steps for this distribution. */
  readonly adaptationSteps: number;
  /**
   * How a policy acts by default (action-normalization.ts): `normalized` where the released ProMP code
   * wrapped the environment in normalize(); absent means `raw`.
   */
  readonly actionNormalization?: ActionNormalization;
  readonly sampleTasks: (uniform: Uniform, count: number) => Task[];
  /** A task as JSON, for logs and checkpoints. */
  readonly describeTask: (task: Task) => unknown;
  /** One environment per entry of `tasks` (repeat a task to collect several trajectories of it). */
  readonly make: (tasks: readonly Task[]) => VectorEnv;
}

/** What is known about an environment without loading it: enough to complete a config and shape a policy. */
export interface EnvironmentDescriptor {
  readonly name: string;
  readonly description: string;
  readonly observationDim: number;
  readonly action: ActionSpace;
  readonly horizon: number;
  readonly adaptationSteps: number;
  /** The paper's policy hidden sizes where they differ from the usual (64, 64), e.g. (128, 128) for the humanoid. */
  readonly policyHidden?: readonly number[];
  /** The default action normalisation (absent: `raw`); see TaskDistribution. */
  readonly actionNormalization?: ActionNormalization;
}
