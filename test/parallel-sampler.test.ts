/**
 * The worker-thread sampler: the same trajectories as sampling in this thread, bit for bit, whatever
 * the number of workers (point and MuJoCo environments, groups with different parameters), and so the
 * same training iteration; errors inside a worker name the environment and the task; a worker that
 * dies fails its request with the environment and tasks instead of hanging, and the pool then refuses
 * further requests.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend.ts';
import { loadTaskDistribution } from '../src/envs/index.ts';
import { runIteration } from '../src/meta/iteration.ts';
import { splitGroups, workerSampler, type PolicySpec } from '../src/meta/parallel-sampler.ts';
import { mlpPolicyFor } from '../src/meta/policy.ts';
import { inProcessSampler, SamplerError, type SampleRequest, type Trajectories } from '../src/meta/sampler.ts';
import { resolveConfig } from '../src/meta/config.ts';
import { completeConfig, trainerFor } from '../src/meta/train.ts';
import { disposeParams } from '../src/meta/algorithms.ts';
import { seededUniform } from '../src/random.ts';

const backend = selectBackend();

const fields = ['observations', 'actions', 'rewards', 'mask', 'logProbs'] as const;
/** Whether two samples are equal to the last bit (compared as bytes, so NaN patterns count too). */
const identical = (a: readonly Trajectories[], b: readonly Trajectories[]): boolean =>
  a.length === b.length &&
  a.every((tr, g) =>
    fields.every((f) => Buffer.compare(Buffer.from(tr[f].buffer, tr[f].byteOffset, tr[f].byteLength), Buffer.from(b[g]![f].buffer, b[g]![f].byteOffset, b[g]![f].byteLength)) === 0),
  );

test('splitGroups: contiguous blocks covering every group once, sizes differing by at most one', (t) => {
  for (const [groups, workers] of [[40, 2], [5, 3], [2, 4], [0, 2], [7, 1]] as const) {
    const blocks = splitGroups(groups, workers);
    t.is(blocks.length, workers);
    t.is(blocks[0]!.start, 0);
    t.is(blocks.at(-1)!.end, groups);
    blocks.slice(1).forEach((b, w) => t.is(b.start, blocks[w]!.end));
    const sizes = blocks.map((b) => b.end - b.start);
    t.true(Math.max(...sizes) - Math.min(...sizes) <= 1, `${groups} over ${workers}: ${sizes.join(', ')}`);
  }
});

for (const env of ['point-corners', 'half-cheetah-fwd-back'] as const) {
  test(`${env}: 1, 2 and 3 workers give the in-process trajectories to the last bit`, async (t) => {
    const b = await backend;
    const distribution = await loadTaskDistribution(env);
    const spec: PolicySpec = { observationDim: distribution.observationDim, action: distribution.action, hidden: [16, 16] };
    const policy = mlpPolicyFor(spec.observationDim, spec.action, { hidden: spec.hidden });
    const tasks = distribution.sampleTasks(seededUniform(11), 5);
    // Every group its own parameters, as at an adapted level.
    const params = tasks.map((_, g) => policy.init(100 + g));
    const request: SampleRequest = { tasks, params, perGroup: 3, horizon: 30, seed: 1234 };
    try {
      const reference = await inProcessSampler(distribution, policy).sample(request);
      t.is(reference.length, 5);
      t.true(reference.every((tr) => tr.mask.some((m) => m === 1)));
      // Different seeds give different trajectories (the comparison below has teeth).
      t.false(identical(reference, await inProcessSampler(distribution, policy).sample({ ...request, seed: 1235 })));
      for (const workers of [1, 2, 3]) {
        const sampler = await workerSampler({ environment: env, policy: spec, backend: b.tfjsName, workers, describeTask: distribution.describeTask });
        try {
          t.is(sampler.workers, workers);
          t.true(identical(await sampler.sample(request), reference), `${workers} worker(s)`);
        } finally {
          await sampler.close();
        }
      }
    } finally {
      params.forEach(disposeParams);
    }
  });
}

test('a training iteration is the same with 2 sampler workers as in this thread', async (t) => {
  await backend;
  const config = completeConfig(resolveConfig({ algo: 'promp', env: 'nav-2d', seed: 5, tasksPerIteration: 3, trajectoriesPerTask: 4, horizon: 12, hidden: [8], prompSteps: 2 }));
  const local = await trainerFor(config, { workers: 1 });
  const pooled = await trainerFor(config, { workers: 2 });
  t.is(local.sampler.workers, 1);
  t.is(pooled.sampler.workers, 2);
  const params = local.policy.init(config.seed);
  try {
    const a = await runIteration(local, params, undefined, 3);
    const b = await runIteration(pooled, params, undefined, 3);
    t.deepEqual(a.stats.averageReturn, b.stats.averageReturn);
    t.is(a.stats.objective, b.stats.objective);
    for (const name of Object.keys(params)) t.deepEqual(Array.from(a.params[name]!.dataSync()), Array.from(b.params[name]!.dataSync()), name);
    for (const r of [a, b]) {
      disposeParams(r.params);
      if (r.optimizerState !== undefined) tf.dispose([...Object.values(r.optimizerState.m), ...Object.values(r.optimizerState.v)]);
    }
  } finally {
    disposeParams(params);
    await pooled.sampler.close();
  }
});

test('an error inside a worker names the environment and the task; the pool goes on sampling', async (t) => {
  const b = await backend;
  const distribution = await loadTaskDistribution('half-cheetah-fwd-back');
  const spec: PolicySpec = { observationDim: distribution.observationDim, action: distribution.action, hidden: [4] };
  const policy = mlpPolicyFor(spec.observationDim, spec.action, { hidden: spec.hidden });
  const good = policy.init(1);
  // NaN weights make NaN actions, which the environment refuses.
  const bad = Object.fromEntries(Object.entries(policy.init(2)).map(([k, v]) => [k, k === 'W0' ? tf.fill(v.shape, Number.NaN) : v]));
  const tasks = [{ direction: 1 }, { direction: -1 }];
  const sampler = await workerSampler({ environment: 'half-cheetah-fwd-back', policy: spec, backend: b.tfjsName, workers: 2, describeTask: distribution.describeTask });
  try {
    const error = await t.throwsAsync(() => sampler.sample({ tasks, params: [good, bad], perGroup: 2, horizon: 5, seed: 1 }), { instanceOf: SamplerError });
    t.regex(error!.message, /half-cheetah-fwd-back/);
    t.regex(error!.message, /task 1 \(\{"direction":-1\}\)/);
    t.regex(error!.message, /action NaN/);
    const after = await sampler.sample({ tasks, params: [good, good], perGroup: 2, horizon: 5, seed: 1 });
    t.is(after.length, 2);
  } finally {
    await sampler.close();
    disposeParams(good);
    tf.dispose(Object.values(bad));
  }
});

for (const how of ['exit', 'throw'] as const) {
  test(`a worker that dies (${how}) fails the request with the environment and its tasks, and the pool refuses more`, async (t) => {
    const entry = new URL('./helpers/crashing-worker.mjs', import.meta.url);
    const spec: PolicySpec = { observationDim: 2, action: { kind: 'continuous', dim: 2, low: -1, high: 1 }, hidden: [] };
    const sampler = await workerSampler({ environment: how, policy: spec, backend: 'cpu', workers: 2, entry });
    const params = mlpPolicyFor(2, spec.action, { hidden: [] }).init(0);
    try {
      const tasks = [{ goal: [1, 2] }, { goal: [3, 4] }, { goal: [5, 6] }];
      const error = await t.throwsAsync(() => sampler.sample({ tasks, params: tasks.map(() => params), perGroup: 1, horizon: 2, seed: 0 }), { instanceOf: SamplerError });
      t.regex(error!.message, how === 'exit' ? /worker \d for exit exited with code 3/ : /worker \d for throw crashed: deliberate failure/);
      t.regex(error!.message, /\{"goal":\[\d,\d\]\}/);
      const refused = await t.throwsAsync(() => sampler.sample({ tasks, params: tasks.map(() => params), perGroup: 1, horizon: 2, seed: 0 }), { instanceOf: SamplerError });
      t.regex(refused!.message, /cannot sample/);
    } finally {
      await sampler.close();
      disposeParams(params);
    }
  });
}

test('a worker that cannot set up its environment fails the pool at start, naming it', async (t) => {
  const b = await backend;
  const spec: PolicySpec = { observationDim: 2, action: { kind: 'continuous', dim: 2, low: -1, high: 1 }, hidden: [] };
  const error = await t.throwsAsync(() => workerSampler({ environment: 'no-such-env', policy: spec, backend: b.tfjsName, workers: 2 }), { instanceOf: SamplerError });
  t.regex(error!.message, /could not set up no-such-env: unknown environment 'no-such-env'; valid: point-corners/);
  await t.throwsAsync(() => workerSampler({ environment: 'nav-2d', policy: spec, backend: b.tfjsName, workers: 0 }), { message: /workers must be a positive integer, got 0/ });
});
