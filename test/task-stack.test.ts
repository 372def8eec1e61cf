/**
 * Stacked tasks in the outer step (src/meta/task-stack.ts): K tasks' data as one batch of K groups and
 * their parameters as θ of K blocks give each task's outer-loss term and gradient — for every
 * algorithm the fused engine serves — exactly as a stack of one does (so the stack size, and with it
 * the number of outer-step workers, changes no number), and to float32 rounding what the task alone
 * gives on the unstacked path. The same for the inner steps and ProMP's diagnostics (bit for bit), and
 * for a whole iteration in stacks of two, which also makes fewer fused calls. The stacking itself:
 * stack sizes, groups checked, per-group means, a Gaussian's shared log-std repeated per sample, clear
 * refusals, nothing left behind.
 */
import test, { type ExecutionContext } from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend.ts';
import { pointCorners } from '../src/envs/index.ts';
import { disposeParams, keepParams } from '../src/meta/algorithms.ts';
import { batchSize } from '../src/meta/batch-size.ts';
import { resolveConfig } from '../src/meta/config.ts';
import {
  disposeLevels,
  emamlScoreWeights,
  innerStep,
  innerSteps,
  makeTrainer,
  needsSamplingParams,
  outerStackSize,
  outerStackTerms,
  outerTaskTerms,
  prompDiagnostics,
  prompTaskDiagnostics,
  runIteration,
  sampleLevels,
  usesScoreWeights,
  withSamplingDistributions,
  TrainingError,
  type Trainer,
} from '../src/meta/iteration.ts';
import { weightedMean, type LevelData } from '../src/meta/meta-objective.ts';
import { categoricalMlpPolicy, gaussianMlpPolicy, mlpPolicyFor } from '../src/meta/policy.ts';
import { adam } from '../src/meta/optimizers.ts';
import { disposeStacked, disposeStackedTasks, stackLevelData, stackSize, stackTasks, taskStacks, TaskStackError } from '../src/meta/task-stack.ts';
import { BatchError, batchDimensions, type Params } from '../src/surrogates/batch.ts';
import { meanKlFrom } from '../src/surrogates/divergence.ts';
import { evaluateGraph, EvaluationError } from '../src/surrogates/evaluate.ts';

test.before(async () => {
  await selectBackend('wasm');
});

const policy = mlpPolicyFor(pointCorners.observationDim, pointCorners.action, { hidden: [16, 16] });
const tasks = 4;

/** θ + 0.05·noise, seeded: away from the sampling parameters (KL and clipping not at their trivial points). */
const moved = (params: Params): Params =>
  tf.tidy(() => Object.fromEntries(Object.entries(params).map(([n, v], k) => [n, tf.keep(tf.add(v, tf.mul(0.05, tf.randomNormal(v.shape, 0, 1, 'float32', 11 + k))))])));

/** Each task's pre-update levels and post-update data as the iteration prepares them (sampling parameters, KL reference, score weights). */
const prepare = (trainer: Trainer, start: Params, sampled: Awaited<ReturnType<typeof sampleLevels>>) => {
  const K = trainer.adaptationSteps;
  const made: Array<() => void> = [];
  const scores = usesScoreWeights(trainer) ? emamlScoreWeights(sampled.trajectories[K]!) : undefined;
  const perTask = sampled.tasks.map((_, i) => {
    let pre: LevelData[] = sampled.levels.slice(0, K).map((l, j) => (needsSamplingParams(trainer) && j > 0 ? { ...l[i]!, sampledBy: sampled.levelParams[j]![i]! } : l[i]!));
    if (trainer.algorithm.optimizer === 'promp') {
      const fixed = withSamplingDistributions(trainer, start, pre);
      made.push(fixed.dispose);
      pre = fixed.pre;
    }
    const post = scores === undefined ? sampled.levels[K]![i]! : { ...sampled.levels[K]![i]!, scoreWeight: scores[i]! };
    return { pre, post };
  });
  return { perTask, dispose: () => made.forEach((f) => f()) };
};

/** The terms of tasks [start, end) computed as one stack. */
const stackTerms = (trainer: Trainer, start: Params, at: Params, perTask: readonly { pre: LevelData[]; post: LevelData }[], from: number, to: number) => {
  const stack = stackTasks(perTask.slice(from, to));
  try {
    return outerStackTerms(trainer, start, stack.pre, stack.post, at);
  } finally {
    disposeStackedTasks(stack);
  }
};

/**
 * `body` on a trainer's iteration-0 tasks, prepared as the iteration prepares them, with θo = `start`
 * and parameters `at` moved off it; then nothing may be left behind.
 */
const onSampledTasks = async (
  t: ExecutionContext,
  trainer: Trainer,
  seed: number,
  body: (s: { start: Params; at: Params; sampled: Awaited<ReturnType<typeof sampleLevels>>; perTask: ReturnType<typeof prepare>['perTask'] }) => void,
): Promise<void> => {
  const start = policy.init(seed);
  const at = moved(start);
  const before = tf.memory().numTensors;
  const sampled = await sampleLevels(trainer, start, 0);
  const { perTask, dispose } = prepare(trainer, start, sampled);
  try {
    body({ start, at, sampled, perTask });
  } finally {
    dispose();
    disposeLevels(sampled);
  }
  t.is(tf.memory().numTensors, before, 'nothing left behind');
  disposeParams(start);
  disposeParams(at);
};

const cases = [
  ['promp', { prompKlLevels: 'every-level' }],
  ['promp', { prompKlLevels: 'pre-update' }],
  ['maml-vpg', {}],
  ['emaml-vpg', { emamlScore: 'released' }],
  ['emaml-vpg', { emamlScore: 'every-level' }],
  ['lvc-vpg', {}],
  ['dice-vpg', {}],
  ['tmaml', {}],
] as const;

for (const [algo, extra] of cases) {
  test.serial(`${algo} ${JSON.stringify(extra)}: a stack of ${tasks} tasks gives each task's term and gradient, bit for bit those of stacks of one and two, and the unstacked path's to float32 rounding`, async (t) => {
    const trainer = makeTrainer(
      resolveConfig({ algo, env: 'point-corners', engine: 'fused', seed: 5, tasksPerIteration: tasks, trajectoriesPerTask: 3, horizon: 12, adaptationSteps: 2, actionNormalization: 'raw', ...extra }),
      pointCorners,
      policy,
    );
    await onSampledTasks(t, trainer, 6, ({ start, at, perTask }) => {
      const whole = stackTerms(trainer, start, at, perTask, 0, tasks);
      const ones = perTask.flatMap((_, i) => stackTerms(trainer, start, at, perTask, i, i + 1));
      const twos = [0, 2].flatMap((i) => stackTerms(trainer, start, at, perTask, i, i + 2));
      t.is(whole.length, tasks);
      t.deepEqual(whole, ones, 'a stack of 4 and stacks of 1: the same bits');
      t.deepEqual(whole, twos, 'a stack of 4 and stacks of 2: the same bits');
      for (let i = 0; i < tasks; i++) {
        const alone = outerTaskTerms(trainer, start, perTask[i]!.pre, perTask[i]!.post, at);
        t.is(alone.length, whole[i]!.length);
        let diff = 0;
        let scale = 0;
        alone.forEach((a, k) => a.forEach((x, e) => ((diff = Math.max(diff, Math.abs(x - whole[i]![k]![e]!))), (scale = Math.max(scale, Math.abs(x))))));
        t.true(diff <= 1e-6 * scale, `task ${i}: largest difference ${diff} (scale ${scale})`);
      }
      // Teeth: the tasks' gradients differ, so a stack that mixed its tasks up would show.
      t.notDeepEqual(whole[0]!.slice(1), whole[1]!.slice(1));
    });
  });
}

test('stack sizes: by rows (at least one task), fewer where outer-step workers each need a stack; none on the tfjs engine, for TRPO, or for packed ops that do not take blocks', (t) => {
  t.is(stackSize(2000, 132), 10);
  t.is(stackSize(4000, 132), 5);
  t.is(stackSize(2000, 154), 8, 'a wider network (the half-cheetah 20-64-64-6): fewer tasks');
  t.is(stackSize(2000, 2 + 512 + 2), 2);
  t.is(stackSize(50_000, 132), 1);
  t.deepEqual(taskStacks(7, 3), [
    { start: 0, end: 3 },
    { start: 3, end: 6 },
    { start: 6, end: 7 },
  ]);
  const config = resolveConfig({ algo: 'promp', env: 'point-corners', engine: 'fused', trajectoriesPerTask: 20, horizon: 100 });
  // The paper's 2-64-64-2 network (the other tests' is narrower).
  const paper = mlpPolicyFor(pointCorners.observationDim, pointCorners.action, { hidden: [64, 64] });
  const fused = makeTrainer(config, pointCorners, paper);
  t.is(outerStackSize(fused, 40), 10);
  t.is(outerStackSize(fused, 40, 2), 10);
  t.is(outerStackSize(fused, 10, 2), 5);
  t.is(outerStackSize(fused, 3, 4), 1);
  // The width counts every layer, the actions' too: 2 + 128 + 40 (7 tasks), and a categorical head's
  // logits (2 + 128 + 100: 5 tasks).
  t.is(outerStackSize(makeTrainer(config, pointCorners, gaussianMlpPolicy({ observationDim: 2, actionDim: 40 })), 40), 7);
  t.is(outerStackSize(makeTrainer(config, pointCorners, categoricalMlpPolicy({ observationDim: 2, actions: 100 })), 40), 5);
  const wide = mlpPolicyFor(pointCorners.observationDim, pointCorners.action, { hidden: [256, 256] });
  t.is(outerStackSize(makeTrainer(config, pointCorners, wide), 40), 2, 'the 2-256-256-2 network: 2 tasks of 2,000 rows');
  t.is(outerStackSize(makeTrainer({ ...config, engine: 'tfjs' }, pointCorners, paper), 40), undefined);
  // A policy of one's own whose packed ops do not say they take θ of blocks is not stacked.
  const ownOps = { ...paper, packed: { ...paper.packed!, blocks: undefined } };
  t.is(outerStackSize(makeTrainer(config, pointCorners, ownOps), 40), undefined);
  t.is(outerStackSize(makeTrainer({ ...config, algo: 'maml-trpo' }, pointCorners, paper), 40), undefined);
});

test.serial('stackLevelData: batches stacked in task order with their groups, per-group means, the shared log-std repeated per sample; refusals name the problem', async (t) => {
  const trainer = makeTrainer(
    resolveConfig({ algo: 'promp', env: 'point-corners', engine: 'fused', seed: 2, tasksPerIteration: 3, trajectoriesPerTask: 2, horizon: 5, adaptationSteps: 1, actionNormalization: 'raw' }),
    pointCorners,
    policy,
  );
  const start = policy.init(1);
  const before = tf.memory().numTensors;
  const sampled = await sampleLevels(trainer, start, 0);
  const { perTask, dispose } = prepare(trainer, start, sampled);
  try {
    const levels = perTask.map((p) => p.pre[0]!);
    const stacked = stackLevelData(levels);
    try {
      // The checks' own tensors in a scope of their own; the stacked data's freed by disposeStacked alone.
      tf.tidy(() => {
      t.is(stacked.batch.groups, 3);
      const s = stacked.batch.values.s!;
      t.deepEqual(s.shape, [6, 5, 2]);
      t.deepEqual(Array.from(s.dataSync().slice(20, 40)), Array.from(levels[1]!.batch.values.s!.dataSync()), "task 1's samples are rows 2–3");
      t.deepEqual(batchDimensions(trainer.graph, stacked.batch), { size: 6, horizon: 5 });
      // Per-group means: each task's own, as its batch alone gives it.
      const x = tf.range(0, 6, 1, 'float32');
      const means = weightedMean(x, stacked, {}).dataSync();
      const alone = levels.map((d, i) => weightedMean(tf.slice(x, [2 * i], [2]), d, {}).dataSync()[0]!);
      t.deepEqual(Array.from(means), alone.map(Math.fround));
      // The KL reference: the log-std ([2], shared) repeated per sample as [6, 1, 2], the mean stacked.
      const reference = stacked.samplingDistributions!.get('a')! as unknown as Record<string, tf.Tensor>;
      t.deepEqual(reference.logStd!.shape, [6, 1, 2]);
      t.deepEqual(reference.mean!.shape, [6, 5, 2]);
      // KL of the reference with itself, per group: zeros, one per task.
      const kl = meanKlFrom(trainer.graph, stacked.samplingDistributions!, { theta: tf.tile(tf.reshape(trainer.parameters.toGraph(start).theta!, [1, -1]), [3, 1]) }, stacked.batch);
      t.deepEqual(kl.shape, [3]);
      t.true(Math.max(...Array.from(kl.dataSync()).map(Math.abs)) < 1e-6);
      t.throws(() => stackLevelData([stacked]), { instanceOf: TaskStackError, message: /already a stack/ });
      t.throws(() => batchDimensions(trainer.graph, { ...stacked.batch, groups: 4 }), { instanceOf: BatchError, message: /groups is 4 but must be a whole number ≥ 1 dividing the batch's 6 samples/ });
      });
    } finally {
      disposeStacked(stacked);
    }
    t.throws(() => stackLevelData([levels[0]!, { ...levels[1]!, weights: undefined }]), { instanceOf: TaskStackError, message: /some tasks weight their samples/ });
    t.throws(() => stackLevelData([levels[0]!, { ...levels[1]!, samplingDistributions: undefined }]), { instanceOf: TaskStackError, message: /KL reference/ });
    const shorter = { ...levels[1]!, batch: { ...levels[1]!.batch, mask: tf.slice(levels[1]!.batch.mask!, [0, 0], [1, 5]) } };
    t.throws(() => stackLevelData([levels[0]!, shorter]), { instanceOf: TaskStackError, message: /differ in size \(2 × 5, 1 × 5\)/ });
    shorter.batch.mask.dispose();
    t.throws(() => stackLevelData([]), { instanceOf: TaskStackError });
    t.throws(() => stackTasks([]), { instanceOf: TaskStackError });
    // Tasks whose post-update data cannot be stacked: the pre-update levels stacked first are freed.
    const beforeRefusal = tf.memory().numTensors;
    t.throws(() => stackTasks([perTask[0]!, { ...perTask[1]!, post: { ...perTask[1]!.post, scoreWeight: 2 } }]), { instanceOf: TaskStackError, message: /E-MAML score weight/ });
    t.is(tf.memory().numTensors, beforeRefusal, 'a refused stack leaves nothing');
    // The stacked terms need stacked data (and the packed θ): a single task's is refused, not misread.
    t.throws(() => outerStackTerms(trainer, start, perTask[0]!.pre, perTask[0]!.post, start), { instanceOf: TrainingError, message: /needs the fused engine and stacked tasks/ });
    const general = makeTrainer({ ...trainer.config, engine: 'tfjs' }, pointCorners, policy);
    const onePre = stackLevelData([perTask[0]!.pre[0]!]);
    const onePost = stackLevelData([perTask[0]!.post]);
    try {
      t.throws(() => outerStackTerms(general, start, [onePre], onePost, start), { instanceOf: TrainingError, message: /needs the fused engine/ });
    } finally {
      [onePre, onePost].forEach(disposeStacked);
    }
    // What each task carries, or none carries, is stacked as such; a mix is refused before anything is made.
    const stackedAgain = stackLevelData(levels);
    const unmasked = levels.map((d) => ({ ...d, batch: { ...d.batch, mask: undefined } }));
    const zeros = tf.zeros([2, 5]);
    const baselined = { ...levels[1]!, batch: { ...levels[1]!.batch, baselines: { a: zeros } } };
    const mark = tf.memory().numTensors;
    t.throws(() => stackLevelData([stackedAgain, levels[0]!]), { instanceOf: TaskStackError, message: /already a stack/ });
    t.throws(() => stackLevelData([levels[0]!, unmasked[1]!]), { instanceOf: TaskStackError, message: /some tasks mask their batches and some do not/ });
    t.throws(() => stackLevelData([{ ...levels[0]!, scoreWeight: 1 }, levels[1]!]), { instanceOf: TaskStackError, message: /E-MAML score weight/ });
    t.throws(() => stackLevelData([levels[0]!, baselined]), { instanceOf: TaskStackError, message: /differ in their baselines/ });
    t.throws(() => stackLevelData([baselined, levels[0]!]), { instanceOf: TaskStackError, message: /differ in their baselines/ });
    // The same number of baselines under another name, and one more behaviour log-probability.
    const renamed = { ...levels[0]!, batch: { ...levels[0]!.batch, baselines: { s: zeros } } };
    t.throws(() => stackLevelData([renamed, baselined]), { instanceOf: TaskStackError, message: /differ in their baselines/ });
    const extra = { ...levels[1]!, batch: { ...levels[1]!.batch, behaviour: { ...levels[1]!.batch.behaviour, s: zeros } } };
    t.throws(() => stackLevelData([levels[0]!, extra]), { instanceOf: TaskStackError, message: /differ in their behaviour/ });
    const other = { ...levels[1]!, batch: { ...levels[1]!.batch, behaviour: { ...levels[1]!.batch.behaviour, r: zeros } } };
    t.throws(() => stackLevelData([extra, other]), { instanceOf: TaskStackError, message: /differ in their behaviour/ });
    t.is(tf.memory().numTensors, mark, 'the refusals made nothing');
    zeros.dispose();
    tf.tidy(() => {
      t.deepEqual(Array.from(stackedAgain.batch.mask!.dataSync()), Array.from(tf.concat(levels.map((d) => d.batch.mask!)).dataSync()), 'the masks, in task order');
      t.false('baselines' in stackedAgain.batch, 'no task has baselines: neither has the stack');
      // A stack's parameters take one value per group: one θ for all is refused, naming the shape needed.
      t.throws(() => evaluateGraph(trainer.graph, trainer.parameters.toGraph(start), stackedAgain.batch), {
        instanceOf: EvaluationError,
        message: new RegExp(`has shape \\[${policy.packed!.size}\\] but is declared \\[${policy.packed!.size}\\] \\(one value per group of the batch's 3: \\[3, ${policy.packed!.size}\\]\\)`),
      });
    });
    disposeStacked(stackedAgain);
    const bare = stackLevelData(unmasked.map((d, i) => ({ ...d, weights: undefined, scoreWeight: i })));
    try {
      t.is(bare.batch.mask, undefined);
      t.is(bare.weights, undefined);
      t.deepEqual(bare.scoreWeight, [0, 1, 2]);
      // Without a mask the samples per task come from the values: the log-std still one per sample.
      t.deepEqual((bare.samplingDistributions!.get('a')! as unknown as Record<string, tf.Tensor>).logStd!.shape, [6, 1, 2]);
    } finally {
      disposeStacked(bare);
    }
  } finally {
    dispose();
    disposeLevels(sampled);
  }
  t.is(tf.memory().numTensors, before, 'the stacked data is freed by disposeStacked');
  disposeParams(start);
});

test.serial("stacked inner steps and ProMP's diagnostics: each task's, bit for bit as it alone gives them, in task order", async (t) => {
  const trainer = makeTrainer(
    resolveConfig({ algo: 'promp', env: 'point-corners', engine: 'fused', seed: 8, tasksPerIteration: tasks, trajectoriesPerTask: 3, horizon: 12, adaptationSteps: 2, actionNormalization: 'raw' }),
    pointCorners,
    policy,
  );
  const names = Object.keys(policy.paramShapes);
  await onSampledTasks(t, trainer, 9, ({ start, at, sampled, perTask }) => {
    // Inner steps from different parameters per task (level 1's, as the sampling phase has them).
    const from = sampled.levelParams[1]!;
    const stacked = innerSteps(trainer, from, sampled.levels[1]!);
    for (let i = 0; i < tasks; i++) {
      const alone = tf.tidy(() => keepParams(innerStep(trainer, from[i]!, sampled.levels[1]![i]!)));
      names.forEach((n) => t.deepEqual(Array.from(stacked[i]![n]!.dataSync()), Array.from(alone[n]!.dataSync()), `task ${i} ${n}`));
      disposeParams(alone);
    }
    t.notDeepEqual(Array.from(stacked[0]!.W1!.dataSync()), Array.from(stacked[1]!.W1!.dataSync()));
    stacked.forEach(disposeParams);
    const stack = stackTasks(perTask);
    const { pre, post } = stack;
    try {
      const together = prompDiagnostics(trainer, start, pre, post, at);
      t.is(together.length, tasks);
      together.forEach((d, i) => t.deepEqual(d, prompTaskDiagnostics(trainer, start, perTask[i]!.pre, perTask[i]!.post, at), `task ${i} diagnostics`));
      t.true(together.every(([, kl]) => kl > 0), 'away from θo the KL is positive');
      // Padding (trajectories that ended early) is not counted in the clip fraction: the second half of
      // every post-update trajectory masked out changes it.
      // Its fraction is that of the first six steps alone (a batch cut to them), not of all twelve.
      tf.tidy(() => {
        const half = tf.concat([tf.ones([tasks * 3, 6]), tf.zeros([tasks * 3, 6])], 1);
        const padded = prompDiagnostics(trainer, start, pre, { ...post, batch: { ...post.batch, mask: half } }, at);
        const cut = (x: tf.Tensor) => tf.slice(x, [0, 0, ...x.shape.slice(2).map(() => 0)], [x.shape[0]!, 6, ...x.shape.slice(2)]);
        const cutRecord = (r: Readonly<Record<string, tf.Tensor>> | undefined) => (r === undefined ? undefined : Object.fromEntries(Object.entries(r).map(([k, v]) => [k, cut(v)])));
        const b = post.batch;
        const firstSix = prompDiagnostics(trainer, start, pre, { ...post, batch: { ...b, values: cutRecord(b.values)!, mask: cut(b.mask!), behaviour: cutRecord(b.behaviour)!, advantages: cutRecord(b.advantages)! } }, at);
        padded.forEach(([, , f], i) => t.is(f, firstSix[i]![2], `task ${i}: the clip fraction over its real steps`));
        t.true(
          padded.some(([, , f], i) => Math.abs(f - together[i]![2]) > 1e-6),
          `clip fractions ${padded.map((d) => d[2]).join(', ')} vs ${together.map((d) => d[2]).join(', ')}`,
        );
      });
    } finally {
      disposeStackedTasks(stack);
    }
  });
});

test('the memory shown before a run counts one stack of tapes: a stack of 10 tasks ten tapes, the tfjs engine and TRPO one', (t) => {
  const of = (patch: Record<string, unknown>) =>
    batchSize(resolveConfig({ algo: 'promp', env: 'point-corners', trajectoriesPerTask: 20, horizon: 100, engine: 'fused', ...patch })).memoryBytes;
  // Fused ProMP: ten tasks are one stack (10 × the one task's tape) and ten batches.
  t.is(of({ tasksPerIteration: 10 }), 10 * of({ tasksPerIteration: 1 }));
  // One tape whatever the number of tasks: less than ten times a single task's bound.
  t.true(of({ tasksPerIteration: 10, engine: 'tfjs' }) < 5 * of({ tasksPerIteration: 1, engine: 'tfjs' }));
  t.true(of({ tasksPerIteration: 10, algo: 'maml-trpo' }) < 5 * of({ tasksPerIteration: 1, algo: 'maml-trpo' }));
  // Past the stack's rows, stacks hold fewer tasks: 40 tasks are four stacks of ten, one at a time.
  t.is(of({ tasksPerIteration: 40 }) - of({ tasksPerIteration: 10 }), 3 * (of({ tasksPerIteration: 10, engine: 'tfjs' }) - of({ tasksPerIteration: 1, engine: 'tfjs' })) / 9 * 10);
});

test.serial('a whole ProMP iteration in stacks of two (and a stack of one): the numbers of stacks of one bit for bit, and of the unstacked tasks to float32 rounding', async (t) => {
  const config = resolveConfig({ algo: 'promp', env: 'point-corners', engine: 'fused', seed: 4, tasksPerIteration: 5, trajectoriesPerTask: 3, horizon: 12, adaptationSteps: 2, actionNormalization: 'raw' });
  // The policy's fused log-probability counted: a stack is one call where its tasks alone were one each.
  const calls = { twos: 0, ones: 0 };
  const counted = (key: keyof typeof calls) => ({
    ...policy,
    packed: { ...policy.packed!, logProb: (...args: Parameters<NonNullable<typeof policy.packed>['logProb']>) => (calls[key]++, policy.packed!.logProb(...args)) },
  });
  // A budget of two tasks' rows × width: stacks of 2, 2 and 1 (the last shorter).
  const units = 2 * 3 * 12 * (2 + 16 + 16 + 2);
  const runs = {
    twos: { ...makeTrainer(config, pointCorners, counted('twos')), stackUnits: units },
    ones: { ...makeTrainer(config, pointCorners, counted('ones')), stackUnits: 1 },
    unstacked: makeTrainer(config, pointCorners, { ...policy, packed: { ...policy.packed!, blocks: undefined } }),
  };
  t.is(outerStackSize(runs.twos, 5), 2);
  t.is(outerStackSize(runs.ones, 5), 1);
  const start = policy.init(12);
  const before = tf.memory().numTensors;
  const out: Record<string, { params: number[]; stats: number[] }> = {};
  for (const [name, trainer] of Object.entries(runs)) {
    const r = await runIteration(trainer, start, undefined, 0);
    out[name] = {
      params: Object.keys(policy.paramShapes).flatMap((n) => Array.from(r.params[n]!.dataSync())),
      stats: [r.stats.objective, r.stats.objectiveAfter!, r.stats.kl!, r.stats.clipFraction!, ...r.stats.averageReturn],
    };
    disposeParams(r.params);
    if (r.optimizerState !== undefined) adam().dispose(r.optimizerState as Parameters<ReturnType<typeof adam>['dispose']>[0]);
  }
  t.is(tf.memory().numTensors, before, 'nothing left behind');
  t.deepEqual(out.twos, out.ones, 'stacks of two and of one: the same bits');
  // Three stacks against five, in every phase (inner steps, outer steps, diagnostics).
  t.true(calls.ones > 0);
  t.is(calls.twos * 5, calls.ones * 3, `${calls.twos} calls in stacks of two, ${calls.ones} in stacks of one`);
  const close = (a: number[], b: number[]) => {
    const scale = Math.max(...b.map(Math.abs));
    return a.every((x, e) => Math.abs(x - b[e]!) <= 1e-5 * scale);
  };
  t.true(close(out.twos!.params, out.unstacked!.params), 'parameters after the outer step: the unstacked ones');
  t.true(close(out.twos!.stats, out.unstacked!.stats), `stats ${out.twos!.stats.join(', ')} vs ${out.unstacked!.stats.join(', ')}`);
  t.notDeepEqual(out.twos!.params, Object.keys(policy.paramShapes).flatMap((n) => Array.from(start[n]!.dataSync())), 'the step moved the parameters');
  disposeParams(start);
});
