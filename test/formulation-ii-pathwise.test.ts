/**
 * Formulation II (E-MAML) against its closed form on a graph whose reward depends on a parameter
 * directly (src/oracle/problems.ts pathwiseChain). The score term Σ_τ log π_θ(τ)·⊥R(D′) must read the
 * post-update return at θ′: on graphs whose costs come from the samples alone R(D′) is the same at θ
 * and θ′, so only a θ-dependent cost can tell the two apart.
 *   closed form: ∇_θ Σ_τ p_θ(τ) J(θ + α∇L_PGT(θ; τ)), J(θ′) = Σ_τ′ p_θ′(τ′)·R(τ′; θ′) exactly.
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { metaObjective, trajectoryLogProb } from '../src/meta/meta-objective.ts';
import { exp } from '../src/ops/index.ts';
import { relativeError } from '../src/oracle/derivatives.ts';
import { costsDependOnParameters, oracle } from '../src/oracle/oracle.ts';
import { pathwiseChain, type BuiltinProblem } from '../src/oracle/problems.ts';
import { exactLevel, gradientAt, row } from './helpers/exact-levels.ts';
import { estimators } from '../src/surrogates/estimators.ts';

test.before(async () => {
  await selectBackend();
});

const alpha = 0.3;



test('formulation II on a graph with a θ-dependent reward equals ∇_θ Σ_τ p_θ(τ) J(θ + α∇L_PGT(θ; τ)): the score term reads R(D′) at θ′', (t) => {
  const p = pathwiseChain();
  const o = oracle(p);
  t.true(costsDependOnParameters(o), 'the reward depends on κ directly');
  const outcomes = o.enumeration.outcomes;
  const p0 = o.probabilities;
  const post = exactLevel(p, o);
  const meta = metaObjective(p.graph, { formulation: 'II', inner: estimators.pgt(), stepSize: alpha, steps: 1 });
  const surrogate = (theta: tf.Tensor): tf.Scalar => {
    const params = o.layout.unflatten(theta);
    return tf.addN(Array.from({ length: outcomes }, (_, i) => tf.mul(p0[i]!, meta.surrogate(params, [{ batch: row(o.enumeration.batch, i) }], post)))) as tf.Scalar;
  };
  const pgt = metaObjective(p.graph, { formulation: 'naive-maml', inner: estimators.pgt(), stepSize: alpha, steps: 1 });
  const closedForm = (theta: tf.Tensor): tf.Scalar => {
    const params = o.layout.unflatten(theta);
    const logp = trajectoryLogProb(p.graph, params, o.enumeration.batch);
    const terms = Array.from({ length: outcomes }, (_, i) => {
      const adapted = pgt.adapt(params, [{ batch: row(o.enumeration.batch, i) }])[0]!;
      const flat = tf.concat(o.layout.names.map((n) => tf.reshape(adapted[n]!, [-1])));
      return tf.mul(exp(tf.slice(logp, [i], [1])), o.exact(flat));
    });
    return tf.sum(tf.concat(terms)) as tf.Scalar;
  };
  const closed = gradientAt(closedForm, o.layout.flat);
  const err = relativeError(gradientAt(surrogate, o.layout.flat), closed);
  t.true(err < 1e-4, `relative error ${err}`);
  // The inner step really moves κ (the pathwise part of the PGT gradient), so θ′ ≠ θ in the reward.
  const moved = tf.tidy(() => {
    const params = o.layout.unflatten(tf.tensor1d([...o.layout.flat]));
    const adapted = pgt.adapt(params, [{ batch: row(o.enumeration.batch, 0) }])[0]!;
    return tf.max(tf.abs(tf.sub(adapted.kappa!, params.kappa!))).dataSync()[0]!;
  });
  t.true(moved > 1e-2, `κ moves by ${moved} in the inner step`);
  o.dispose();
});
