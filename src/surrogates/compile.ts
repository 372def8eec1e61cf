/**
 * The compiler: (graph, estimator) → surrogate(params, batch). Every estimator is assembled from the
 * same three ingredients, all derived from the graph's influence query:
 *
 *   ℓ_w    the log-probability of each sampled node w (per step for temporal nodes);
 *   S_y    Σ of ℓ_w over the stochastic nodes w that influence y (a cost, or another stochastic node),
 *          each moved along time by its influence set (a cumulative sum for an RL chain);
 *   Q_w    Σ of the costs that w influences, moved back along time (the reward-to-go for an RL chain).
 *
 * No estimator is written as an RL special case: an RL trajectory, a static DAG or a graph mixing
 * per-sample and per-step nodes all go through the same rule.
 */
import * as tf from '@tensorflow/tfjs';
import { exp, magicBox, stopGradient } from '../ops/index.ts';
import type { Graph } from '../scg/builder.ts';
import { influenceQuery, type Influence, type InfluenceQuery } from '../scg/influence.ts';
import { isTemporal, type NodeSpec } from '../scg/spec.ts';
import { validateGraph } from '../scg/validate.ts';
import { BatchError, type Batch, type Params } from './batch.ts';
import { estimatorName, type Baselines, type CustomEstimator, type Estimator, type EstimatorKit } from './estimators.ts';
import { evaluateGraph, type Evaluation } from './evaluate.ts';
import { timeOperator } from './time-operator.ts';

export interface Surrogate {
  readonly graph: Graph;
  readonly estimator: Estimator;
  /**
   * The surrogate of each sample, [B]. Call inside tf.tidy or a gradient function. `evaluation`: the
   * graph already evaluated at these parameters on this batch (`evaluateGraph`), by a caller that reads
   * it too; else it is evaluated here.
   */
  readonly perSample: (params: Params, batch: Batch, evaluation?: Evaluation) => tf.Tensor1D;
  /** The mean over the batch: the scalar whose derivatives are the estimator's. */
  readonly objective: (params: Params, batch: Batch) => tf.Scalar;
}

export class GraphError extends Error {
  override readonly name = 'GraphError';
  constructor(
    message: string,
    readonly problems: readonly string[],
  ) {
    super(message);
  }
}

/** Refuses a graph with structural problems, or whose functions do not match its structure. */
export const assertCompilable = (graph: Graph): void => {
  const problems = validateGraph(graph.spec).map((p) => p.message);
  for (const n of graph.spec.nodes) {
    const impl = graph.impls.get(n.name);
    if (n.kind === 'stochastic' && n.family !== undefined && n.family.type !== 'external' && impl?.kind !== 'distribution') {
      problems.push(`stochastic node '${n.name}' (${n.family.type}) has no distribution function`);
    }
    if (impl !== undefined && (n.kind === 'parameter' || n.kind === 'input')) {
      problems.push(`${n.kind} node '${n.name}' cannot have a function`);
    }
  }
  for (const name of graph.impls.keys()) {
    if (!graph.spec.nodes.some((n) => n.name === name)) problems.push(`a function is given for '${name}', which is not a node`);
  }
  if (problems.length > 0) {
    throw new GraphError(`the graph${graph.spec.name ? ` '${graph.spec.name}'` : ''} cannot be compiled:\n  ${problems.join('\n  ')}`, problems);
  }
};

/** [1, T]: 1 at steps t ≥ from, 0 before. */
const stepsFrom = (from: number, horizon: number): tf.Tensor =>
  tf.tensor2d([Array.from({ length: horizon }, (_, t) => (t >= from ? 1 : 0))]);

/** Sums a [B] or [B, T] tensor to [B]. */
const perSampleSum = (x: tf.Tensor): tf.Tensor => (x.rank === 2 ? tf.sum(x, 1) : x);

/** x's contribution at y's steps, where x (a quantity living on source's steps) influences y as `inf` says. */
const carryForward = (inf: Influence, x: tf.Tensor, decay: number, horizon: number): tf.Tensor | undefined => {
  switch (inf.kind) {
    case 'none':
      return undefined;
    case 'same':
      return x;
    case 'broadcast':
      return inf.fromStep === 0 ? tf.expandDims(x, 1) : tf.mul(tf.expandDims(x, 1), stepsFrom(inf.fromStep, horizon));
    case 'lags':
      return timeOperator(inf.lags, decay).forward(x);
  }
};

/** y's values gathered back onto the source's steps (the transpose of carryForward). */
const carryBackward = (inf: Influence, y: tf.Tensor): tf.Tensor | undefined => {
  switch (inf.kind) {
    case 'none':
      return undefined;
    case 'same':
      return y;
    case 'broadcast':
      return tf.sum(inf.fromStep === 0 ? y : tf.mul(y, stepsFrom(inf.fromStep, y.shape[1]!)), 1);
    case 'lags':
      return timeOperator(inf.lags).backward(y);
  }
};

/** The sum of the contributions that exist ([B] and [B, 1] terms broadcast against [B, T] ones), or undefined. */
const sumAll = (xs: ReadonlyArray<tf.Tensor | undefined>): tf.Tensor | undefined => {
  const present = xs.filter((x): x is tf.Tensor => x !== undefined);
  return present.length === 0 ? undefined : present.reduce((a, b) => tf.add(a, b));
};

/** What the terms of one evaluation are built from. */
interface Ingredients {
  readonly evaluation: Evaluation;
  readonly query: InfluenceQuery;
  /** Stochastic nodes that have a log-probability, in declaration order. */
  readonly scored: readonly NodeSpec[];
  readonly costNodes: readonly NodeSpec[];
  /** Costs computed by a function (which may depend on the parameters), not read from the batch. */
  readonly computedCosts: ReadonlySet<string>;
  /** The behaviour policy's log-probabilities (masked), when □ is measured against them. */
  readonly behaviour: ReadonlyMap<string, tf.Tensor> | undefined;
}

/** Which log-probabilities a credit is summed from: the current ones, or the behaviour policy's. */
type LogProbSource = 'current' | 'behaviour';

const logProbsOf = (ing: Ingredients, source: LogProbSource): ReadonlyMap<string, tf.Tensor> =>
  source === 'current' ? ing.evaluation.logProbs : ing.behaviour!;

/**
 * □ of a credit: exp(S − ⊥S) on-policy; exp(S − S_behaviour) against the behaviour policy, where
 * `behaviourOf` builds the same combination of the behaviour log-probabilities.
 */
const boxOf = (ing: Ingredients, current: tf.Tensor, behaviourOf: (source: LogProbSource) => tf.Tensor | undefined): tf.Tensor =>
  ing.behaviour === undefined ? magicBox(current) : exp(tf.sub(current, behaviourOf('behaviour')!));

/** S_y: the credit of every scored node that influences `target`, each discounted by decay^lag. */
const creditInto = (ing: Ingredients, target: string, decay = 1, source: LogProbSource = 'current'): tf.Tensor | undefined =>
  sumAll(ing.scored.map((w) => carryForward(ing.query.influence(w.name, target), logProbsOf(ing, source).get(w.name)!, decay, ing.evaluation.horizon)));

/** Q_w: the costs `w` influences, gathered onto w's steps. */
const costsInfluencedBy = (ing: Ingredients, w: string): tf.Tensor | undefined =>
  sumAll(ing.costNodes.map((c) => carryBackward(ing.query.influence(w, c.name), ing.evaluation.costs.get(c.name)!)));

const baselineOf = (ing: Ingredients, baselines: Baselines | undefined, batch: Batch, w: NodeSpec): tf.Tensor | undefined => {
  const source = baselines?.[w.name];
  if (source === undefined) return undefined;
  const raw = source === 'batch' ? batch.baselines?.[w.name] : source(ing.evaluation.parentValuesOf(w), ing.evaluation.contextOf(w));
  if (raw === undefined) throw new BatchError(`the estimator reads the baseline of '${w.name}' from the batch, but the batch has none`);
  const shape = isTemporal(w) ? [ing.evaluation.size, ing.evaluation.horizon] : [ing.evaluation.size];
  // A function may return [B, T, 1] (a one-output network): drop trailing unit axes, then broadcast.
  let trimmed = raw;
  while (trimmed.rank > shape.length && trimmed.shape[trimmed.rank - 1] === 1) trimmed = tf.squeeze(trimmed, [trimmed.rank - 1]);
  const b = tf.broadcastTo(trimmed, shape);
  const masked = ing.evaluation.mask !== undefined && isTemporal(w) ? tf.mul(b, ing.evaluation.mask) : b;
  return stopGradient(masked);
};

/** ⊥(Q_w − b_w): the (advantage-like) weight of w's score, a constant; advantages in the batch take precedence. */
const weightOf = (ing: Ingredients, baselines: Baselines | undefined, batch: Batch, w: NodeSpec): tf.Tensor | undefined => {
  const given = batch.advantages?.[w.name];
  if (given !== undefined) return stopGradient(ing.evaluation.mask !== undefined && isTemporal(w) ? tf.mul(given, ing.evaluation.mask) : given);
  const q = costsInfluencedBy(ing, w.name);
  const b = baselineOf(ing, baselines, batch, w);
  if (q === undefined && b === undefined) return undefined;
  const advantage = b === undefined ? q! : q === undefined ? tf.neg(b) : tf.sub(q, b);
  return stopGradient(advantage);
};

/**
 * Σ_c c for costs that may depend on the parameters directly; `pathwiseOnly` keeps just their
 * derivative (c − ⊥c, which evaluates to 0). A cost read from the batch has no such derivative, so it
 * is left out of the pathwise form rather than adding a term that is zero at every order.
 */
const directCosts = (ing: Ingredients, pathwiseOnly: boolean): tf.Tensor[] =>
  ing.costNodes
    .filter((c) => !pathwiseOnly || ing.computedCosts.has(c.name))
    .map((c) => {
      const v = ing.evaluation.costs.get(c.name)!;
      return perSampleSum(pathwiseOnly ? tf.sub(v, stopGradient(v)) : v);
    });

const one = (): tf.Tensor => tf.scalar(1);

/** The ingredients of one evaluation, as a custom estimator sees them (the same helpers the built-in ones use). */
const kitOf = (estimator: CustomEstimator, ing: Ingredients, batch: Batch): EstimatorKit => {
  const name = estimator.name;
  const scoredNode = (w: string): NodeSpec => {
    const n = ing.scored.find((x) => x.name === w);
    if (n === undefined) {
      throw new GraphError(`custom estimator '${name}': '${w}' is not a scored stochastic node (scored: ${ing.scored.map((x) => x.name).join(', ') || 'none'})`, []);
    }
    return n;
  };
  const target = (y: string): string => {
    const n = ing.costNodes.find((x) => x.name === y) ?? ing.scored.find((x) => x.name === y);
    if (n === undefined) throw new GraphError(`custom estimator '${name}': '${y}' is neither a cost nor a scored stochastic node`, []);
    return n.name;
  };
  return {
    scored: ing.scored.map((n) => n.name),
    costs: ing.costNodes.map((n) => n.name),
    logProb: (w) => logProbsOf(ing, 'current').get(scoredNode(w).name)!,
    cost: (c) => {
      const v = ing.evaluation.costs.get(c);
      if (v === undefined) throw new GraphError(`custom estimator '${name}': '${c}' is not a cost node`, []);
      return v;
    },
    credit: (y, decay = 1) => creditInto(ing, target(y), decay),
    costsInfluencedBy: (w) => costsInfluencedBy(ing, scoredNode(w).name),
    baseline: (w) => baselineOf(ing, estimator.baselines, batch, scoredNode(w)),
    weight: (w) => weightOf(ing, estimator.baselines, batch, scoredNode(w)),
    box: (w) => {
      const n = scoredNode(w).name;
      return boxOf(ing, logProbsOf(ing, 'current').get(n)!, (src) => logProbsOf(ing, src).get(n)!);
    },
    boxCredit: (y, decay = 1) => {
      const t = target(y);
      const credit = creditInto(ing, t, decay);
      return credit === undefined ? undefined : boxOf(ing, credit, (src) => creditInto(ing, t, decay, src));
    },
    pathwise: () => sumAll(directCosts(ing, true)),
  };
};

/** A custom estimator's terms, each summed to [B]; anything but [B] or [B, T] is refused, naming the term. */
const customTerms = (estimator: CustomEstimator, ing: Ingredients, batch: Batch): tf.Tensor[] =>
  estimator.terms(kitOf(estimator, ing, batch)).flatMap((x, i) => {
    if (x === undefined) return [];
    const { size, horizon } = ing.evaluation;
    const fits = (x.rank === 1 && x.shape[0] === size) || (x.rank === 2 && x.shape[0] === size && x.shape[1] === horizon);
    if (!fits) {
      throw new BatchError(`custom estimator '${estimator.name}': term ${i} has shape [${x.shape.join(', ')}]; a term is [B] or [B, T] = [${size}] or [${size}, ${horizon}]`);
    }
    return [perSampleSum(x)];
  });

/** The per-sample terms of each estimator, every one of them a sum over nodes of the graph. */
const terms = (estimator: Estimator, ing: Ingredients, batch: Batch): tf.Tensor[] => {
  const logProb = (w: NodeSpec, source: LogProbSource = 'current') => logProbsOf(ing, source).get(w.name)!;
  /** □(ℓ_w): w's own likelihood ratio. */
  const boxSelf = (w: NodeSpec) => boxOf(ing, logProb(w), (src) => logProb(w, src));
  const dice = () =>
    ing.costNodes.map((c) => {
      const cost = ing.evaluation.costs.get(c.name)!;
      const credit = creditInto(ing, c.name);
      return perSampleSum(credit === undefined ? cost : tf.mul(boxOf(ing, credit, (src) => creditInto(ing, c.name, 1, src)), cost));
    });
  switch (estimator.kind) {
    case 'custom':
      return customTerms(estimator, ing, batch);
    case 'dice':
      return dice();
    case 'dice-baseline':
    case 'tmaml': {
      const controlVariates = ing.scored.flatMap((w) => {
        const b = baselineOf(ing, estimator.baselines, batch, w);
        if (b === undefined) return [];
        const notThis = tf.sub(one(), boxSelf(w));
        const ancestors = creditInto(ing, w.name);
        const past = ancestors === undefined ? one() : boxOf(ing, ancestors, (src) => creditInto(ing, w.name, 1, src));
        // TMAML's variate is written with the baseline subtracted, like DiCE + baseline's, so that the same
        // value function cancels the reward-to-go in both: (1 − □(ℓ_w))·(□(S_w) − 1)·b_w.
        const factor = estimator.kind === 'tmaml' ? tf.sub(past, one()) : past;
        return [perSampleSum(tf.mul(tf.mul(notThis, factor), b))];
      });
      return [...dice(), ...controlVariates];
    }
    case 'lvc': {
      const { clip } = estimator;
      return [
        ...ing.scored.flatMap((w) => {
          const weight = weightOf(ing, estimator.baselines, batch, w);
          if (weight === undefined) return [];
          const ratio = boxSelf(w);
          const term =
            clip === undefined
              ? tf.mul(ratio, weight)
              : tf.minimum(tf.mul(ratio, weight), tf.mul(tf.clipByValue(ratio, 1 - clip, 1 + clip), weight));
          return [perSampleSum(term)];
        }),
        ...directCosts(ing, true),
      ];
    }
    case 'pgt':
      return [
        ...ing.scored.flatMap((w) => {
          const weight = weightOf(ing, estimator.baselines, batch, w);
          return weight === undefined ? [] : [perSampleSum(tf.mul(logProb(w), weight))];
        }),
        ...directCosts(ing, false),
      ];
    case 'loaded-dice':
      return [
        ...ing.scored.flatMap((w) => {
          const weight = weightOf(ing, estimator.baselines, batch, w);
          if (weight === undefined) return [];
          const { lambda } = estimator;
          const past = creditInto(ing, w.name, lambda);
          const pastOf = (src: LogProbSource) => creditInto(ing, w.name, lambda, src)!;
          const delta =
            past === undefined
              ? tf.sub(boxSelf(w), one())
              : tf.sub(
                  boxOf(ing, tf.add(logProb(w), past), (src) => tf.add(logProb(w, src), pastOf(src))),
                  boxOf(ing, past, pastOf),
                );
          return [perSampleSum(tf.mul(delta, weight))];
        }),
        ...directCosts(ing, true),
      ];
  }
};

/** The behaviour log-probabilities the estimator measures □ against, masked like the current ones. */
const behaviourLogProbs = (estimator: Estimator, scored: readonly NodeSpec[], evaluation: Evaluation, batch: Batch): Map<string, tf.Tensor> | undefined => {
  if (estimator.kind === 'pgt' || estimator.reference !== 'behaviour') return undefined;
  const out = new Map<string, tf.Tensor>();
  for (const w of scored) {
    const b = batch.behaviour?.[w.name];
    if (b === undefined) {
      throw new BatchError(`${estimatorName(estimator)} measures against the behaviour policy, but the batch has no behaviour log-probability for '${w.name}'`);
    }
    out.set(w.name, evaluation.mask !== undefined && isTemporal(w) ? tf.mul(b, evaluation.mask) : b);
  }
  return out;
};

/**
 * Compiles a graph with an estimator. Structural problems are reported here, all at once; shape
 * problems of a batch are reported at evaluation, naming the node.
 */
export const compile = (graph: Graph, estimator: Estimator): Surrogate => {
  assertCompilable(graph);
  const needsBaselines = estimator.kind === 'dice-baseline' || estimator.kind === 'tmaml';
  const baselines = 'baselines' in estimator ? estimator.baselines : undefined;
  for (const name of Object.keys(baselines ?? {})) {
    const n = graph.spec.nodes.find((x) => x.name === name);
    if (n?.kind !== 'stochastic') throw new GraphError(`a baseline is given for '${name}', which is not a stochastic node`, []);
  }
  if (needsBaselines && Object.keys(baselines ?? {}).length === 0) {
    throw new GraphError(`${estimator.kind} needs a baseline for at least one stochastic node`, []);
  }
  const scored = graph.spec.nodes.filter((n) => n.kind === 'stochastic' && n.family !== undefined && n.family.type !== 'external');
  const costNodes = graph.spec.nodes.filter((n) => n.kind === 'cost');
  const computedCosts = new Set(costNodes.filter((c) => graph.impls.has(c.name)).map((c) => c.name));
  // The influence query depends on the horizon, which each batch brings; one per horizon seen.
  const queries = new Map<number, InfluenceQuery>();
  const queryFor = (horizon: number) => {
    let q = queries.get(horizon);
    if (q === undefined) {
      q = influenceQuery(graph.spec, horizon);
      queries.set(horizon, q);
    }
    return q;
  };
  const perSample = (params: Params, batch: Batch, given?: Evaluation): tf.Tensor1D => {
    const evaluation = given ?? evaluateGraph(graph, params, batch);
    const ing: Ingredients = {
      evaluation,
      query: queryFor(evaluation.horizon),
      scored,
      costNodes,
      computedCosts,
      behaviour: behaviourLogProbs(estimator, scored, evaluation, batch),
    };
    const parts = terms(estimator, ing, batch);
    if (parts.length === 0) return tf.zeros([evaluation.size]);
    return (parts.length === 1 ? parts[0]! : tf.addN(parts)) as tf.Tensor1D;
  };
  return { graph, estimator, perSample, objective: (params, batch) => tf.mean(perSample(params, batch)) as tf.Scalar };
};
