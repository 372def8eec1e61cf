/**
 * How far apart two parameter settings put a graph's sampling distributions, on the states of a batch:
 * the mean over real steps of Σ_w KL(p_w(·|parents; θ_P) ‖ p_w(·|parents; θ_Q)), from each node's
 * family. ProMP's KL penalty and TRPO's trust region are this quantity; it is safe at every order.
 */
import * as tf from '@tensorflow/tfjs';
import { categoricalKl, gaussianKl } from '../ops/index.ts';
import type { DistributionParams, Graph } from '../scg/builder.ts';
import { isTemporal, type NodeSpec } from '../scg/spec.ts';
import { groupMean, groupSum, type Batch, type Params } from './batch.ts';
import { evaluateGraph, type Evaluation } from './evaluate.ts';

const klOf = (node: NodeSpec, p: DistributionParams, q: DistributionParams): tf.Tensor => {
  if ('logits' in p && 'logits' in q) return categoricalKl(p.logits, q.logits);
  // A log-std shared across the batch ([dim]) broadcasts inside gaussianKl's arithmetic, whose gradient
  // sums over the broadcast axes in one kernel; tf.broadcastTo here instead cost a JavaScript loop of
  // B·T slices in its gradient (~12% of a ProMP outer step).
  if ('mean' in p && 'mean' in q) return gaussianKl(p.mean, p.logStd, q.mean, q.logStd);
  throw new Error(`stochastic node '${node.name}': its two distributions are of different families`);
};

/**
 * The distribution parameters of every scored stochastic node under `params` on the batch's states: the
 * P side of `meanKlFrom`, computed once where P is a constant used many times (ProMP's reference policy
 * over its outer steps).
 */
export const distributionsOf = (graph: Graph, params: Params, batch: Batch): Map<string, DistributionParams> => {
  // Distributions only: each log-probability would be a forward pass of the policy, unused here.
  const ev = evaluateGraph(graph, params, batch, { logProbs: false });
  const out = new Map<string, DistributionParams>();
  for (const n of graph.spec.nodes) {
    const d = ev.distributionOf(n.name);
    if (d !== undefined) out.set(n.name, d);
  }
  return out;
};

/** `meanKl` with the P side's distributions given (`distributionsOf`); per group where the batch has groups. */
export const meanKlFrom = (graph: Graph, p: ReadonlyMap<string, DistributionParams>, paramsQ: Params, batch: Batch): tf.Tensor =>
  meanKlOf(graph, p, evaluateGraph(graph, paramsQ, batch, { logProbs: false }), batch);

/**
 * `meanKlFrom` with the Q side an evaluation of the graph on the batch already made (by a caller that
 * evaluated it for something else too: ProMP's inner step, whose policy op then serves both).
 */
export const meanKlOf = (graph: Graph, p: ReadonlyMap<string, DistributionParams>, q: Evaluation, batch: Batch): tf.Tensor => {
  const parts = graph.spec.nodes.flatMap((n) => {
    const dp = p.get(n.name);
    const dq = q.distributionOf(n.name);
    if (dp === undefined || dq === undefined) return [];
    const shape = isTemporal(n) ? [q.size, q.horizon] : [q.size];
    const kl = tf.broadcastTo(klOf(n, dp, dq), shape);
    const groups = batch.groups;
    if (isTemporal(n) && q.mask !== undefined) return [tf.div(groupSum(tf.mul(kl, q.mask), groups), tf.maximum(groupSum(q.mask, groups), 1))];
    return [groupMean(kl, groups)];
  });
  return parts.length === 0 ? (batch.groups === undefined ? tf.scalar(0) : tf.zeros([batch.groups])) : parts.reduce((a, b) => tf.add(a, b));
};

/**
 * Mean over the batch's real steps (and samples) of the summed KL of every scored node: a scalar, or
 * one per group where the batch has groups (Batch.groups).
 */
export const meanKl = (graph: Graph, paramsP: Params, paramsQ: Params, batch: Batch): tf.Tensor =>
  meanKlFrom(graph, distributionsOf(graph, paramsP, batch), paramsQ, batch);
