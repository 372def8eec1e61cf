/**
 * Structural checks of a decoded graph spec: everything the codecs cannot see because it involves more
 * than one node. All problems are reported at once, so a user fixes a file in one pass.
 */
import { findSameStepCycles, reachableFrom, toGraphology, type ScgGraph } from './graph.ts';
import { isTemporal, parentsOf, type GraphSpec, type NodeKind, type NodeSpec, type ParentRef } from './spec.ts';

export type ProblemCode =
  | 'duplicate-name'
  | 'missing-parent'
  | 'parent-kind'
  | 'missing-family'
  | 'lag-on-static'
  | 'temporal-into-static'
  | 'cycle'
  | 'no-parameters'
  | 'unreachable-cost';

export interface Problem {
  readonly code: ProblemCode;
  /** The nodes involved, for tools that highlight them (the child first where there is an edge). */
  readonly nodes: readonly string[];
  /** A sentence naming the nodes and saying what to change. */
  readonly message: string;
}

/** Every problem of the graph, grouped by kind of check; an empty array means the graph is valid. */
export function validateGraph(spec: GraphSpec): readonly Problem[] {
  const graph = toGraphology(spec);
  // Later declarations of a duplicated name are reported once and otherwise ignored.
  const byName = new Map<string, NodeSpec>();
  for (const node of spec.nodes) if (!byName.has(node.name)) byName.set(node.name, node);

  return [
    ...duplicateNames(spec),
    ...edgeProblems(spec, byName),
    ...missingFamilies(spec),
    ...sameStepCycles(graph),
    ...costsOutOfReach(spec, graph),
  ];
}

const quote = (name: string) => JSON.stringify(name);
/** "a", "a and b", "a, b and c". */
const listed = (items: readonly string[]) =>
  items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
const lagText = (lag: number) => (lag === 0 ? '' : ` at lag ${lag}`);

const problem = (code: ProblemCode, nodes: readonly string[], ...sentence: string[]): Problem => ({
  code,
  nodes,
  message: sentence.join(''),
});

function duplicateNames(spec: GraphSpec): Problem[] {
  const indicesByName = new Map<string, number[]>();
  spec.nodes.forEach((node, i) => indicesByName.set(node.name, [...(indicesByName.get(node.name) ?? []), i]));
  return [...indicesByName]
    .filter(([, indices]) => indices.length > 1)
    .map(([name, indices]) => {
      const two = indices.length === 2;
      return problem(
        'duplicate-name',
        [name],
        `${listed(indices.map((i) => `nodes[${i}]`))} are ${two ? 'both' : 'all'} named ${quote(name)}; `,
        `node names must be unique, so rename ${two ? 'one of them' : 'all but one'}.`,
      );
    });
}

/** Checks of each parent reference on its own: does the parent exist, may it be one, do the time axes fit. */
function edgeProblems(spec: GraphSpec, byName: ReadonlyMap<string, NodeSpec>): Problem[] {
  const check = (child: NodeSpec, ref: ParentRef): Problem[] => {
    const [c, p] = [quote(child.name), quote(ref.node)];
    const parent = byName.get(ref.node);
    if (parent === undefined) {
      return [
        problem(
          'missing-parent',
          [child.name, ref.node],
          `node ${c} has parent ${p}${lagText(ref.lag)}, but no node is named ${p}; declare it or fix the name.`,
        ),
      ];
    }
    const edge = [child.name, parent.name];
    const problems: Problem[] = [];
    if (parent.kind === 'cost') {
      problems.push(
        problem(
          'parent-kind',
          edge,
          `node ${c} has the cost ${p} as a parent, but costs are sinks of the objective; give ${c} the cost's `,
          `parents instead, or make ${p} a deterministic node and add a cost after it.`,
        ),
      );
    }
    const staticEnds = [...new Set([child, parent])].filter((n) => !isTemporal(n)).map((n) => quote(n.name));
    if (ref.lag > 0 && staticEnds.length > 0) {
      problems.push(
        problem(
          'lag-on-static',
          edge,
          `node ${c} uses ${p} at lag ${ref.lag}, but ${listed(staticEnds)} ${staticEnds.length > 1 ? 'have' : 'has'} `,
          `no time axis; a lag reaches back in time, so use lag 0 or mark both nodes "temporal": true `,
          `(parameters never are).`,
        ),
      );
    }
    if (isTemporal(parent) && !isTemporal(child)) {
      problems.push(
        problem(
          'temporal-into-static',
          edge,
          `node ${c} has one value per sample but its parent ${p} has one per time step; mark ${c} "temporal": true.`,
        ),
      );
    }
    return problems;
  };
  return spec.nodes.flatMap((child) => parentsOf(child).flatMap((ref) => check(child, ref)));
}

function missingFamilies(spec: GraphSpec): Problem[] {
  return spec.nodes
    .filter((node) => node.kind === 'stochastic' && node.family === undefined)
    .map((node) =>
      problem(
        'missing-family',
        [node.name],
        `stochastic node ${quote(node.name)} has no "family"; give it {"type": "categorical", "categories": n}, `,
        `{"type": "gaussian", "dim": n} or {"type": "external"} (sampled outside the graph).`,
      ),
    );
}

function sameStepCycles(graph: ScgGraph): Problem[] {
  return findSameStepCycles(graph).map(({ cycle, component }) => {
    const others = component.filter((node) => !cycle.includes(node));
    return problem(
      'cycle',
      [...cycle],
      `${[...cycle, cycle[0]].join(' → ')} is a cycle within one time step (every edge on it has lag 0), `,
      `so none of these nodes can be computed first; remove one of its edges or, between temporal nodes, `,
      `give one a lag ≥ 1.`,
      others.length === 0
        ? ''
        : ` (${listed(others.map(quote))} ${others.length === 1 ? 'lies' : 'lie'} on further same-step cycles with these nodes.)`,
    );
  });
}

/** A cost that no parameter reaches contributes nothing to any gradient: almost surely a wiring mistake. */
function costsOutOfReach(spec: GraphSpec, graph: ScgGraph): Problem[] {
  const namesOf = (kind: NodeKind) => [...new Set(spec.nodes.filter((n) => n.kind === kind).map((n) => n.name))];
  const parameters = namesOf('parameter');
  if (parameters.length === 0) {
    // Then no cost is reachable; one problem says why better than one per cost.
    return [
      problem(
        'no-parameters',
        [],
        `the graph has no parameter node, so there is nothing to differentiate; `,
        `declare one with {"kind": "parameter", "shape": […]}.`,
      ),
    ];
  }
  const influenced = reachableFrom(graph, parameters);
  return namesOf('cost')
    .filter((cost) => !influenced.has(cost))
    .map((cost) =>
      problem(
        'unreachable-cost',
        [cost],
        `no parameter influences cost ${quote(cost)} (there is no path to it from ${listed(parameters.map(quote))}), `,
        `so it adds nothing to any gradient; connect it to the nodes that depend on the parameters or remove it.`,
      ),
    );
}
