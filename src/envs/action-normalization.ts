/**
 * The released ProMP code's action normalisation (meta_policy_search/envs/normalized_env.py,
 * `normalize()`, normalization_scale 10), which every one of its run scripts wraps its environment in:
 * the policy acts in the box [−10, 10]^dim, and each action is mapped linearly onto the environment's
 * bounds [lb, ub], then clipped:
 *
 *   a_env = clip(lb + (a + 10)·(ub − lb)/20, lb, ub)
 *
 * With the initial log-std 0 the exploration noise is then a tenth of the action range, where fed raw
 * it would be a std of 1 in the environment's own units (on point-corners, whose actions are clipped to
 * ±0.2, nearly every coordinate would sit at the clip). The trajectories keep the policy's own draw (in
 * the normalised units, before the clip), so log-probabilities are those of the unclipped sample, as
 * released. Here the mapping is a property of the policy's declared action space: a policy whose bounds
 * differ from the environment's is mapped onto them (sampler.ts), one whose bounds are the
 * environment's (or unbounded) acts in the environment's units.
 */
import type { ActionSpace } from './types.ts';

/** The released code's `normalization_scale`: the policy acts in [−scale, scale]. */
export const ACTION_NORMALIZATION_SCALE = 10;

/** `normalized`: the policy acts in [−10, 10] mapped onto the bounds (released); `raw`: in the environment's units. */
export type ActionNormalization = 'normalized' | 'raw';

export const actionNormalizations: readonly ActionNormalization[] = ['normalized', 'raw'];

/** The action space the policy acts in: [−10, 10]^dim when normalised (continuous spaces only). */
export const policyActionSpace = (environment: ActionSpace, normalization: ActionNormalization): ActionSpace => {
  if (normalization === 'raw' || environment.kind === 'discrete') return environment;
  if (!Number.isFinite(environment.low) || !Number.isFinite(environment.high)) {
    throw new Error(`action normalisation maps onto the environment's bounds, but they are [${environment.low}, ${environment.high}]`);
  }
  return { kind: 'continuous', dim: environment.dim, low: -ACTION_NORMALIZATION_SCALE, high: ACTION_NORMALIZATION_SCALE };
};

/**
 * The actions the environment receives for the policy's `actions` ([rows × dim]): mapped linearly from
 * the policy's bounds onto the environment's and clipped to them, or the same array when the two spaces
 * agree (or the policy's are unbounded: it acts in the environment's units).
 */
export const environmentActions = (policy: ActionSpace, environment: ActionSpace, actions: Float32Array): Float32Array => {
  if (policy.kind !== 'continuous' || environment.kind !== 'continuous') return actions;
  const { low: pl, high: ph } = policy;
  const { low: lb, high: ub } = environment;
  if ((pl === lb && ph === ub) || !Number.isFinite(pl) || !Number.isFinite(ph)) return actions;
  const out = new Float32Array(actions.length);
  const slope = (ub - lb) / (ph - pl);
  for (let k = 0; k < actions.length; k++) {
    const a = actions[k]!;
    // A non-finite action passes through unmapped, so the environment reports it (a diverged policy).
    out[k] = Number.isFinite(a) ? Math.min(ub, Math.max(lb, lb + (a - pl) * slope)) : a;
  }
  return out;
};
