/**
 * `magicbox verify`'s report: for each graph, each estimator and each derivative order, the largest
 * error of the estimator's expected derivative against the exact one, whether it is unbiased, and —
 * where theory predicts a bias (LVC and PGT at order 2) — whether the measured bias is the predicted
 * combination of Hessian terms.
 */
import * as tf from '@tensorflow/tfjs';
import { estimatorName, estimators, type Baselines, type Estimator } from '../surrogates/estimators.ts';
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
}

export interface EstimatorCheck {
  readonly estimator: string;
  readonly kind: Estimator['kind'];
  readonly orders: readonly OrderCheck[];
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
];

const add = (...ms: Matrix[]): Matrix => ms[0]!.map((row, i) => row.map((_, j) => ms.reduce((s, m) => s + m[i]![j]!, 0)));

/** The bias theory predicts at order 2, as the missing part of the Hessian. */
const predictedHessianBias = (kind: Estimator['kind'], h: HessianTerms): { terms: string; bias: Matrix } | undefined => {
  switch (kind) {
    case 'lvc':
      return { terms: 'H12 + H12ᵀ', bias: h.h12 };
    case 'pgt':
      return { terms: 'H1 + H12 + H12ᵀ', bias: add(h.h1, h.h12) };
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
      const prediction = terms === undefined ? undefined : predictedHessianBias(estimator.kind, terms);
      const withPrediction: OrderCheck =
        prediction === undefined
          ? second
          : (() => {
              const measuredBias = subtract(exact.order2, est.order2);
              const err = relativeError(measuredBias, prediction.bias);
              return { ...second, predictedBias: { terms: prediction.terms, relativeError: err, matches: err < 1e-3 } };
            })();
      return {
        estimator: estimatorName(estimator),
        kind: estimator.kind,
        orders: [check(1, est.order1, exact.order1), withPrediction, worstThird],
      };
    });
    return {
      graph: problem.name,
      description: problem.description,
      parameters: theta.length,
      outcomes: o.enumeration.outcomes,
      horizon: problem.horizon,
      ...(decompositionError === undefined ? {} : { decomposition: { relativeError: decompositionError, holds: decompositionError < tolerance } }),
      estimators: checks,
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
    lines.push(`  ${'estimator'.padEnd(width)}   order 1            order 2            order 3`);
    for (const e of g.estimators) {
      const cells = e.orders.map((o) => `${fmt(o.relativeError).padStart(8)} ${o.unbiased ? 'exact ' : 'biased'}   `);
      lines.push(`  ${e.estimator.padEnd(width)}  ${cells.join('')}`.trimEnd());
      for (const o of e.orders) {
        if (o.predictedBias) {
          lines.push(
            `  ${''.padEnd(width)}    order-${o.order} bias = ${o.predictedBias.terms}: relative error ${fmt(o.predictedBias.relativeError)} ${o.predictedBias.matches ? '✓' : '✗'}`,
          );
        }
      }
    }
    lines.push('');
  }
  lines.push(`errors are max |E[∇^k L] − ∇^k J| / max |∇^k J|; "exact" below ${fmt(exactTolerance)} (float32)`);
  return lines.join('\n');
};
