/**
 * Policies: shapes for [N, T, d] inputs, seeded initialisation, log-probabilities against float64
 * closed forms, derivatives of log π with respect to the parameters at orders 1–3 against finite
 * differences (they would be wrong with tfjs's own tanh/exp), sampling statistics and KL. Serial:
 * the backend is global state.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import {
  categoricalMlpPolicy,
  gaussianMlpPolicy,
  linearGaussianPolicy,
  mlpPolicyFor,
  type Policy,
  uniformPolicy,
} from '../src/meta/policy.ts';
import { flattenParams, paramLayout, unflattenParams, type ParamLayout } from '../src/meta/optimizers.ts';
import { seededNormal, seededUniform } from '../src/random.ts';
import type { Params } from '../src/surrogates/batch.ts';
import {
  assertDerivatives,
  backends,
  directions,
  fdDerivatives,
  tfDerivatives,
  uniform,
  useBackend,
  type Vec,
} from './helpers/derivatives.ts';

const log2Pi = Math.log(2 * Math.PI);

// ---------------------------------------------------------------------------------------------------
// float64 reference of the policies

/** The MLP of `policy` at flat parameters θ (layout order) on one observation row. */
const mlpJs = (policy: Policy, layout: ParamLayout, theta: Vec, obs: Vec): number[] => {
  const get = (name: string): Vec => {
    const i = layout.names.indexOf(name);
    return theta.slice(layout.offsets[i]!, layout.offsets[i]! + layout.sizes[i]!);
  };
  const layers = policy.hidden.length + 1;
  let h: number[] = [...obs];
  for (let l = 0; l < layers; l++) {
    const w = get(`W${l}`);
    const b = get(`b${l}`);
    const out = b.length;
    const next = Array.from({ length: out }, (_, j) => h.reduce((acc, hi, i) => acc + hi * w[i * out + j]!, b[j]!));
    h = l + 1 < layers ? next.map(Math.tanh) : next;
  }
  return h;
};

/** Σ over rows of log π(a|s), in float64. */
const logProbSumJs = (policy: Policy, layout: ParamLayout, theta: Vec, obs: Vec, actions: Vec, fixedLogStd = 0): number => {
  const d = policy.observationDim;
  const rows = obs.length / d;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const out = mlpJs(policy, layout, theta, obs.slice(r * d, (r + 1) * d));
    if (policy.kind === 'gaussian') {
      const k = out.length;
      const li = layout.names.indexOf('logStd');
      for (let j = 0; j < k; j++) {
        const logStd = li < 0 ? fixedLogStd : theta[layout.offsets[li]! + j]!;
        const z = (actions[r * k + j]! - out[j]!) / Math.exp(logStd);
        total += -0.5 * z * z - logStd - 0.5 * log2Pi;
      }
    } else {
      const m = Math.max(...out);
      const lse = m + Math.log(out.reduce((acc, x) => acc + Math.exp(x - m), 0));
      total += out[actions[r]!]! - lse;
    }
  }
  return total;
};

const values = (t: tf.Tensor): number[] => Array.from(t.dataSync());
const flatTheta = (params: Params, layout: ParamLayout): number[] => {
  const flat = flattenParams(params, layout);
  const out = values(flat);
  flat.dispose();
  return out;
};
const disposeParams = (p: Params): void => Object.values(p).forEach((t) => t.dispose());

/** Initial parameters plus a little noise, so biases and logStd are not all zero. */
const pointFor = (policy: Policy, seed: number): { layout: ParamLayout; theta: number[] } => {
  const layout = paramLayout(policy.paramShapes);
  const params = policy.init(seed);
  const noise = uniform(layout.size, seed + 1, -0.3, 0.3);
  const theta = flatTheta(params, layout).map((x, i) => x + noise[i]!);
  disposeParams(params);
  return { layout, theta };
};

// ---------------------------------------------------------------------------------------------------
// shapes and initialisation

test.serial('shapes for [N, T, d] observations (Gaussian, categorical, linear)', async (t) => {
  await useBackend('cpu');
  const [n, horizon, d] = [3, 4, 5];
  const obs = tf.randomUniform([n, horizon, d], -1, 1, 'float32', 1);
  const g = gaussianMlpPolicy({ observationDim: d, actionDim: 2, hidden: [8, 6] });
  t.deepEqual(Object.keys(g.paramShapes), ['W0', 'b0', 'W1', 'b1', 'W2', 'b2', 'logStd']);
  t.deepEqual(g.paramShapes.W0, [5, 8]);
  t.deepEqual(g.paramShapes.W2, [6, 2]);
  t.deepEqual(g.action, { kind: 'continuous', dim: 2, low: -Infinity, high: Infinity });
  const gp = g.init(0);
  tf.tidy(() => {
    const dist = g.distribution(gp, obs);
    t.true('mean' in dist);
    if (!('mean' in dist)) return;
    t.deepEqual(dist.mean.shape, [n, horizon, 2]);
    t.deepEqual(dist.logStd.shape, [2]);
    t.deepEqual(g.logProb(gp, obs, tf.zeros([n, horizon, 2])).shape, [n, horizon]);
    t.deepEqual(g.kl(gp, gp, obs).shape, [n, horizon]);
    // one row, no leading dims
    t.deepEqual(g.logProb(gp, tf.zeros([d]), tf.zeros([2])).shape, []);
  });

  const c = categoricalMlpPolicy({ observationDim: d, actions: 4 });
  t.deepEqual(c.hidden, [64, 64]);
  t.deepEqual(Object.keys(c.paramShapes), ['W0', 'b0', 'W1', 'b1', 'W2', 'b2']);
  t.deepEqual(c.action, { kind: 'discrete', n: 4 });
  const cp = c.init(0);
  tf.tidy(() => {
    const dist = c.distribution(cp, obs);
    t.true('logits' in dist);
    if ('logits' in dist) t.deepEqual(dist.logits.shape, [n, horizon, 4]);
    t.deepEqual(c.logProb(cp, obs, tf.zeros([n, horizon], 'int32')).shape, [n, horizon]);
    t.deepEqual(c.kl(cp, cp, obs).shape, [n, horizon]);
  });

  // hidden = [] is linear; with a fixed std the 1D policy has exactly two parameters θ0·s + θ1
  const lin = linearGaussianPolicy({ observationDim: 1, actionDim: 1, logStd: -1 });
  t.deepEqual(lin.paramShapes, { W0: [1, 1], b0: [1] });
  const lp = { W0: tf.tensor2d([[2]]), b0: tf.tensor1d([-0.5]) };
  tf.tidy(() => {
    const dist = lin.distribution(lp, tf.tensor3d([1, 3], [1, 2, 1]));
    if (!('mean' in dist)) return t.fail();
    t.deepEqual(values(dist.mean), [1.5, 5.5]);
    t.deepEqual(values(dist.logStd), [-1]);
  });
  t.deepEqual(mlpPolicyFor(3, { kind: 'discrete', n: 2 }, { hidden: [] }).paramShapes, { W0: [3, 2], b0: [2] });
  t.throws(() => tf.tidy(() => g.logProb(gp, tf.zeros([2, 4]), tf.zeros([2, 2]))), { message: /\[\.\.\., 5\]/ });
  [gp, cp, lp].forEach(disposeParams);
  obs.dispose();
});

test.serial('init is seeded: Glorot-uniform weights, zero biases, logStd = initLogStd', async (t) => {
  await useBackend('cpu');
  const p = gaussianMlpPolicy({ observationDim: 6, actionDim: 3, hidden: [10], initLogStd: -0.7 });
  const a = p.init(42);
  const b = p.init(42);
  const c = p.init(43);
  for (const name of Object.keys(p.paramShapes)) {
    t.deepEqual(a[name]!.shape, [...p.paramShapes[name]!]);
    t.deepEqual(values(a[name]!), values(b[name]!), name);
  }
  t.notDeepEqual(values(a.W0!), values(c.W0!));
  const limit0 = Math.sqrt(6 / (6 + 10));
  const w0 = values(a.W0!);
  t.true(w0.every((x) => Math.abs(x) <= limit0));
  t.true(Math.max(...w0.map(Math.abs)) > 0.8 * limit0, 'weights fill the Glorot range');
  t.true(values(a.W1!).every((x) => Math.abs(x) <= Math.sqrt(6 / 13)));
  t.true([...values(a.b0!), ...values(a.b1!)].every((x) => x === 0));
  t.deepEqual(values(a.logStd!), [-0.7, -0.7, -0.7].map(Math.fround));
  [a, b, c].forEach(disposeParams);
});

// ---------------------------------------------------------------------------------------------------
// log-probabilities and their derivatives

const gaussianCase = gaussianMlpPolicy({ observationDim: 3, actionDim: 2, hidden: [4, 3] });
const categoricalCase = categoricalMlpPolicy({ observationDim: 3, actions: 4, hidden: [5] });
const [caseN, caseT] = [2, 3];
const caseObs = uniform(caseN * caseT * 3, 71, -1, 1);
const gaussianActions = uniform(caseN * caseT * 2, 72, -1.5, 1.5);
const categoricalActions = [0, 3, 1, 2, 2, 0];

const logProbSumTf = (policy: Policy, layout: ParamLayout, actions: Vec) => (theta: tf.Tensor): tf.Tensor => {
  const params = unflattenParams(theta, layout);
  const obs = tf.tensor3d(caseObs as number[], [caseN, caseT, 3]);
  const acts =
    policy.kind === 'gaussian'
      ? tf.tensor3d(actions as number[], [caseN, caseT, 2])
      : tf.tensor2d(actions as number[], [caseN, caseT]); // float32 indices, as a batch holds them
  return policy.logProb(params, obs, acts);
};

for (const backend of backends) {
  test.serial(`Gaussian logProb matches the closed form (${backend})`, async (t) => {
    await useBackend(backend);
    const { layout, theta } = pointFor(gaussianCase, 3);
    const got = tf.tidy(() => values(logProbSumTf(gaussianCase, layout, gaussianActions)(tf.tensor1d(theta))));
    t.is(got.length, caseN * caseT);
    // per row against the float64 closed form
    got.forEach((lp, r) => {
      const ref = logProbSumJs(gaussianCase, layout, theta, caseObs.slice(r * 3, r * 3 + 3), gaussianActions.slice(r * 2, r * 2 + 2));
      t.true(Math.abs(lp - ref) < 1e-5 * Math.max(1, Math.abs(ref)), `row ${r}: ${lp} vs ${ref}`);
    });
  });

  for (const [policy, actions] of [
    [gaussianCase, gaussianActions],
    [categoricalCase, categoricalActions],
  ] as const) {
    test.serial(`${policy.kind} log π: derivatives w.r.t. parameters at orders 1–3 match finite differences (${backend})`, async (t) => {
      await useBackend(backend);
      const { layout, theta } = pointFor(policy, 5);
      const dirs = directions(3, layout.size, 9);
      const actual = tfDerivatives(logProbSumTf(policy, layout, actions), theta, [layout.size], dirs);
      const expected = fdDerivatives((th) => logProbSumJs(policy, layout, th, caseObs, actions), theta, dirs);
      assertDerivatives(t, actual, expected, { rtol: 1e-3, label: policy.kind });
    });
  }
}

test.serial('the fixed-std linear policy: log π and its Hessian in closed form', async (t) => {
  await useBackend('cpu');
  // mean = θ0·s + θ1, σ = e^{-1}: log π = −½((a − θ0 s − θ1)/σ)² + const, Hessian = −(1/σ²)[[Σs², Σs], [Σs, n]]
  const policy = linearGaussianPolicy({ observationDim: 1, actionDim: 1, logStd: -1 });
  const layout = paramLayout(policy.paramShapes);
  const s = [0.5, -1, 2];
  const a = [0.3, 0.1, -0.4];
  const f = (theta: tf.Tensor) =>
    tf.sum(policy.logProb(unflattenParams(theta, layout), tf.tensor2d(s, [3, 1]), tf.tensor2d(a, [3, 1])));
  const hess = tf.tidy(() => {
    const g = (th: tf.Tensor) => tf.grad(f)(th);
    const rows = [tf.tensor1d([1, 0]), tf.tensor1d([0, 1])].map((u) => values(tf.grad((th) => tf.sum(tf.mul(g(th), u)))(tf.tensor1d([0.7, -0.2]))));
    return rows;
  });
  const inv = Math.exp(2);
  const expected = [
    [-inv * s.reduce((acc, x) => acc + x * x, 0), -inv * s.reduce((acc, x) => acc + x, 0)],
    [-inv * s.reduce((acc, x) => acc + x, 0), -inv * 3],
  ];
  hess.forEach((row, i) => row.forEach((h, j) => t.true(Math.abs(h - expected[i]![j]!) < 1e-4 * Math.abs(expected[i]![j]!), `H[${i}][${j}] = ${h}`)));
});

// ---------------------------------------------------------------------------------------------------
// sampling

const randomOf = (seed: number) => ({ normal: seededNormal(seed), uniform: seededUniform(seed + 1000) });

for (const backend of backends) {
  test.serial(`Gaussian sampling: reproducible, right mean and std, keeps no tensor (${backend})`, async (t) => {
    await useBackend(backend);
    const policy = gaussianMlpPolicy({ observationDim: 2, actionDim: 2, hidden: [8] });
    const base = policy.init(1);
    const params = { ...base, logStd: tf.tensor1d([-0.5, 0.4]) };
    const n = 20000;
    const row = [0.3, -0.8];
    const obs = new Float32Array(n * 2).map((_, k) => row[k % 2]!);
    const before = tf.memory().numTensors;
    const x = policy.sample(params, obs, n, randomOf(7));
    t.is(tf.memory().numTensors, before, 'sample keeps no tensor');
    t.is(x.length, n * 2);
    t.deepEqual(policy.sample(params, obs, n, randomOf(7)), x, 'same seed, same actions');
    t.notDeepEqual(policy.sample(params, obs, n, randomOf(8)), x);
    const mean = tf.tidy(() => {
      const d = policy.distribution(params, tf.tensor2d([row]));
      return 'mean' in d ? values(d.mean) : [];
    });
    [-0.5, 0.4].forEach((logStd, j) => {
      const column = Array.from({ length: n }, (_, i) => x[2 * i + j]!);
      const m = column.reduce((a, b) => a + b, 0) / n;
      const sd = Math.sqrt(column.reduce((a, b) => a + (b - m) ** 2, 0) / n);
      const sigma = Math.exp(logStd);
      t.true(Math.abs(m - mean[j]!) < (4 * sigma) / Math.sqrt(n), `mean ${j}: ${m} vs ${mean[j]}`);
      t.true(Math.abs(sd / sigma - 1) < 0.03, `std ${j}: ${sd} vs ${sigma}`);
    });
    disposeParams(params);
  });

  test.serial(`categorical sampling: reproducible, frequencies match softmax (${backend})`, async (t) => {
    await useBackend(backend);
    const policy = categoricalMlpPolicy({ observationDim: 2, actions: 3, hidden: [] });
    const params = { W0: tf.tensor2d([[1, -1, 0.5], [0, 2, -1]]), b0: tf.tensor1d([0.2, 0, -0.3]) };
    const n = 20000;
    const rows = [
      [0.5, 0.1],
      [-1, 0.4],
    ];
    const obs = new Float32Array(n * 2).map((_, k) => rows[Math.floor(k / 2) % 2]![k % 2]!);
    const before = tf.memory().numTensors;
    const a = policy.sample(params, obs, n, randomOf(3));
    t.is(tf.memory().numTensors, before);
    t.deepEqual(policy.sample(params, obs, n, randomOf(3)), a);
    t.true(a.every((x) => Number.isInteger(x) && x >= 0 && x < 3));
    rows.forEach((row, r) => {
      const logits = [0, 1, 2].map((j) => row[0]! * [1, -1, 0.5][j]! + row[1]! * [0, 2, -1][j]! + [0.2, 0, -0.3][j]!);
      const z = logits.reduce((acc, l) => acc + Math.exp(l), 0);
      [0, 1, 2].forEach((j) => {
        const p = Math.exp(logits[j]!) / z;
        let count = 0;
        for (let i = r; i < n; i += 2) if (a[i] === j) count++;
        const freq = count / (n / 2);
        t.true(Math.abs(freq - p) < 4 * Math.sqrt((p * (1 - p)) / (n / 2)), `row ${r} action ${j}: ${freq} vs ${p}`);
      });
    });
    disposeParams(params);
  });
}

// ---------------------------------------------------------------------------------------------------
// KL

test.serial('KL(P‖P) = 0 and KL(P‖Q) > 0, per observation; Gaussian KL in closed form', async (t) => {
  await useBackend('cpu');
  const obs = tf.randomUniform([4, 5, 3], -1, 1, 'float32', 2);
  for (const policy of [gaussianCase, categoricalCase]) {
    const p = policy.init(1);
    const q = policy.init(2);
    tf.tidy(() => {
      const same = values(policy.kl(p, p, obs));
      t.is(same.length, 20);
      t.true(same.every((x) => Math.abs(x) < 1e-6), `${policy.kind} KL(P‖P): ${Math.max(...same.map(Math.abs))}`);
      const diff = values(policy.kl(p, q, obs));
      t.true(diff.every((x) => x > 1e-4), `${policy.kind} KL(P‖Q) > 0`);
    });
    disposeParams(p);
    disposeParams(q);
  }
  // Gaussian: KL = Σ log σQ/σP + (σP² + (μP − μQ)²)/(2σQ²) − ½
  const lin = gaussianMlpPolicy({ observationDim: 1, actionDim: 1, hidden: [] });
  const p = { W0: tf.tensor2d([[1]]), b0: tf.tensor1d([0]), logStd: tf.tensor1d([0.2]) };
  const q = { W0: tf.tensor2d([[-1]]), b0: tf.tensor1d([0.5]), logStd: tf.tensor1d([-0.3]) };
  const s = 0.7;
  const kl = tf.tidy(() => values(lin.kl(p, q, tf.tensor2d([[s]]))))[0]!;
  const [sp, sq, mp, mq] = [Math.exp(0.2), Math.exp(-0.3), s, -s + 0.5];
  const expected = Math.log(sq / sp) + (sp * sp + (mp - mq) ** 2) / (2 * sq * sq) - 0.5;
  t.true(Math.abs(kl - expected) < 1e-5 * expected, `${kl} vs ${expected}`);
  [p, q].forEach(disposeParams);
  obs.dispose();
});

test.serial('the JavaScript sampling network agrees with the tfjs distribution: Gaussian means and categorical logits', async (t) => {
  await useBackend('cpu');
  const rows = 7;
  const obs = Float32Array.from({ length: rows * 5 }, (_, k) => Math.sin(1.7 * k) * 2);
  // With every normal draw 0 the Gaussian sample is the mean itself.
  const zero = { normal: () => 0, uniform: () => 0.5 };
  const gaussian = gaussianMlpPolicy({ observationDim: 5, actionDim: 3, hidden: [16, 16] });
  const gp = gaussian.init(4);
  const drawn = gaussian.sampler(gp)(obs, rows, zero);
  const mean = tf.tidy(() => {
    const d = gaussian.distribution(gp, tf.tensor2d(obs, [rows, 5]));
    return 'mean' in d ? Array.from(d.mean.dataSync()) : [];
  });
  t.is(mean.length, rows * 3);
  mean.forEach((m, k) => t.true(Math.abs(drawn[k]! - m) <= 1e-5 * Math.max(1, Math.abs(m)), `mean ${k}: ${drawn[k]} vs ${m}`));
  t.deepEqual(gaussian.sample(gp, obs, rows, zero), drawn);
  // Categorical: uniform u picks the first action whose softmax CDF exceeds u; compare at u away from the CDF's steps.
  const categorical = categoricalMlpPolicy({ observationDim: 5, actions: 4, hidden: [16] });
  const cp = categorical.init(5);
  const probs = tf.tidy(() => {
    const d = categorical.distribution(cp, tf.tensor2d(obs, [rows, 5]));
    return 'logits' in d ? Array.from(tf.softmax(d.logits).dataSync()) : [];
  });
  let compared = 0;
  for (const u of [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95]) {
    const choices = categorical.sampler(cp)(obs, rows, { normal: () => 0, uniform: () => u });
    for (let r = 0; r < rows; r++) {
      let cdf = 0;
      let expected = 3;
      let nearStep = false;
      for (let j = 0; j < 4; j++) {
        cdf += probs[r * 4 + j]!;
        if (Math.abs(cdf - u) < 1e-4) nearStep = true;
        if (u < cdf) {
          expected = j;
          break;
        }
      }
      if (nearStep) continue;
      t.is(choices[r], expected, `row ${r}, u = ${u}`);
      compared++;
    }
  }
  t.true(compared > 40);
  disposeParams(gp);
  disposeParams(cp);
});

test.serial('uniformPolicy: actions fill the box uniformly, logProb is −Σ log(high − low); unbounded spaces are refused', async (t) => {
  await useBackend('cpu');
  const policy = uniformPolicy({ kind: 'continuous', dim: 2, low: -1, high: 3 });
  const n = 4000;
  const a = policy.sample({}, new Float32Array(n * 5), n, { normal: () => 0, uniform: seededUniform(2) });
  t.true(a.every((x) => x >= -1 && x < 3));
  const mean = a.reduce((s, x) => s + x, 0) / a.length;
  t.true(Math.abs(mean - 1) < 0.05, `mean ${mean}`);
  const lp = tf.tidy(() => Array.from(policy.logProb({}, tf.zeros([3, 4, 5]), tf.zeros([3, 4, 2])).dataSync()));
  t.is(lp.length, 12);
  lp.forEach((x) => t.true(Math.abs(x - -2 * Math.log(4)) < 1e-6));
  t.throws(() => uniformPolicy({ kind: 'continuous', dim: 1, low: -Infinity, high: Infinity }), { message: /finite bounds/ });
});
