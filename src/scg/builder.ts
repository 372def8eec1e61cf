/**
 * The typed builder: a user declares a graph node by node and every parent reference is checked by
 * the TypeScript compiler. Same-step parents must already be declared; a lagged parent (a value from
 * an earlier time step, e.g. s_t ← a_{t−1}) may name a node declared later, and `build()` is a type
 * error until every such forward reference has been declared.
 *
 * The result is a `Graph`: the structural spec (plain data, the JSON form) plus the functions that
 * compute distribution parameters, deterministic values and costs from parent values.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Family, GraphSpec, NodeSpec, ParentRef } from './spec.ts';

/** Parent values as a function receives them: keyed by name (lag 0) or `name@lag`. */
export type ParentValues = Readonly<Record<string, tf.Tensor>>;

/**
 * What a node's function may know besides its parents. `step` is the time index, shaped [1, T] for a
 * temporal node (so it broadcasts over the batch) and a scalar 0 for a per-sample node: it lets a
 * function treat the first step specially (a lagged parent reads 0 there) or use time as a feature.
 */
export interface NodeContext {
  readonly step: tf.Tensor;
}

/** Distribution parameters a stochastic node's function returns, per family. */
export interface CategoricalParams {
  /** [..., categories] unnormalised log-probabilities. */
  readonly logits: tf.Tensor;
}
export interface GaussianParams {
  /** [..., dim] */
  readonly mean: tf.Tensor;
  /** Broadcastable to [..., dim]: the log standard deviation of each coordinate. */
  readonly logStd: tf.Tensor;
}
export type DistributionParams = CategoricalParams | GaussianParams;

/** The functions behind the nodes; a node without one takes its value from the batch. */
export type NodeImpl =
  | {
      readonly kind: 'distribution';
      readonly fn: (parents: ParentValues, context: NodeContext) => DistributionParams;
      /**
       * The log-probability of the node's sampled values given its parents, when the node has a faster
       * way to compute it than from `fn`'s distribution (a policy's fused op); it must equal the
       * family's log-density of `fn`'s distribution, with the same derivatives.
       */
      readonly logProb?: (parents: ParentValues, value: tf.Tensor, context: NodeContext) => tf.Tensor;
      /**
       * `logProb` and `fn` at once (one fused op), for an evaluation that reads both
       * (`evaluateGraph`'s `distributions` option); they must equal the two apart, with the same
       * derivatives.
       */
      readonly logProbAndDistribution?: (
        parents: ParentValues,
        value: tf.Tensor,
        context: NodeContext,
      ) => { readonly logProb: tf.Tensor; readonly distribution: DistributionParams };
    }
  | { readonly kind: 'value'; readonly fn: (parents: ParentValues, context: NodeContext) => tf.Tensor };

/** A stochastic computation graph: its structure and its functions. `N` are its node names. */
export interface Graph<N extends string = string> {
  readonly spec: GraphSpec;
  readonly impls: ReadonlyMap<string, NodeImpl>;
  /** Phantom: the node names, so that APIs taking a graph can type-check names against it. */
  readonly names?: N;
}

/** The key under which a parent's value is passed to a node's function. */
export const parentKey = (p: ParentRef): string => (p.lag === 0 ? p.node : `${p.node}@${p.lag}`);

/** A reference to a node's value `lag` steps back. */
export interface Lagged<M extends string = string, L extends number = number> {
  readonly node: M;
  readonly lag: L;
}
/** `lag('a', 1)`: the parent a_{t−1}. The lag must be a whole number ≥ 1. */
export const lag = <const M extends string, const L extends number>(node: M, lag: L): Lagged<M, L> => {
  if (!Number.isInteger(lag) || lag < 1) throw new RangeError(`lag('${node}', ${lag}): a lag is a whole number ≥ 1`);
  return { node, lag };
};

type Ref<N extends string> = N | Lagged;
type KeyOf<P> = P extends string ? P : P extends Lagged<infer M, infer L> ? `${M}@${L}` : never;
type LaggedNames<P> = P extends Lagged<infer M> ? M : never;
type ValuesOf<P extends readonly unknown[]> = { readonly [K in KeyOf<P[number]>]: tf.Tensor };

interface Common {
  readonly label?: string;
  readonly temporal?: boolean;
}

export type FamilyParams<F extends Family> = F extends { type: 'categorical' }
  ? CategoricalParams
  : F extends { type: 'gaussian' }
    ? GaussianParams
    : never;

type StochasticOptions<N extends string, P extends readonly Ref<N>[], F extends Family> = Common & {
  readonly parents: P;
  readonly family: F;
} & (F extends { type: 'external' }
    ? { readonly distribution?: undefined }
    : { readonly distribution: (parents: ValuesOf<P>, context: NodeContext) => FamilyParams<F> });

type ValueOptions<N extends string, P extends readonly Ref<N>[]> = Common & {
  readonly parents: P;
  /** Computes the value from the parents; without it the value is read from the batch. */
  readonly fn?: (parents: ValuesOf<P>, context: NodeContext) => tf.Tensor;
  readonly shape?: readonly number[];
};

/** Why `build()` cannot be called yet: lagged parents that were never declared. */
type PendingCheck<N extends string, Pending extends string> = [Exclude<Pending, N>] extends [never]
  ? []
  : [error: `undeclared lagged parent: ${Exclude<Pending, N>}`];

export class DuplicateNodeError extends Error {
  override readonly name = 'DuplicateNodeError';
}

export class UndeclaredParentError extends Error {
  override readonly name = 'UndeclaredParentError';
}

/**
 * Immutable: every method returns a new builder, so a partly built graph can be shared and extended
 * in two directions without interference.
 */
export class GraphBuilder<N extends string = never, Pending extends string = never> {
  private constructor(
    private readonly nodes: readonly NodeSpec[],
    private readonly impls: ReadonlyMap<string, NodeImpl>,
    private readonly meta: { readonly name?: string; readonly horizon?: number },
  ) {}

  static create(meta: { readonly name?: string; readonly horizon?: number } = {}): GraphBuilder {
    return new GraphBuilder([], new Map(), meta);
  }

  private add<M extends string, P extends string>(node: NodeSpec, impl?: NodeImpl): GraphBuilder<N | M, P> {
    if (this.nodes.some((n) => n.name === node.name)) {
      throw new DuplicateNodeError(`node '${node.name}' is declared twice`);
    }
    const impls = new Map(this.impls);
    if (impl !== undefined) impls.set(node.name, impl);
    return new GraphBuilder<N | M, P>([...this.nodes, node], impls, this.meta);
  }

  /** A learnable tensor of the given shape; its value is supplied with each evaluation. */
  parameter<const M extends string>(name: M, opts: { readonly shape: readonly number[]; readonly label?: string }) {
    return this.add<M, Pending>({ kind: 'parameter', name, shape: [...opts.shape], ...label(opts) });
  }

  /** Observed data read from the batch ([B, ...] or, if temporal, [B, T, ...]). */
  input<const M extends string>(name: M, opts: Common & { readonly shape?: readonly number[] } = {}) {
    return this.add<M, Pending>({
      kind: 'input',
      name,
      ...label(opts),
      ...temporal(opts),
      ...(opts.shape !== undefined ? { shape: [...opts.shape] } : {}),
    });
  }

  /** A sampled node: its value comes from the batch, its log-probability from `distribution`. */
  stochastic<const M extends string, const P extends readonly Ref<N | M>[], const F extends Family>(
    name: M,
    opts: StochasticOptions<N | M, P, F>,
  ) {
    const impl: NodeImpl | undefined =
      opts.distribution !== undefined
        ? { kind: 'distribution', fn: opts.distribution as (p: ParentValues, c: NodeContext) => DistributionParams }
        : undefined;
    return this.add<M, Pending | Exclude<LaggedNames<P[number]>, N | M>>(
      { kind: 'stochastic', name, parents: refs(opts.parents), family: opts.family, ...label(opts), ...temporal(opts) },
      impl,
    );
  }

  /** A deterministic function of its parents (or a value read from the batch if `fn` is absent). */
  deterministic<const M extends string, const P extends readonly Ref<N | M>[]>(name: M, opts: ValueOptions<N | M, P>) {
    return this.add<M, Pending | Exclude<LaggedNames<P[number]>, N | M>>(
      {
        kind: 'deterministic',
        name,
        parents: refs(opts.parents),
        ...label(opts),
        ...temporal(opts),
        ...(opts.shape !== undefined ? { shape: [...opts.shape] } : {}),
      },
      valueImpl(opts.fn),
    );
  }

  /** A cost: its values (per sample, or per step if temporal) are summed into the objective, which is maximised. */
  cost<const M extends string, const P extends readonly Ref<N | M>[]>(name: M, opts: Omit<ValueOptions<N | M, P>, 'shape'>) {
    return this.add<M, Pending | Exclude<LaggedNames<P[number]>, N | M>>(
      { kind: 'cost', name, parents: refs(opts.parents), ...label(opts), ...temporal(opts) },
      valueImpl(opts.fn),
    );
  }

  /** The finished graph. A type error while a lagged parent names an undeclared node. */
  build(..._check: PendingCheck<N, Pending>): Graph<N> {
    // The same check at run time, for callers without the type-checker (plain JavaScript, `as any`).
    const declared = new Set(this.nodes.map((n) => n.name));
    const undeclared = this.nodes.flatMap((n) =>
      ('parents' in n ? n.parents : []).filter((p) => !declared.has(p.node)).map((p) => `'${n.name}' → '${p.node}'`),
    );
    if (undeclared.length > 0) throw new UndeclaredParentError(`parents never declared: ${undeclared.join(', ')}`);
    const spec: GraphSpec = {
      nodes: [...this.nodes],
      ...(this.meta.name !== undefined ? { name: this.meta.name } : {}),
      ...(this.meta.horizon !== undefined ? { horizon: this.meta.horizon } : {}),
    };
    return { spec, impls: this.impls };
  }
}

/** Starts an empty graph. */
export const scg = (meta: { readonly name?: string; readonly horizon?: number } = {}): GraphBuilder =>
  GraphBuilder.create(meta);

const refs = (ps: readonly (string | Lagged)[]): ParentRef[] =>
  ps.map((p) => (typeof p === 'string' ? { node: p, lag: 0 } : { node: p.node, lag: p.lag }));
const label = (o: { readonly label?: string }) => (o.label !== undefined ? { label: o.label } : {});
const temporal = (o: Common) => (o.temporal === true ? { temporal: true } : {});
const valueImpl = (fn: ((p: never, c: NodeContext) => tf.Tensor) | undefined): NodeImpl | undefined =>
  fn !== undefined ? { kind: 'value', fn: fn as (p: ParentValues, c: NodeContext) => tf.Tensor } : undefined;

/** Attaches functions to a structure read from a file (nodes without a function read the batch). */
export const graphOf = (spec: GraphSpec, impls: ReadonlyMap<string, NodeImpl>): Graph => ({ spec, impls });
