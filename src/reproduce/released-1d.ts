/**
 * Formulations I and II on the released Figure 6 set-up (src/envs/point-1d-released.ts with the
 * squared-feature policy), their meta-gradients taken from magicbox's compiled meta-objectives — not
 * from a hand derivation — and one iteration of the released training loop (plain gradient ascent).
 *
 * The released estimator credits every action of a trajectory with the trajectory's whole return
 * (∇log π(τ)·R(τ), no causality, no baseline). In the RL graph that is the return as one cost at the
 * trajectory's last step: the graph then says every action influences it, and the compiler's DiCE is
 * □(log π(τ))·R(τ), its PGT log π(τ)·⊥R(τ).
 *
 * The released closed forms (point_1d_hand_grads.py `Algo.train`), per task, with g = mean_j ∇log π_θ′(τ′_j)·R′_j:
 *   'dice'         α·(I + α·mean_i R_i ∇²log π(τ_i))·g  +  α·mean_i R_i ∇log π(τ_i) ∇log π(τ_i)ᵀ·g
 *   'exploration'  α·(I + α·mean_i R_i ∇²log π(τ_i))·g  +  α·Σ_i ∇log π(τ_i)·mean_j R′_j
 * The compiled meta-objectives give, with one inner step θ′ = θ + α·mean_i ∇log π(τ_i)R_i:
 *   naive MAML (PGT inner)  G_naive = (I + α·mean R∇²log π)·g
 *   formulation I (DiCE)    G_I     = G_naive + α·mean R ∇log π ∇log πᵀ·g
 *   formulation II (E-MAML) G_II    = G_naive + Σ_i ∇log π(τ_i)·mean R′
 * so the released 'dice' is α·G_naive + (G_I − G_naive) — an extra α on the post-update term, absent
 * from the paper's eq. 4 — and 'exploration' is α·G_II (the sum over τ_i is already eq. 3's). The form
 * `released` follows the code (what drew the paper's figure); `equation` is G_I and G_II as written.
 */
import * as tf from '@tensorflow/tfjs';
import { point1dReleased, POINT_1D_RELEASED, type Point1dReleasedTask } from '../envs/point-1d-released.ts';
import { metaObjective, type LevelData, type MetaObjective } from '../meta/meta-objective.ts';
import type { Policy } from '../meta/policy.ts';
import { rlGraph } from '../meta/rl-graph.ts';
import { sampleGroup, toBatch, disposeBatch, type Trajectories } from '../meta/sampler.ts';
import { mixSeeds } from '../random.ts';
import type { Batch, Params } from '../surrogates/batch.ts';
import { estimators } from '../surrogates/estimators.ts';
import { squaredFeaturePolicy, thetaParams } from './squared-feature-policy.ts';

export type Released1dFormulation = 'I' | 'II';

/** `released`: the code's formulas (extra α); `equation`: the paper's eqs. 3–4 as compiled. */
export type Released1dForm = 'released' | 'equation';

export type Theta = readonly [number, number];

export interface Released1dSetup {
  readonly policy: Policy;
  readonly innerStepSize: number;
  readonly dice: MetaObjective;
  readonly emaml: MetaObjective;
  readonly naive: MetaObjective;
}

export const released1dSetup = (innerStepSize: number): Released1dSetup => {
  const policy = squaredFeaturePolicy(POINT_1D_RELEASED.maxAction);
  // The general tfjs path: the meta-gradient differentiates log π twice.
  const graph = rlGraph(policy, point1dReleased.name, 'tfjs');
  const common = { stepSize: innerStepSize, steps: 1, outerEstimator: estimators.dice() } as const;
  return {
    policy,
    innerStepSize,
    dice: metaObjective(graph, { ...common, formulation: 'I', inner: estimators.dice() }),
    emaml: metaObjective(graph, { ...common, formulation: 'II', inner: estimators.pgt() }),
    naive: metaObjective(graph, { ...common, formulation: 'naive-maml', inner: estimators.pgt() }),
  };
};

/** The batch of trajectories with each one's whole return as its last step's cost (see the module comment). */
export const wholeReturnBatch = (tr: Trajectories, policy: Policy): Batch => {
  const rewards = new Float32Array(tr.rewards.length);
  for (let i = 0; i < tr.n; i++) {
    let total = 0;
    for (let t = 0; t < tr.horizon; t++) total += tr.rewards[i * tr.horizon + t]! * tr.mask[i * tr.horizon + t]!;
    rewards[i * tr.horizon + tr.horizon - 1] = total;
  }
  return toBatch({ ...tr, rewards }, policy);
};

const gradientOf = (meta: MetaObjective, theta: Params, pre: LevelData, post: LevelData): [number, number] =>
  tf.tidy(() => {
    const [g0, g1] = tf.grads((w: tf.Tensor, b: tf.Tensor) => meta.surrogate({ W0: w, b0: b }, [pre], post))([theta.W0!, theta.b0!]);
    return [g0!.dataSync()[0]!, g1!.dataSync()[0]!];
  });

/** One task's meta-gradient of `formulation` in `form`, from the compiled meta-objectives. */
export const released1dMetaGradient = (
  setup: Released1dSetup,
  formulation: Released1dFormulation,
  form: Released1dForm,
  theta: Params,
  pre: LevelData,
  post: LevelData,
): [number, number] => {
  const alpha = setup.innerStepSize;
  if (formulation === 'II') {
    const g = gradientOf(setup.emaml, theta, pre, post);
    return form === 'released' ? [alpha * g[0], alpha * g[1]] : g;
  }
  const full = gradientOf(setup.dice, theta, pre, post);
  if (form === 'equation') return full;
  const naive = gradientOf(setup.naive, theta, pre, post);
  return [alpha * naive[0] + full[0] - naive[0], alpha * naive[1] + full[1] - naive[1]];
};

export interface Released1dIterationOptions {
  readonly setup: Released1dSetup;
  readonly formulation: Released1dFormulation;
  readonly form: Released1dForm;
  readonly tasks: readonly Point1dReleasedTask[];
  readonly trajectoriesPerTask: number;
  readonly learningRate: number;
  readonly seed: number;
  readonly iteration: number;
}

export interface Released1dIteration {
  readonly theta: Theta;
  /** mean over tasks of the average pre-update and post-update return */
  readonly preReturn: number;
  readonly postReturn: number;
}

const averageReturn = (tr: Trajectories): number => tr.rewards.reduce((a, r) => a + r, 0) / tr.n;

/**
 * One released iteration from θ: per task, D with π_θ, θ′ = θ + α∇L_inner, D′ with π_θ′, the task's
 * meta-gradient; then θ ← θ + lr·mean over tasks (plain ascent). Sampling streams are seeded by
 * (seed, iteration, level) and the task's index, so the two formulations see the same pre-update data
 * at the same θ.
 */
export const released1dIteration = (theta: Theta, o: Released1dIterationOptions): Released1dIteration => {
  const { setup, tasks } = o;
  const meta = o.formulation === 'I' ? setup.dice : setup.emaml;
  const params = thetaParams(theta);
  let sum: [number, number] = [0, 0];
  let pre = 0;
  let post = 0;
  try {
    tasks.forEach((task, k) => {
      const sample = (p: Params, level: number) =>
        sampleGroup({
          distribution: point1dReleased,
          policy: setup.policy,
          task,
          params: p,
          perGroup: o.trajectoriesPerTask,
          horizon: POINT_1D_RELEASED.horizon,
          seed: mixSeeds(o.seed, o.iteration, level),
          group: k,
        });
      const before = sample(params, 0);
      const preData: LevelData = { batch: wholeReturnBatch(before, setup.policy) };
      const adapted = tf.tidy(() => Object.fromEntries(Object.entries(meta.innerStep(params, preData)).map(([n, v]) => [n, tf.keep(v)])));
      let postData: LevelData | undefined;
      try {
        const after = sample(adapted, 1);
        postData = { batch: wholeReturnBatch(after, setup.policy) };
        const g = released1dMetaGradient(setup, o.formulation, o.form, params, preData, postData);
        sum = [sum[0] + g[0], sum[1] + g[1]];
        pre += averageReturn(before);
        post += averageReturn(after);
      } finally {
        disposeBatch(preData.batch);
        if (postData !== undefined) disposeBatch(postData.batch);
        tf.dispose(Object.values(adapted));
      }
    });
  } finally {
    tf.dispose(Object.values(params));
  }
  const n = tasks.length;
  return {
    theta: [theta[0] + (o.learningRate * sum[0]) / n, theta[1] + (o.learningRate * sum[1]) / n],
    preReturn: pre / n,
    postReturn: post / n,
  };
};

