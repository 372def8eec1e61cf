/**
 * The structure of a stochastic computation graph as plain data: node kinds, parents with time lags,
 * distribution families and labels — everything but the functions. It is what a graph file holds,
 * what validation and rendering read, and what the typed builder produces alongside its functions.
 *
 * The io-ts codecs are the single source of truth: the TypeScript types are derived from them, so a
 * decoded file and a built graph have the same shape.
 */
import * as t from 'io-ts';

/**
 * A whole number at least `min`, as a plain `number` type (not a branded one), so that graphs written
 * in code need no casts; files are still checked when decoded.
 */
const wholeNumberAtLeast = (min: number, name: string): t.Type<number, number, unknown> =>
  new t.Type<number, number, unknown>(
    name,
    (u): u is number => typeof u === 'number' && Number.isInteger(u) && u >= min,
    (u, c) => (typeof u === 'number' && Number.isInteger(u) && u >= min ? t.success(u) : t.failure(u, c)),
    t.identity,
  );

/** A whole number ≥ 0. */
export const NonNegativeInt = wholeNumberAtLeast(0, 'NonNegativeInt');
/** A whole number ≥ 1. */
export const PositiveInt = wholeNumberAtLeast(1, 'PositiveInt');

/**
 * A distribution family of a stochastic node.
 * - `categorical`: `categories` outcomes, parametrised by logits; the value is the outcome's index.
 * - `gaussian`: diagonal Gaussian over `dim` reals, parametrised by a mean and a log standard deviation.
 * - `external`: sampled outside the graph (an environment's transition); its log-probability is not
 *   known and does not depend on any parameter, so it contributes no score term, but it still carries
 *   influence from its parents to its children.
 * - `trajectory`: whole trajectories sampled with a policy, in a meta-level graph: its log-probability
 *   (the sum of the task graph's) is scored, but it is computed by the meta-objective, not evaluated
 *   node by node.
 */
export const FamilyCodec = t.union([
  t.type({ type: t.literal('categorical'), categories: PositiveInt }),
  t.type({ type: t.literal('gaussian'), dim: PositiveInt }),
  t.type({ type: t.literal('external') }),
  t.type({ type: t.literal('trajectory') }),
]);
export type Family = t.TypeOf<typeof FamilyCodec>;

/** A parent of a node, `lag` time steps back (0: the same step). */
export interface ParentRef {
  readonly node: string;
  readonly lag: number;
}

/**
 * In a file a parent is written either as a bare name (lag 0) or as `{ "node": …, "lag": … }`; in memory
 * it is always the object, so consumers never handle two forms. Encoding writes the short form back
 * where the lag is 0, so decode ∘ encode is the identity on files written in the canonical form.
 */
const ParentObject = t.intersection([t.type({ node: t.string }), t.partial({ lag: NonNegativeInt })]);
export const ParentRefCodec = new t.Type<ParentRef, string | { node: string; lag: number }, unknown>(
  'ParentRef',
  (u): u is ParentRef =>
    typeof u === 'object' && u !== null && typeof (u as ParentRef).node === 'string' && typeof (u as ParentRef).lag === 'number',
  (u, c) => {
    if (typeof u === 'string') return t.success({ node: u, lag: 0 });
    const o = ParentObject.validate(u, c);
    if (o._tag === 'Left') return o;
    return t.success({ node: o.right.node, lag: o.right.lag ?? 0 });
  },
  (p) => (p.lag === 0 ? p.node : { node: p.node, lag: p.lag }),
);

const common = {
  name: t.string,
};
const optionalCommon = {
  /** Shown in diagrams; `_` and `^` mark subscripts and superscripts as in TeX (`a_t`, `\theta'`). */
  label: t.string,
  /** One value per time step (the value has a time axis); false or absent: one value per sample. */
  temporal: t.boolean,
};

export const ParameterNodeCodec = t.intersection([
  t.type({ ...common, kind: t.literal('parameter'), shape: t.array(PositiveInt) }),
  t.partial({ label: t.string }),
]);
export const InputNodeCodec = t.intersection([
  t.type({ ...common, kind: t.literal('input') }),
  t.partial({ ...optionalCommon, shape: t.array(PositiveInt) }),
]);
export const StochasticNodeCodec = t.intersection([
  t.type({ ...common, kind: t.literal('stochastic'), parents: t.array(ParentRefCodec) }),
  // `family` is optional here so that validation, not decoding, reports its absence together with
  // every other problem of the graph.
  t.partial({ ...optionalCommon, family: FamilyCodec }),
]);
export const DeterministicNodeCodec = t.intersection([
  t.type({ ...common, kind: t.literal('deterministic'), parents: t.array(ParentRefCodec) }),
  t.partial({ ...optionalCommon, shape: t.array(PositiveInt) }),
]);
export const CostNodeCodec = t.intersection([
  t.type({ ...common, kind: t.literal('cost'), parents: t.array(ParentRefCodec) }),
  t.partial(optionalCommon),
]);

export const NodeSpecCodec = t.union([
  ParameterNodeCodec,
  InputNodeCodec,
  StochasticNodeCodec,
  DeterministicNodeCodec,
  CostNodeCodec,
]);
export type NodeSpec = t.TypeOf<typeof NodeSpecCodec>;
export type NodeKind = NodeSpec['kind'];
export type ParameterNode = t.TypeOf<typeof ParameterNodeCodec>;
export type StochasticNode = t.TypeOf<typeof StochasticNodeCodec>;

export const GraphSpecCodec = t.intersection([
  t.type({ nodes: t.array(NodeSpecCodec) }),
  t.partial({
    name: t.string,
    /** Number of time steps used when the graph is enumerated or drawn; batches carry their own. */
    horizon: PositiveInt,
  }),
]);
export type GraphSpec = t.TypeOf<typeof GraphSpecCodec>;

/** The parents of any node kind (parameters and inputs have none, whatever a file may say). */
export const parentsOf = (n: NodeSpec): readonly ParentRef[] =>
  n.kind === 'parameter' || n.kind === 'input' ? [] : n.parents;

/** Whether a node has a time axis. Parameters never do. */
export const isTemporal = (n: NodeSpec): boolean => n.kind !== 'parameter' && n.temporal === true;
