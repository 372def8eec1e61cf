/** Derivatives of a sum of parts are accumulated in float64: the error does not grow with the parts. */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { gradient, hessian, thirdDerivative, type ScalarFn } from '../src/oracle/derivatives.ts';

test.before(async () => {
  await selectBackend('wasm');
});

test('the gradient of 2000 parts is their float64 sum, not a float32 one', (t) => {
  // Each part's gradient is float32(0.1) exactly; 2000 of them in float64 give 2000·float32(0.1).
  const c = Math.fround(0.1);
  const part: ScalarFn = (theta) => tf.sum(tf.mul(theta, c));
  const parts = Array.from({ length: 2000 }, () => part);
  const g = gradient(parts, [0.5]);
  t.is(g[0], 2000 * c);
  // A float32 running sum of the same numbers drifts far more than that.
  let f32 = 0;
  for (let i = 0; i < 2000; i++) f32 = Math.fround(f32 + c);
  t.true(Math.abs(f32 - 2000 * c) > 1e-5);
});

test('hessian and thirdDerivative of a sum of parts equal those of the whole', (t) => {
  // Products only: tfjs's own higher derivatives of pow and prod are wrong or missing.
  const a: ScalarFn = (theta) => tf.sum(tf.mul(tf.mul(theta, theta), theta));
  const b: ScalarFn = (theta) => tf.mul(tf.sum(tf.mul(tf.slice(theta, [0], [1]), tf.slice(theta, [1], [1]))), 2);
  const whole: ScalarFn = (theta) => tf.add(a(theta), b(theta));
  const theta = [0.5, -1.5];
  t.deepEqual(hessian([a, b], theta).map((r) => r.map((x) => Number(x.toFixed(5)))), hessian(whole, theta).map((r) => r.map((x) => Number(x.toFixed(5)))));
  // d³(Σθ³)[u] = diag(6u), twice. (A part whose third derivative is identically zero is refused by tf.grad.)
  const third = thirdDerivative([a, a], theta, [1, 0]);
  t.deepEqual(third.map((r) => r.map((x) => Math.round(x * 1e5) / 1e5)), [[12, 0], [0, 0]]);
});
