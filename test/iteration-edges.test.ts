/**
 * The iteration beyond its first-iteration numbers (test/trainer-numbers.test.ts), each case a
 * mutation survivor of src/meta/iteration.ts: evaluateParams's returns at every adaptation level
 * against the independent float64 model of the linear Gaussian policy (two inner steps, so the level
 * loop and its parameter hand-over are exercised), and an iteration of every optimiser leaving no
 * tensor behind (what it returns aside).
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { point1d, POINT_1D } from '../src/envs/index.ts';
import { disposeParams } from '../src/meta/algorithms.ts';
import type { AlgorithmName } from '../src/meta/algorithm-names.ts';
import { resolveConfig, type TrainConfig } from '../src/meta/config.ts';
import { evaluateParams, makeTrainer, runIteration } from '../src/meta/iteration.ts';
import { adam } from '../src/meta/optimizers.ts';
import { linearGaussianPolicy } from '../src/meta/policy.ts';
import type { Trajectories } from '../src/meta/sampler.ts';
import { mixSeeds, seededUniform } from '../src/random.ts';
import type { Params } from '../src/surrogates/batch.ts';
import { creditOf, rowsOf, surrogateAt, type Vec } from './helpers/linear-gaussian-model.ts';

test.before(async () => {
  await selectBackend();
});

const logStd = -1;
const model = { sigma: Math.exp(logStd) };
const policy = linearGaussianPolicy({ observationDim: 1, actionDim: 1, logStd, low: -POINT_1D.maxAction, high: POINT_1D.maxAction });
const theta0: Vec = [0.1, 0.3];
const paramsOf = (th: Vec): Params => ({ W0: tf.tensor2d([[th[0]]]), b0: tf.tensor1d([th[1]]) });
const configFor = (algo: AlgorithmName, adaptationSteps: number): TrainConfig =>
  resolveConfig({
    algo,
    env: 'point-1d',
    seed: 5,
    tasksPerIteration: 2,
    trajectoriesPerTask: 3,
    horizon: 5,
    adaptationSteps,
    innerStepSize: 0.3,
    outerLearningRate: 0.01,
    discount: 0.99,
    gaeLambda: 1,
  });
const meanOf = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const average = (trs: readonly Trajectories[]) => meanOf(trs.map((tr) => Array.from(tr.rewards).reduce((a, b) => a + b, 0) / tr.n));

test.serial('evaluateParams: the average return at each of two adaptation levels is the model’s, sampled with its own θ₁ and θ₂', async (t) => {
  const config = configFor('maml-vpg', 2);
  const trainer = makeTrainer(config, point1d, policy);
  const [seed, tasksCount] = [17, 3];
  // the documented seeds: tasks from (seed, 1e6, 0), level j's trajectories from (seed, 1e6, 1 + j)
  const tasks = point1d.sampleTasks(seededUniform(mixSeeds(seed, 1_000_000, 0)), tasksCount);
  let current: Vec[] = tasks.map(() => theta0);
  const expected: number[] = [];
  for (let j = 0; j <= 2; j++) {
    const tensors = current.map(paramsOf);
    const trajectories = await trainer.sampler.sample({ tasks, params: tensors, perGroup: config.trajectoriesPerTask, horizon: 5, seed: mixSeeds(seed, 1_000_000, 1 + j) });
    tensors.forEach(disposeParams);
    expected.push(average(trajectories));
    // the naive inner step θ + α∇L_PGT(θ; D_j), in float64
    current = trajectories.map((tr, i) => {
      const rows = rowsOf(tr);
      const g = surrogateAt(model, 'pgt', current[i]!, rows, creditOf(rows, 'advantages', config.discount)).g;
      return [current[i]![0] + config.innerStepSize * g[0], current[i]![1] + config.innerStepSize * g[1]];
    });
  }
  t.true(Math.abs(expected[2]! - expected[0]!) > 1e-3, `the levels' returns differ: ${expected}`);
  const params = paramsOf(theta0);
  const before = tf.memory().numTensors;
  const got = await evaluateParams(trainer, params, seed, tasksCount);
  t.is(tf.memory().numTensors, before, 'no tensor left behind');
  disposeParams(params);
  t.is(got.length, 3);
  got.forEach((r, j) => t.true(Math.abs(r - expected[j]!) <= 1e-5 * Math.max(1, Math.abs(expected[j]!)), `level ${j}: ${r} vs ${expected[j]}`));
});

for (const [algo, steps] of [
  ['promp', 1],
  ['maml-trpo', 1],
  ['dice-vpg', 2],
] as const) {
  test.serial(`${algo} (${steps} inner step(s)): an iteration leaves no tensor behind but the parameters and state it returns`, async (t) => {
    const trainer = makeTrainer(configFor(algo, steps), point1d, policy);
    const params = paramsOf(theta0);
    const once = async () => {
      const before = tf.memory().numTensors;
      const result = await runIteration(trainer, params, undefined, 1);
      disposeParams(result.params);
      if (result.optimizerState !== undefined) adam().dispose(result.optimizerState);
      return { result, left: tf.memory().numTensors - before };
    };
    const first = await once();
    const second = await once();
    const result = second.result;
    t.is(second.left, 0, `first run left ${first.left}`);
    t.is(result.stats.averageReturn.length, steps + 1);
    t.is(result.stats.timesteps, (steps + 1) * 2 * 3 * 5);
    disposeParams(params);
  });
}
