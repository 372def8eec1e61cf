/**
 * Collects trajectories: many environments stepped together, each group of them driven by its own
 * parameters (the pre-update policy, or a task's adapted one), into flat arrays laid out [n × T × …]
 * with a mask for episodes that end early, plus the behaviour log-probabilities the likelihood-ratio
 * objectives need.
 */
import * as tf from '@tensorflow/tfjs';
import type { TaskDistribution, Uniform, VectorEnv } from '../envs/types.ts';
import type { Batch, Params } from '../surrogates/batch.ts';
import type { Policy, PolicyRandom } from './policy.ts';

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
 * Samples `perGroup` trajectories for each group: group g runs task tasks[g] with parameters params[g].
 * One VectorEnv holds every environment; the policy is evaluated once per step per group.
 */
export const sampleGroups = <Task>(opts: {
  readonly distribution: TaskDistribution<Task>;
  readonly policy: Policy;
  readonly tasks: readonly Task[];
  readonly params: readonly Params[];
  readonly perGroup: number;
  readonly horizon: number;
  readonly random: PolicyRandom;
  readonly resetUniform: Uniform;
}): Trajectories[] => {
  const { distribution, policy, tasks, params, perGroup, horizon, random } = opts;
  if (tasks.length !== params.length) throw new SamplerError(`${tasks.length} tasks but ${params.length} parameter sets`);
  const groups = tasks.length;
  const d = distribution.observationDim;
  const actionDim = policy.action.kind === 'continuous' ? policy.action.dim : 1;
  const env: VectorEnv = distribution.make(tasks.flatMap((t) => Array.from({ length: perGroup }, () => t)));
  let observations = env.reset(opts.resetUniform);
  const out = tasks.map(() => ({
    observations: new Float32Array(perGroup * horizon * d),
    actions: new Float32Array(perGroup * horizon * actionDim),
    rewards: new Float32Array(perGroup * horizon),
    mask: new Float32Array(perGroup * horizon),
    logProbs: new Float32Array(perGroup * horizon),
  }));
  const alive = new Uint8Array(groups * perGroup).fill(1);
  const allActions = new Float32Array(groups * perGroup * actionDim);
  for (let t = 0; t < horizon; t++) {
    for (let g = 0; g < groups; g++) {
      const obs = observations.subarray(g * perGroup * d, (g + 1) * perGroup * d);
      const actions = policy.sample(params[g]!, obs, perGroup, random);
      const logp = tf.tidy(() =>
        policy
          .logProb(params[g]!, tf.tensor2d(obs, [perGroup, d]), actionDim === 1 && policy.action.kind === 'discrete' ? tf.tensor1d(actions) : tf.tensor2d(actions, [perGroup, actionDim]))
          .dataSync(),
      );
      allActions.set(actions, g * perGroup * actionDim);
      const o = out[g]!;
      for (let i = 0; i < perGroup; i++) {
        const row = i * horizon + t;
        o.observations.set(obs.subarray(i * d, (i + 1) * d), row * d);
        o.actions.set(actions.subarray(i * actionDim, (i + 1) * actionDim), row * actionDim);
        o.logProbs[row] = logp[i]!;
        o.mask[row] = alive[g * perGroup + i]!;
      }
    }
    const step = env.step(allActions);
    for (let g = 0; g < groups; g++) {
      for (let i = 0; i < perGroup; i++) {
        const k = g * perGroup + i;
        out[g]!.rewards[i * horizon + t] = alive[k] ? step.rewards[k]! : 0;
        if (step.dones[k]) alive[k] = 0;
      }
    }
    observations = step.observations;
  }
  return out.map((o) => ({ n: perGroup, horizon, observationDim: d, actionDim, ...o }));
};

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
export const toBatch = (tr: Trajectories, policy: Policy, advantages?: Float32Array): Batch => {
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
