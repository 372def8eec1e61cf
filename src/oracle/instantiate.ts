/**
 * Gives a graph read from a file (structure only) concrete functions, so that the oracle can check the
 * estimators on the user's own structure. Every function is a fixed random linear map of its parents'
 * features — one-hot encodings of categorical parents, the values of real-valued ones, the flattened
 * parameters — seeded by the node's name, so the same file always yields the same numbers.
 */
import * as tf from '@tensorflow/tfjs';
import type { NodeImpl, ParentValues } from '../scg/builder.ts';
import { graphOf, parentKey } from '../scg/builder.ts';
import { parentsOf, type GraphSpec, type NodeSpec } from '../scg/spec.ts';
import type { BaselineSource } from '../surrogates/estimators.ts';
import { seededUniform } from '../random.ts';
import type { BuiltinProblem } from './problems.ts';

export class InstantiationError extends Error {
  override readonly name = 'InstantiationError';
}

/** FNV-1a: a stable seed from a name. */
const seedOf = (s: string): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
};

const randomNumbers = (n: number, seed: string, scale = 1): number[] => {
  const u = seededUniform(seedOf(seed));
  return Array.from({ length: n }, () => scale * (2 * u() - 1));
};

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** How many features a parent contributes, and how to compute them from its value. */
const featureWidth = (parent: NodeSpec): number => {
  if (parent.kind === 'stochastic' && parent.family?.type === 'categorical') return parent.family.categories;
  if (parent.kind === 'parameter') return size(parent.shape);
  return 1;
};

const features = (parent: NodeSpec, value: tf.Tensor): tf.Tensor => {
  if (parent.kind === 'stochastic' && parent.family?.type === 'categorical') {
    return tf.oneHot(tf.cast(value, 'int32'), parent.family.categories);
  }
  if (parent.kind === 'parameter') return tf.reshape(value, [-1]);
  return tf.expandDims(value, -1);
};

/** Σ over parents of features(parent) · W_parent, giving [..., width]. */
const linearOfParents = (node: NodeSpec, byName: ReadonlyMap<string, NodeSpec>, width: number, salt: string) => {
  const weights = parentsOf(node).map((p) => {
    const parent = byName.get(p.node)!;
    const rows = featureWidth(parent);
    return { ref: p, parent, matrix: randomNumbers(rows * width, `${salt}:${node.name}:${parentKey(p)}`, 1), rows };
  });
  const bias = randomNumbers(width, `${salt}:${node.name}:bias`, 0.5);
  return (values: ParentValues): tf.Tensor =>
    weights.reduce<tf.Tensor>(
      (acc, w) => tf.add(acc, tf.matMul(tf.reshape(features(w.parent, values[parentKey(w.ref)]!), [-1, w.rows]), tf.tensor2d(w.matrix, [w.rows, width])).reshape([
        ...(w.parent.kind === 'parameter' ? [] : values[parentKey(w.ref)]!.shape),
        width,
      ])),
      tf.tensor1d(bias),
    );
};

/** A problem the oracle can verify, built from a file's structure. */
export const instantiate = (spec: GraphSpec, name: string): BuiltinProblem => {
  const byName = new Map(spec.nodes.map((n) => [n.name, n]));
  const impls = new Map<string, NodeImpl>();
  const baselines: Record<string, BaselineSource> = {};
  for (const n of spec.nodes) {
    if (n.kind === 'stochastic') {
      if (n.family?.type !== 'categorical') {
        throw new InstantiationError(`'${n.name}' is ${n.family?.type ?? 'without a family'}: verify needs every stochastic node to be categorical`);
      }
      const logits = linearOfParents(n, byName, n.family.categories, 'logits');
      impls.set(n.name, { kind: 'distribution', fn: (values) => ({ logits: logits(values) }) });
      // The baseline sees the same parents but never the parameters, like a fitted value function.
      const withoutParameters: NodeSpec = { ...n, parents: n.parents.filter((p) => byName.get(p.node)?.kind !== 'parameter') };
      const baseline = linearOfParents(withoutParameters, byName, 1, 'baseline');
      baselines[n.name] = (values) => tf.squeeze(baseline(values), [-1]);
    } else if (n.kind === 'deterministic' || n.kind === 'cost') {
      const value = linearOfParents(n, byName, 1, n.kind);
      impls.set(n.name, { kind: 'value', fn: (values) => tf.squeeze(value(values), [-1]) });
    } else if (n.kind === 'input') {
      throw new InstantiationError(`input '${n.name}' has no value to enumerate; declare it as a categorical stochastic node`);
    }
  }
  const params = Object.fromEntries(
    spec.nodes
      .filter((n) => n.kind === 'parameter')
      .map((n) => [n.name, { shape: n.shape, values: randomNumbers(size(n.shape), `theta:${n.name}`, 0.8) }]),
  );
  return {
    name,
    description: `${spec.nodes.length} nodes, every function a fixed random linear map of its parents`,
    graph: graphOf(spec, impls),
    horizon: spec.horizon ?? 3,
    params,
    baselines,
  };
};
