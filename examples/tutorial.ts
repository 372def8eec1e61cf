/**
 * The tutorial (docs/tutorial.md) as one script: declare a task as a graph, draw it, compile it,
 * check an estimator against exact enumeration, build a meta-objective, draw its credit paths, take a
 * meta-gradient, and train. Run: npx tsx examples/tutorial.ts [OUT_DIR]
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  builtinProblems,
  compile,
  creditEdges,
  describeBackend,
  estimators,
  lag,
  metaObjective,
  renderDiagram,
  resolveConfig,
  scg,
  selectBackend,
  train,
  validateGraph,
  verify,
} from '../src/index.ts';

const out = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'magicbox-tutorial-'));
mkdirSync(out, { recursive: true });
console.log(describeBackend(await selectBackend()));

// 1. A task as a graph: a linear Gaussian policy on a 2-D state, the environment's transition as an
//    external node (it carries influence from s_{t−1}, a_{t−1}), rewards read from the batch.
// docs:begin declare
const graph = scg({ name: 'point-task' })
  .parameter('W', { shape: [2, 2], label: 'W' })
  .parameter('logStd', { shape: [2], label: '\\sigma' })
  .stochastic('s', { temporal: true, family: { type: 'external' }, parents: [lag('s', 1), lag('a', 1)] })
  .stochastic('a', {
    temporal: true,
    family: { type: 'gaussian', dim: 2 },
    parents: ['s', 'W', 'logStd'],
    // s is [N, T, 2]; the mean is s·W, through one [N·T, 2] product (the policy's own safe ops).
    distribution: ({ s, W, logStd }) => {
      const [n, horizon] = s.shape as [number, number, number];
      return { mean: tf.reshape(tf.matMul(tf.reshape(s, [n * horizon, 2]), W), [n, horizon, 2]), logStd };
    },
  })
  .cost('r', { temporal: true, parents: ['s', 'a'] })
  .build();
// docs:end declare
console.log(`1. declared '${graph.spec.name}': ${graph.spec.nodes.length} nodes, problems: ${validateGraph(graph.spec).length}`);

// 2. Draw it, with the credit paths of the reward.
// docs:begin draw
writeFileSync(join(out, 'task.svg'), renderDiagram(graph.spec, { highlight: creditEdges(graph.spec, 'r', 3), title: 'The task graph' }));
// docs:end draw
console.log(`2. drew ${join(out, 'task.svg')}`);

// 3. Compile it with an estimator and differentiate twice on a batch of 8 trajectories × 5 steps.
// docs:begin compile
/** A batch of n trajectories × 5 steps: s [n, 5, 2], a [n, 5, 2], r [n, 5] (here random numbers). */
const randomBatch = (n: number, seed: number) => ({
  values: {
    s: tf.randomNormal([n, 5, 2], 0, 1, 'float32', seed),
    a: tf.randomNormal([n, 5, 2], 0, 1, 'float32', seed + 1),
    r: tf.randomNormal([n, 5], 0, 1, 'float32', seed + 2),
  },
});
const preUpdate = randomBatch(8, 1);
const params = { W: tf.zeros([2, 2]), logStd: tf.zeros([2]) };
const dice = compile(graph, estimators.dice());
const loss = dice.objective(params, preUpdate); // a scalar whose derivatives of every order are DiCE's
const hessianRow = tf.tidy(() => {
  const gradW = (W: tf.Tensor) => tf.grad((w: tf.Tensor) => dice.objective({ W: w, logStd: params.logStd }, preUpdate))(W);
  // d/dW of the first entry of ∇_W: one row of the Hessian, through the safe ops.
  return Array.from(tf.grad((W: tf.Tensor) => tf.sum(tf.mul(gradW(W), tf.tensor2d([[1, 0], [0, 0]]))) as tf.Scalar)(params.W).dataSync());
});
// docs:end compile
console.log(`3. DiCE surrogate ${loss.dataSync()[0]!.toFixed(4)}; Hessian row ∂²L/∂W₀₀∂W: ${hessianRow.map((x) => x.toFixed(4)).join(', ')}`);

// 4. Check the estimators against exact enumeration (the built-in enumerable graphs).
// docs:begin verify
const [chain] = verify(builtinProblems().slice(0, 1));
const diceCheck = chain!.estimators.find((e) => e.kind === 'dice')!;
console.log(`4. ${chain!.graph}: DiCE relative errors at orders 1–3: ${diceCheck.orders.map((o) => o.relativeError.toExponential(1)).join(', ')}`);
// docs:end verify

// 5. A meta-objective over the task graph (formulation I, DiCE inner step), its diagram, its gradient.
// docs:begin meta
const postUpdate = randomBatch(8, 4); // in training: trajectories sampled with the adapted policy θ′
const meta = metaObjective(graph, { formulation: 'I', inner: estimators.dice(), stepSize: 0.1, steps: 1 });
writeFileSync(join(out, 'meta.svg'), renderDiagram(meta.graph.spec, { highlight: creditEdges(meta.graph.spec, 'R'), title: 'Formulation I' }));
const metaGradient = tf.tidy(() =>
  Array.from(
    tf.grad((W: tf.Tensor) => meta.surrogate({ W, logStd: params.logStd }, [{ batch: preUpdate }], { batch: postUpdate }))(params.W).dataSync(),
  ),
);
// docs:end meta
console.log(`5. drew ${join(out, 'meta.svg')}; meta-gradient w.r.t. W: ${metaGradient.map((x) => x.toFixed(4)).join(', ')}`);

// 6. Train ProMP on 2-D navigation for a few iterations: a run directory with logs and a checkpoint.
// docs:begin train
const result = await train({
  config: resolveConfig({ algo: 'promp', env: 'nav-2d', iterations: 3, tasksPerIteration: 4, trajectoriesPerTask: 4, hidden: [16] }),
  runDir: join(out, 'run'),
  log: (line) => console.log(`   ${line}`),
  progress: 'lines',
});
// docs:end train
console.log(`6. training ${result.outcome}: ${result.iterationsDone} iterations in ${join(out, 'run')}`);
