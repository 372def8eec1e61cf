/**
 * Matrix products for everything magicbox differentiates. tfjs's matMul gradient multiplies by
 * transposed operands (dy·Bᵀ, Aᵀ·dy), which tfjs-wasm runs in a naive loop (~2 GFLOP/s): it sends a
 * product to XNNPACK (~16 GFLOP/s) only when neither operand is transposed. This matMul's gradient
 * transposes explicitly and multiplies with itself, so every order of derivative stays on the fast path.
 */
import * as tf from '@tensorflow/tfjs';

/** A·B for A [m, k], B [k, n]; derivatives of every order through explicit transposes. */
export const matMul = (a: tf.Tensor, b: tf.Tensor): tf.Tensor2D => product(a, b) as tf.Tensor2D;

const product: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [a, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [matMul(dy, tf.transpose(sb)), matMul(tf.transpose(sa), dy)];
    },
  };
}) as unknown as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
