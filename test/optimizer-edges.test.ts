/**
 * The TRPO optimisers at their edges (each case a mutation survivor of src/meta/optimizers.ts): the
 * conjugate gradient's iteration cap and residual tolerance as documented, its stop where H is not
 * positive definite along the search direction, and the line search's acceptance boundaries (a loss
 * that only ties f(x0) is no improvement; a constraint equal to its maximum is allowed). Expected
 * values are worked out by hand for diagonal H.
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { backtrackingLineSearch, conjugateGradient } from '../src/meta/optimizers.ts';

test.before(async () => {
  await tf.setBackend('cpu');
});

const diagonal =
  (d: readonly number[]) =>
  (v: tf.Tensor1D): tf.Tensor1D =>
    tf.tidy(() => tf.mul(tf.tensor1d([...d]), v) as tf.Tensor1D);
const solved = (hvp: (v: tf.Tensor1D) => tf.Tensor1D, b: readonly number[], iterations?: number, tolerance?: number): number[] => {
  const bt = tf.tensor1d([...b]);
  const x = conjugateGradient(hvp, bt, iterations, tolerance);
  const out = Array.from(x.dataSync());
  [bt, x].forEach((z) => z.dispose());
  return out;
};
const near = (got: readonly number[], want: readonly number[], tol = 1e-6) => got.length === want.length && got.every((g, i) => Math.abs(g - want[i]!) <= tol);

test('conjugate gradient takes exactly `iterations` steps: one step is the steepest-descent step bᵀb / bᵀHb · b', (t) => {
  // H = diag(1, 2, 3), b = 1: the first step is (3 / 6)·b; the exact solution (three steps) is 1 / d.
  const one = solved(diagonal([1, 2, 3]), [1, 1, 1], 1);
  t.true(near(one, [0.5, 0.5, 0.5]), `after one step: ${one}`);
  // the second step, by hand: r1 = b − ½Hb = [½, 0, −½], β = (½) / 3 = 1/6, p1 = r1 + β·b = [2/3, 1/6, −1/3],
  // α1 = r1ᵀr1 / p1ᵀHp1 = ½ / (4/9 + 1/18 + 1/3) = 3/5, x2 = x1 + α1·p1 = [0.9, 0.6, 0.3]
  const two = solved(diagonal([1, 2, 3]), [1, 1, 1], 2);
  t.true(near(two, [0.9, 0.6, 0.3]), `after two steps: ${two}`);
  const three = solved(diagonal([1, 2, 3]), [1, 1, 1], 3);
  t.true(near(three, [1, 1 / 2, 1 / 3], 1e-5), `after three steps: ${three}`);
});

test('conjugate gradient stops once ‖r‖² < tolerance, not before: a residual equal to the tolerance still takes a step', (t) => {
  // ‖b‖² = 0.25 = tolerance: not below it, so one step is taken (x = b / 2 for H = 2·I)
  t.true(near(solved(diagonal([2]), [0.5], 5, 0.25), [0.25]));
  // ‖b‖² = 0.25 < 0.3: no step at all
  t.true(near(solved(diagonal([2]), [0.5], 5, 0.3), [0]));
});

test('conjugate gradient keeps what it has where H is not positive definite along p (pᵀHp ≤ 0): no step at all', (t) => {
  t.true(near(solved(diagonal([-1, -2]), [1, 1], 5), [0, 0]), 'negative definite');
  t.true(near(solved(diagonal([0, 0]), [1, 1], 5), [0, 0]), 'pᵀHp = 0: no division by zero');
  // H = diag(1, −1), b = [2, 1]: pᵀHp = 3 > 0, so one step, α = 5/3, x = [10/3, 5/3]; then r = [−4/3, 8/3],
  // β = 16/9, p = [20/9, 40/9] and pᵀHp = (400 − 1600)/81 < 0: it stops there
  const x = solved(diagonal([1, -1]), [2, 1], 5);
  t.true(near(x, [10 / 3, 5 / 3], 1e-5), `${x}`);
});

test('line search: a point whose loss only ties f(x0) is not an improvement; a constraint equal to the maximum is accepted', (t) => {
  const x0 = tf.tensor1d([0, 0]);
  const step = tf.tensor1d([1, 1]);
  const flat = backtrackingLineSearch(() => 3, () => 0, x0, step, { maxConstraint: 1, maxSteps: 2, lossBefore: 3 });
  t.false(flat.accepted, 'a tie is not an improvement');
  t.is(flat.reason, 'loss-not-improved');
  const atMax = backtrackingLineSearch(() => 2, () => 0.01, x0, step, { maxConstraint: 0.01, maxSteps: 2, lossBefore: 3 });
  t.true(atMax.accepted, 'KL equal to the max KL is within the trust region');
  t.is(atMax.stepFraction, 1);
  [flat.x, atMax.x, x0, step].forEach((z) => z.dispose());
});
