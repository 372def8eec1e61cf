/** Credit paths, read off the influence query: the RL chain, and Figure 1's two formulations. */
import test from 'ava';
import { metaGraph } from '../src/meta/meta-objective.ts';
import { creditEdges, CreditError, edgeKey } from '../src/scg/credit.ts';
import type { GraphSpec } from '../src/scg/spec.ts';
import { rlChain } from './helpers/rl-chain.ts';

const sorted = (s: Set<string>) => [...s].sort();

test('in the RL chain every edge carries credit from the reward to the policy', (t) => {
  const { spec } = rlChain();
  const all = spec.nodes.flatMap((n) => ('parents' in n ? n.parents.map((p) => edgeKey(p.node, n.name, p.lag)) : []));
  t.deepEqual(sorted(creditEdges(spec, 'r')), all.sort());
});

test('with states as data, an action credits only its own reward, and a second cost does not share it', (t) => {
  const spec: GraphSpec = {
    horizon: 3,
    nodes: [
      { kind: 'parameter', name: 'theta', shape: [2] },
      { kind: 'parameter', name: 'phi', shape: [2] },
      { kind: 'input', name: 's', temporal: true },
      { kind: 'stochastic', name: 'a', temporal: true, family: { type: 'categorical', categories: 2 }, parents: [{ node: 's', lag: 0 }, { node: 'theta', lag: 0 }] },
      { kind: 'stochastic', name: 'z', family: { type: 'categorical', categories: 2 }, parents: [{ node: 'phi', lag: 0 }] },
      { kind: 'cost', name: 'r', temporal: true, parents: [{ node: 'a', lag: 0 }] },
      { kind: 'cost', name: 'c', parents: [{ node: 'z', lag: 0 }] },
    ],
  };
  t.deepEqual(sorted(creditEdges(spec, 'r')), ['a->r@0', 'theta->a@0']);
  t.deepEqual(sorted(creditEdges(spec, 'c')), ['phi->z@0', 'z->c@0']);
  t.throws(() => creditEdges(spec, 'a'), { instanceOf: CreditError, message: /'a' is not a cost of the graph; its costs: r, c/ });
});

test("Figure 1: formulation I credits the pre-update policy through the update, II through the pre-update samples' score, naive MAML not at all", (t) => {
  const I = creditEdges(metaGraph(1, 'I').spec, 'R');
  const II = creditEdges(metaGraph(1, 'II').spec, 'R');
  const naive = creditEdges(metaGraph(1, 'naive-maml').spec, 'R');
  const post = ['theta->theta1@0', 'theta1->tau1@0', 'tau1->R@0'];
  t.deepEqual(sorted(I), [...post, 'theta->Jin0@0', 'Jin0->theta1@0'].sort());
  t.deepEqual(sorted(II), [...post, 'theta->tau0@0', 'tau0->theta1@0'].sort());
  t.deepEqual(sorted(naive), [...post].sort());
  t.false(I.has('theta->tau0@0'), 'in I the pre-update samples are data for the update, not scored');
  t.true(II.has('theta->tau0@0'), 'in II the pre-update sampling distribution is scored directly');
});
