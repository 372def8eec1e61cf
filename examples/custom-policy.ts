/**
 * A policy of your own, meta-trained through `train` (docs/extending.md, "A custom policy"): implement
 * the Policy interface with ops whose derivatives are right at every order (magicbox's `ops`: the
 * meta-gradient differentiates log π twice) and pass it as `policy`.
 *
 * The example: a Gaussian policy whose mean is squashed into the action bounds, mean = high·tanh(s·W + b),
 * with a learned state-independent log-std, trained with ProMP on nav-2d.
 * Run: npx tsx examples/custom-policy.ts [RUN_DIR]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { environmentDescriptor, ops, resolveConfig, train, type Params, type Policy } from '../src/index.ts';

export const squashedLinearPolicy = (observationDim: number, actionDim: number, high: number): Policy => {
  const paramShapes = { W: [observationDim, actionDim], b: [actionDim], logStd: [actionDim] } as const;
  const mean = (params: Params, observations: tf.Tensor): tf.Tensor => {
    const leading = observations.shape.slice(0, -1);
    const rows = leading.reduce((a, b) => a * b, 1);
    const x = tf.reshape(observations, [rows, observationDim]);
    const z = tf.add(tf.matMul(x, params['W']!), params['b']!);
    return tf.reshape(tf.mul(high, ops.tanh(z)), [...leading, actionDim]);
  };
  const distribution = (params: Params, observations: tf.Tensor) => ({ mean: mean(params, observations), logStd: params['logStd']! });
  // One draw per row from the generators given (so that a seed fixes the trajectories).
  const sample: Policy['sample'] = (params, observations, n, random) =>
    tf.tidy(() => {
      const m = mean(params, tf.tensor2d(observations, [n, observationDim])).dataSync();
      const std = Array.from(params['logStd']!.dataSync(), Math.exp);
      return Float32Array.from(m, (mu, k) => mu + std[k % actionDim]! * random.normal());
    });
  return {
    kind: 'gaussian',
    observationDim,
    action: { kind: 'continuous', dim: actionDim, low: -high, high },
    hidden: [],
    paramShapes,
    init: (seed) => ({
      W: tf.mul(0.01, tf.randomNormal([observationDim, actionDim], 0, 1, 'float32', seed)),
      b: tf.zeros([actionDim]),
      logStd: tf.fill([actionDim], Math.log(high)),
    }),
    distribution,
    sample,
    // Called once per batch of trajectories; a faster policy would read its weights here, once.
    sampler: (params) => (observations, n, random) => sample(params, observations, n, random),
    logProb: (params, observations, actions) => ops.gaussianLogProb(actions, mean(params, observations), params['logStd']!),
    kl: (p, q, observations) => ops.gaussianKl(mean(p, observations), p['logStd']!, mean(q, observations), q['logStd']!),
  };
};

const env = environmentDescriptor('nav-2d');
if (env.action.kind !== 'continuous') throw new Error('nav-2d has continuous actions');
const policy = squashedLinearPolicy(env.observationDim, env.action.dim, env.action.high);
const runDir = process.argv[2] ?? join(mkdtempSync(join(tmpdir(), 'magicbox-policy-')), 'run');
const result = await train({
  config: resolveConfig({ algo: 'promp', env: 'nav-2d', iterations: 2, tasksPerIteration: 4, trajectoriesPerTask: 4, horizon: 30 }),
  policy,
  runDir,
  log: (line) => console.log(line),
  progress: 'lines',
});
console.log(`custom policy: training ${result.outcome}, ${result.iterationsDone} iterations, parameters ${Object.keys(policy.paramShapes).join(', ')}`);
