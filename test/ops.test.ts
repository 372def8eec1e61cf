/**
 * The safe ops' derivatives at orders 1, 2 and 3 on the cpu and wasm backends, against closed forms
 * or finite differences of float64 JavaScript. Every case differentiates through the op three times,
 * so a case fails if the op fell back to a tfjs gradient that reuses its output (wrong or throwing at
 * order 2). Tests are serial: the backend is global state.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import {
  categoricalEntropy,
  categoricalKl,
  categoricalLogProb,
  exp,
  gaussianEntropy,
  gaussianKl,
  gaussianLogProb,
  logSigmoid,
  logSoftmax,
  logSumExp,
  magicBox,
  matMul,
  sigmoid,
  softmax,
  softplus,
  stopGradient,
  tanh,
} from '../src/ops/index.ts';
import {
  assertDerivatives,
  backends,
  directions,
  dot,
  fdDerivatives,
  separableDerivatives,
  tfDerivatives,
  uniform,
  useBackend,
  type Backend,
  type Vec,
} from './helpers/derivatives.ts';

// ---------------------------------------------------------------------------------------------------
// float64 references

const sigmoidJs = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const softplusJs = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const lseJs = (xs: Vec): number => {
  const m = Math.max(...xs);
  return m + Math.log(xs.reduce((acc, x) => acc + Math.exp(x - m), 0));
};
const logSoftmaxJs = (xs: Vec): number[] => {
  const l = lseJs(xs);
  return xs.map((x) => x - l);
};
/** Consecutive slices of length k. */
const rows = (xs: Vec, k: number): number[][] =>
  Array.from({ length: xs.length / k }, (_, r) => xs.slice(r * k, (r + 1) * k));
/** Columns of a row-major [r, k] array. */
const columns = (xs: Vec, k: number): number[][] =>
  Array.from({ length: k }, (_, j) => rows(xs, k).map((row) => row[j]!));
const log2Pi = Math.log(2 * Math.PI);

/** [lse(x), E_p u, E_p ũṽ, E_p ũṽw̃] with p = softmax(x), ũ = u − E_p u: lse's contracted derivatives. */
const lseCumulants = (x: Vec, dirs: readonly Vec[]): number[] => {
  const l = lseJs(x);
  const p = x.map((xi) => Math.exp(xi - l));
  const centred = dirs.map((u) => {
    const mean = dot(p, u);
    return u.map((ui) => ui - mean);
  });
  const moment = (k: number): number =>
    p.reduce((acc, pi, i) => acc + pi * centred.slice(0, k).reduce((prod, u) => prod * u[i]!, 1), 0);
  return [l, dot(p, dirs[0]!), moment(2), moment(3)];
};

const sum = (xs: readonly number[][]): number[] =>
  xs.reduce((acc, v) => acc.map((a, i) => a + v[i]!), Array<number>(xs[0]!.length).fill(0));

// ---------------------------------------------------------------------------------------------------
// cases: a function of θ under test (summed by the harness) and its reference derivatives, orders 0–3

interface Case {
  readonly name: string;
  readonly shape: readonly number[];
  readonly theta: Vec;
  readonly f: (theta: tf.Tensor) => tf.Tensor;
  readonly expected: (dirs: readonly Vec[]) => number[];
  readonly rtol?: number;
  readonly floor?: number;
}

const weights = (n: number, seed: number): number[] => uniform(n, seed, 0.5, 1.5);
const weighted = (y: tf.Tensor, c: Vec): tf.Tensor => tf.mul(y, tf.tensor(c as number[], y.shape));

/** A case for an elementwise op with known derivatives φ^(k)(x): Σ cᵢ φ(θᵢ) on a [2, 2] input. */
const elementwiseCase = (
  name: string,
  op: (x: tf.Tensor) => tf.Tensor,
  theta: Vec,
  derivative: (k: number, x: number) => number,
): Case => {
  const c = weights(theta.length, 11);
  return {
    name,
    shape: [2, 2],
    theta,
    f: (x) => weighted(op(x), c),
    expected: (dirs) => separableDerivatives((k, x, i) => c[i]! * derivative(k, x), theta, dirs),
  };
};

/** A case checked against finite differences of `ref`, a float64 version of Σ c ⊙ f. */
const fdCase = (
  name: string,
  shape: readonly number[],
  theta: Vec,
  f: (theta: tf.Tensor) => tf.Tensor,
  ref: (theta: Vec) => number,
  options: { rtol?: number; floor?: number } = {},
): Case => ({ name, shape, theta, f, expected: (dirs) => fdDerivatives(ref, theta, dirs), ...options });

/** θ's slice [start, start + size) of a flat θ, reshaped: how one θ feeds several arguments. */
const part = (theta: tf.Tensor, start: number, shape: number[]): tf.Tensor =>
  tf.reshape(tf.slice(theta, [start], [shape.reduce((a, b) => a * b, 1)]), shape);

const thetaTanh = [-1.7, -0.4, 0.3, 1.3];
const thetaSigmoid = [-2.2, -0.5, 0.8, 3.0];
const thetaSoftplus = [-3.0, -0.8, 0.5, 2.5];

const lse2x4 = uniform(8, 21, -2, 2);
const c2 = weights(2, 22);
const c4 = weights(4, 23);
const c8 = weights(8, 24);
const c3 = weights(3, 25);
const c6 = weights(6, 26);
const categoricalLogits = uniform(12, 31, -2, 2);
const outcomes = [0, 3, 1];
const klLogits = uniform(24, 32, -2, 2);
const gaussianTheta = [...uniform(12, 41, -1, 1), ...uniform(3, 42, -0.6, 0.4)];
const gaussianKlTheta = [
  ...uniform(6, 43, -1, 1), // meanP [2, 3]
  ...uniform(6, 44, -0.5, 0.5), // logStdP [2, 3]
  ...uniform(6, 45, -1, 1), // meanQ [2, 3]
  ...uniform(3, 46, -0.5, 0.5), // logStdQ [3], broadcast over the batch
];

const matMulTheta = uniform(12, 57, -1, 1);
const cMatMul = weights(4, 58);

const cases: readonly Case[] = [
  elementwiseCase('exp', exp, [-1.2, 0.4, 1.5, 2.3], (_k, x) => Math.exp(x)),
  elementwiseCase('tanh', tanh, thetaTanh, (k, x) => {
    const t = Math.tanh(x);
    return [t, 1 - t * t, -2 * t * (1 - t * t), (1 - t * t) * (6 * t * t - 2)][k]!;
  }),
  elementwiseCase('sigmoid', sigmoid, thetaSigmoid, (k, x) => {
    const s = sigmoidJs(x);
    return [s, s * (1 - s), s * (1 - s) * (1 - 2 * s), s * (1 - s) * (1 - 6 * s + 6 * s * s)][k]!;
  }),
  elementwiseCase('softplus', softplus, thetaSoftplus, (k, x) => {
    const s = sigmoidJs(x);
    return [softplusJs(x), s, s * (1 - s), s * (1 - s) * (1 - 2 * s)][k]!;
  }),
  elementwiseCase('logSigmoid', logSigmoid, thetaSoftplus, (k, x) => {
    const s = sigmoidJs(x);
    return [-softplusJs(-x), 1 - s, -s * (1 - s), -s * (1 - s) * (1 - 2 * s)][k]!;
  }),
  // dᵏ/dθᵏ □(θ²) = 1, 2θ, 4θ² + 2, 8θ³ + 12θ.
  elementwiseCase('magicBox(θ²)', (x) => magicBox(tf.square(x)), [-1.1, -0.6, 0.7, 1.4], (k, x) =>
    [1, 2 * x, 4 * x * x + 2, 8 * x ** 3 + 12 * x][k]!,
  ),
  (() => {
    // □ of a non-separable g: its derivatives are those of exp(g(θ) − g(θ₀)) at θ₀.
    const theta0 = [0.6, -0.9, 1.2];
    const g = (t: Vec): number => 0.5 * t[0]! - t[1]! + t[0]! * t[1]! * t[2]!;
    return fdCase(
      'magicBox(non-separable)',
      [3],
      theta0,
      (t) => {
        const [a, b, c] = tf.unstack(t);
        return magicBox(tf.add(tf.sub(tf.mul(0.5, a!), b!), tf.mul(tf.mul(a!, b!), c!)));
      },
      (t) => Math.exp(g(t) - g(theta0)),
    );
  })(),
  (() => {
    // θ³·⊥θ differentiates as θ³·a with a = θ frozen: 3θ²a, 6θa, 6a; were ⊥ the identity, θ⁴'s would show.
    const theta = [-1.3, -0.7, 0.8, 1.6];
    return elementwiseCase(
      'stopGradient (θ³·⊥θ)',
      (x) => tf.mul(tf.mul(tf.square(x), x), stopGradient(x)),
      theta,
      (k, x) => [x ** 4, 3 * x ** 3, 6 * x * x, 6 * x][k]!,
    );
  })(),
  {
    name: 'logSumExp (axis −1)',
    shape: [2, 4],
    theta: lse2x4,
    f: (x) => weighted(logSumExp(x), c2),
    expected: (dirs) =>
      sum(
        rows(lse2x4, 4).map((row, r) =>
          lseCumulants(
            row,
            dirs.map((u) => rows(u, 4)[r]!),
          ).map((v) => c2[r]! * v),
        ),
      ),
  },
  {
    name: 'logSumExp (axis 0, keepDims)',
    shape: [2, 4],
    theta: lse2x4,
    f: (x) => {
      const y = logSumExp(x, 0, true);
      if (y.shape.join() !== '1,4') throw new Error(`keepDims shape ${y.shape}`);
      return weighted(y, c4);
    },
    expected: (dirs) =>
      sum(
        columns(lse2x4, 4).map((col, j) =>
          lseCumulants(
            col,
            dirs.map((u) => columns(u, 4)[j]!),
          ).map((v) => c4[j]! * v),
        ),
      ),
  },
  fdCase('logSoftmax (axis −1)', [2, 4], lse2x4, (x) => weighted(logSoftmax(x), c8), (t) =>
    dot(c8, rows(t, 4).flatMap(logSoftmaxJs)),
  ),
  fdCase('softmax (axis −1)', [2, 4], lse2x4, (x) => weighted(softmax(x), c8), (t) =>
    dot(
      c8,
      rows(t, 4).flatMap((row) => logSoftmaxJs(row).map(Math.exp)),
    ),
  ),
  fdCase('softmax (axis 0)', [4, 2], lse2x4, (x) => weighted(softmax(x, 0), c8), (t) => {
    // Softmax down each column of a [4, 2] array, written back row-major.
    const cols = columns(t, 2).map((col) => logSoftmaxJs(col).map(Math.exp));
    return dot(
      c8,
      Array.from({ length: 8 }, (_, i) => cols[i % 2]![Math.floor(i / 2)]!),
    );
  }),
  ...(['float32', 'int32'] as const).map((dtype) =>
    fdCase(
      `categoricalLogProb (${dtype} outcomes)`,
      [3, 4],
      categoricalLogits,
      (x) => weighted(categoricalLogProb(x, tf.tensor1d(outcomes, dtype)), c3),
      (t) =>
        dot(
          c3,
          rows(t, 4).map((row, r) => logSoftmaxJs(row)[outcomes[r]!]!),
        ),
    ),
  ),
  fdCase('categoricalEntropy', [3, 4], categoricalLogits, (x) => weighted(categoricalEntropy(x), c3), (t) =>
    dot(
      c3,
      rows(t, 4).map((row) => -logSoftmaxJs(row).reduce((acc, l) => acc + Math.exp(l) * l, 0)),
    ),
  ),
  fdCase(
    'categoricalKl (both arguments)',
    [24],
    klLogits,
    (x) => weighted(categoricalKl(part(x, 0, [3, 4]), part(x, 12, [3, 4])), c3),
    (t) => {
      const p = rows(t.slice(0, 12), 4).map(logSoftmaxJs);
      const q = rows(t.slice(12), 4).map(logSoftmaxJs);
      return dot(
        c3,
        p.map((lp, r) => lp.reduce((acc, l, i) => acc + Math.exp(l) * (l - q[r]![i]!), 0)),
      );
    },
  ),
  fdCase(
    'gaussianLogProb (x, mean [2, 3]; logStd [3] broadcast)',
    [15],
    gaussianTheta,
    (t) => weighted(gaussianLogProb(part(t, 0, [2, 3]), part(t, 6, [2, 3]), part(t, 12, [3])), c2),
    (t) => {
      const logStd = t.slice(12, 15);
      const perRow = [0, 1].map((r) =>
        logStd.reduce((acc, s, j) => {
          const z = (t[3 * r + j]! - t[6 + 3 * r + j]!) / Math.exp(s);
          return acc - 0.5 * z * z - s - 0.5 * log2Pi;
        }, 0),
      );
      return dot(c2, perRow);
    },
  ),
  // The entropy is linear in logStd, so it is cubed to give orders 2 and 3 something to check.
  fdCase('gaussianEntropy (cubed)', [2, 3], uniform(6, 47, -0.5, 0.5), (t) => {
    const h = gaussianEntropy(t);
    return weighted(tf.mul(tf.square(h), h), c2);
  }, (t) =>
    dot(
      c2,
      rows(t, 3).map((row) => row.reduce((acc, s) => acc + s + 0.5 * (1 + log2Pi), 0) ** 3),
    ),
  ),
  fdCase(
    'gaussianKl (all four arguments; logStdQ broadcast)',
    [21],
    gaussianKlTheta,
    (t) =>
      weighted(gaussianKl(part(t, 0, [2, 3]), part(t, 6, [2, 3]), part(t, 12, [2, 3]), part(t, 18, [3])), c2),
    (t) => {
      const perRow = [0, 1].map((r) =>
        [0, 1, 2].reduce((acc, j) => {
          const mP = t[3 * r + j]!;
          const sP = t[6 + 3 * r + j]!;
          const mQ = t[12 + 3 * r + j]!;
          const sQ = t[18 + j]!;
          const varP = Math.exp(2 * sP);
          const varQ = Math.exp(2 * sQ);
          return acc + sQ - sP + (varP + (mP - mQ) ** 2) / (2 * varQ) - 0.5;
        }, 0),
      );
      return dot(c2, perRow);
    },
  ),
  fdCase(
    'matMul (both operands; Σ c ⊙ (A·B)², degree 4 in θ)',
    [12],
    matMulTheta,
    (t) => weighted(tf.square(matMul(part(t, 0, [2, 3]), part(t, 6, [3, 2]))), cMatMul),
    (t) => {
      let acc = 0;
      for (let i = 0; i < 2; i++) {
        for (let j = 0; j < 2; j++) {
          const ab = [0, 1, 2].reduce((s, k) => s + t[3 * i + k]! * t[6 + 2 * k + j]!, 0);
          acc += cMatMul[2 * i + j]! * ab ** 2;
        }
      }
      return acc;
    },
  ),
];

/** Built-in tfjs ops the safe ops (and these tests) differentiate through, checked the same way. */
const a21 = uniform(2, 51, -1, 1);
const b3 = uniform(3, 52, -1, 1);
const builtins: readonly Case[] = [
  fdCase(
    'add, sub, mul, neg (broadcasting)',
    [2, 3],
    uniform(6, 53, -1.5, 1.5),
    (t) => weighted(tf.mul(tf.mul(tf.add(t, tf.tensor1d(b3)), tf.sub(tf.neg(t), tf.tensor2d(a21, [2, 1]))), t), c6),
    (t) => dot(c6, t.map((x, i) => (x + b3[i % 3]!) * (-x - a21[Math.floor(i / 3)]!) * x)),
  ),
  fdCase('square, log, scalar add and mul', [2, 3], uniform(6, 54, -1.5, 1.5), (t) =>
    weighted(tf.mul(0.5, tf.log(tf.add(1, tf.square(t)))), c6),
  (t) => dot(c6, t.map((x) => 0.5 * Math.log(1 + x * x)))),
  fdCase(
    'sum (axis, keepDims), reshape',
    [6],
    uniform(6, 55, -1.5, 1.5),
    (t) => {
      const m = tf.reshape(t, [2, 3]);
      const s = tf.sum(m, -1, true);
      return weighted(tf.log(tf.add(tf.sum(tf.square(tf.mul(m, s)), 0), 1)), c3);
    },
    (t) => {
      const m = rows(t, 3);
      const s = m.map((row) => row.reduce((a, b) => a + b, 0));
      return dot(
        c3,
        [0, 1, 2].map((j) => Math.log(1 + m.reduce((acc, row, r) => acc + (row[j]! * s[r]!) ** 2, 0))),
      );
    },
  ),
  fdCase(
    'slice, unstack',
    [4],
    uniform(4, 56, -1.5, 1.5),
    (t) => {
      const [first] = tf.unstack(t);
      return tf.mul(tf.sum(tf.mul(tf.square(tf.slice(t, [1], [3])), tf.tensor1d(c3))), first!);
    },
    (t) => t[0]! * (c3[0]! * t[1]! ** 2 + c3[1]! * t[2]! ** 2 + c3[2]! * t[3]! ** 2),
  ),
];

const checkCase = (c: Case, backend: Backend, seed: number): void => {
  test.serial(`${c.name} [${backend}]: derivatives at orders 1–3`, async (t) => {
    await useBackend(backend);
    const n = c.theta.length;
    const dirs = directions(3, n, seed);
    const actual = tfDerivatives(c.f, c.theta, c.shape, dirs);
    const expected = c.expected(dirs);
    assertDerivatives(t, actual, expected, {
      label: c.name,
      ...(c.rtol === undefined ? {} : { rtol: c.rtol }),
      ...(c.floor === undefined ? {} : { floor: c.floor }),
    });
  });
};

for (const backend of backends) {
  cases.forEach((c, i) => checkCase(c, backend, 100 + i));
  builtins.forEach((c, i) => checkCase({ ...c, name: `built-in ops relied upon: ${c.name}` }, backend, 200 + i));

  test.serial(`stopGradient [${backend}]: value is x, first derivative exactly zero`, async (t) => {
    await useBackend(backend);
    const x = [-1.5, 0.25, 3];
    t.deepEqual(Array.from(stopGradient(tf.tensor1d(x)).dataSync()), x);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(stopGradient(v), tf.tensor1d([1, 2, 3]))))(tf.tensor1d(x));
    t.deepEqual(Array.from(g.dataSync()), [0, 0, 0]);
  });

  test.serial(`magicBox [${backend}]: evaluates to exactly 1`, async (t) => {
    await useBackend(backend);
    const x = [-30, -1.5, 0, 0.1234567, 7, 80];
    t.deepEqual(Array.from(magicBox(tf.tensor1d(x)).dataSync()), x.map(() => 1));
  });

  test.serial(`stable values at extreme inputs [${backend}]`, async (t) => {
    await useBackend(backend);
    const close = (actual: tf.Tensor, expected: readonly number[], label: string, rtol = 1e-5): void => {
      const a = Array.from(actual.dataSync());
      t.is(a.length, expected.length, label);
      a.forEach((v, i) =>
        t.true(
          Math.abs(v - expected[i]!) <= rtol * Math.max(Math.abs(expected[i]!), 1e-30),
          `${label}[${i}]: got ${v}, expected ${expected[i]}`,
        ),
      );
    };
    const big = [-80, -20, -1e-3, 0, 1e-3, 20, 100];
    close(softplus(tf.tensor1d(big)), big.map(softplusJs), 'softplus');
    close(logSigmoid(tf.tensor1d(big)), big.map((x) => -softplusJs(-x)), 'logSigmoid');
    close(sigmoid(tf.tensor1d([-80, -20, 0, 20, 80])), [-80, -20, 0, 20, 80].map(sigmoidJs), 'sigmoid');
    close(tanh(tf.tensor1d([-20, 0.5, 20])), [-20, 0.5, 20].map(Math.tanh), 'tanh');
    const wide = [1000, 1000, -1000, 999];
    close(logSumExp(tf.tensor1d(wide)), [lseJs(wide)], 'logSumExp of large logits');
    close(logSumExp(tf.tensor1d([-1000, -1000])), [-1000 + Math.log(2)], 'logSumExp of very negative logits');
    close(logSoftmax(tf.tensor1d(wide)), logSoftmaxJs(wide), 'logSoftmax');
    close(softmax(tf.tensor1d([1000, 0])), [1, 0], 'softmax');
    const extremeLogits = tf.tensor2d([[500, -500, 0]]);
    close(categoricalLogProb(extremeLogits, tf.tensor1d([1], 'int32')), [-1000], 'categorical log-prob');
    close(categoricalEntropy(tf.tensor2d([[0, 0, 0, 0]])), [Math.log(4)], 'uniform categorical entropy');
    close(categoricalKl(tf.tensor2d([[1, 2, 3]]), tf.tensor2d([[1, 2, 3]])), [0], 'KL(P‖P)');
    const at = tf.tensor2d([[1, 2]]);
    close(gaussianLogProb(at, at, tf.tensor1d([0.5, -0.5])), [-log2Pi], 'log N(μ; μ, σ)');
    close(gaussianEntropy(tf.tensor2d([[0, 0, 0]])), [1.5 * (1 + log2Pi)], 'standard Gaussian entropy');
    const zero = tf.tensor1d([0]);
    close(gaussianKl(zero, zero, zero, tf.tensor1d([30])), [30 - 0.5 + 0.5 * Math.exp(-60)], 'KL with a wide Q');
  });

  test.serial(`batched shapes and values [${backend}]`, async (t) => {
    await useBackend(backend);
    const close = (actual: tf.Tensor, shape: readonly number[], expected: readonly number[], label: string): void => {
      t.deepEqual(actual.shape, shape, `${label} shape`);
      const a = Array.from(actual.dataSync());
      const ok = (v: number, i: number): boolean =>
        Math.abs(v - expected[i]!) <= 1e-5 * Math.max(1, Math.abs(expected[i]!));
      t.true(
        a.length === expected.length && a.every(ok),
        `${label}: got ${a.join(', ')}, expected ${expected.join(', ')}`,
      );
    };
    const logits = uniform(24, 71, -2, 2); // [2, 3, 4]
    const outcomeIndices = [3, 0, 2, 1, 1, 0]; // [2, 3]
    const logitRows = rows(logits, 4);
    const logitsT = tf.tensor3d(logits, [2, 3, 4]);
    close(
      categoricalLogProb(logitsT, tf.tensor2d(outcomeIndices, [2, 3], 'int32')),
      [2, 3],
      logitRows.map((row, r) => logSoftmaxJs(row)[outcomeIndices[r]!]!),
      'categoricalLogProb [2, 3, 4]',
    );
    close(
      categoricalEntropy(logitsT),
      [2, 3],
      logitRows.map((row) => -logSoftmaxJs(row).reduce((acc, l) => acc + Math.exp(l) * l, 0)),
      'categoricalEntropy [2, 3, 4]',
    );
    const zeroLogits = tf.zeros([4]);
    close(
      categoricalKl(logitsT, zeroLogits),
      [2, 3],
      logitRows.map((row) => logSoftmaxJs(row).reduce((acc, l) => acc + Math.exp(l) * (l + Math.log(4)), 0)),
      'categoricalKl against a broadcast uniform Q',
    );
    // Axis 1 of [2, 3, 4]: the columns of each [3, 4] block.
    const blockColumns = [...columns(logits.slice(0, 12), 4), ...columns(logits.slice(12), 4)];
    close(logSumExp(logitsT, 1), [2, 4], blockColumns.map(lseJs), 'logSumExp axis 1');
    t.deepEqual(logSumExp(logitsT, 1, true).shape, [2, 1, 4]);
    close(tf.sum(softmax(logitsT, 1), 1), [2, 4], Array<number>(8).fill(1), 'softmax axis 1 sums to 1');
    const xs = uniform(12, 72, -1, 1); // [2, 3, 2]
    const mean = [0.3, -0.2];
    const logStd = [0.1, -0.4];
    close(
      gaussianLogProb(tf.tensor3d(xs, [2, 3, 2]), tf.tensor1d(mean), tf.tensor1d(logStd)),
      [2, 3],
      rows(xs, 2).map((x) =>
        x.reduce((acc, xi, j) => {
          const z = (xi - mean[j]!) / Math.exp(logStd[j]!);
          return acc - 0.5 * z * z - logStd[j]! - 0.5 * log2Pi;
        }, 0),
      ),
      'gaussianLogProb [2, 3, 2] with mean and logStd [2]',
    );
    close(gaussianEntropy(tf.tensor1d(logStd)), [], [logStd[0]! + logStd[1]! + 1 + log2Pi], 'gaussianEntropy [2]');
    close(
      gaussianKl(tf.tensor3d(xs, [2, 3, 2]), tf.tensor1d(logStd), tf.tensor1d(mean), tf.zeros([2])),
      [2, 3],
      rows(xs, 2).map((m) =>
        m.reduce((acc, mP, j) => acc - logStd[j]! + (Math.exp(2 * logStd[j]!) + (mP - mean[j]!) ** 2) / 2 - 0.5, 0),
      ),
      'gaussianKl [2, 3, 2] against broadcast Q',
    );
  });

  test.serial(`second-order gradients in tf.tidy do not leak tensors [${backend}]`, async (t) => {
    await useBackend(backend);
    const theta = uniform(12, 61, -1, 1);
    const u = directions(1, 12, 62)[0]!;
    // A little of everything: a Gaussian policy's log-probability under MagicBox, a categorical KL, tanh.
    const objective = (p: tf.Tensor): tf.Tensor => {
      const mean = tanh(part(p, 0, [2, 3]));
      const logProb = gaussianLogProb(tf.zeros([2, 3]), mean, part(p, 6, [3]));
      const kl = categoricalKl(part(p, 0, [3, 3]).slice([0, 0], [2, 3]), part(p, 3, [2, 3]));
      return tf.sum(tf.add(tf.mul(magicBox(logProb), kl), logSumExp(part(p, 6, [2, 3]))));
    };
    const hessianVector = (): void =>
      tf.tidy(() => {
        const p = tf.tensor1d(theta);
        const hv = tf.grad((q: tf.Tensor) => tf.sum(tf.mul(tf.grad(objective)(q), tf.tensor1d(u))))(p);
        t.true(hv.dataSync().every(Number.isFinite));
      });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      hessianVector();
      t.is(tf.memory().numTensors, before, `after evaluation ${i + 1}`);
    }
  });
}

test.serial('tanh [cpu] keeps its relative precision near 0 (the cpu backend’s tanh, not 2σ(2x) − 1, which loses it)', async (t) => {
  await useBackend('cpu');
  // In float32, 2σ(2x) − 1 near 0 is a difference of numbers near 1: absolute error ~1e-7, i.e. a relative
  // error of ~1e-3 at x = 1e-4. The cpu backend's tanh is accurate to float32's relative precision there.
  const x = [1e-4, -3e-5, 2e-3];
  const got = Array.from(tanh(tf.tensor1d(x)).dataSync());
  got.forEach((v, i) => t.true(Math.abs(v - Math.tanh(x[i]!)) <= 1e-6 * Math.abs(Math.tanh(x[i]!)), `tanh(${x[i]}) = ${v} vs ${Math.tanh(x[i]!)}`));
});
