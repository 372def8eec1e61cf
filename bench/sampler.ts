/**
 * Sampling throughput on HalfCheetahFwdBack, end to end: 40 tasks × 20 trajectories × horizon 100
 * (80,000 environment steps per request, the paper's batch), measured as environment steps per second
 * of `Sampler.sample` — environments created and reset, the policy evaluated once per step for each
 * task's 20 environments, actions checked and clipped, physics stepped with the frame skip,
 * observations and rewards written, the behaviour log-probabilities computed — for
 *   - a uniform random policy (no network) and the (64, 64) tanh MLP Gaussian policy,
 *   - 1 worker (the main thread: what `--workers 1` runs) and all workers (one thread per core).
 * In the same run, the raw physics rate of the same model: mj_step on one MjData with random controls,
 * nothing else, so that `singleWorkerFractionOfPhysics` = (random-policy steps/s, 1 worker) ÷
 * (raw mj_step/s ÷ frame skip) says how much of the physics speed the sampler keeps.
 *
 * Each configuration samples once untimed (worker start-up, first-call costs), then `reps` timed
 * requests with different seeds; the reported rate is the median. Worker start-up time is reported
 * separately. Every request's trajectories are checked to be equal across worker counts.
 *
 * Options (`npm run bench -- sampler --reps=3`):
 *   --tasks=N --trajectories=N --horizon=T   the request (default 40, 20, 100)
 *   --workers=N                              "all workers" (default: one per core)
 *   --reps=R                                 timed requests per configuration (default 2)
 *   --quick                                  --tasks=8 --reps=1, to try things out (also MAGICBOX_BENCH_QUICK=1)
 */
import * as tf from '@tensorflow/tfjs';
import { availableParallelism } from 'node:os';
import { loadTaskDistribution } from '../src/envs/index.ts';
import { HALF_CHEETAH } from '../src/envs/mujoco/half-cheetah-constants.ts';
import { createMujocoRuntime } from '../src/envs/mujoco/runtime.ts';
import { disposeParams } from '../src/meta/algorithms.ts';
import { workerSampler, type PolicySpec } from '../src/meta/parallel-sampler.ts';
import { mlpPolicyFor, uniformPolicy } from '../src/meta/policy.ts';
import { inProcessSampler, type SampleRequest, type Sampler, type Trajectories } from '../src/meta/sampler.ts';
import { seededUniform } from '../src/random.ts';
import { benchArgs } from './_options.ts';

const ENV = 'half-cheetah-fwd-back';

interface Options {
  readonly tasks: number;
  readonly trajectories: number;
  readonly horizon: number;
  readonly workers: number;
  readonly reps: number;
}

const parseOptions = (args: readonly string[]): Options => {
  const { quick, value } = benchArgs('sampler', args, ['tasks', 'trajectories', 'horizon', 'workers', 'reps']);
  return {
    tasks: value('tasks') ?? (quick ? 8 : 40),
    trajectories: value('trajectories') ?? 20,
    horizon: value('horizon') ?? 100,
    workers: value('workers') ?? availableParallelism(),
    reps: value('reps') ?? (quick ? 1 : 2),
  };
};

const log = (msg: string) => process.stderr.write(`[sampler] ${msg}\n`);
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number, digits = 0): number => Number(x.toFixed(digits));

/** mj_step per second on one MjData of the half-cheetah model, random controls held for a frame skip. */
const rawPhysicsRate = async (seconds: number): Promise<number> => {
  const runtime = await createMujocoRuntime()();
  const model = runtime.loadModel(HALF_CHEETAH.modelFile);
  const data = model.createData();
  const uniform = seededUniform(7);
  const ctrl = new Float64Array(model.nu);
  try {
    data.reset();
    let steps = 0;
    const started = performance.now();
    while (performance.now() - started < seconds * 1000) {
      for (let k = 0; k < 1000; k += HALF_CHEETAH.frameSkip) {
        for (let j = 0; j < ctrl.length; j++) ctrl[j] = 2 * uniform() - 1;
        data.setCtrl(ctrl);
        data.step(HALF_CHEETAH.frameSkip);
        steps += HALF_CHEETAH.frameSkip;
      }
      if (!data.qpos().every(Number.isFinite)) data.reset();
    }
    return steps / ((performance.now() - started) / 1000);
  } finally {
    data.free();
    model.free();
  }
};

const fields = ['observations', 'actions', 'rewards', 'mask', 'logProbs'] as const;
const same = (a: readonly Trajectories[], b: readonly Trajectories[]): boolean =>
  a.length === b.length && a.every((tr, g) => fields.every((f) => tr[f].length === b[g]![f].length && tr[f].every((x, k) => Object.is(x, b[g]![f][k]))));

export const run = async (args: readonly string[] = []): Promise<Record<string, unknown>> => {
  const opts = parseOptions(args);
  const distribution = await loadTaskDistribution(ENV);
  const backend = tf.getBackend();
  const mlpSpec: PolicySpec = { observationDim: distribution.observationDim, action: distribution.action, hidden: [64, 64] };
  const mlp = mlpPolicyFor(mlpSpec.observationDim, mlpSpec.action, { hidden: mlpSpec.hidden });
  const memoryBefore = tf.memory();
  const params = mlp.init(1);
  const tasks = distribution.sampleTasks(seededUniform(3), opts.tasks);
  const request = (seed: number): SampleRequest => ({ tasks, params: tasks.map(() => params), perGroup: opts.trajectories, horizon: opts.horizon, seed });
  const stepsPerRequest = opts.tasks * opts.trajectories * opts.horizon;
  log(`${ENV}: ${opts.tasks} tasks × ${opts.trajectories} trajectories × horizon ${opts.horizon} = ${stepsPerRequest} env steps per request; ${opts.reps} timed request(s) per configuration`);

  const rawStepsPerSecond = await rawPhysicsRate(3);
  log(`raw mj_step: ${rawStepsPerSecond.toFixed(0)}/s → ${(rawStepsPerSecond / HALF_CHEETAH.frameSkip).toFixed(0)} env steps/s at frame skip ${HALF_CHEETAH.frameSkip}`);

  const measure = async (label: string, sampler: Sampler, reference?: Trajectories[][]): Promise<{ stepsPerSecond: number; each: number[]; samples: Trajectories[][] }> => {
    await sampler.sample({ ...request(999), tasks: tasks.slice(0, Math.min(2, tasks.length)), params: tasks.slice(0, 2).map(() => params) });
    const each: number[] = [];
    const samples: Trajectories[][] = [];
    for (let r = 0; r < opts.reps; r++) {
      const started = performance.now();
      const out = await sampler.sample(request(r));
      const seconds = (performance.now() - started) / 1000;
      const steps = out.reduce((acc, tr) => acc + tr.mask.reduce((a, m) => a + m, 0), 0);
      each.push(steps / seconds);
      samples.push(out);
      if (reference !== undefined && !same(out, reference[r]!)) throw new Error(`${label}: request ${r} differs from the 1-worker trajectories`);
    }
    const stepsPerSecond = median(each);
    log(`${label}: ${stepsPerSecond.toFixed(0)} env steps/s (${each.map((x) => x.toFixed(0)).join(', ')})`);
    return { stepsPerSecond, each, samples };
  };

  const results: Record<string, { stepsPerSecond: number; each: number[] }> = {};
  const startup: Record<string, number> = {};
  for (const [policyName, spec] of [['random', { ...mlpSpec, uniform: true }], ['mlp', mlpSpec]] as const) {
    const local = inProcessSampler(distribution, spec.uniform === true ? uniformPolicy(distribution.action) : mlp);
    const single = await measure(`${policyName} policy, 1 worker (main thread)`, local);
    results[`${policyName}_1`] = { stepsPerSecond: single.stepsPerSecond, each: single.each };
    const started = performance.now();
    const pool = await workerSampler({ environment: ENV, policy: spec, backend, workers: opts.workers, describeTask: distribution.describeTask });
    startup[policyName] = (performance.now() - started) / 1000;
    try {
      const all = await measure(`${policyName} policy, ${opts.workers} workers`, pool, single.samples);
      results[`${policyName}_all`] = { stepsPerSecond: all.stepsPerSecond, each: all.each };
    } finally {
      await pool.close();
    }
  }
  disposeParams(params);
  const memoryAfter = tf.memory();

  const physicsEnvRate = rawStepsPerSecond / HALF_CHEETAH.frameSkip;
  const fraction = results.random_1!.stepsPerSecond / physicsEnvRate;
  const speedupRandom = results.random_all!.stepsPerSecond / results.random_1!.stepsPerSecond;
  const speedupMlp = results.mlp_all!.stepsPerSecond / results.mlp_1!.stepsPerSecond;
  return {
    environment: ENV,
    tasks: opts.tasks,
    trajectoriesPerTask: opts.trajectories,
    horizon: opts.horizon,
    envStepsPerRequest: stepsPerRequest,
    frameSkip: HALF_CHEETAH.frameSkip,
    workersAll: opts.workers,
    rawMjStepPerSecond: round(rawStepsPerSecond),
    rawEnvStepsPerSecond: round(physicsEnvRate),
    envStepsPerSecond: {
      randomPolicy: { oneWorker: round(results.random_1!.stepsPerSecond), allWorkers: round(results.random_all!.stepsPerSecond) },
      mlpPolicy64x64: { oneWorker: round(results.mlp_1!.stepsPerSecond), allWorkers: round(results.mlp_all!.stepsPerSecond) },
    },
    timedRequests: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.each.map((x) => round(x))])),
    workerStartupSeconds: Object.fromEntries(Object.entries(startup).map(([k, v]) => [k, round(v, 2)])),
    singleWorkerFractionOfPhysics: round(fraction, 3),
    allWorkersSpeedup: { randomPolicy: round(speedupRandom, 3), mlpPolicy64x64: round(speedupMlp, 3) },
    targets: {
      singleWorkerFractionOfPhysics: { atLeast: 0.6, met: fraction >= 0.6 },
      allWorkersSpeedup: { atLeast: 1.6, met: speedupRandom >= 1.6 && speedupMlp >= 1.6 },
    },
    trajectoriesIdenticalAcrossWorkerCounts: true,
    memory: { numTensorsBefore: memoryBefore.numTensors, numTensorsAfter: memoryAfter.numTensors, numBytesBefore: memoryBefore.numBytes, numBytesAfter: memoryAfter.numBytes },
  };
};
