/**
 * One meta-training iteration, shared by every algorithm (ProMP's Alg. 1 in general form):
 *   1. sample tasks; 2. for each adaptation level j = 0 … k sample trajectories per task with that
 *   task's level-j parameters, turn them into the RL graph's batches, and take the inner step to get
 *   level j + 1's parameters; 3. the outer step on Σ_tasks of the meta-surrogate.
 * Everything random comes from generators seeded by (seed, iteration, purpose), so an iteration's
 * numbers depend only on the parameters it starts from: a resumed run reproduces an uninterrupted one.
 */
import * as tf from '@tensorflow/tfjs';
import type { AnyTaskDistribution } from '../envs/index.ts';
import { mixSeeds, seededUniform } from '../random.ts';
import type { DistributionParams, Graph } from '../scg/builder.ts';
import { groupSum, type Params } from '../surrogates/batch.ts';
import { distributionsOf, meanKl, meanKlFrom, meanKlOf } from '../surrogates/divergence.ts';
import { evaluateGraph } from '../surrogates/evaluate.ts';
import { adjustedRewards, taskAdvantages } from './advantages.ts';
import { algorithms, disposeParams, keepParams, type Algorithm } from './algorithms.ts';
import type { TrainConfig } from './config.ts';
import { metaObjective, type LevelData, type MetaObjective } from './meta-objective.ts';
import { adam, backtrackingLineSearch, conjugateGradient, flattenParams, paramLayout, unflattenParams, type AdamState } from './optimizers.ts';
import type { Policy } from './policy.ts';
import { graphParameters, packedParameter, rlGraph, type GraphParameters } from './rl-graph.ts';
import type { OuterWorkers } from './outer-workers.ts';
import { disposeStacked, disposeStackedTasks, networkWidth, stackLevelData, stackSize, stackTasks, taskStacks } from './task-stack.ts';
import { readOut, sumOverTasks, tensorOf } from './task-sum.ts';
import { averageReturn, disposeBatch, inProcessSampler, toBatch, type Sampler, type Trajectories } from './sampler.ts';

export class TrainingError extends Error {
  override readonly name = 'TrainingError';
}

/** Everything an iteration needs that does not change between iterations. */
export interface Trainer {
  readonly config: TrainConfig;
  readonly distribution: AnyTaskDistribution;
  readonly policy: Policy;
  readonly algorithm: Algorithm;
  /** The RL graph the objectives are compiled from; its parameter nodes are `parameters`' graph side. */
  readonly graph: Graph;
  /** The meta-objective of `graph`: it takes and returns parameters in the graph's form (`parameters`). */
  readonly meta: MetaObjective;
  /** The policy's named parameters ↔ the graph's (the same, or one packed θ on the fused engine). */
  readonly parameters: GraphParameters;
  readonly horizon: number;
  readonly adaptationSteps: number;
  /** Where trajectories come from: this thread, or worker threads (the same trajectories either way). */
  readonly sampler: Sampler;
  /** Where the Adam / ProMP outer step's per-task terms are computed: worker threads, or (absent) this one. */
  readonly outerWorkers?: OuterWorkers;
  /**
   * The most one stack of tasks may hold, in rows × the network's width (task-stack.ts; default
   * `stackUnits`, 10 point-mass tasks): lower it to bound the outer step's memory further. It changes
   * how tasks are grouped, not a number.
   */
  readonly stackUnits?: number;
}

/** A trainer; without `sampler`, trajectories are sampled in this thread. */
export const makeTrainer = (config: TrainConfig, distribution: AnyTaskDistribution, policy: Policy, sampler?: Sampler): Trainer => {
  const algorithm = algorithms[config.algo];
  // TRPO's Hessian-vector products differentiate the meta-gradient once more (a third derivative of
  // log π), past what the fused op provides: it takes the general path.
  const engine = algorithm.optimizer === 'trpo' ? 'tfjs' : config.engine;
  const graph = rlGraph(policy, distribution.name, engine);
  const adaptationSteps = config.adaptationSteps ?? distribution.adaptationSteps;
  const meta = metaObjective(graph, {
    formulation: algorithm.formulation,
    inner: algorithm.inner,
    stepSize: config.innerStepSize,
    steps: adaptationSteps,
    outerEstimator: algorithm.outer(config),
    score: config.emamlScore === 'released' ? 'pre-update' : 'every-level',
  });
  return {
    config,
    distribution,
    policy,
    algorithm,
    graph,
    meta,
    parameters: graphParameters(policy, engine),
    horizon: config.horizon ?? distribution.horizon,
    adaptationSteps,
    sampler: sampler ?? inProcessSampler(distribution, policy),
  };
};

/** What one iteration measured. */
export interface IterationStats {
  readonly iteration: number;
  /** Average undiscounted return per trajectory at each adaptation level (0: pre-update). */
  readonly averageReturn: readonly number[];
  /** Environment steps taken in this iteration. */
  readonly timesteps: number;
  readonly samplingSeconds: number;
  readonly adaptationSeconds: number;
  readonly outerSeconds: number;
  /** The meta-objective before the outer step (averaged over tasks; maximised). */
  readonly objective: number;
  /**
   * ProMP: the meta-objective − η·KL after the outer steps (its `objective` before them is ~0 by
   * construction), the penalty's KL there (`prompKl`, mean over tasks) and the fraction of post-update
   * steps outside the clip range. TRPO: `kl` is the KL of the accepted step.
   */
  readonly objectiveAfter?: number;
  readonly clipFraction?: number;
  /** TRPO: the KL of the accepted step and whether the line search accepted one (ProMP: see above). */
  readonly kl?: number;
  readonly lineSearch?: string;
}

/** A generator's seed from the run seed, the iteration and what it is for. */
const stream = mixSeeds;

/**
 * Each trajectory weighted by 1 / (the task's real steps): the surrogate becomes the mean over time
 * steps, as in the released ProMP code, so that step sizes do not scale with the horizon.
 */
const perStepWeights = (tr: Trajectories): (() => tf.Tensor) => {
  const steps = Math.max(1, tr.mask.reduce((a, m) => a + m, 0));
  return () => tf.fill([tr.n], 1 / steps);
};

/** The batch a task's trajectories give, with the credit its algorithm uses. */
export const levelData = (trainer: Trainer, tr: Trajectories): LevelData => {
  const { config, policy, algorithm } = trainer;
  const adv = taskAdvantages({
    observations: tr.observations,
    rewards: tr.rewards,
    mask: tr.mask,
    n: tr.n,
    horizon: tr.horizon,
    observationDim: tr.observationDim,
    gamma: config.discount,
    lambda: config.gaeLambda,
    normalize: algorithm.credit !== 'discounted-costs',
  });
  if (algorithm.credit === 'advantages') return { batch: toBatch(tr, policy, adv.advantages), weights: perStepWeights(tr) };
  if (algorithm.credit === 'adjusted-rewards') {
    // The released DiCE runs: costs γᵗrₜ − b(t), normalised (no further discount: DiCE sums them as
    // they are); the GAE advantages ride along for a VPG outer objective (vpg-dice).
    const costs = adjustedRewards(tr.rewards, tr.mask, tr.n, tr.horizon, config.discount);
    return { batch: toBatch({ ...tr, rewards: costs }, policy, adv.advantages), weights: perStepWeights(tr) };
  }
  // DiCE family: costs γ^t·r_t (the discounted objective, exactly) and the baseline γ^t·V(s_t), both
  // divided by the task's advantage scale so that the inner step size means what it does elsewhere.
  let sum = 0;
  let sumSq = 0;
  let count = 0;
  for (let k = 0; k < tr.mask.length; k++) {
    if (tr.mask[k] === 0) continue;
    const a = adv.advantages[k]!;
    sum += a;
    sumSq += a * a;
    count++;
  }
  const mean = count > 0 ? sum / count : 0;
  const scale = Math.sqrt(Math.max(count > 0 ? sumSq / count - mean * mean : 0, 0)) + 1e-8;
  const costs = new Float32Array(tr.rewards.length);
  const baseline = new Float32Array(tr.rewards.length);
  for (let i = 0; i < tr.n; i++) {
    for (let t = 0; t < tr.horizon; t++) {
      const k = i * tr.horizon + t;
      const discount = config.discount ** t / scale;
      costs[k] = tr.rewards[k]! * discount;
      baseline[k] = adv.values[k]! * discount;
    }
  }
  const batch = toBatch({ ...tr, rewards: costs }, policy);
  return { batch: { ...batch, baselines: { a: tf.tensor2d(baseline, [tr.n, tr.horizon]) } }, weights: perStepWeights(tr) };
};

const assertFinite = (iteration: number, what: string, values: ArrayLike<number>): void => {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) throw new TrainingError(`iteration ${iteration}: the ${what} is ${values[i]} (entry ${i}); stopping before it reaches the parameters`);
  }
};

/**
 * Sampling with parameters that have diverged fails inside an environment (a non-finite action);
 * report it as the training failure it is, naming the iteration and the adaptation level.
 */
const sampleLevel = async (iteration: number, level: number, sample: () => Promise<Trajectories[]>): Promise<Trajectories[]> => {
  try {
    return await sample();
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    // A non-finite action means the parameters diverged; anything else (a crashed worker) is reported as is.
    const diverged = /action (NaN|-?Infinity)/.test(message) ? ` — the ${level === 0 ? 'policy' : 'adapted policy'} has diverged?` : '';
    throw new TrainingError(`iteration ${iteration}: sampling at adaptation level ${level} failed${diverged} (${message})`);
  }
};

/** The optimiser state carried between iterations (Adam's moments), or none. */
export type OptimizerState = AdamState | undefined;

export interface IterationResult {
  readonly params: Params;
  readonly optimizerState: OptimizerState;
  readonly stats: IterationStats;
}

/** What an iteration's sampling phase produced, per adaptation level and task. */
export interface SampledLevels {
  readonly tasks: readonly unknown[];
  /** trajectories[j][i]: what task i sampled at level j. */
  readonly trajectories: readonly (readonly Trajectories[])[];
  /** levels[j][i]: task i's data at level j (0: pre-update; the last: post-update). */
  readonly levels: readonly (readonly LevelData[])[];
  /** levelParams[j][i]: the parameters that sampled levels[j][i] (level 0's are the caller's). */
  readonly levelParams: readonly (readonly Params[])[];
  /** Average return per trajectory at each level. */
  readonly returns: readonly number[];
  readonly timesteps: number;
  readonly samplingSeconds: number;
  readonly adaptationSeconds: number;
}

/** Frees what `sampleLevels` made (not the caller's parameters). */
export const disposeLevels = (sampled: Pick<SampledLevels, 'levels' | 'levelParams'>): void => {
  sampled.levels.flat().forEach((d) => disposeBatch(d.batch));
  sampled.levelParams.slice(1).flat().forEach(disposeParams);
};

/**
 * Iteration `iteration`'s sampling phase from `params`: its tasks, then for each level j = 0 … k the
 * trajectories of every task with its level-j parameters, their batches, and the inner step that gives
 * level j + 1's parameters.
 */
export const sampleLevels = async (trainer: Trainer, params: Params, iteration: number): Promise<SampledLevels> => {
  const { config, distribution, horizon, adaptationSteps } = trainer;
  const seconds = (since: number) => (performance.now() - since) / 1000;
  const tasks = distribution.sampleTasks(seededUniform(stream(config.seed, iteration, 0)), config.tasksPerIteration);
  const levels: LevelData[][] = [];
  const levelParams: Params[][] = [tasks.map(() => params)];
  const sampledTrajectories: Trajectories[][] = [];
  const returns: number[] = [];
  let timesteps = 0;
  let samplingSeconds = 0;
  let adaptationSeconds = 0;
  try {
    for (let j = 0; j <= adaptationSteps; j++) {
      const started = performance.now();
      // Level j's trajectories come from streams seeded by (seed, iteration, level, task) alone.
      const trajectories = await sampleLevel(iteration, j, () =>
        trainer.sampler.sample({ tasks, params: levelParams[j]!, perGroup: config.trajectoriesPerTask, horizon, seed: stream(config.seed, iteration, 1 + j) }),
      );
      returns.push(trajectories.reduce((acc, tr) => acc + averageReturn(tr), 0) / trajectories.length);
      timesteps += trajectories.reduce((acc, tr) => acc + tr.mask.reduce((a, m) => a + m, 0), 0);
      sampledTrajectories.push(trajectories);
      levels.push(trajectories.map((tr) => levelData(trainer, tr)));
      samplingSeconds += seconds(started);
      if (j === adaptationSteps) break;
      const adapting = performance.now();
      levelParams.push(innerSteps(trainer, levelParams[j]!, levels[j]!));
      adaptationSeconds += seconds(adapting);
    }
  } catch (e) {
    disposeLevels({ levels, levelParams });
    throw e;
  }
  return { tasks, trajectories: sampledTrajectories, levels, levelParams, returns, timesteps, samplingSeconds, adaptationSeconds };
};

/**
 * One inner step θ′ = θ + α∇J(θ) on a level's data, in the policy's named parameters (the meta-objective
 * takes it in the graph's form: `trainer.parameters`).
 */
export const innerStep = (trainer: Trainer, params: Params, data: LevelData): Params => {
  const { toGraph, fromGraph } = trainer.parameters;
  return fromGraph(trainer.meta.innerStep(toGraph(params), data));
};

/** Whether the trainer stacks tasks (task-stack.ts): on the packed θ of a policy whose ops take θ of blocks. */
const stacksTasks = (trainer: Trainer): boolean => trainer.parameters.packed && trainer.policy.packed?.blocks === true;

/** The tasks one stack of this trainer's holds (task-stack.ts `stackSize`: by the batch's rows and the network's width). */
const tasksPerStack = (trainer: Trainer): number => {
  const { policy } = trainer;
  const width = networkWidth(policy.observationDim, policy.hidden, policy.action.kind === 'continuous' ? policy.action.dim : policy.action.n);
  return stackSize(trainer.config.trajectoriesPerTask * trainer.horizon, width, trainer.stackUnits);
};

/**
 * Each task's inner step from its parameters on its level data (kept: the caller disposes them). On the
 * fused engine's packed θ the tasks are stacked (task-stack.ts): one step on θ of as many blocks.
 */
export const innerSteps = (trainer: Trainer, current: readonly Params[], data: readonly LevelData[]): Params[] => {
  const { toGraph, fromGraph } = trainer.parameters;
  if (!stacksTasks(trainer)) return data.map((d, i) => tf.tidy(() => keepParams(innerStep(trainer, current[i]!, d))));
  return taskStacks(data.length, tasksPerStack(trainer)).flatMap(({ start, end }) => {
    const stacked = stackLevelData(data.slice(start, end));
    try {
      return tf.tidy(() => {
        const theta = tf.stack(current.slice(start, end).map((p) => toGraph(p)[packedParameter]!));
        const next = trainer.meta.innerStep({ [packedParameter]: theta }, stacked)[packedParameter]!;
        // tf.split, not tf.unstack: tfjs-wasm's Unpack copies the whole input out of the heap once per row.
        return tf.split(next, end - start).map((row) => keepParams(fromGraph({ [packedParameter]: tf.reshape(row, [-1]) })));
      });
    } finally {
      disposeStacked(stacked);
    }
  });
};

/**
 * The KL that ProMP's penalty weights by η, for one task at θ = p (θo = `start`, the parameters the
 * iteration started from; both in the policy's named parameters). `every-level` (the released
 * pro_mp.py, L101 and L152-155): at each inner level j, KL(π_θj_old ‖ π_θj(θ)) on D_j — θj_old the
 * parameters that sampled D_j (θo, then θo's adapted ones), θj(θ) the same adaptation from θ — averaged
 * over the levels. `pre-update` (the paper's eq. 13): KL(π_θo ‖ π_θ) on D₀. With one inner step the two
 * are the same.
 */
export const prompKl = (trainer: Trainer, start: Params, pre: readonly LevelData[], p: Params): tf.Scalar =>
  prompKlOfGraph(trainer, trainer.parameters.toGraph(start), pre, trainer.parameters.toGraph(p)) as tf.Scalar;

/**
 * `prompKl` with θo and θ in the graph's form, and θ's adapted parameters (as `meta.adapt` gives them)
 * when the caller has them already, and the levels' KLs already computed beside their inner steps
 * (`computed`: undefined for a level computes it here). On stacked tasks (batches with groups:
 * task-stack.ts), one per task.
 */
const prompKlOfGraph = (
  trainer: Trainer,
  start: Params,
  pre: readonly LevelData[],
  p: Params,
  adapted?: readonly Params[],
  computed?: ReadonlyArray<tf.Tensor | undefined>,
): tf.Tensor => {
  const { graph, meta, parameters } = trainer;
  // The reference side of level j's KL: its precomputed distributions, else those of its parameters.
  const klAt = (j: number, old: () => Params, current: Params): tf.Tensor => {
    const done = computed?.[j];
    if (done !== undefined) return done;
    const fixed = pre[j]!.samplingDistributions;
    if (fixed !== undefined) return meanKlFrom(graph, fixed, current, pre[j]!.batch);
    // θo's adaptation on a stack would be the tasks' joint one, not each task's: a stack carries its reference.
    if (j > 0 && pre[j]!.batch.groups !== undefined) throw new TrainingError(`stacked tasks need their KL reference at level ${j} (samplingDistributions)`);
    return meanKl(graph, old(), current, pre[j]!.batch);
  };
  if (klLevels(trainer, pre) === 1) return klAt(0, () => start, p);
  // θo's adapted parameters are constants (they sampled the data): the data's record of them, else
  // computed from a copy of θo's values, so that no gradient path (not even one of zeros) runs through
  // their adaptation. θ's carry the gradient.
  let old: Params[] | undefined;
  const oldAt = (j: number) => () =>
    (old ??= pre.slice(1).every((d) => d.sampledBy !== undefined)
      ? [start, ...pre.slice(1).map((d) => parameters.toGraph(d.sampledBy!))]
      : [start, ...meta.adapt(copyParams(start), pre).slice(0, -1)])[j]!;
  const current = [p, ...(adapted ?? meta.adapt(p, pre)).slice(0, -1)];
  const kls = pre.map((_, j) => klAt(j, oldAt(j), current[j]!));
  return tf.div(kls.reduce((a, b) => tf.add(a, b)), pre.length);
};

/**
 * θ's adapted parameters and, beside each inner step whose level ProMP's KL reads with a precomputed
 * reference, that level's KL from the evaluation the step differentiates (`MetaObjective.adaptBeside`):
 * with the fused policy one op computes the step's log-probabilities and the KL's distribution, so one
 * forward and one backward pass serve both, where the KL's own evaluation ran them again on the same θ_j
 * and states. The KLs are the caller's to dispose.
 */
const adaptWithKl = (trainer: Trainer, pre: readonly LevelData[], theta: Params) => {
  const levels = klLevels(trainer, pre);
  const { adapted, beside } = trainer.meta.adaptBeside(theta, pre, (j) => {
    const fixed = pre[j]!.samplingDistributions;
    return j < levels && fixed !== undefined ? (evaluation) => meanKlOf(trainer.graph, fixed, evaluation, pre[j]!.batch) : undefined;
  });
  return { adapted, kls: beside };
};

/** How many levels ProMP's KL reads: 1 (eq. 13, or one inner step) or every pre-update level. */
const klLevels = (trainer: Trainer, pre: readonly LevelData[]): number =>
  trainer.config.prompKlLevels === 'pre-update' || pre.length === 1 ? 1 : pre.length;

/**
 * `pre` with the reference side of ProMP's KL computed once: each level's sampling distributions on
 * its batch (θo's for level 0, `sampledBy`'s for the later ones the KL reads), constants over the outer
 * steps that would otherwise recompute them at every step. Dispose with `dispose` when done.
 */
export const withSamplingDistributions = (trainer: Trainer, start: Params, pre: readonly LevelData[]): { pre: LevelData[]; dispose: () => void } => {
  const kept: tf.Tensor[] = [];
  const levels = klLevels(trainer, pre);
  const out = pre.map((d, j): LevelData => {
    const by = j === 0 ? start : d.sampledBy;
    if (j >= levels || by === undefined) return d;
    const fixed = new Map<string, DistributionParams>();
    tf.tidy(() => {
      // Clones: a distribution may hand back a parameter itself (a learned log-std), which is not ours to free.
      for (const [name, params] of distributionsOf(trainer.graph, trainer.parameters.toGraph(by), d.batch)) {
        const own = Object.fromEntries(Object.entries(params).map(([k, t]) => [k, tf.keep(tf.clone(t as tf.Tensor))]));
        kept.push(...Object.values(own));
        fixed.set(name, own as unknown as DistributionParams);
      }
    });
    return { ...d, samplingDistributions: fixed };
  });
  return { pre: out, dispose: () => tf.dispose(kept) };
};

const copyParams = (p: Params): Params => Object.fromEntries(Object.entries(p).map(([name, value]) => [name, tf.tensor(value.dataSync(), value.shape)]));

/** Whether ProMP's KL needs the adapted parameters that sampled the levels after the first. */
export const needsSamplingParams = (trainer: Trainer): boolean =>
  trainer.algorithm.optimizer === 'promp' && trainer.config.prompKlLevels === 'every-level' && trainer.adaptationSteps > 1;

/**
 * One task's term of the outer loss (to minimise) at θ: −its meta-surrogate on its pre- and
 * post-update data, plus for ProMP η·`prompKl`. The outer loss is the mean of these over tasks.
 * Parameters in the policy's named form; the graph's form is made once per call.
 */
export const outerTaskLoss =
  (trainer: Trainer, start: Params, pre: readonly LevelData[], post: LevelData) =>
  (p: Params): tf.Scalar =>
    outerTaskLossOfGraph(trainer, trainer.parameters.toGraph(start), pre, post)(trainer.parameters.toGraph(p)) as tf.Scalar;

/** `outerTaskLoss` on parameters in the graph's form (θo too); on stacked tasks, one per task. */
const outerTaskLossOfGraph =
  (trainer: Trainer, start: Params, pre: readonly LevelData[], post: LevelData) =>
  (theta: Params): tf.Tensor => {
    if (trainer.algorithm.optimizer !== 'promp') return tf.neg(trainer.meta.surrogate(theta, pre, post));
    // θ's adapted parameters serve the surrogate and the per-level KL alike: built once, the KLs beside.
    const { adapted, kls } = adaptWithKl(trainer, pre, theta);
    try {
      const value = tf.neg(trainer.meta.surrogate(theta, pre, post, adapted));
      const kl = prompKlOfGraph(trainer, start, pre, theta, adapted, kls);
      return tf.add(value, tf.mul(trainer.config.klPenalty, kl));
    } finally {
      // Kept past the inner steps' scopes; the ops reading them saved what their gradients need.
      tf.dispose(kls.filter((k): k is tf.Tensor => k !== undefined));
    }
  };

/**
 * What a ProMP iteration's outer step did, for one task at the parameters it ended with (its objective
 * at the start is ~0 by construction: normalised advantages, ratio 1): [the meta-objective −
 * η·`prompKl` (maximised), `prompKl`, the fraction of post-update steps whose likelihood ratio
 * π_θ′/π_θ′_old is outside [1 − ε, 1 + ε]].
 */
export const prompTaskDiagnostics = (trainer: Trainer, start: Params, pre: readonly LevelData[], post: LevelData, p: Params): [number, number, number] =>
  prompDiagnostics(trainer, start, pre, post, p)[0]!;

/**
 * θ [P] as every block of a θ of `count` blocks ([count, P]): the same parameters for each stacked task.
 * Repeated by a broadcasting add: tfjs-wasm's Tile took ~0.7 ms for ten blocks of 4,500 entries.
 */
const everyBlock = (theta: tf.Tensor, count: number): tf.Tensor => tf.add(tf.reshape(theta, [1, theta.size]), tf.zeros([count, theta.size]));

/** `prompTaskDiagnostics` of each task of a stack (task-stack.ts), or of the one task of unstacked data. */
export const prompDiagnostics = (trainer: Trainer, start: Params, pre: readonly LevelData[], post: LevelData, p: Params): Array<[number, number, number]> => {
  const groups = post.batch.groups;
  const read: Float32Array[] = [];
  tf.tidy(() => {
    const single = trainer.parameters.toGraph(p);
    // A stack: every task's block of θ is p.
    const theta = groups === undefined ? single : { [packedParameter]: everyBlock(single[packedParameter]!, groups) };
    const { adapted: adaptedAll, kls } = adaptWithKl(trainer, pre, theta);
    try {
      const kl = prompKlOfGraph(trainer, trainer.parameters.toGraph(start), pre, theta, adaptedAll, kls);
      const objective = tf.sub(trainer.meta.surrogate(theta, pre, post, adaptedAll), tf.mul(trainer.config.klPenalty, kl));
      const adapted = adaptedAll.at(-1)!;
      const logProbs = [...evaluateGraph(trainer.graph, adapted, post.batch).logProbs.values()].filter((lp) => lp.rank === 2);
      const logProb = logProbs.reduce((a, b) => tf.add(a, b));
      const ratio = tf.exp(tf.sub(logProb, post.batch.behaviour!.a!));
      const outside = tf.cast(tf.greater(tf.abs(tf.sub(ratio, 1)), trainer.config.clip), 'float32');
      const mask = post.batch.mask ?? tf.onesLike(outside);
      const fraction = tf.div(groupSum(tf.mul(outside, mask), groups), tf.maximum(groupSum(mask, groups), 1));
      read.push(...[objective, kl, fraction].map((t) => Float32Array.from(t.dataSync())));
    } finally {
      // Kept past the inner steps' scopes (adaptWithKl), so not this tidy's to free.
      tf.dispose(kls.filter((k): k is tf.Tensor => k !== undefined));
    }
  });
  return Array.from({ length: groups ?? 1 }, (_, k) => [read[0]![k]!, read[1]![k]!, read[2]![k]!]);
};

/**
 * E-MAML's score weight per task as released (meta_sample_processor.py L40-44, vpg_maml.py L134): the
 * task's mean post-update reward minus the mean over every task's post-update rewards, divided by
 * their (population) std + 1e-8; real steps only.
 */
export const emamlScoreWeights = (post: readonly Trajectories[]): number[] => {
  let sum = 0;
  let count = 0;
  for (const tr of post) for (let k = 0; k < tr.rewards.length; k++) if (tr.mask[k] !== 0) (sum += tr.rewards[k]!, count++);
  const mean = count > 0 ? sum / count : 0;
  let squares = 0;
  for (const tr of post) for (let k = 0; k < tr.rewards.length; k++) if (tr.mask[k] !== 0) squares += (tr.rewards[k]! - mean) ** 2;
  const std = count > 0 ? Math.sqrt(squares / count) : 0;
  return post.map((tr) => {
    let s = 0;
    let c = 0;
    for (let k = 0; k < tr.rewards.length; k++) if (tr.mask[k] !== 0) (s += tr.rewards[k]!, c++);
    return ((c > 0 ? s / c : mean) - mean) / (std + 1e-8);
  });
};

/** Whether the iteration's post-update data carries the released E-MAML score weights. */
export const usesScoreWeights = (trainer: Trainer): boolean => trainer.algorithm.formulation === 'II' && trainer.config.emamlScore === 'released';

/** [f(at), ∂f/∂p for each name] as tensors (for `readOut`). */
const valueAndGradients = (names: readonly string[], f: (p: Params) => tf.Scalar, at: Params): tf.Tensor[] => {
  const { value, grads } = tf.valueAndGrads((...values: tf.Tensor[]) => f(Object.fromEntries(names.map((n, k) => [n, values[k]!]))))(names.map((n) => at[n]!));
  return [value, ...grads];
};

/**
 * One task's outer-loss term at `at` and its gradient, [value, ∂/∂θ for each parameter in the policy's
 * order], read out into arrays: what the outer step adds over tasks, here or in a worker thread.
 */
export const outerTaskTerms = (trainer: Trainer, start: Params, pre: readonly LevelData[], post: LevelData, at: Params): Float32Array[] => {
  const names = Object.keys(trainer.policy.paramShapes);
  const { packed, toGraph } = trainer.parameters;
  if (!packed) return readOut(() => valueAndGradients(names, outerTaskLoss(trainer, start, pre, post), at));
  // On the packed θ the gradient is taken with respect to θ itself and cut into the named parameters
  // here, in arrays: packing θ on the tape would add a concat, whose gradient is a split (a Slice per
  // parameter, and tapes and clones for each).
  const [value, gradient] = readOut(() => {
    const theta = toGraph(at)[packedParameter]!;
    const loss = outerTaskLossOfGraph(trainer, toGraph(start), pre, post);
    const { value, grad } = tf.valueAndGrad((t: tf.Tensor) => loss({ [packedParameter]: t }))(theta);
    return [value, grad];
  });
  return [value!, ...byParameter(trainer, gradient!)];
};

/** A gradient on the packed θ ([P]) cut into the policy's named parameters, in its order (copies). */
const byParameter = (trainer: Trainer, flat: Float32Array): Float32Array[] => {
  let offset = 0;
  return Object.values(trainer.policy.paramShapes).map((shape) => {
    const entries = shape.reduce((a, b) => a * b, 1);
    return flat.slice(offset, (offset += entries));
  });
};

/**
 * How many tasks the outer step stacks into one computation (task-stack.ts), or undefined where it does
 * not stack (the tfjs engine; TRPO): as many as `stackSize` allows for the batch and the network, and few enough
 * that every one of `workers` outer-step threads gets a stack. A task's numbers are the same in a stack
 * of any size (its own block of every op, and of every reduction), so the choice changes no result.
 */
export const outerStackSize = (trainer: Trainer, tasks: number, workers = 1): number | undefined =>
  // TRPO's trainer is on the tfjs engine (makeTrainer): its θ is not packed, so it is not stacked.
  stacksTasks(trainer) ? Math.max(1, Math.min(tasksPerStack(trainer), Math.ceil(tasks / workers))) : undefined;

/**
 * `outerTaskTerms` of the K tasks stacked in `pre` and `post` (task-stack.ts: batches of K groups), in
 * one computation on θ of K blocks (every block `at`): each task's [value, ∂/∂θ per parameter] — bit
 * for bit those a stack of one gives, and to float32 rounding those of `outerTaskTerms`. The fused
 * engine's packed θ only.
 */
export const outerStackTerms = (trainer: Trainer, start: Params, pre: readonly LevelData[], post: LevelData, at: Params): Float32Array[][] => {
  const { packed, toGraph } = trainer.parameters;
  const count = post.batch.groups;
  if (!packed || count === undefined) throw new TrainingError('outerStackTerms needs the fused engine and stacked tasks (batches with groups)');
  const [values, gradient] = readOut(() => {
    const theta = toGraph(at)[packedParameter]!;
    const blocks = everyBlock(theta, count);
    const loss = outerTaskLossOfGraph(trainer, toGraph(start), pre, post);
    // The loss is one per task; its gradient with respect to the blocks, row k, task k's alone.
    const { value, grad } = tf.valueAndGrad((t: tf.Tensor) => loss({ [packedParameter]: t }))(blocks, tf.ones([count]));
    return [value, grad];
  });
  const size = gradient!.length / count;
  return Array.from({ length: count }, (_, k) => [values!.slice(k, k + 1), ...byParameter(trainer, gradient!.subarray(k * size, (k + 1) * size))]);
};

/**
 * Runs iteration `iteration` from `params`. Returns new parameters and optimiser state; the inputs are
 * not disposed (the caller decides, e.g. after a checkpoint).
 */
export const runIteration = async (trainer: Trainer, params: Params, optimizerState: OptimizerState, iteration: number): Promise<IterationResult> => {
  try {
    return await iterate(trainer, params, optimizerState, iteration);
  } catch (e) {
    throw memoryError(trainer, iteration, e) ?? e;
  }
};

/**
 * A backend that ran out of memory, as the training failure it is (naming the batch and what to lower),
 * or undefined for any other error. tfjs-wasm's heap is capped at 4 GB; when an allocation fails the
 * module aborts with a bare `Aborted()` RuntimeError (and is unusable after it), which says nothing a
 * user can act on.
 */
export const memoryError = (trainer: Trainer, iteration: number, e: unknown): TrainingError | undefined => {
  const message = e instanceof Error ? e.message : String(e);
  const outOfMemory =
    /Aborted\(|Cannot enlarge memory|Out of memory|out of memory|memory access out of bounds|Array buffer allocation failed/.test(message) ||
    (e instanceof Error && e.name === 'RuntimeError' && /abort/i.test(message));
  if (!outOfMemory) return undefined;
  const { tasksPerIteration, trajectoriesPerTask } = trainer.config;
  return new TrainingError(
    `iteration ${iteration}: the ${tf.getBackend()} backend ran out of memory with ${tasksPerIteration} tasks × ${trajectoriesPerTask} trajectories × ` +
      `horizon ${trainer.horizon} (${trainer.adaptationSteps} adaptation step(s), policy ${trainer.policy.hidden.join('×') || 'linear'}); ` +
      `lower --trajectories (or --horizon, or the hidden widths), or use a node backend, then resume from the last checkpoint`,
  );
};

const iterate = async (trainer: Trainer, params: Params, optimizerState: OptimizerState, iteration: number): Promise<IterationResult> => {
  const { config, policy, meta, graph, parameters, adaptationSteps } = trainer;
  const seconds = (since: number) => (performance.now() - since) / 1000;
  const sampled = await sampleLevels(trainer, params, iteration);
  const { tasks, levels, levelParams, returns, timesteps, samplingSeconds, adaptationSeconds } = sampled;
  const prepared: Array<{ pre: LevelData[]; dispose: () => void }> = [];
  const stacked: Array<ReturnType<typeof stackTasks>> = [];
  try {
    // ProMP's per-level KL refers to the parameters that sampled each level: the sampling phase's own.
    const withSampler = needsSamplingParams(trainer);
    const preOf = (i: number) => levels.slice(0, adaptationSteps).map((level, j) => (withSampler && j > 0 ? { ...level[i]!, sampledBy: levelParams[j]![i]! } : level[i]!));
    // ProMP: its KL's reference distributions, computed once for the five outer steps and the diagnostics.
    if (trainer.algorithm.optimizer === 'promp' && trainer.outerWorkers === undefined) {
      for (let i = 0; i < tasks.length; i++) prepared.push(withSamplingDistributions(trainer, params, preOf(i)));
    }
    const pre = (i: number): LevelData[] => prepared[i]?.pre ?? preOf(i);
    const scoreWeights = usesScoreWeights(trainer) ? emamlScoreWeights(sampled.trajectories[adaptationSteps]!) : undefined;
    const post = (i: number): LevelData =>
      scoreWeights === undefined ? levels[adaptationSteps]![i]! : { ...levels[adaptationSteps]![i]!, scoreWeight: scoreWeights[i]! };
    const names = Object.keys(policy.paramShapes);
    const shapes = names.map((n) => policy.paramShapes[n]!);
    const count = tasks.length;
    // The outer step's tasks in stacks (task-stack.ts), each stack's data stacked once for every step.
    const stackOf = outerStackSize(trainer, count, trainer.outerWorkers?.workers);
    const stacks =
      stackOf !== undefined && trainer.outerWorkers === undefined
        ? taskStacks(count, stackOf).map(({ start, end }) => {
            const stack = stackTasks(Array.from({ length: end - start }, (_, k) => ({ pre: pre(start + k), post: post(start + k) })));
            stacked.push(stack);
            return { start, ...stack };
          })
        : undefined;
    /**
     * Task i's value of a per-task computation: its stack's (computed when the stack's first task is
     * asked for, kept until the next stack's), or `alone` where the tasks are not stacked.
     */
    const perTaskOfStacks = <T>(ofStack: (stack: { pre: readonly LevelData[]; post: LevelData }) => T[], alone: (i: number) => T): ((i: number) => T) => {
      if (stacks === undefined) return alone;
      let held: { index: number; values: T[] } | undefined;
      return (i) => {
        const s = Math.floor(i / stackOf!);
        if (held?.index !== s) held = { index: s, values: ofStack(stacks[s]!) };
        return held.values[i - stacks[s]!.start]!;
      };
    };
    /** Task i's outer-loss term at `at`. */
    const termAt = (at: Params): ((i: number) => Float32Array[]) =>
      perTaskOfStacks(
        (stack) => outerStackTerms(trainer, params, stack.pre, stack.post, at),
        (i) => outerTaskTerms(trainer, params, pre(i), post(i), at),
      );
    const checkTerm = (i: number, values: readonly Float32Array[]) => {
      assertFinite(iteration, `meta-objective of task ${i}`, values[0]!);
      values.slice(1).forEach((g, k) => assertFinite(iteration, `meta-gradient of ${names[k]} (task ${i})`, g));
    };
    /**
     * Σ_i terms / count as the loss and its gradient, the terms added in task order (task-sum.ts); each
     * term computed on its own (one task's tape at a time), so memory stays that of one task.
     */
    const lossAndGradientOf = (term: (i: number) => readonly Float32Array[]): { loss: number; grads: Params } => {
      const [value, ...grads] = sumOverTasks(count, term, checkTerm);
      return { loss: value![0]! / count, grads: Object.fromEntries(names.map((n, k) => [n, tensorOf(grads[k]!, shapes[k]!, 1 / count)])) };
    };
    /** Mean over tasks of a per-task scalar, evaluated one task at a time (no gradient). */
    const meanOverTasks = (value: (i: number) => tf.Scalar): number => sumOverTasks(count, (i) => readOut(() => [value(i)]))[0]![0]! / count;

    const outerStarted = performance.now();
    /** The meta-objective at the parameters the iteration started from (the first outer step computes it). */
    let objectiveBefore = Number.NaN;
    const result = await (async (): Promise<{
      params: Params;
      optimizerState: OptimizerState;
      kl?: number;
      lineSearch?: string;
      after?: { objective: number; kl: number; clipFraction: number };
    }> => {
      switch (trainer.algorithm.optimizer) {
        case 'adam':
        case 'promp': {
          const optimizer = adam({ learningRate: config.outerLearningRate });
          let state = optimizerState ?? optimizer.init(params);
          let current = params;
          const steps = trainer.algorithm.optimizer === 'promp' ? config.prompSteps : 1;
          const workers = trainer.outerWorkers;
          // Each task's term here or in an outer-step worker: the same code, added in the same order.
          const stepLoss = async (at: Params) => {
            if (workers === undefined) return lossAndGradientOf(termAt(at));
            const terms = await workers.terms(params, at);
            return lossAndGradientOf((i) => terms[i]!);
          };
          // ProMP's per-level KL reads the parameters that sampled each level: the sampling phase's, sent along.
          if (workers !== undefined) await workers.load(sampled.trajectories, scoreWeights, stackOf, withSampler ? levelParams.slice(1, adaptationSteps) : undefined);
          /** ProMP's end-of-step statistics per task, where the workers computed them. */
          let afterInWorkers: readonly (readonly number[])[] | undefined;
          try {
            for (let n = 0; n < steps; n++) {
              const { loss, grads } = await stepLoss(current);
              // At the first step θ = θo, so the KL penalty is 0 and the loss is −objective.
              if (n === 0) objectiveBefore = -loss;
              const next = tf.tidy(() => {
                const stepped = optimizer.step(current, grads, state);
                return { params: keepParams(stepped.params), state: { step: stepped.state.step, m: keepParams(stepped.state.m), v: keepParams(stepped.state.v) } };
              });
              disposeParams(grads);
              if (current !== params) disposeParams(current);
              if (state !== optimizerState) optimizer.dispose(state);
              current = next.params;
              state = next.state;
            }
            // Where the tasks' data are, in their stacks and in parallel (on the main thread they would
            // be task by task: it holds no stacks when workers compute the terms).
            if (workers !== undefined && trainer.algorithm.optimizer === 'promp') afterInWorkers = await workers.diagnostics(params, current);
          } catch (e) {
            // A failed step (a NaN gradient) ends the run: free what the earlier steps made.
            if (current !== params) disposeParams(current);
            if (state !== optimizerState) optimizer.dispose(state);
            throw e;
          } finally {
            if (workers !== undefined) await workers.release();
          }
          if (trainer.algorithm.optimizer !== 'promp') return { params: current, optimizerState: state };
          // ProMP's objective at θo is ~0 by construction; what its outer step reached says more.
          const diagnostics =
            afterInWorkers !== undefined
              ? (i: number) => afterInWorkers![i]!
              : perTaskOfStacks((stack) => prompDiagnostics(trainer, params, stack.pre, stack.post, current), (i) => prompTaskDiagnostics(trainer, params, pre(i), post(i), current));
          const [after] = sumOverTasks(count, (i) => [Float32Array.from(diagnostics(i))]);
          return { params: current, optimizerState: state, after: { objective: after![0]! / count, kl: after![1]! / count, clipFraction: after![2]! / count } };
        }
        case 'trpo': {
          const layout = paramLayout(policy.paramShapes);
          const { loss, grads } = lossAndGradientOf((i) => outerTaskTerms(trainer, params, pre(i), post(i), params));
          objectiveBefore = -loss;
          const theta0 = flattenParams(params, layout);
          const gradient = tf.tidy(() => tf.neg(flattenParams(grads, layout)) as tf.Tensor1D);
          disposeParams(grads);
          // θ′_i(θ_old), the reference of each task's trust region: the parameters that sampled D′_i.
          const adaptedOld = levelParams[adaptationSteps]!;
          try {
            const objectiveAt = (flat: tf.Tensor1D): number =>
              tf.tidy(() => {
                const p = parameters.toGraph(unflattenParams(flat, layout));
                return meanOverTasks((i) => meta.surrogate(p, pre(i), post(i)) as tf.Scalar);
              });
            // The trust region is on the post-update policies: KL(π_θ′(θ_old) ‖ π_θ′(θ)) on D′, per task.
            const taskKl = (i: number, flat: tf.Tensor): tf.Scalar =>
              meanKl(graph, parameters.toGraph(adaptedOld[i]!), meta.adapt(parameters.toGraph(unflattenParams(flat, layout)), pre(i)).at(-1)!, post(i).batch) as tf.Scalar;
            const klAt = (flat: tf.Tensor1D): number => tf.tidy(() => meanOverTasks((i) => taskKl(i, flat)));
            const hvp = (v: tf.Tensor1D): tf.Tensor1D => {
              const [hv] = sumOverTasks(count, (i) =>
                readOut(() => [tf.grad((flat: tf.Tensor) => tf.sum(tf.mul(tf.grad((x: tf.Tensor) => taskKl(i, x))(flat), v)) as tf.Scalar)(theta0)]),
              );
              return tf.tidy(() => tf.add(tensorOf(hv!, [layout.size], 1 / count), tf.mul(config.cgDamping, v)) as tf.Tensor1D);
            };
            const direction = conjugateGradient(hvp, gradient, config.cgIterations);
            const curvature = tf.tidy(() => {
              const hd = hvp(direction);
              return tf.sum(tf.mul(direction, hd)).dataSync()[0]!;
            });
            const fullStep = tf.mul(direction, Math.sqrt((2 * config.maxKl) / Math.max(curvature, 1e-12))) as tf.Tensor1D;
            direction.dispose();
            const search = backtrackingLineSearch((x) => -objectiveAt(x), klAt, theta0, fullStep, {
              maxConstraint: config.maxKl,
              backtrackRatio: config.backtrackRatio,
              maxSteps: config.maxBacktracks,
              lossBefore: -objectiveBefore,
            });
            fullStep.dispose();
            const next = keepParams(tf.tidy(() => unflattenParams(search.x, layout)));
            search.x.dispose();
            return {
              params: next,
              optimizerState: undefined,
              ...(search.constraint !== undefined ? { kl: search.constraint } : {}),
              lineSearch: search.accepted ? `accepted ${search.stepFraction.toPrecision(3)}` : search.reason,
            };
          } finally {
            theta0.dispose();
            gradient.dispose();
          }
        }
      }
    })();
    const stats: IterationStats = {
      iteration,
      averageReturn: returns,
      timesteps,
      samplingSeconds,
      adaptationSeconds,
      outerSeconds: seconds(outerStarted),
      objective: objectiveBefore,
      ...(result.after !== undefined ? { objectiveAfter: result.after.objective, kl: result.after.kl, clipFraction: result.after.clipFraction } : {}),
      ...(result.kl !== undefined ? { kl: result.kl } : {}),
      ...(result.lineSearch !== undefined ? { lineSearch: result.lineSearch } : {}),
    };
    return { params: result.params, optimizerState: result.optimizerState, stats };
  } finally {
    prepared.forEach((p) => p.dispose());
    stacked.forEach(disposeStackedTasks);
    disposeLevels(sampled);
  }
};

/** Evaluates parameters on fresh tasks: the average return at each adaptation level, no outer step. */
export const evaluateParams = async (trainer: Trainer, params: Params, seed: number, tasksCount: number): Promise<number[]> => {
  const { config, distribution, horizon, adaptationSteps } = trainer;
  // Seeded by the evaluation seed alone, so that runs trained with different seeds meet the same tasks.
  const iteration = 1_000_000;
  const tasks = distribution.sampleTasks(seededUniform(stream(seed, iteration, 0)), tasksCount);
  let current: Params[] = tasks.map(() => params);
  const returns: number[] = [];
  for (let j = 0; j <= adaptationSteps; j++) {
    const trajectories = await trainer.sampler.sample({ tasks, params: current, perGroup: config.trajectoriesPerTask, horizon, seed: stream(seed, iteration, 1 + j) });
    returns.push(trajectories.reduce((acc, tr) => acc + averageReturn(tr), 0) / trajectories.length);
    if (j === adaptationSteps) break;
    const next = innerStepsOn(trainer, current, trajectories);
    if (j > 0) current.forEach(disposeParams);
    current = next;
  }
  if (adaptationSteps > 0) current.forEach(disposeParams);
  return returns;
};

/**
 * Each task's parameters after one inner step on its trajectories (kept: the caller disposes them);
 * `current[i]` and `trajectories[i]` are task i's. The level's batches are freed here.
 */
export const innerStepsOn = (trainer: Trainer, current: readonly Params[], trajectories: readonly Trajectories[]): Params[] => {
  const data = trajectories.map((tr) => levelData(trainer, tr));
  try {
    return innerSteps(trainer, current, data);
  } finally {
    data.forEach((d) => disposeBatch(d.batch));
  }
};
