/**
 * The released code's action normalisation (meta_policy_search/envs/normalized_env.py L109-123,
 * normalization_scale 10): the policy acts in [−10, 10] per coordinate, mapped linearly onto the
 * environment's bounds [lb, ub] and clipped there — with initial log-std 0 the exploration noise is a
 * tenth of the action range.
 *
 * MERGE (lead): issue 11a makes this available for every environment in the library; once merged,
 * fig5 should use that and this module goes. It is here so that Fig. 5 runs by the released protocol
 * before the merge.
 */
import type { TaskDistribution, VectorEnv } from '../envs/types.ts';

export const normalizedActions = <Task>(distribution: TaskDistribution<Task>, scale = 10): TaskDistribution<Task> => {
  const action = distribution.action;
  if (action.kind !== 'continuous') throw new Error(`${distribution.name}: only continuous actions can be normalised`);
  const { low, high } = action;
  return Object.freeze({
    ...distribution,
    action: Object.freeze({ kind: 'continuous', dim: action.dim, low: -scale, high: scale }),
    make: (tasks: readonly Task[]): VectorEnv => {
      const env = distribution.make(tasks);
      return {
        ...env,
        size: env.size,
        reset: env.reset,
        step: (actions: Float32Array) => {
          // A non-finite action stays non-finite, so the environment's own check names it.
          const scaled = actions.map((a) => Math.min(high, Math.max(low, low + ((a + scale) * (high - low)) / (2 * scale))));
          return env.step(scaled);
        },
      };
    },
  });
};
