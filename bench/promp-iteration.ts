/**
 * One ProMP iteration's wall time, split as `runIteration` measures it (IterationStats): sampling (all
 * adaptation levels' trajectories and their batches), inner adaptation (the inner steps that give each
 * level's sampling parameters) and the outer steps (the meta-objective before, then N = 5 Adam steps on
 * the clipped LVC objective − η·KL, each recomputing θ'(θ) through every inner step), plus the
 * environment steps per second of sampling (timesteps / samplingSeconds).
 *
 * Environment point-corners (2D point, sparse reward), policy MLP (64, 64) tanh, Gaussian with learned
 * log-std: the paper's sizes are 40 tasks × 20 trajectories × horizon 100 with 3 adaptation steps
 * (320,000 environment steps per iteration). Iterations 0 … warmup−1 are run and discarded (first-call
 * costs: kernel compilation, allocator growth), then `reps` timed iterations continue training from
 * there; reported: the median of each figure over the timed iterations, every timed value, and
 * tf.memory() before the first timed iteration and after the last (the parameters and Adam state
 * carried between iterations are the only tensors alive between them: equal counts mean no leak).
 *
 * Default size: 10 tasks (otherwise the paper's 20 × 100 × 3 steps). At the paper's 40 tasks one
 * iteration takes ~2.5 minutes on the wasm backend of a 2-core machine (≈ 10 minutes for warm-up + 3
 * timed iterations), past a benchmark's budget; run it with --tasks=40 when there is time. Every
 * per-task cost of an iteration (sampling a task's group, its inner steps, its term of the outer
 * objective) is independent of the other tasks, so the time is linear in the number of tasks at fixed
 * trajectories, horizon and steps: with fewer tasks than the paper's 40 (--tasks=N), the figures
 * `paperExtrapolation` scale each phase by 40 / N (a linear extrapolation, stated as such).
 *
 * Options (after the name: `npm run bench -- promp-iteration --tasks=10`):
 *   --tasks=N          tasks per iteration (default 10; the paper's 40 with --tasks=40)
 *   --trajectories=N   trajectories per task (default 20)
 *   --horizon=T        steps per trajectory (default 100)
 *   --steps=K          inner adaptation steps (default 3)
 *   --reps=R           timed iterations (default 3)
 *   --warmup=W         discarded iterations before them (default 1; 0 allowed)
 *   --quick            --tasks=4 --reps=1 --warmup=0, to try things out (also MAGICBOX_BENCH_QUICK=1)
 */
import * as tf from '@tensorflow/tfjs';
import { taskDistribution } from '../src/envs/index.ts';
import { disposeParams } from '../src/meta/algorithms.ts';
import { resolveConfig } from '../src/meta/config.ts';
import { makeTrainer, runIteration, type IterationStats, type OptimizerState } from '../src/meta/iteration.ts';
import { adam } from '../src/meta/optimizers.ts';
import { mlpPolicyFor } from '../src/meta/policy.ts';
import { benchArgs } from './_options.ts';

const PAPER = { tasks: 40, trajectories: 20, horizon: 100, steps: 3 } as const;
/** Tasks per iteration by default: a quarter of the paper's, so that the benchmark takes ~2–3 minutes. */
const DEFAULT_TASKS = 10;

interface Options {
  readonly tasks: number;
  readonly trajectories: number;
  readonly horizon: number;
  readonly steps: number;
  readonly reps: number;
  readonly warmup: number;
  readonly quick: boolean;
}

const parseOptions = (args: readonly string[]): Options => {
  const { quick, value } = benchArgs('promp-iteration', args, ['tasks', 'trajectories', 'horizon', 'steps', 'reps', 'warmup']);
  return {
    tasks: value('tasks') ?? (quick ? 4 : DEFAULT_TASKS),
    trajectories: value('trajectories') ?? PAPER.trajectories,
    horizon: value('horizon') ?? PAPER.horizon,
    steps: value('steps') ?? PAPER.steps,
    reps: value('reps') ?? (quick ? 1 : 3),
    warmup: value('warmup', 0) ?? (quick ? 0 : 1),
    quick,
  };
};

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const round = (x: number, digits: number): number => Number(x.toFixed(digits));

const log = (msg: string) => process.stderr.write(`[promp-iteration] ${msg}\n`);

export const run = async (args: readonly string[] = []): Promise<Record<string, unknown>> => {
  const opts = parseOptions(args);
  const config = resolveConfig({
    algo: 'promp',
    env: 'point-corners',
    seed: 1,
    tasksPerIteration: opts.tasks,
    trajectoriesPerTask: opts.trajectories,
    horizon: opts.horizon,
    adaptationSteps: opts.steps,
  });
  const distribution = taskDistribution(config.env);
  const policy = mlpPolicyFor(distribution.observationDim, distribution.action, { hidden: config.hidden, initLogStd: config.initLogStd });
  const trainer = makeTrainer(config, distribution, policy);

  const started = performance.now();
  let params = policy.init(config.seed);
  let state: OptimizerState = undefined;
  const timed: Array<IterationStats & { totalSeconds: number }> = [];
  let before: tf.MemoryInfo | undefined;
  let carried = 0;
  try {
    for (let it = 0; it < opts.warmup + opts.reps; it++) {
      if (it === opts.warmup) {
        before = tf.memory();
        carried = Object.keys(params).length + (state !== undefined ? Object.keys(state.m).length + Object.keys(state.v).length : 0);
      }
      const t0 = performance.now();
      const r = await runIteration(trainer, params, state, it);
      const totalSeconds = (performance.now() - t0) / 1000;
      disposeParams(params);
      if (state !== undefined && state !== r.optimizerState) adam().dispose(state);
      params = r.params;
      state = r.optimizerState;
      const s = r.stats;
      log(
        `iteration ${it}${it < opts.warmup ? ' (warm-up)' : ''}: ${totalSeconds.toFixed(1)} s = sampling ${s.samplingSeconds.toFixed(1)} + ` +
          `adaptation ${s.adaptationSeconds.toFixed(1)} + outer ${s.outerSeconds.toFixed(1)}; ${s.timesteps} steps; ` +
          `returns ${s.averageReturn.map((x) => x.toFixed(1)).join(' ')}`,
      );
      if (it >= opts.warmup) timed.push({ ...s, totalSeconds });
    }
  } finally {
    disposeParams(params);
    if (state !== undefined) adam().dispose(state);
  }
  // The carried parameters and Adam state are freed above: compare with the same accounting before.
  const after = tf.memory();
  const numTensorsBefore = (before?.numTensors ?? 0) - carried;

  const figure = (f: (s: (typeof timed)[number]) => number) => median(timed.map(f));
  const sampling = figure((s) => s.samplingSeconds);
  const adaptation = figure((s) => s.adaptationSeconds);
  const outer = figure((s) => s.outerSeconds);
  const total = figure((s) => s.totalSeconds);
  const stepsPerSecond = figure((s) => s.timesteps / s.samplingSeconds);
  const scale = PAPER.tasks / opts.tasks;
  const paperSized = opts.tasks === PAPER.tasks && opts.trajectories === PAPER.trajectories && opts.horizon === PAPER.horizon && opts.steps === PAPER.steps;
  const extrapolable = opts.trajectories === PAPER.trajectories && opts.horizon === PAPER.horizon && opts.steps === PAPER.steps && !paperSized;
  return {
    iterationSeconds: round(total, 2),
    samplingSeconds: round(sampling, 2),
    adaptationSeconds: round(adaptation, 2),
    outerSeconds: round(outer, 2),
    envStepsPerSecond: Math.round(stepsPerSecond),
    timestepsPerIteration: timed[0]?.timesteps ?? 0,
    perIteration: timed.map((s) => ({
      iteration: s.iteration,
      total: round(s.totalSeconds, 2),
      sampling: round(s.samplingSeconds, 2),
      adaptation: round(s.adaptationSeconds, 2),
      outer: round(s.outerSeconds, 2),
      averageReturn: s.averageReturn.map((x) => round(x, 2)),
    })),
    ...(extrapolable
      ? {
          paperExtrapolation: {
            method: `linear in tasks: each phase × ${PAPER.tasks}/${opts.tasks}`,
            iterationSeconds: round(total * scale, 1),
            samplingSeconds: round(sampling * scale, 1),
            adaptationSeconds: round(adaptation * scale, 1),
            outerSeconds: round(outer * scale, 1),
          },
        }
      : {}),
    memory: {
      numTensorsBefore: before?.numTensors ?? 0,
      carriedTensors: carried,
      numTensorsAfter: after.numTensors,
      numBytesBefore: before?.numBytes ?? 0,
      numBytesAfter: after.numBytes,
      note: 'before: tf.memory() before the first timed iteration, when the carried parameters and Adam moments (carriedTensors) are alive; after: once those are freed too. No leak: after = before − carried',
    },
    memoryGrowth: after.numTensors > numTensorsBefore,
    config: {
      env: config.env,
      algo: config.algo,
      tasks: opts.tasks,
      trajectoriesPerTask: opts.trajectories,
      horizon: opts.horizon,
      adaptationSteps: opts.steps,
      prompSteps: config.prompSteps,
      hidden: config.hidden,
      innerStepSize: config.innerStepSize,
      warmupIterations: opts.warmup,
      timedIterations: opts.reps,
      paperSized,
      quick: opts.quick,
    },
    seconds: round((performance.now() - started) / 1000, 1),
  };
};
