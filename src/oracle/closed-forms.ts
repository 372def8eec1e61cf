/**
 * Closed forms of what the score-weighted estimators compute, written from the enumeration's explicitly
 * unrolled graph (each node instance with its own ancestors, found by plain search in enumerate.ts) —
 * not from the lag-set influence query the compiler uses — so that the compiler's reasoning is checked
 * against an independent account of the same mathematics. Three checks expectations cannot make:
 *
 *   per sample   ∇L(τ) = Σ_i ∇ℓ_i(τ)·(Q_i(τ) − b_i(τ)) + Σ_c ∇c(τ) for every outcome τ, i over the
 *                sampled instances, Q_i the costs i influences, b_i its baseline where the estimator
 *                uses one at first order. A baseline's term has zero mean, so only this sees it.
 *   order 2      the expected Hessian of PGT, LVC and Loaded DiCE(λ), each its own (biased) closed form:
 *                E[Σ_i A_i·(s·∇ℓ_i∇ℓ_iᵀ + ∇²ℓ_i + Σ_{j anc. of i} w_λ(j, i)·(∇ℓ_i∇ℓ_jᵀ + ∇ℓ_j∇ℓ_iᵀ))] + E[Σ_c ∇²c],
 *                s = 0 for PGT and 1 otherwise, w_λ = λ^(t_i − t_j) between per-step instances, 1 when
 *                either is per-sample (Loaded DiCE), 0 (PGT, LVC).
 *   clipped LVC  at θ ≠ θ_o against the behaviour log-probabilities of θ_o, the value and gradient of
 *                E_θo[Σ_i min(ρ_i·A_i, clip(ρ_i, 1 ± ε)·A_i)], ρ_i = π_θ/π_θo, where each clipped term has
 *                no gradient.
 */
import * as tf from '@tensorflow/tfjs';
import type { Graph } from '../scg/builder.ts';
import { isTemporal, type NodeSpec } from '../scg/spec.ts';
import type { Batch, Params } from '../surrogates/batch.ts';
import { compile } from '../surrogates/compile.ts';
import type { Baselines, Estimator } from '../surrogates/estimators.ts';
import { evaluateGraph } from '../surrogates/evaluate.ts';
import { gradient, hessian, jacobian, maxAbs, relativeError, type Matrix } from './derivatives.ts';
import type { Instance } from './enumerate.ts';
import type { Oracle } from './oracle.ts';

/** The unrolled graph's instances and the ancestry between them, from the enumeration. */
interface Unrolled {
  readonly graph: Graph;
  readonly batch: Batch;
  readonly outcomes: number;
  readonly byName: ReadonlyMap<string, NodeSpec>;
  /** Sampled instances of nodes that have a log-probability. */
  readonly scored: readonly Instance[];
  readonly costs: readonly Instance[];
  /** influences[i][c]: scored instance i is an ancestor of cost instance c. */
  readonly influences: readonly (readonly boolean[])[];
  /** ancestors[i]: the scored instances that are ancestors of scored instance i. */
  readonly ancestors: readonly (readonly number[])[];
}

const unrolled = (o: Oracle): Unrolled => {
  const { graph } = o.problem;
  const en = o.enumeration;
  const byName = new Map(graph.spec.nodes.map((n) => [n.name, n]));
  const scored = en.stochastic.filter((i) => {
    const n = byName.get(i.node);
    return n?.kind === 'stochastic' && n.family?.type === 'categorical';
  });
  const costs = graph.spec.nodes
    .filter((n) => n.kind === 'cost')
    .flatMap((n) => (isTemporal(n) ? Array.from({ length: en.horizon }, (_, t) => ({ node: n.name, step: t })) : [{ node: n.name, step: 0 }]));
  const isAncestor = (a: Instance, of: Instance) => en.ancestors.get(en.instanceKey(of))?.has(en.instanceKey(a)) === true;
  return {
    graph,
    batch: en.batch,
    outcomes: en.outcomes,
    byName,
    scored,
    costs,
    influences: scored.map((i) => costs.map((c) => isAncestor(i, c))),
    ancestors: scored.map((i) => scored.flatMap((j, k) => (isAncestor(j, i) ? [k] : []))),
  };
};

/**
 * x, kept connected to θ up to its second derivative (0·Σθ² added): tf.grad refuses a function that
 * does not depend on its input, and a cost read from the samples does not.
 */
const connected = (theta: tf.Tensor, x: tf.Tensor): tf.Tensor => tf.add(x, tf.mul(tf.sum(tf.square(theta)), 0));

/** Column `step` of a [B] or [B, T] tensor, as numbers. */
const column = (x: tf.Tensor, step: number, outcomes: number): number[] =>
  tf.tidy(() => Array.from((x.rank === 2 ? tf.slice(x, [0, step], [outcomes, 1]) : x).dataSync()));

/** ℓ of every scored instance, concatenated [instances × B] (instance-major), at parameters θ. */
const instanceLogProbs = (u: Unrolled, params: Params): tf.Tensor => {
  const ev = evaluateGraph(u.graph, params, u.batch);
  const columns = u.scored.map((i) => {
    const lp = ev.logProbs.get(i.node)!;
    return lp.rank === 2 ? tf.reshape(tf.slice(lp, [0, i.step], [u.outcomes, 1]), [u.outcomes]) : lp;
  });
  return columns.length === 0 ? tf.zeros([0]) : tf.concat(columns);
};

/** Σ_c c(τ) per outcome, [B]. */
const sampleCosts = (u: Unrolled, params: Params): tf.Tensor => {
  const ev = evaluateGraph(u.graph, params, u.batch);
  const parts = [...ev.costs.values()].map((c) => (c.rank === 2 ? tf.sum(c, 1) : c));
  return parts.length === 0 ? tf.zeros([u.outcomes]) : tf.addN(parts);
};

/** A_i(τ) = Q_i(τ) − b_i(τ) of every scored instance at θ ([instance][outcome]); b = 0 without a baseline. */
const advantages = (u: Unrolled, params: Params, baselines: Baselines | undefined): number[][] =>
  tf.tidy(() => {
    const ev = evaluateGraph(u.graph, params, u.batch);
    const costValues = u.costs.map((c) => column(ev.costs.get(c.node)!, c.step, u.outcomes));
    const baselineCache = new Map<string, tf.Tensor>();
    const baselineOf = (i: Instance): number[] => {
      const source = baselines?.[i.node];
      if (source === undefined) return new Array<number>(u.outcomes).fill(0);
      let b = baselineCache.get(i.node);
      if (b === undefined) {
        if (source === 'batch') throw new Error(`the closed forms compute baselines from parents; '${i.node}' reads them from the batch`);
        const n = u.byName.get(i.node)!;
        const shape = isTemporal(n) ? [u.outcomes, ev.horizon] : [u.outcomes];
        let raw = source(ev.parentValuesOf(n), ev.contextOf(n));
        while (raw.rank > shape.length && raw.shape[raw.rank - 1] === 1) raw = tf.squeeze(raw, [raw.rank - 1]);
        b = tf.broadcastTo(raw, shape);
        baselineCache.set(i.node, b);
      }
      return column(b, i.step, u.outcomes);
    };
    return u.scored.map((i, k) => {
      const b = baselineOf(i);
      return Array.from({ length: u.outcomes }, (_, o) => u.costs.reduce((s, _c, ci) => s + (u.influences[k]![ci] ? costValues[ci]![o]! : 0), 0) - b[o]!);
    });
  });

/** The baselines an estimator's first derivative carries (TMAML's control variate has none at order 1). */
const firstOrderBaselines = (e: Estimator): Baselines | undefined => {
  switch (e.kind) {
    case 'pgt':
    case 'lvc':
    case 'loaded-dice':
    case 'dice-baseline':
      return e.baselines;
    case 'dice':
    case 'tmaml':
      return undefined;
  }
};

export interface PerSampleCheck {
  /** max over outcomes of |∇L(τ) − closed form| / max |closed form| */
  readonly relativeError: number;
  readonly holds: boolean;
}

/** Each outcome's surrogate gradient at θ₀, [outcome][parameter]. */
export const perSampleGradients = (o: Oracle, estimator: Estimator): Matrix => {
  const surrogate = compile(o.problem.graph, estimator);
  return jacobian((th) => connected(th, surrogate.perSample(o.layout.unflatten(th), o.enumeration.batch)), o.layout.flat);
};

/** Σ_i ∇ℓ_i(τ)·(Q_i(τ) − b_i(τ)) + Σ_c ∇c(τ) for each outcome τ at θ₀ ([outcome][parameter]); b = 0 without baselines. */
export const perSampleClosedForm = (o: Oracle, baselines: Baselines | undefined): Matrix => {
  const u = unrolled(o);
  const theta = o.layout.flat;
  const scores = jacobian((th) => connected(th, instanceLogProbs(u, o.layout.unflatten(th))), theta);
  const pathwise = jacobian((th) => connected(th, sampleCosts(u, o.layout.unflatten(th))), theta);
  const A = tf.tidy(() => advantages(u, o.layout.unflatten(tf.tensor1d([...theta])), baselines));
  return pathwise.map((row, b) => row.map((g, r) => u.scored.reduce((s, _, i) => s + scores[i * u.outcomes + b]![r]! * A[i]![b]!, g)));
};

/** Each outcome's surrogate gradient at θ₀ against its closed form (on-policy estimators). */
export const perSampleGradientCheck = (o: Oracle, estimator: Estimator, tolerance: number): PerSampleCheck => {
  const err = relativeError(perSampleGradients(o, estimator), perSampleClosedForm(o, firstOrderBaselines(estimator)));
  return { relativeError: err, holds: err < tolerance };
};

/** Whether an estimator has a closed-form expected Hessian here, and its name for the report. */
export const hasHessianClosedForm = (e: Estimator): boolean => e.kind === 'pgt' || e.kind === 'lvc' || e.kind === 'loaded-dice';

/** The expected Hessian at θ₀ of PGT, LVC or Loaded DiCE(λ), from the closed form in the module comment. */
export const expectedHessianClosedForm = (o: Oracle, estimator: Estimator): Matrix => {
  if (!hasHessianClosedForm(estimator)) throw new Error(`no closed-form Hessian for ${estimator.kind}`);
  const u = unrolled(o);
  const theta = o.layout.flat;
  const d = theta.length;
  const B = u.outcomes;
  const p = o.probabilities;
  const A = tf.tidy(() => advantages(u, o.layout.unflatten(tf.tensor1d([...theta])), firstOrderBaselines(estimator)));
  const scores = jacobian((th) => connected(th, instanceLogProbs(u, o.layout.unflatten(th))), theta);
  const selfOuter = estimator.kind === 'pgt' ? 0 : 1;
  const temporal = (i: Instance) => isTemporal(u.byName.get(i.node)!);
  const crossWeight = (j: number, i: number): number => {
    if (estimator.kind !== 'loaded-dice') return 0;
    const [a, b] = [u.scored[j]!, u.scored[i]!];
    return temporal(a) && temporal(b) ? estimator.lambda ** (b.step - a.step) : 1;
  };
  const h: Matrix = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < u.scored.length; i++) {
      const weight = p[b]! * A[i]![b]!;
      if (weight === 0) continue;
      const gi = scores[i * B + b]!;
      for (let r = 0; r < d; r++) for (let s = 0; s < d; s++) h[r]![s]! += selfOuter * weight * gi[r]! * gi[s]!;
      for (const j of u.ancestors[i]!) {
        const w = crossWeight(j, i) * weight;
        if (w === 0) continue;
        const gj = scores[j * B + b]!;
        for (let r = 0; r < d; r++) for (let s = 0; s < d; s++) h[r]![s]! += w * (gi[r]! * gj[s]! + gj[r]! * gi[s]!);
      }
    }
  }
  // E[Σ_i A_i ∇²ℓ_i] and E[Σ_c ∇²c]: autodiff of the log-probabilities and costs, weighted by constants.
  const weights = tf.tidy(() => tf.keep(tf.tensor1d(A.flatMap((row) => row.map((a, b) => a * p[b]!)))));
  const pConst = tf.tidy(() => tf.keep(tf.tensor1d([...p])));
  try {
    const curvature = hessian((th) => tf.sum(tf.mul(connected(th, instanceLogProbs(u, o.layout.unflatten(th))), weights)) as tf.Scalar, theta);
    const costCurvature = hessian((th) => tf.sum(tf.mul(connected(th, sampleCosts(u, o.layout.unflatten(th))), pConst)) as tf.Scalar, theta);
    return h.map((row, r) => row.map((x, s) => x + curvature[r]![s]! + costCurvature[r]![s]!));
  } finally {
    weights.dispose();
    pConst.dispose();
  }
};

export interface ClippedRatioCheck {
  readonly clip: number;
  /** θ = θ_o + shift·u for a fixed unit direction u. */
  readonly shift: number;
  /** Of the terms whose ratio moved from 1, the probability-weighted share whose clip is active (no gradient). */
  readonly clippedShare: number;
  readonly valueError: number;
  readonly gradientError: number;
  readonly holds: boolean;
}

/**
 * Clipped LVC against the behaviour policy θ_o, evaluated at θ = θ_o + shift·u: its expected value and
 * gradient Σ_τ p_θo(τ)·L(τ; θ) against the closed form of the module comment, computed in float64
 * from the instances' log-probabilities at θ and θ_o. Of the given shifts, the first that clips at
 * least a tenth of the moved terms is used (the last if none does), so that both branches are checked.
 */
export const clippedRatioCheck = (
  o: Oracle,
  baselines: Baselines,
  direction: readonly number[],
  options: { readonly clip: number; readonly shifts: readonly number[]; readonly tolerance: number },
): ClippedRatioCheck => {
  let check: ClippedRatioCheck | undefined;
  for (const shift of options.shifts) {
    check = clippedRatioAt(o, baselines, direction, { clip: options.clip, shift, tolerance: options.tolerance });
    if (check.clippedShare >= 0.1) break;
  }
  if (check === undefined) throw new Error('clippedRatioCheck needs at least one shift');
  return check;
};

const clippedRatioAt = (o: Oracle, baselines: Baselines, direction: readonly number[], options: { clip: number; shift: number; tolerance: number }): ClippedRatioCheck => {
  const { clip, shift, tolerance } = options;
  const u = unrolled(o);
  const B = u.outcomes;
  const p = o.probabilities;
  const theta0 = o.layout.flat;
  const theta = theta0.map((x, k) => x + shift * direction[k]!);
  const behaviour: Record<string, tf.Tensor> = tf.tidy(() => {
    const ev = evaluateGraph(u.graph, o.layout.unflatten(tf.tensor1d([...theta0])), u.batch);
    return Object.fromEntries([...ev.logProbs.entries()].map(([k, v]) => [k, tf.keep(v)]));
  });
  try {
    const batch: Batch = { ...u.batch, behaviour };
    const surrogate = compile(u.graph, { kind: 'lvc', baselines, clip, reference: 'behaviour' });
    const pConst = (): tf.Tensor => tf.tensor1d([...p]);
    const expected = (th: tf.Tensor): tf.Scalar => tf.sum(tf.mul(pConst(), surrogate.perSample(o.layout.unflatten(th), batch)));
    const value = tf.tidy(() => expected(tf.tensor1d(theta)).dataSync()[0]!);
    const grad = gradient(expected, theta);

    const [l1, l0] = tf.tidy(() => [
      Array.from(instanceLogProbs(u, o.layout.unflatten(tf.tensor1d(theta))).dataSync()),
      Array.from(instanceLogProbs(u, o.layout.unflatten(tf.tensor1d([...theta0]))).dataSync()),
    ]);
    const A = advantages(u, tf.tidy(() => o.layout.unflatten(tf.tensor1d(theta))), baselines);
    const scores = jacobian((th) => connected(th, instanceLogProbs(u, o.layout.unflatten(th))), theta);
    const pathwise = gradient((th) => tf.sum(tf.mul(pConst(), connected(th, sampleCosts(u, o.layout.unflatten(th))))) as tf.Scalar, theta);
    let closedValue = 0;
    let clippedMass = 0;
    let totalMass = 0;
    const closedGradient = [...pathwise];
    for (let i = 0; i < u.scored.length; i++) {
      for (let b = 0; b < B; b++) {
        const k = i * B + b;
        const a = A[i]![b]!;
        const rho = Math.exp(l1[k]! - l0[k]!);
        const bounded = Math.min(Math.max(rho, 1 - clip), 1 + clip);
        const unclipped = rho * a <= bounded * a;
        closedValue += p[b]! * Math.min(rho * a, bounded * a);
        if (Math.abs(rho - 1) > 1e-6) totalMass += p[b]!;
        if (!unclipped) {
          clippedMass += p[b]!;
          continue;
        }
        scores[k]!.forEach((g, r) => (closedGradient[r]! += p[b]! * rho * a * g));
      }
    }
    const valueError = Math.abs(value - closedValue) / Math.max(Math.abs(closedValue), 1e-12);
    const gradientError = relativeError(grad, closedGradient);
    return {
      clip,
      shift,
      clippedShare: totalMass === 0 ? 0 : clippedMass / totalMass,
      valueError,
      gradientError,
      holds: valueError < tolerance && gradientError < tolerance && maxAbs(closedGradient) > 0,
    };
  } finally {
    tf.dispose(Object.values(behaviour));
  }
};
