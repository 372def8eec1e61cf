/**
 * A training run's configuration: one io-ts codec, so that a config file is decoded with errors that
 * name the bad field, and defaults (the paper's Table 1 / App. D, with the released code's inner step)
 * are filled in one place.
 */
import * as t from 'io-ts';
import { algorithmNames, type AlgorithmName } from './algorithm-names.ts';
import { environmentDescriptor, environmentNames } from '../envs/index.ts';
import { policyEngines, type PolicyEngine } from './rl-graph.ts';

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
const unitInterval = new t.Type<number, number, unknown>(
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
const count = new t.Type<number, number, unknown>(
  'Count',
  (u): u is number => typeof u === 'number' && Number.isInteger(u) && u >= 1,
  (u, c) => (typeof u === 'number' && Number.isInteger(u) && u >= 1 ? t.success(u) : t.failure(u, c, 'expected a whole number ≥ 1')),
  t.identity,
);
const seedCodec = new t.Type<number, number, unknown>(
  'Seed',
  (u): u is number => typeof u === 'number' && Number.isInteger(u) && u >= 0,
  (u, c) => (typeof u === 'number' && Number.isInteger(u) && u >= 0 ? t.success(u) : t.failure(u, c, 'expected a whole number ≥ 0')),
  t.identity,
);

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
    discount: unitInterval,
    gaeLambda: unitInterval,
    hidden: t.array(count),
    initLogStd: t.number,
    outerLearningRate: positive,
    /** ProMP: outer Adam steps per iteration, clip range ε, KL penalty η. */
    prompSteps: count,
    clip: openUnitInterval,
    klPenalty: t.number,
    /** TRPO: trust region (max KL), conjugate-gradient iterations, line search. */
    maxKl: positive,
    cgIterations: count,
    cgDamping: t.number,
    backtrackRatio: unitInterval,
    maxBacktracks: count,
    /** Write a checkpoint every this many iterations (and at the end). */
    checkpointEvery: count,
    /** How the policy's log-probability is differentiated: its fused op, or the general tfjs path. */
    engine: oneOf(policyEngines, 'Engine'),
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
