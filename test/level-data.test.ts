/**
 * levelData: the batch each algorithm's surrogates see for one task's trajectories. Checked entry by
 * entry against the recipe written out here in float64: discounted returns R_t = Σ γ^{t′−t} r_t′, the
 * linear feature baseline V fitted to them (src/meta/baseline.ts), advantages A = R − V (GAE with
 * λ = 1), and then either the normalised advantages (PGT / LVC algorithms) or the DiCE family's costs
 * γ^t·r_t/σ_A and baseline γ^t·V_t/σ_A. γ = 0.9 so that a discount off by one step shows as a 10% error
 * at t = 0 (and at t = 1).
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { point1d, type AnyTaskDistribution } from '../src/envs/index.ts';
import { algorithms } from '../src/meta/algorithms.ts';
import { algorithmNames } from '../src/meta/algorithm-names.ts';
import { fitLinearBaseline } from '../src/meta/baseline.ts';
import { resolveConfig } from '../src/meta/config.ts';
import { levelData, makeTrainer } from '../src/meta/iteration.ts';
import { linearGaussianPolicy } from '../src/meta/policy.ts';
import { disposeBatch, type Trajectories } from '../src/meta/sampler.ts';

test.before(async () => {
  await selectBackend();
});

const gamma = 0.9;
const n = 3;
const horizon = 4;
const lengths = [4, 4, 3];
const env: AnyTaskDistribution = point1d;
const policy = linearGaussianPolicy({ observationDim: 1, actionDim: 1 });

/** Hand-made trajectories: one ends a step early (padding after it). */
const trajectories = (): Trajectories => {
  const observations = Float32Array.from([0.5, 0.7, -0.2, 1.1, -1.3, 0.4, 0.9, -0.6, 1.7, 0.2, -0.8, 0]);
  const rewards = Float32Array.from([1.0, -0.5, 0.25, 2.0, -1.5, 0.75, 0.3, -0.1, 0.6, 1.2, -0.9, 0]);
  const mask = Float32Array.from(lengths.flatMap((len) => Array.from({ length: horizon }, (_, t) => (t < len ? 1 : 0))));
  const actions = Float32Array.from({ length: n * horizon }, (_, k) => 0.1 * ((k % 5) - 2));
  const logProbs = Float32Array.from({ length: n * horizon }, (_, k) => -1 - 0.01 * k);
  return { n, horizon, observationDim: 1, actionDim: 1, observations, actions, rewards, mask, logProbs };
};

/** The recipe, in float64 (the baseline's fit is its own module's, tested on its own). */
const expected = (tr: Trajectories) => {
  const R = new Float64Array(n * horizon);
  for (let i = 0; i < n; i++) {
    let running = 0;
    for (let t = lengths[i]! - 1; t >= 0; t--) {
      running = tr.rewards[i * horizon + t]! + gamma * running;
      R[i * horizon + t] = running;
    }
  }
  const V = fitLinearBaseline(tr.observations, Float32Array.from(R), tr.mask, n, horizon, 1).predict(tr.observations, n, horizon, tr.mask);
  const A = Array.from(R, (r, k) => (tr.mask[k] ? r - V[k]! : 0));
  const valid = A.filter((_, k) => tr.mask[k] === 1);
  const mean = valid.reduce((a, b) => a + b, 0) / valid.length;
  const std = Math.sqrt(valid.reduce((a, b) => a + (b - mean) ** 2, 0) / valid.length);
  return { V, A, mean, std };
};

/**
 * The released DiceSampleProcessor's adjusted rewards in float64: γᵗrₜ − b(t), b the least squares
 * (ridge 1e-5) of γᵗrₜ on [t/100, (t/100)², (t/100)³, 1] over the real steps, normalised over them
 * (population std + 1e-8); padding 0.
 */
const adjusted = (tr: Trajectories): number[] => {
  const y = Array.from(tr.rewards, (r, k) => (tr.mask[k] ? gamma ** (k % horizon) * r : 0));
  const phi = (t: number) => [t / 100, (t / 100) ** 2, (t / 100) ** 3, 1];
  const m = [0, 1, 2, 3].map((p) => [0, 1, 2, 3].map((q) => (p === q ? 1e-5 : 0)));
  const c = [0, 0, 0, 0];
  y.forEach((v, k) => {
    if (!tr.mask[k]) return;
    const f = phi(k % horizon);
    for (let p = 0; p < 4; p++) {
      c[p]! += f[p]! * v;
      for (let q = 0; q < 4; q++) m[p]![q]! += f[p]! * f[q]!;
    }
  });
  // Gauss-Jordan on the 4 × 4 normal equations.
  for (let col = 0; col < 4; col++) {
    const pivot = m[col]![col]!;
    for (let q = 0; q < 4; q++) m[col]![q]! /= pivot;
    c[col]! /= pivot;
    for (let row = 0; row < 4; row++) {
      if (row === col) continue;
      const f = m[row]![col]!;
      for (let q = 0; q < 4; q++) m[row]![q]! -= f * m[col]![q]!;
      c[row]! -= f * c[col]!;
    }
  }
  const delta = y.map((v, k) => (tr.mask[k] ? v - phi(k % horizon).reduce((s, f, p) => s + f * c[p]!, 0) : 0));
  const valid = delta.filter((_, k) => tr.mask[k]);
  const mu = valid.reduce((a, b) => a + b, 0) / valid.length;
  const sd = Math.sqrt(valid.reduce((a, b) => a + (b - mu) ** 2, 0) / valid.length);
  return delta.map((v, k) => (tr.mask[k] ? (v - mu) / (sd + 1e-8) : 0));
};

const near = (a: number, b: number, tol = 1e-5) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

for (const name of algorithmNames) {
  test(`levelData for ${name}: the per-step weights are the recipe's at every step, t = 0 and t = 1 included`, (t) => {
    const trainer = makeTrainer(resolveConfig({ algo: name, env: 'point-1d', discount: gamma, gaeLambda: 1 }), env, policy);
    const tr = trajectories();
    const { V, A, mean, std } = expected(tr);
    t.true(std > 0.1, 'the advantages are not degenerate');
    const data = levelData(trainer, tr);
    try {
      const steps = lengths.reduce((a, b) => a + b, 0);
      t.deepEqual(Array.from(data.weights!({}).dataSync()), new Array<number>(n).fill(Math.fround(1 / steps)), 'each trajectory weighted 1 / (real steps)');
      t.deepEqual(Array.from(data.batch.mask!.dataSync()), Array.from(tr.mask));
      t.deepEqual(Array.from(data.batch.behaviour!.a!.dataSync()), Array.from(tr.logProbs));
      const credit = algorithms[name].credit;
      if (credit === 'advantages' || credit === 'adjusted-rewards') {
        const adv = data.batch.advantages!.a!.dataSync();
        for (let k = 0; k < n * horizon; k++) {
          const want = tr.mask[k] ? (A[k]! - mean) / (std + 1e-8) : 0;
          t.true(near(adv[k]!, want), `advantage at trajectory ${Math.floor(k / horizon)}, t = ${k % horizon}: ${adv[k]} vs ${want}`);
        }
        if (credit === 'advantages') {
          t.deepEqual(Array.from(data.batch.values.r!.dataSync()), Array.from(tr.rewards), 'rewards as sampled');
        } else {
          const r = data.batch.values.r!.dataSync();
          const want = adjusted(tr);
          for (let k = 0; k < n * horizon; k++) {
            t.true(near(r[k]!, want[k]!, 1e-4), `adjusted reward at trajectory ${Math.floor(k / horizon)}, t = ${k % horizon}: ${r[k]} vs ${want[k]}`);
          }
          t.is(data.batch.baselines, undefined, 'plain DiCE: no baseline term');
        }
      } else {
        t.is(data.batch.advantages, undefined, 'the DiCE family derives its credit from the costs');
        const r = data.batch.values.r!.dataSync();
        const base = data.batch.baselines!.a!.dataSync();
        const scale = std + 1e-8;
        for (let i = 0; i < n; i++) {
          for (let s = 0; s < lengths[i]!; s++) {
            const k = i * horizon + s;
            t.true(near(r[k]!, (gamma ** s * tr.rewards[k]!) / scale), `cost at trajectory ${i}, t = ${s}: ${r[k]} vs γ^t·r_t/σ = ${(gamma ** s * tr.rewards[k]!) / scale}`);
            t.true(near(base[k]!, (gamma ** s * V[k]!) / scale), `baseline at trajectory ${i}, t = ${s}: ${base[k]} vs γ^t·V_t/σ`);
          }
        }
        // Spelled out at the first two steps, where an off-by-one discount is plainest.
        t.true(near(r[0]! * scale, tr.rewards[0]!), 't = 0: undiscounted');
        t.true(near(r[1]! * scale, gamma * tr.rewards[1]!), 't = 1: discounted once');
      }
    } finally {
      disposeBatch(data.batch);
    }
  });
}

test('levelData leaves no tensor behind once its batch is disposed', (t) => {
  const trainer = makeTrainer(resolveConfig({ algo: 'dice-vpg', env: 'point-1d', discount: gamma }), env, policy);
  const before = tf.memory().numTensors;
  disposeBatch(levelData(trainer, trajectories()).batch);
  t.is(tf.memory().numTensors, before);
});
