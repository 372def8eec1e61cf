/**
 * The two-parameter policy of the ProMP paper's Figure 6 as released (point_1d_hand_grads.py,
 * `FeaturePolicy` with feature = identity, std = 1): a ~ N(θ₀·s² + θ₁, 1), the draw clipped to
 * [−bound, bound] *before* it is stored, so that — as in the released code — the log-probability the
 * estimators differentiate is the Gaussian density at the clipped action.
 *
 * Built on magicbox's linear Gaussian policy fed the squared observation: θ₀ = W0[0][0], θ₁ = b0[0].
 * (The released log-density writes −(a − μ)²/(2·std); with std = 1 that is the Gaussian's.)
 */
import * as tf from '@tensorflow/tfjs';
import { linearGaussianPolicy, type Policy, type PolicyRandom } from '../meta/policy.ts';
import type { Params } from '../surrogates/batch.ts';

export const squaredFeaturePolicy = (bound: number): Policy => {
  const linear = linearGaussianPolicy({ observationDim: 1, actionDim: 1, logStd: 0, low: -bound, high: bound });
  // Observations are data, never differentiated: squaring them needs no safe gradient.
  const squared = (observations: tf.Tensor): tf.Tensor => tf.square(observations);
  const squaredRows = (observations: Float32Array, n: number): Float32Array => Float32Array.from(observations.subarray(0, n), (s) => s * s);
  const clipped = (draws: Float32Array): Float32Array => draws.map((a) => Math.min(bound, Math.max(-bound, a)));
  const sampler = (params: Params) => {
    const draw = linear.sampler(params);
    return (observations: Float32Array, n: number, random: PolicyRandom): Float32Array => clipped(draw(squaredRows(observations, n), n, random));
  };
  return {
    kind: 'gaussian',
    observationDim: 1,
    action: linear.action,
    hidden: [],
    paramShapes: linear.paramShapes,
    init: linear.init,
    distribution: (params, observations) => linear.distribution(params, squared(observations)),
    sample: (params, observations, n, random) => sampler(params)(observations, n, random),
    sampler,
    logProb: (params, observations, actions) => linear.logProb(params, squared(observations), actions),
    kl: (p, q, observations) => linear.kl(p, q, squared(observations)),
  };
};

/** θ = (θ₀, θ₁) as the policy's parameters. */
export const thetaParams = ([t0, t1]: readonly [number, number]): Params => ({ W0: tf.tensor2d([[t0]], [1, 1]), b0: tf.tensor1d([t1]) });

/** The policy's parameters as θ = (θ₀, θ₁). */
export const paramsTheta = (p: Params): [number, number] => [p.W0!.dataSync()[0]!, p.b0!.dataSync()[0]!];
