/**
 * Meta-gradient variance of the formulation-I estimators (ProMP Sec. 7.2, Fig. 4).
 *
 * At a fixed θ (policy.init(seed), optionally after a few training iterations), for each estimator
 *
 *   lvc    the `lvc-vpg` algorithm's meta-objective: LVC (ratio) inner step, LVC (ratio) outer objective
 *   dice   the `dice-vpg` one: DiCE inner and outer
 *   tmaml  the `tmaml` one: TMAML (DiCE + fitted-baseline control variate) inner and outer
 *
 * K independent batches are drawn (batch k: its own tasks, pre-update trajectories with θ, inner
 * step(s), post-update trajectories with each task's adapted parameters, all from generators seeded by
 * (seed, k)), and the meta-gradient g_k = ∇_θ mean_tasks meta-surrogate(θ; D_k, D'_k) is taken for each:
 * exactly the gradient the algorithm's outer step would use (before Adam). Batch k uses the same
 * seeds for every estimator (common random numbers): the pre-update trajectories are identical, the
 * post-update ones share their noise but not their policies (the inner steps differ).
 *
 * The spread of g_1 … g_K is summarised three ways (std over k with the 1/K normalisation, as np.std):
 *
 *   relativeStd      mean over parameter coordinates i of std_k(g_ki) / (|mean_k(g_ki)| + 1e-8): what
 *                    the released code's gradient-variance trainer logs as "Meta-GradientRStd" (the
 *                    quantity of Fig. 4). Heavy-tailed: coordinates whose mean is near 0 dominate it,
 *                    so it is noisy for small K.
 *   medianRelativeStd  the median over coordinates of the same ratio (robust to those coordinates).
 *   normRatio        ‖std_k(g)‖ / ‖mean_k(g)‖ = sqrt(Σ_i var_i) / ‖ḡ‖: one scale-free number per
 *                    estimator, dominated by the large coordinates. (‖ḡ‖ is itself estimated: for
 *                    small K it is inflated by the noise, E‖ḡ‖² = ‖μ‖² + Σ_i var_i / K.)
 *
 * Every tensor made here is disposed; `memory` reports tf.memory() before and after the study (the
 * parameters of a warm-up are made and freed inside it).
 *
 * Environment: `studyDefaults` uses nav-2d (dense reward, one inner step: the cheapest meaningful
 * setting); point-corners works too (`config: { env: 'point-corners' }`, three inner steps by
 * default, ~1.6× the time at the default sizes), but its sparse reward leaves many tasks of a small
 * batch with no reward at all (zero gradient): at 10 tasks × 10 trajectories ‖std‖/‖mean‖ ≈ 1 for
 * every estimator (the mean is barely resolved) and the coordinate mean `relativeStd` is dominated by
 * near-zero-mean coordinates (it ranked LVC above DiCE there while the median and norm measures did
 * not); it needs larger batches to settle.
 */
import * as tf from '@tensorflow/tfjs';
import type { AnyTaskDistribution } from '../envs/index.ts';
import { taskDistribution } from '../envs/index.ts';
import { mixSeeds, seededUniform } from '../random.ts';
import type { Params } from '../surrogates/batch.ts';
import { disposeParams, keepParams } from './algorithms.ts';
import type { AlgorithmName } from './algorithm-names.ts';
import { resolveConfig, type TrainConfig, type TrainConfigPatch } from './config.ts';
import { innerStep, levelData, makeTrainer, runIteration, type OptimizerState, type Trainer } from './iteration.ts';
import type { LevelData } from './meta-objective.ts';
import { adam, paramLayout, unflattenParams } from './optimizers.ts';
import type { Policy } from './policy.ts';
import { configPolicy } from './trainer-setup.ts';
import { averageReturn, disposeBatch, sampleGroups } from './sampler.ts';

export type VarianceEstimator = 'lvc' | 'dice' | 'tmaml';
export const varianceEstimators: readonly VarianceEstimator[] = ['lvc', 'dice', 'tmaml'];

/** The algorithm whose formulation-I meta-objective each estimator is measured with. */
export const estimatorAlgorithms: Readonly<Record<VarianceEstimator, AlgorithmName>> = {
  lvc: 'lvc-vpg',
  dice: 'dice-vpg',
  tmaml: 'tmaml',
};

/**
 * The study's default sizes (examples/metagrad-variance.ts, bench/metagrad-variance.ts): nav-2d (one
 * adaptation step, horizon 100), 10 tasks × 10 trajectories per batch, K = 10 batches, θ = init(1).
 * About a minute on the wasm backend of a 2-core machine.
 */
export const studyDefaults = {
  config: { env: 'nav-2d', seed: 1, tasksPerIteration: 10, trajectoriesPerTask: 10 },
  batches: 10,
} as const satisfies VarianceOptions;

export class VarianceError extends Error {
  override readonly name = 'VarianceError';
}

export interface VarianceOptions {
  /**
   * Sizes and settings (tasksPerIteration, trajectoriesPerTask, horizon, adaptationSteps, innerStepSize,
   * hidden, env, seed, …) over the defaults of src/meta/config.ts; `algo` is ignored (each estimator
   * sets its own). `seed` fixes θ = policy.init(seed) and every batch's generators.
   */
  readonly config?: TrainConfigPatch;
  /** K, the number of independent batches (≥ 2); default 10 (the released code's sampling rounds). */
  readonly batches?: number;
  /** Which estimators; default all three, in the order lvc, dice, tmaml. */
  readonly estimators?: readonly VarianceEstimator[];
  /** Train θ first: this many iterations of `algo` (default promp) with the same sizes; default none. */
  readonly warmup?: { readonly iterations: number; readonly algo?: AlgorithmName };
  /** Draw the tasks once (batch 0's) and only resample trajectories; default false (independent tasks). */
  readonly fixedTasks?: boolean;
  /** Progress: called after each meta-gradient. */
  readonly onGradient?: (info: { readonly estimator: VarianceEstimator; readonly batch: number; readonly seconds: number; readonly norm: number }) => void;
}

/** The spread of K gradients (see the module comment). */
export interface GradientSpread {
  readonly relativeStd: number;
  readonly medianRelativeStd: number;
  readonly normRatio: number;
  /** ‖mean_k g_k‖ and ‖std_k g_k‖ (coordinate-wise std, then the norm). */
  readonly meanNorm: number;
  readonly stdNorm: number;
}

export interface EstimatorVariance extends GradientSpread {
  readonly estimator: VarianceEstimator;
  readonly algorithm: AlgorithmName;
  /** ‖g_k‖ for each batch. */
  readonly gradientNorms: readonly number[];
  /** Average return per trajectory at each adaptation level, averaged over the K batches. */
  readonly averageReturn: readonly number[];
  readonly samplingSeconds: number;
  readonly gradientSeconds: number;
}

export interface VarianceResult {
  readonly estimators: Readonly<Partial<Record<VarianceEstimator, EstimatorVariance>>>;
  readonly batches: number;
  readonly parameterCount: number;
  readonly config: {
    readonly env: string;
    readonly seed: number;
    readonly tasksPerBatch: number;
    readonly trajectoriesPerTask: number;
    readonly horizon: number;
    readonly adaptationSteps: number;
    readonly innerStepSize: number;
    readonly discount: number;
    readonly gaeLambda: number;
    readonly hidden: readonly number[];
    readonly fixedTasks: boolean;
    readonly warmup: { readonly iterations: number; readonly algo: AlgorithmName } | null;
  };
  /** Average return per level of the warm-up's last iteration, when there was one. */
  readonly warmupReturn?: readonly number[];
  readonly memory: { readonly numTensorsBefore: number; readonly numTensorsAfter: number; readonly numBytesBefore: number; readonly numBytesAfter: number };
  readonly seconds: number;
}

// ---------------------------------------------------------------------------------------------------
// seeds and batches

/** The generator seeds of batch k (a namespace of its own: no training iteration uses them). */
export interface BatchSeeds {
  readonly tasks: number;
  /** Level j's trajectories are sampled with the seed mix(sampling, j) (src/meta/sampler.ts). */
  readonly sampling: number;
}

const mix = mixSeeds;

/** Batch k's seeds; with fixedTasks, every batch draws batch 0's tasks. */
export const batchSeeds = (seed: number, k: number, fixedTasks = false): BatchSeeds => {
  const index = 3_000_000 + k;
  return {
    tasks: mix(seed, fixedTasks ? 3_000_000 : index, 0),
    sampling: mix(seed, index, 1),
  };
};

/** One meta-gradient sample: g = ∇_θ mean_tasks meta-surrogate on a fresh batch, flattened in paramShapes order. */
export interface MetaGradientSample {
  readonly gradient: Float32Array;
  /** Average return per trajectory at each adaptation level of this batch. */
  readonly averageReturn: readonly number[];
  readonly samplingSeconds: number;
  readonly gradientSeconds: number;
}

/**
 * Draws one batch with `seeds` (tasks, pre-update trajectories with θ, inner steps, post-update
 * trajectories) and returns the meta-gradient of the trainer's meta-objective at θ. `params` is not
 * disposed; nothing else survives the call.
 */
export const metaGradientSample = (trainer: Trainer, params: Params, seeds: BatchSeeds): MetaGradientSample => {
  const { config, distribution, policy, meta, horizon, adaptationSteps } = trainer;
  const seconds = (since: number) => (performance.now() - since) / 1000;
  const tasks = (distribution as AnyTaskDistribution).sampleTasks(seededUniform(seeds.tasks), config.tasksPerIteration);
  const levels: LevelData[][] = [];
  const levelParams: Params[][] = [tasks.map(() => params)];
  const returns: number[] = [];
  let samplingSeconds = 0;
  try {
    for (let j = 0; j <= adaptationSteps; j++) {
      const started = performance.now();
      const trajectories = sampleGroups({ distribution, policy, tasks, params: levelParams[j]!, perGroup: config.trajectoriesPerTask, horizon, seed: mix(seeds.sampling, j, 4) });
      returns.push(trajectories.reduce((acc, tr) => acc + averageReturn(tr), 0) / trajectories.length);
      levels.push(trajectories.map((tr) => levelData(trainer, tr)));
      samplingSeconds += seconds(started);
      if (j === adaptationSteps) break;
      levelParams.push(levels[j]!.map((data, i) => tf.tidy(() => keepParams(innerStep(trainer, levelParams[j]![i]!, data)))));
    }
    const gradientStarted = performance.now();
    const names = Object.keys(policy.paramShapes);
    const pre = (i: number) => levels.slice(0, adaptationSteps).map((level) => level[i]!);
    const post = (i: number) => levels[adaptationSteps]![i]!;
    const flat = tf.tidy(() => {
      const objective = (...values: tf.Tensor[]): tf.Scalar => {
        const p: Params = Object.fromEntries(names.map((n, k) => [n, values[k]!]));
        const theta = trainer.parameters.toGraph(p);
        return tf.div(tf.addN(tasks.map((_, i) => meta.surrogate(theta, pre(i), post(i)))), tasks.length) as tf.Scalar;
      };
      const grads = tf.grads(objective)(names.map((n) => params[n]!));
      return tf.concat(grads.map((g) => tf.reshape(g, [-1])));
    });
    const gradient = Float32Array.from(flat.dataSync());
    flat.dispose();
    for (let i = 0; i < gradient.length; i++) {
      if (!Number.isFinite(gradient[i]!)) throw new VarianceError(`the meta-gradient of ${trainer.algorithm.name} is ${gradient[i]} at coordinate ${i}`);
    }
    return { gradient, averageReturn: returns, samplingSeconds, gradientSeconds: seconds(gradientStarted) };
  } finally {
    levels.flat().forEach((d) => disposeBatch(d.batch));
    levelParams.slice(1).flat().forEach(disposeParams);
  }
};

// ---------------------------------------------------------------------------------------------------
// statistics

/** The spread of K ≥ 2 gradients of equal length (see the module comment); std with the 1/K normalisation. */
export const gradientSpread = (gradients: readonly Float32Array[]): GradientSpread => {
  const K = gradients.length;
  if (K < 2) throw new VarianceError(`the spread of gradients needs at least 2 of them, got ${K}`);
  const P = gradients[0]!.length;
  if (gradients.some((g) => g.length !== P)) throw new VarianceError('the gradients differ in length');
  const ratios = new Float64Array(P);
  let meanSq = 0;
  let varSum = 0;
  let ratioSum = 0;
  for (let i = 0; i < P; i++) {
    let m = 0;
    for (const g of gradients) m += g[i]!;
    m /= K;
    let v = 0;
    for (const g of gradients) v += (g[i]! - m) ** 2;
    v /= K;
    meanSq += m * m;
    varSum += v;
    ratios[i] = Math.sqrt(v) / (Math.abs(m) + 1e-8);
    ratioSum += ratios[i]!;
  }
  ratios.sort();
  const median = P % 2 === 1 ? ratios[P >> 1]! : (ratios[(P >> 1) - 1]! + ratios[P >> 1]!) / 2;
  const meanNorm = Math.sqrt(meanSq);
  const stdNorm = Math.sqrt(varSum);
  return { relativeStd: ratioSum / P, medianRelativeStd: median, normRatio: stdNorm / meanNorm, meanNorm, stdNorm };
};

const norm = (g: Float32Array): number => Math.sqrt(g.reduce((a, x) => a + x * x, 0));

// ---------------------------------------------------------------------------------------------------
// the study

/** The study described in the module comment. */
export const metaGradientVariance = async (options: VarianceOptions = {}): Promise<VarianceResult> => {
  const started = performance.now();
  const K = options.batches ?? 10;
  if (!Number.isInteger(K) || K < 2) throw new VarianceError(`batches must be a whole number ≥ 2, got ${K}`);
  const which = options.estimators ?? varianceEstimators;
  if (which.length === 0) throw new VarianceError('no estimators to measure');
  const fixedTasks = options.fixedTasks ?? false;
  const base: TrainConfig = resolveConfig(options.config ?? {});
  const distribution = taskDistribution(base.env);
  const policy: Policy = configPolicy(base, distribution);
  const trainerFor = (algo: AlgorithmName): Trainer => makeTrainer({ ...base, algo }, distribution, policy);

  const memoryBefore = tf.memory();
  let params = policy.init(base.seed);
  let paramsDisposed = false;
  let warmupReturn: number[] | undefined;
  const warmupAlgo = options.warmup?.algo ?? 'promp';
  const warmupIterations = options.warmup?.iterations ?? 0;
  try {
    if (warmupIterations > 0) {
      const trainer = trainerFor(warmupAlgo);
      let state: OptimizerState = undefined;
      try {
        for (let it = 0; it < warmupIterations; it++) {
          const r = await runIteration(trainer, params, state, it);
          disposeParams(params);
          if (state !== undefined && state !== r.optimizerState) adam().dispose(state);
          params = r.params;
          state = r.optimizerState;
          warmupReturn = [...r.stats.averageReturn];
        }
      } finally {
        if (state !== undefined) adam().dispose(state);
      }
    }

    const results: Partial<Record<VarianceEstimator, EstimatorVariance>> = {};
    let first: Trainer | undefined;
    for (const estimator of which) {
      const algorithm = estimatorAlgorithms[estimator];
      const trainer = trainerFor(algorithm);
      first ??= trainer;
      const gradients: Float32Array[] = [];
      const returns: number[][] = [];
      let samplingSeconds = 0;
      let gradientSeconds = 0;
      for (let k = 0; k < K; k++) {
        const s = metaGradientSample(trainer, params, batchSeeds(base.seed, k, fixedTasks));
        gradients.push(s.gradient);
        returns.push([...s.averageReturn]);
        samplingSeconds += s.samplingSeconds;
        gradientSeconds += s.gradientSeconds;
        options.onGradient?.({ estimator, batch: k, seconds: s.samplingSeconds + s.gradientSeconds, norm: norm(s.gradient) });
      }
      results[estimator] = {
        estimator,
        algorithm,
        ...gradientSpread(gradients),
        gradientNorms: gradients.map(norm),
        averageReturn: returns[0]!.map((_, j) => returns.reduce((a, r) => a + r[j]!, 0) / K),
        samplingSeconds,
        gradientSeconds,
      };
    }
    const t = first!;
    disposeParams(params);
    paramsDisposed = true;
    const memoryAfter = tf.memory();
    return {
      estimators: results,
      batches: K,
      parameterCount: Object.values(policy.paramShapes).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0),
      config: {
        env: base.env,
        seed: base.seed,
        tasksPerBatch: base.tasksPerIteration,
        trajectoriesPerTask: base.trajectoriesPerTask,
        horizon: t.horizon,
        adaptationSteps: t.adaptationSteps,
        innerStepSize: base.innerStepSize,
        discount: base.discount,
        gaeLambda: base.gaeLambda,
        hidden: [...base.hidden],
        fixedTasks,
        warmup: warmupIterations > 0 ? { iterations: warmupIterations, algo: warmupAlgo } : null,
      },
      ...(warmupReturn !== undefined ? { warmupReturn } : {}),
      memory: {
        numTensorsBefore: memoryBefore.numTensors,
        numTensorsAfter: memoryAfter.numTensors,
        numBytesBefore: memoryBefore.numBytes,
        numBytesAfter: memoryAfter.numBytes,
      },
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    if (!paramsDisposed) disposeParams(params);
  }
};

// ---------------------------------------------------------------------------------------------------
// along training (the released protocol of Fig. 4)

/** One iteration of `varianceAlongTraining`. */
export interface TrainingVariancePoint {
  readonly iteration: number;
  /** `relativeStd` of the iteration's K meta-gradients (mean over coordinates of std/(|mean| + 1e-8)). */
  readonly relativeStd: number;
  readonly medianRelativeStd: number;
  readonly normRatio: number;
  /** Average return per trajectory at each adaptation level, averaged over the K batches. */
  readonly averageReturn: readonly number[];
}

export interface TrainingVarianceOptions {
  /** The meta-objective the arm trains with (e.g. `lvc-vpg`, `vpg-dice`); it must have an Adam outer step. */
  readonly trainer: Trainer;
  readonly iterations: number;
  /** K meta-gradient samples per iteration (default 10, the released code's sampling rounds). */
  readonly batches?: number;
  /** Called after each iteration. */
  readonly onIteration?: (point: TrainingVariancePoint) => void;
  /** Checked between iterations: true stops the study early (the points so far are returned). */
  readonly stopRequested?: () => boolean;
}

/**
 * The released gradient-variance trainer (meta_trainer_gradient_variance.py L78-158): θ trained along
 * its own trajectory from policy.init(seed); at every iteration K meta-gradients at θ, each from its own
 * trajectories (and inner steps) on the iteration's tasks — drawn once per iteration, where the released
 * code draws new ones only for the last of its K rounds — their spread, and then one Adam step
 * (config.outerLearningRate) on the last of them, as the released code steps on its last round's
 * samples. Seeds: (config.seed, iteration) for the tasks, (config.seed, iteration, k) for batch k, in a
 * namespace of their own. Every tensor made here is disposed.
 */
export const varianceAlongTraining = async (options: TrainingVarianceOptions): Promise<TrainingVariancePoint[]> => {
  const { trainer, iterations } = options;
  const K = options.batches ?? 10;
  if (!Number.isInteger(K) || K < 2) throw new VarianceError(`batches must be a whole number ≥ 2, got ${K}`);
  if (trainer.algorithm.optimizer !== 'adam') throw new VarianceError(`the study steps with Adam; ${trainer.algorithm.name} does not`);
  const { config, policy } = trainer;
  const layout = paramLayout(policy.paramShapes);
  const optimizer = adam({ learningRate: config.outerLearningRate });
  let params = policy.init(config.seed);
  let state = optimizer.init(params);
  const points: TrainingVariancePoint[] = [];
  try {
    for (let it = 0; it < iterations && !(options.stopRequested?.() ?? false); it++) {
      const gradients: Float32Array[] = [];
      const returns: number[][] = [];
      for (let k = 0; k < K; k++) {
        const seeds: BatchSeeds = { tasks: mix(config.seed, 5_000_000 + it, 0), sampling: mix(config.seed, 5_000_000 + it, 1 + k) };
        const s = metaGradientSample(trainer, params, seeds);
        gradients.push(s.gradient);
        returns.push([...s.averageReturn]);
        // The event loop gets a turn between samples (a stop request, a progress display).
        await new Promise((resolve) => setImmediate(resolve));
      }
      const spread = gradientSpread(gradients);
      const point: TrainingVariancePoint = {
        iteration: it,
        relativeStd: spread.relativeStd,
        medianRelativeStd: spread.medianRelativeStd,
        normRatio: spread.normRatio,
        averageReturn: returns[0]!.map((_, j) => returns.reduce((a, r) => a + r[j]!, 0) / K),
      };
      points.push(point);
      // Ascent on the meta-objective: Adam minimises, so it is given −g of the last batch.
      const next = tf.tidy(() => {
        const loss = unflattenParams(tf.neg(tf.tensor1d(gradients[K - 1]!)), layout);
        const stepped = optimizer.step(params, loss, state);
        return { params: keepParams(stepped.params), state: { step: stepped.state.step, m: keepParams(stepped.state.m), v: keepParams(stepped.state.v) } };
      });
      disposeParams(params);
      optimizer.dispose(state);
      params = next.params;
      state = next.state;
      options.onIteration?.(point);
    }
  } finally {
    disposeParams(params);
    optimizer.dispose(state);
  }
  return points;
};
