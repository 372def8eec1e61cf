/**
 * The meta-objective's edges (each a mutation survivor of src/meta/meta-objective.ts): the per-sample
 * log-probability and return of graphs with no scored node or no cost (zeros, one per sample), the
 * meta-SCG's node families and labels as its documentation states them, E-MAML's score term with more
 * than two inner steps (each pre-update batch scored under the parameters that sampled it), and the
 * option checks.
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { formulations, metaGraph, metaObjective, MetaObjectiveError, sampleReturn, trajectoryLogProb } from '../src/meta/meta-objective.ts';
import { oracle } from '../src/oracle/oracle.ts';
import { twoCostDag } from '../src/oracle/problems.ts';
import { scg } from '../src/scg/builder.ts';
import { estimators } from '../src/surrogates/estimators.ts';
import { row } from './helpers/exact-levels.ts';

test.before(async () => {
  await selectBackend();
});

test('the formulations are I, II and naive MAML, and each gives a meta-objective', (t) => {
  t.deepEqual([...formulations].sort(), ['I', 'II', 'naive-maml']);
  const p = twoCostDag();
  for (const formulation of formulations) {
    const meta = metaObjective(p.graph, { formulation, inner: formulation === 'I' ? estimators.dice() : estimators.pgt(), stepSize: 0.1, steps: 1 });
    t.is(meta.graph.spec.name, `meta-${formulation}-1`);
  }
});

test('a graph with no scored node has log π(τ) = 0 for each sample; one with no cost has return 0 for each', (t) => {
  const deterministic = scg()
    .parameter('theta', { shape: [1] })
    .deterministic('x', { parents: [] })
    .cost('c', { parents: ['x', 'theta'], fn: ({ x, theta }) => tf.mul(x!, theta!) })
    .build();
  const noCost = scg()
    .parameter('phi', { shape: [2] })
    .stochastic('z', { family: { type: 'categorical', categories: 2 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
    .build();
  tf.tidy(() => {
    const logp = trajectoryLogProb(deterministic, { theta: tf.ones([1]) }, { values: { x: tf.tensor1d([1, 2, 3]) } });
    t.deepEqual(logp.shape, [3]);
    t.deepEqual(Array.from(logp.dataSync()), [0, 0, 0]);
    const batch = { values: { z: tf.tensor1d([0, 1, 1, 0]) } };
    const returns = sampleReturn(noCost, { phi: tf.tensor1d([0.2, -0.3]) }, batch);
    t.deepEqual(returns.shape, [4]);
    t.deepEqual(Array.from(returns.dataSync()), [0, 0, 0, 0]);
  });
});

test('the meta-SCG: τ_j scored (trajectory) in formulation II only, the post-update τ always; θ_j labelled θ_j', (t) => {
  for (const formulation of formulations) {
    const g = metaGraph(2, formulation);
    const node = (name: string) => g.spec.nodes.find((n) => n.name === name)!;
    for (const pre of ['tau0', 'tau1']) {
      const family = (node(pre) as { family: { type: string } }).family;
      t.is(family.type, formulation === 'II' ? 'trajectory' : 'external', `${formulation}: ${pre}`);
    }
    t.is((node('tau2') as { family: { type: string } }).family.type, 'trajectory', `${formulation}: the post-update trajectories`);
    t.is(node('theta1').label, '\\theta_1');
    t.is(node('theta2').label, '\\theta_2');
  }
});

test('the option checks: a step size of 0, the wrong number of pre-update batches, and the II-only reason in the message', (t) => {
  const p = twoCostDag();
  t.throws(() => metaObjective(p.graph, { formulation: 'I', inner: estimators.dice(), stepSize: 0, steps: 1 }), {
    instanceOf: MetaObjectiveError,
    message: 'the inner step size must be positive, got 0',
  });
  const meta = metaObjective(p.graph, { formulation: 'I', inner: estimators.dice(), stepSize: 0.1, steps: 2 });
  t.throws(() => meta.adapt({}, []), { instanceOf: MetaObjectiveError, message: '2 inner step(s) need 2 pre-update batch(es), got 0' });
  // naive MAML's refusal has no formulation II explanation
  t.throws(() => metaObjective(p.graph, { formulation: 'naive-maml', inner: estimators.dice(), stepSize: 0.1, steps: 1 }), {
    instanceOf: MetaObjectiveError,
    message: 'formulation naive-maml uses the naive inner estimator (pgt); got DiCE',
  });
});

test('formulation II with three inner steps: each pre-update batch is scored under the parameters that sampled it (θ, θ₁, θ₂)', (t) => {
  const p = twoCostDag();
  const o = oracle(p);
  const alpha = 0.3;
  const meta = metaObjective(p.graph, { formulation: 'II', inner: estimators.pgt(), stepSize: alpha, steps: 3 });
  const naive = metaObjective(p.graph, { formulation: 'naive-maml', inner: estimators.pgt(), stepSize: alpha, steps: 3 });
  tf.tidy(() => {
    const params = o.layout.unflatten(tf.tensor1d([...o.layout.flat]));
    const pre = [0, 1, 2].map((i) => ({ batch: row(o.enumeration.batch, i) }));
    const post = { batch: o.enumeration.batch };
    const value = meta.surrogate(params, pre, post).dataSync()[0]!;
    // written out: J(θ₃) + Σ_j log π_{θ_j}(τ_j) · R(D′ at θ₃), θ_j by the naive inner step
    const adapted = naive.adapt(params, pre);
    const sampling = [params, adapted[0]!, adapted[1]!];
    const R = tf.mean(sampleReturn(p.graph, adapted[2]!, post.batch)).dataSync()[0]!;
    const scores = pre.map((d, j) => tf.sum(trajectoryLogProb(p.graph, sampling[j]!, d.batch)).dataSync()[0]!);
    const want = naive.surrogate(params, pre, post).dataSync()[0]! + scores.reduce((a, b) => a + b, 0) * R;
    t.true(Math.abs(value - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${value} vs ${want}`);
    // scoring τ₂ under θ₁ instead (the adapted list shifted by one) gives another number
    const shifted = tf.sum(trajectoryLogProb(p.graph, adapted[0]!, pre[2]!.batch)).dataSync()[0]!;
    t.true(Math.abs((shifted - scores[2]!) * R) > 1e-4, 'the test can tell θ₁ from θ₂');
  });
  o.dispose();
});
