/**
 * What the graph compiler costs over the same estimator written by hand, on the computation that
 * dominates a meta-RL update: a second-order (MAML) meta-gradient
 *
 *   θ' = θ + α ∇_θ L_inner(θ; D),   g = ∇_θ L_outer(θ'(θ); D'),
 *
 * with a Gaussian MLP policy 20→64→64→6 (safe tanh hidden layers, learned log-std), on B = N·T =
 * 200 × 100 = 20,000 state-action samples per batch (D and D' are different random batches from a
 * seeded generator). Each estimator (DiCE, LVC) is computed two ways:
 *   compiled  an RL chain declared once as a graph (s_t external with parents s_{t−1}, a_{t−1};
 *             a_t ~ π_θ(·|s_t); cost r_t read from the batch), compiled with the estimator, and the
 *             compiled surrogate used for both the inner and the outer objective;
 *   direct    the same surrogate written with the safe ops:
 *             DiCE mean_n Σ_t □(Σ_{t'≤t} ℓ_t')·r_t,   LVC mean_n Σ_t □(ℓ_t)·Σ_{t'≥t} r_t'.
 * Before timing, the two meta-gradients are checked equal to float tolerance. Then each variant is
 * warmed up and timed over interleaved repetitions (a, b, b, a, …: drift cancels); reported per
 * estimator: the median times, their ratio compiled/direct (target ≤ 1.05), the median of the ratios
 * of back-to-back pairs, the kernels each variant runs (and which extra ones the compiled path runs),
 * and tf.memory() before and after the repetitions (everything runs inside tf.tidy: no growth).
 * About a minute on the wasm backend of a 2-core machine (~1.1 s per meta-gradient at B = 20,000).
 *
 * Options (after the name: `npm run bench -- surrogate-overhead --quick`):
 *   --quick              N = 20 trajectories (B = 2,000) and 3 repetitions, to try things out
 *                        (also MAGICBOX_BENCH_QUICK=1)
 *   --trajectories=N     trajectories per batch (default 200)
 *   --horizon=T          steps per trajectory (default 100)
 *   --reps=K             timed repetitions per variant (default 9, at least 5 unless --quick)
 */
import * as tf from '@tensorflow/tfjs';
import { gaussianLogProb, magicBox, tanh } from '../src/ops/index.ts';
import { lag, scg, type Graph } from '../src/scg/builder.ts';
import { influenceQuery } from '../src/scg/influence.ts';
import type { Batch, Params } from '../src/surrogates/batch.ts';
import { compile } from '../src/surrogates/compile.ts';
import { estimators } from '../src/surrogates/estimators.ts';
import { seededNormal } from '../src/random.ts';
import { benchArgs } from './_options.ts';

const OBS = 20;
const HIDDEN = 64;
const ACT = 6;
/** Inner step size (the released ProMP code's default). */
const ALPHA = 0.1;
/** The two meta-gradients must agree to this relative tolerance (max |a − b| / max |b|, per parameter). */
const TOLERANCE = 1e-4;
/**
 * Rewards are N(0, REWARD_SCALE²): with unit rewards the DiCE/LVC inner step at α = 0.1 moves the
 * log-std by ~2, so θ' lands far from θ; at 0.01 it moves every parameter by ≤ ~0.02, like a real
 * adaptation step. (The values do not change the timings, only keep the meta-gradient sane.)
 */
const REWARD_SCALE = 0.01;

const paramShapes = {
  W1: [OBS, HIDDEN],
  b1: [HIDDEN],
  W2: [HIDDEN, HIDDEN],
  b2: [HIDDEN],
  W3: [HIDDEN, ACT],
  b3: [ACT],
  logStd: [ACT],
} as const;
type ParamName = keyof typeof paramShapes;
const paramNames = Object.keys(paramShapes) as ParamName[];

// ---------------------------------------------------------------------------------------------------
// seeded data

const normalTensor = (next: () => number, shape: readonly number[], scale = 1, shift = 0): tf.Tensor => {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = shift + scale * next();
  return tf.tensor(data, [...shape], 'float32');
};

const initialParams = (seed: number): Params => {
  const next = seededNormal(seed);
  const p: Record<string, tf.Tensor> = {};
  for (const name of paramNames) {
    const shape = paramShapes[name];
    if (name === 'logStd') p[name] = normalTensor(next, shape, 0.1, -0.5);
    else if (shape.length === 2) p[name] = normalTensor(next, shape, 1 / Math.sqrt(shape[0]));
    else p[name] = normalTensor(next, shape, 0.1);
  }
  return p;
};

// ---------------------------------------------------------------------------------------------------
// the policy, the graph and the hand-written surrogates

/** The policy mean: s [N, T, 20] → [N, T, 6], through one [N·T, ·] matrix product per layer. */
const policyMean = (p: Readonly<Record<ParamName, tf.Tensor>>, s: tf.Tensor): tf.Tensor => {
  const [n, horizon] = s.shape as [number, number, number];
  const x = tf.reshape(s, [n * horizon, OBS]);
  const h1 = tanh(tf.add(tf.matMul(x, p.W1 as tf.Tensor2D), p.b1));
  const h2 = tanh(tf.add(tf.matMul(h1 as tf.Tensor2D, p.W2 as tf.Tensor2D), p.b2));
  const out = tf.add(tf.matMul(h2 as tf.Tensor2D, p.W3 as tf.Tensor2D), p.b3);
  return tf.reshape(out, [n, horizon, ACT]);
};

/** The RL chain: s_t ← (s_{t−1}, a_{t−1}) from the environment, a_t ~ π_θ(·|s_t), reward r_t(s_t, a_t). */
const rlGraph = (): Graph =>
  scg({ name: 'gaussian-mlp-rl-chain' })
    .parameter('W1', { shape: paramShapes.W1 })
    .parameter('b1', { shape: paramShapes.b1 })
    .parameter('W2', { shape: paramShapes.W2 })
    .parameter('b2', { shape: paramShapes.b2 })
    .parameter('W3', { shape: paramShapes.W3 })
    .parameter('b3', { shape: paramShapes.b3 })
    .parameter('logStd', { shape: paramShapes.logStd })
    .stochastic('s', { temporal: true, family: { type: 'external' }, parents: [lag('s', 1), lag('a', 1)] })
    .stochastic('a', {
      temporal: true,
      family: { type: 'gaussian', dim: ACT },
      parents: ['s', 'W1', 'b1', 'W2', 'b2', 'W3', 'b3', 'logStd'],
      distribution: (v) => ({ mean: policyMean(v, v.s), logStd: v.logStd }),
    })
    .cost('r', { temporal: true, parents: ['s', 'a'] })
    .build();

/**
 * Random trajectories: states s [N, T, 20] standard normal, rewards r [N, T] N(0, REWARD_SCALE²), actions a [N, T, 6]
 * sampled from the policy at `params` (a = μ_θ(s) + σ_θ·ε), as a sampler would produce them.
 */
const randomBatch = (seed: number, params: Params, n: number, horizon: number): Batch => {
  const next = seededNormal(seed);
  const s = normalTensor(next, [n, horizon, OBS]);
  const noise = normalTensor(next, [n, horizon, ACT]);
  const r = normalTensor(next, [n, horizon], REWARD_SCALE);
  const a = tf.tidy(() => {
    const p = params as Readonly<Record<ParamName, tf.Tensor>>;
    return tf.add(policyMean(p, s), tf.mul(tf.exp(p.logStd), noise));
  });
  noise.dispose();
  return { values: { s, a, r } };
};

type Objective = (params: Params, batch: Batch) => tf.Scalar;

const logProbs = (params: Params, batch: Batch): tf.Tensor => {
  const p = params as Readonly<Record<ParamName, tf.Tensor>>;
  const { s, a } = batch.values as Readonly<Record<'s' | 'a', tf.Tensor>>;
  return gaussianLogProb(a, policyMean(p, s), p.logStd); // [N, T]
};

const direct: Readonly<Record<'dice' | 'lvc', Objective>> = {
  // mean_n Σ_t □(Σ_{t'≤t} ℓ_t')·r_t
  dice: (params, batch) =>
    tf.mean(tf.sum(tf.mul(magicBox(tf.cumsum(logProbs(params, batch), 1)), batch.values.r!), 1)) as tf.Scalar,
  // mean_n Σ_t □(ℓ_t)·Σ_{t'≥t} r_t'
  lvc: (params, batch) =>
    tf.mean(tf.sum(tf.mul(magicBox(logProbs(params, batch)), tf.cumsum(batch.values.r!, 1, false, true)), 1)) as tf.Scalar,
};

// ---------------------------------------------------------------------------------------------------
// the meta-gradient

/** ∇_θ L_outer(θ + α∇_θ L_inner(θ; D); D'), one tensor per parameter in `paramNames` order. */
const metaGradient = (objective: Objective, params: Params, inner: Batch, outer: Batch): tf.Tensor[] => {
  const named = (xs: readonly tf.Tensor[]): Params => Object.fromEntries(paramNames.map((n, i) => [n, xs[i]!]));
  const metaObjective = (...theta: tf.Tensor[]): tf.Scalar => {
    const g = tf.grads((...th: tf.Tensor[]) => objective(named(th), inner))(theta);
    const adapted = theta.map((t, i) => tf.add(t, tf.mul(ALPHA, g[i]!)));
    return objective(named(adapted), outer);
  };
  return tf.grads(metaObjective)(paramNames.map((n) => params[n]!));
};

/** Max over parameters of max|a − b| / max|b|. */
const maxRelativeDifference = (a: readonly Float32Array[], b: readonly Float32Array[]): number => {
  let worst = 0;
  a.forEach((x, i) => {
    const y = b[i]!;
    let diff = 0;
    let scale = 0;
    for (let j = 0; j < x.length; j++) {
      diff = Math.max(diff, Math.abs(x[j]! - y[j]!));
      scale = Math.max(scale, Math.abs(y[j]!));
    }
    worst = Math.max(worst, scale === 0 ? diff : diff / scale);
  });
  return worst;
};

const gradientValues = (f: () => tf.Tensor[]): Float32Array[] =>
  tf.tidy(() => f().map((g) => g.dataSync() as Float32Array));

/** One timed evaluation, all of it inside a tidy; reading the results forces the computation to finish. */
const timeOnce = (f: () => tf.Tensor[]): number => {
  const start = performance.now();
  tf.tidy(() => {
    for (const g of f()) g.dataSync();
  });
  return performance.now() - start;
};

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const round = (x: number, digits: number): number => Number(x.toFixed(digits));

/** Kernels each variant runs, and the difference of the two histograms (compiled minus direct). */
const kernelCounts = async (compiled: () => tf.Tensor[], hand: () => tf.Tensor[]) => {
  const histogram = async (f: () => tf.Tensor[]) => {
    const info = await tf.profile(() => {
      tf.tidy(() => {
        f();
      });
    });
    const h = new Map<string, number>();
    for (const k of info.kernels) h.set(k.name, (h.get(k.name) ?? 0) + 1);
    return { total: info.kernels.length, h };
  };
  const c = await histogram(compiled);
  const d = await histogram(hand);
  const extra: Record<string, number> = {};
  for (const name of [...new Set([...c.h.keys(), ...d.h.keys()])].sort()) {
    const delta = (c.h.get(name) ?? 0) - (d.h.get(name) ?? 0);
    if (delta !== 0) extra[name] = delta;
  }
  return { compiled: c.total, direct: d.total, extraInCompiled: extra };
};

// ---------------------------------------------------------------------------------------------------

interface Options {
  readonly trajectories: number;
  readonly horizon: number;
  readonly reps: number;
  readonly quick: boolean;
}

const parseOptions = (args: readonly string[]): Options => {
  const { quick, value } = benchArgs('surrogate-overhead', args, ['trajectories', 'horizon', 'reps']);
  const reps = value('reps') ?? (quick ? 3 : 9);
  if (!quick && reps < 5) throw new RangeError('--reps must be at least 5 (medians of fewer are not reported)');
  return { trajectories: value('trajectories') ?? (quick ? 20 : 200), horizon: value('horizon') ?? 100, reps, quick };
};

const log = (msg: string) => process.stderr.write(`[surrogate-overhead] ${msg}\n`);

export const run = async (args: readonly string[] = []): Promise<Record<string, unknown>> => {
  const opts = parseOptions(args);
  const { trajectories: n, horizon } = opts;
  const graph = rlGraph();

  // The influence structure must give the RL chain credit: a_{t−d} reaches r_t for every d ≥ 0.
  const reach = influenceQuery(graph.spec, horizon).influence('a', 'r');
  if (reach.kind !== 'lags' || !reach.lags.every((x) => x)) {
    throw new Error(`graph: a does not reach r at every lag ≥ 0 (${JSON.stringify(reach)})`);
  }

  const params = initialParams(1);
  const inner = randomBatch(2, params, n, horizon);
  const outer = randomBatch(3, params, n, horizon);
  const variants = {
    dice: { compiled: compile(graph, estimators.dice()).objective, direct: direct.dice },
    lvc: { compiled: compile(graph, estimators.lvc()).objective, direct: direct.lvc },
  };

  const results: Record<string, unknown> = {};
  const started = performance.now();
  for (const [name, v] of Object.entries(variants)) {
    const compiled = () => metaGradient(v.compiled, params, inner, outer);
    const hand = () => metaGradient(v.direct, params, inner, outer);

    // Correctness first: the same meta-gradient to float tolerance (this also warms both up).
    const gc = gradientValues(compiled);
    const gd = gradientValues(hand);
    const relDiff = maxRelativeDifference(gc, gd);
    const norm = Math.sqrt(gd.reduce((acc, g) => acc + g.reduce((s, x) => s + x * x, 0), 0));
    log(`${name}: meta-gradient max relative difference ${relDiff.toExponential(2)} (|g| = ${norm.toPrecision(4)})`);
    if (!(relDiff <= TOLERANCE) || !Number.isFinite(norm) || norm === 0) {
      throw new Error(`${name}: compiled and direct meta-gradients differ (max relative difference ${relDiff}, |g| ${norm})`);
    }

    const kernels = await kernelCounts(compiled, hand);
    timeOnce(compiled);
    timeOnce(hand);

    const before = tf.memory();
    const times = { compiled: [] as number[], direct: [] as number[] };
    for (let r = 0; r < opts.reps; r++) {
      // a b, b a, a b, …: a slow drift adds as much to one variant as to the other.
      if (r % 2 === 0) {
        times.compiled.push(timeOnce(compiled));
        times.direct.push(timeOnce(hand));
      } else {
        times.direct.push(timeOnce(hand));
        times.compiled.push(timeOnce(compiled));
      }
    }
    const after = tf.memory();
    const mc = median(times.compiled);
    const md = median(times.direct);
    // Each repetition's two timings are taken back to back: their ratio is the least drift-prone figure.
    const paired = median(times.compiled.map((t, i) => t / times.direct[i]!));
    log(`${name}: compiled ${mc.toFixed(0)} ms, direct ${md.toFixed(0)} ms (ratio ${(mc / md).toFixed(3)}, paired ${paired.toFixed(3)})`);
    results[name] = {
      maxRelativeDifference: Number(relDiff.toExponential(3)),
      gradientNorm: Number(norm.toPrecision(6)),
      medianMsCompiled: round(mc, 1),
      medianMsDirect: round(md, 1),
      ratio: round(mc / md, 3),
      pairedRatio: round(paired, 3),
      msCompiled: times.compiled.map((t) => round(t, 1)),
      msDirect: times.direct.map((t) => round(t, 1)),
      kernels,
      memory: {
        numTensorsBefore: before.numTensors,
        numTensorsAfter: after.numTensors,
        numBytesBefore: before.numBytes,
        numBytesAfter: after.numBytes,
      },
      memoryGrowth: after.numTensors > before.numTensors || after.numBytes > before.numBytes,
    };
  }

  tf.dispose([...Object.values(params), ...Object.values(inner.values), ...Object.values(outer.values)]);
  return {
    ...results,
    config: {
      trajectories: n,
      horizon,
      samplesPerBatch: n * horizon,
      policy: `${OBS}-${HIDDEN}-${HIDDEN}-${ACT} tanh, Gaussian, learned log-std`,
      innerStep: ALPHA,
      rewardScale: REWARD_SCALE,
      repetitions: opts.reps,
      quick: opts.quick,
      tolerance: TOLERANCE,
    },
    totalSeconds: round((performance.now() - started) / 1000, 1),
  };
};
