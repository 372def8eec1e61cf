/**
 * The meta-RL algorithms side by side on one task distribution at one small, equal budget: ProMP,
 * MAML-TRPO, E-MAML-TRPO, LVC-VPG and DiCE-VPG (src/meta/algorithms.ts), each trained with several
 * seeds from its own seed's initial policy, every run with the same iterations × tasks × trajectories
 * × horizon (the same sampling budget; nav-2d episodes that reach the goal end early, so the
 * environment steps actually taken are reported as well).
 *
 * Reported per algorithm, as mean and sample standard deviation over the seeds:
 *   finalPostUpdateReturn  the mean of the last 2 iterations' post-update average return (each
 *                          iteration's own post-update trajectories, sampled before its outer step)
 *   evalPostUpdateReturn   the final parameters evaluated on `evalTasks` fresh tasks (evaluateParams,
 *                          evaluation seed 1000 for every run: the same tasks for all): pre- and
 *                          post-update average return
 *   firstPostUpdateReturn  iteration 0's post-update return (where every run started from)
 * plus the seconds per run and in all, and the ordering by finalPostUpdateReturn. Nothing is tuned per
 * algorithm: every run uses the defaults of src/meta/config.ts (the paper's Table 1 / App. D values:
 * inner step 0.1, Adam 1e-3, ProMP 5 steps, ε = 0.3, η = 5e-4; TRPO max KL 0.01, 10 CG iterations,
 * backtracking 0.8 × 15), changed only in the sizes below, identically for all.
 *
 * Default size (chosen to fit ~10 minutes on the wasm backend of a shared 2-core machine, where one
 * iteration at this size took 2.4–5 s for each TRPO algorithm — its Hessian-vector products
 * differentiate through θ′, third order — 0.6–0.7 s for ProMP and 0.15–0.3 s for each VPG algorithm,
 * depending on the load): nav-2d, policy MLP (32, 32), 15 iterations × 5 tasks × 10 trajectories ×
 * horizon 25 (the paper's 100; a goal is at most 0.71 away and actions move up to 0.1 per coordinate,
 * so 25 steps reach it), 3 seeds. That is far below the paper's budget (40 tasks × 20 trajectories ×
 * horizon 100, hundreds of iterations): the numbers say what these algorithms do in their first
 * iterations at this size, no more. (point-corners has 3 inner steps, so TRPO differentiates through
 * three nested inner steps: --env=point-corners with a smaller --iterations, when there is time.)
 *
 * Options (after the name: `npm run bench -- algorithms --iterations=20`):
 *   --env=NAME          nav-2d (default), point-corners, point-1d
 *   --iterations=N      iterations per run (default 15)
 *   --seeds=K           seeds 1 … K per algorithm (default 3)
 *   --tasks=N           tasks per iteration (default 5)
 *   --trajectories=N    trajectories per task (default 10)
 *   --horizon=T         steps per trajectory (default 25)
 *   --hidden=A,B        hidden widths of the policy MLP (default 32,32)
 *   --eval-tasks=N      fresh tasks for the final evaluation (default 20)
 *   --algos=a,b         a subset of the five (default all)
 *   --quick             2 iterations, 1 seed, 2 tasks × 5 trajectories, 5 eval tasks: to try things out
 *                       (also MAGICBOX_BENCH_QUICK=1)
 */
import * as tf from '@tensorflow/tfjs';
import { environmentDescriptor, taskDistributionNames } from '../src/envs/index.ts';
import type { AlgorithmName } from '../src/meta/algorithm-names.ts';
import { disposeParams } from '../src/meta/algorithms.ts';
import { resolveConfig } from '../src/meta/config.ts';
import { evaluateParams, runIteration, type OptimizerState } from '../src/meta/iteration.ts';
import { adam } from '../src/meta/optimizers.ts';
import { trainerFor } from '../src/meta/train.ts';
import { BenchUsageError, benchArgs } from './_options.ts';

const ALGORITHMS: readonly AlgorithmName[] = ['promp', 'maml-trpo', 'emaml-trpo', 'lvc-vpg', 'dice-vpg'];
/** The evaluation seed of every run's final parameters: the same fresh tasks for all. */
const EVAL_SEED = 1000;
/** finalPostUpdateReturn averages this many last iterations. */
const LAST = 2;

interface Options {
  readonly env: string;
  readonly iterations: number;
  readonly seeds: number;
  readonly tasks: number;
  readonly trajectories: number;
  readonly horizon: number;
  readonly hidden: readonly number[];
  readonly evalTasks: number;
  readonly algos: readonly AlgorithmName[];
  readonly quick: boolean;
}

const parseOptions = (args: readonly string[]): Options => {
  const { quick, value, raw } = benchArgs('algorithms', args, ['env', 'iterations', 'seeds', 'tasks', 'trajectories', 'horizon', 'hidden', 'eval-tasks', 'algos']);
  const env = raw('env') ?? 'nav-2d';
  if (!(taskDistributionNames as readonly string[]).includes(env)) throw new BenchUsageError(`--env: unknown environment '${env}'; valid: ${taskDistributionNames.join(', ')}`);
  const hiddenText = raw('hidden');
  const hidden = hiddenText === undefined ? [32, 32] : hiddenText.split(',').map(Number);
  if (hidden.some((h) => !Number.isInteger(h) || h < 1)) throw new BenchUsageError(`--hidden needs whole numbers ≥ 1 separated by commas, got '${hiddenText}'`);
  const algosText = raw('algos');
  const algos = algosText === undefined ? ALGORITHMS : (algosText.split(',') as AlgorithmName[]);
  const bad = algos.filter((a) => !ALGORITHMS.includes(a));
  if (bad.length > 0) throw new BenchUsageError(`--algos: ${bad.join(', ')} not among ${ALGORITHMS.join(', ')}`);
  return {
    env,
    iterations: value('iterations') ?? (quick ? 2 : 15),
    seeds: value('seeds') ?? (quick ? 1 : 3),
    tasks: value('tasks') ?? (quick ? 2 : 5),
    trajectories: value('trajectories') ?? (quick ? 5 : 10),
    horizon: value('horizon') ?? 25,
    hidden,
    evalTasks: value('eval-tasks') ?? (quick ? 5 : 20),
    algos,
    quick,
  };
};

const round = (x: number, digits: number): number => Number(x.toFixed(digits));
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Sample standard deviation (n − 1); 0 for a single value. */
const std = (xs: readonly number[]): number => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
const summary = (xs: readonly number[]) => ({ mean: round(mean(xs), 3), std: round(std(xs), 3), perSeed: xs.map((x) => round(x, 3)) });

const log = (msg: string) => process.stderr.write(`[algorithms] ${msg}\n`);

interface RunResult {
  readonly algo: AlgorithmName;
  readonly seed: number;
  /** post-update average return of every iteration */
  readonly postUpdate: number[];
  readonly finalPostUpdate: number;
  readonly evalReturns: number[];
  readonly timesteps: number;
  readonly seconds: number;
  /** TRPO: how each iteration's line search ended */
  readonly lineSearch: string[];
}

const trainOne = async (opts: Options, algo: AlgorithmName, seed: number): Promise<RunResult> => {
  const config = resolveConfig({
    algo,
    env: opts.env,
    seed,
    iterations: opts.iterations,
    tasksPerIteration: opts.tasks,
    trajectoriesPerTask: opts.trajectories,
    horizon: opts.horizon,
    hidden: [...opts.hidden],
  });
  const trainer = await trainerFor(config);
  const started = performance.now();
  let params = trainer.policy.init(seed);
  let state: OptimizerState = undefined;
  const postUpdate: number[] = [];
  const lineSearch: string[] = [];
  let timesteps = 0;
  try {
    for (let it = 0; it < opts.iterations; it++) {
      const r = await runIteration(trainer, params, state, it);
      disposeParams(params);
      if (state !== undefined && state !== r.optimizerState) adam().dispose(state);
      params = r.params;
      state = r.optimizerState;
      postUpdate.push(r.stats.averageReturn.at(-1)!);
      timesteps += r.stats.timesteps;
      if (r.stats.lineSearch !== undefined) lineSearch.push(r.stats.lineSearch);
    }
    const evalReturns = await evaluateParams(trainer, params, EVAL_SEED, opts.evalTasks);
    const seconds = (performance.now() - started) / 1000;
    return { algo, seed, postUpdate, finalPostUpdate: mean(postUpdate.slice(-LAST)), evalReturns, timesteps, seconds, lineSearch };
  } finally {
    disposeParams(params);
    if (state !== undefined) adam().dispose(state);
  }
};

export const run = async (args: readonly string[] = []): Promise<Record<string, unknown>> => {
  const opts = parseOptions(args);
  const started = performance.now();
  const tensorsBefore = tf.memory().numTensors;
  const budget = opts.iterations * opts.tasks * opts.trajectories * opts.horizon;
  const levels = environmentDescriptor(opts.env).adaptationSteps + 1;
  log(
    `${opts.env}: ${opts.algos.join(', ')} × seeds 1…${opts.seeds}; ${opts.iterations} iterations × ${opts.tasks} tasks × ${opts.trajectories} trajectories × ` +
      `horizon ${opts.horizon}, MLP (${opts.hidden.join(', ')})`,
  );
  const results: RunResult[] = [];
  // Seed-major: an interrupted run has every algorithm at the same number of seeds.
  for (let seed = 1; seed <= opts.seeds; seed++) {
    for (const algo of opts.algos) {
      const r = await trainOne(opts, algo, seed);
      results.push(r);
      log(
        `${algo} seed ${seed}: ${r.seconds.toFixed(1)} s; post-update return per iteration ${r.postUpdate.map((x) => x.toFixed(1)).join(' ')}; ` +
          `final ${r.finalPostUpdate.toFixed(2)}; eval pre/post ${r.evalReturns.map((x) => x.toFixed(2)).join('/')}` +
          (r.lineSearch.length > 0 ? `; line search: ${r.lineSearch.join(', ')}` : ''),
      );
    }
  }

  const algorithms: Record<string, unknown> = {};
  for (const algo of opts.algos) {
    const rs = results.filter((r) => r.algo === algo);
    algorithms[algo] = {
      finalPostUpdateReturn: summary(rs.map((r) => r.finalPostUpdate)),
      evalPostUpdateReturn: summary(rs.map((r) => r.evalReturns.at(-1)!)),
      evalPreUpdateReturn: summary(rs.map((r) => r.evalReturns[0]!)),
      firstPostUpdateReturn: summary(rs.map((r) => r.postUpdate[0]!)),
      postUpdateReturnPerIteration: rs.map((r) => r.postUpdate.map((x) => round(x, 2))),
      envSteps: rs.map((r) => r.timesteps),
      secondsPerRun: summary(rs.map((r) => r.seconds)),
      ...(rs.some((r) => r.lineSearch.length > 0) ? { lineSearch: rs.map((r) => r.lineSearch) } : {}),
    };
  }
  const ordering = [...opts.algos].sort(
    (a, b) => mean(results.filter((r) => r.algo === b).map((r) => r.finalPostUpdate)) - mean(results.filter((r) => r.algo === a).map((r) => r.finalPostUpdate)),
  );
  return {
    env: opts.env,
    ordering,
    orderingBy: `finalPostUpdateReturn mean over ${opts.seeds} seed(s), best first (compare the differences with the std)`,
    algorithms,
    config: {
      iterations: opts.iterations,
      seeds: Array.from({ length: opts.seeds }, (_, i) => i + 1),
      tasksPerIteration: opts.tasks,
      trajectoriesPerTask: opts.trajectories,
      horizon: opts.horizon,
      hidden: opts.hidden,
      samplingBudgetPerRun: {
        levels,
        stepsPerLevel: budget,
        total: levels * budget,
        note: 'iterations × tasks × trajectories × horizon per adaptation level (pre-update, then after each inner step), the same for every run',
      },
      finalPostUpdateReturn: `mean of the last ${LAST} iterations' post-update average return`,
      evalTasks: opts.evalTasks,
      evalSeed: EVAL_SEED,
      defaults: 'src/meta/config.ts defaults otherwise, the same for every algorithm',
      quick: opts.quick,
    },
    leakedTensors: tf.memory().numTensors - tensorsBefore,
    totalSeconds: round((performance.now() - started) / 1000, 1),
  };
};
