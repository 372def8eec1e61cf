/**
 * Fig. 4's pieces: the running mean, the DiCE/LVC ratio, and `varianceAlongTraining` — its first
 * iteration's spread is that of K meta-gradients at θ = init(seed) on one set of tasks (recomputed here
 * with metaGradientSample and the documented seeds), then it steps Adam on −(the last of them).
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { point1d } from '../src/envs/index.ts';
import { disposeParams } from '../src/meta/algorithms.ts';
import { resolveConfig } from '../src/meta/config.ts';
import { makeTrainer } from '../src/meta/iteration.ts';
import { adam, paramLayout, unflattenParams } from '../src/meta/optimizers.ts';
import { linearGaussianPolicy } from '../src/meta/policy.ts';
import { gradientSpread, metaGradientSample, varianceAlongTraining, VarianceError } from '../src/meta/variance.ts';
import { mixSeeds } from '../src/random.ts';
import { fig4Ratios, runningMean } from '../src/reproduce/fig4.ts';

test.before(async () => {
  await selectBackend();
});

test('runningMean: the trailing mean over up to n values', (t) => {
  t.deepEqual(runningMean([1, 2, 3, 4, 10], 2), [1, 1.5, 2.5, 3.5, 7]);
  t.deepEqual(runningMean([4, 2, 6], 10), [4, 3, 4]);
});

test('fig4Ratios: per seed, the mean over iterations of DiCE’s relative std over LVC’s', (t) => {
  const run = (algo: string, seed: number, values: number[]) => ({
    algo,
    seed,
    sizes: { iterations: values.length, tasks: 1, trajectories: 1, batches: 2 },
    points: values.map((v, iteration) => ({ iteration, relativeStd: v, medianRelativeStd: 0, normRatio: 0, averageReturn: [0, 0] })),
  });
  const runs = [run('lvc-vpg', 1, [1, 3]), run('vpg-dice', 1, [3, 5]), run('lvc-vpg', 2, [2, 2]), run('vpg-dice', 2, [1, 2])];
  t.deepEqual(fig4Ratios(runs, [1, 2]), [4 / 2, 1.5 / 2]);
});

const policy = linearGaussianPolicy({ observationDim: 1, actionDim: 1, logStd: -0.5, low: -0.2, high: 0.2 });
const trainerOf = (algo: 'lvc-vpg' | 'vpg-dice' | 'maml-trpo') =>
  makeTrainer(resolveConfig({ algo, env: 'point-1d', seed: 7, tasksPerIteration: 2, trajectoriesPerTask: 3, horizon: 5, outerLearningRate: 0.05 }), point1d, policy);

for (const algo of ['lvc-vpg', 'vpg-dice'] as const) {
  test.serial(`varianceAlongTraining (${algo}): K gradients at θ on the iteration's tasks, then Adam on −(the last)`, async (t) => {
    const trainer = trainerOf(algo);
    const K = 3;
    const before = tf.memory().numTensors;
    const points = await varianceAlongTraining({ trainer, iterations: 2, batches: K });
    t.is(tf.memory().numTensors, before, 'no tensor left behind');
    t.is(points.length, 2);
    // Iteration 0 by hand: θ = init(seed), batch k with tasks seeded (seed, iteration) and trajectories (seed, iteration, k).
    const theta = policy.init(7);
    const seedsOf = (it: number, k: number) => ({ tasks: mixSeeds(7, 5_000_000 + it, 0), sampling: mixSeeds(7, 5_000_000 + it, 1 + k) });
    try {
      const samples = Array.from({ length: K }, (_, k) => metaGradientSample(trainer, theta, seedsOf(0, k)));
      t.notDeepEqual(samples[0]!.gradient, samples[1]!.gradient, 'the batches differ');
      t.is(points[0]!.relativeStd, gradientSpread(samples.map((s) => s.gradient)).relativeStd);
      // Iteration 1 starts from one Adam step on −g_{K−1}.
      const optimizer = adam({ learningRate: 0.05 });
      const state = optimizer.init(theta);
      const next = tf.tidy(() => {
        const stepped = optimizer.step(theta, unflattenParams(tf.neg(tf.tensor1d(samples[K - 1]!.gradient)), paramLayout(policy.paramShapes)), state);
        return Object.fromEntries(Object.entries(stepped.params).map(([k, v]) => [k, tf.keep(v)]));
      });
      optimizer.dispose(state);
      try {
        const later = Array.from({ length: K }, (_, k) => metaGradientSample(trainer, next, seedsOf(1, k)));
        t.is(points[1]!.relativeStd, gradientSpread(later.map((s) => s.gradient)).relativeStd);
      } finally {
        disposeParams(next);
      }
    } finally {
      disposeParams(theta);
    }
  });
}

test('varianceAlongTraining refuses an algorithm without an Adam outer step, and K < 2', async (t) => {
  await t.throwsAsync(varianceAlongTraining({ trainer: trainerOf('maml-trpo'), iterations: 1 }), { instanceOf: VarianceError, message: /steps with Adam; maml-trpo does not/ });
  await t.throwsAsync(varianceAlongTraining({ trainer: trainerOf('lvc-vpg'), iterations: 1, batches: 1 }), { instanceOf: VarianceError, message: /batches must be a whole number ≥ 2/ });
});
