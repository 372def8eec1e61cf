/**
 * Formulations I and II against their closed forms on the oracle's enumerable graphs, with exact
 * expectations at every level (each level's samples weighted by their exact probabilities):
 *   I:  ∇_θ J(θ + α∇J(θ))                      (k = 1; and the k = 2 composition)
 *   II: ∇_θ Σ_τ p_θ(τ) J(θ + α∇L_PGT(θ; τ))     (one pre-update trajectory, N = 1)
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { metaGraph, metaObjective, MetaObjectiveError, trajectoryLogProb } from '../src/meta/meta-objective.ts';
import { exp } from '../src/ops/index.ts';
import { relativeError } from '../src/oracle/derivatives.ts';
import { oracle, type Oracle } from '../src/oracle/oracle.ts';
import { mdpChain, twoCostDag, type BuiltinProblem } from '../src/oracle/problems.ts';
import { validateGraph } from '../src/scg/validate.ts';
import { exactLevel, gradientAt, row } from './helpers/exact-levels.ts';
import { estimators, type Estimator } from '../src/surrogates/estimators.ts';

test.before(async () => {
  await selectBackend();
});

const alpha = 0.3;


/** θ ↦ J(θ_k) with θ_{j+1} = θ_j + α∇J(θ_j): formulation I's closed form. */
const closedFormI = (o: Oracle, steps: number) => (theta: tf.Tensor): tf.Scalar => {
  const gradJ = tf.grad(o.exact);
  let current = theta;
  for (let j = 0; j < steps; j++) current = tf.add(current, tf.mul(alpha, gradJ(current)));
  return o.exact(current);
};

const metaGradientI = (p: BuiltinProblem, o: Oracle, inner: Estimator, steps: number, formulation: 'I' | 'naive-maml' = 'I') => {
  const meta = metaObjective(p.graph, { formulation, inner, stepSize: alpha, steps });
  const level = exactLevel(p, o);
  return gradientAt((theta) => meta.surrogate(o.layout.unflatten(theta), Array.from({ length: steps }, () => level), level) as tf.Scalar, o.layout.flat);
};

for (const make of [mdpChain, twoCostDag]) {
  test(`formulation I with an exact DiCE inner step equals ∇J(θ + α∇J(θ)) — ${make().name}`, (t) => {
    const p = make();
    const o = oracle(p);
    const closed = gradientAt(closedFormI(o, 1), o.layout.flat);
    for (const inner of [estimators.dice(), estimators.tmaml(p.baselines), estimators.diceBaseline(p.baselines)]) {
      const err = relativeError(metaGradientI(p, o, inner, 1), closed);
      t.true(err < 1e-4, `${inner.kind}: relative error ${err}`);
    }
    // The biased inner estimators do not: LVC drops H12 + H12ᵀ, naive MAML drops the pre-update credit.
    t.true(relativeError(metaGradientI(p, o, estimators.lvc(), 1), closed) > 1e-3, 'LVC inner step is biased');
    t.true(relativeError(metaGradientI(p, o, estimators.pgt(), 1, 'naive-maml'), closed) > 1e-3, 'naive MAML is biased');
    o.dispose();
  });
}

test('formulation I with two exact DiCE inner steps equals the closed-form composition', (t) => {
  const p = twoCostDag();
  const o = oracle(p);
  const err = relativeError(metaGradientI(p, o, estimators.dice(), 2), gradientAt(closedFormI(o, 2), o.layout.flat));
  t.true(err < 1e-4, `relative error ${err}`);
  o.dispose();
});


test('formulation II (E-MAML) with one pre-update trajectory equals ∇_θ Σ_τ p_θ(τ) J(θ + α∇L_PGT(θ; τ))', (t) => {
  const p = twoCostDag();
  const o = oracle(p);
  const meta = metaObjective(p.graph, { formulation: 'II', inner: estimators.pgt(), stepSize: alpha, steps: 1 });
  const post = exactLevel(p, o);
  const outcomes = o.enumeration.outcomes;
  const p0 = o.probabilities;
  const surrogate = (theta: tf.Tensor): tf.Scalar => {
    const params = o.layout.unflatten(theta);
    const terms = Array.from({ length: outcomes }, (_, i) => tf.mul(p0[i]!, meta.surrogate(params, [{ batch: row(o.enumeration.batch, i) }], post)));
    return tf.addN(terms) as tf.Scalar;
  };
  const closedForm = (theta: tf.Tensor): tf.Scalar => {
    const params = o.layout.unflatten(theta);
    const logp = trajectoryLogProb(p.graph, params, o.enumeration.batch);
    const pgt = metaObjective(p.graph, { formulation: 'naive-maml', inner: estimators.pgt(), stepSize: alpha, steps: 1 });
    const terms = Array.from({ length: outcomes }, (_, i) => {
      const adapted = pgt.adapt(params, [{ batch: row(o.enumeration.batch, i) }])[0]!;
      const flat = tf.concat(o.layout.names.map((n) => tf.reshape(adapted[n]!, [-1])));
      return tf.mul(exp(tf.slice(logp, [i], [1])), o.exact(flat));
    });
    return tf.sum(tf.concat(terms)) as tf.Scalar;
  };
  const err = relativeError(gradientAt(surrogate, o.layout.flat), gradientAt(closedForm, o.layout.flat));
  t.true(err < 1e-4, `relative error ${err}`);
  // Without its score term (naive MAML) the same computation misses the pre-update credit.
  const naive = metaObjective(p.graph, { formulation: 'naive-maml', inner: estimators.pgt(), stepSize: alpha, steps: 1 });
  const naiveGradient = gradientAt((theta) => {
    const params = o.layout.unflatten(theta);
    return tf.addN(Array.from({ length: outcomes }, (_, i) => tf.mul(p0[i]!, naive.surrogate(params, [{ batch: row(o.enumeration.batch, i) }], post)))) as tf.Scalar;
  }, o.layout.flat);
  t.true(relativeError(naiveGradient, gradientAt(closedForm, o.layout.flat)) > 1e-3);
  o.dispose();
});

test('the meta-SCG is a valid graph value; bad options are refused with a reason', (t) => {
  for (const f of ['I', 'II', 'naive-maml'] as const) {
    const g = metaGraph(2, f);
    t.deepEqual(validateGraph(g.spec), []);
    t.deepEqual(
      g.spec.nodes.map((n) => n.name),
      f === 'I' ? ['theta', 'tau0', 'Jin0', 'theta1', 'tau1', 'Jin1', 'theta2', 'tau2', 'R'] : ['theta', 'tau0', 'theta1', 'tau1', 'theta2', 'tau2', 'R'],
    );
  }
  const p = twoCostDag();
  t.throws(() => metaObjective(p.graph, { formulation: 'II', inner: estimators.dice(), stepSize: 0.1, steps: 1 }), {
    instanceOf: MetaObjectiveError,
    message: /count it twice/,
  });
  t.throws(() => metaObjective(p.graph, { formulation: 'I', inner: estimators.dice(), stepSize: 0.1, steps: 0 }), { instanceOf: MetaObjectiveError });
  t.throws(() => metaObjective(p.graph, { formulation: 'I', inner: estimators.dice(), stepSize: -1, steps: 1 }), { instanceOf: MetaObjectiveError });
});
