/**
 * The data a surrogate is evaluated on, and its check at the boundary. A batch holds B samples: per
 * node, a tensor [B, ...] for a per-sample node and [B, T, ...] for a temporal one; `mask` [B, T]
 * marks the real steps of trajectories of different lengths (1) and the padding after them (0).
 */
import * as tf from '@tensorflow/tfjs';
import type { Graph } from '../scg/builder.ts';
import { isTemporal, type NodeSpec } from '../scg/spec.ts';

export interface Batch {
  /** Values of inputs, stochastic nodes (the samples), and of deterministic nodes and costs without a function. */
  readonly values: Readonly<Record<string, tf.Tensor>>;
  /** [B, T]: 1 on a trajectory's real steps, 0 on padding. Absent: every step is real. */
  readonly mask?: tf.Tensor;
  /** Baseline values per stochastic node, for estimators whose baselines come from data. */
  readonly baselines?: Readonly<Record<string, tf.Tensor>>;
  /**
   * The log-probability of each sampled value under the policy that sampled it, per stochastic node
   * ([B] or [B, T]): the reference of estimators with `reference: 'behaviour'` (importance ratios).
   */
  readonly behaviour?: Readonly<Record<string, tf.Tensor>>;
  /**
   * Advantage estimates per stochastic node ([B] or [B, T]), e.g. GAE normalised per task. Where given,
   * they replace the Q_w − b_w that the compiler would derive from the costs and baselines, in the
   * estimators that weight a node's score by it (PGT, LVC, Loaded DiCE); DiCE and its baseline forms
   * always use the costs themselves.
   */
  readonly advantages?: Readonly<Record<string, tf.Tensor>>;
  /**
   * The samples are this many equal groups stacked along B (several tasks' batches in one, each with
   * its own parameters: a θ of as many blocks — src/ops/mlp/kernels.ts), and parameters take one value
   * per group ([groups, ...declared]). Where given, the meta-objective's means and sums over the batch
   * (meta-objective.ts: `weightedMean`, E-MAML's score term) and the divergences (divergence.ts
   * `meanKl`) are one per group: [groups] vectors. A compiled surrogate's `perSample` is per sample
   * either way, and its `objective` the mean over all samples. Absent: one group, and scalars.
   */
  readonly groups?: number;
}

/** Parameter values by name. */
export type Params = Readonly<Record<string, tf.Tensor>>;

export class BatchError extends Error {
  override readonly name = 'BatchError';
}

/** Whether a node's value must come from the batch (it has no function to compute it). */
export const readsBatch = (graph: Graph, n: NodeSpec): boolean =>
  n.kind === 'input' || n.kind === 'stochastic' || ((n.kind === 'deterministic' || n.kind === 'cost') && !graph.impls.has(n.name));

/** The batch size and horizon a batch implies, checked against every value's leading dimensions. */
export const batchDimensions = (graph: Graph, batch: Batch): { readonly size: number; readonly horizon: number } => {
  let size: number | undefined;
  let horizon: number | undefined;
  const problems: string[] = [];
  const expect = (what: string, shape: readonly number[], temporal: boolean) => {
    const [b, t] = shape;
    if (b === undefined || (temporal && t === undefined)) {
      problems.push(`${what} has shape [${shape.join(', ')}] but needs ${temporal ? '[B, T, ...]' : '[B, ...]'}`);
      return;
    }
    if (size === undefined) size = b;
    else if (b !== size) problems.push(`${what} has ${b} samples (shape [${shape.join(', ')}]) but the batch has ${size}`);
    if (temporal) {
      if (horizon === undefined) horizon = t;
      else if (t !== horizon) problems.push(`${what} has ${t} time steps (shape [${shape.join(', ')}]) but the batch has ${horizon}`);
    }
  };
  for (const n of graph.spec.nodes) {
    if (!readsBatch(graph, n)) continue;
    const v = batch.values[n.name];
    if (v === undefined) {
      problems.push(`no value for ${n.kind} node '${n.name}' in the batch`);
      continue;
    }
    expect(`value of '${n.name}'`, v.shape, isTemporal(n));
  }
  if (batch.mask !== undefined) {
    if (batch.mask.rank !== 2) problems.push(`mask has shape [${batch.mask.shape.join(', ')}] but needs [B, T]`);
    else expect('mask', batch.mask.shape, true);
  }
  // Baselines and behaviour log-probabilities: one value per sample (and step) of a stochastic node.
  const perNode = (what: string, record: Readonly<Record<string, tf.Tensor>> | undefined) => {
    for (const [name, b] of Object.entries(record ?? {})) {
      const n = graph.spec.nodes.find((x) => x.name === name);
      if (n === undefined || n.kind !== 'stochastic') {
        problems.push(`${what} given for '${name}', which is not a stochastic node of the graph`);
        continue;
      }
      const temporal = isTemporal(n);
      if (b.rank !== (temporal ? 2 : 1)) problems.push(`${what} of '${name}' has shape [${b.shape.join(', ')}] but needs ${temporal ? '[B, T]' : '[B]'}`);
      else expect(`${what} of '${name}'`, b.shape, temporal);
    }
  };
  perNode('baseline', batch.baselines);
  perNode('behaviour log-probability', batch.behaviour);
  perNode('advantage', batch.advantages);
  const groups = batch.groups;
  if (groups !== undefined && !(Number.isInteger(groups) && groups >= 1 && (size ?? 1) % groups === 0)) {
    problems.push(`groups is ${groups} but must be a whole number ≥ 1 dividing the batch's ${size ?? 1} samples`);
  }
  if (problems.length > 0) throw new BatchError(`bad batch:\n  ${problems.join('\n  ')}`);
  return { size: size ?? 1, horizon: horizon ?? 1 };
};

/**
 * Checks a batch once where it enters (shapes, and that every value is finite), so that evaluation
 * never has to read tensor data. Throws a BatchError naming each offending node.
 */
export const checkBatch = (graph: Graph, batch: Batch): { readonly size: number; readonly horizon: number } => {
  const dims = batchDimensions(graph, batch);
  const bad: string[] = [];
  const finite = (what: string, t: tf.Tensor) => {
    const data = t.dataSync();
    for (let i = 0; i < data.length; i++) {
      const x = data[i]!;
      if (!Number.isFinite(x)) {
        bad.push(`${what} contains ${x} at flat index ${i} (shape [${t.shape.join(', ')}])`);
        return;
      }
    }
  };
  for (const [name, v] of Object.entries(batch.values)) finite(`value of '${name}'`, v);
  if (batch.mask !== undefined) finite('mask', batch.mask);
  for (const [name, b] of Object.entries(batch.baselines ?? {})) finite(`baseline of '${name}'`, b);
  for (const [name, b] of Object.entries(batch.behaviour ?? {})) finite(`behaviour log-probability of '${name}'`, b);
  for (const [name, b] of Object.entries(batch.advantages ?? {})) finite(`advantage of '${name}'`, b);
  if (bad.length > 0) throw new BatchError(`bad batch:\n  ${bad.join('\n  ')}`);
  return dims;
};

/**
 * Σ over the samples of x [B, …]: over each of `groups` equal groups of them ([groups]), or over all
 * (a scalar) when there are none (Batch.groups).
 */
export const groupSum = (x: tf.Tensor, groups: number | undefined): tf.Tensor => (groups === undefined ? tf.sum(x) : tf.sum(tf.reshape(x, [groups, -1]), 1));

/** The mean over the samples of x [B, …], per group as `groupSum`. */
export const groupMean = (x: tf.Tensor, groups: number | undefined): tf.Tensor => (groups === undefined ? tf.mean(x) : tf.mean(tf.reshape(x, [groups, -1]), 1));

/** Shifts a temporal value [B, T, ...] `lag` steps later along time, zero-filling the first steps. */
export const shiftInTime = (v: tf.Tensor, lag: number): tf.Tensor => {
  const T = v.shape[1]!;
  if (lag === 0) return v;
  const pad = Math.min(lag, T);
  const zeroShape = [...v.shape];
  zeroShape[1] = pad;
  const zeros = tf.zeros(zeroShape);
  if (pad === T) return zeros;
  const begin = v.shape.map(() => 0);
  const size = [...v.shape];
  size[1] = T - pad;
  return tf.concat([zeros, tf.slice(v, begin, size)], 1);
};
