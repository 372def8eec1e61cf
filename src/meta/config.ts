/**
 * A training run's configuration: one io-ts codec, so that a config file is decoded with errors that
 * name the bad field, and defaults (the paper's Table 1 / App. D, with the released code's inner step)
 * are filled in one place.
 */
import * as t from 'io-ts';
import { algorithmNames, type AlgorithmName } from './algorithm-names.ts';
import { environmentDescriptor, environmentNames } from '../envs/index.ts';
import { policyEngines, type PolicyEngine } from './rl-graph.ts';
import { actionNormalizations, type ActionNormalization } from '../envs/action-normalization.ts';

const oneOf = <T extends string>(values: readonly T[], name: string) =>
  new t.Type<T, T, unknown>(
    name,
    (u): u is T => typeof u === 'string' && (values as readonly string[]).includes(u),
    (u, c) => (typeof u === 'string' && (values as readonly string[]).includes(u) ? t.success(u as T) : t.failure(u, c, `expected one of ${values.join(', ')}`)),
    t.identity,
  );

const positive = new t.Type<number, number, unknown>(
  'PositiveNumber',
  (u): u is number => typeof u === 'number' && u > 0 && Number.isFinite(u),
  (u, c) => (typeof u === 'number' && u > 0 && Number.isFinite(u) ? t.success(u) : t.failure(u, c, 'expected a positive number')),
  t.identity,
);
const unitIntervalCodec = new t.Type<number, number, unknown>(
  'UnitInterval',
  (u): u is number => typeof u === 'number' && u >= 0 && u <= 1,
  (u, c) => (typeof u === 'number' && u >= 0 && u <= 1 ? t.success(u) : t.failure(u, c, 'expected a number in [0, 1]')),
  t.identity,
);
const openUnitInterval = new t.Type<number, number, unknown>(
  'OpenUnitInterval',
  (u): u is number => typeof u === 'number' && u > 0 && u < 1,
  (u, c) => (typeof u === 'number' && u > 0 && u < 1 ? t.success(u) : t.failure(u, c, 'expected a number strictly between 0 and 1')),
  t.identity,
);
/** A number within [min, max] (finite; Infinity, from JSON's 1e400, is out of range). */
const inRange = (name: string, min: number, max: number, expectation: string) =>
  new t.Type<number, number, unknown>(
    name,
    (u): u is number => typeof u === 'number' && Number.isFinite(u) && u >= min && u <= max,
    (u, c) => (typeof u === 'number' && Number.isFinite(u) && u >= min && u <= max ? t.success(u) : t.failure(u, c, expectation)),
    t.identity,
  );
/** A whole number in [min, max]; above 2^53 − 1 a number is no longer whole-number exact, so that is the ceiling. */
const whole = (name: string, min: number, max: number, expectation: string) =>
  new t.Type<number, number, unknown>(
    name,
    (u): u is number => typeof u === 'number' && Number.isSafeInteger(u) && u >= min && u <= max,
    (u, c) => (typeof u === 'number' && Number.isSafeInteger(u) && u >= min && u <= max ? t.success(u) : t.failure(u, c, expectation)),
    t.identity,
  );
const count = whole('Count', 1, Number.MAX_SAFE_INTEGER, 'expected a whole number ≥ 1 (at most 2^53 − 1)');
// A seed above 2^53 − 1 cannot be stored exactly in a JSON number: it would be silently rounded.
const seedCodec = whole('Seed', 0, Number.MAX_SAFE_INTEGER, 'expected a whole number from 0 to 2^53 − 1 (9007199254740991)');
const nonNegative = inRange('NonNegativeNumber', 0, Number.MAX_VALUE, 'expected a finite number ≥ 0');
/** exp(±20) spans std 2e-9 … 5e8: beyond it the Gaussian's density under- or overflows in float32. */
const logStd = inRange('LogStd', -20, 20, 'expected a number from −20 to 20 (a log standard deviation)');

/** Which inner levels' data ProMP's KL penalty sees: every level's, averaged (released), or level 0's (eq. 13). */
export type PrompKlLevels = 'every-level' | 'pre-update';
export const prompKlLevelChoices: readonly PrompKlLevels[] = ['every-level', 'pre-update'];

/**
 * E-MAML's score term: `released` (vpg_maml.py / trpo_maml.py) adds mean(log π_θ on D₀) × ⊥(the task's
 * mean post-update reward, normalised over every task's post-update rewards), for level 0 only;
 * `every-level` adds Σ_j mean(log π_θj on D_j) × ⊥(the mean post-update reward), for every level j.
 */
export type EmamlScore = 'released' | 'every-level';
export const emamlScoreChoices: readonly EmamlScore[] = ['released', 'every-level'];

/** Every field optional: what a config file or the command line may set. */
export const TrainConfigPatchCodec = t.exact(
  t.partial({
    algo: oneOf(algorithmNames, 'Algorithm'),
    env: t.string,
    iterations: count,
    seed: seedCodec,
    tasksPerIteration: count,
    trajectoriesPerTask: count,
    /** Steps per trajectory (default: the environment's). */
    horizon: count,
    /** Inner adaptation steps (default: the environment's). */
    adaptationSteps: count,
    innerStepSize: positive,
    discount: unitIntervalCodec,
    gaeLambda: unitIntervalCodec,
    hidden: t.array(whole('Width', 1, 65536, 'expected a whole number from 1 to 65536')),
    initLogStd: logStd,
    outerLearningRate: positive,
    /** ProMP: outer Adam steps per iteration, clip range ε, KL penalty η. */
    prompSteps: count,
    clip: openUnitInterval,
    klPenalty: nonNegative,
    /** TRPO: trust region (max KL), conjugate-gradient iterations, line search. */
    maxKl: positive,
    cgIterations: count,
    cgDamping: nonNegative,
    /** Strictly between 0 and 1: 1 would never shrink the step, 0 would make it vanish at once. */
    backtrackRatio: openUnitInterval,
    maxBacktracks: count,
    /** Write a checkpoint every this many iterations (and at the end). */
    checkpointEvery: count,
    /** How the policy's log-probability is differentiated: its fused op, or the general tfjs path. */
    engine: oneOf(policyEngines, 'Engine'),
    /** How the policy acts: in [−10, 10] mapped onto the bounds (the released normalize()), or raw (default: the environment's). */
    actionNormalization: oneOf(actionNormalizations, 'ActionNormalization'),
    /** ProMP: the KL penalty on every inner level's data, averaged over levels (released pro_mp.py), or on the pre-update level only (eq. 13). */
    prompKlLevels: oneOf(prompKlLevelChoices, 'PrompKlLevels'),
    /** E-MAML: the score term for the pre-update level only with task-normalised rewards (released), or for every level with raw rewards. */
    emamlScore: oneOf(emamlScoreChoices, 'EmamlScore'),
  }),
);
export type TrainConfigPatch = t.TypeOf<typeof TrainConfigPatchCodec>;

export interface TrainConfig {
  readonly algo: AlgorithmName;
  readonly env: string;
  readonly iterations: number;
  readonly seed: number;
  readonly tasksPerIteration: number;
  readonly trajectoriesPerTask: number;
  readonly horizon: number | undefined;
  readonly adaptationSteps: number | undefined;
  readonly innerStepSize: number;
  readonly discount: number;
  readonly gaeLambda: number;
  readonly hidden: readonly number[];
  readonly initLogStd: number;
  readonly outerLearningRate: number;
  readonly prompSteps: number;
  readonly clip: number;
  readonly klPenalty: number;
  readonly maxKl: number;
  readonly cgIterations: number;
  readonly cgDamping: number;
  readonly backtrackRatio: number;
  readonly maxBacktracks: number;
  readonly checkpointEvery: number;
  readonly engine: PolicyEngine;
  /** Undefined until completed with the environment's default (run-config.ts `completeConfig`). */
  readonly actionNormalization: ActionNormalization | undefined;
  readonly prompKlLevels: PrompKlLevels;
  readonly emamlScore: EmamlScore;
}

/** The paper's settings (Table 1, App. D), with the released code's inner step size 0.1. */
export const defaultConfig: TrainConfig = {
  algo: 'promp',
  env: 'point-corners',
  iterations: 100,
  seed: 1,
  tasksPerIteration: 40,
  trajectoriesPerTask: 20,
  horizon: undefined,
  adaptationSteps: undefined,
  innerStepSize: 0.1,
  discount: 0.99,
  gaeLambda: 1,
  hidden: [64, 64],
  initLogStd: 0,
  outerLearningRate: 1e-3,
  prompSteps: 5,
  clip: 0.3,
  klPenalty: 5e-4,
  maxKl: 0.01,
  cgIterations: 10,
  cgDamping: 1e-5,
  backtrackRatio: 0.8,
  maxBacktracks: 15,
  checkpointEvery: 10,
  engine: 'fused',
  actionNormalization: undefined,
  prompKlLevels: 'every-level',
  emamlScore: 'released',
};

/**
 * Layers patches over the defaults, later ones winning (file, then command line). Unless a patch sets
 * `hidden`, an environment whose paper policy is not (64, 64) (the humanoid's (128, 128)) gets its own.
 */
export const resolveConfig = (...patches: readonly TrainConfigPatch[]): TrainConfig => {
  const merged = patches.reduce<TrainConfig>((acc, p) => ({ ...acc, ...Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) }), defaultConfig);
  if (patches.some((p) => p.hidden !== undefined)) return merged;
  const environmentHidden = environmentNames.includes(merged.env) ? environmentDescriptor(merged.env).policyHidden : undefined;
  return environmentHidden === undefined ? merged : { ...merged, hidden: [...environmentHidden] };
};
