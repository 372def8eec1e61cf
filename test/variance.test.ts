/**
 * The meta-gradient variance study (src/meta/variance.ts) on a tiny configuration: finite positive
 * spreads for every estimator, reproducible for a seed, computed from gradients that really differ
 * across the K batches, and no tensor left behind.
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { taskDistribution } from '../src/envs/index.ts';
import { resolveConfig } from '../src/meta/config.ts';
import { makeTrainer } from '../src/meta/iteration.ts';
import { mlpPolicyFor } from '../src/meta/policy.ts';
import {
  batchSeeds,
  estimatorAlgorithms,
  gradientSpread,
  metaGradientSample,
  metaGradientVariance,
  varianceEstimators,
  VarianceError,
  type VarianceOptions,
} from '../src/meta/variance.ts';

test.before(async () => {
  await selectBackend();
});

const tiny = {
  config: { env: 'nav-2d', seed: 3, tasksPerIteration: 2, trajectoriesPerTask: 3, horizon: 10, hidden: [8] },
  batches: 3,
} satisfies VarianceOptions;

test('every estimator gets a finite positive relative std, and no tensor is left behind', async (t) => {
  const before = tf.memory().numTensors;
  const r = await metaGradientVariance(tiny);
  t.is(tf.memory().numTensors, before);
  t.is(r.memory.numTensorsAfter, r.memory.numTensorsBefore);
  t.is(r.batches, 3);
  t.is(r.config.adaptationSteps, 1);
  t.deepEqual(Object.keys(r.estimators), [...varianceEstimators]);
  for (const name of varianceEstimators) {
    const e = r.estimators[name]!;
    t.is(e.algorithm, estimatorAlgorithms[name]);
    for (const [what, x] of Object.entries({ relativeStd: e.relativeStd, median: e.medianRelativeStd, normRatio: e.normRatio, std: e.stdNorm, mean: e.meanNorm })) {
      t.true(Number.isFinite(x) && x > 0, `${name} ${what} = ${x}`);
    }
    t.is(e.gradientNorms.length, 3);
    t.true(e.gradientNorms.every((g) => Number.isFinite(g) && g > 0), `${name}: ${e.gradientNorms.join(', ')}`);
    t.is(e.averageReturn.length, 2);
  }
});

test('the study is reproducible for a seed and changes with it', async (t) => {
  const one = { ...tiny, estimators: ['lvc'] as const };
  const a = (await metaGradientVariance(one)).estimators.lvc!;
  const b = (await metaGradientVariance(one)).estimators.lvc!;
  t.deepEqual(a.gradientNorms, b.gradientNorms);
  t.is(a.relativeStd, b.relativeStd);
  t.is(a.normRatio, b.normRatio);
  const c = (await metaGradientVariance({ ...one, config: { ...tiny.config, seed: 4 } })).estimators.lvc!;
  t.notDeepEqual(a.gradientNorms, c.gradientNorms);
});

test('the gradients it averages differ across batches: different tasks and trajectories, std > 0', (t) => {
  const config = resolveConfig({ ...tiny.config, algo: estimatorAlgorithms.dice });
  const distribution = taskDistribution(config.env);
  const policy = mlpPolicyFor(distribution.observationDim, distribution.action, { hidden: config.hidden });
  const trainer = makeTrainer(config, distribution, policy);
  const params = policy.init(config.seed);
  const before = tf.memory().numTensors;
  try {
    const gradients = [0, 1, 2].map((k) => metaGradientSample(trainer, params, batchSeeds(config.seed, k)).gradient);
    const again = metaGradientSample(trainer, params, batchSeeds(config.seed, 1)).gradient;
    t.is(tf.memory().numTensors, before);
    t.deepEqual(again, gradients[1]);
    const size = Object.values(policy.paramShapes).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    for (const g of gradients) t.is(g.length, size);
    // Pairwise different (in most coordinates, not by rounding).
    for (let i = 0; i < 3; i++) {
      for (let j = i + 1; j < 3; j++) {
        let differing = 0;
        for (let p = 0; p < size; p++) if (Math.abs(gradients[i]![p]! - gradients[j]![p]!) > 1e-6 * (Math.abs(gradients[j]![p]!) + 1e-6)) differing++;
        t.true(differing > size / 2, `batches ${i} and ${j} differ in only ${differing} of ${size} coordinates`);
      }
    }
    const spread = gradientSpread(gradients);
    t.true(spread.stdNorm > 0);
    // The spread is scale-free: scaling every gradient leaves the relative figures unchanged.
    const scaled = gradientSpread(gradients.map((g) => g.map((x) => 10 * x)));
    t.true(Math.abs(scaled.normRatio - spread.normRatio) < 1e-5 * spread.normRatio);
  } finally {
    tf.dispose(Object.values(params));
  }
});

test('gradientSpread on known numbers, and its errors', async (t) => {
  // Coordinate 0: values 1, 3 → mean 2, std 1; coordinate 1: 2, 2 → std 0.
  const s = gradientSpread([Float32Array.from([1, 2]), Float32Array.from([3, 2])]);
  t.true(Math.abs(s.relativeStd - (1 / 2 + 0) / 2) < 1e-8);
  t.true(Math.abs(s.normRatio - 1 / Math.sqrt(8)) < 1e-12);
  t.throws(() => gradientSpread([Float32Array.from([1])]), { instanceOf: VarianceError });
  await t.throwsAsync(() => metaGradientVariance({ ...tiny, batches: 1 }), { instanceOf: VarianceError });
});
