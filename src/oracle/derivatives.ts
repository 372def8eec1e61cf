/**
 * Derivatives of every order of a scalar function of a flat parameter vector, by nested reverse-mode
 * autodiff. Used by the exactness oracle, where the parameter vector is small (tens of entries), so
 * full Hessians and third-derivative slices are affordable.
 *
 * A function may be given as a sum of parts (an array of scalar functions, e.g. an expectation split
 * into chunks of outcomes): each part is differentiated in float32 by tfjs and the parts' derivatives
 * are added here in float64, so that the rounding error does not grow with the number of parts.
 */
import * as tf from '@tensorflow/tfjs';

/** A scalar function of one flat parameter vector. */
export type ScalarFn = (theta: tf.Tensor) => tf.Scalar;

/** A scalar function, or a sum of them whose derivatives are accumulated in float64. */
export type SummedFn = ScalarFn | readonly ScalarFn[];

const partsOf = (f: SummedFn): readonly ScalarFn[] => (typeof f === 'function' ? [f] : f);

/** Σ of the parts' vectors, in float64. */
const addVectors = (vs: readonly number[][]): number[] => {
  const out = new Array<number>(vs[0]?.length ?? 0).fill(0);
  for (const v of vs) for (let i = 0; i < v.length; i++) out[i]! += v[i]!;
  return out;
};

export type Matrix = number[][];

const dot = (a: tf.Tensor, b: tf.Tensor): tf.Scalar => tf.sum(tf.mul(a, b));

/** e_i in ℝ^d (built from an array: tf.oneHot needs d ≥ 2, and on wasm ignores a float dtype). */
const basis = (d: number, i: number): tf.Tensor1D => tf.tensor1d(Array.from({ length: d }, (_, k) => (k === i ? 1 : 0)));

const read = (x: tf.Tensor): number[] => Array.from(x.dataSync());

/** ∇f(θ) (for a sum of parts, the sum of their gradients in float64). */
export const gradient = (f: SummedFn, theta: readonly number[]): number[] =>
  addVectors(partsOf(f).map((part) => tf.tidy(() => read(tf.grad(part)(tf.tensor1d([...theta]))))));

/** The directional derivative θ ↦ ∇f(θ)·v, itself a scalar function (to be differentiated again). */
export const directional = (f: ScalarFn, v: readonly number[]): ScalarFn => {
  const g = tf.grad(f);
  return (theta) => dot(g(theta), tf.tensor1d([...v]));
};

/** ∇²f(θ), row i = ∇(∇f·e_i) (for a sum of parts, accumulated in float64). */
export const hessian = (f: SummedFn, theta: readonly number[]): Matrix => {
  const d = theta.length;
  return Array.from({ length: d }, (_, i) => {
    const e = Array.from({ length: d }, (_, k) => (k === i ? 1 : 0));
    return gradient(partsOf(f).map((part) => directional(part, e)), theta);
  });
};

/** The third derivative contracted with u in its first slot: M[j][k] = Σ_i ∂³f/∂θ_i∂θ_j∂θ_k · u_i. */
export const thirdDerivative = (f: SummedFn, theta: readonly number[], u: readonly number[]): Matrix =>
  hessian(partsOf(f).map((part) => directional(part, u)), theta);

/**
 * The Jacobian of a vector function g: θ → [n], n × d, column by column through the double-backward
 * trick (a Jacobian-vector product is the derivative, with respect to w, of the vector-Jacobian
 * product wᵀJ), so that it costs d passes rather than n.
 */
export const jacobian = (g: (theta: tf.Tensor) => tf.Tensor, theta: readonly number[]): Matrix => {
  const d = theta.length;
  const columns = Array.from({ length: d }, (_, j) =>
    tf.tidy(() => {
      const theta0 = tf.tensor1d([...theta]);
      const n = g(theta0).shape[0];
      const vjp = (w: tf.Tensor) => tf.grad((th: tf.Tensor) => dot(g(th), w))(theta0);
      const ej = basis(d, j);
      return read(tf.grad((w: tf.Tensor) => dot(vjp(w), ej))(tf.zeros([n]) as tf.Tensor1D));
    }),
  );
  const n = columns[0]?.length ?? 0;
  return Array.from({ length: n }, (_, r) => columns.map((c) => c[r]!));
};

/** Largest absolute entry. */
export const maxAbs = (xs: readonly number[] | Matrix): number =>
  Math.max(0, ...(xs as Array<number | number[]>).flat().map((x) => Math.abs(x)));

/** Entry-wise a − b. */
export const subtract = <T extends number[] | Matrix>(a: T, b: T): T =>
  (a as Array<number | number[]>).map((x, i) =>
    Array.isArray(x) ? x.map((y, j) => y - (b[i] as number[])[j]!) : x - (b[i] as number),
  ) as T;

/** max|a − b| / max|b|: the error of a against the reference b, relative to b's scale. */
export const relativeError = (a: readonly number[] | Matrix, b: readonly number[] | Matrix): number => {
  const scale = maxAbs(b);
  const err = maxAbs(subtract(a as number[], b as number[]));
  return scale === 0 ? err : err / scale;
};
