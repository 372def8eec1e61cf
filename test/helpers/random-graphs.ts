/**
 * Random small stochastic computation graphs for property tests: structure only (a GraphSpec), valid by
 * construction, every stochastic node categorical and no inputs, so that `instantiate` can give them
 * functions and the exactness oracle can enumerate every joint outcome.
 *
 * A graph is drawn as a blueprint of plain choices (sizes, flags, bit masks over the nodes that may be
 * parents) and then interpreted, so fast-check shrinks the choices (fewer nodes, fewer parents, fewer
 * categories, static rather than temporal) and the interpretation keeps every shrunk graph valid.
 *
 * The shape of a graph:
 *   - 1–2 parameters `theta0`, `theta1` of small shapes;
 *   - 1–4 categorical stochastic nodes `s0…` (2–3 categories), each with at least one parameter parent,
 *     lag-0 parents among earlier stochastic nodes and deterministic nodes declared before it, and —
 *     when temporal — lag-1 parents among the temporal stochastic nodes (itself and later ones
 *     included: s ← s@1, s ← a@1 as in an MDP);
 *   - 0–2 deterministic nodes `d0…` with stochastic and/or parameter parents;
 *   - 1–3 costs `c0…` with 1–2 stochastic parents (and optionally deterministic, lag-1 and parameter ones).
 * A node with a temporal lag-0 parent is temporal; static nodes may feed temporal ones, never the reverse.
 *
 */
import fc from 'fast-check';
import type { GraphSpec, NodeSpec, ParentRef } from '../../src/scg/spec.ts';

export type Flavour = 'static' | 'temporal';

export interface RandomGraphOptions {
  /** Static DAGs (horizon 1), temporal graphs (horizon 2–3), or either (the default). */
  readonly flavour?: Flavour | 'either';
  /** The largest number of joint outcomes (Π categories^steps) a graph may have; default 500. */
  readonly maxOutcomes?: number;
  /**
   * Whether costs may depend on the parameters other than through sampling (a parameter parent of a
   * cost or of a deterministic node); default true. False gives graphs where the Hessian's H1 + H2 +
   * H12 + H12ᵀ decomposition applies.
   */
  readonly directParameterCosts?: boolean;
}

export interface RandomGraph {
  readonly spec: GraphSpec;
  readonly flavour: Flavour;
  /** The number of joint outcomes the oracle enumerates. */
  readonly outcomes: number;
}

/** Parameter shapes: small, so that Hessians (d × d) stay cheap. */
const parameterShapes: readonly (readonly number[])[] = [[1], [2], [3], [2, 2]];

const bitsOf = (mask: number, n: number): number[] => Array.from({ length: n }, (_, i) => i).filter((i) => (mask >> i) & 1);
const mask = (bits: number) => fc.integer({ min: 0, max: 2 ** bits - 1 });

const stochasticBlueprint = fc.record({
  categories: fc.integer({ min: 2, max: 3 }),
  temporal: fc.boolean(),
  /** Which of the parameters are parents (none: the first). */
  parameters: mask(2),
  /** Which earlier stochastic nodes are lag-0 parents. */
  earlier: mask(3),
  /** Which temporal stochastic nodes are lag-1 parents (when this node is temporal). */
  lagged: mask(4),
  /** Which deterministic nodes declared before this one are parents. */
  deterministic: mask(2),
});

const deterministicBlueprint = fc.record({
  temporal: fc.boolean(),
  /** Declared after this many stochastic nodes (at least one). */
  after: fc.integer({ min: 1, max: 4 }),
  /** Stochastic parents among those declared before it (none and no parameter parent: the last of them). */
  stochastic: mask(4),
  parameters: mask(2),
  lagged: mask(4),
});

const costBlueprint = fc.record({
  temporal: fc.boolean(),
  /** One or two stochastic parents, as indices taken modulo the number of stochastic nodes. */
  stochastic: fc.array(fc.nat({ max: 3 }), { minLength: 1, maxLength: 2 }),
  deterministic: mask(2),
  parameters: mask(2),
  lagged: mask(4),
});

const blueprint = (flavour: RandomGraphOptions['flavour']) =>
  fc.record({
    flavour: flavour === 'static' || flavour === 'temporal' ? fc.constant(flavour) : fc.constantFrom<Flavour>('static', 'temporal'),
    horizon: fc.integer({ min: 2, max: 3 }),
    parameters: fc.array(fc.constantFrom(...parameterShapes), { minLength: 1, maxLength: 2 }),
    stochastic: fc.array(stochasticBlueprint, { minLength: 1, maxLength: 4 }),
    deterministic: fc.array(deterministicBlueprint, { maxLength: 2 }),
    costs: fc.array(costBlueprint, { minLength: 1, maxLength: 3 }),
  });
type Blueprint = ReturnType<typeof blueprint> extends fc.Arbitrary<infer B> ? B : never;

const ref = (node: string, lag = 0): ParentRef => ({ node, lag });

/** Interprets a blueprint as a valid spec. */
const interpret = (b: Blueprint, directParameterCosts: boolean): RandomGraph => {
  const temporalFlavour = b.flavour === 'temporal';
  const horizon = temporalFlavour ? b.horizon : 1;
  const params = b.parameters.map((shape, i) => ({ name: `theta${i}`, shape: [...shape] }));
  const parameterRefs = (m: number, atLeastOne: boolean): ParentRef[] => {
    const chosen = bitsOf(m, params.length);
    return (chosen.length === 0 && atLeastOne ? [0] : chosen).map((i) => ref(params[i]!.name));
  };

  const nS = b.stochastic.length;
  const sName = (i: number) => `s${i}`;
  // Deterministic nodes: each after ≥ 1 stochastic node (clamped to how many there are).
  const dets = b.deterministic.map((d, i) => ({ ...d, name: `d${i}`, after: Math.min(d.after, nS) }));

  // Pass 1: lag-0 parents and which stochastic nodes are temporal (a temporal lag-0 parent forces it).
  const temporal = new Map<string, boolean>();
  const sParents: ParentRef[][] = [];
  const detParents = new Map<string, ParentRef[]>();
  const declareDeterministicAfter = (count: number) => {
    for (const d of dets.filter((x) => x.after === count)) {
      const stochastic = bitsOf(d.stochastic, count).map((j) => ref(sName(j)));
      const fromParameters = directParameterCosts ? parameterRefs(d.parameters, false) : [];
      // A node of parameters only (no batch axis) is allowed; a node with no parent at all is not.
      const parents = stochastic.length + fromParameters.length === 0 ? [ref(sName(count - 1))] : [...stochastic, ...fromParameters];
      detParents.set(d.name, parents);
      temporal.set(d.name, temporalFlavour && (d.temporal || parents.some((p) => temporal.get(p.node) === true)));
    }
  };
  b.stochastic.forEach((s, i) => {
    const available = dets.filter((d) => d.after <= i).map((d) => d.name);
    const parents = [
      ...bitsOf(s.earlier, i).map((j) => ref(sName(j))),
      ...bitsOf(s.deterministic, available.length).map((j) => ref(available[j]!)),
      ...parameterRefs(s.parameters, true),
    ];
    sParents.push(parents);
    temporal.set(sName(i), temporalFlavour && (s.temporal || parents.some((p) => temporal.get(p.node) === true)));
    declareDeterministicAfter(i + 1);
  });
  // A temporal graph has at least one temporal stochastic node: the last one can always become temporal
  // (its only dependents, deterministic nodes and costs, follow it and inherit the flag below).
  if (temporalFlavour && !b.stochastic.some((_, i) => temporal.get(sName(i)))) {
    temporal.set(sName(nS - 1), true);
    for (const d of dets) {
      const parents = detParents.get(d.name)!;
      if (parents.some((p) => temporal.get(p.node) === true)) temporal.set(d.name, true);
    }
  }
  const temporalStochastic = b.stochastic.map((_, i) => sName(i)).filter((n) => temporal.get(n));
  const laggedRefs = (m: number, childTemporal: boolean): ParentRef[] =>
    childTemporal ? bitsOf(m, temporalStochastic.length).map((j) => ref(temporalStochastic[j]!, 1)) : [];

  // Pass 2: the nodes, in declaration order, with their lag-1 parents.
  const nodes: NodeSpec[] = params.map((p) => ({ name: p.name, kind: 'parameter', shape: p.shape }));
  const pushDeterministicAfter = (count: number) => {
    for (const d of dets.filter((x) => x.after === count)) {
      const t = temporal.get(d.name)!;
      nodes.push({
        name: d.name,
        kind: 'deterministic',
        parents: [...detParents.get(d.name)!, ...laggedRefs(d.lagged, t)],
        ...(t ? { temporal: true } : {}),
      });
    }
  };
  b.stochastic.forEach((s, i) => {
    const t = temporal.get(sName(i))!;
    nodes.push({
      name: sName(i),
      kind: 'stochastic',
      family: { type: 'categorical', categories: s.categories },
      parents: [...sParents[i]!, ...laggedRefs(s.lagged, t)],
      ...(t ? { temporal: true } : {}),
    });
    pushDeterministicAfter(i + 1);
  });
  b.costs.forEach((c, i) => {
    const stochastic = [...new Set(c.stochastic.map((j) => j % nS))].map((j) => ref(sName(j)));
    const deterministic = bitsOf(c.deterministic, dets.length).map((j) => ref(dets[j]!.name));
    const lag0 = [...stochastic, ...deterministic, ...(directParameterCosts ? parameterRefs(c.parameters, false) : [])];
    const t = temporalFlavour && (c.temporal || lag0.some((p) => temporal.get(p.node) === true));
    nodes.push({ name: `c${i}`, kind: 'cost', parents: [...lag0, ...laggedRefs(c.lagged, t)], ...(t ? { temporal: true } : {}) });
  });

  const outcomes = b.stochastic.reduce((acc, s, i) => acc * s.categories ** (temporal.get(sName(i)) ? horizon : 1), 1);
  return { spec: { name: `random-${b.flavour}`, horizon, nodes }, flavour: b.flavour, outcomes };
};

/** Random valid graphs (see the module comment), at most `maxOutcomes` joint outcomes each. */
export const randomGraphArbitrary = (options: RandomGraphOptions = {}): fc.Arbitrary<RandomGraph> => {
  const maxOutcomes = options.maxOutcomes ?? 500;
  const direct = options.directParameterCosts ?? true;
  return blueprint(options.flavour)
    .map((b) => interpret(b, direct))
    .filter((g) => g.outcomes <= maxOutcomes);
};

/** The number of scalar parameters (the oracle's d). */
export const parameterCount = (spec: GraphSpec): number =>
  spec.nodes.reduce((acc, n) => (n.kind === 'parameter' ? acc + n.shape.reduce((a, b) => a * b, 1) : acc), 0);

/** Just the specs of `randomGraphArbitrary`. */
export const graphSpecArbitrary = (options: RandomGraphOptions = {}): fc.Arbitrary<GraphSpec> =>
  randomGraphArbitrary(options).map((g) => g.spec);

/** The number of joint outcomes of a spec's categorical stochastic nodes over its horizon. */
export const jointOutcomes = (spec: GraphSpec): number =>
  spec.nodes.reduce(
    (acc, n) =>
      n.kind === 'stochastic' && n.family?.type === 'categorical' ? acc * n.family.categories ** (n.temporal === true ? (spec.horizon ?? 1) : 1) : acc,
    1,
  );
