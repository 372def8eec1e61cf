/**
 * The iteration beyond its first-iteration numbers (test/trainer-numbers.test.ts), each case a
 * mutation survivor of src/meta/iteration.ts: evaluateParams's returns at every adaptation level
 * against the independent float64 model of the linear Gaussian policy (two inner steps, so the level
 * loop and its parameter hand-over are exercised), and an iteration of every optimiser leaving no
 * tensor behind (what it returns aside); a NaN meta-gradient under a finite objective, and TRPO's
 * invariance to a constant added to the objective (its line search's f(x₀)).
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { point1d, POINT_1D } from '../src/envs/index.ts';
import { disposeParams } from '../src/meta/algorithms.ts';
import type { AlgorithmName } from '../src/meta/algorithm-names.ts';
import { resolveConfig, type TrainConfig } from '../src/meta/config.ts';
import { evaluateParams, levelData, makeTrainer, memoryError, outerTaskTerms, prompTaskDiagnostics, runIteration, sampleLevels, disposeLevels, TrainingError } from '../src/meta/iteration.ts';
import type { OuterWorkers } from '../src/meta/outer-workers.ts';
import { gae } from '../src/meta/advantages.ts';
import { fitLinearBaseline } from '../src/meta/baseline.ts';
import { disposeBatch, inProcessSampler, type Sampler } from '../src/meta/sampler.ts';
import { adam } from '../src/meta/optimizers.ts';
import { linearGaussianPolicy } from '../src/meta/policy.ts';
import type { Trajectories } from '../src/meta/sampler.ts';
import { mixSeeds, seededUniform } from '../src/random.ts';
import type { Params } from '../src/surrogates/batch.ts';
import { creditOf, rowsOf, surrogateAt, type Vec } from './helpers/linear-gaussian-model.ts';

test.before(async () => {
  await selectBackend();
});

const logStd = -1;
const model = { sigma: Math.exp(logStd) };
const policy = linearGaussianPolicy({ observationDim: 1, actionDim: 1, logStd, low: -POINT_1D.maxAction, high: POINT_1D.maxAction });
const theta0: Vec = [0.1, 0.3];
const paramsOf = (th: Vec): Params => ({ W0: tf.tensor2d([[th[0]]]), b0: tf.tensor1d([th[1]]) });
const configFor = (algo: AlgorithmName, adaptationSteps: number): TrainConfig =>
  resolveConfig({
    algo,
    env: 'point-1d',
    seed: 5,
    tasksPerIteration: 2,
    trajectoriesPerTask: 3,
    horizon: 5,
    adaptationSteps,
    innerStepSize: 0.3,
    outerLearningRate: 0.01,
    discount: 0.99,
    gaeLambda: 1,
  });
const meanOf = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const average = (trs: readonly Trajectories[]) => meanOf(trs.map((tr) => Array.from(tr.rewards).reduce((a, b) => a + b, 0) / tr.n));

test.serial('evaluateParams: the average return at each of two adaptation levels is the model’s, sampled with its own θ₁ and θ₂', async (t) => {
  const config = configFor('maml-vpg', 2);
  const trainer = makeTrainer(config, point1d, policy);
  const [seed, tasksCount] = [17, 3];
  // the documented seeds: tasks from (seed, 1e6, 0), level j's trajectories from (seed, 1e6, 1 + j)
  const tasks = point1d.sampleTasks(seededUniform(mixSeeds(seed, 1_000_000, 0)), tasksCount);
  let current: Vec[] = tasks.map(() => theta0);
  const expected: number[] = [];
  for (let j = 0; j <= 2; j++) {
    const tensors = current.map(paramsOf);
    const trajectories = await trainer.sampler.sample({ tasks, params: tensors, perGroup: config.trajectoriesPerTask, horizon: 5, seed: mixSeeds(seed, 1_000_000, 1 + j) });
    tensors.forEach(disposeParams);
    expected.push(average(trajectories));
    // the naive inner step θ + α∇L_PGT(θ; D_j), in float64
    current = trajectories.map((tr, i) => {
      const rows = rowsOf(tr);
      const g = surrogateAt(model, 'pgt', current[i]!, rows, creditOf(rows, 'advantages', config.discount)).g;
      return [current[i]![0] + config.innerStepSize * g[0], current[i]![1] + config.innerStepSize * g[1]];
    });
  }
  t.true(Math.abs(expected[2]! - expected[0]!) > 1e-3, `the levels' returns differ: ${expected}`);
  const params = paramsOf(theta0);
  const before = tf.memory().numTensors;
  const got = await evaluateParams(trainer, params, seed, tasksCount);
  t.is(tf.memory().numTensors, before, 'no tensor left behind');
  disposeParams(params);
  t.is(got.length, 3);
  got.forEach((r, j) => t.true(Math.abs(r - expected[j]!) <= 1e-5 * Math.max(1, Math.abs(expected[j]!)), `level ${j}: ${r} vs ${expected[j]}`));
});

for (const [algo, steps] of [
  ['promp', 1],
  ['maml-trpo', 1],
  ['dice-vpg', 2],
] as const) {
  test.serial(`${algo} (${steps} inner step(s)): an iteration leaves no tensor behind but the parameters and state it returns`, async (t) => {
    const trainer = makeTrainer(configFor(algo, steps), point1d, policy);
    const params = paramsOf(theta0);
    const once = async () => {
      const before = tf.memory().numTensors;
      const result = await runIteration(trainer, params, undefined, 1);
      disposeParams(result.params);
      if (result.optimizerState !== undefined) adam().dispose(result.optimizerState);
      return { result, left: tf.memory().numTensors - before };
    };
    const first = await once();
    const started = performance.now();
    const second = await once();
    const wall = (performance.now() - started) / 1000;
    const result = second.result;
    t.is(second.left, 0, `first run left ${first.left}`);
    // the phases' seconds: each between 0 and the wall time of the whole iteration
    for (const phase of ['samplingSeconds', 'adaptationSeconds', 'outerSeconds'] as const) {
      const s = result.stats[phase];
      t.true(s >= 0 && s <= wall, `${phase} ${s} for an iteration of ${wall} s`);
    }
    t.is(result.stats.averageReturn.length, steps + 1);
    t.is(result.stats.timesteps, (steps + 1) * 2 * 3 * 5);
    disposeParams(params);
  });
}

test.serial('sampleLevels: one set of trajectories, batches and parameters per level (k + 1 of each), nothing left once disposed', async (t) => {
  const trainer = makeTrainer(configFor('dice-vpg', 2), point1d, policy);
  const params = paramsOf(theta0);
  const before = tf.memory().numTensors;
  const sampled = await sampleLevels(trainer, params, 3);
  t.deepEqual([sampled.trajectories.length, sampled.levels.length, sampled.levelParams.length], [3, 3, 3]);
  t.true(sampled.trajectories.every((level) => level.length === 2 && level.every((tr) => tr.n === 3)));
  t.true(sampled.levelParams[0]!.every((p) => p === params), "level 0 samples with the caller's parameters");
  disposeLevels(sampled);
  t.is(tf.memory().numTensors, before);
  disposeParams(params);
});

/** A sampler that behaves like the in-process one, except at `level` (its seed's position), where it fails or spoils the rewards. */
const failingSampler = (level: number, how: 'throw' | 'nan'): Sampler => {
  const real = inProcessSampler(point1d, policy);
  let calls = 0;
  return {
    ...real,
    sample: async (request) => {
      const trajectories = await real.sample(request);
      if (calls++ !== level) return trajectories;
      if (how === 'throw') throw new Error('worker crashed');
      return trajectories.map((tr) => ({ ...tr, rewards: tr.rewards.map(() => Number.NaN) }));
    },
  };
};

test.serial('a sampling failure at level 1 is reported as a training error naming the level, and frees the levels before it', async (t) => {
  const trainer = makeTrainer(configFor('maml-vpg', 1), point1d, policy, failingSampler(1, 'throw'));
  const params = paramsOf(theta0);
  const before = tf.memory().numTensors;
  await t.throwsAsync(sampleLevels(trainer, params, 1), { instanceOf: TrainingError, message: 'iteration 1: sampling at adaptation level 1 failed (worker crashed)' });
  t.is(tf.memory().numTensors, before);
  t.false(params.W0!.isDisposed, "the caller's parameters are the caller's");
  disposeParams(params);
});

test.serial("a NaN meta-objective stops the iteration before the parameters; the caller's parameters and optimiser state survive it", async (t) => {
  for (const algo of ['promp', 'maml-vpg'] as const) {
    const trainer = makeTrainer(configFor(algo, 1), point1d, policy, failingSampler(1, 'nan'));
    const params = paramsOf(theta0);
    const state = adam().init(params);
    const before = tf.memory().numTensors;
    await t.throwsAsync(runIteration(trainer, params, state, 1), { instanceOf: TrainingError, message: /^iteration 1: the meta-objective of task 0 is NaN/ });
    t.is(tf.memory().numTensors, before, `${algo}: nothing left behind`);
    t.false(params.W0!.isDisposed || state.m.W0!.isDisposed || state.v.b0!.isDisposed, `${algo}: the caller's tensors are untouched`);
    disposeParams(params);
    adam().dispose(state);
  }
});

test.serial("ProMP's five steps from a caller's Adam state: the state is left as it was, the new one is returned", async (t) => {
  const trainer = makeTrainer(configFor('promp', 1), point1d, policy);
  const params = paramsOf(theta0);
  const state = adam().init(params);
  const before = tf.memory().numTensors;
  const result = await runIteration(trainer, params, state, 1);
  t.false(state.m.W0!.isDisposed || state.v.W0!.isDisposed, "the caller's state is the caller's");
  t.is(result.optimizerState!.step, 5);
  disposeParams(result.params);
  adam().dispose(result.optimizerState!);
  t.is(tf.memory().numTensors, before);
  disposeParams(params);
  adam().dispose(state);
});

test.serial("levelData with GAE λ < 1: the DiCE family's scale is the population std of the task's GAE advantages, whose mean is not 0", (t) => {
  const [gamma, lambda, n, horizon] = [0.9, 0.5, 2, 4];
  const trainer = makeTrainer(resolveConfig({ algo: 'dice-vpg', env: 'point-1d', discount: gamma, gaeLambda: lambda }), point1d, policy);
  const observations = Float32Array.from([0.5, 0.7, -0.2, 1.1, -1.3, 0.4, 0.9, -0.6]);
  const rewards = Float32Array.from([1.0, -0.5, 0.25, 2.0, -1.5, 0.75, 0.3, -0.1]);
  const mask = Float32Array.from([1, 1, 1, 1, 1, 1, 1, 0]);
  const tr: Trajectories = { n, horizon, observationDim: 1, actionDim: 1, observations, actions: new Float32Array(8), rewards, mask, logProbs: new Float32Array(8) };
  // the recipe in float64: returns, the fitted V, GAE(γ, λ) by hand, its mean and population std over real steps
  const R = new Float64Array(8);
  for (let i = 0; i < n; i++) for (let s = horizon - 1, run = 0; s >= 0; s--) if (mask[i * horizon + s]) R[i * horizon + s] = run = rewards[i * horizon + s]! + gamma * run;
  const V = fitLinearBaseline(observations, Float32Array.from(R), mask, n, horizon, 1).predict(observations, n, horizon, mask);
  const A: number[] = [];
  for (let i = 0; i < n; i++) {
    let run = 0;
    for (let s = horizon - 1; s >= 0; s--) {
      const k = i * horizon + s;
      if (!mask[k]) continue;
      const next = s + 1 < horizon && mask[k + 1] ? V[k + 1]! : 0;
      run = rewards[k]! + gamma * next - V[k]! + gamma * lambda * run;
      A.push(run);
    }
  }
  const mean = A.reduce((a, b) => a + b, 0) / A.length;
  const std = Math.sqrt(A.reduce((a, b) => a + (b - mean) ** 2, 0) / A.length);
  t.true(Math.abs(mean) > 0.05 * std, `the advantages' mean (${mean}) is not negligible against their std (${std})`);
  t.true(Math.abs(Array.from(gae(rewards, Float32Array.from(V), mask, n, horizon, gamma, lambda)).reduce((a, b) => a + b, 0) / A.length - mean) < 1e-5, 'the hand GAE is the library’s');
  const data = levelData(trainer, tr);
  const cost = data.batch.values.r!.dataSync();
  t.true(Math.abs(cost[0]! - rewards[0]! / std) <= 1e-5 * Math.abs(rewards[0]! / std), `t = 0: ${cost[0]} vs r₀/σ = ${rewards[0]! / std}`);
  t.true(Math.abs(cost[1]! - (gamma * rewards[1]!) / std) <= 1e-5, `t = 1: ${cost[1]} vs γ·r₁/σ`);
  disposeBatch(data.batch);
});

test.serial('a ProMP step that diverges after the first (learning rate 1e20) is stopped, and frees the steps before it', async (t) => {
  // At θ_o the objective is finite (the other tests run from there); one Adam step of ~1e20 makes the
  // KL penalty overflow, so the failure comes at the second step, with an intermediate θ and state made.
  const trainer = makeTrainer({ ...configFor('promp', 1), outerLearningRate: 1e20 }, point1d, policy);
  const params = paramsOf(theta0);
  const before = tf.memory().numTensors;
  await t.throwsAsync(runIteration(trainer, params, undefined, 1), { instanceOf: TrainingError, message: /^iteration 1: the meta-objective of task 0 is Infinity/ });
  t.is(tf.memory().numTensors, before);
  t.false(params.W0!.isDisposed);
  disposeParams(params);
});

/**
 * Outer workers done in this thread (the same levelData and outerTaskTerms a worker runs), counting
 * what the iteration asks of them: the terms come from them, and their tasks are released at the end.
 */
const countingWorkers = (trainer: ReturnType<typeof makeTrainer>) => {
  const calls = { load: 0, terms: 0, diagnostics: 0, release: 0 };
  let levels: ReturnType<typeof levelData>[][] = [];
  const workers: OuterWorkers = {
    workers: 1,
    load: async (trajectories) => {
      calls.load++;
      levels = trajectories.map((level) => level.map((tr) => levelData(trainer, tr)));
    },
    terms: async (start, at) => {
      calls.terms++;
      return levels[0]!.map((_, i) => outerTaskTerms(trainer, start, levels.slice(0, -1).map((l) => l[i]!), levels.at(-1)![i]!, at));
    },
    diagnostics: async (start, at) => {
      calls.diagnostics++;
      return levels[0]!.map((_, i) => prompTaskDiagnostics(trainer, start, levels.slice(0, -1).map((l) => l[i]!), levels.at(-1)![i]!, at));
    },
    release: async () => {
      calls.release++;
      levels.flat().forEach((d) => disposeBatch(d.batch));
      levels = [];
    },
    close: async () => {},
  };
  return { workers, calls };
};

test.serial('with outer workers, ProMP takes every step’s terms and its end-of-step statistics from them and releases their tasks, also when a step fails', async (t) => {
  for (const rate of [0.01, 1e20]) {
    const base = makeTrainer({ ...configFor('promp', 1), outerLearningRate: rate }, point1d, policy);
    const { workers, calls } = countingWorkers(base);
    const trainer = { ...base, outerWorkers: workers };
    const params = paramsOf(theta0);
    const run = runIteration(trainer, params, undefined, 1);
    if (rate === 0.01) {
      const result = await run;
      t.deepEqual(calls, { load: 1, terms: 5, diagnostics: 1, release: 1 }, 'five ProMP steps, each from the workers, then the statistics at the end');
      disposeParams(result.params);
      adam().dispose(result.optimizerState!);
    } else {
      await t.throwsAsync(run, { instanceOf: TrainingError });
      t.is(calls.release, 1, 'released after the failed step too');
    }
    disposeParams(params);
  }
});

test.serial('a finite meta-objective with a NaN meta-gradient stops the iteration before the parameters, naming the gradient', async (t) => {
  // The terms come from (in-thread) outer workers whose task-0 gradient of W0 is NaN while the
  // objective stays finite: only the gradients' own finiteness check can stop it.
  const base = makeTrainer(configFor('maml-vpg', 1), point1d, policy);
  const { workers } = countingWorkers(base);
  const poisoned: OuterWorkers = {
    ...workers,
    terms: async (start, at) => {
      const terms = await workers.terms(start, at);
      return terms.map((values, i) => (i === 0 ? values.map((v, k) => (k === 1 ? v.map(() => Number.NaN) : v)) : values));
    },
  };
  const params = paramsOf(theta0);
  const before = tf.memory().numTensors;
  await t.throwsAsync(runIteration({ ...base, outerWorkers: poisoned }, params, undefined, 1), {
    instanceOf: TrainingError,
    message: /^iteration 1: the meta-gradient of W0 \(task 0\) is NaN/,
  });
  t.is(tf.memory().numTensors, before);
  t.false(params.W0!.isDisposed);
  disposeParams(params);
});

test.serial('TRPO is unchanged by a constant added to the meta-objective: the line search compares −f(x) with −f(x₀), whatever f(x₀)’s sign', async (t) => {
  // A constant c added to the surrogate moves f(x₀) and every f(x) alike, so each trial step is
  // accepted or refused as before and the same parameters come out, for c = −5 and c = +5 (both far
  // from the unshifted f(x₀)): a line search that compared −f(x) with +f(x₀) would refuse every step
  // at c = −5. The gradient, the natural direction and the KL are those of the unshifted surrogate.
  const run = async (shift: number) => {
    const base = makeTrainer(configFor('maml-trpo', 1), point1d, policy);
    const meta = { ...base.meta, surrogate: (...args: Parameters<typeof base.meta.surrogate>) => tf.add(base.meta.surrogate(...args), shift) as tf.Scalar };
    const params = paramsOf(theta0);
    const result = await runIteration({ ...base, meta }, params, undefined, 1);
    const out = { W0: result.params.W0!.dataSync()[0]!, b0: result.params.b0!.dataSync()[0]!, objective: result.stats.objective, lineSearch: result.stats.lineSearch };
    disposeParams(result.params);
    disposeParams(params);
    return out;
  };
  const plain = await run(0);
  t.true(Math.abs(plain.W0 - theta0[0]) + Math.abs(plain.b0 - theta0[1]) > 1e-4, `the unshifted run steps: ${JSON.stringify(plain)}`);
  for (const shift of [-5, 5]) {
    const shifted = await run(shift);
    t.true(Math.abs(shifted.objective - (plain.objective + shift)) <= 1e-5 * Math.abs(shift), `c = ${shift}: f(x₀) = ${shifted.objective} vs ${plain.objective} + c`);
    t.is(shifted.lineSearch, plain.lineSearch, `c = ${shift}: the line search`);
    t.true(Math.abs(shifted.W0 - plain.W0) <= 1e-6 && Math.abs(shifted.b0 - plain.b0) <= 1e-6, `c = ${shift}: θ = (${shifted.W0}, ${shifted.b0}) vs (${plain.W0}, ${plain.b0})`);
  }
});

/** The in-process sampler, but throwing `error` when sampling level `level`. */
const throwingSampler = (level: number, error: unknown): Sampler => {
  const real = inProcessSampler(point1d, policy);
  let calls = 0;
  return {
    ...real,
    sample: async (request) => {
      if (calls++ === level) throw error;
      return real.sample(request);
    },
  };
};

test.serial('a sampling failure with a non-finite action says the policy (level 0) or the adapted policy (level 1) has diverged; any other says nothing more', async (t) => {
  const cases: Array<[number, unknown, string]> = [
    [0, new Error('action NaN at step 3'), 'iteration 2: sampling at adaptation level 0 failed — the policy has diverged? (action NaN at step 3)'],
    [1, new Error('action -Infinity in dimension 0'), 'iteration 2: sampling at adaptation level 1 failed — the adapted policy has diverged? (action -Infinity in dimension 0)'],
    [0, 'action Infinity', 'iteration 2: sampling at adaptation level 0 failed — the policy has diverged? (action Infinity)'],
    [0, new Error('action 0.5 is out of range'), 'iteration 2: sampling at adaptation level 0 failed (action 0.5 is out of range)'],
  ];
  for (const [level, error, message] of cases) {
    const trainer = makeTrainer(configFor('maml-vpg', 1), point1d, policy, throwingSampler(level, error));
    const params = paramsOf(theta0);
    const before = tf.memory().numTensors;
    await t.throwsAsync(sampleLevels(trainer, params, 2), { instanceOf: TrainingError, message });
    t.is(tf.memory().numTensors, before);
    disposeParams(params);
  }
});

test.serial('memoryError: each way a backend reports an exhausted heap is a training error naming the batch; any other error is not', (t) => {
  const trainer = makeTrainer(configFor('maml-vpg', 1), point1d, policy);
  const expected = `iteration 4: the ${tf.getBackend()} backend ran out of memory with 2 tasks × 3 trajectories × horizon 5 (1 adaptation step(s), policy linear); lower --trajectories (or --horizon, or the hidden widths), or use a node backend, then resume from the last checkpoint`;
  const runtime = (message: string) => Object.assign(new Error(message), { name: 'RuntimeError' });
  const memory: unknown[] = [
    new Error('Aborted(). Build with -sASSERTIONS for more info.'),
    new Error('Cannot enlarge memory arrays to size 4294967296 bytes'),
    new Error('Out of memory'),
    new Error('wasm: out of memory in malloc'),
    new Error('memory access out of bounds'),
    new RangeError('Array buffer allocation failed'),
    runtime('abort(OOM)'),
    runtime('ABORT: called'),
    'Out of memory',
  ];
  for (const e of memory) {
    const error = memoryError(trainer, 4, e);
    t.true(error instanceof TrainingError, String(e));
    t.is(error?.message, expected, String(e));
  }
  for (const e of [new Error('worker crashed'), runtime('unreachable executed'), new Error('the request was aborted'), 'a string', undefined]) {
    t.is(memoryError(trainer, 4, e), undefined, String(e));
  }
});

test.serial('runIteration reports an exhausted heap as the training error that names the batch, and passes any other error on as it is', async (t) => {
  const run = async (error: Error) => {
    const trainer = makeTrainer(configFor('maml-vpg', 1), point1d, policy, throwingSampler(0, error));
    const params = paramsOf(theta0);
    try {
      return await t.throwsAsync(runIteration(trainer, params, undefined, 1), { instanceOf: TrainingError });
    } finally {
      disposeParams(params);
    }
  };
  t.regex((await run(new Error('Cannot enlarge memory arrays')))!.message, /^iteration 1: the \w+ backend ran out of memory with 2 tasks × 3 trajectories × horizon 5 /);
  t.is((await run(new Error('worker crashed')))!.message, 'iteration 1: sampling at adaptation level 0 failed (worker crashed)');
});
