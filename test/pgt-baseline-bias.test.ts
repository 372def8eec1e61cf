/**
 * The condition on "PGT's expected Hessian is H2, so naive MAML gives up H1 + H12 + H12ᵀ"
 * (docs/concepts.md §3–4): it holds only without a baseline. E[∇²ℓ_w | parents] = −F_w (the Fisher
 * matrix of w's distribution), so a baseline b_w, a function of w's parents, adds
 * −E[Σ_w b_w ∇²ℓ_w] = E[Σ_w b_w ∇ℓ_w ∇ℓ_wᵀ] to PGT's expected Hessian. The oracle runs PGT (estimators.pgt()
 * and estimators.pgt(baselines)) without and with the built-in problems' baselines: the decomposition "bias = H1 + H12 + H12ᵀ" holds for the first
 * and fails for the second, whose bias is H1 + H12 + H12ᵀ − E[Σ_w b_w ∇ℓ_w ∇ℓ_wᵀ], the last term
 * computed here from per-instance scores, independently of the compiler. (LVC's bias does not move:
 * its baseline term E[b_w(∇ℓ_w∇ℓ_wᵀ + ∇²ℓ_w)] is zero.)
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { jacobian, relativeError, subtract, type Matrix } from '../src/oracle/derivatives.ts';
import { derivatives, hessianTerms, oracle } from '../src/oracle/oracle.ts';
import { builtinProblems, type BuiltinProblem } from '../src/oracle/problems.ts';
import { estimators, type Estimator } from '../src/surrogates/estimators.ts';
import { evaluateGraph } from '../src/surrogates/evaluate.ts';

test.before(async () => {
  await selectBackend();
});

/** E[Σ_w b_w ∇ℓ_w ∇ℓ_wᵀ] over every instance (node, step) of the nodes that have a baseline. */
const baselineFisher = (problem: BuiltinProblem): Matrix => {
  const o = oracle(problem);
  try {
    const { layout, enumeration, probabilities } = o;
    const d = layout.size;
    const out: Matrix = Array.from({ length: d }, () => new Array<number>(d).fill(0));
    for (const [name, source] of Object.entries(problem.baselines)) {
      if (typeof source !== 'function') throw new Error('the built-in baselines are functions');
      const node = problem.graph.spec.nodes.find((n) => n.name === name)!;
      // b_w per instance, [B] or [B, T], at θ₀.
      const b: number[] = tf.tidy(() => {
        const ev = evaluateGraph(problem.graph, layout.unflatten(tf.tensor1d([...layout.flat])), enumeration.batch);
        const shape = ev.logProbs.get(name)!.shape;
        return Array.from(tf.broadcastTo(source(ev.parentValuesOf(node), ev.contextOf(node)), shape).dataSync());
      });
      // One score row per instance: the Jacobian of the flattened ℓ_w.
      const scores = jacobian((theta) => tf.reshape(evaluateGraph(problem.graph, layout.unflatten(theta), enumeration.batch).logProbs.get(name)!, [-1]), layout.flat);
      const perOutcome = scores.length / enumeration.outcomes;
      scores.forEach((g, k) => {
        const weight = probabilities[Math.floor(k / perOutcome)]! * b[k]!;
        for (let r = 0; r < d; r++) for (let s = 0; s < d; s++) out[r]![s]! += weight * g[r]! * g[s]!;
      });
    }
    return out;
  } finally {
    o.dispose();
  }
};

for (const problem of builtinProblems()) {
  test(`${problem.name}: PGT's bias is H1 + H12 + H12ᵀ without a baseline, and not with one`, (t) => {
    const o = oracle(problem);
    try {
      const theta = o.layout.flat;
      const exact = derivatives(o.exact, theta, [], 2);
      const h = hessianTerms(o);
      const predicted = h.h1.map((row, i) => row.map((x, j) => x + h.h12[i]![j]!));
      const biasOf = (e: Estimator) => {
        const expected = derivatives(o.expected(e), theta, [], 2);
        // Both forms are exact at order 1: the baseline changes only the curvature's bias.
        t.true(relativeError(expected.order1, exact.order1) < 1e-4, `${e.kind}: order 1`);
        return relativeError(subtract(exact.order2, expected.order2), predicted);
      };
      const plain = biasOf(estimators.pgt());
      const withBaseline = biasOf(estimators.pgt(problem.baselines));
      t.true(plain < 1e-3, `without a baseline the decomposition holds: relative error ${plain}`);
      t.true(withBaseline > 0.1, `with a baseline it misses: relative error ${withBaseline}`);
    } finally {
      o.dispose();
    }
  });

  test(`${problem.name}: with a baseline, PGT's bias is H1 + H12 + H12ᵀ − E[Σ_w b_w ∇ℓ_w ∇ℓ_wᵀ]`, (t) => {
    const o = oracle(problem);
    try {
      const theta = o.layout.flat;
      const exact = derivatives(o.exact, theta, [], 2).order2;
      const expected = derivatives(o.expected(estimators.pgt(problem.baselines)), theta, [], 2).order2;
      const h = hessianTerms(o);
      const fisher = baselineFisher(problem);
      const predicted = subtract(h.h1.map((row, i) => row.map((x, j) => x + h.h12[i]![j]!)), fisher);
      const err = relativeError(subtract(exact, expected), predicted);
      t.true(err < 1e-3, `relative error ${err}`);
      t.true(relativeError(fisher, exact) > 1e-2, 'the baseline term is not negligible here');
    } finally {
      o.dispose();
    }
  });
}
