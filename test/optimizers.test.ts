/**
 * Adam, conjugate gradient, the backtracking line search and Params ↔ flat vectors. Serial: the
 * backend is global state.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import {
  adam,
  backtrackingLineSearch,
  conjugateGradient,
  flattenParams,
  layoutOf,
  paramLayout,
  unflattenParams,
} from '../src/meta/optimizers.ts';
import { seededNormal } from '../src/random.ts';
import type { Params } from '../src/surrogates/batch.ts';
import { useBackend } from './helpers/derivatives.ts';

const values = (t: tf.Tensor): number[] => Array.from(t.dataSync());
const disposeAll = (p: Params): void => Object.values(p).forEach((t) => t.dispose());

test.serial('Adam minimises a quadratic without leaking tensors; its first step is lr·sign(g)', async (t) => {
  await useBackend('cpu');
  const target = { a: tf.tensor1d([1, -2, 0.5]), b: tf.tensor2d([[3, 0], [-1, 2]]) };
  const scale = { a: tf.tensor1d([1, 10, 0.1]), b: tf.tensor2d([[2, 2], [0.5, 5]]) };
  // f(θ) = Σ scale ⊙ (θ − target)², gradient 2·scale ⊙ (θ − target)
  const gradsOf = (p: Params): Params =>
    tf.tidy(() => Object.fromEntries(Object.keys(target).map((k) => {
      const key = k as keyof typeof target;
      return [k, tf.mul(2, tf.mul(scale[key], tf.sub(p[k]!, target[key])))];
    })));
  const opt = adam({ learningRate: 0.05 });
  t.deepEqual(opt.options, { learningRate: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
  let params: Params = { a: tf.zeros([3]), b: tf.zeros([2, 2]) };
  let state = opt.init(params);

  // first step: m̂ = g, v̂ = g², so Δθ = −lr·g/(|g| + ε)
  const g0 = gradsOf(params);
  const first = opt.step(params, g0, state);
  const expectedA = values(g0.a!).map((g) => -0.05 * Math.sign(g));
  values(first.params.a!).forEach((x, i) => t.true(Math.abs(x - expectedA[i]!) < 1e-6));
  t.is(first.state.step, 1);
  disposeAll(g0);
  disposeAll(first.params);
  opt.dispose(first.state);

  const before = tf.memory().numTensors;
  for (let i = 0; i < 1500; i++) {
    const grads = gradsOf(params);
    const next = opt.step(params, grads, state);
    disposeAll(grads);
    disposeAll(params);
    opt.dispose(state);
    params = next.params;
    state = next.state;
  }
  t.is(tf.memory().numTensors, before, 'no tensor leaks across steps');
  t.is(state.step, 1500);
  for (const k of ['a', 'b'] as const) {
    const got = values(params[k]!);
    const want = values(target[k]);
    got.forEach((x, i) => t.true(Math.abs(x - want[i]!) < 1e-3, `${k}[${i}] = ${x}, want ${want[i]}`));
  }
  t.throws(() => opt.step(params, { a: params.a! }, state), { message: /grads has no entry 'b'/ });
  [params, target, scale].forEach(disposeAll);
  opt.dispose(state);
});

/** A random symmetric positive-definite matrix MᵀM/n + I/2 (row-major) and a right-hand side. */
const spdSystem = (n: number, seed: number): { a: number[]; b: number[] } => {
  const normal = seededNormal(seed);
  const m = Array.from({ length: n * n }, () => normal());
  const a = Array.from({ length: n * n }, (_, k) => {
    const [i, j] = [Math.floor(k / n), k % n];
    let s = 0;
    for (let r = 0; r < n; r++) s += m[r * n + i]! * m[r * n + j]!;
    return s / n + (i === j ? 0.5 : 0);
  });
  return { a, b: Array.from({ length: n }, () => normal()) };
};

/** Solves A x = b by Gaussian elimination with partial pivoting, float64. */
const solveJs = (a: readonly number[], b: readonly number[]): number[] => {
  const n = b.length;
  const m = Array.from({ length: n }, (_, i) => [...a.slice(i * n, (i + 1) * n), b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = m[r]![c]! / m[c]![c]!;
      for (let k = c; k <= n; k++) m[r]![k]! -= f * m[c]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= m[r]![k]! * x[k]!;
    x[r] = s / m[r]![r]!;
  }
  return x;
};

for (const backend of ['cpu', 'wasm'] as const) {
  test.serial(`conjugate gradient solves a random SPD system to 1e-5 (${backend})`, async (t) => {
    await useBackend(backend);
    const n = 24;
    const { a, b } = spdSystem(n, 11);
    const matrix = tf.tensor2d(a, [n, n]);
    let calls = 0;
    const hvp = (v: tf.Tensor1D): tf.Tensor1D => {
      calls++;
      return tf.tidy(() => tf.reshape(tf.matMul(matrix, tf.reshape(v, [n, 1])), [n]) as tf.Tensor1D);
    };
    const bt = tf.tensor1d(b);
    const before = tf.memory().numTensors;
    const x = conjugateGradient(hvp, bt, 60);
    t.is(tf.memory().numTensors, before + 1, 'only the result is left');
    t.true(calls <= 60);
    const want = solveJs(a, b);
    const got = values(x);
    const norm = Math.sqrt(want.reduce((s, v) => s + v * v, 0));
    const err = Math.sqrt(got.reduce((s, v, i) => s + (v - want[i]!) ** 2, 0)) / norm;
    t.true(err < 1e-5, `relative error ${err.toExponential(2)} after ${calls} products`);
    [matrix, bt, x].forEach((z) => z.dispose());
  });
}

test.serial('conjugate gradient: exact after as many iterations as distinct eigenvalues, then stops', async (t) => {
  await useBackend('cpu');
  let calls = 0;
  const d = tf.tensor1d([1, 2, 2, 5, 5, 5]);
  const y = conjugateGradient(
    (v) => {
      calls++;
      return tf.mul(d, v) as tf.Tensor1D;
    },
    tf.tensor1d([1, 1, 1, 1, 1, 1]),
    10,
  );
  t.true(calls <= 4, `${calls} products for three distinct eigenvalues`);
  values(y).forEach((yi, i) => t.true(Math.abs(yi - 1 / [1, 2, 2, 5, 5, 5][i]!) < 1e-6));
  y.dispose();
  d.dispose();
});

test.serial('line search: full step when fine, backtracks on the constraint, rejects with a reason', async (t) => {
  await useBackend('cpu');
  const c = tf.tensor1d([1, 2]);
  const x0 = tf.tensor1d([0, 0]);
  // loss ‖x − c‖², constraint ‖x − x0‖² (a stand-in for the KL to the old policy)
  const loss = (x: tf.Tensor1D): number => tf.tidy(() => tf.sum(tf.square(tf.sub(x, c))).dataSync()[0]!);
  const constraint = (x: tf.Tensor1D): number => tf.tidy(() => tf.sum(tf.square(tf.sub(x, x0))).dataSync()[0]!);
  const step = tf.tensor1d([1, 2]); // straight to the minimum; constraint there = 5

  const before = tf.memory().numTensors;
  const full = backtrackingLineSearch(loss, constraint, x0, step, { maxConstraint: 10 });
  t.true(full.accepted);
  t.is(full.reason, 'accepted');
  t.is(full.stepFraction, 1);
  t.is(full.tries, 1);
  t.deepEqual(values(full.x), [1, 2]);
  t.is(full.lossBefore, 5);
  t.is(full.loss, 0);
  full.x.dispose();
  t.is(tf.memory().numTensors, before, 'only the returned point is new');

  // max constraint 1: need 5·0.8^{2k} ≤ 1, i.e. k = 4 (0.8⁴ = 0.4096, 5·0.1678 = 0.839)
  const back = backtrackingLineSearch(loss, constraint, x0, step, { maxConstraint: 1, lossBefore: 5 });
  t.true(back.accepted);
  t.is(back.tries, 5);
  t.true(Math.abs(back.stepFraction - 0.8 ** 4) < 1e-12);
  values(back.x).forEach((x, i) => t.true(Math.abs(x - 0.8 ** 4 * [1, 2][i]!) < 1e-6));
  t.true(back.constraint !== undefined && back.constraint <= 1);
  back.x.dispose();

  // a step uphill never improves: x0 comes back (as a new tensor)
  const uphill = tf.tensor1d([-1, -1]);
  const up = backtrackingLineSearch(loss, constraint, x0, uphill, { maxConstraint: 10 });
  t.false(up.accepted);
  t.is(up.reason, 'loss-not-improved');
  t.is(up.tries, 15);
  t.is(up.stepFraction, 0);
  t.not(up.x, x0);
  t.deepEqual(values(up.x), [0, 0]);
  up.x.dispose();

  // the constraint can never hold within 3 tries: rejected for the constraint
  const tight = backtrackingLineSearch(loss, constraint, x0, step, { maxConstraint: 1e-3, maxSteps: 3, backtrackRatio: 0.5 });
  t.false(tight.accepted);
  t.is(tight.reason, 'constraint-violated');
  t.true(Math.abs(tight.constraint! - 5 * 0.25 ** 2) < 1e-6);
  tight.x.dispose();
  t.is(tf.memory().numTensors, before + 1, 'only `uphill` is left');
  [c, x0, step, uphill].forEach((z) => z.dispose());
});

test.serial('flatten / unflatten: round trip in layout order, differentiable', async (t) => {
  await useBackend('cpu');
  const params = { W0: tf.tensor2d([[1, 2, 3], [4, 5, 6]]), b0: tf.tensor1d([7, 8, 9]), logStd: tf.scalar(10) };
  const layout = paramLayout({ W0: [2, 3], b0: [3], logStd: [] });
  t.deepEqual(layout.names, ['W0', 'b0', 'logStd']);
  t.deepEqual(layout.offsets, [0, 6, 9]);
  t.is(layout.size, 10);
  t.deepEqual(layoutOf(params), layout);
  const flat = flattenParams(params, layout);
  t.deepEqual(values(flat), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const back = unflattenParams(flat, layout);
  for (const k of layout.names) {
    t.deepEqual(back[k]!.shape, params[k as keyof typeof params].shape);
    t.deepEqual(values(back[k]!), values(params[k as keyof typeof params]));
  }
  // d/dθ Σ (W0 ⊙ W0) + 3·logStd through unflatten: [2·W0, 0, 0, 0, 3]
  const g = tf.grad((x: tf.Tensor) => {
    const p = unflattenParams(x, layout);
    return tf.add(tf.sum(tf.square(p.W0!)), tf.mul(3, p.logStd!));
  })(flat);
  t.deepEqual(values(g), [2, 4, 6, 8, 10, 12, 0, 0, 0, 3]);
  t.throws(() => unflattenParams(tf.zeros([9]), layout), { message: /layout needs \[10\]/ });
  t.throws(() => flattenParams({ W0: params.W0, b0: params.b0 }, layout), { message: /no entry 'logStd'/ });
  [params, back].forEach(disposeAll);
  [flat, g].forEach((z) => z.dispose());
});
