/**
 * An RL task as a graph, declared once per time step: the environment's state s_t (sampled outside,
 * carrying influence from s_{t−1} and a_{t−1}), the policy's action a_t ~ π_θ(·|s_t), the reward r_t.
 * Every algorithm compiles its objectives from this graph; none writes a loss by hand.
 */
import type { Policy } from './policy.ts';
import type * as tf from '@tensorflow/tfjs';
import { graphOf, type Graph, type NodeImpl, type ParentValues } from '../scg/builder.ts';
import type { Family, GraphSpec } from '../scg/spec.ts';
import type { Params } from '../surrogates/batch.ts';

/**
 * How the policy node's log-probability is computed and differentiated: `fused`, the policy's own ops
 * with derivative kernels (its log-probability to order 2, Policy.fusedLogProb; its distribution, which
 * only divergences read, to order 1, Policy.fusedDistribution), or `tfjs`, the general path through its
 * distribution (any order). A policy without fused ops always takes the general path.
 */
export type PolicyEngine = 'fused' | 'tfjs';
export const policyEngines: readonly PolicyEngine[] = ['fused', 'tfjs'];

/** The name of the single parameter node of a graph on the packed policy parameters (`graphParameters`). */
export const packedParameter = 'theta';

/**
 * How the policy's named parameters (`Policy.paramShapes`, what optimisers, checkpoints and samplers
 * hold) map to the parameter nodes of `rlGraph(policy, …, engine)`: the same record (engine "tfjs", or
 * a policy without fused ops), or, on the fused engine, the single node `theta` holding them all packed
 * (Policy.packed) — so that an inner step is one op on one tensor. Both directions are differentiable.
 */
export interface GraphParameters {
  readonly packed: boolean;
  readonly toGraph: (params: Params) => Params;
  readonly fromGraph: (graphParams: Params) => Params;
}

export const graphParameters = (policy: Policy, engine: PolicyEngine): GraphParameters => {
  const packed = engine === 'fused' ? policy.packed : undefined;
  if (packed === undefined) return { packed: false, toGraph: (p) => p, fromGraph: (g) => g };
  return {
    packed: true,
    toGraph: (p) => ({ [packedParameter]: packed.pack(p) }),
    fromGraph: (g) => {
      const theta = g[packedParameter];
      if (theta === undefined) throw new RangeError(`graph parameters without '${packedParameter}' (have: ${Object.keys(g).join(', ')})`);
      return packed.unpack(theta);
    },
  };
};

export const rlGraph = (policy: Policy, name = 'rl-task', engine: PolicyEngine = 'tfjs'): Graph => {
  const packed = engine === 'fused' ? policy.packed : undefined;
  const fused = engine === 'fused' ? policy.fusedLogProb : undefined;
  // Its divergences (ProMP's KL penalty) need the first derivative only: the fused output op.
  const distribution = (engine === 'fused' ? policy.fusedDistribution : undefined) ?? policy.distribution;
  const paramNames = packed === undefined ? Object.keys(policy.paramShapes) : [packedParameter];
  const shapeOf = (p: string): number[] => (packed === undefined ? [...policy.paramShapes[p]!] : [packed.size]);
  const family: Family =
    policy.action.kind === 'continuous' ? { type: 'gaussian', dim: policy.action.dim } : { type: 'categorical', categories: policy.action.n };
  const spec: GraphSpec = {
    name,
    nodes: [
      ...paramNames.map((p) => ({ kind: 'parameter' as const, name: p, shape: shapeOf(p), ...(packed === undefined ? {} : { label: 'θ' }) })),
      {
        kind: 'stochastic' as const,
        name: 's',
        label: 's_t',
        temporal: true,
        family: { type: 'external' as const },
        parents: [
          { node: 's', lag: 1 },
          { node: 'a', lag: 1 },
        ],
      },
      {
        kind: 'stochastic' as const,
        name: 'a',
        label: 'a_t',
        temporal: true,
        family,
        parents: [{ node: 's', lag: 0 }, ...paramNames.map((p) => ({ node: p, lag: 0 }))],
      },
      { kind: 'cost' as const, name: 'r', label: 'r_t', temporal: true, parents: [{ node: 's', lag: 0 }, { node: 'a', lag: 0 }] },
    ],
  };
  // On the packed graph the policy node reads θ directly; otherwise the named parameters, gathered.
  const named = (values: ParentValues): Params => Object.fromEntries(paramNames.map((p) => [p, values[p]!]));
  const policyNode: NodeImpl =
    packed !== undefined
      ? {
          kind: 'distribution',
          fn: (values) => packed.distribution(values[packedParameter]!, values.s!),
          logProb: (values, actions) => packed.logProb(values[packedParameter]!, values.s!, actions),
          ...(packed.logProbAndDistribution === undefined
            ? {}
            : {
                logProbAndDistribution: (values: ParentValues, actions: tf.Tensor) =>
                  packed.logProbAndDistribution!(values[packedParameter]!, values.s!, actions),
              }),
        }
      : {
          kind: 'distribution',
          fn: (values) => distribution(named(values), values.s!),
          ...(fused === undefined ? {} : { logProb: (values: ParentValues, actions: tf.Tensor) => fused(named(values), values.s!, actions) }),
        };
  const impls = new Map<string, NodeImpl>([['a', policyNode]]);
  return graphOf(spec, impls);
};
