/**
 * Formulations I (dice-vpg) and II (emaml-vpg) on the ProMP paper's 1D environment with the
 * two-parameter linear policy (examples/formulations-1d.ts): one `runIteration` step of each moves θ,
 * is reproducible for a seed, and the two formulations make different updates from the same data.
 *
 * Adam's first step from zero moments is lr·g/(|g| + ε) ≈ lr·sign(g) per parameter, which would hide
 * any difference in the meta-gradients except their signs; so the step here starts from a state with
 * unit second moments (and zero first moments, many steps in), where the update is proportional to the
 * meta-gradient: Δθ ≈ lr·(1 − β1)·g/√(1/(1 − β2^t)).
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { point1d, POINT_1D, type AnyTaskDistribution } from '../src/envs/index.ts';
import { disposeParams } from '../src/meta/algorithms.ts';
import { resolveConfig } from '../src/meta/config.ts';
import { makeTrainer, runIteration, type IterationResult } from '../src/meta/iteration.ts';
import type { AdamState } from '../src/meta/optimizers.ts';
import { adam } from '../src/meta/optimizers.ts';
import { linearGaussianPolicy } from '../src/meta/policy.ts';
import type { Params } from '../src/surrogates/batch.ts';

test.before(async () => {
  await selectBackend();
});

/** makeTrainer takes a TaskDistribution<unknown>, which a TaskDistribution<Point1dTask> is not assignable to. */
const env: AnyTaskDistribution = point1d;
const policy = linearGaussianPolicy({ observationDim: 1, actionDim: 1, logStd: -1, low: -POINT_1D.maxAction, high: POINT_1D.maxAction });
const THETA: readonly [number, number] = [0.1, 0.3];

const theta = (): Params => ({ W0: tf.tensor2d([[THETA[0]]], [1, 1]), b0: tf.tensor1d([THETA[1]]) });

/** Zero first moments, unit second moments, 1000 steps in: Adam's update ∝ the meta-gradient. */
const warmState = (): AdamState => ({
  step: 1000,
  m: { W0: tf.zeros([1, 1]), b0: tf.zeros([1]) },
  v: { W0: tf.ones([1, 1]), b0: tf.ones([1]) },
});

/** One iteration of `algo` from THETA; returns θ after it, [θ0, θ1], and frees every tensor. */
const oneStep = async (algo: 'dice-vpg' | 'emaml-vpg', seed: number): Promise<{ after: number[]; stats: IterationResult['stats'] }> => {
  const config = resolveConfig({ algo, env: 'point-1d', seed, tasksPerIteration: 4, trajectoriesPerTask: 5, innerStepSize: 0.3, outerLearningRate: 0.05 });
  const trainer = makeTrainer(config, env, policy);
  const params = theta();
  const state = warmState();
  let result: IterationResult | undefined;
  try {
    result = await runIteration(trainer, params, state, 0);
    return { after: [result.params.W0!.dataSync()[0]!, result.params.b0!.dataSync()[0]!], stats: result.stats };
  } finally {
    disposeParams(params);
    adam().dispose(state);
    if (result !== undefined) {
      disposeParams(result.params);
      if (result.optimizerState !== undefined) adam().dispose(result.optimizerState);
    }
  }
};

test('the linear policy on point-1d has exactly the two parameters θ0 = W0 and θ1 = b0, and the RL graph uses them', (t) => {
  t.deepEqual(JSON.parse(JSON.stringify(policy.paramShapes)), { W0: [1, 1], b0: [1] });
  const parameterNodes = (engine: 'tfjs' | 'fused') =>
    makeTrainer(resolveConfig({ algo: 'dice-vpg', env: 'point-1d', engine }), env, policy).graph.spec.nodes.filter((n) => n.kind === 'parameter');
  t.deepEqual(parameterNodes('tfjs').map((n) => [n.name, n.shape]), [['W0', [1, 1]], ['b0', [1]]]);
  // The fused engine's graph holds them packed in one node, θ = [W0, b0] in that order.
  t.deepEqual(parameterNodes('fused').map((n) => [n.name, n.shape]), [['theta', [2]]]);
  const trainer = makeTrainer(resolveConfig({ algo: 'dice-vpg', env: 'point-1d' }), env, policy);
  t.is(trainer.policy, policy);
  const named = { W0: tf.tensor2d([[0.3]]), b0: tf.tensor1d([-0.7]) };
  const graphSide = trainer.parameters.toGraph(named);
  t.deepEqual([...graphSide.theta!.dataSync()].map((v) => +v.toFixed(6)), [0.3, -0.7]);
  const back = trainer.parameters.fromGraph(graphSide);
  t.deepEqual([back.W0!.shape, back.b0!.shape], [[1, 1], [1]]);
  t.deepEqual([back.W0!.dataSync()[0], back.b0!.dataSync()[0]].map((v) => +v!.toFixed(6)), [0.3, -0.7]);
  tf.dispose([...Object.values(named), ...Object.values(graphSide), ...Object.values(back)]);
});

for (const algo of ['dice-vpg', 'emaml-vpg'] as const) {
  test(`${algo}: one iteration moves θ, and the same seed gives the same θ to the last bit`, async (t) => {
    const before = tf.memory().numTensors;
    const a = await oneStep(algo, 7);
    const b = await oneStep(algo, 7);
    t.is(tf.memory().numTensors, before, 'no tensor leaks from an iteration');
    t.true(a.after.every(Number.isFinite));
    const moved = Math.hypot(a.after[0]! - THETA[0], a.after[1]! - THETA[1]);
    t.true(moved > 1e-4, `θ moved by ${moved}: ${JSON.stringify(a.after)}`);
    t.deepEqual(a.after, b.after);
    t.deepEqual(a.stats.averageReturn, b.stats.averageReturn);
    // Another seed samples other data, hence another update.
    const c = await oneStep(algo, 8);
    t.notDeepEqual(a.after, c.after);
  });
}

test('formulations I (dice-vpg) and II (emaml-vpg) make different updates from the same data seed', async (t) => {
  const one = await oneStep('dice-vpg', 7);
  const two = await oneStep('emaml-vpg', 7);
  // The same seed draws the same tasks and the same pre-update trajectories (both sample with θ).
  t.is(one.stats.averageReturn[0], two.stats.averageReturn[0]);
  const d1 = [one.after[0]! - THETA[0], one.after[1]! - THETA[1]];
  const d2 = [two.after[0]! - THETA[0], two.after[1]! - THETA[1]];
  const gap = Math.hypot(d1[0]! - d2[0]!, d1[1]! - d2[1]!);
  const scale = Math.max(Math.hypot(d1[0]!, d1[1]!), Math.hypot(d2[0]!, d2[1]!));
  t.true(gap > 1e-2 * scale && gap > 1e-6, `updates I ${JSON.stringify(d1)} and II ${JSON.stringify(d2)} differ by only ${gap}`);
});
