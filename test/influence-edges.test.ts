/**
 * The influence query's less travelled cases, which the RL-chain tests do not reach: per-sample
 * (static) sources and targets, a static source reaching a temporal target only from step 1, a lag
 * set that is exactly {1} (not a suffix), the influence masks of each kind, and stochasticInfluencers
 * leaving out a stochastic node that reaches nothing.
 */
import test from 'ava';
import { influenceMask, influenceQuery } from '../src/scg/influence.ts';
import type { GraphSpec } from '../src/scg/spec.ts';

const staticDag: GraphSpec = {
  nodes: [
    { kind: 'stochastic', name: 'x', family: { type: 'external' }, parents: [] },
    { kind: 'stochastic', name: 'y', family: { type: 'external' }, parents: [{ node: 'x', lag: 0 }] },
    { kind: 'stochastic', name: 'z', family: { type: 'external' }, parents: [] },
    { kind: 'cost', name: 'c', parents: [{ node: 'y', lag: 0 }] },
  ],
};

/** z (per sample) → s_t → c_{t+1}: z reaches c only from step 1 on. */
const lateBroadcast: GraphSpec = {
  nodes: [
    { kind: 'stochastic', name: 'z', family: { type: 'external' }, parents: [] },
    { kind: 'stochastic', name: 's', temporal: true, family: { type: 'external' }, parents: [{ node: 'z', lag: 0 }] },
    { kind: 'cost', name: 'c', temporal: true, parents: [{ node: 's', lag: 1 }] },
  ],
};

/** r_t ← a_{t−1} only, and an unrelated stochastic node u. */
const delayed: GraphSpec = {
  nodes: [
    { kind: 'stochastic', name: 'a', temporal: true, family: { type: 'external' }, parents: [] },
    { kind: 'stochastic', name: 'u', temporal: true, family: { type: 'external' }, parents: [] },
    { kind: 'cost', name: 'r', temporal: true, parents: [{ node: 'a', lag: 1 }] },
  ],
};

test('between per-sample nodes influence is "same" or "none", and its mask is one cell', (t) => {
  const q = influenceQuery(staticDag, 3);
  t.deepEqual(q.influence('x', 'y'), { kind: 'same' });
  t.deepEqual(q.influence('x', 'c'), { kind: 'same' });
  t.deepEqual(q.influence('z', 'c'), { kind: 'none' });
  t.deepEqual(q.influence('c', 'x'), { kind: 'none' });
  t.deepEqual(influenceMask(q, 'x', 'c'), [[true]]);
  t.deepEqual(influenceMask(q, 'z', 'c'), [[false]]);
  t.deepEqual(q.stochasticInfluencers('c').map((x) => x.node), ['x', 'y']);
});

test('a per-sample source reached through a lagged edge broadcasts from step 1, and its mask says so', (t) => {
  const q = influenceQuery(lateBroadcast, 3);
  t.deepEqual(q.influence('z', 's'), { kind: 'broadcast', fromStep: 0 });
  t.deepEqual(q.influence('z', 'c'), { kind: 'broadcast', fromStep: 1 });
  t.deepEqual(influenceMask(q, 'z', 'c'), [[false, true, true]]);
  t.deepEqual(influenceMask(q, 'z', 's'), [[true, true, true]]);
});

test('a lag set of exactly {1} is reported over the whole horizon, and only influencing nodes are listed', (t) => {
  const q = influenceQuery(delayed, 4);
  t.deepEqual(q.influence('a', 'r'), { kind: 'lags', lags: [false, true, false, false] });
  t.deepEqual(q.influence('u', 'r'), { kind: 'none' });
  t.deepEqual(q.stochasticInfluencers('r').map((x) => x.node), ['a']);
  t.deepEqual(influenceMask(q, 'a', 'r'), [
    [false, true, false, false],
    [false, false, true, false],
    [false, false, false, true],
    [false, false, false, false],
  ]);
});
