/**
 * Derivatives of every order, two ways, for checking ops: by nested tf.grad (float32, the thing under
 * test) and by finite differences of a plain-JavaScript float64 version of the same function (the
 * reference). Higher derivatives of a function of a vector are contracted with fixed directions:
 * D^k f(θ)[u₁, …, u_k], a number at every order.
 */
import * as tf from '@tensorflow/tfjs';
import { seededUniform } from '../../src/random.ts';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import type { ExecutionContext } from 'ava';
import { fastWasmSlices, shareWasmIdentity } from '../../src/backend-kernels.ts';

export type Vec = readonly number[];

/** The backends every op is checked on. */
export const backends = ['cpu', 'wasm'] as const;
export type Backend = (typeof backends)[number];

/** Switches tfjs to `name`; call it first in every (serial) test. */
export const useBackend = async (name: Backend): Promise<void> => {
  // Production mode silences the cpu backend's tfjs-node advertisement; it disables only debug checks.
  tf.enableProdMode();
  // The kernels magicbox runs with (src/backend.ts registers the same when it selects wasm).
  shareWasmIdentity();
  fastWasmSlices();
  if (!(await tf.setBackend(name))) throw new Error(`backend ${name} failed to initialise`);
  await tf.ready();
};

/** A small seeded generator, so directions and points are fixed from run to run. */
export const rng = seededUniform;

/** n numbers uniform in [lo, hi). */
export const uniform = (n: number, seed: number, lo = -1, hi = 1): number[] => {
  const next = rng(seed);
  return Array.from({ length: n }, () => lo + (hi - lo) * next());
};

/** `k` direction vectors of length n, each entry in ±[0.5, 1.5) (never near zero, so no term drops out). */
export const directions = (k: number, n: number, seed: number): number[][] => {
  const next = rng(seed);
  return Array.from({ length: k }, () =>
    Array.from({ length: n }, () => (next() < 0.5 ? -1 : 1) * (0.5 + next())),
  );
};

const scalarValue = (t: tf.Tensor): number => {
  const v = t.dataSync()[0];
  if (v === undefined) throw new Error('expected a non-empty tensor');
  return v;
};

/**
 * [f(θ), Df[u₁], D²f[u₁,u₂], …] by nested tf.grad, where f's output is summed to a scalar. Order k
 * differentiates g_{k−1}(θ) = ∇g_{k−2}(θ)·u_{k−1}, so the tape holds derivatives of derivatives,
 * exactly as a meta-gradient does.
 */
export const tfDerivatives = (
  f: (theta: tf.Tensor) => tf.Tensor,
  theta: Vec,
  shape: readonly number[],
  dirs: readonly Vec[],
): number[] =>
  tf.tidy(() => {
    const x = tf.tensor(theta as number[], shape as number[]);
    let g: (t: tf.Tensor) => tf.Tensor = (t) => tf.sum(f(t));
    const out = [scalarValue(g(x))];
    for (const d of dirs) {
      const previous = g;
      const u = tf.tensor(d as number[], shape as number[]);
      g = (t) => tf.sum(tf.mul(tf.grad(previous)(t), u));
      out.push(scalarValue(g(x)));
    }
    return out;
  });

/** Fourth-order central stencil for a first derivative: offsets and weights (divide by h). */
const stencil: ReadonlyArray<readonly [number, number]> = [
  [-2, 1 / 12],
  [-1, -8 / 12],
  [1, 8 / 12],
  [2, -1 / 12],
];

/**
 * [f(θ), Df[u₁], D²f[u₁,u₂], …] by finite differences in float64: the tensor product of one
 * fourth-order stencil per direction (4^k evaluations at order k). Truncation error O(h⁴), rounding
 * error O(ε/h^k); with h = 1e-2 both stay far below float32's resolution.
 */
export const fdDerivatives = (f: (theta: Vec) => number, theta: Vec, dirs: readonly Vec[], h = 1e-2): number[] => {
  const out = [f(theta)];
  for (let k = 1; k <= dirs.length; k++) {
    let total = 0;
    const visit = (j: number, point: number[], weight: number): void => {
      if (j === k) {
        total += weight * f(point);
        return;
      }
      const u = dirs[j]!;
      for (const [offset, w] of stencil) {
        visit(
          j + 1,
          point.map((p, i) => p + offset * h * u[i]!),
          weight * w,
        );
      }
    };
    visit(0, [...theta], 1);
    out.push(total / h ** k);
  }
  return out;
};

/**
 * Σᵢ φᵢ^(k)(θᵢ)·u₁ᵢ⋯u_kᵢ for k = 0…dirs.length: the contracted derivatives of Σᵢ φᵢ(θᵢ), a separable
 * function whose i-th term has k-th derivative `derivative(k, θᵢ, i)`.
 */
export const separableDerivatives = (
  derivative: (k: number, x: number, i: number) => number,
  theta: Vec,
  dirs: readonly Vec[],
): number[] =>
  Array.from({ length: dirs.length + 1 }, (_, k) =>
    theta.reduce((acc, x, i) => acc + derivative(k, x, i) * dirs.slice(0, k).reduce((p, u) => p * u[i]!, 1), 0),
  );

/**
 * Asserts actual ≈ expected at each order, relative to max(|expected|, floor). `floor` keeps a
 * near-zero reference from demanding more than float32 can give; each nonzero reference must also
 * exceed it, so a test cannot pass by comparing two negligible numbers.
 */
export const assertDerivatives = (
  t: ExecutionContext,
  actual: readonly number[],
  expected: readonly number[],
  { rtol = 2e-4, floor = 1e-2, label = '' }: { rtol?: number; floor?: number; label?: string } = {},
): void => {
  t.is(actual.length, expected.length);
  expected.forEach((e, k) => {
    const a = actual[k]!;
    const err = Math.abs(a - e) / Math.max(Math.abs(e), floor);
    t.true(
      Number.isFinite(a) && err <= rtol,
      `${label} order ${k}: got ${a}, expected ${e} (relative error ${err.toExponential(2)} > ${rtol})`,
    );
    t.true(Math.abs(e) >= floor, `${label} order ${k}: reference ${e} is below the floor ${floor}; pick another point`);
  });
};

/** Σᵢ wᵢ·yᵢ over float64 arrays. */
export const dot = (w: Vec, y: Vec): number => w.reduce((acc, wi, i) => acc + wi * y[i]!, 0);
