/**
 * `magicbox verify`'s report: for each graph, each estimator and each derivative order, the largest
 * error of the estimator's expected derivative against the exact one, whether it is unbiased, and —
 * where theory predicts a bias (LVC and PGT at order 2) — whether the measured bias is the predicted
 * combination of Hessian terms. Beyond expectations (closed-forms.ts): every outcome's own gradient
 * against Σ_i ∇ℓ_i·(Q_i − b_i) + Σ_c ∇c (where a baseline's zero-mean term shows), the biased
 * estimators' expected Hessians against their own closed forms (Loaded DiCE at any λ), and clipped LVC
 * at θ ≠ θ_o against its closed form.
 */
import * as tf from '@tensorflow/tfjs';
import { estimatorName, estimators, type Baselines, type Estimator } from '../surrogates/estimators.ts';
import { clippedRatioCheck, expectedHessianClosedForm, hasHessianClosedForm, perSampleGradientCheck, type ClippedRatioCheck, type PerSampleCheck } from './closed-forms.ts';
import { maxAbs, relativeError, subtract, type Matrix } from './derivatives.ts';
import { costsDependOnParameters, derivatives, directions, hessianTerms, oracle, type HessianTerms, type OracleProblem } from './oracle.ts';

/** Relative error below which an expected derivative counts as exact in float32. */
export const exactTolerance = 1e-4;

export interface OrderCheck {
  readonly order: 1 | 2 | 3;
  /** max |E[∇^k L] − ∇^k J| */
  readonly maxAbsError: number;
  /** maxAbsError / max |∇^k J| */
  readonly relativeError: number;
  readonly unbiased: boolean;
  /** Where a bias is predicted: the terms, and how far the measured bias is from them (relative to the bias). */
  readonly predictedBias?: { readonly terms: string; readonly relativeError: number; readonly matches: boolean };
  /** Where the estimator has one (PGT, LVC, Loaded DiCE at order 2): its expected derivative against its own closed form. */
  readonly closedForm?: { readonly relativeError: number; readonly matches: boolean };
}

export interface EstimatorCheck {
  readonly estimator: string;
  readonly kind: Estimator['kind'];
  readonly orders: readonly OrderCheck[];
  /** Every outcome's first derivative against Σ_i ∇ℓ_i·(Q_i − b_i) + Σ_c ∇c (not an expectation). */
  readonly perSample: PerSampleCheck;
}

export interface GraphCheck {
  readonly graph: string;
  readonly description: string;
  readonly parameters: number;
  readonly outcomes: number;
  readonly horizon: number;
  /** ∇²J = H1 + H2 + H12 + H12ᵀ, checked term by term (absent when a cost depends on θ directly). */
  readonly decomposition?: { readonly relativeError: number; readonly holds: boolean };
  readonly estimators: readonly EstimatorCheck[];
  /** Clipped LVC (ε = 0.3, baselines) at θ ≠ θ_o against its closed form. */
  readonly clippedRatio: ClippedRatioCheck;
}

/** The estimators verify runs, with the baselines each uses. */
export const verifiedEstimators = (baselines: Baselines): readonly Estimator[] => [
  estimators.dice(),
  estimators.diceBaseline(baselines),
  estimators.tmaml(baselines),
  estimators.lvc(),
  estimators.pgt(),
  estimators.loadedDice(1, baselines),
  estimators.loadedDice(0.5, baselines),
  // With baselines their expectations are unchanged (LVC) or differ by E[b·∇²ℓ] (PGT); what the
  // baselines change per sample is what the per-sample check sees.
  estimators.lvc(baselines),
  estimators.pgt(baselines),
];

/** The report's name of an estimator: estimatorName, with "+ baseline" where PGT or LVC has one. */
export const verifiedName = (e: Estimator): string =>
  (e.kind === 'pgt' || e.kind === 'lvc') && e.baselines !== undefined ? `${estimatorName(e)} + baseline` : estimatorName(e);

/** The clip range and the moves away from θ_o (first that clips a tenth of the terms) of the clipped-LVC check. */
export const clippedCheckSettings = { clip: 0.3, shifts: [0.5, 1, 2, 4] } as const;

const add = (...ms: Matrix[]): Matrix => ms[0]!.map((row, i) => row.map((_, j) => ms.reduce((s, m) => s + m[i]![j]!, 0)));

/** The bias theory predicts at order 2, as the missing part of the Hessian. */
const predictedHessianBias = (e: Estimator, h: HessianTerms): { terms: string; bias: Matrix } | undefined => {
  switch (e.kind) {
    case 'lvc':
      return { terms: 'H12 + H12ᵀ', bias: h.h12 };
    case 'pgt':
      // A baseline adds −E[b·∇²ℓ] = E[b·∇ℓ∇ℓᵀ] to PGT's expected Hessian: not one of the four terms.
      return e.baselines === undefined ? { terms: 'H1 + H12 + H12ᵀ', bias: add(h.h1, h.h12) } : undefined;
    default:
      return undefined;
  }
};

export interface VerifyOptions {
  readonly estimators?: readonly Estimator[];
  readonly tolerance?: number;
  /** Third-derivative directions per estimator (each gives a d×d slice). */
  readonly directions?: number;
}

export const verifyProblem = (
  problem: OracleProblem & { readonly name: string; readonly description: string; readonly baselines: Baselines },
  options: VerifyOptions = {},
): GraphCheck => {
  const tolerance = options.tolerance ?? exactTolerance;
  const o = oracle(problem);
  try {
    const theta = o.layout.flat;
    const us = directions(theta.length, options.directions ?? 2);
    const exact = derivatives(o.exactParts, theta, us);
    const terms = costsDependOnParameters(o) ? undefined : hessianTerms(o);
    const decompositionError = terms === undefined ? undefined : relativeError(add(terms.h1, terms.h2, terms.h12), exact.order2);
    const checks = (options.estimators ?? verifiedEstimators(problem.baselines)).map((estimator): EstimatorCheck => {
      const est = derivatives(o.expectedParts(estimator), theta, us);
      const check = (order: 1 | 2 | 3, measured: number[] | Matrix, reference: number[] | Matrix): OrderCheck => {
        const relErr = relativeError(measured, reference);
        return { order, maxAbsError: maxAbs(subtract(measured as number[], reference as number[])), relativeError: relErr, unbiased: relErr < tolerance };
      };
      const third = est.order3.map((m, i) => check(3, m, exact.order3[i]!));
      const worstThird = third.reduce((a, b) => (b.relativeError > a.relativeError ? b : a));
      const second = check(2, est.order2, exact.order2);
      const prediction = terms === undefined ? undefined : predictedHessianBias(estimator, terms);
      const withPrediction: OrderCheck =
        prediction === undefined
          ? second
          : (() => {
              const measuredBias = subtract(exact.order2, est.order2);
              const err = relativeError(measuredBias, prediction.bias);
              return { ...second, predictedBias: { terms: prediction.terms, relativeError: err, matches: err < 1e-3 } };
            })();
      const withClosedForm: OrderCheck = hasHessianClosedForm(estimator)
        ? (() => {
            const err = relativeError(est.order2, expectedHessianClosedForm(o, estimator));
            return { ...withPrediction, closedForm: { relativeError: err, matches: err < tolerance } };
          })()
        : withPrediction;
      return {
        estimator: verifiedName(estimator),
        kind: estimator.kind,
        orders: [check(1, est.order1, exact.order1), withClosedForm, worstThird],
        perSample: perSampleGradientCheck(o, estimator, tolerance),
      };
    });
    // Alternating signs: neighbouring logits move apart, so the ratios leave [1 − ε, 1 + ε].
    const alternating = theta.map((_, k) => (k % 2 === 0 ? 1 : -1) / Math.sqrt(theta.length));
    const clippedRatio = clippedRatioCheck(o, problem.baselines, alternating, { ...clippedCheckSettings, tolerance });
    return {
      graph: problem.name,
      description: problem.description,
      parameters: theta.length,
      outcomes: o.enumeration.outcomes,
      horizon: problem.horizon,
      ...(decompositionError === undefined ? {} : { decomposition: { relativeError: decompositionError, holds: decompositionError < tolerance } }),
      estimators: checks,
      clippedRatio,
    };
  } finally {
    o.dispose();
  }
};

/** Runs verifyProblem in its own tensor scope, so that no tensor outlives it. */
export const verify = (
  problems: ReadonlyArray<Parameters<typeof verifyProblem>[0]>,
  options: VerifyOptions = {},
): GraphCheck[] =>
  problems.map((p) => {
    // tf.tidy only returns tensors; a scope does the same disposal for a plain result.
    tf.engine().startScope();
    try {
      return verifyProblem(p, options);
    } finally {
      tf.engine().endScope();
    }
  });

const fmt = (x: number): string => x.toExponential(1);

/** The report as a table a person reads. */
export const formatReport = (checks: readonly GraphCheck[]): string => {
  const lines: string[] = [];
  for (const g of checks) {
    lines.push(`${g.graph}: ${g.description} (${g.parameters} parameters, ${g.outcomes} outcomes enumerated)`);
    if (g.decomposition) {
      lines.push(`  Hessian = H1 + H2 + H12 + H12ᵀ term by term: relative error ${fmt(g.decomposition.relativeError)} ${g.decomposition.holds ? '✓' : '✗'}`);
    }
    const width = Math.max(...g.estimators.map((e) => e.estimator.length));
    lines.push(`  ${'estimator'.padEnd(width)}   order 1            order 2            order 3            per sample`);
    for (const e of g.estimators) {
      const cells = e.orders.map((o) => `${fmt(o.relativeError).padStart(8)} ${o.unbiased ? 'exact ' : 'biased'}   `);
      const perSample = `${fmt(e.perSample.relativeError).padStart(8)} ${e.perSample.holds ? '✓' : '✗'}`;
      lines.push(`  ${e.estimator.padEnd(width)}  ${cells.join('')}${perSample}`.trimEnd());
      for (const o of e.orders) {
        if (o.predictedBias) {
          lines.push(
            `  ${''.padEnd(width)}    order-${o.order} bias = ${o.predictedBias.terms}: relative error ${fmt(o.predictedBias.relativeError)} ${o.predictedBias.matches ? '✓' : '✗'}`,
          );
        }
        if (o.closedForm) {
          lines.push(`  ${''.padEnd(width)}    order-${o.order} = its own closed form: relative error ${fmt(o.closedForm.relativeError)} ${o.closedForm.matches ? '✓' : '✗'}`);
        }
      }
    }
    const c = g.clippedRatio;
    lines.push(
      `  clipped LVC (ε=${c.clip}) at θ_o + ${c.shift}·u, ${(100 * c.clippedShare).toFixed(0)}% of terms clipped: value ${fmt(c.valueError)}, gradient ${fmt(c.gradientError)} from its closed form ${c.holds ? '✓' : '✗'}`,
    );
    lines.push('');
  }
  lines.push(`errors are max |E[∇^k L] − ∇^k J| / max |∇^k J|; "exact" below ${fmt(exactTolerance)} (float32)`);
  lines.push('per sample: max over outcomes of the error of ∇L(τ) against Σ_i ∇ℓ_i(τ)·(Q_i(τ) − b_i(τ)) + Σ_c ∇c(τ), relative to its scale');
  return lines.join('\n');
};
