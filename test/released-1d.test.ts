/**
 * The released Figure 6 set-up: the environment against hand-computed values of the released
 * formulas (collect_samples in point_1d_hand_grads.py), the squared-feature policy, and — the strong
 * check — the meta-gradients of formulations I and II from magicbox's compiled meta-objectives against
 * the released closed forms (Algo.train's 'dice' and 'exploration'), computed here independently in
 * float64 from the same trajectories.
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { point1dReleased, point1dReleasedTasks, POINT_1D_RELEASED } from '../src/envs/point-1d-released.ts';
import type { LevelData } from '../src/meta/meta-objective.ts';
import type { Trajectories } from '../src/meta/sampler.ts';
import { seededNormal, seededUniform } from '../src/random.ts';
import { released1dIteration, released1dMetaGradient, released1dSetup, wholeReturnBatch } from '../src/reproduce/released-1d.ts';
import { paramsTheta, thetaParams } from '../src/reproduce/squared-feature-policy.ts';
import { disposeBatch } from '../src/meta/sampler.ts';

test.before(async () => {
  await selectBackend();
});

const close = (actual: number, expected: number, rel = 2e-4, abs = 1e-5): boolean => Math.abs(actual - expected) <= abs + rel * Math.abs(expected);

test('point-1d-released: reset draws s₀ = −2 + 4u; a step clips the action to [−2, 2], makes it the state, rewards exp(−0.1(a − g)²)', (t) => {
  const env = point1dReleased.make([{ goal: 1 }, { goal: -1 }, { goal: 1 }]);
  const draws = [0, 0.25, 0.875];
  const s0 = env.reset(() => draws.shift()!);
  t.deepEqual(Array.from(s0), [-2, -1, 1.5]);
  const step = env.step(Float32Array.from([3.5, -0.5, -7]));
  t.deepEqual(Array.from(step.observations), [2, -0.5, -2]);
  // hand values: exp(−0.1·(2 − 1)²), exp(−0.1·(−0.5 + 1)²), exp(−0.1·(−2 − 1)²)
  const expected = [Math.exp(-0.1), Math.exp(-0.025), Math.exp(-0.9)];
  step.rewards.forEach((r, i) => t.true(close(r, expected[i]!, 1e-6), `reward ${i}: ${r} vs ${expected[i]}`));
  t.deepEqual(Array.from(step.dones), [0, 0, 0]);
  // the next step starts from the clipped action, not from s + a
  const second = env.step(Float32Array.from([0, 0, 0]));
  t.deepEqual(Array.from(second.observations), [0, 0, 0]);
  t.true(close(second.rewards[1]!, Math.exp(-0.1), 1e-6));
  t.throws(() => env.step(Float32Array.from([NaN, 0, 0])), { message: /point-1d-released: action NaN at row 0/ });
  t.is(point1dReleased.horizon, 5);
  t.is(point1dReleased.adaptationSteps, 1);
  t.deepEqual(point1dReleasedTasks(2).map((task) => task.goal), [-1, 1, -1, 1]);
});

test('the squared-feature policy: mean θ₀s² + θ₁, std 1, draws clipped to ±2, log-density at the clipped action', (t) => {
  const { policy } = released1dSetup(0.1);
  const params = thetaParams([0.5, -0.25]);
  const s = Float32Array.from([2, -1, 0]);
  const normal = seededNormal(3);
  const noise = [normal(), normal(), normal()];
  const replay = [...noise];
  const a = policy.sample(params, s, 3, { normal: () => replay.shift()!, uniform: () => 0.5 });
  const means = [0.5 * 4 - 0.25, 0.5 - 0.25, -0.25];
  a.forEach((x, i) => t.true(close(x, Math.min(2, Math.max(-2, means[i]! + noise[i]!)), 1e-6), `draw ${i}`));
  // a draw beyond the bound is stored clipped
  const big = policy.sample(params, s, 3, { normal: () => 10, uniform: () => 0.5 });
  t.deepEqual(Array.from(big), [2, 2, 2]);
  const lp = tf.tidy(() => Array.from(policy.logProb(params, tf.tensor2d(s, [3, 1]), tf.tensor2d(Float32Array.from([2, 0, 1]), [3, 1])).dataSync()));
  const hand = [2, 0, 1].map((x, i) => -0.5 * (x - means[i]!) ** 2 - 0.5 * Math.log(2 * Math.PI));
  lp.forEach((v, i) => t.true(close(v, hand[i]!), `log π ${i}: ${v} vs ${hand[i]}`));
  tf.dispose(Object.values(params));
});

// ---------------------------------------------------------------------------------------------------
// the meta-gradients against the released closed forms

const H = POINT_1D_RELEASED.horizon;

/** n trajectories of horizon H with states in [−2, 2], actions in [−2, 2] and released rewards for goal g. */
const trajectories = (n: number, goal: number, seed: number): Trajectories => {
  const u = seededUniform(seed);
  const observations = Float32Array.from({ length: n * H }, () => -2 + 4 * u());
  const actions = Float32Array.from({ length: n * H }, () => -2 + 4 * u());
  const rewards = actions.map((a) => Math.exp(-0.1 * (a - goal) ** 2));
  return { n, horizon: H, observationDim: 1, actionDim: 1, observations, actions, rewards, mask: new Float32Array(n * H).fill(1), logProbs: new Float32Array(n * H) };
};

type V = [number, number];
type M = [[number, number], [number, number]];

/** ∇_θ log π(τ_i) and ∇²_θ log π(τ_i) of the released policy, and the return R_i, per trajectory (float64). */
const handTerms = (tr: Trajectories, [t0, t1]: V): { grad: V[]; hess: M[]; ret: number[] } => {
  const grad: V[] = [];
  const hess: M[] = [];
  const ret: number[] = [];
  for (let i = 0; i < tr.n; i++) {
    let g0 = 0;
    let g1 = 0;
    let h00 = 0;
    let h01 = 0;
    let h11 = 0;
    let r = 0;
    for (let t = 0; t < tr.horizon; t++) {
      const k = i * tr.horizon + t;
      const s2 = tr.observations[k]! ** 2;
      const d = tr.actions[k]! - (t0 * s2 + t1);
      g0 += d * s2;
      g1 += d;
      h00 -= s2 * s2;
      h01 -= s2;
      h11 -= 1;
      r += tr.rewards[k]!;
    }
    grad.push([g0, g1]);
    hess.push([[h00, h01], [h01, h11]]);
    ret.push(r);
  }
  return { grad, hess, ret };
};

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const meanV = (vs: readonly V[]): V => [mean(vs.map((v) => v[0])), mean(vs.map((v) => v[1]))];
const dot = (a: V, b: V) => a[0] * b[0] + a[1] * b[1];
const mv = (m: M, v: V): V => [m[0][0] * v[0] + m[0][1] * v[1], m[1][0] * v[0] + m[1][1] * v[1]];

/** The released `Algo.train` formulas for one task (and θ′ from `Algo.adapt`). */
const releasedClosedForms = (theta: V, alpha: number, pre: Trajectories, post: Trajectories) => {
  const p = handTerms(pre, theta);
  const step = meanV(p.grad.map((g, i) => [g[0] * p.ret[i]!, g[1] * p.ret[i]!] as V));
  const adapted: V = [theta[0] + alpha * step[0], theta[1] + alpha * step[1]];
  const q = handTerms(post, adapted);
  const gPost = meanV(q.grad.map((g, j) => [g[0] * q.ret[j]!, g[1] * q.ret[j]!] as V));
  const meanHess: M = [0, 1].map((r) => [0, 1].map((c) => mean(p.hess.map((h, i) => h[r]![c]! * p.ret[i]!)))) as M;
  const hPlus: M = [[1 + alpha * meanHess[0][0], alpha * meanHess[0][1]], [alpha * meanHess[1][0], 1 + alpha * meanHess[1][1]]];
  const post_ = mv(hPlus, gPost);
  const outer = meanV(p.grad.map((g, i) => [g[0] * p.ret[i]! * dot(g, gPost), g[1] * p.ret[i]! * dot(g, gPost)] as V));
  const meanPostReturn = mean(q.ret);
  const sumGrad: V = [p.grad.reduce((a, g) => a + g[0], 0), p.grad.reduce((a, g) => a + g[1], 0)];
  return {
    adapted,
    dice: [alpha * post_[0] + alpha * outer[0], alpha * post_[1] + alpha * outer[1]] as V,
    exploration: [alpha * post_[0] + alpha * sumGrad[0] * meanPostReturn, alpha * post_[1] + alpha * sumGrad[1] * meanPostReturn] as V,
    equationI: [post_[0] + alpha * outer[0], post_[1] + alpha * outer[1]] as V,
  };
};

for (const [theta, alpha] of [
  [[0.09, 0.05], 0.1],
  [[-0.3, 0.4], 0.25],
] as const) {
  test(`compiled formulations I and II equal the released closed forms at θ = (${theta.join(', ')}), α = ${alpha}`, (t) => {
    const before = tf.memory().numTensors;
    const setup = released1dSetup(alpha);
    const pre = trajectories(6, 1, 11);
    const post = trajectories(7, 1, 12);
    const hand = releasedClosedForms([theta[0], theta[1]], alpha, pre, post);
    const params = thetaParams([theta[0], theta[1]]);
    const preData: LevelData = { batch: wholeReturnBatch(pre, setup.policy) };
    const postData: LevelData = { batch: wholeReturnBatch(post, setup.policy) };
    try {
      const adapted = tf.tidy(() => paramsTheta(setup.dice.innerStep(params, preData)));
      const adaptedII = tf.tidy(() => paramsTheta(setup.emaml.innerStep(params, preData)));
      adapted.forEach((x, i) => t.true(close(x, hand.adapted[i]!), `θ′[${i}] ${x} vs ${hand.adapted[i]}`));
      adaptedII.forEach((x, i) => t.true(close(x, hand.adapted[i]!), `θ′ (PGT) [${i}] ${x} vs ${hand.adapted[i]}`));
      const checks = [
        ['I released', released1dMetaGradient(setup, 'I', 'released', params, preData, postData), hand.dice],
        ['II released', released1dMetaGradient(setup, 'II', 'released', params, preData, postData), hand.exploration],
        ['I equation', released1dMetaGradient(setup, 'I', 'equation', params, preData, postData), hand.equationI],
      ] as const;
      for (const [what, got, want] of checks) {
        const scale = Math.hypot(want[0], want[1]);
        got.forEach((x, i) => t.true(Math.abs(x - want[i]!) <= 3e-4 * scale + 1e-6, `${what}[${i}]: compiled ${x} vs released ${want[i]}`));
      }
      // the two formulations' released gradients differ here (else the comparison above proves little)
      t.true(Math.hypot(hand.dice[0] - hand.exploration[0], hand.dice[1] - hand.exploration[1]) > 1e-2 * Math.hypot(...hand.dice));
    } finally {
      disposeBatch(preData.batch);
      disposeBatch(postData.batch);
      tf.dispose(Object.values(params));
    }
    t.is(tf.memory().numTensors, before);
  });
}

test('one released iteration: reproducible for a seed; I and II see the same pre-update data; θ moves by lr·mean gradient', (t) => {
  const setup = released1dSetup(0.1);
  const base = { setup, form: 'released' as const, tasks: point1dReleasedTasks(2), trajectoriesPerTask: 5, seed: 3, iteration: 0 };
  const before = tf.memory().numTensors;
  const a = released1dIteration([0.09, 0.05], { ...base, formulation: 'I', learningRate: 0.05 });
  const b = released1dIteration([0.09, 0.05], { ...base, formulation: 'I', learningRate: 0.05 });
  const half = released1dIteration([0.09, 0.05], { ...base, formulation: 'I', learningRate: 0.025 });
  const two = released1dIteration([0.09, 0.05], { ...base, formulation: 'II', learningRate: 0.05 });
  t.is(tf.memory().numTensors, before);
  t.deepEqual(a, b);
  t.is(a.preReturn, two.preReturn);
  t.is(a.postReturn, two.postReturn);
  // plain ascent: half the learning rate, half the step
  for (const i of [0, 1]) t.true(close(half.theta[i]! - [0.09, 0.05][i]!, (a.theta[i]! - [0.09, 0.05][i]!) / 2, 1e-5, 1e-7));
  t.notDeepEqual(a.theta, two.theta);
  t.true(a.preReturn > 0 && a.preReturn <= 5);
});
