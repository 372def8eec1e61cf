/**
 * The "enumerate" interpreter: every joint outcome of a graph whose stochastic nodes are all
 * categorical, as one batch (one sample per outcome), together with the explicitly unrolled graph —
 * each node at each step as its own instance with its own parents. The unrolled ancestry is computed
 * here by plain search, independently of the lag-set influence query the compiler uses, so that the
 * oracle's Hessian terms do not share the compiler's reasoning.
 */
import * as tf from '@tensorflow/tfjs';
import type { Graph } from '../scg/builder.ts';
import { isTemporal, parentsOf, type NodeSpec } from '../scg/spec.ts';
import type { Batch } from '../surrogates/batch.ts';

export class EnumerationError extends Error {
  override readonly name = 'EnumerationError';
}

/** One node at one step (step 0 for a per-sample node). */
export interface Instance {
  readonly node: string;
  readonly step: number;
}

export interface Enumeration {
  /** One sample per joint outcome. */
  readonly batch: Batch;
  readonly outcomes: number;
  readonly horizon: number;
  /** The sampled instances, in the order their digits vary (last fastest). */
  readonly stochastic: readonly Instance[];
  /** Every node instance and the instances it descends from (strict ancestors). */
  readonly ancestors: ReadonlyMap<string, ReadonlySet<string>>;
  readonly instanceKey: (i: Instance) => string;
}

/** The largest number of joint outcomes enumerated before refusing (the batch grows with it). */
export const maxOutcomes = 100_000;

const key = (i: Instance): string => `${i.node}[${i.step}]`;

export const enumerate = (graph: Graph, horizon: number): Enumeration => {
  const nodes = graph.spec.nodes;
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const problems: string[] = [];
  for (const n of nodes) {
    if (n.kind === 'stochastic' && n.family?.type !== 'categorical') {
      const hint = n.family?.type === 'external' ? ' (give its known probabilities as OracleProblem.transitions)' : '';
      problems.push(`stochastic node '${n.name}' is ${n.family?.type ?? 'without a family'}; only categorical nodes can be enumerated${hint}`);
    }
    if (n.kind === 'input') problems.push(`input '${n.name}' has no value to enumerate; declare it as a categorical node or a parameter`);
    if ((n.kind === 'deterministic' || n.kind === 'cost') && !graph.impls.has(n.name)) {
      problems.push(`${n.kind} node '${n.name}' has no function, so its value for each outcome is unknown`);
    }
  }
  if (problems.length > 0) throw new EnumerationError(`cannot enumerate the graph:\n  ${problems.join('\n  ')}`);

  const stepsOf = (n: NodeSpec): number[] => (isTemporal(n) ? Array.from({ length: horizon }, (_, t) => t) : [0]);
  const stochastic: Instance[] = nodes
    .filter((n) => n.kind === 'stochastic')
    .flatMap((n) => stepsOf(n).map((step) => ({ node: n.name, step })));
  const radix = stochastic.map((i): number => {
    const f = byName.get(i.node)!;
    return f.kind === 'stochastic' && f.family?.type === 'categorical' ? f.family.categories : 1;
  });
  const outcomes = radix.reduce((a, b) => a * b, 1);
  if (outcomes > maxOutcomes) {
    throw new EnumerationError(`the graph has ${outcomes} joint outcomes over ${horizon} steps; at most ${maxOutcomes} are enumerated`);
  }

  // Digits of each outcome in mixed radix, last instance fastest.
  const digits = new Map<string, Float32Array>();
  let stride = outcomes;
  stochastic.forEach((inst, i) => {
    const k = radix[i]!;
    stride /= k;
    const column = new Float32Array(outcomes);
    for (let o = 0; o < outcomes; o++) column[o] = Math.floor(o / stride) % k;
    digits.set(key(inst), column);
  });
  const values: Record<string, tf.Tensor> = {};
  for (const n of nodes.filter((x) => x.kind === 'stochastic')) {
    if (isTemporal(n)) {
      const data = new Float32Array(outcomes * horizon);
      for (let t = 0; t < horizon; t++) {
        const column = digits.get(key({ node: n.name, step: t }))!;
        for (let o = 0; o < outcomes; o++) data[o * horizon + t] = column[o]!;
      }
      values[n.name] = tf.tensor2d(data, [outcomes, horizon]);
    } else {
      values[n.name] = tf.tensor1d(digits.get(key({ node: n.name, step: 0 }))!);
    }
  }

  // The unrolled graph: instance → parent instances, then ancestors by memoised search.
  const parentInstances = (n: NodeSpec, step: number): Instance[] =>
    parentsOf(n).flatMap((p) => {
      const parent = byName.get(p.node);
      if (parent === undefined || parent.kind === 'parameter') return [];
      if (!isTemporal(parent)) return [{ node: p.node, step: 0 }];
      const s = step - p.lag;
      return s >= 0 ? [{ node: p.node, step: s }] : [];
    });
  const ancestors = new Map<string, Set<string>>();
  const ancestorsOf = (n: NodeSpec, step: number): Set<string> => {
    const k = key({ node: n.name, step });
    const known = ancestors.get(k);
    if (known !== undefined) return known;
    const result = new Set<string>();
    for (const p of parentInstances(n, step)) {
      result.add(key(p));
      for (const a of ancestorsOf(byName.get(p.node)!, p.step)) result.add(a);
    }
    ancestors.set(k, result);
    return result;
  };
  for (const n of nodes) for (const s of stepsOf(n)) ancestorsOf(n, s);

  return { batch: { values }, outcomes, horizon, stochastic, ancestors, instanceKey: key };
};
