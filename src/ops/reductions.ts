/**
 * Normalising reductions over an axis (log-sum-exp, log-softmax, softmax) for categorical policies.
 * tfjs's versions differentiate through their outputs and through tf.max, whose gradient has no
 * gradient of its own, so they fail at order 2; these are composed from the safe exp.
 */
import * as tf from '@tensorflow/tfjs';
import { exp } from './elementwise.ts';
import { detached } from './stop-gradient.ts';

/**
 * log Σᵢ exp(xᵢ) over `axis`. Computed as m + log Σ exp(x − m) with m = max x held constant (off
 * the tape): any constant shift leaves the value and all derivatives unchanged, and this one keeps
 * exp from overflowing. Derivatives in directions u, v, w are the cumulants of u under p = softmax(x):
 * E_p u, Cov_p(u, v), E_p[ũṽw̃] with ũ = u − E_p u.
 */
export const logSumExp = (x: tf.Tensor, axis = -1, keepDims = false): tf.Tensor => {
  const shift = detached((t) => tf.max(t, axis, true))(x);
  const logSum = tf.log(tf.sum(exp(tf.sub(x, shift)), axis, keepDims));
  return tf.add(logSum, keepDims ? shift : tf.reshape(shift, logSum.shape));
};

/** log softmax(x) = x − logSumExp(x) along `axis`. */
export const logSoftmax = (x: tf.Tensor, axis = -1): tf.Tensor => tf.sub(x, logSumExp(x, axis, true));

/** softmax(x)ᵢ = exp(xᵢ) / Σⱼ exp(xⱼ) along `axis`, as exp(logSoftmax) (never overflows: logSoftmax ≤ 0). */
export const softmax = (x: tf.Tensor, axis = -1): tf.Tensor => exp(logSoftmax(x, axis));
