/**
 * How far apart two parameter settings put a graph's sampling distributions, on the states of a batch:
 * the mean over real steps of Σ_w KL(p_w(·|parents; θ_P) ‖ p_w(·|parents; θ_Q)), from each node's
 * family. ProMP's KL penalty and TRPO's trust region are this quantity; it is safe at every order.
 */
import * as tf from '@tensorflow/tfjs';
import { categoricalKl, gaussianKl } from '../ops/index.ts';
import type { DistributionParams, Graph } from '../scg/builder.ts';
import { isTemporal, type NodeSpec } from '../scg/spec.ts';
import type { Batch, Params } from './batch.ts';
import { evaluateGraph } from './evaluate.ts';

const klOf = (node: NodeSpec, p: DistributionParams, q: DistributionParams): tf.Tensor => {
  if ('logits' in p && 'logits' in q) return categoricalKl(p.logits, q.logits);
  // A log-std shared across the batch ([dim]) broadcasts inside gaussianKl's arithmetic, whose gradient
  // sums over the broadcast axes in one kernel; tf.broadcastTo here instead cost a JavaScript loop of
  // B·T slices in its gradient (~12% of a ProMP outer step).
  if ('mean' in p && 'mean' in q) return gaussianKl(p.mean, p.logStd, q.mean, q.logStd);
  throw new Error(`stochastic node '${node.name}': its two distributions are of different families`);
};

/** Mean over the batch's real steps (and samples) of the summed KL of every scored node. */
export const meanKl = (graph: Graph, paramsP: Params, paramsQ: Params, batch: Batch): tf.Scalar => {
  // Distributions only: each log-probability would be a forward pass of the policy, unused here.
  const p = evaluateGraph(graph, paramsP, batch, { logProbs: false });
  const q = evaluateGraph(graph, paramsQ, batch, { logProbs: false });
  const parts = graph.spec.nodes.flatMap((n) => {
    const dp = p.distributionOf(n.name);
    const dq = q.distributionOf(n.name);
    if (dp === undefined || dq === undefined) return [];
    const shape = isTemporal(n) ? [p.size, p.horizon] : [p.size];
    const kl = tf.broadcastTo(klOf(n, dp, dq), shape);
    if (isTemporal(n) && p.mask !== undefined) return [tf.div(tf.sum(tf.mul(kl, p.mask)), tf.maximum(tf.sum(p.mask), 1))];
    return [tf.mean(kl)];
  });
  return (parts.length === 0 ? tf.scalar(0) : parts.reduce((a, b) => tf.add(a, b))) as tf.Scalar;
};
