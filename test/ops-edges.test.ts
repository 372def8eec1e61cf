/**
 * Edges of the safe ops that the main ops suite does not reach: a categorical log-probability without
 * a category axis is refused with a reason, and `detached` of a function that returns its input gives
 * a tensor of its own (usable after the input is gone), still with a zero derivative.
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { categoricalLogProb, detached } from '../src/ops/index.ts';

test.before(async () => {
  await selectBackend();
});

test('categoricalLogProb refuses logits without a category axis, naming the problem', (t) => {
  tf.tidy(() => {
    t.throws(() => categoricalLogProb(tf.scalar(0.5), tf.scalar(0)), { instanceOf: RangeError, message: /at least one axis/ });
  });
});

test('detached(identity) is a copy: it outlives its input, and its derivative is zero', (t) => {
  const x = tf.tensor1d([0.5, -1.5, 2]);
  const y = detached((v) => v)(x);
  t.not(y, x);
  // ∂/∂θ Σ θ·⊥θ = ⊥θ: only the undetached factor is differentiated.
  const g = tf.tidy(() => Array.from(tf.grad((th: tf.Tensor) => tf.sum(tf.mul(th, detached((v) => v)(th))) as tf.Scalar)(x).dataSync()));
  t.deepEqual(g, [0.5, -1.5, 2]);
  x.dispose();
  t.deepEqual(Array.from(y.dataSync()), [0.5, -1.5, 2]);
  y.dispose();
});
