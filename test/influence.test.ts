/** The influence query (who credits whom, across which time offsets) and the time operators built from it. */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import fc from 'fast-check';
import { selectBackend } from '../src/backend.ts';
import { influenceMask, influenceQuery } from '../src/scg/influence.ts';
import type { GraphSpec } from '../src/scg/spec.ts';
import { timeOperator } from '../src/surrogates/time-operator.ts';
import { rlChain } from './helpers/rl-chain.ts';

test.before(async () => {
  await selectBackend();
});

const lagsOf = (spec: GraphSpec, from: string, to: string, horizon = 5) => {
  const inf = influenceQuery(spec, horizon).influence(from, to);
  return inf.kind === 'lags' ? inf.lags.flatMap((x, d) => (x ? [d] : [])) : inf.kind;
};

test('RL chain: a_t′ credits r_t for t ≥ t′, a_t′ reaches a_t only for t > t′, s_t′ reaches a_t for t ≥ t′', (t) => {
  const { spec } = rlChain();
  t.deepEqual(lagsOf(spec, 'a', 'r'), [0, 1, 2, 3, 4]);
  t.deepEqual(lagsOf(spec, 'a', 'a'), [1, 2, 3, 4]);
  t.deepEqual(lagsOf(spec, 's', 'a'), [0, 1, 2, 3, 4]);
  t.is(lagsOf(spec, 'r', 'a'), 'none');
  t.is(lagsOf(spec, 'theta', 'r'), 'broadcast');
  t.deepEqual(
    influenceQuery(spec, 5).stochasticInfluencers('r').map((x) => x.node),
    ['s', 'a'],
  );
});

const node = (name: string, parents: Array<[string, number]>, kind: 'deterministic' | 'cost' | 'stochastic' = 'deterministic') => ({
  kind,
  name,
  temporal: true,
  parents: parents.map(([n, lag]) => ({ node: n, lag })),
  ...(kind === 'stochastic' ? { family: { type: 'external' as const } } : {}),
});

test('without transitions (states as data) an action credits only its own step; lag-2 edges give even offsets', (t) => {
  const bandit: GraphSpec = { nodes: [node('a', [], 'stochastic'), node('r', [['a', 0]], 'cost')] };
  t.deepEqual(lagsOf(bandit, 'a', 'r'), [0]);
  const everyOther: GraphSpec = { nodes: [node('x', [['x', 2]], 'stochastic'), node('c', [['x', 0]], 'cost')] };
  t.deepEqual(lagsOf(everyOther, 'x', 'c', 7), [0, 2, 4, 6]);
  t.deepEqual(influenceMask(influenceQuery(everyOther, 3), 'x', 'c'), [
    [true, false, true],
    [false, true, false],
    [false, false, true],
  ]);
});

test('time operators equal products with the explicit influence matrix, for any lag set and decay', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.boolean(), { minLength: 1, maxLength: 6 }),
      fc.constantFrom(1, 0.5, 0.9),
      fc.array(fc.float({ min: -2, max: 2, noNaN: true }), { minLength: 12, maxLength: 12 }),
      (lags, decay, data) => {
        const T = lags.length;
        return tf.tidy(() => {
          const x = tf.tensor2d(data.slice(0, 2 * T), [2, T]);
          const m = Array.from({ length: T }, (_, tp) => Array.from({ length: T }, (_, tt) => (tt >= tp && lags[tt - tp] ? decay ** (tt - tp) : 0)));
          const op = timeOperator(lags, decay);
          const forward = op.forward(x).arraySync() as number[][];
          const backward = op.backward(x).arraySync() as number[][];
          const want = tf.matMul(x, tf.tensor2d(m)).arraySync() as number[][];
          const wantBack = tf.matMul(x, tf.tensor2d(m), false, true).arraySync() as number[][];
          const ok = (a: number[][], b: number[][]) => a.every((row, i) => row.every((v, j) => Math.abs(v - b[i]![j]!) < 1e-5));
          return ok(forward, want) && ok(backward, wantBack);
        });
      },
    ),
    { seed: 42, numRuns: 200 },
  );
  t.pass();
});
