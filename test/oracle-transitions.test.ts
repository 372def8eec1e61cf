/**
 * The oracle on an MDP whose environment transition is an external node with known probabilities:
 * the same numbers as the MDP with the transition declared as a (θ-free) scored node, DiCE exact at
 * every order, the Hessian decomposition holding — without the user re-declaring the environment.
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { oracle, type KnownTransition } from '../src/oracle/oracle.ts';
import { lookup, mdpChain, mdpTables } from '../src/oracle/problems.ts';
import { verify } from '../src/oracle/verify.ts';
import { lag, scg, type NodeContext, type ParentValues } from '../src/scg/builder.ts';

test.before(async () => {
  await selectBackend('wasm');
});

const { states, actions, horizon, initialLogits, transitionLogits, rewards, theta } = mdpTables();

/** The built-in MDP's transition: the initial distribution at t = 0, the table afterwards. */
const transition: KnownTransition = {
  categories: states,
  distribution: (p: ParentValues, { step }: NodeContext) => {
    const previous = tf.add(tf.mul(p['s@1']!, actions), p['a@1']!);
    const table = lookup(tf.tensor2d(transitionLogits, [states * actions, states]), previous);
    const first = tf.expandDims(tf.cast(tf.equal(step, 0), 'float32'), -1);
    return { logits: tf.add(tf.mul(first, tf.tensor1d(initialLogits)), tf.mul(tf.sub(1, first), table)) };
  },
};

/** The same MDP with the state sampled by the environment: an external node. */
const externalMdp = () => {
  const graph = scg({ name: 'mdp-external', horizon })
    .parameter('theta', { shape: [states, actions] })
    .stochastic('s', { temporal: true, family: { type: 'external' }, parents: [lag('s', 1), lag('a', 1)] })
    .stochastic('a', { temporal: true, family: { type: 'categorical', categories: actions }, parents: ['s', 'theta'], distribution: ({ s, theta: th }) => ({ logits: lookup(th!, s!) }) })
    .cost('r', {
      temporal: true,
      parents: ['s', 'a'],
      fn: ({ s, a }) => tf.reshape(lookup(tf.tensor2d(rewards.map((v) => [v])), tf.add(tf.mul(s!, actions), a!)), s!.shape),
    })
    .build();
  const builtin = mdpChain();
  return { name: 'mdp-external', description: 'MDP with an external transition of known probabilities', graph, horizon, params: { theta: { shape: [states, actions], values: theta } }, baselines: builtin.baselines, transitions: { s: transition } };
};

test('an external transition with known probabilities verifies like the scored one, exact and decomposed', (t) => {
  const [external, scored] = verify([externalMdp(), mdpChain()]);
  t.truthy(external!.decomposition);
  t.true(external!.decomposition!.holds, `decomposition ${external!.decomposition!.relativeError}`);
  t.is(external!.outcomes, scored!.outcomes);
  const dice = external!.estimators.find((e) => e.kind === 'dice')!;
  t.true(dice.orders.every((o) => o.unbiased), JSON.stringify(dice.orders));
  // Same MDP, same exact derivatives: each estimator's errors agree with the scored declaration's.
  for (const e of external!.estimators) {
    const twin = scored!.estimators.find((x) => x.estimator === e.estimator)!;
    e.orders.forEach((o, i) => t.is(o.unbiased, twin.orders[i]!.unbiased, `${e.estimator} order ${o.order}`));
  }
});

test('the exact objective weighs outcomes by the known transition probabilities', (t) => {
  const o = oracle(externalMdp());
  try {
    const total = o.probabilities.reduce((a, b) => a + b, 0);
    t.true(Math.abs(total - 1) < 1e-5, `Σ p(τ) = ${total}`);
    const s = oracle(mdpChain());
    try {
      const a = tf.tidy(() => o.exact(tf.tensor1d([...o.layout.flat])).dataSync()[0]!);
      const b = tf.tidy(() => s.exact(tf.tensor1d([...s.layout.flat])).dataSync()[0]!);
      t.true(Math.abs(a - b) < 1e-6, `${a} vs ${b}`);
    } finally {
      s.dispose();
    }
  } finally {
    o.dispose();
  }
});

test('without its probabilities an external node is refused with the way to give them', (t) => {
  const { transitions: _unused, ...bare } = externalMdp();
  t.throws(() => oracle(bare), { message: /'s' is external; only categorical nodes can be enumerated \(give its known probabilities as OracleProblem\.transitions\)/ });
});
