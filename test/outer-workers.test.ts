/**
 * The outer step across worker threads: the same parameters, statistics and Adam state, bit for bit,
 * whether the per-task terms are computed in this thread or in two workers (ProMP, with the fused
 * policy op, and MAML-VPG); and no tensor left behind over an iteration loop.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { resolveConfig } from '../src/meta/config.ts';
import { memoryError, runIteration, TrainingError, type OptimizerState, type Trainer } from '../src/meta/iteration.ts';
import { trainerFor } from '../src/meta/train.ts';
import type { Params } from '../src/surrogates/batch.ts';
import { useBackend } from './helpers/derivatives.ts';

test.before(async () => {
  await useBackend('wasm');
});

const values = (p: Params): number[][] => Object.values(p).map((t) => Array.from(t.dataSync()));

/** Two iterations from the same start: the parameters, Adam moments and statistics (ProMP's end-of-step ones too) after each. */
const twoIterations = async (trainer: Trainer) => {
  let params = trainer.policy.init(3);
  let state: OptimizerState = undefined;
  const trace = [];
  for (let it = 0; it < 2; it++) {
    const r = await runIteration(trainer, params, state, it);
    tf.dispose(Object.values(params));
    if (state !== undefined) tf.dispose([...Object.values(state.m), ...Object.values(state.v)]);
    params = r.params;
    state = r.optimizerState;
    // ProMP's end-of-step statistics too (computed by the workers where there are some).
    const { objectiveAfter, kl, clipFraction } = r.stats;
    trace.push({ params: values(params), m: values(state!.m), v: values(state!.v), returns: r.stats.averageReturn, objective: r.stats.objective, after: [objectiveAfter, kl, clipFraction] });
  }
  tf.dispose(Object.values(params));
  if (state !== undefined) tf.dispose([...Object.values(state.m), ...Object.values(state.v)]);
  return trace;
};

for (const algo of ['promp', 'maml-vpg', 'emaml-vpg'] as const) {
  test.serial(`${algo}: the outer step on 2 worker threads gives exactly the numbers of the one-thread step`, async (t) => {
    // Raw actions: with the released normalisation (steps of std 0.02) 20 steps never leave the
    // rewardless start region, every advantage is 0 and nothing would move.
    const config = resolveConfig({ algo, env: 'point-corners', tasksPerIteration: 3, trajectoriesPerTask: 4, horizon: 20, adaptationSteps: 2, seed: 5, actionNormalization: 'raw' });
    const local = await trainerFor(config, { workers: 1 });
    const pooled = await trainerFor(config, { workers: 2 });
    try {
      t.is(local.outerWorkers, undefined);
      t.is(pooled.outerWorkers?.workers, 2);
      const before = tf.memory().numTensors;
      const a = await twoIterations(local);
      const b = await twoIterations(pooled);
      t.deepEqual(b, a);
      // The parameters moved (the comparison is not of two untouched starts).
      t.notDeepEqual(a[1]!.params, a[0]!.params);
      t.is(tf.memory().numTensors, before);
    } finally {
      await local.sampler.close();
      await pooled.sampler.close();
    }
  });
}

test.serial('an exhausted backend heap becomes a TrainingError naming the batch and what to lower; other errors pass through', async (t) => {
  const config = resolveConfig({ algo: 'promp', env: 'point-corners', tasksPerIteration: 40, trajectoriesPerTask: 20, seed: 5 });
  const trainer = await trainerFor(config, { workers: 1 });
  try {
    const aborted = Object.assign(new Error('Aborted(). Build with -sASSERTIONS for more info.'), { name: 'RuntimeError' });
    const error = memoryError(trainer, 7, aborted);
    t.true(error instanceof TrainingError);
    t.regex(error!.message, /^iteration 7: the wasm backend ran out of memory with 40 tasks × 20 trajectories × horizon 100 .*lower --trajectories/);
    t.is(error!.message.split('\n').length, 1);
    t.is(memoryError(trainer, 7, new Error('sampling failed: a NaN action')), undefined);
  } finally {
    await trainer.sampler.close();
  }
});
