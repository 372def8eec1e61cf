/**
 * The built-in enumerable graphs of the exactness oracle, each declared with the same builder a user
 * uses: a 3-step MDP chain (categorical actions from a tabular policy, random transitions,
 * state-dependent rewards) and a non-chain DAG (one stochastic node depending on another, an
 * independent one, two costs); and, for `verify`, a chain whose reward depends on a parameter
 * directly and a chain whose actions act two steps later. Each comes with an evaluation point and
 * baselines.
 */
import * as tf from '@tensorflow/tfjs';
import { lag, scg, type NodeContext, type ParentValues } from '../scg/builder.ts';
import type { Baselines } from '../surrogates/estimators.ts';
import type { OracleProblem } from './oracle.ts';
import { seededNormal } from '../random.ts';

export interface BuiltinProblem extends OracleProblem {
  readonly name: string;
  readonly description: string;
  /** Baselines for the estimators that use them: functions of each node's parents only. */
  readonly baselines: Baselines;
}

/** rows of a fixed table selected by categorical values: table[index] for each entry of `index`. */
export const lookup = (table: tf.Tensor2D | tf.Tensor, index: tf.Tensor): tf.Tensor => {
  const rows = table.shape[0]!;
  const width = table.shape[1]!;
  const flat = tf.reshape(tf.oneHot(tf.cast(tf.reshape(index, [-1]), 'int32'), rows), [-1, rows]);
  return tf.reshape(tf.matMul(flat, tf.reshape(table, [rows, width])), [...index.shape, width]);
};

/** A table lookup that yields one number per entry (the width-1 case of lookup). */
const lookupScalar = (values: readonly number[], index: tf.Tensor): tf.Tensor =>
  tf.reshape(lookup(tf.tensor2d(values.map((v) => [v])), index), index.shape);

/** Normal values from a seed: fixed tables and evaluation points that are not special. */
const gaussianNumbers = (n: number, seed: number, scale = 1): number[] => {
  const next = seededNormal(seed);
  return Array.from({ length: n }, () => scale * next());
};

const states = 2;
const actions = 3;

/** The MDP's fixed tables, exported so that tests can recompute its objective independently. */
export const mdpTables = () => ({
  states,
  actions,
  horizon: 3,
  initialLogits: [0.3, -0.2],
  /** [s·A + a][s′] */
  transitionLogits: gaussianNumbers(states * actions * states, 11),
  /** [s·A + a] */
  rewards: gaussianNumbers(states * actions, 12),
  /** θ₀, [s][a] row-major */
  theta: gaussianNumbers(states * actions, 13, 0.7),
});

/**
 * s_t ~ P(·|s_{t−1}, a_{t−1}) (initial distribution at t = 0), a_t ~ softmax(θ[s_t]), r_t = R[s_t, a_t].
 * The policy is the only parametrised distribution; the transitions are fixed categorical tables, so
 * every trajectory can be enumerated: (2·3)³ = 216 outcomes.
 */
export const mdpChain = (): BuiltinProblem => {
  const { horizon, initialLogits, transitionLogits, rewards, theta } = mdpTables();
  const stateValues = [0.4, -0.3];
  const graph = scg({ name: 'mdp-chain', horizon })
    .parameter('theta', { shape: [states, actions], label: '\\theta' })
    .stochastic('s', {
      temporal: true,
      label: 's_t',
      family: { type: 'categorical', categories: states },
      parents: [lag('s', 1), lag('a', 1)],
      distribution: (p: ParentValues, { step }: NodeContext) => {
        // At t = 0 the lagged parents read 0; the initial distribution replaces the transition there.
        const previous = tf.add(tf.mul(p['s@1']!, actions), p['a@1']!);
        const transition = lookup(tf.tensor2d(transitionLogits, [states * actions, states]), previous);
        const first = tf.expandDims(tf.cast(tf.equal(step, 0), 'float32'), -1);
        const logits = tf.add(tf.mul(first, tf.tensor1d(initialLogits)), tf.mul(tf.sub(1, first), transition));
        return { logits };
      },
    })
    .stochastic('a', {
      temporal: true,
      label: 'a_t',
      family: { type: 'categorical', categories: actions },
      parents: ['s', 'theta'],
      distribution: ({ s, theta }) => ({ logits: lookup(theta, s) }),
    })
    .cost('r', {
      temporal: true,
      label: 'r_t',
      parents: ['s', 'a'],
      fn: ({ s, a }) => lookupScalar(rewards, tf.add(tf.mul(s, actions), a)),
    })
    .build();
  return {
    name: 'mdp-chain',
    description: `3-step MDP: ${states} states, ${actions} actions, tabular softmax policy, state-dependent rewards`,
    graph,
    horizon,
    params: { theta: { shape: [states, actions], values: theta } },
    baselines: { a: ({ s }) => lookupScalar(stateValues, s!) },
  };
};

/**
 * x ~ Cat(softmax(φ)), y ~ Cat(softmax(ψ[x])), z ~ Cat(softmax(χ)); c₁ = C₁[x, z], c₂ = C₂[y, z].
 * Not a chain: y depends on x, z on nothing, and the costs share z but not x and y.
 */
export const twoCostDag = (): BuiltinProblem => {
  const c1 = gaussianNumbers(3 * 2, 21);
  const c2 = gaussianNumbers(2 * 2, 22);
  const yBaseline = [0.2, -0.5, 0.1];
  const graph = scg({ name: 'two-cost-dag' })
    .parameter('phi', { shape: [3], label: '\\phi' })
    .parameter('psi', { shape: [3, 2], label: '\\psi' })
    .parameter('chi', { shape: [2], label: '\\chi' })
    .stochastic('x', { family: { type: 'categorical', categories: 3 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
    .stochastic('y', {
      family: { type: 'categorical', categories: 2 },
      parents: ['x', 'psi'],
      distribution: ({ x, psi }) => ({ logits: lookup(psi, x) }),
    })
    .stochastic('z', { family: { type: 'categorical', categories: 2 }, parents: ['chi'], distribution: ({ chi }) => ({ logits: chi }) })
    .cost('c1', { parents: ['x', 'z'], label: 'c_1', fn: ({ x, z }) => lookupScalar(c1, tf.add(tf.mul(x, 2), z)) })
    .cost('c2', { parents: ['y', 'z'], label: 'c_2', fn: ({ y, z }) => lookupScalar(c2, tf.add(tf.mul(y, 2), z)) })
    .build();
  return {
    name: 'two-cost-dag',
    description: 'DAG: x → y, independent z, costs c1(x, z) and c2(y, z)',
    graph,
    horizon: 1,
    params: {
      phi: { shape: [3], values: gaussianNumbers(3, 23, 0.7) },
      psi: { shape: [3, 2], values: gaussianNumbers(6, 24, 0.7) },
      chi: { shape: [2], values: gaussianNumbers(2, 25, 0.7) },
    },
    baselines: {
      x: () => tf.scalar(0.3),
      y: ({ x }) => lookupScalar(yBaseline, x!),
      z: () => tf.scalar(-0.2),
    },
  };
};

/**
 * A 2-step MDP whose reward also depends on a parameter directly (a pathwise cost):
 * s_t ~ P(·|s_{t−1}, a_{t−1}), a_t ~ softmax(θ[s_t]), r_t = R[s_t, a_t] + κ[s_t]·(D[a_t] − κ[s_t]).
 * Its objective's gradient has a pathwise part E[Σ_t ∇_κ r_t] besides the score-function part, so an
 * estimator that drops a cost's own derivative, or evaluates a cost at the wrong parameters, is wrong
 * here where it is invisible on graphs whose costs come from the samples alone. (2·2)² = 16 outcomes.
 */
export const pathwiseChain = (): BuiltinProblem => {
  const S = 2;
  const A = 2;
  const horizon = 2;
  const transitionLogits = gaussianNumbers(S * A * S, 31);
  const rewards = gaussianNumbers(S * A, 32);
  const shaping = gaussianNumbers(A, 33);
  const graph = scg({ name: 'pathwise-chain', horizon })
    .parameter('theta', { shape: [S, A], label: '\\theta' })
    .parameter('kappa', { shape: [S], label: '\\kappa' })
    .stochastic('s', {
      temporal: true,
      label: 's_t',
      family: { type: 'categorical', categories: S },
      parents: [lag('s', 1), lag('a', 1)],
      distribution: (p: ParentValues, { step }: NodeContext) => {
        const previous = tf.add(tf.mul(p['s@1']!, A), p['a@1']!);
        const transition = lookup(tf.tensor2d(transitionLogits, [S * A, S]), previous);
        const first = tf.expandDims(tf.cast(tf.equal(step, 0), 'float32'), -1);
        return { logits: tf.add(tf.mul(first, tf.tensor1d([0.2, -0.4])), tf.mul(tf.sub(1, first), transition)) };
      },
    })
    .stochastic('a', {
      temporal: true,
      label: 'a_t',
      family: { type: 'categorical', categories: A },
      parents: ['s', 'theta'],
      distribution: ({ s, theta }) => ({ logits: lookup(theta, s) }),
    })
    .cost('r', {
      temporal: true,
      label: 'r_t',
      parents: ['s', 'a', 'kappa'],
      fn: ({ s, a, kappa }) => {
        const k = tf.reshape(lookup(tf.reshape(kappa!, [S, 1]), s!), s!.shape);
        return tf.add(lookupScalar(rewards, tf.add(tf.mul(s!, A), a!)), tf.mul(k, tf.sub(lookupScalar(shaping, a!), k)));
      },
    })
    .build();
  return {
    name: 'pathwise-chain',
    description: `2-step MDP whose reward depends on a parameter directly: r_t = R[s_t, a_t] + κ[s_t]·(D[a_t] − κ[s_t])`,
    graph,
    horizon,
    params: { theta: { shape: [S, A], values: gaussianNumbers(S * A, 34, 0.7) }, kappa: { shape: [S], values: gaussianNumbers(S, 35, 0.7) } },
    baselines: { a: ({ s }) => lookupScalar([0.3, -0.2], s!) },
  };
};

/**
 * A 5-step chain in which an action reaches the state only two steps later:
 * s_t ~ P(·|s_{t−1}, a_{t−2}), a_t ~ softmax(θ[s_t]), r_t = R[s_t]. So a_t influences the costs and the
 * later actions at offsets {2, 3, 4} only — a lag set that starts at 2, which neither the identity nor
 * the cumulative sums of the RL chain cover (the compiler's general T×T operator). Five steps, so that
 * a_2 both has an action ancestor (a_0) and influences a cost (r_4): with four, every action with
 * ancestors would have no cost downstream and Loaded DiCE's λ would not show. (2·2)⁵ = 1024 outcomes.
 */
export const lagTwoChain = (): BuiltinProblem => {
  const S = 2;
  const A = 2;
  const horizon = 5;
  const transitionLogits = gaussianNumbers(S * A * S, 41);
  const rewards = gaussianNumbers(S, 42);
  const graph = scg({ name: 'lag-two-chain', horizon })
    .parameter('theta', { shape: [S, A], label: '\\theta' })
    .stochastic('s', {
      temporal: true,
      label: 's_t',
      family: { type: 'categorical', categories: S },
      parents: [lag('s', 1), lag('a', 2)],
      distribution: (p: ParentValues, { step }: NodeContext) => {
        // At t = 0 the initial distribution; at t = 1 a_{−1} does not exist (it reads 0, a fixed table row).
        const previous = tf.add(tf.mul(p['s@1']!, A), p['a@2']!);
        const transition = lookup(tf.tensor2d(transitionLogits, [S * A, S]), previous);
        const first = tf.expandDims(tf.cast(tf.equal(step, 0), 'float32'), -1);
        return { logits: tf.add(tf.mul(first, tf.tensor1d([-0.1, 0.3])), tf.mul(tf.sub(1, first), transition)) };
      },
    })
    .stochastic('a', {
      temporal: true,
      label: 'a_t',
      family: { type: 'categorical', categories: A },
      parents: ['s', 'theta'],
      distribution: ({ s, theta }) => ({ logits: lookup(theta, s) }),
    })
    .cost('r', { temporal: true, label: 'r_t', parents: ['s'], fn: ({ s }) => lookupScalar(rewards, s!) })
    .build();
  return {
    name: 'lag-two-chain',
    description: '5-step chain where a_t reaches s_{t+2}: every action\'s influence starts at lag 2',
    graph,
    horizon,
    params: { theta: { shape: [S, A], values: gaussianNumbers(S * A, 43, 0.7) } },
    baselines: { a: ({ s }) => lookupScalar([0.5, -0.1], s!) },
  };
};

export const builtinProblems = (): readonly BuiltinProblem[] => [mdpChain(), twoCostDag()];

/**
 * What `magicbox verify` runs: the two built-in graphs, and two more aimed at what expectations on
 * those cannot see — a cost with its own derivative (pathwiseChain) and influence that starts at lag 2
 * (lagTwoChain).
 */
export const verifyProblems = (): readonly BuiltinProblem[] => [...builtinProblems(), pathwiseChain(), lagTwoChain()];
