/**
 * The outer-loop optimisers: Adam (ProMP, VPG variants) and TRPO's conjugate gradient with a
 * backtracking line search (MAML-TRPO), plus the Params ↔ flat-vector conversion TRPO works in.
 *
 * Ownership: nothing here mutates or disposes a tensor it was given. Every tensor returned is new and
 * belongs to the caller (dispose the old params/state yourself once the new ones exist).
 */
import * as tf from '@tensorflow/tfjs';
import type { Params } from '../surrogates/batch.ts';

export class OptimizerError extends Error {
  override readonly name = 'OptimizerError';
}

const tensorOf = (record: Params, name: string, what: string): tf.Tensor => {
  const t = record[name];
  if (t === undefined) throw new OptimizerError(`${what} has no entry '${name}' (have: ${Object.keys(record).join(', ')})`);
  return t;
};

// ---------------------------------------------------------------------------------------------------
// Adam

export interface AdamOptions {
  readonly learningRate?: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly epsilon?: number;
}

/** Adam's moments after `step` updates (step 0: zeros). */
export interface AdamState {
  readonly step: number;
  readonly m: Params;
  readonly v: Params;
}

export interface Adam {
  readonly options: Required<AdamOptions>;
  /** Zero moments shaped like `params`. */
  readonly init: (params: Params) => AdamState;
  /**
   * One descent step θ ← θ − lr·m̂/(√v̂ + ε) (Kingma & Ba, bias-corrected), for every
   * name in `params`; `grads` must have the same names. Returns new params and state; the inputs are
   * untouched (dispose the old ones when no longer needed). To maximise, pass negated gradients.
   */
  readonly step: (params: Params, grads: Params, state: AdamState) => { readonly params: Params; readonly state: AdamState };
  /** Frees a state's moment tensors. */
  readonly dispose: (state: AdamState) => void;
}

/** Adam with immutable state; defaults lr 1e-3, β1 0.9, β2 0.999, ε 1e-8. */
export const adam = (options: AdamOptions = {}): Adam => {
  const opts: Required<AdamOptions> = {
    learningRate: options.learningRate ?? 1e-3,
    beta1: options.beta1 ?? 0.9,
    beta2: options.beta2 ?? 0.999,
    epsilon: options.epsilon ?? 1e-8,
  };
  const { learningRate, beta1, beta2, epsilon } = opts;
  return {
    options: opts,
    init: (params) => {
      const zeros = (): Record<string, tf.Tensor> =>
        Object.fromEntries(Object.entries(params).map(([name, p]) => [name, tf.zerosLike(p)]));
      return { step: 0, m: zeros(), v: zeros() };
    },
    step: (params, grads, state) => {
      const t = state.step + 1;
      const correction1 = 1 - beta1 ** t;
      const correction2 = 1 - beta2 ** t;
      const result = tf.tidy(() => {
        const next: Record<string, tf.Tensor> = {};
        const m: Record<string, tf.Tensor> = {};
        const v: Record<string, tf.Tensor> = {};
        for (const [name, p] of Object.entries(params)) {
          const g = tensorOf(grads, name, 'grads');
          const mi = tf.add(tf.mul(beta1, tensorOf(state.m, name, 'Adam state')), tf.mul(1 - beta1, g));
          const vi = tf.add(tf.mul(beta2, tensorOf(state.v, name, 'Adam state')), tf.mul(1 - beta2, tf.square(g)));
          const update = tf.div(tf.div(mi, correction1), tf.add(tf.sqrt(tf.div(vi, correction2)), epsilon));
          next[name] = tf.sub(p, tf.mul(learningRate, update));
          m[name] = mi;
          v[name] = vi;
        }
        return { next, m, v };
      });
      return { params: result.next, state: { step: t, m: result.m, v: result.v } };
    },
    dispose: (state) => {
      for (const t of Object.values(state.m)) t.dispose();
      for (const t of Object.values(state.v)) t.dispose();
    },
  };
};

// ---------------------------------------------------------------------------------------------------
// Params ↔ flat vectors

/** Where each parameter lives in a flat vector: names in a fixed order, with shapes and offsets. */
export interface ParamLayout {
  readonly names: readonly string[];
  readonly shapes: readonly (readonly number[])[];
  readonly sizes: readonly number[];
  readonly offsets: readonly number[];
  /** Total length of the flat vector. */
  readonly size: number;
}

/** The layout of parameters with these shapes, in the record's key order (e.g. a policy's `paramShapes`). */
export const paramLayout = (shapes: Readonly<Record<string, readonly number[]>>): ParamLayout => {
  const names = Object.keys(shapes);
  if (names.length === 0) throw new OptimizerError('paramLayout: no parameters');
  const shapeList = names.map((n) => [...shapes[n]!]);
  const sizes = shapeList.map((s) => s.reduce((a, b) => a * b, 1));
  const offsets: number[] = [];
  let size = 0;
  for (const s of sizes) {
    offsets.push(size);
    size += s;
  }
  return { names, shapes: shapeList, sizes, offsets, size };
};

/** The layout of `params` as they are (their shapes, in key order). */
export const layoutOf = (params: Params): ParamLayout =>
  paramLayout(Object.fromEntries(Object.entries(params).map(([name, p]) => [name, p.shape])));

/** The parameters concatenated into one vector in layout order (differentiable). */
export const flattenParams = (params: Params, layout: ParamLayout): tf.Tensor1D =>
  tf.tidy(() => {
    const parts = layout.names.map((name, i) => {
      const p = tensorOf(params, name, 'params');
      if (p.size !== layout.sizes[i]) {
        throw new OptimizerError(`parameter '${name}' has shape [${p.shape.join(', ')}], layout says [${layout.shapes[i]!.join(', ')}]`);
      }
      return tf.reshape(p, [p.size]);
    });
    return (parts.length === 1 ? tf.clone(parts[0]!) : tf.concat(parts)) as tf.Tensor1D;
  });

/** A flat vector split back into named parameters (differentiable: slices of `flat`). */
export const unflattenParams = (flat: tf.Tensor, layout: ParamLayout): Params => {
  if (flat.rank !== 1 || flat.size !== layout.size) {
    throw new OptimizerError(`flat vector has shape [${flat.shape.join(', ')}], layout needs [${layout.size}]`);
  }
  return tf.tidy(() =>
    Object.fromEntries(
      layout.names.map((name, i) => [
        name,
        tf.reshape(tf.slice(flat, [layout.offsets[i]!], [layout.sizes[i]!]), layout.shapes[i] as number[]),
      ]),
    ),
  );
};

// ---------------------------------------------------------------------------------------------------
// conjugate gradient and line search (TRPO)

const dot64 = (a: Float64Array, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/**
 * Approximately solves H x = b for symmetric positive-definite H given only as Hessian-vector
 * products (rllab's cg: `iterations` steps, stopping once ‖r‖² < residualTolerance). The vectors live
 * in float64 JavaScript; only H·p runs on tensors. `hvp` gets a fresh tensor it must not keep, and
 * its result is disposed after being read. Returns a new tensor.
 */
export const conjugateGradient = (
  hvp: (v: tf.Tensor1D) => tf.Tensor1D,
  b: tf.Tensor1D,
  iterations = 10,
  residualTolerance = 1e-10,
): tf.Tensor1D => {
  const n = b.size;
  const r = Float64Array.from(b.dataSync());
  const p = Float64Array.from(r);
  const x = new Float64Array(n);
  let rr = dot64(r, r);
  for (let it = 0; it < iterations && rr >= residualTolerance; it++) {
    const pt = tf.tensor1d(Float32Array.from(p));
    const zt = hvp(pt);
    const z = zt.dataSync();
    if (z.length !== n) throw new OptimizerError(`conjugateGradient: hvp returned ${z.length} entries, expected ${n}`);
    const pz = dot64(p, z);
    zt.dispose();
    pt.dispose();
    if (!(pz > 0) || !Number.isFinite(pz)) break; // H not positive definite along p: keep what we have
    const alpha = rr / pz;
    for (let i = 0; i < n; i++) {
      x[i] = x[i]! + alpha * p[i]!;
      r[i] = r[i]! - alpha * z[i]!;
    }
    const next = dot64(r, r);
    const beta = next / rr;
    for (let i = 0; i < n; i++) p[i] = r[i]! + beta * p[i]!;
    rr = next;
  }
  return tf.tensor1d(Float32Array.from(x));
};

export interface LineSearchOptions {
  /** Shrink factor per step; default 0.8. */
  readonly backtrackRatio?: number;
  /** Step sizes tried: 1, ratio, ratio², …; default 15. */
  readonly maxSteps?: number;
  /** Largest accepted constraint value (TRPO: the max KL, e.g. 0.01). */
  readonly maxConstraint: number;
  /** f(x0), when the caller already has it (saves one evaluation). */
  readonly lossBefore?: number;
}

export type LineSearchReason = 'accepted' | 'loss-not-improved' | 'constraint-violated';

export interface LineSearchResult {
  /** The accepted point, or a copy of x0 when none was; always a new tensor owned by the caller. */
  readonly x: tf.Tensor1D;
  readonly accepted: boolean;
  /** Why the search ended: accepted, or what was wrong with the last point tried. */
  readonly reason: LineSearchReason;
  /** The fraction of fullStep taken (0 when rejected). */
  readonly stepFraction: number;
  /** Points tried. */
  readonly tries: number;
  readonly lossBefore: number;
  /** Loss at the returned point. */
  readonly loss: number;
  /** Constraint at the accepted point, or at the last point it was evaluated (undefined if never). */
  readonly constraint: number | undefined;
}

/**
 * TRPO's backtracking line search (rllab / ProMP): tries x = x0 + ratioᵏ·fullStep for k = 0, 1, …,
 * maxSteps − 1 and accepts the first point whose loss is below f(x0) and whose constraint is at most
 * maxConstraint (NaN fails both). `f` is the loss to minimise; the constraint is evaluated only where
 * the loss improved. Points passed to `f` and `constraint` are disposed afterwards unless accepted.
 */
export const backtrackingLineSearch = (
  f: (x: tf.Tensor1D) => number,
  constraint: (x: tf.Tensor1D) => number,
  x0: tf.Tensor1D,
  fullStep: tf.Tensor1D,
  options: LineSearchOptions,
): LineSearchResult => {
  const { backtrackRatio = 0.8, maxSteps = 15, maxConstraint } = options;
  const lossBefore = options.lossBefore ?? f(x0);
  let reason: LineSearchReason = 'loss-not-improved';
  let lastConstraint: number | undefined;
  for (let k = 0; k < maxSteps; k++) {
    const fraction = backtrackRatio ** k;
    const x = tf.tidy(() => tf.add(x0, tf.mul(fraction, fullStep)) as tf.Tensor1D);
    const loss = f(x);
    if (!(loss < lossBefore)) {
      reason = 'loss-not-improved';
      x.dispose();
      continue;
    }
    const c = constraint(x);
    lastConstraint = c;
    if (!(c <= maxConstraint)) {
      reason = 'constraint-violated';
      x.dispose();
      continue;
    }
    return { x, accepted: true, reason: 'accepted', stepFraction: fraction, tries: k + 1, lossBefore, loss, constraint: c };
  }
  return {
    x: tf.clone(x0),
    accepted: false,
    reason,
    stepFraction: 0,
    tries: maxSteps,
    lossBefore,
    loss: lossBefore,
    constraint: lastConstraint,
  };
};
