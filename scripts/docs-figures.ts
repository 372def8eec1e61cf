/**
 * Regenerates docs/figures/ (run: npm run docs:figures): the formulation I and II meta-SCGs with the
 * credit paths of the post-update return (the content of the ProMP paper's Figure 1), the RL chain as
 * a user declares it, and the chain unrolled over three steps with the log-probabilities each
 * estimator attaches to the last reward.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { metaGraph } from '../src/meta/meta-objective.ts';
import { writeFileAtomic } from '../src/meta/train.ts';
import { creditEdges } from '../src/scg/credit.ts';
import { renderDiagram } from '../src/scg/diagram.ts';
import type { GraphSpec, NodeSpec } from '../src/scg/spec.ts';
import { rlGraph } from '../src/meta/rl-graph.ts';
import { gaussianMlpPolicy } from '../src/meta/policy.ts';

const out = join(import.meta.dirname, '..', 'docs', 'figures');
mkdirSync(out, { recursive: true });

const write = (name: string, spec: GraphSpec, title: string, credit?: string) => {
  const svg = renderDiagram(spec, { ...(credit ? { highlight: creditEdges(spec, credit) } : {}), title });
  writeFileAtomic(join(out, name), svg);
  console.log(`docs/figures/${name}`);
};

write('formulation-1.svg', metaGraph(1, 'I').spec, 'Formulation I: credit from R(τ′) reaches the pre-update policy through the update θ′ = θ + α∇Jᵢₙ', 'R');
write('formulation-2.svg', metaGraph(1, 'II').spec, 'Formulation II (E-MAML): credit from R(τ′) reaches the pre-update policy through the score of τ₀', 'R');
write('naive-maml.svg', metaGraph(1, 'naive-maml').spec, 'MAML as originally implemented: no credit reaches the pre-update sampling distribution', 'R');

// The RL chain as declared (one step, lagged edges), with the policy's parameters folded into θ.
const policyGraph = rlGraph(gaussianMlpPolicy({ observationDim: 2, actionDim: 2, hidden: [] }), 'rl-chain').spec;
const chain: GraphSpec = {
  name: 'rl-chain',
  nodes: [
    { kind: 'parameter', name: 'theta', shape: [1], label: '\\theta' },
    ...policyGraph.nodes
      .filter((n) => n.kind !== 'parameter')
      .map((n): NodeSpec => (n.kind === 'stochastic' && n.name === 'a' ? { ...n, parents: [{ node: 's', lag: 0 }, { node: 'theta', lag: 0 }] } : n)),
  ],
};
write('rl-chain.svg', chain, 'An RL trajectory declared once: the credit paths of the reward rₜ', 'r');

// The chain unrolled over three steps: which log-probabilities each estimator attaches to r_2.
const unrolled: GraphSpec = {
  name: 'rl-chain-unrolled',
  nodes: [
    { kind: 'parameter', name: 'theta', shape: [1], label: '\\theta' },
    ...[0, 1, 2].flatMap((t): NodeSpec[] => [
      {
        kind: 'stochastic',
        name: `s${t}`,
        label: `s_${t}`,
        family: { type: 'external' },
        parents: t === 0 ? [] : [{ node: `s${t - 1}`, lag: 0 }, { node: `a${t - 1}`, lag: 0 }],
      },
      { kind: 'stochastic', name: `a${t}`, label: `a_${t}`, family: { type: 'gaussian', dim: 2 }, parents: [{ node: `s${t}`, lag: 0 }, { node: 'theta', lag: 0 }] },
      { kind: 'cost', name: `r${t}`, label: `r_${t}`, parents: [{ node: `s${t}`, lag: 0 }, { node: `a${t}`, lag: 0 }] },
    ]),
  ],
};
const estimatorsAttach = [
  ['pgt', 'PGT attaches ℓ(a₀) + ℓ(a₁) + ℓ(a₂) to r₂, linearly: right gradient, Hessian H2 only'],
  ['dice', 'DiCE attaches □(ℓ(a₀) + ℓ(a₁) + ℓ(a₂)) to r₂, jointly: every order exact'],
  ['lvc', 'LVC attaches □(ℓ(a₀)) + □(ℓ(a₁)) + □(ℓ(a₂)) to r₂, separately: no cross terms (H12)'],
] as const;
for (const [name, title] of estimatorsAttach) write(`rl-chain-${name}.svg`, unrolled, title, 'r2');
