/**
 * The trainer's numbers pinned, for every algorithm: one iteration of a tiny deterministic run (point-1d,
 * the two-parameter linear Gaussian policy, 2 tasks × 3 trajectories × 5 steps, fixed seed) against an
 * independent float64 model of the same iteration (test/helpers/linear-gaussian-model.ts: closed-form
 * scores and Hessians of the linear policy, no tfjs, no compiler).
 *
 * What is pinned, and how it is made independent:
 *   - the average return at each level: from the trajectories; the post-update ones are sampled here
 *     with the model's own adapted parameters θ′ = θ + α∇L_in(θ), so they agree with the trainer's only
 *     if its inner step does;
 *   - the meta-objective before the outer step (stats.objective); E-MAML's score term as released (its
 *     weight the task's post-update mean reward normalised over every task's post-update rewards);
 *   - the parameters after the outer step (a checksum: each of w and b), from the model's meta-gradient
 *     (chain rule through θ′(θ), E-MAML's score term, ProMP's five clipped steps with the KL penalty,
 *     TRPO's natural step and line search) and its own Adam / TRPO arithmetic;
 *   - TRPO: the accepted step's KL and the line-search fraction.
 * Taken from the library: the trajectories themselves (the sampler, driven with the iteration's
 * documented seeds), the task draw, and the linear feature baseline's fit (tested on its own).
 * Adam starts from a warm state (1000 steps in, m = 0, v = 1) so that its step is proportional to the
 * meta-gradient rather than ≈ lr·sign(g), which would pin only signs.
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { point1d, POINT_1D, type AnyTaskDistribution } from '../src/envs/index.ts';
import { disposeParams } from '../src/meta/algorithms.ts';
import type { AlgorithmName } from '../src/meta/algorithm-names.ts';
import { resolveConfig, type TrainConfig } from '../src/meta/config.ts';
import { makeTrainer, runIteration, type IterationResult } from '../src/meta/iteration.ts';
import { adam, type AdamState } from '../src/meta/optimizers.ts';
import { linearGaussianPolicy } from '../src/meta/policy.ts';
import type { Trajectories } from '../src/meta/sampler.ts';
import { mixSeeds, seededUniform } from '../src/random.ts';
import type { Params } from '../src/surrogates/batch.ts';
import {
  adamStep,
  creditOf,
  meanKl,
  postReturn,
  rowsOf,
  solve2,
  surrogateAt,
  trajectoryScore,
  transposeVec,
  type Credit,
  type Rows,
  type Surrogate,
  type Vec,
} from './helpers/linear-gaussian-model.ts';

test.before(async () => {
  await selectBackend();
});

const env: AnyTaskDistribution = point1d;
const logStd = -1;
const model = { sigma: Math.exp(logStd) };
const policy = linearGaussianPolicy({ observationDim: 1, actionDim: 1, logStd, low: -POINT_1D.maxAction, high: POINT_1D.maxAction });
const theta0: Vec = [0.1, 0.3];
const iteration = 2;

/** Each algorithm as the paper and the README describe it (written here, not read from algorithms.ts). */
const recipes: Record<AlgorithmName, { inner: Surrogate; outer: Surrogate; formulation: 'I' | 'II' | 'naive'; optimizer: 'adam' | 'promp' | 'trpo'; credit: Credit['kind'] }> = {
  promp: { inner: 'lvc-ratio', outer: 'clipped-ratio', formulation: 'I', optimizer: 'promp', credit: 'advantages' },
  'maml-trpo': { inner: 'pgt', outer: 'lvc-ratio', formulation: 'naive', optimizer: 'trpo', credit: 'advantages' },
  'maml-vpg': { inner: 'pgt', outer: 'lvc-ratio', formulation: 'naive', optimizer: 'adam', credit: 'advantages' },
  'emaml-trpo': { inner: 'pgt', outer: 'lvc-ratio', formulation: 'II', optimizer: 'trpo', credit: 'advantages' },
  'emaml-vpg': { inner: 'pgt', outer: 'lvc-ratio', formulation: 'II', optimizer: 'adam', credit: 'advantages' },
  'lvc-vpg': { inner: 'lvc-ratio', outer: 'lvc-ratio', formulation: 'I', optimizer: 'adam', credit: 'advantages' },
  'dice-vpg': { inner: 'dice-baseline', outer: 'dice-baseline', formulation: 'I', optimizer: 'adam', credit: 'costs' },
  tmaml: { inner: 'tmaml', outer: 'tmaml', formulation: 'I', optimizer: 'adam', credit: 'costs' },
  // The released DiCE runs: DICEMAML (DiCE on adjusted rewards at both levels) and VPG_DICE (DiCE inner, VPG outer).
  'dice-maml': { inner: 'dice', outer: 'dice', formulation: 'I', optimizer: 'adam', credit: 'adjusted' },
  'vpg-dice': { inner: 'dice', outer: 'lvc-ratio', formulation: 'I', optimizer: 'adam', credit: 'adjusted' },
};

const configFor = (algo: AlgorithmName): TrainConfig =>
  resolveConfig({
    algo,
    env: 'point-1d',
    seed: 11,
    tasksPerIteration: 2,
    trajectoriesPerTask: 3,
    horizon: 5,
    adaptationSteps: 1,
    innerStepSize: 0.3,
    outerLearningRate: 0.01,
    discount: 0.99,
    gaeLambda: 1,
    klPenalty: 0.5,
  });

const paramsOf = (th: Vec): Params => ({ W0: tf.tensor2d([[th[0]]]), b0: tf.tensor1d([th[1]]) });
const warmState = (): AdamState => ({ step: 1000, m: { W0: tf.zeros([1, 1]), b0: tf.zeros([1]) }, v: { W0: tf.ones([1, 1]), b0: tf.ones([1]) } });
const meanOf = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const average = (trs: readonly Trajectories[]) => meanOf(trs.map((tr) => Array.from(tr.rewards).reduce((a, b) => a + b, 0) / tr.n));

/** The model's iteration: levels from the sampler, everything else in float64. */
const modelIteration = async (algo: AlgorithmName) => {
  const config = configFor(algo);
  const recipe = recipes[algo];
  const trainer = makeTrainer(config, env, policy);
  const tasks = env.sampleTasks(seededUniform(mixSeeds(config.seed, iteration, 0)), config.tasksPerIteration);
  const sample = async (params: Vec[], level: number) => {
    const tensors = params.map(paramsOf);
    try {
      return await trainer.sampler.sample({ tasks, params: tensors, perGroup: config.trajectoriesPerTask, horizon: 5, seed: mixSeeds(config.seed, iteration, 1 + level) });
    } finally {
      tensors.forEach(disposeParams);
    }
  };
  const pre = await sample(tasks.map(() => theta0), 0);
  const preRows = pre.map(rowsOf);
  const preCredit = preRows.map((rows) => creditOf(rows, recipe.credit, config.discount));
  const alpha = config.innerStepSize;
  const adaptAt = (th: Vec, i: number): { adapted: Vec; jacobian: [[number, number], [number, number]] } => {
    const inner = surrogateAt(model, recipe.inner, th, preRows[i]!, preCredit[i]!);
    return {
      adapted: [th[0] + alpha * inner.g[0], th[1] + alpha * inner.g[1]],
      jacobian: [
        [1 + alpha * inner.h[0][0], alpha * inner.h[0][1]],
        [alpha * inner.h[1][0], 1 + alpha * inner.h[1][1]],
      ],
    };
  };
  const adapted = tasks.map((_, i) => adaptAt(theta0, i).adapted);
  const post = await sample(adapted, 1);
  const postRows = post.map(rowsOf);
  const postCredit = postRows.map((rows) => creditOf(rows, recipe.credit, config.discount));

  // E-MAML as released: the score term's weight is the task's mean post-update reward, normalised by
  // the mean and population std of every task's post-update rewards (meta_sample_processor.py L40-44).
  const allPostRewards = postRows.flatMap((rows) => rows.r.flat());
  const postMean = meanOf(allPostRewards);
  const postStd = Math.sqrt(meanOf(allPostRewards.map((r) => (r - postMean) ** 2)));
  /** The meta-objective of task i at θ (maximised) and its gradient. */
  const metaAt = (th: Vec, i: number): { value: number; g: Vec } => {
    const { adapted: a, jacobian } = adaptAt(th, i);
    const out = surrogateAt(model, recipe.outer, a, postRows[i]!, postCredit[i]!, config.clip);
    let value = out.value;
    let g = transposeVec(jacobian, out.g);
    if (recipe.formulation === 'II') {
      const R = (postReturn(postRows[i]!) - postMean) / (postStd + 1e-8);
      const s = trajectoryScore(model, th, preRows[i]!);
      value += s.value * R;
      g = [g[0] + s.g[0] * R, g[1] + s.g[1] * R];
    }
    return { value, g };
  };
  const meanMeta = (th: Vec) => {
    const parts = tasks.map((_, i) => metaAt(th, i));
    return { value: meanOf(parts.map((p) => p.value)), g: [meanOf(parts.map((p) => p.g[0])), meanOf(parts.map((p) => p.g[1]))] as Vec };
  };

  const objective = meanMeta(theta0).value;
  let after: Vec;
  let kl: number | undefined;
  let fraction: number | undefined;
  if (recipe.optimizer === 'trpo') {
    const G = meanMeta(theta0).g;
    // The KL's Hessian at θ_old: mean over tasks of Jᵀ F J, F = mean over D′ steps of φφᵀ/σ².
    const fisher: [[number, number], [number, number]] = [
      [0, 0],
      [0, 0],
    ];
    tasks.forEach((_, i) => {
      const { jacobian: J } = adaptAt(theta0, i);
      const rows = postRows[i]!;
      const F = [
        [0, 0],
        [0, 0],
      ];
      for (const x of rows.x.flat()) {
        const phi = [x, 1];
        for (let r = 0; r < 2; r++) for (let q = 0; q < 2; q++) F[r]![q]! += (phi[r]! * phi[q]!) / model.sigma ** 2 / (rows.n * rows.T);
      }
      for (let r = 0; r < 2; r++)
        for (let q = 0; q < 2; q++)
          for (let k = 0; k < 2; k++) for (let l = 0; l < 2; l++) fisher[r]![q]! += (J[k]![r]! * F[k]![l]! * J[l]![q]!) / tasks.length;
    });
    const damped: [[number, number], [number, number]] = [
      [fisher[0][0] + config.cgDamping, fisher[0][1]],
      [fisher[1][0], fisher[1][1] + config.cgDamping],
    ];
    const d = solve2(damped, G);
    const curvature = d[0] * (damped[0][0] * d[0] + damped[0][1] * d[1]) + d[1] * (damped[1][0] * d[0] + damped[1][1] * d[1]);
    const full: Vec = [d[0] * Math.sqrt((2 * config.maxKl) / curvature), d[1] * Math.sqrt((2 * config.maxKl) / curvature)];
    const adaptedOld = tasks.map((_, i) => adaptAt(theta0, i).adapted);
    after = theta0;
    for (let k = 0; k < config.maxBacktracks; k++) {
      const f = config.backtrackRatio ** k;
      const x: Vec = [theta0[0] + f * full[0], theta0[1] + f * full[1]];
      if (!(-meanMeta(x).value < -objective)) continue;
      const c = meanOf(tasks.map((_, i) => meanKl(model, adaptedOld[i]!, adaptAt(x, i).adapted, postRows[i]!).value));
      if (!(c <= config.maxKl)) continue;
      after = x;
      kl = c;
      fraction = f;
      break;
    }
  } else {
    let state = { step: 1000, m: [0, 0] as Vec, v: [1, 1] as Vec };
    let th = theta0;
    const steps = recipe.optimizer === 'promp' ? config.prompSteps : 1;
    for (let n = 0; n < steps; n++) {
      const meta = meanMeta(th);
      let grad: Vec = [-meta.g[0], -meta.g[1]];
      if (recipe.optimizer === 'promp') {
        const penalty = preRows.map((rows) => meanKl(model, theta0, th, rows).g);
        grad = [grad[0] + config.klPenalty * meanOf(penalty.map((p) => p[0])), grad[1] + config.klPenalty * meanOf(penalty.map((p) => p[1]))];
      }
      const next = adamStep(th, grad, state, config.outerLearningRate);
      th = next.params;
      state = next.state;
    }
    after = th;
  }
  return { pre, post, adapted, objective, after, kl, fraction };
};

const close = (a: number, b: number, rel: number, abs = 0) => Math.abs(a - b) <= rel * Math.abs(b) + abs;

for (const algo of Object.keys(recipes) as AlgorithmName[]) {
  test(`${algo}: the first iteration's returns, objective and parameters are those of an independent float64 model`, async (t) => {
    const expected = await modelIteration(algo);
    const trainer = makeTrainer(configFor(algo), env, policy);
    const params = paramsOf(theta0);
    const state = warmState();
    let result: IterationResult | undefined;
    try {
      result = await runIteration(trainer, params, recipes[algo].optimizer === 'trpo' ? undefined : state, iteration);
      const { stats } = result;
      t.is(stats.timesteps, 2 * 2 * 3 * 5);
      t.true(close(stats.averageReturn[0]!, average(expected.pre), 1e-12), `pre-update return ${stats.averageReturn[0]} vs ${average(expected.pre)}`);
      // The post-update return was sampled with the model's θ′: equal only if the inner steps agree.
      t.true(close(stats.averageReturn[1]!, average(expected.post), 1e-5), `post-update return ${stats.averageReturn[1]} vs ${average(expected.post)}`);
      t.true(close(stats.objective, expected.objective, 1e-4, 1e-6), `objective ${stats.objective} vs ${expected.objective}`);
      const after: Vec = [result.params.W0!.dataSync()[0]!, result.params.b0!.dataSync()[0]!];
      const moved: Vec = [after[0] - theta0[0], after[1] - theta0[1]];
      const want: Vec = [expected.after[0] - theta0[0], expected.after[1] - theta0[1]];
      t.true(Math.hypot(...want) > 1e-4, `the model's update is not negligible: ${want}`);
      for (const k of [0, 1] as const) {
        t.true(close(moved[k], want[k], 2e-3, 2e-7), `${k === 0 ? 'w' : 'b'} moved by ${moved[k]}, the model says ${want[k]}`);
      }
      if (recipes[algo].optimizer === 'trpo') {
        t.not(expected.fraction, undefined, 'the model accepts a step');
        t.is(stats.lineSearch, `accepted ${expected.fraction!.toPrecision(3)}`);
        t.true(close(stats.kl!, expected.kl!, 1e-3), `KL ${stats.kl} vs ${expected.kl}`);
      }
    } finally {
      disposeParams(params);
      adam().dispose(state);
      if (result !== undefined) {
        disposeParams(result.params);
        if (result.optimizerState !== undefined && result.optimizerState !== state) adam().dispose(result.optimizerState);
      }
    }
  });
}
