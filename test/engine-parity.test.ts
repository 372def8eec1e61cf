/**
 * The two policy engines compute the same outer step. The fused engine's graph holds the policy's
 * parameters packed in one node θ and runs log π through the fused op; the tfjs engine's graph has one
 * node per named parameter and runs the network through the safe ops (the oracle's path). For every
 * algorithm the fused engine serves, one task's outer-loss term and its gradient, at parameters away
 * from the ones that sampled the data (so that ProMP's KL and the clipped ratio are not at their
 * trivial points), agree to float32 rounding; and so do the adapted parameters of the sampling phase.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend.ts';
import { pointCorners } from '../src/envs/index.ts';
import { disposeParams } from '../src/meta/algorithms.ts';
import { resolveConfig } from '../src/meta/config.ts';
import { disposeLevels, makeTrainer, outerTaskTerms, prompKl, sampleLevels, withSamplingDistributions } from '../src/meta/iteration.ts';
import type { LevelData } from '../src/meta/meta-objective.ts';
import { gaussianMlpPolicy, mlpPolicyFor } from '../src/meta/policy.ts';
import type { MlpKernels } from '../src/ops/mlp/kernels.ts';
import { wasmMlpKernels } from '../src/ops/mlp/wasm-kernels.ts';
import { evaluateGraph } from '../src/surrogates/evaluate.ts';
import type { Params } from '../src/surrogates/batch.ts';

test.before(async () => {
  await selectBackend('wasm');
});

const policy = mlpPolicyFor(pointCorners.observationDim, pointCorners.action, { hidden: [16, 16] });

/** θ + 0.05·noise, seeded: away from the sampling parameters. */
const moved = (params: Params): Params =>
  tf.tidy(() => Object.fromEntries(Object.entries(params).map(([n, v], k) => [n, tf.keep(tf.add(v, tf.mul(0.05, tf.randomNormal(v.shape, 0, 1, 'float32', 11 + k))))])));

const relativeError = (a: readonly Float32Array[], b: readonly Float32Array[]): number => {
  let diff = 0;
  let scale = 0;
  a.forEach((x, k) => x.forEach((v, j) => ((diff = Math.max(diff, Math.abs(v - b[k]![j]!))), (scale = Math.max(scale, Math.abs(b[k]![j]!))))));
  return diff / scale;
};

for (const algo of ['promp', 'maml-vpg', 'emaml-vpg', 'lvc-vpg', 'dice-vpg', 'tmaml'] as const) {
  test.serial(`${algo}: the fused engine's outer-loss term, gradient and adapted parameters equal the tfjs engine's`, async (t) => {
    const trainerOf = (engine: 'fused' | 'tfjs') =>
      makeTrainer(
        resolveConfig({ algo, env: 'point-corners', engine, seed: 3, tasksPerIteration: 2, trajectoriesPerTask: 3, horizon: 12, adaptationSteps: 2, actionNormalization: 'raw' }),
        pointCorners,
        policy,
      );
    const fused = trainerOf('fused');
    const general = trainerOf('tfjs');
    t.is(fused.graph.spec.nodes.filter((n) => n.kind === 'parameter').length, 1, 'the fused graph packs the parameters');
    const start = policy.init(4);
    const at = moved(start);
    const before = tf.memory().numTensors;
    // The same seeds sample the same trajectories; the adapted parameters must agree too.
    const a = await sampleLevels(fused, start, 0);
    const b = await sampleLevels(general, start, 0);
    try {
      const names = Object.keys(policy.paramShapes);
      const values = (p: Params) => names.map((n) => p[n]!.dataSync() as Float32Array);
      for (let j = 1; j < a.levelParams.length; j++) {
        a.tasks.forEach((_, i) => t.true(relativeError(values(a.levelParams[j]![i]!), values(b.levelParams[j]![i]!)) < 1e-5, `level ${j} task ${i}: θ_${j}`));
      }
      for (let i = 0; i < a.tasks.length; i++) {
        const term = (tr: typeof fused, s: typeof a) => outerTaskTerms(tr, start, s.levels.slice(0, 2).map((l) => l[i]!), s.levels[2]![i]!, at);
        const x = term(fused, a);
        const y = term(general, b);
        t.true(Math.abs(x[0]![0]! - y[0]![0]!) <= 2e-5 * Math.max(1e-3, Math.abs(y[0]![0]!)), `task ${i}: loss ${x[0]![0]} vs ${y[0]![0]}`);
        const err = relativeError(x.slice(1), y.slice(1));
        t.true(err < 5e-5, `task ${i}: gradient relative error ${err}`);
        t.true(y.slice(1).some((g) => g.some((v) => v !== 0)), 'the gradient is not trivially zero');
      }
    } finally {
      disposeLevels(a);
      disposeLevels(b);
    }
    t.is(tf.memory().numTensors, before, 'nothing left behind');
    disposeParams(start);
    disposeParams(at);
  });
}

test.serial("a divergence reads distributions only: ProMP's KL runs no log-probability of the policy (each would be a forward pass)", async (t) => {
  let calls = 0;
  const packed = policy.packed!;
  const counting = { ...policy, packed: { ...packed, logProb: (...args: Parameters<typeof packed.logProb>) => (calls++, packed.logProb(...args)) } };
  const trainer = makeTrainer(
    resolveConfig({ algo: 'promp', env: 'point-corners', seed: 3, tasksPerIteration: 1, trajectoriesPerTask: 2, horizon: 5, adaptationSteps: 1, actionNormalization: 'raw' }),
    pointCorners,
    counting,
  );
  const start = policy.init(4);
  const at = moved(start);
  const sampled = await sampleLevels(trainer, start, 0);
  try {
    calls = 0;
    const kl = tf.tidy(() => prompKl(trainer, start, [sampled.levels[0]![0]!], at).dataSync()[0]!);
    t.is(calls, 0, 'no log-probability evaluated for the KL');
    t.true(kl > 0, `the KL between two different policies is positive: ${kl}`);
    // The surrogate does need them: one per level (pre-update and post-update).
    tf.tidy(() => trainer.meta.surrogate(trainer.parameters.toGraph(at), [sampled.levels[0]![0]!], sampled.levels[1]![0]!));
    t.true(calls >= 2, `the surrogate evaluates log-probabilities (${calls})`);
  } finally {
    disposeLevels(sampled);
    disposeParams(start);
    disposeParams(at);
  }
});

/** The ProMP setting of the KL tests: one task, two inner steps, short trajectories. */
const klConfig = (patch: Record<string, unknown> = {}) =>
  resolveConfig({ algo: 'promp', env: 'point-corners', seed: 3, tasksPerIteration: 1, trajectoriesPerTask: 3, horizon: 8, adaptationSteps: 2, actionNormalization: 'raw', ...patch });

/**
 * `body` on one sampled ProMP task: θo (`start`), parameters moved off it (`at`), its pre-update levels
 * (the later ones carrying the parameters that sampled them) and its post-update data; all freed after.
 */
const withKlTask = async (
  trainer: ReturnType<typeof makeTrainer>,
  taskPolicy: typeof policy,
  body: (task: { start: Params; at: Params; pre: LevelData[]; post: LevelData }) => void,
): Promise<void> => {
  const start = taskPolicy.init(4);
  const at = moved(start);
  const sampled = await sampleLevels(trainer, start, 0);
  try {
    const pre = sampled.levels.slice(0, 2).map((l, j) => (j === 0 ? l[0]! : { ...l[0]!, sampledBy: sampled.levelParams[j]![0]! }));
    body({ start, at, pre, post: sampled.levels[2]![0]! });
  } finally {
    disposeLevels(sampled);
    disposeParams(start);
    disposeParams(at);
  }
};

// With its reference precomputed, each level's KL reads the evaluation its inner step differentiates
// (adaptBeside): one policy op for both, whose backward pass adds the two cotangents before it runs
// rather than after, so the two paths agree to float32 rounding, not bit for bit.
for (const engine of ['fused', 'tfjs'] as const) {
  test.serial(`${engine} engine: ProMP's KL with its reference distributions computed once equals the KL computed afresh, at every level; disposing them frees them and nothing of the caller's`, async (t) => {
    const trainer = makeTrainer(klConfig({ engine }), pointCorners, policy);
    await withKlTask(trainer, policy, ({ start, at, pre, post }) => {
      const before = tf.memory().numTensors;
      const fixed = withSamplingDistributions(trainer, start, pre);
      t.true(fixed.pre.every((d) => d.samplingDistributions !== undefined), 'every level the KL reads has its distributions');
      const kl = (levels: readonly LevelData[]) => tf.tidy(() => outerTaskTerms(trainer, start, levels, post, at));
      const fresh = kl(pre);
      const once = kl(fixed.pre);
      const error = relativeError(once, fresh);
      t.true(error < 1e-5, `the same loss and gradient to float32 rounding (relative difference ${error})`);
      t.true(once[0]![0] !== 0 && fresh.slice(1).some((g) => g.some((v) => v !== 0)), 'a loss and a gradient to compare');
      fixed.dispose();
      t.is(tf.memory().numTensors, before, 'the precomputed distributions are freed');
      t.true(Object.values(start).every((p) => !p.isDisposed), "the caller's parameters survive (a learned log-std is handed back as the parameter itself)");
    });
  });
}

test.serial("fused engine: ProMP's KL on every level shares its inner steps' policy ops — with the reference precomputed, no forward or backward pass of the output op runs; computed afresh, one of each per level", async (t) => {
  const calls = { forward: 0, outputVjp: 0, vjpWithOutput: 0, mergedWithOutput: 0 };
  const kernels = wasmMlpKernels();
  const counting: MlpKernels = {
    ...kernels,
    forward: (...args) => (calls.forward++, kernels.forward(...args)),
    outputVjp: (...args) => (calls.outputVjp++, kernels.outputVjp(...args)),
    vjp: (...args) => (args[6] !== undefined && calls.vjpWithOutput++, kernels.vjp(...args)),
    secondOrderBackward: (...args) => (args[7]?.dO !== undefined && calls.mergedWithOutput++, kernels.secondOrderBackward(...args)),
  };
  const action = pointCorners.action;
  if (action.kind !== 'continuous') throw new Error('point-corners has continuous actions');
  const counted = gaussianMlpPolicy({ observationDim: pointCorners.observationDim, actionDim: action.dim, low: action.low, high: action.high, hidden: [16, 16], kernels: counting });
  const trainer = makeTrainer(klConfig({ prompKlLevels: 'every-level' }), pointCorners, counted);
  await withKlTask(trainer, counted, ({ start, at, pre, post }) => {
    const term = (levels: readonly LevelData[]) => {
      Object.assign(calls, { forward: 0, outputVjp: 0, vjpWithOutput: 0, mergedWithOutput: 0 });
      tf.tidy(() => outerTaskTerms(trainer, start, levels, post, at));
      return { ...calls };
    };
    const fixed = withSamplingDistributions(trainer, start, pre);
    try {
      // Per level, the one op's vjp once, for the inner step's gradient (no output cotangent yet: zeros);
      // in the outer gradient, the backward pass that takes log π's and the KL's cotangents together is
      // the one that the level's second order runs anyway (log-prob-op.ts).
      t.deepEqual(term(fixed.pre), { forward: 0, outputVjp: 0, vjpWithOutput: 2, mergedWithOutput: 2 }, 'each level: one op for log π and the KL, one backward pass for both');
    } finally {
      fixed.dispose();
    }
    // Afresh: the reference (θo, θo's adapted) and the current side of each level through the output op.
    const fresh = term(pre);
    t.is(fresh.outputVjp, 2, 'afresh: a backward pass of the output op per level');
    t.true(fresh.forward >= 2, `afresh: forward passes of the output op (${fresh.forward})`);
    t.is(fresh.vjpWithOutput + fresh.mergedWithOutput, 0);
  });
});

test.serial("on the fused engine the behaviour log-probabilities are the graph's log π at the sampling parameters, bit for bit (a likelihood ratio of exactly 1)", async (t) => {
  const trainer = makeTrainer(
    resolveConfig({ algo: 'promp', env: 'point-corners', seed: 5, tasksPerIteration: 2, trajectoriesPerTask: 3, horizon: 12, adaptationSteps: 1, actionNormalization: 'raw' }),
    pointCorners,
    policy,
  );
  const start = policy.init(6);
  const sampled = await sampleLevels(trainer, start, 0);
  try {
    for (let j = 0; j < sampled.levels.length; j++) {
      sampled.levels[j]!.forEach((level, i) => {
        const behaviour = level.batch.behaviour!.a!.dataSync();
        const logProb = tf.tidy(() =>
          Array.from([...evaluateGraph(trainer.graph, trainer.parameters.toGraph(sampled.levelParams[j]![i]!), level.batch).logProbs.values()].find((lp) => lp.rank === 2)!.dataSync()),
        );
        t.deepEqual(Array.from(behaviour), logProb, `level ${j} task ${i}`);
      });
    }
  } finally {
    disposeLevels(sampled);
    disposeParams(start);
  }
});
