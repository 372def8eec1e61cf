/**
 * Which nodes influence which, and across how many time steps. This is the one query from which the
 * compiler derives every estimator's terms and the diagram its credit paths.
 *
 * A temporal graph is declared once per time step with lagged edges; the unrolled graph is never
 * built. Instead, for a source x and a target y, the query returns the set of offsets d such that
 * x at step t−d is an ancestor of y at step t. Because the declared structure is the same at every
 * step, that set does not depend on t (only on the horizon, which bounds d).
 */
import { isTemporal, parentsOf, type GraphSpec, type NodeSpec } from './spec.ts';

/**
 * How x reaches y:
 * - `none`: no directed path;
 * - `same`: both are per-sample (static) nodes and x is an ancestor of y;
 * - `broadcast`: x is static, y temporal: x is an ancestor of y_t at every step t ≥ `fromStep` (x reaches
 *   y through lagged edges only after that many steps: x → s_t → c_{t+1} gives fromStep 1);
 * - `lags`: both temporal; `lags[d]` is true when x_{t−d} is an ancestor of y_t (d < horizon).
 * (A temporal node can never reach a static one: validation forbids temporal parents of static nodes.)
 */
export type Influence =
  | { readonly kind: 'none' }
  | { readonly kind: 'same' }
  | { readonly kind: 'broadcast'; readonly fromStep: number }
  | { readonly kind: 'lags'; readonly lags: readonly boolean[] };

/** Children with the lag of the edge, per node name. */
type ChildIndex = ReadonlyMap<string, ReadonlyArray<{ readonly child: string; readonly lag: number }>>;

export interface InfluenceQuery {
  readonly spec: GraphSpec;
  readonly horizon: number;
  /** How `from` reaches `to` through directed paths of length ≥ 1 (a node does not influence itself at offset 0). */
  readonly influence: (from: string, to: string) => Influence;
  /** The stochastic nodes that influence `to`, with how. */
  readonly stochasticInfluencers: (to: string) => ReadonlyArray<{ readonly node: string; readonly influence: Influence }>;
}

const childIndex = (spec: GraphSpec): ChildIndex => {
  const index = new Map<string, Array<{ child: string; lag: number }>>();
  for (const n of spec.nodes) index.set(n.name, []);
  for (const n of spec.nodes) {
    for (const p of parentsOf(n)) index.get(p.node)?.push({ child: n.name, lag: p.lag });
  }
  return index;
};

/**
 * Offsets at which `from` reaches each node: a breadth-first search over (node, accumulated lag)
 * states, bounded by the horizon. Lag-0 edges are acyclic (validation), so it terminates.
 */
const reach = (children: ChildIndex, from: string, horizon: number): Map<string, boolean[]> => {
  const reached = new Map<string, boolean[]>();
  const queue: Array<[string, number]> = [[from, 0]];
  const seen = new Set<string>([`${from}@0`]);
  while (queue.length > 0) {
    const [node, offset] = queue.shift()!;
    for (const { child, lag } of children.get(node) ?? []) {
      const d = offset + lag;
      if (d >= horizon) continue;
      const offsets = reached.get(child) ?? new Array<boolean>(horizon).fill(false);
      offsets[d] = true;
      reached.set(child, offsets);
      const key = `${child}@${d}`;
      if (!seen.has(key)) {
        seen.add(key);
        queue.push([child, d]);
      }
    }
  }
  return reached;
};

/** Builds the query for a validated graph and a horizon (the number of time steps, ≥ 1). */
export const influenceQuery = (spec: GraphSpec, horizon: number): InfluenceQuery => {
  const children = childIndex(spec);
  const byName = new Map<string, NodeSpec>(spec.nodes.map((n) => [n.name, n]));
  const cache = new Map<string, Map<string, boolean[]>>();
  const reachFrom = (from: string): Map<string, boolean[]> => {
    let r = cache.get(from);
    if (r === undefined) {
      r = reach(children, from, horizon);
      cache.set(from, r);
    }
    return r;
  };
  const influence = (from: string, to: string): Influence => {
    const offsets = reachFrom(from).get(to);
    if (offsets === undefined || !offsets.some((x) => x)) return { kind: 'none' };
    const source = byName.get(from);
    const target = byName.get(to);
    if (source === undefined || target === undefined) return { kind: 'none' };
    const sourceTemporal = isTemporal(source);
    const targetTemporal = isTemporal(target);
    if (!sourceTemporal && !targetTemporal) return { kind: 'same' };
    if (!sourceTemporal) return { kind: 'broadcast', fromStep: offsets.indexOf(true) };
    return { kind: 'lags', lags: offsets };
  };
  const stochasticInfluencers = (to: string) =>
    spec.nodes
      .filter((n) => n.kind === 'stochastic')
      .map((n) => ({ node: n.name, influence: influence(n.name, to) }))
      .filter((x) => x.influence.kind !== 'none');
  return { spec, horizon, influence, stochasticInfluencers };
};

/**
 * The influence mask over time: entry [t'][t] is true when `from` at step t' influences `to` at step t.
 * For static nodes the mask is 1×1 (or 1×T for a static source and a temporal target).
 */
export const influenceMask = (q: InfluenceQuery, from: string, to: string): boolean[][] => {
  const inf = q.influence(from, to);
  const T = q.horizon;
  switch (inf.kind) {
    case 'none':
      return [[false]];
    case 'same':
      return [[true]];
    case 'broadcast':
      return [Array.from({ length: T }, (_, t) => t >= inf.fromStep)];
    case 'lags':
      return Array.from({ length: T }, (_, tp) => Array.from({ length: T }, (_, t) => t >= tp && inf.lags[t - tp] === true));
  }
};
