/**
 * Elementwise nonlinearities with derivatives right at every order. tfjs's exp, tanh and sigmoid
 * differentiate through their saved output, which breaks at order 2 (grad(grad(exp)) throws; the
 * second derivative of log(sigmoid) is silently wrong), and policies and MagicBox use all three.
 */
import * as tf from '@tensorflow/tfjs';
import { type UnaryOp, withDerivative } from './custom-gradient.ts';

/** eˣ; (eˣ)' = eˣ. */
export const exp: UnaryOp = withDerivative(
  (x) => tf.exp(x),
  (x) => exp(x),
);

/**
 * tanh as 2σ(2x) − 1 where the backend's sigmoid is vectorised and its tanh is not (tfjs-wasm runs
 * XNNPACK's sigmoid but a scalar libm loop for tanh: ~3× faster on [2000, 64]); tf.tanh elsewhere.
 * Off the tape only (as the forward of an op whose derivative is defined separately).
 */
export const fastTanh = (x: tf.Tensor): tf.Tensor =>
  tf.getBackend() === 'wasm' ? tf.tidy(() => tf.sub(tf.mul(2, tf.sigmoid(tf.mul(2, x))), 1)) : tf.tanh(x);

/** tanh x; tanh' = 1 − tanh². */
export const tanh: UnaryOp = withDerivative(
  (x) => fastTanh(x),
  (x) => tf.sub(1, tf.square(tanh(x))),
);

/** σ(x) = 1 / (1 + e⁻ˣ); σ' = σ(x)·σ(−x). */
export const sigmoid: UnaryOp = withDerivative(
  (x) => tf.sigmoid(x),
  // σ(x)σ(−x) rather than σ(1 − σ): keeps its relative precision in the tails, where 1 − σ rounds to 0.
  (x) => tf.mul(sigmoid(x), sigmoid(tf.neg(x))),
);

/** softplus(x) = log(1 + eˣ), finite and accurate for any x; softplus' = σ. */
export const softplus: UnaryOp = withDerivative(
  // The Softplus kernels (cpu and wasm) switch formulas by range, so neither overflows nor rounds
  // small values to 0. Not max(x, 0) + log1p(e^−|x|): wasm's log1p is log(1 + x), 0 below ~1e-8.
  (x) => tf.softplus(x),
  (x) => sigmoid(x),
);

/** log σ(x) = −softplus(−x), finite for any x (log(sigmoid(x)) is −∞ below about −88 in float32). */
export const logSigmoid: UnaryOp = (x) => tf.neg(softplus(tf.neg(x)));
