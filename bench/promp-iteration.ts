/**
 * One ProMP iteration's wall time, split as `runIteration` measures it (IterationStats): sampling (all
 * adaptation levels' trajectories and their batches), inner adaptation (the inner steps that give each
 * level's sampling parameters) and the outer steps (the meta-objective before, then N = 5 Adam steps on
 * the clipped LVC objective − η·KL, each recomputing θ'(θ) through every inner step, then what they
 * reached: each task's objective, KL and clipped fraction at the final θ, which the PyTorch reference
 * computes too), plus the
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
 *   --engine=NAME      the policy engine: fused (default) or tfjs (the general path)
 *   --threads=LIST     with --reference: the thread counts to compare at (default 1,2; e.g. --threads=1)
 *   --reference        side by side with the PyTorch reference (bench/reference/promp_iteration.py):
 *                      first both compute the outer loss and its gradient on one fixed batch (they must
 *                      agree to 1e-5), then, at 1 and at 2 threads (magicbox: sampling workers; PyTorch:
 *                      its intra-op threads), warm-up iterations of each and `--reps` rounds of one
 *                      iteration each, A/B interleaved with the order alternating per round; reported:
 *                      each phase's median for both, their ratios (magicbox ÷ PyTorch: below 1 is faster),
 *                      peak RSS of both, and the load average around the run.
 */
import * as tf from '@tensorflow/tfjs';
import { taskDistribution } from '../src/envs/index.ts';
import { disposeParams } from '../src/meta/algorithms.ts';
import { resolveConfig } from '../src/meta/config.ts';
import { makeTrainer, outerTaskLoss, runIteration, sampleLevels, disposeLevels, type IterationStats, type OptimizerState, type Trainer } from '../src/meta/iteration.ts';
import { adam } from '../src/meta/optimizers.ts';
import { mlpPolicyFor } from '../src/meta/policy.ts';
import { policyEngines, type PolicyEngine } from '../src/meta/rl-graph.ts';
import { withWorkerSampler } from '../src/meta/train.ts';
import { seededUniform } from '../src/random.ts';
import type { Params } from '../src/surrogates/batch.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchUsageError, benchArgs } from './_options.ts';
import { referenceInstallHint, referenceMissing, startReference, type Reference } from './_reference.ts';

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
  readonly engine: PolicyEngine;
  readonly reference: boolean;
  readonly threads: readonly number[];
}

const parseOptions = (args: readonly string[]): Options => {
  const reference = args.includes('--reference');
  const { quick, value, raw } = benchArgs(
    'promp-iteration',
    args.filter((a) => a !== '--reference'),
    ['tasks', 'trajectories', 'horizon', 'steps', 'reps', 'warmup', 'engine', 'threads'],
  );
  const engine = (raw('engine') ?? 'fused') as PolicyEngine;
  if (!policyEngines.includes(engine)) throw new BenchUsageError(`--engine must be one of ${policyEngines.join(', ')}, got '${engine}'`);
  const threads = (raw('threads') ?? '1,2').split(',').map((t) => Number(t.trim()));
  if (threads.some((t) => !(t === 1 || t === 2))) throw new BenchUsageError(`--threads takes 1, 2 or 1,2; got '${raw('threads')}'`);
  return {
    engine,
    reference,
    threads,
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

const configFor = (opts: Pick<Options, 'tasks' | 'trajectories' | 'horizon' | 'steps' | 'engine'>) =>
  resolveConfig({
    algo: 'promp',
    env: 'point-corners',
    seed: 1,
    tasksPerIteration: opts.tasks,
    trajectoriesPerTask: opts.trajectories,
    horizon: opts.horizon,
    adaptationSteps: opts.steps,
    engine: opts.engine,
    // What the PyTorch reference computes: actions in the environment's units and the KL penalty on
    // the pre-update data (eq. 13). The released forms (normalize(), the KL on every inner level, the
    // library's defaults) cost the same in sampling and 1.4× in the outer step on point-corners.
    actionNormalization: 'raw',
    prompKlLevels: 'pre-update',
  });

const trainerOf = (opts: Pick<Options, 'tasks' | 'trajectories' | 'horizon' | 'steps' | 'engine'>): Trainer => {
  const config = configFor(opts);
  const distribution = taskDistribution(config.env);
  const policy = mlpPolicyFor(distribution.observationDim, distribution.action, { hidden: config.hidden, initLogStd: config.initLogStd });
  return makeTrainer(config, distribution, policy);
};

export const run = async (args: readonly string[] = []): Promise<Record<string, unknown>> => {
  const opts = parseOptions(args);
  if (opts.reference) return runWithReference(opts);
  const trainer = trainerOf(opts);
  const { config, policy } = trainer;

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

// ---------------------------------------------------------------------------------------------------
// side by side with the PyTorch reference

const tensorJson = (t: tf.Tensor) => ({ shape: t.shape, values: Array.from(t.dataSync()) });

/**
 * The outer loss (ProMP's, at θ ≠ θo so that the KL penalty counts) and its gradient from magicbox and
 * from the reference on one fixed batch: 3 tasks × 4 trajectories × horizon 25 of point-corners,
 * sampled by magicbox; the reference reads the batch and computes in float64.
 */
const checkAgainstReference = async (reference: Reference, engine: PolicyEngine) => {
  const trainer = trainerOf({ tasks: 3, trajectories: 4, horizon: 25, steps: 3, engine });
  const names = Object.keys(trainer.policy.paramShapes);
  const thetaOld = trainer.policy.init(11);
  const sampled = await sampleLevels(trainer, thetaOld, 0);
  const dir = mkdtempSync(join(tmpdir(), 'magicbox-reference-'));
  try {
    const u = seededUniform(5);
    const theta: Params = tf.tidy(() => Object.fromEntries(names.map((n) => [n, tf.add(thetaOld[n]!, tf.mul(0.05, tf.randomUniform(thetaOld[n]!.shape, -1, 1, 'float32', Math.floor(u() * 1e9))))])));
    const k = sampled.levels.length - 1;
    const tasks = sampled.tasks.map((_, i) => ({ pre: sampled.levels.slice(0, k).map((level) => level[i]!), post: sampled.levels[k]![i]! }));
    let loss = 0;
    const grads = names.map((n) => new Float64Array(thetaOld[n]!.size));
    for (const task of tasks) {
      tf.tidy(() => {
        const f = outerTaskLoss(trainer, thetaOld, task.pre, task.post);
        const { value, grads: g } = tf.valueAndGrads((...v: tf.Tensor[]) => f(Object.fromEntries(names.map((n, j) => [n, v[j]!]))))(names.map((n) => theta[n]!));
        loss += value.dataSync()[0]! / tasks.length;
        g.forEach((gj, j) => gj.dataSync().forEach((x, e) => (grads[j]![e]! += x / tasks.length)));
      });
    }
    const level = (d: (typeof tasks)[number]['post']) => {
      const s = d.batch.values.s!;
      return {
        shape: s.shape.slice(0, 2),
        observations: Array.from(s.dataSync()),
        actions: Array.from(d.batch.values.a!.dataSync()),
        advantages: Array.from(d.batch.advantages!.a!.dataSync()),
        behaviour: Array.from(d.batch.behaviour!.a!.dataSync()),
      };
    };
    const file = join(dir, 'batch.json');
    writeFileSync(
      file,
      JSON.stringify({
        theta: Object.fromEntries(names.map((n) => [n, tensorJson(theta[n]!)])),
        thetaOld: Object.fromEntries(names.map((n) => [n, tensorJson(thetaOld[n]!)])),
        tasks: tasks.map((t) => ({ pre: t.pre.map(level), post: level(t.post) })),
      }),
    );
    tf.dispose(Object.values(theta));
    const answer = (await reference.request({ cmd: 'check', file })) as { loss: number; grads: Record<string, number[]> };
    let maxDiff = 0;
    let maxRef = 0;
    names.forEach((n, j) => {
      const r = answer.grads[n]!;
      r.forEach((x, e) => {
        maxDiff = Math.max(maxDiff, Math.abs(grads[j]![e]! - x));
        maxRef = Math.max(maxRef, Math.abs(x));
      });
    });
    const lossError = Math.abs(loss - answer.loss) / Math.max(Math.abs(answer.loss), 1e-12);
    const gradientError = maxDiff / Math.max(maxRef, 1e-12);
    return {
      engine,
      loss: { magicbox: loss, reference: answer.loss, relativeError: Number(lossError.toPrecision(3)) },
      gradient: { maxAbs: Number(maxRef.toPrecision(4)), relativeError: Number(gradientError.toPrecision(3)) },
      agree: lossError <= 1e-5 && gradientError <= 1e-5,
    };
  } finally {
    disposeLevels(sampled);
    disposeParams(thetaOld);
    rmSync(dir, { recursive: true, force: true });
  }
};

interface Phases {
  readonly sampling: number;
  readonly adaptation: number;
  readonly outer: number;
  readonly total: number;
  /** CPU seconds of the whole process over the iteration (all its threads): robust to a loaded machine. */
  readonly cpu: number;
}

const runWithReference = async (opts: Options): Promise<Record<string, unknown>> => {
  const missing = referenceMissing();
  if (missing !== undefined) throw new BenchUsageError(`the PyTorch reference cannot run: ${missing}. Install it: ${referenceInstallHint}`);
  const started = performance.now();
  const loadBefore = loadavg();
  const checker = startReference(1);
  const checks = [];
  try {
    await checker.request({ cmd: 'init', threads: 1, tasks: 1, trajectories: 1, horizon: 1, steps: 1 });
    for (const engine of policyEngines) checks.push(await checkAgainstReference(checker, engine));
  } finally {
    checker.close();
  }
  log(`check: ${JSON.stringify(checks)}`);

  const byThreads: Record<string, unknown> = {};
  let referenceRss = 0;
  for (const threads of opts.threads) {
    const trainer = await withWorkerSampler(trainerOf(opts), { workers: threads });
    const reference = startReference(threads);
    let params = trainer.policy.init(1);
    let state: OptimizerState = undefined;
    const ours: Phases[] = [];
    const theirs: Phases[] = [];
    try {
      await reference.request({ cmd: 'init', threads, tasks: opts.tasks, trajectories: opts.trajectories, horizon: opts.horizon, steps: opts.steps, seed: 1 });
      const magicboxIteration = async (it: number): Promise<Phases> => {
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        const r = await runIteration(trainer, params, state, it);
        const total = (performance.now() - t0) / 1000;
        const c = process.cpuUsage(c0);
        const cpu = (c.user + c.system) / 1e6;
        disposeParams(params);
        if (state !== undefined && state !== r.optimizerState) adam().dispose(state);
        params = r.params;
        state = r.optimizerState;
        return { sampling: r.stats.samplingSeconds, adaptation: r.stats.adaptationSeconds, outer: r.stats.outerSeconds, total, cpu };
      };
      const referenceIteration = async (): Promise<Phases> => {
        const a = (await reference.request({ cmd: 'iterate' })) as unknown as Phases & { maxRssMb: number };
        referenceRss = Math.max(referenceRss, a.maxRssMb);
        return a;
      };
      for (let w = 0; w < Math.max(1, opts.warmup); w++) {
        await magicboxIteration(w);
        await referenceIteration();
      }
      for (let r = 0; r < opts.reps; r++) {
        const it = Math.max(1, opts.warmup) + r;
        if (r % 2 === 0) {
          ours.push(await magicboxIteration(it));
          theirs.push(await referenceIteration());
        } else {
          theirs.push(await referenceIteration());
          ours.push(await magicboxIteration(it));
        }
        log(`${threads} thread(s), round ${r + 1}: magicbox outer ${ours.at(-1)!.outer.toFixed(2)} s, total ${ours.at(-1)!.total.toFixed(2)} s; PyTorch outer ${theirs.at(-1)!.outer.toFixed(2)} s, total ${theirs.at(-1)!.total.toFixed(2)} s`);
      }
    } finally {
      disposeParams(params);
      if (state !== undefined) adam().dispose(state);
      reference.close();
      await trainer.sampler.close();
    }
    const phase = (xs: readonly Phases[], k: keyof Phases) => median(xs.map((x) => x[k]));
    const phases = ['sampling', 'adaptation', 'outer', 'total', 'cpu'] as const;
    byThreads[`threads${threads}`] = {
      magicbox: Object.fromEntries(phases.map((k) => [k, round(phase(ours, k), 3)])),
      pytorch: Object.fromEntries(phases.map((k) => [k, round(phase(theirs, k), 3)])),
      ratio: Object.fromEntries(phases.map((k) => [k, round(phase(ours, k) / phase(theirs, k), 2)])),
    };
  }
  return {
    reference: 'PyTorch (bench/reference/promp_iteration.py)',
    engine: opts.engine,
    check: checks,
    ...byThreads,
    peakRssMb: { magicbox: Math.round(process.resourceUsage().maxRSS / 1024), pytorch: Math.round(referenceRss) },
    loadAverage: { before: loadBefore.map((x) => round(x, 2)), after: loadavg().map((x) => round(x, 2)) },
    config: { env: 'point-corners', algo: 'promp', tasks: opts.tasks, trajectoriesPerTask: opts.trajectories, horizon: opts.horizon, adaptationSteps: opts.steps, warmup: Math.max(1, opts.warmup), rounds: opts.reps },
    note:
      'seconds of wall time per phase, medians over rounds; cpu: CPU seconds of the whole process per iteration (on a loaded machine the 1-thread cpu ratio is the robust one); ratio = magicbox ÷ PyTorch (below 1: magicbox faster); magicbox threads = sampling and outer-step worker threads; PyTorch threads = torch.set_num_threads (and OpenBLAS)',
    seconds: round((performance.now() - started) / 1000, 1),
  };
};
