/**
 * The ProMP paper's Figure 6 (Sec. 7.4): meta-gradient ascent of formulation I and formulation II on
 * the 1D environment (src/envs/point-1d.ts) with a two-parameter policy, printed as paths in the
 * (θ0, θ1) plane with their distance to the optimum.
 *
 *   policy            linearGaussianPolicy: a ~ N(θ0·x + θ1, σ²), σ = e^LOG_STD fixed; W0 = θ0, b0 = θ1
 *   formulation I     dice-vpg:  DiCE (with the fitted baseline) inner and outer surrogate, Adam outer
 *                     step (the paper's red path)
 *   formulation II    emaml-vpg: naive inner step, E-MAML score term for the pre-update samples, Adam
 *                     (the paper's green path)
 *   also shown        lvc-vpg: formulation I with the LVC estimator (ProMP's choice).
 *
 * Every run starts from the same θ with the same configuration; the paths are shown for data seed 1
 * and summarised for seeds 1–3 (one 40-iteration path is an anecdote). The library's "VPG" outer step
 * is Adam, which normalises each coordinate: a coordinate whose meta-gradient is dominated by noise
 * random-walks at about the full step size instead of standing still, as it would under plain
 * gradient ascent.
 *
 * The optimum. What each run maximises is the post-update return
 *   J(θ) = E[ return of π_θ′ ],  θ′ = θ + α·∇̂ L_inner(θ; D),  D ~ π_θ,
 * with θ′ from the run's own inner estimator. The inner steps have (nearly) the same expectation but
 * different noise, and a noisier θ′ has a lower expected return, so the J of DiCE and of the PGT step (E-MAML; LVC's step has the same value, checked below) differ, and each
 * has its own θ*. Each J is estimated with `evaluateParams` (the library's own adaptation, the training
 * batch size per task) on EVAL_TASKS tasks with one fixed evaluation seed (common random numbers
 * across θ): first on a coarse grid, then on a finer 5 × 5 grid around the best coarse cell; θ* is the
 * best cell. Its Monte-Carlo error shows in J(θ*) re-estimated with other evaluation seeds. The task
 * distribution is symmetric under (x, g, θ1) → (−x, −g, −θ1), so J(θ0, θ1) = J(θ0, −θ1) exactly: where
 * J has a single maximum, θ*₁ = 0, and a non-zero estimate shows the noise.
 *
 * Run: npx tsx examples/formulations-1d.ts   (about 75 s on a 2-core machine, wasm backend)
 */
import * as tf from '@tensorflow/tfjs';
import { describeBackend, selectBackend } from '../src/backend.ts';
import { point1d, POINT_1D } from '../src/envs/index.ts';
import { disposeParams } from '../src/meta/algorithms.ts';
import { resolveConfig } from '../src/meta/config.ts';
import { evaluateParams, makeTrainer, runIteration, type OptimizerState, type Trainer } from '../src/meta/iteration.ts';
import { adam } from '../src/meta/optimizers.ts';
import { linearGaussianPolicy } from '../src/meta/policy.ts';
import type { Params } from '../src/surrogates/batch.ts';

// ---------------------------------------------------------------------------------------------------
// settings: one set for every run

/** log σ of the fixed-std policy: σ ≈ 0.37, against actions clipped to ±0.2. */
const LOG_STD = -1;
/** The initial (θ0, θ1): a slightly repelling policy biased towards +1. */
const THETA_INIT: Theta = [0.2, 0.6];
const ITERATIONS = 40;
const SEEDS = [1, 2, 3];
const SETTINGS = {
  env: 'point-1d',
  iterations: ITERATIONS,
  tasksPerIteration: 10,
  trajectoriesPerTask: 10,
  /** inner step α: large enough that adaptation matters (J(θ) well above the pre-update return) */
  innerStepSize: 0.3,
  /** Adam's step: about 0.03 per parameter per iteration */
  outerLearningRate: 0.03,
} as const;

/** How J is estimated: tasks per estimate, the evaluation seeds, the grids. */
const EVAL_TASKS = 40;
const EVAL_SEED = 101;
const EXTRA_EVAL_SEEDS = [102, 103, 104];
const COARSE = { theta0: range(-2, 0.25, 0.25), theta1: range(-0.75, 0.75, 0.25) };
/** The fine grid: 5 × 5 points of this spacing centred on the best coarse point. */
const FINE_STEP = 0.0625;

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let k = 0; from + k * step <= to + 1e-9; k++) out.push(Number((from + k * step).toFixed(6)));
  return out;
}

// ---------------------------------------------------------------------------------------------------

type Theta = readonly [number, number];

const toParams = ([t0, t1]: Theta): Params => ({ W0: tf.tensor2d([[t0]], [1, 1]), b0: tf.tensor1d([t1]) });
const fromParams = (p: Params): Theta => [p.W0!.dataSync()[0]!, p.b0!.dataSync()[0]!];
const distance = (a: Theta, b: Theta): number => Math.hypot(a[0] - b[0], a[1] - b[1]);
const signed = (x: number, digits = 3): string => (x >= 0 ? ' ' : '') + x.toFixed(digits);
const point = (t: Theta): string => `(${signed(t[0])}, ${signed(t[1])})`;
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: readonly number[]): number => Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1));
const seconds = (since: number): string => `${((performance.now() - since) / 1000).toFixed(1)} s`;

interface Path {
  /** θ after each iteration (index 0: the initial θ) */
  readonly thetas: Theta[];
  /** the post-update return each iteration measured on its own samples */
  readonly postReturn: number[];
}

const train = async (trainer: Trainer): Promise<Path> => {
  let params = toParams(THETA_INIT);
  let state: OptimizerState;
  const thetas: Theta[] = [THETA_INIT];
  const postReturn: number[] = [];
  for (let it = 0; it < ITERATIONS; it++) {
    const r = await runIteration(trainer, params, state, it);
    disposeParams(params);
    if (state !== undefined && state !== r.optimizerState) adam().dispose(state);
    params = r.params;
    state = r.optimizerState;
    thetas.push(fromParams(params));
    postReturn.push(r.stats.averageReturn.at(-1)!);
  }
  disposeParams(params);
  if (state !== undefined) adam().dispose(state);
  return { thetas, postReturn };
};

/** J(θ): the post-update average return of π_θ′ (one inner step with the trainer's own estimator). */
const J = async (trainer: Trainer, theta: Theta, seed = EVAL_SEED): Promise<number> => {
  const p = toParams(theta);
  try {
    return (await evaluateParams(trainer, p, seed, EVAL_TASKS)).at(-1)!;
  } finally {
    disposeParams(p);
  }
};

interface Optimum {
  readonly theta: Theta;
  readonly value: number;
  readonly coarse: Theta;
  readonly coarseValue: number;
  readonly onBoundary: boolean;
  readonly evaluations: number;
  /** J(θ*) re-estimated with the other evaluation seeds */
  readonly others: number[];
}

const gridBest = async (trainer: Trainer, theta0: readonly number[], theta1: readonly number[]): Promise<{ theta: Theta; value: number }> => {
  let best: { theta: Theta; value: number } = { theta: [NaN, NaN], value: -Infinity };
  for (const a of theta0) {
    for (const b of theta1) {
      const value = await J(trainer, [a, b]);
      if (value > best.value) best = { theta: [a, b], value };
    }
  }
  return best;
};

const findOptimum = async (trainer: Trainer): Promise<Optimum> => {
  const coarse = await gridBest(trainer, COARSE.theta0, COARSE.theta1);
  const around = (c: number) => [-2, -1, 0, 1, 2].map((k) => Number((c + k * FINE_STEP).toFixed(6)));
  const fine = await gridBest(trainer, around(coarse.theta[0]), around(coarse.theta[1]));
  const best = fine.value >= coarse.value ? fine : coarse;
  const edge = (v: number, grid: readonly number[]) => v === grid[0] || v === grid.at(-1);
  const others: number[] = [];
  for (const s of EXTRA_EVAL_SEEDS) others.push(await J(trainer, best.theta, s));
  return {
    theta: best.theta,
    value: best.value,
    coarse: coarse.theta,
    coarseValue: coarse.value,
    onBoundary: edge(coarse.theta[0], COARSE.theta0) || edge(coarse.theta[1], COARSE.theta1),
    evaluations: COARSE.theta0.length * COARSE.theta1.length + 25,
    others,
  };
};

// ---------------------------------------------------------------------------------------------------

const started = performance.now();
const backend = await selectBackend();
console.log(describeBackend(backend));

const env = point1d;
const policy = linearGaussianPolicy({ observationDim: 1, actionDim: 1, logStd: LOG_STD, low: -POINT_1D.maxAction, high: POINT_1D.maxAction });
const shapes = JSON.stringify(policy.paramShapes);
if (shapes !== '{"W0":[1,1],"b0":[1]}') throw new Error(`expected the two-parameter policy, got ${shapes}`);

interface Variant {
  readonly label: string;
  readonly trainer: (seed: number) => Trainer;
  /** Variants whose inner step is the same function share one J (and one optimum search). */
  readonly objective: string;
}
const builtin = (algo: 'dice-vpg' | 'emaml-vpg' | 'lvc-vpg') => (seed: number) => makeTrainer(resolveConfig({ ...SETTINGS, algo, seed }), env, policy);
const variants: Variant[] = [
  { label: 'I: DiCE (dice-vpg)', trainer: builtin('dice-vpg'), objective: 'DiCE inner step' },
  { label: 'II: E-MAML (emaml-vpg)', trainer: builtin('emaml-vpg'), objective: 'PGT / LVC inner step' },
  { label: 'I: LVC (lvc-vpg)', trainer: builtin('lvc-vpg'), objective: 'PGT / LVC inner step' },
];
const width = Math.max(...variants.map((v) => v.label.length));

console.log(
  `point-1d (goal ±1, start uniform in [−2, 2], horizon ${point1d.horizon}, actions clipped to ±${POINT_1D.maxAction}); ` +
    `policy a ~ N(θ0·x + θ1, σ = ${Math.exp(LOG_STD).toFixed(3)}), parameters ${shapes}`,
);
console.log(
  `each run: ${ITERATIONS} iterations × ${SETTINGS.tasksPerIteration} tasks × ${SETTINGS.trajectoriesPerTask} trajectories, ` +
    `inner step α = ${SETTINGS.innerStepSize}, Adam ${SETTINGS.outerLearningRate}, from θ = ${point(THETA_INIT)}, data seeds ${SEEDS.join(', ')}`,
);

// 1. training
const trainStarted = performance.now();
const paths: Path[][] = [];
for (const v of variants) {
  const runs: Path[] = [];
  for (const seed of SEEDS) runs.push(await train(v.trainer(seed)));
  paths.push(runs);
}
console.log(`training (${variants.length} × ${SEEDS.length} runs): ${seconds(trainStarted)}`);

// 2. the optimum of each distinct J (estimated with the seed-1 trainers)
const optStarted = performance.now();
console.log(
  `\nθ* = argmax J(θ); J = post-update average return by evaluateParams on ${EVAL_TASKS} tasks × ${SETTINGS.trajectoriesPerTask} trajectories, ` +
    `evaluation seed ${EVAL_SEED}; coarse grid θ0 ∈ [${COARSE.theta0[0]}, ${COARSE.theta0.at(-1)}] × θ1 ∈ [${COARSE.theta1[0]}, ${COARSE.theta1.at(-1)}], ` +
    `step 0.25, then 5 × 5 around the best point, step ${FINE_STEP}`,
);
const optimaByObjective = new Map<string, Optimum>();
const optima: Optimum[] = [];
for (const v of variants) {
  const trainer = v.trainer(SEEDS[0]!);
  const shared = optimaByObjective.get(v.objective);
  if (shared !== undefined) {
    // The claim that this variant's J is the same function: check it at θ* and at the start.
    const other = variants.find((w) => w.objective === v.objective)!.trainer(SEEDS[0]!);
    let same = true;
    for (const th of [shared.theta, THETA_INIT]) same &&= (await J(trainer, th)) === (await J(other, th));
    if (same) {
      console.log(`  ${v.label.padEnd(width)}  same J as above (${v.objective}: equal estimates at θ* and θ_init)`);
      optima.push(shared);
      continue;
    }
  }
  const o = await findOptimum(trainer);
  optimaByObjective.set(v.objective, o);
  const all = [o.value, ...o.others];
  console.log(
    `  ${v.label.padEnd(width)}  θ* = ${point(o.theta)}  J(θ*) = ${o.value.toFixed(2)} (other seeds ${o.others.map((x) => x.toFixed(2)).join(', ')}: ` +
      `mean ${mean(all).toFixed(2)} ± sd ${sd(all).toFixed(2)}); coarse best ${point(o.coarse)} ${o.coarseValue.toFixed(2)}` +
      `${o.onBoundary ? ' ON THE GRID BOUNDARY' : ''}; J(θ_init) = ${(await J(trainer, THETA_INIT)).toFixed(2)}; ${o.evaluations} estimates`,
  );
  optima.push(o);
}
if (optima.some((o) => o.onBoundary)) {
  console.log('  (a θ* whose coarse point is on the grid boundary is only the best point of the grid: that J has no interior maximum there)');
}
console.log(`optimum search: ${seconds(optStarted)}`);

// 3. the paths of seed 1
console.log(`\nθ per iteration, data seed ${SEEDS[0]} (0 = initial); d = ‖θ − θ*‖, θ* of the run's own J`);
console.log(`iter | ${variants.map((v) => v.label.padEnd(22)).join(' | ')}`);
console.log(`     | ${variants.map(() => `${'θ0'.padStart(6)} ${'θ1'.padStart(6)} ${'d'.padStart(6)}  `).join(' | ')}`);
for (let it = 0; it <= ITERATIONS; it++) {
  const cells = variants.map((_, k) => {
    const th = paths[k]![0]!.thetas[it]!;
    return `${signed(th[0]).padStart(6)} ${signed(th[1]).padStart(6)} ${distance(th, optima[k]!.theta).toFixed(3).padStart(6)}  `;
  });
  console.log(`${String(it).padStart(4)} | ${cells.join(' | ')}`);
}

// 4. every seed, summarised
console.log(
  `\nper run: d(start) → d(end) [min d], path length / net displacement (1 = a straight path), ` +
    `mean post-update return R′ of the last 10 iterations (the run's own samples), J(θ_end) (evaluation seed ${EVAL_SEED})`,
);
for (const [k, v] of variants.entries()) {
  const finals: number[] = [];
  const line: string[] = [];
  for (const [s, p] of paths[k]!.entries()) {
    const d = p.thetas.map((th) => distance(th, optima[k]!.theta));
    const length = p.thetas.slice(1).reduce((acc, th, i) => acc + distance(th, p.thetas[i]!), 0);
    const net = distance(p.thetas[0]!, p.thetas.at(-1)!);
    finals.push(d.at(-1)!);
    line.push(
      `seed ${SEEDS[s]}: d ${d[0]!.toFixed(2)} → ${d.at(-1)!.toFixed(2)} [${Math.min(...d).toFixed(2)}], ` +
        `${(length / Math.max(net, 1e-9)).toFixed(2)}, R′ ${mean(p.postReturn.slice(-10)).toFixed(1)}, J ${(await J(v.trainer(SEEDS[0]!), p.thetas.at(-1)!)).toFixed(1)}`,
    );
  }
  console.log(`  ${v.label.padEnd(width)}  final d mean ${mean(finals).toFixed(2)}  |  ${line.join('  |  ')}`);
}
console.log(`\ntotal: ${seconds(started)}; live tensors at the end: ${tf.memory().numTensors}`);
