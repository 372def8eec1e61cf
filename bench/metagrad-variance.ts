/**
 * Meta-gradient variance of LVC, DiCE and TMAML (ProMP Sec. 7.2, Fig. 4) as a benchmark: the study of
 * src/meta/variance.ts at its default sizes (nav-2d, 10 tasks × 10 trajectories × horizon 100, one
 * adaptation step, K = 10 independent batches, θ = policy.init(1)), each estimator's formulation-I
 * meta-objective as its algorithm (lvc-vpg, dice-vpg, tmaml) defines it.
 *
 * Figures: `relativeStd` per estimator, the paper's measure (mean over parameter coordinates of
 * std_k(g) / (|mean_k(g)| + 1e-8), as the released code logs it); `diceOverLvc` and `tmamlOverDice`,
 * its ratios (the paper reports DiCE ≈ 1.6 × LVC on its MuJoCo tasks); the same for the robust
 * `medianRelativeStd` and `normRatio` = ‖std‖ / ‖mean‖; the mean gradient norms; tf.memory() before and
 * after. About a minute on the wasm backend of a 2-core machine.
 *
 * Options (after the name: `npm run bench -- metagrad-variance --batches=20`):
 *   --env=NAME          point-corners or nav-2d (default nav-2d; see variance.ts on point-corners)
 *   --tasks=N           tasks per batch (default 10)
 *   --trajectories=N    trajectories per task (default 10)
 *   --horizon=T         steps per trajectory (default: the environment's, 100)
 *   --steps=K           inner adaptation steps (default: the environment's)
 *   --batches=K         independent batches (default 10)
 *   --seed=S            θ = policy.init(S) and the batches' generators (default 1)
 *   --warmup=N          train θ with N ProMP iterations first (default 0)
 *   --quick             4 tasks × 5 trajectories, 4 batches (also MAGICBOX_BENCH_QUICK=1)
 */
import { metaGradientVariance, studyDefaults, varianceEstimators, type VarianceEstimator, type VarianceOptions } from '../src/meta/variance.ts';
import { benchArgs } from './_options.ts';

const parseOptions = (args: readonly string[]): VarianceOptions & { quick: boolean } => {
  const { quick, value, raw } = benchArgs('metagrad-variance', args, ['env', 'tasks', 'trajectories', 'horizon', 'steps', 'batches', 'seed', 'warmup']);
  const d = studyDefaults.config;
  const horizon = value('horizon');
  const steps = value('steps');
  const warmup = value('warmup', 0) ?? 0;
  const batches = value('batches', 2) ?? (quick ? 4 : studyDefaults.batches);
  return {
    config: {
      env: raw('env') ?? d.env,
      seed: value('seed', 0) ?? d.seed,
      tasksPerIteration: value('tasks') ?? (quick ? 4 : d.tasksPerIteration),
      trajectoriesPerTask: value('trajectories') ?? (quick ? 5 : d.trajectoriesPerTask),
      ...(horizon !== undefined ? { horizon } : {}),
      ...(steps !== undefined ? { adaptationSteps: steps } : {}),
    },
    batches,
    ...(warmup > 0 ? { warmup: { iterations: warmup, algo: 'promp' as const } } : {}),
    quick,
  };
};

const round = (x: number, digits = 4): number => Number(x.toPrecision(digits));

const log = (msg: string) => process.stderr.write(`[metagrad-variance] ${msg}\n`);

export const run = async (args: readonly string[] = []): Promise<Record<string, unknown>> => {
  const { quick, ...options } = parseOptions(args);
  const result = await metaGradientVariance({
    ...options,
    onGradient: ({ estimator, batch, seconds, norm }) => log(`${estimator} batch ${batch}: ${seconds.toFixed(2)} s, |g| = ${norm.toExponential(3)}`),
  });
  const per = (f: (e: NonNullable<(typeof result.estimators)[VarianceEstimator]>) => number) =>
    Object.fromEntries(varianceEstimators.map((name) => [name, round(f(result.estimators[name]!))])) as Record<VarianceEstimator, number>;
  const relativeStd = per((e) => e.relativeStd);
  const medianRelativeStd = per((e) => e.medianRelativeStd);
  const normRatio = per((e) => e.normRatio);
  const ratios = (x: Record<VarianceEstimator, number>) => ({ diceOverLvc: round(x.dice / x.lvc, 3), tmamlOverDice: round(x.tmaml / x.dice, 3) });
  for (const name of varianceEstimators) {
    const e = result.estimators[name]!;
    log(`${name}: relativeStd ${e.relativeStd.toFixed(3)}, median ${e.medianRelativeStd.toFixed(3)}, ‖std‖/‖mean‖ ${e.normRatio.toFixed(3)}`);
  }
  return {
    relativeStd,
    ...ratios(relativeStd),
    medianRelativeStd,
    medianRatios: ratios(medianRelativeStd),
    normRatio,
    normRatios: ratios(normRatio),
    meanGradientNorm: per((e) => e.meanNorm),
    averageReturn: Object.fromEntries(varianceEstimators.map((n) => [n, result.estimators[n]!.averageReturn.map((x) => round(x, 4))])),
    measure:
      'relativeStd: mean over coordinates of std_k(g)/(|mean_k(g)|+1e-8) (np.std, 1/K), the released ProMP code\'s Meta-GradientRStd; ' +
      'medianRelativeStd: its median over coordinates; normRatio: ‖std_k(g)‖/‖mean_k(g)‖',
    config: { ...result.config, batches: result.batches, parameterCount: result.parameterCount, quick },
    memory: result.memory,
    memoryGrowth: result.memory.numTensorsAfter > result.memory.numTensorsBefore,
    seconds: round(result.seconds, 3),
  };
};
