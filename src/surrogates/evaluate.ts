/**
 * The "run" interpreter: evaluates a graph's nodes on a batch — values, the log-probability of every
 * sampled value, every cost — as tensors connected to the parameters, so that any derivative can be
 * taken through them. It reads no tensor data (that would break inside tf.grad and cost time); the
 * batch is checked where it enters (`checkBatch`).
 */
import * as tf from '@tensorflow/tfjs';
import { categoricalLogProb, gaussianLogProb } from '../ops/index.ts';
import { parentKey, type DistributionParams, type Graph, type NodeContext, type ParentValues } from '../scg/builder.ts';
import { isTemporal, parentsOf, type Family, type NodeSpec } from '../scg/spec.ts';
import { batchDimensions, shiftInTime, type Batch, type Params } from './batch.ts';

export interface Evaluation {
  readonly size: number;
  /** Number of time steps (1 when the graph has no temporal node). */
  readonly horizon: number;
  readonly values: ReadonlyMap<string, tf.Tensor>;
  /** A node's parent values, as its function receives them (computed on first request: most nodes never need them). */
  readonly parentValuesOf: (n: NodeSpec) => ParentValues;
  /**
   * Log-probability of each sampled value, [B] or [B, T] (zero on padding); not for `external` nodes;
   * empty when evaluated with `logProbs: false`.
   */
  readonly logProbs: ReadonlyMap<string, tf.Tensor>;
  /** Each cost's values, [B] or [B, T] (zero on padding). */
  readonly costs: ReadonlyMap<string, tf.Tensor>;
  /**
   * The distribution parameters of a scored stochastic node, as its function returns them (computed
   * on first request: a node with its own log-probability needs them only for divergences).
   */
  readonly distributionOf: (name: string) => DistributionParams | undefined;
  /** [B, T] or undefined. */
  readonly mask: tf.Tensor | undefined;
  /** What a node's function is told besides its parents (its time steps). */
  readonly contextOf: (n: NodeSpec) => NodeContext;
}

export class EvaluationError extends Error {
  override readonly name = 'EvaluationError';
}

/** Lag-0 topological order (validation guarantees that lag-0 edges are acyclic). */
export const topologicalOrder = (nodes: readonly NodeSpec[]): NodeSpec[] => {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const order: NodeSpec[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (n: NodeSpec) => {
    const s = state.get(n.name);
    if (s === 'done') return;
    if (s === 'visiting') throw new EvaluationError(`cycle through '${n.name}' in same-step edges`);
    state.set(n.name, 'visiting');
    for (const p of parentsOf(n)) {
      const parent = byName.get(p.node);
      if (p.lag === 0 && parent !== undefined) visit(parent);
    }
    state.set(n.name, 'done');
    order.push(n);
  };
  nodes.forEach(visit);
  return order;
};

const logProbOf = (name: string, family: Family, value: tf.Tensor, params: DistributionParams): tf.Tensor => {
  switch (family.type) {
    case 'categorical':
      if (!('logits' in params)) throw new EvaluationError(`stochastic node '${name}' is categorical: its distribution must return { logits }`);
      return categoricalLogProb(params.logits, value);
    case 'gaussian':
      if (!('mean' in params)) throw new EvaluationError(`stochastic node '${name}' is Gaussian: its distribution must return { mean, logStd }`);
      return gaussianLogProb(value, params.mean, params.logStd);
    case 'external':
      throw new EvaluationError(`stochastic node '${name}' is external: it has no log-probability`);
    case 'trajectory':
      throw new EvaluationError(`stochastic node '${name}' stands for whole trajectories (a meta-level graph): the meta-objective computes it, not evaluateGraph`);
  }
};

/** Broadcasts a per-sample or per-step result to exactly [B] or [B, T], or says why it cannot. */
const toSampleShape = (what: string, x: tf.Tensor, shape: readonly number[]): tf.Tensor => {
  const same = x.rank === shape.length && x.shape.every((d, i) => d === shape[i]);
  if (same) return x;
  const broadcastable =
    x.rank <= shape.length && x.shape.every((d, i) => d === 1 || d === shape[shape.length - x.rank + i]);
  if (!broadcastable) {
    throw new EvaluationError(`${what} has shape [${x.shape.join(', ')}], which does not fit [${shape.join(', ')}]`);
  }
  return tf.broadcastTo(x, [...shape]);
};

/** What an evaluation computes besides values and costs. */
export interface EvaluationOptions {
  /**
   * Whether to compute each sampled value's log-probability (default true). A caller that reads only
   * distributions (a divergence) turns it off: a policy's log-probability is a forward pass of its
   * network, wasted there.
   */
  readonly logProbs?: boolean;
  /**
   * Whether the caller reads distributions too (`distributionOf`) besides the log-probabilities: a node
   * that can compute both at once (`logProbAndDistribution`: a policy's fused op, one backward pass for
   * both) then does. Default false: distributions are computed when first asked for.
   */
  readonly distributions?: boolean;
}

/**
 * Evaluates every node. Must run inside tf.tidy or a gradient function: it creates intermediate
 * tensors that the caller's scope disposes.
 */
export const evaluateGraph = (graph: Graph, params: Params, batch: Batch, options: EvaluationOptions = {}): Evaluation => {
  const withLogProbs = options.logProbs ?? true;
  const { size, horizon } = batchDimensions(graph, batch);
  const values = new Map<string, tf.Tensor>();
  const parentValues = new Map<string, ParentValues>();
  const logProbs = new Map<string, tf.Tensor>();
  const costs = new Map<string, tf.Tensor>();
  const distributions = new Map<string, DistributionParams>();
  const distributionMakers = new Map<string, () => DistributionParams>();
  const byName = new Map(graph.spec.nodes.map((n) => [n.name, n]));
  const mask = batch.mask;

  // Values the batch supplies are known before anything is computed, so lagged references to them
  // (s_{t−1}, a_{t−1}) resolve regardless of declaration order.
  for (const n of graph.spec.nodes) {
    if (n.kind === 'parameter') {
      const p = params[n.name];
      if (p === undefined) throw new EvaluationError(`no value for parameter '${n.name}'`);
      // A batch of groups (stacked tasks) takes one value per group: [groups, ...declared].
      const declared = batch.groups === undefined ? n.shape : [batch.groups, ...n.shape];
      if (p.rank !== declared.length || p.shape.some((d, i) => d !== declared[i])) {
        const perGroup = batch.groups === undefined ? '' : ` (one value per group of the batch's ${batch.groups}: [${declared.join(', ')}])`;
        throw new EvaluationError(`parameter '${n.name}' has shape [${p.shape.join(', ')}] but is declared [${n.shape.join(', ')}]${perGroup}`);
      }
      values.set(n.name, p);
    } else if (!graph.impls.has(n.name) || n.kind === 'stochastic') {
      const v = batch.values[n.name];
      if (v !== undefined) values.set(n.name, v);
    }
  }

  const parentsFor = (n: NodeSpec): ParentValues => {
    const known = parentValues.get(n.name);
    if (known !== undefined) return known;
    const out: Record<string, tf.Tensor> = {};
    const childTemporal = isTemporal(n);
    for (const p of parentsOf(n)) {
      const parent = byName.get(p.node)!;
      const v = values.get(p.node);
      if (v === undefined) {
        throw new EvaluationError(
          `node '${n.name}' needs '${parentKey(p)}' before it is computed: a node computed from its own past is recurrent, ` +
            `which magicbox does not evaluate step by step — supply '${p.node}' in the batch instead`,
        );
      }
      let x = p.lag > 0 ? shiftInTime(v, p.lag) : v;
      // A per-sample parent of a per-step node gets a length-1 time axis so that it broadcasts over steps;
      // a value without a batch axis (a scalar computed from parameters only) broadcasts as it is.
      if (childTemporal && parent.kind !== 'parameter' && !isTemporal(parent) && x.rank > 0) x = tf.expandDims(x, 1);
      out[parentKey(p)] = x;
    }
    parentValues.set(n.name, out);
    return out;
  };

  // Built on first use: few functions read the step, and an unused tensor still costs a kernel.
  const lazyContext = (make: () => tf.Tensor): NodeContext => {
    let step: tf.Tensor | undefined;
    return {
      get step() {
        step ??= make();
        return step;
      },
    };
  };
  const perStep = lazyContext(() => tf.reshape(tf.range(0, horizon), [1, horizon]));
  const perSample = lazyContext(() => tf.scalar(0));
  const contextOf = (n: NodeSpec): NodeContext => (isTemporal(n) ? perStep : perSample);
  for (const n of topologicalOrder(graph.spec.nodes)) {
    if (n.kind === 'parameter' || n.kind === 'input') continue;
    const context = contextOf(n);
    const sampleShape = isTemporal(n) ? [size, horizon] : [size];
    const impl = graph.impls.get(n.name);
    if (n.kind === 'stochastic') {
      if (n.family === undefined || n.family.type === 'external') continue;
      if (impl?.kind !== 'distribution') throw new EvaluationError(`stochastic node '${n.name}' has no distribution function`);
      const family = n.family;
      const distribution = () => {
        let d = distributions.get(n.name);
        if (d === undefined) distributions.set(n.name, (d = impl.fn(parentsFor(n), context)));
        return d;
      };
      distributionMakers.set(n.name, distribution);
      if (!withLogProbs) continue;
      const value = values.get(n.name)!;
      const both =
        options.distributions === true && impl.logProbAndDistribution !== undefined ? impl.logProbAndDistribution(parentsFor(n), value, context) : undefined;
      if (both !== undefined) distributions.set(n.name, both.distribution);
      const logProb =
        both !== undefined
          ? both.logProb
          : impl.logProb === undefined
            ? logProbOf(n.name, family, value, distribution())
            : impl.logProb(parentsFor(n), value, context);
      const lp = toSampleShape(`log-probability of '${n.name}'`, logProb, sampleShape);
      logProbs.set(n.name, mask !== undefined && isTemporal(n) ? tf.mul(lp, mask) : lp);
      continue;
    }
    let value = values.get(n.name);
    if (impl !== undefined) {
      if (impl.kind !== 'value') throw new EvaluationError(`node '${n.name}' has a distribution but is ${n.kind}`);
      value = impl.fn(parentsFor(n), context);
      values.set(n.name, value);
    }
    if (value === undefined) throw new EvaluationError(`no value for ${n.kind} node '${n.name}'`);
    if (n.kind === 'cost') {
      const c = toSampleShape(`cost '${n.name}'`, value, sampleShape);
      costs.set(n.name, mask !== undefined && isTemporal(n) ? tf.mul(c, mask) : c);
    }
  }
  const distributionOf = (name: string): DistributionParams | undefined => distributionMakers.get(name)?.();
  return { size, horizon, values, parentValuesOf: parentsFor, logProbs, costs, distributionOf, mask, contextOf };
};
