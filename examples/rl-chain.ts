/**
 * Declares an RL trajectory once as a graph, compiles it with several estimators, and prints each
 * estimator's gradient on the same random batch. Run: npx tsx examples/rl-chain.ts
 */
import * as tf from '@tensorflow/tfjs';
import { compile, describeBackend, estimatorName, estimators, lag, scg, selectBackend } from '../src/index.ts';

const states = 4;
const actions = 2;

/** logits[b, t] = θ[s[b, t]]: a tabular softmax policy, written with a one-hot product. */
const tabular = (theta: tf.Tensor, s: tf.Tensor): tf.Tensor => {
  const [n, horizon] = s.shape as [number, number];
  const oneHot = tf.cast(tf.oneHot(tf.cast(tf.reshape(s, [-1]), 'int32'), states), 'float32');
  return tf.reshape(tf.matMul(oneHot, theta), [n, horizon, actions]);
};

const graph = scg({ name: 'rl-chain' })
  .parameter('theta', { shape: [states, actions], label: '\\theta' })
  // The environment's transition: sampled outside, no log-probability, but it carries influence.
  .stochastic('s', { temporal: true, family: { type: 'external' }, parents: [lag('s', 1), lag('a', 1)] })
  .stochastic('a', {
    temporal: true,
    family: { type: 'categorical', categories: actions },
    parents: ['s', 'theta'],
    distribution: ({ s, theta }) => ({ logits: tabular(theta, s) }),
  })
  .cost('r', { temporal: true, parents: ['s', 'a'] }) // no function: rewards come from the batch
  .build();

const backend = await selectBackend();
console.log(describeBackend(backend));

const trajectories = 64;
const horizon = 10;
const batch = {
  values: {
    s: tf.randomUniformInt([trajectories, horizon], 0, states, 1).toFloat(),
    a: tf.randomUniformInt([trajectories, horizon], 0, actions, 2).toFloat(),
    r: tf.randomNormal([trajectories, horizon], 0, 1, 'float32', 3),
  },
};
const theta = tf.zeros([states, actions]);
const stateBaseline = { a: ({ s }: Record<string, tf.Tensor>) => tf.mul(s!, 0.1) };

for (const estimator of [
  estimators.pgt(),
  estimators.dice(),
  estimators.diceBaseline(stateBaseline),
  estimators.lvc(),
  estimators.loadedDice(0.5),
  estimators.tmaml(stateBaseline),
]) {
  const surrogate = compile(graph, estimator);
  const gradient = tf.tidy(() => tf.grad((th: tf.Tensor) => surrogate.objective({ theta: th }, batch))(theta).arraySync() as number[][]);
  console.log(`${estimatorName(estimator).padEnd(28)} ∇θ row 1: ${gradient[1]!.map((x) => x.toFixed(4)).join(', ')}`);
}
