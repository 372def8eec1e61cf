/**
 * Credit paths: the edges through which a cost assigns credit to the sampling distributions of the
 * stochastic nodes, derived from the same influence query the compiler builds its estimators from.
 * Two mechanisms, as in an SCG's gradient:
 *
 *   score function  a scored stochastic node w that influences the cost c receives credit through the
 *                   score ∇log p(w): every edge on a path from w to c, and the edges that carry the
 *                   parameters into w's distribution;
 *   pathwise        a differentiable value (a parameter, or a deterministic node computed from one)
 *                   passes credit along edges into deterministic nodes, into the distributions of the
 *                   scored nodes that influence c, and into c itself.
 *
 * Diagrams colour these edges; they are the graph-level reading of which terms the compiler emits.
 */
import { influenceQuery } from './influence.ts';
import { parentsOf, type GraphSpec, type NodeSpec } from './spec.ts';

/** The key of an edge: parent → child at a lag. */
export const edgeKey = (parent: string, child: string, lag: number): string => `${parent}->${child}@${lag}`;

/** Whether a stochastic node contributes a score term (it has a log-probability). */
export const isScored = (n: NodeSpec): boolean => n.kind === 'stochastic' && n.family !== undefined && n.family.type !== 'external';

export class CreditError extends Error {
  override readonly name = 'CreditError';
}

/** The keys of the edges on credit paths from `cost` (see the module comment). */
export const creditEdges = (spec: GraphSpec, cost: string, horizon = spec.horizon ?? 3): Set<string> => {
  const byName = new Map(spec.nodes.map((n) => [n.name, n]));
  const target = byName.get(cost);
  if (target === undefined || target.kind !== 'cost') {
    const costs = spec.nodes.filter((n) => n.kind === 'cost').map((n) => n.name);
    throw new CreditError(`'${cost}' is not a cost of the graph; its costs: ${costs.join(', ') || '(none)'}`);
  }
  const query = influenceQuery(spec, horizon);
  const reaches = (from: string, to: string) => from === to || query.influence(from, to).kind !== 'none';
  const credited = spec.nodes.filter((n) => isScored(n) && reaches(n.name, cost)).map((n) => n.name);

  // Differentiable values: parameters, and deterministic nodes with a differentiable parent.
  const differentiable = new Set<string>(spec.nodes.filter((n) => n.kind === 'parameter').map((n) => n.name));
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of spec.nodes) {
      if (n.kind === 'deterministic' && !differentiable.has(n.name) && parentsOf(n).some((p) => differentiable.has(p.node))) {
        differentiable.add(n.name);
        changed = true;
      }
    }
  }
  // Where pathwise credit is received: the cost, the credited nodes' distributions, and deterministic
  // nodes from which one of those is reached through deterministic nodes only.
  const receives = new Set<string>([cost, ...credited]);
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of spec.nodes) {
      if (n.kind !== 'deterministic' || receives.has(n.name)) continue;
      const feeds = spec.nodes.some((child) => receives.has(child.name) && parentsOf(child).some((p) => p.node === n.name));
      if (feeds) {
        receives.add(n.name);
        changed = true;
      }
    }
  }

  const edges = new Set<string>();
  for (const child of spec.nodes) {
    for (const p of parentsOf(child)) {
      const scorePath = credited.some((w) => reaches(w, p.node)) && reaches(child.name, cost);
      const pathwise = differentiable.has(p.node) && receives.has(child.name);
      if (scorePath || pathwise) edges.add(edgeKey(p.node, child.name, p.lag));
    }
  }
  return edges;
};
