/**
 * Collects trajectories: many environments stepped together, each group of them driven by its own
 * parameters (the pre-update policy, or a task's adapted one), into flat arrays laid out [n × T × …]
 * with a mask for episodes that end early, plus the behaviour log-probabilities the likelihood-ratio
 * objectives need.
 */
import * as tf from '@tensorflow/tfjs';
import type { TaskDistribution, VectorEnv } from '../envs/types.ts';
import type { Batch, Params } from '../surrogates/batch.ts';
import { mixSeeds, seededNormal, seededUniform } from '../random.ts';
import type { PolicyRandom, SamplingPolicy } from './policy.ts';
import { environmentActions } from '../envs/action-normalization.ts';

/** Trajectories of one group (one task), row-major. */
export interface Trajectories {
  readonly n: number;
  readonly horizon: number;
  readonly observationDim: number;
  readonly actionDim: number;
  /** [n × T × observationDim]: the observation each action was taken in. */
  readonly observations: Float32Array;
  /** [n × T × actionDim] (discrete: [n × T] indices). */
  readonly actions: Float32Array;
  /** [n × T] */
  readonly rewards: Float32Array;
  /** [n × T] 1 on real steps */
  readonly mask: Float32Array;
  /** [n × T] log π(a_t|s_t) under the sampling parameters */
  readonly logProbs: Float32Array;
}

export class SamplerError extends Error {
  override readonly name = 'SamplerError';
}

/**
 * The seed of one random stream: a mix of a level's seed, a group's index and what the stream is for.
 * The level's seed is salted first, so that these streams differ from the iteration's own
 * (seed, iteration, purpose) ones even where the numbers coincide (the − 1 cancels mixSeeds' own + 1).
 */
export const streamSeed = (seed: number, group: number, purpose: number): number => mixSeeds(((seed >>> 0) ^ 0x2545f491) - 1, group, purpose);

/** What one sampling call collects: `perGroup` trajectories of each task, each group with its own parameters. */
export interface SampleRequest<Task = unknown> {
  readonly tasks: readonly Task[];
  readonly params: readonly Params[];
  readonly perGroup: number;
  readonly horizon: number;
  /**
   * The level's seed. Group g draws its actions and its resets from streams seeded by (seed, g) alone,
   * so a group's trajectories do not depend on which other groups are sampled with it, or where: the
   * same whether one thread samples every group or the groups are split across workers.
   */
  readonly seed: number;
  /**
   * The groups' indices (default 0, 1, …): with the seed, what fixes their random streams. A part of a
   * request sampled elsewhere (one task on a Redis worker) names its groups' indices in the whole.
   */
  readonly groupIndices?: readonly number[];
}

/**
 * Samples `perGroup` trajectories of one task with one parameter set: one VectorEnv of `perGroup`
 * environments, the policy evaluated once per step for all of them. `group` is the group's index in
 * its request, which (with the seed) fixes its random streams.
 */
export const sampleGroup = <Task>(opts: {
  readonly distribution: TaskDistribution<Task>;
  readonly policy: SamplingPolicy;
  readonly task: Task;
  readonly params: Params;
  readonly perGroup: number;
  readonly horizon: number;
  readonly seed: number;
  readonly group: number;
}): Trajectories => {
  const { distribution, policy, task, params, perGroup: n, horizon, seed, group } = opts;
  if (!Number.isInteger(n) || n < 1) throw new SamplerError(`trajectories per task must be a positive integer, got ${n}`);
  if (!Number.isInteger(horizon) || horizon < 1) throw new SamplerError(`the horizon must be a positive integer, got ${horizon}`);
  const d = distribution.observationDim;
  const discrete = policy.action.kind === 'discrete';
  const actionDim = policy.action.kind === 'continuous' ? policy.action.dim : 1;
  const random: PolicyRandom = { normal: seededNormal(streamSeed(seed, group, 0)), uniform: seededUniform(streamSeed(seed, group, 1)) };
  const env: VectorEnv & { free?: () => void } = distribution.make(Array.from({ length: n }, () => task));
  const out = {
    observations: new Float32Array(n * horizon * d),
    actions: new Float32Array(n * horizon * actionDim),
    rewards: new Float32Array(n * horizon),
    mask: new Float32Array(n * horizon),
    logProbs: new Float32Array(n * horizon),
  };
  try {
    // The parameters are read once per trajectory batch, not at every step.
    const draw = policy.sampler?.(params) ?? ((obs: Float32Array, rows: number, r: PolicyRandom) => policy.sample(params, obs, rows, r));
    let observations = env.reset(seededUniform(streamSeed(seed, group, 2)));
    const alive = new Uint8Array(n).fill(1);
    for (let t = 0; t < horizon; t++) {
      const actions = draw(observations, n, random);
      // Element by element, not through a subarray per row and step: two short-lived objects for a few numbers.
      for (let i = 0; i < n; i++) {
        const row = i * horizon + t;
        for (let j = 0; j < d; j++) out.observations[row * d + j] = observations[i * d + j]!;
        for (let j = 0; j < actionDim; j++) out.actions[row * actionDim + j] = actions[i * actionDim + j]!;
        out.mask[row] = alive[i]!;
      }
      // The environment gets the actions mapped onto its bounds when the policy acts in a normalised box.
      const step = env.step(environmentActions(policy.action, distribution.action, actions));
      for (let i = 0; i < n; i++) {
        out.rewards[i * horizon + t] = alive[i] ? step.rewards[i]! : 0;
        if (step.dones[i]) alive[i] = 0;
      }
      observations = step.observations;
    }
  } finally {
    // MuJoCo environments hold WASM memory: release it now rather than at garbage collection.
    env.free?.();
  }
  // The behaviour log-probabilities in one evaluation over [n, T] (rather than one per step): half the
  // network evaluations of sampling, and the same batch shape the surrogates evaluate log π on.
  // Through the fused op where the policy has one: the kernels the fused engine's surrogates evaluate
  // log π with (so that their likelihood ratio is 1 at the sampling parameters to the last bit), and
  // faster than the general path. Copied inside the scope (tidy walks whatever it returns, a typed
  // array entry by entry).
  tf.tidy(() => {
    const observations = tf.tensor3d(out.observations, [n, horizon, d]);
    const actions = discrete ? tf.tensor2d(out.actions, [n, horizon]) : tf.tensor3d(out.actions, [n, horizon, actionDim]);
    out.logProbs.set((policy.fusedLogProb ?? policy.logProb)(params, observations, actions).dataSync());
  });
  return { n, horizon, observationDim: d, actionDim, ...out };
};

/** Samples every group of a request in this thread, one group after another. */
export const sampleGroups = <Task>(opts: SampleRequest<Task> & { readonly distribution: TaskDistribution<Task>; readonly policy: SamplingPolicy }): Trajectories[] => {
  const { tasks, params } = opts;
  if (tasks.length !== params.length) throw new SamplerError(`${tasks.length} tasks but ${params.length} parameter sets`);
  return tasks.map((task, i) => sampleGroup({ ...opts, task, params: params[i]!, group: opts.groupIndices?.[i] ?? i }));
};

/**
 * Where trajectories come from during training: in this thread, or from worker threads
 * (src/meta/parallel-sampler.ts). Both give the same trajectories for the same request.
 */
export interface Sampler {
  /** How many threads sample (1: this one). */
  readonly workers: number;
  /** How it samples, for a run's log (e.g. "sampling on Redis workers at redis://…"); default from `workers`. */
  readonly description?: string;
  readonly sample: (request: SampleRequest) => Promise<Trajectories[]>;
  /** Releases the workers; sampling afterwards is an error. */
  readonly close: () => Promise<void>;
}

/** The sampler that runs in this thread. */
export const inProcessSampler = <Task>(distribution: TaskDistribution<Task>, policy: SamplingPolicy): Sampler => ({
  workers: 1,
  sample: async (request) => sampleGroups({ ...(request as SampleRequest<Task>), distribution, policy }),
  close: async () => {},
});

/** Undiscounted return of each trajectory, averaged: what learning curves show. */
export const averageReturn = (tr: Trajectories): number => {
  let total = 0;
  for (let k = 0; k < tr.rewards.length; k++) total += tr.rewards[k]! * tr.mask[k]!;
  return total / tr.n;
};

/**
 * The batch the RL graph is evaluated on: s [n, T, d], a [n, T, dim] (or [n, T]), r, the mask, the
 * behaviour log-probabilities of a, and (when given) the advantages of a.
 */
export const toBatch = (tr: Trajectories, policy: SamplingPolicy, advantages?: Float32Array): Batch => {
  const { n, horizon: T } = tr;
  const a = policy.action.kind === 'continuous' ? tf.tensor3d(tr.actions, [n, T, tr.actionDim]) : tf.tensor2d(tr.actions, [n, T]);
  return {
    values: { s: tf.tensor3d(tr.observations, [n, T, tr.observationDim]), a, r: tf.tensor2d(tr.rewards, [n, T]) },
    mask: tf.tensor2d(tr.mask, [n, T]),
    behaviour: { a: tf.tensor2d(tr.logProbs, [n, T]) },
    ...(advantages !== undefined ? { advantages: { a: tf.tensor2d(advantages, [n, T]) } } : {}),
  };
};

/** Frees a batch's tensors. */
export const disposeBatch = (b: Batch): void => {
  const all = [b.values, b.behaviour, b.advantages, b.baselines].flatMap((r) => Object.values(r ?? {}));
  tf.dispose([...all, ...(b.mask ? [b.mask] : [])]);
};
