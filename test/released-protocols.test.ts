/**
 * The released ProMP code's protocols that magicbox follows by default, each against hand-computed
 * values of the released formula:
 *   - normalize() (normalized_env.py L109-123): a_env = clip(lb + (a + 10)(ub − lb)/20, lb, ub), the
 *     default of the environments the released scripts wrapped, raw elsewhere and for older configs;
 *   - ProMP's KL penalty on every inner level's data, averaged over the levels (pro_mp.py L101, L122,
 *     L152-155), with the pre-update-only form (eq. 13) as an option;
 *   - E-MAML's score term on level 0 only, weighted by the task's normalised mean post-update reward
 *     (vpg_maml.py L134, meta_sample_processor.py L40-44);
 *   - what a ProMP iteration logs after its outer step.
 * The policy is the fixed-σ linear Gaussian on point-1d, so every mean and KL is written out here.
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { environmentActions, policyActionSpace } from '../src/envs/action-normalization.ts';
import { environmentDescriptor, point1d, pointCorners, type AnyTaskDistribution } from '../src/envs/index.ts';
import { disposeParams } from '../src/meta/algorithms.ts';
import { resolveConfig, type TrainConfigPatch } from '../src/meta/config.ts';
import {
  disposeLevels,
  emamlScoreWeights,
  makeTrainer,
  prompKl,
  prompTaskDiagnostics,
  runIteration,
  sampleLevels,
  type Trainer,
} from '../src/meta/iteration.ts';
import { adam } from '../src/meta/optimizers.ts';
import type { LevelData } from '../src/meta/meta-objective.ts';
import { linearGaussianPolicy, mlpPolicyFor } from '../src/meta/policy.ts';
import { completeConfig, storedConfigPatch } from '../src/meta/run-config.ts';
import { sampleGroup, type Trajectories } from '../src/meta/sampler.ts';
import type { Params } from '../src/surrogates/batch.ts';

test.before(async () => {
  await selectBackend();
});

// ---------------------------------------------------------------------------------------------------
// action normalisation

test('normalize(): the policy’s action maps onto the bounds by the released formula, then is clipped', (t) => {
  const released = (a: number, lb: number, ub: number) => Math.min(ub, Math.max(lb, lb + ((a + 10) * (ub - lb)) / (2 * 10)));
  const corners = pointCorners.action;
  const box = policyActionSpace(corners, 'normalized');
  t.deepEqual(box, { kind: 'continuous', dim: 2, low: -10, high: 10 });
  const actions = Float32Array.from([0, 3, -7.5, 10, 12, -15, 1e-3, -0.5]);
  const mapped = environmentActions(box, corners, actions);
  // point-corners' bounds ±0.2: the map is 0.02·a, clipped at ±0.2.
  [0, 0.06, -0.15, 0.2, 0.2, -0.2, 2e-5, -0.01].forEach((want, k) => t.true(Math.abs(mapped[k]! - want) < 1e-7, `0.02·${actions[k]} clipped: ${mapped[k]} vs ${want}`));
  actions.forEach((a, k) => t.true(Math.abs(mapped[k]! - released(a, -0.2, 0.2)) < 1e-7, `a = ${a}`));
  // Asymmetric bounds: 0 maps to the middle, ±10 to the ends.
  const skew = { kind: 'continuous', dim: 1, low: -1, high: 3 } as const;
  const skewed = environmentActions(policyActionSpace(skew, 'normalized'), skew, Float32Array.from([0, 10, -10, 5, -2.5]));
  t.deepEqual(Array.from(skewed), [1, 3, -1, 2, 0.5]);
  [0, 10, -10, 5, -2.5].forEach((a, k) => t.is(skewed[k], released(a, -1, 3)));
  // raw: the same array, untouched; a non-finite action is passed on for the environment to report.
  const raw = Float32Array.from([5, -5]);
  t.is(environmentActions(policyActionSpace(corners, 'raw'), corners, raw), raw);
  t.true(Number.isNaN(environmentActions(box, corners, Float32Array.from([Number.NaN, 0]))[0]!));
  t.is(environmentActions(box, corners, Float32Array.from([Number.POSITIVE_INFINITY, 0]))[0], Number.POSITIVE_INFINITY);
});

test('normalize() in sampling: point-corners moves by clip(0.02·a), the trajectories keep the unclipped draw a', (t) => {
  const policy = mlpPolicyFor(2, policyActionSpace(pointCorners.action, 'normalized'), { hidden: [], initLogStd: Math.log(8) });
  const params = policy.init(4);
  try {
    const tr = sampleGroup({ distribution: pointCorners, policy, task: pointCorners.sampleTasks(() => 0.9, 1)[0]!, params, perGroup: 3, horizon: 6, seed: 9, group: 0 });
    let clipped = 0;
    let moved = 0;
    for (let i = 0; i < tr.n; i++) {
      for (let s = 0; s + 1 < tr.horizon; s++) {
        for (let j = 0; j < 2; j++) {
          const a = tr.actions[(i * tr.horizon + s) * 2 + j]!;
          const step = tr.observations[(i * tr.horizon + s + 1) * 2 + j]! - tr.observations[(i * tr.horizon + s) * 2 + j]!;
          const want = Math.min(0.2, Math.max(-0.2, 0.02 * a));
          t.true(Math.abs(step - want) < 1e-6, `row ${i} step ${s} coordinate ${j}: moved ${step}, 0.02·a clipped is ${want}`);
          if (Math.abs(a) > 10) clipped++;
          else moved++;
        }
      }
    }
    // std 8 in the policy's units: both regimes occur, so the clip and the linear part are both checked.
    t.true(clipped > 0 && moved > 0, `${clipped} clipped, ${moved} inside`);
  } finally {
    disposeParams(params);
  }
});

test('action normalisation defaults: normalised where the released scripts wrapped the environment, raw elsewhere and for older stored configs', (t) => {
  const complete = (patch: TrainConfigPatch) => completeConfig(resolveConfig(patch)).actionNormalization;
  t.is(complete({ env: 'point-corners' }), 'normalized');
  t.is(complete({ env: 'half-cheetah-fwd-back' }), 'normalized');
  t.is(complete({ env: 'humanoid-rand-dir' }), 'normalized');
  t.is(complete({ env: 'nav-2d' }), 'raw');
  t.is(complete({ env: 'point-1d' }), 'raw');
  t.is(complete({ env: 'point-corners', actionNormalization: 'raw' }), 'raw');
  t.is(environmentDescriptor('ant-rand-goal').actionNormalization, 'normalized');
  // A config written before the options existed is read as what it was trained with.
  const old = { env: 'point-corners', algo: 'promp' } as const;
  const restored = completeConfig(resolveConfig(storedConfigPatch(old, { ...old })));
  t.is(restored.actionNormalization, 'raw');
  t.is(restored.prompKlLevels, 'pre-update');
  t.is(restored.emamlScore, 'every-level');
  const current = completeConfig(resolveConfig({ env: 'point-corners' }));
  const stored = JSON.parse(JSON.stringify(current)) as TrainConfigPatch & Record<string, unknown>;
  t.deepEqual(completeConfig(resolveConfig(storedConfigPatch(stored, stored))), current, 'a current config reads back unchanged');
});

// ---------------------------------------------------------------------------------------------------
// ProMP's KL penalty and E-MAML's score term with k = 2 inner steps

const logStd = -0.5;
const sigma = Math.exp(logStd);
const env: AnyTaskDistribution = point1d;
const policy = linearGaussianPolicy({ observationDim: 1, actionDim: 1, logStd, low: -0.2, high: 0.2 });
const paramsOf = (w: number, b: number): Params => ({ W0: tf.tensor2d([[w]]), b0: tf.tensor1d([b]) });
const read = (p: Params): [number, number] => [p.W0!.dataSync()[0]!, p.b0!.dataSync()[0]!];

const twoStepTrainer = (patch: TrainConfigPatch): Trainer =>
  makeTrainer(
    resolveConfig({ env: 'point-1d', seed: 5, tasksPerIteration: 2, trajectoriesPerTask: 4, horizon: 6, adaptationSteps: 2, innerStepSize: 0.4, ...patch }),
    env,
    policy,
  );

/** Mean over the trajectories' real steps of KL(N(μ_P(x), σ²) ‖ N(μ_Q(x), σ²)) = (μ_P − μ_Q)²/(2σ²), μ = w·x + b. */
const handKl = (tr: Trajectories, pParams: [number, number], qParams: [number, number]): number => {
  let sum = 0;
  let count = 0;
  for (let k = 0; k < tr.mask.length; k++) {
    if (tr.mask[k] === 0) continue;
    const x = tr.observations[k]!;
    const gap = pParams[0] * x + pParams[1] - (qParams[0] * x + qParams[1]);
    sum += (gap * gap) / (2 * sigma * sigma);
    count++;
  }
  return sum / count;
};

/** Mean over real steps of log N(a; w·x + b, σ²). */
const handMeanLogProb = (tr: Trajectories, th: [number, number]): number => {
  let sum = 0;
  let count = 0;
  for (let k = 0; k < tr.mask.length; k++) {
    if (tr.mask[k] === 0) continue;
    const z = (tr.actions[k]! - (th[0] * tr.observations[k]! + th[1])) / sigma;
    sum += -0.5 * z * z - Math.log(sigma) - 0.5 * Math.log(2 * Math.PI);
    count++;
  }
  return sum / count;
};

/** The meta-objective on the policy's named parameters (the trainer's takes the graph's: `parameters`). */
const adaptNamed = (trainer: Trainer, p: Params, pre: readonly LevelData[]): Params[] =>
  trainer.meta.adapt(trainer.parameters.toGraph(p), pre).map(trainer.parameters.fromGraph);
const surrogateNamed = (trainer: Trainer, p: Params, pre: readonly LevelData[], post: LevelData): tf.Scalar =>
  trainer.meta.surrogate(trainer.parameters.toGraph(p), pre, post) as tf.Scalar;

test('ProMP with 2 inner steps: the KL penalty is the mean over levels of KL(π_θj_old ‖ π_θj(θ)) on D_j (released), or level 0’s alone (eq. 13)', async (t) => {
  const every = twoStepTrainer({ algo: 'promp' });
  const preOnly = twoStepTrainer({ algo: 'promp', prompKlLevels: 'pre-update' });
  const start = paramsOf(0.2, -0.1);
  const moved = paramsOf(0.35, 0.05);
  const sampled = await sampleLevels(every, start, 0);
  try {
    for (let i = 0; i < sampled.tasks.length; i++) {
      const pre = sampled.levels.slice(0, 2).map((level) => level[i]!);
      // The level-1 parameters: those that sampled D₁ (θo's adaptation) and θ's own adaptation.
      const old1 = read(sampled.levelParams[1]![i]!);
      const new1 = tf.tidy(() => read(adaptNamed(every, moved, pre)[0]!));
      const kl0 = handKl(sampled.trajectories[0]![i]!, [0.2, -0.1], [0.35, 0.05]);
      const kl1 = handKl(sampled.trajectories[1]![i]!, old1, new1);
      t.true(Math.abs(kl1 - kl0) > 0.1 * kl0, `the levels' KLs differ (${kl0} vs ${kl1}), so averaging is visible`);
      const got = tf.tidy(() => prompKl(every, start, pre, moved).dataSync()[0]!);
      t.true(Math.abs(got - (kl0 + kl1) / 2) < 1e-5 * (kl0 + kl1), `task ${i}: ${got} vs (${kl0} + ${kl1}) / 2`);
      const got0 = tf.tidy(() => prompKl(preOnly, start, pre, moved).dataSync()[0]!);
      t.true(Math.abs(got0 - kl0) < 1e-5 * kl0, `task ${i}, pre-update only: ${got0} vs ${kl0}`);
      t.true(tf.tidy(() => prompKl(every, start, pre, start).dataSync()[0]!) < 1e-10, 'zero at θ = θo');
    }
  } finally {
    disposeLevels(sampled);
    disposeParams(start);
    disposeParams(moved);
  }
});

test('E-MAML with 2 inner steps: the released score term is mean(log π_θ on D₀) × the normalised mean post-update reward, level 0 only', async (t) => {
  const released = twoStepTrainer({ algo: 'emaml-vpg' });
  const everyLevel = twoStepTrainer({ algo: 'emaml-vpg', emamlScore: 'every-level' });
  const theta = paramsOf(0.2, -0.1);
  const sampled = await sampleLevels(released, theta, 0);
  try {
    const post = sampled.trajectories[2]!;
    // The weights by hand: each task's mean reward against every task's rewards (population std).
    const all = post.flatMap((tr) => Array.from(tr.rewards));
    const mean = all.reduce((a, b) => a + b, 0) / all.length;
    const std = Math.sqrt(all.reduce((a, b) => a + (b - mean) ** 2, 0) / all.length);
    const weights = emamlScoreWeights(post);
    post.forEach((tr, i) => {
      const own = Array.from(tr.rewards).reduce((a, b) => a + b, 0) / tr.rewards.length;
      t.true(Math.abs(weights[i]! - (own - mean) / (std + 1e-8)) < 1e-6, `task ${i}: weight ${weights[i]}`);
    });
    t.true(Math.abs(weights.reduce((a, b) => a + b, 0)) < 1e-6, 'equal-sized tasks: the weights sum to 0');
    for (let i = 0; i < sampled.tasks.length; i++) {
      const pre = sampled.levels.slice(0, 2).map((level) => level[i]!);
      const withWeight = { ...sampled.levels[2]![i]!, scoreWeight: weights[i]! };
      const values = tf.tidy(() => {
        const adapted = adaptNamed(released, theta, pre);
        return {
          released: surrogateNamed(released, theta, pre, withWeight).dataSync()[0]!,
          everyLevel: surrogateNamed(everyLevel, theta, pre, withWeight).dataSync()[0]!,
          theta1: read(adapted[0]!),
        };
      });
      // The difference between the two is exactly the level-1 term the released code leaves out.
      const level1 = handMeanLogProb(sampled.trajectories[1]![i]!, values.theta1) * weights[i]!;
      t.true(Math.abs(level1) > 1e-3, `the level-1 term is not negligible (${level1})`);
      t.true(Math.abs(values.everyLevel - values.released - level1) < 1e-4 * Math.max(1, Math.abs(level1)), `task ${i}: every-level − released = ${values.everyLevel - values.released}, level-1 term ${level1}`);
      // And the released one is the outer objective plus the level-0 term by hand.
      const level0 = handMeanLogProb(sampled.trajectories[0]![i]!, [0.2, -0.1]) * weights[i]!;
      const outerOnly = tf.tidy(() => surrogateNamed(twoStepTrainer({ algo: 'maml-vpg' }), theta, pre, withWeight).dataSync()[0]!);
      t.true(Math.abs(values.released - outerOnly - level0) < 1e-4 * Math.max(1, Math.abs(level0)), `task ${i}: released − outer = ${values.released - outerOnly}, level-0 term ${level0}`);
    }
  } finally {
    disposeLevels(sampled);
    disposeParams(theta);
  }
});

test('ProMP logs its outer step: the objective after it (the one before is ~0), the penalty’s KL and the clip fraction, each as the diagnostics compute them', async (t) => {
  const trainer = twoStepTrainer({ algo: 'promp', outerLearningRate: 0.05, klPenalty: 0.1 });
  const start = paramsOf(0.2, -0.1);
  const result = await runIteration(trainer, start, undefined, 0);
  try {
    const s = result.stats;
    t.true(Math.abs(s.objective) < 1e-6, `the objective at θo is ~0 by construction: ${s.objective}`);
    t.true(s.objectiveAfter! > 1e-3, `the outer steps increased it: ${s.objectiveAfter}`);
    t.true(s.kl! > 0, `KL after the steps: ${s.kl}`);
    t.true(s.clipFraction! >= 0 && s.clipFraction! <= 1);
    // The same numbers from the diagnostics on the iteration's own data (resampled: same seeds).
    const sampled = await sampleLevels(trainer, start, 0);
    try {
      const per = sampled.tasks.map((_, i) =>
        prompTaskDiagnostics(trainer, start, sampled.levels.slice(0, 2).map((l) => l[i]!), sampled.levels[2]![i]!, result.params),
      );
      const mean = (m: number) => per.reduce((a, d) => a + d[m]!, 0) / per.length;
      t.true(Math.abs(mean(0) - s.objectiveAfter!) < 1e-6);
      t.true(Math.abs(mean(1) - s.kl!) < 1e-9);
      t.true(Math.abs(mean(2) - s.clipFraction!) < 1e-9);
      // The clip fraction by hand: post-update ratios π_θ′/π_θ′_old outside [0.7, 1.3].
      let outside = 0;
      let steps = 0;
      sampled.tasks.forEach((_, i) => {
        const pre = sampled.levels.slice(0, 2).map((l) => l[i]!);
        const adapted = tf.tidy(() => read(adaptNamed(trainer, result.params, pre).at(-1)!));
        const old = read(sampled.levelParams[2]![i]!);
        const tr = sampled.trajectories[2]![i]!;
        for (let k = 0; k < tr.mask.length; k++) {
          const x = tr.observations[k]!;
          const a = tr.actions[k]!;
          const logRatio = (-((a - (adapted[0] * x + adapted[1])) ** 2) + (a - (old[0] * x + old[1])) ** 2) / (2 * sigma * sigma);
          if (Math.abs(Math.exp(logRatio) - 1) > 0.3) outside++;
          steps++;
        }
      });
      t.true(Math.abs(mean(2) - outside / steps) < 1e-9 + 1 / steps, `clip fraction ${mean(2)} vs by hand ${outside / steps}`);
    } finally {
      disposeLevels(sampled);
    }
  } finally {
    disposeParams(start);
    disposeParams(result.params);
    if (result.optimizerState !== undefined) adam().dispose(result.optimizerState);
  }
});
