/**
 * magicbox's matMul (explicit transposes in its gradient) against tf.matMul, whose gradient is right
 * at every order (it uses only its inputs): value and derivatives of orders 1–3 of a nonlinear scalar
 * of the product, on both backends.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { matMul, tanh } from '../src/ops/index.ts';
import { backends, useBackend } from './helpers/derivatives.ts';
import { seededUniform } from '../src/random.ts';

const random = (u: () => number, shape: [number, number]) => tf.tensor2d(Float32Array.from({ length: shape[0] * shape[1] }, () => 2 * u() - 1), shape);

const maxRelative = (a: tf.Tensor, e: tf.Tensor): number =>
  tf.tidy(() => tf.max(tf.abs(tf.sub(a, e))).dataSync()[0]! / Math.max(tf.max(tf.abs(e)).dataSync()[0]!, 1e-12));

for (const backend of backends) {
  test.serial(`matMul on ${backend}: value and derivatives of orders 1–3 equal tf.matMul's`, async (t) => {
    await useBackend(backend);
    tf.tidy(() => {
      const u = seededUniform(7);
      const [a, b, w] = [random(u, [9, 5]), random(u, [5, 4]), random(u, [9, 4])];
      const [va, vb] = [random(u, [9, 5]), random(u, [5, 4])];
      type Mm = (x: tf.Tensor, y: tf.Tensor) => tf.Tensor;
      const f = (mm: Mm) => (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(w, tanh(mm(x, y)))) as tf.Scalar;
      /** The k-th directional derivative's gradient along (va, vb), by nesting tf.grads. */
      const derivative = (mm: Mm, order: number): tf.Tensor[] => {
        let g = (x: tf.Tensor, y: tf.Tensor): tf.Scalar => f(mm)(x, y);
        for (let k = 1; k < order; k++) {
          const inner = g;
          g = (x, y) => {
            const [gx, gy] = tf.grads((p: tf.Tensor, q: tf.Tensor) => inner(p, q))([x, y]);
            return tf.add(tf.sum(tf.mul(gx!, va)), tf.sum(tf.mul(gy!, vb))) as tf.Scalar;
          };
        }
        return tf.grads((x: tf.Tensor, y: tf.Tensor) => g(x, y))([a, b]);
      };
      const plain: Mm = (x, y) => tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D);
      t.true(maxRelative(matMul(a, b), plain(a, b)) < 1e-6, 'value');
      for (const order of [1, 2, 3]) {
        const ours = derivative(matMul, order);
        const theirs = derivative(plain, order);
        ours.forEach((g, k) => t.true(maxRelative(g, theirs[k]!) < 1e-4, `order ${order}, input ${k}`));
      }
    });
  });
}
