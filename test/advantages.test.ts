/**
 * Returns, GAE, normalisation and the linear feature baseline, on small hand-checked cases and on
 * signals the baseline can fit exactly. Plain JavaScript: no backend involved.
 */
import test from 'ava';
import { discountedReturns, gae, normalize, taskAdvantages } from '../src/meta/advantages.ts';
import { featureCount, fitLinearBaseline, linearBaseline, solveRidge } from '../src/meta/baseline.ts';
import { seededNormal, seededUniform } from '../src/random.ts';

const f32 = (xs: readonly number[]): Float32Array => Float32Array.from(xs);
const close = (a: number, b: number, tol = 1e-5): boolean => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

/** A [n × horizon] mask whose row i is 1 on its first lengths[i] steps. */
const prefixMask = (lengths: readonly number[], horizon: number): Float32Array =>
  Float32Array.from(lengths.flatMap((l) => Array.from({ length: horizon }, (_, t) => (t < l ? 1 : 0))));

test('discountedReturns by hand, zero on padding', (t) => {
  // row 0: rewards 1, 2, 3 (all valid); row 1: 4, 5, then padding holding 100 (ignored)
  const r = discountedReturns(f32([1, 2, 3, 4, 5, 100]), prefixMask([3, 2], 3), 2, 3, 0.5);
  t.deepEqual(Array.from(r), [1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3, 4 + 0.5 * 5, 5, 0]);
  t.deepEqual(Array.from(discountedReturns(f32([1, 1, 1]), f32([1, 1, 1]), 1, 3, 1)), [3, 2, 1]);
  t.throws(() => discountedReturns(f32([1, 2]), f32([1, 1]), 1, 3, 0.9), { instanceOf: RangeError });
});

test('GAE with λ = 1 is returns − values; λ = 0 is the TD error with V = 0 past the end', (t) => {
  const [n, horizon, gamma] = [4, 7, 0.97];
  const u = seededUniform(1);
  const rewards = Float32Array.from({ length: n * horizon }, () => 2 * u() - 1);
  const values = Float32Array.from({ length: n * horizon }, () => 2 * u() - 1);
  const mask = prefixMask([7, 5, 1, 3], horizon);
  const returns = discountedReturns(rewards, mask, n, horizon, gamma);
  const a1 = gae(rewards, values, mask, n, horizon, gamma, 1);
  for (let k = 0; k < n * horizon; k++) {
    t.true(close(a1[k]!, mask[k]! * (returns[k]! - values[k]!)), `step ${k}: ${a1[k]} vs ${returns[k]! - values[k]!}`);
  }
  const a0 = gae(rewards, values, mask, n, horizon, gamma, 0);
  for (let i = 0; i < n; i++) {
    for (let t0 = 0; t0 < horizon; t0++) {
      const k = i * horizon + t0;
      const next = t0 + 1 < horizon && mask[k + 1] === 1 ? values[k + 1]! : 0;
      const expected = mask[k] === 1 ? rewards[k]! + gamma * next - values[k]! : 0;
      t.true(close(a0[k]!, expected), `λ = 0, step ${k}`);
    }
  }
  // a hand case with λ = 0.5, γ = 0.9: δ = [1 + 0.9·2 − 1, 0 + 0 − 2] = [1.8, −2], A = [1.8 + 0.45·(−2), −2]
  t.deepEqual(
    Array.from(gae(f32([1, 0]), f32([1, 2]), f32([1, 1]), 1, 2, 0.9, 0.5)).map((x) => Math.round(x * 1e6) / 1e6),
    [0.9, -2],
  );
});

test('normalize: mean 0, std 1 over valid steps, padding stays 0', (t) => {
  const u = seededUniform(2);
  const adv = Float32Array.from({ length: 30 }, () => 5 + 3 * u());
  const mask = prefixMask([10, 4, 8], 10);
  adv[15] = 1e6; // padding, must not count
  const z = normalize(adv, mask);
  const valid = Array.from(z).filter((_, k) => mask[k] === 1);
  const mean = valid.reduce((a, b) => a + b, 0) / valid.length;
  const sd = Math.sqrt(valid.reduce((a, b) => a + (b - mean) ** 2, 0) / valid.length);
  t.true(Math.abs(mean) < 1e-6, `mean ${mean}`);
  t.true(Math.abs(sd - 1) < 1e-5, `std ${sd}`);
  t.true(Array.from(z).every((x, k) => mask[k] === 1 || x === 0));
  t.is(adv[15], 1e6, 'input untouched');
  // without a mask every step counts; a constant input gives zeros, not NaN
  const all = normalize(f32([1, 2, 3]));
  t.true(close(all[0]!, -Math.sqrt(1.5)));
  t.deepEqual(Array.from(normalize(f32([4, 4, 4]))), [0, 0, 0]);
  t.deepEqual(Array.from(normalize(f32([1, 2]), f32([0, 0]))), [0, 0]);
});

// ---------------------------------------------------------------------------------------------------
// the linear feature baseline

/** φ(s, t) as specified: [clip(s), clip(s)², t/100, (t/100)², (t/100)³, 1]. */
const featuresJs = (obs: readonly number[], t: number): number[] => {
  const c = obs.map((o) => Math.min(10, Math.max(-10, o)));
  const s = t / 100;
  return [...c, ...c.map((x) => x * x), s, s * s, s * s * s, 1];
};

test('the baseline fits a signal linear in its features exactly, ignoring masked steps', (t) => {
  const [n, horizon, d] = [6, 40, 3];
  const normal = seededNormal(4);
  const observations = Float32Array.from({ length: n * horizon * d }, () => 3 * normal());
  observations[5] = 14; // beyond the clip, on a valid step
  observations[7] = -25;
  const w = Array.from({ length: featureCount(d) }, () => normal());
  const mask = prefixMask([40, 33, 12, 40, 25, 1], horizon);
  const returns = new Float32Array(n * horizon);
  for (let i = 0; i < n; i++) {
    for (let s = 0; s < horizon; s++) {
      const k = i * horizon + s;
      const phi = featuresJs(Array.from(observations.subarray(k * d, (k + 1) * d)), s);
      // padding holds garbage, which must not enter the fit
      returns[k] = mask[k] === 1 ? phi.reduce((acc, f, j) => acc + f * w[j]!, 0) : 1e6 * (1 + normal());
    }
  }
  const baseline = fitLinearBaseline(observations, returns, mask, n, horizon, d);
  t.is(baseline.regularisation, 1e-5);
  t.is(baseline.coefficients.length, 2 * d + 4);
  const predicted = baseline.predict(observations, n, horizon);
  let worst = 0;
  for (let k = 0; k < n * horizon; k++) {
    if (mask[k] === 1) worst = Math.max(worst, Math.abs(predicted[k]! - returns[k]!) / Math.max(1, Math.abs(returns[k]!)));
  }
  t.true(worst < 1e-3, `largest relative error on valid steps ${worst}`);
  const masked = baseline.predict(observations, n, horizon, mask);
  t.true(Array.from(masked).every((x, k) => (mask[k] === 1 ? x === predicted[k] : x === 0)));
  // a baseline rebuilt from its coefficients predicts the same
  t.deepEqual(linearBaseline(d, baseline.coefficients).predict(observations, n, horizon), predicted);
});

test('the baseline raises the ridge coefficient until the solve is finite, else predicts 0', (t) => {
  // not positive definite at reg = 1e-5 (a negative pivot), positive definite from 1e-3 on
  const a = Float64Array.from([-5e-4, 0, 0, 1]);
  t.is(solveRidge(a, Float64Array.from([1, 1]), 2, 1e-5), undefined);
  const x = solveRidge(a, Float64Array.from([1, 1]), 2, 1e-3);
  t.true(x !== undefined && close(x[0]!, 1 / 5e-4) && close(x[1]!, 1 / (1 + 1e-3)));
  // non-finite returns never give a finite solve: zero predictions, regularisation 0
  const obs = f32([0.1, 0.2, 0.3, 0.4]);
  const nan = fitLinearBaseline(obs, f32([1, NaN, 2, 3]), f32([1, 1, 1, 1]), 2, 2, 1);
  t.is(nan.regularisation, 0);
  t.deepEqual(Array.from(nan.predict(obs, 2, 2)), [0, 0, 0, 0]);
  // no valid step at all: the ridge term alone, coefficients 0
  const empty = fitLinearBaseline(obs, f32([1, 2, 3, 4]), f32([0, 0, 0, 0]), 2, 2, 1);
  t.true(empty.coefficients.every((c) => c === 0));
});

test('taskAdvantages: returns, baseline values and normalised GAE together', (t) => {
  const [n, horizon, d] = [5, 20, 2];
  const u = seededUniform(9);
  const observations = Float32Array.from({ length: n * horizon * d }, () => 2 * u() - 1);
  const rewards = Float32Array.from({ length: n * horizon }, () => u());
  const mask = prefixMask([20, 15, 20, 7, 11], horizon);
  const out = taskAdvantages({ observations, rewards, mask, n, horizon, observationDim: d, gamma: 0.99, lambda: 1 });
  t.deepEqual(out.returns, discountedReturns(rewards, mask, n, horizon, 0.99));
  const raw = gae(rewards, out.values, mask, n, horizon, 0.99, 1);
  t.deepEqual(out.advantages, normalize(raw, mask));
  t.true(Array.from(out.values).every((v, k) => mask[k] === 1 || v === 0));
  const unnormalised = taskAdvantages({ observations, rewards, mask, n, horizon, observationDim: d, gamma: 0.99, lambda: 1, normalize: false });
  t.deepEqual(unnormalised.advantages, raw);
});
