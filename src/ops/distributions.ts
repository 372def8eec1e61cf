/**
 * Log-probabilities, entropies and KL divergences of the two policy families (categorical over
 * logits, diagonal Gaussian with log standard deviation), built only from ops whose derivatives are
 * right at every order: the estimators differentiate log-probabilities two and three times.
 */
import * as tf from '@tensorflow/tfjs';
import { exp } from './elementwise.ts';
import { logSoftmax } from './reductions.ts';

const halfLog2Pi = 0.5 * Math.log(2 * Math.PI);

/**
 * log p(value) = log softmax(logits)[value], for logits [..., k] and outcome indices `value` [...]
 * (int32, or float32 holding whole numbers); returns [...]. Computed as Σ oneHot(value) ⊙ logSoftmax
 * so that only differentiable ops touch the logits.
 */
export const categoricalLogProb = (logits: tf.Tensor, value: tf.Tensor): tf.Tensor => {
  const k = logits.shape[logits.shape.length - 1];
  if (k === undefined) throw new RangeError('categoricalLogProb: logits must have at least one axis');
  const indices = value.dtype === 'int32' ? value : tf.cast(value, 'int32');
  // oneHot(…, 'float32') would be shorter, but wasm's kernel then writes int32 bit patterns (1 → 1.4e-45).
  const mask = tf.cast(tf.oneHot(indices, k), 'float32');
  return tf.sum(tf.mul(mask, logSoftmax(logits)), -1);
};

/** H(p) = −Σᵢ pᵢ log pᵢ with log p = logSoftmax(logits), over the last axis: [..., k] → [...]. */
export const categoricalEntropy = (logits: tf.Tensor): tf.Tensor => {
  const logP = logSoftmax(logits);
  return tf.neg(tf.sum(tf.mul(exp(logP), logP), -1));
};

/** KL(P‖Q) = Σᵢ pᵢ (log pᵢ − log qᵢ), P and Q given by logits [..., k]; returns [...]. */
export const categoricalKl = (logitsP: tf.Tensor, logitsQ: tf.Tensor): tf.Tensor => {
  const logP = logSoftmax(logitsP);
  return tf.sum(tf.mul(exp(logP), tf.sub(logP, logSoftmax(logitsQ))), -1);
};

/**
 * log N(x; μ, diag σ²) = Σⱼ [−½ ((xⱼ − μⱼ)/σⱼ)² − log σⱼ] − ½ d log 2π, σ = exp(logStd), summed over
 * the last axis of the broadcast shape: x, mean [..., d], logStd broadcastable to them; returns [...].
 */
export const gaussianLogProb = (x: tf.Tensor, mean: tf.Tensor, logStd: tf.Tensor): tf.Tensor => {
  const z = tf.mul(tf.sub(x, mean), exp(tf.neg(logStd)));
  // The constant joins each term before the sum so that d is the broadcast width, whatever broadcasts.
  const perDim = tf.sub(tf.neg(tf.add(tf.mul(0.5, tf.square(z)), logStd)), halfLog2Pi);
  return tf.sum(perDim, -1);
};

/** H = Σⱼ [log σⱼ + ½ (1 + log 2π)] over the last axis: logStd [..., d] → [...]. */
export const gaussianEntropy = (logStd: tf.Tensor): tf.Tensor => tf.sum(tf.add(logStd, 0.5 + halfLog2Pi), -1);

/**
 * KL(P‖Q) for diagonal Gaussians, summed over the last axis of the broadcast shape:
 * Σⱼ [log σQⱼ − log σPⱼ + (σPⱼ² + (μPⱼ − μQⱼ)²) / (2 σQⱼ²) − ½]. Written with exp(2(log σP − log σQ))
 * and (μP − μQ)·exp(−log σQ), which never divide and stay finite for large log-std gaps.
 */
export const gaussianKl = (meanP: tf.Tensor, logStdP: tf.Tensor, meanQ: tf.Tensor, logStdQ: tf.Tensor): tf.Tensor => {
  const logRatio = tf.sub(logStdP, logStdQ);
  const scaledGap = tf.mul(tf.sub(meanP, meanQ), exp(tf.neg(logStdQ)));
  const perDim = tf.add(
    tf.mul(0.5, tf.add(exp(tf.mul(2, logRatio)), tf.square(scaledGap))),
    tf.sub(tf.neg(logRatio), 0.5),
  );
  return tf.sum(perDim, -1);
};
