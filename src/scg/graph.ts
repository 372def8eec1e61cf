/**
 * A graph spec as a graphology graph, for the questions that are graph searches: same-step cycles (for
 * validation), who influences whom (for estimator compilers), layout (for diagrams).
 *
 * Edges point from parent to child, the direction values flow, and carry the parent reference's `lag`.
 * The graph is a multigraph because one node may use another at several lags (s_t ← s_t and s_t ← s_{t−1}
 * are different edges).
 */
import { DirectedGraph, MultiDirectedGraph } from 'graphology';
import { parentsOf, type GraphSpec, type NodeSpec } from './spec.ts';

export interface ScgNodeAttributes {
  readonly spec: NodeSpec;
}
export interface ScgEdgeAttributes {
  /** Time steps back from the child to the parent; 0 is the same step. */
  readonly lag: number;
}
export type ScgGraph = MultiDirectedGraph<ScgNodeAttributes, ScgEdgeAttributes>;

/**
 * Builds the graph of a spec, tolerating the invalid specs that validation must still inspect: a node
 * name declared twice becomes one graph node (the first declaration's attributes, the parents of all of
 * them), and a reference to a node that does not exist adds no edge. Validate first where that matters.
 */
export function toGraphology(spec: GraphSpec): ScgGraph {
  const graph: ScgGraph = new MultiDirectedGraph();
  for (const node of spec.nodes) {
    if (!graph.hasNode(node.name)) graph.addNode(node.name, { spec: node });
  }
  for (const node of spec.nodes) {
    for (const parent of parentsOf(node)) {
      if (graph.hasNode(parent.node)) graph.addEdge(parent.node, node.name, { lag: parent.lag });
    }
  }
  return graph;
}

/** The edges within one time step (lag 0) only, merged into a simple graph: the per-step evaluation order. */
export function sameStepGraph(graph: ScgGraph): DirectedGraph {
  const sameStep = new DirectedGraph();
  graph.forEachNode((node) => sameStep.addNode(node));
  graph.forEachEdge((_edge, { lag }, parent, child) => {
    if (lag === 0) sameStep.mergeEdge(parent, child);
  });
  return sameStep;
}

/**
 * The nodes reachable from `starts` along edges of any lag — `forward` follows values to their
 * consumers (what a node influences), `backward` goes to parents (what influences a node). A start node
 * is included only if a path leads back to it.
 */
export function reachableFrom(
  graph: ScgGraph,
  starts: Iterable<string>,
  direction: 'forward' | 'backward' = 'forward',
): Set<string> {
  const reached = new Set<string>();
  const frontier = [...starts];
  for (let node = frontier.pop(); node !== undefined; node = frontier.pop()) {
    const visit = (next: string) => {
      if (!reached.has(next)) {
        reached.add(next);
        frontier.push(next);
      }
    };
    if (direction === 'forward') graph.forEachOutNeighbor(node, visit);
    else graph.forEachInNeighbor(node, visit);
  }
  return reached;
}

export interface SameStepCycle {
  /** One cycle, each node a parent of the next and the last a parent of the first. */
  readonly cycle: readonly string[];
  /**
   * Every node of the strongly connected component the cycle lies in (in declaration order); more than
   * the cycle when the component holds several intertwined cycles.
   */
  readonly component: readonly string[];
}

/**
 * The cycles made of lag-0 edges, one per strongly connected component that has one. Loops through a lag
 * ≥ 1 edge are not cycles: they run through earlier time steps. Each cycle starts at its component's
 * first-declared node and is a shortest one through it, so reports are stable.
 */
export function findSameStepCycles(graph: ScgGraph): SameStepCycle[] {
  const sameStep = sameStepGraph(graph);
  const declarationIndex = new Map(graph.nodes().map((node, i) => [node, i]));
  const byDeclaration = (a: string, b: string) => declarationIndex.get(a)! - declarationIndex.get(b)!;

  return stronglyConnectedComponents(sameStep)
    .map((component) => [...component].sort(byDeclaration))
    .filter((component) => component.length > 1 || sameStep.hasEdge(component[0]!, component[0]!))
    .sort((a, b) => byDeclaration(a[0]!, b[0]!))
    .map((component) => ({ cycle: shortestCycleThrough(sameStep, component[0]!, new Set(component)), component }));
}

/** Breadth-first search from `start` back to itself, inside `component` (which guarantees a way back). */
function shortestCycleThrough(graph: DirectedGraph, start: string, component: ReadonlySet<string>): string[] {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const node = queue[i]!;
    for (const next of graph.outNeighbors(node)) {
      if (next === start) {
        const cycle = [node];
        for (let back = cameFrom.get(node); back !== undefined; back = cameFrom.get(back)) cycle.push(back);
        return cycle.reverse();
      }
      if (component.has(next) && !cameFrom.has(next)) {
        cameFrom.set(next, node);
        queue.push(next);
      }
    }
  }
  throw new Error(`no cycle through ${start} in its strongly connected component`);
}

/**
 * Tarjan's strongly connected components, iterative: graphology-components' recursive DFS overflows
 * the stack on a chain of ~10,000 nodes. Components come out in reverse topological order.
 */
export function stronglyConnectedComponents(graph: DirectedGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  for (const root of graph.nodes()) {
    if (index.has(root)) continue;
    // Each frame: a node and the iterator over its out-neighbours still to visit.
    const frames: Array<{ node: string; next: Iterator<string> }> = [];
    const open = (node: string) => {
      index.set(node, counter);
      low.set(node, counter);
      counter++;
      stack.push(node);
      onStack.add(node);
      frames.push({ node, next: graph.outNeighbors(node)[Symbol.iterator]() });
    };
    open(root);
    while (frames.length > 0) {
      const frame = frames[frames.length - 1]!;
      const step = frame.next.next();
      if (!step.done) {
        const child = step.value;
        if (!index.has(child)) open(child);
        else if (onStack.has(child)) low.set(frame.node, Math.min(low.get(frame.node)!, index.get(child)!));
        continue;
      }
      frames.pop();
      const parent = frames[frames.length - 1];
      if (parent !== undefined) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        components.push(component);
      }
    }
  }
  return components;
}
