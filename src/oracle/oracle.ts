/**
 * The exactness oracle. On a graph whose outcomes can all be enumerated:
 *   - the exact objective J(θ) = Σ_τ p_θ(τ)·R(τ) is a closed form, and its derivatives of every order
 *     come from autodiff of it;
 *   - an estimator's *expected* k-th derivative is Σ_τ ⊥p(τ)·∇^k L(τ) — exact, no Monte-Carlo noise;
 *   - the Hessian's decomposition H1 + H2 + H12 + H12ᵀ (ProMP App. B.2, stated for any SCG) is
 *     computed term by term from per-outcome scores on the explicitly unrolled graph.
 * So an estimator's bias at each order is a number, and a claim about it is a test.
 */
import * as tf from '@tensorflow/tfjs';
import { exp } from '../ops/index.ts';
import type { CategoricalParams, Graph, NodeContext, ParentValues } from '../scg/builder.ts';
import { isTemporal } from '../scg/spec.ts';
import type { Batch, Params } from '../surrogates/batch.ts';
import { compile, type Surrogate } from '../surrogates/compile.ts';
import type { Estimator } from '../surrogates/estimators.ts';
import { evaluateGraph } from '../surrogates/evaluate.ts';
import { gradient, hessian, jacobian, thirdDerivative, type Matrix, type ScalarFn, type SummedFn } from './derivatives.ts';
import { enumerate, type Enumeration } from './enumerate.ts';
import { seededUniform } from '../random.ts';

/**
 * An environment transition whose probabilities are known: what the oracle needs to enumerate an
 * `external` stochastic node. The estimators still see the node as external (no score term); only the
 * exact objective and the outcome weights p(τ) use these probabilities. They must not depend on θ.
 */
export interface KnownTransition {
  readonly categories: number;
  /** The node's logits given its parents, with the keys and shapes a categorical node's distribution gets (`s@1` for a lagged parent). */
  readonly distribution: (parents: ParentValues, context: NodeContext) => CategoricalParams;
}

/** A graph at a point: what the oracle differentiates. */
export interface OracleProblem {
  readonly graph: Graph;
  /** The evaluation point θ₀. */
  readonly params: Readonly<Record<string, { readonly shape: readonly number[]; readonly values: readonly number[] }>>;
  readonly horizon: number;
  /** Known probabilities of external stochastic nodes (an MDP's stochastic transitions), by node name. */
  readonly transitions?: Readonly<Record<string, KnownTransition>>;
}

/**
 * The graph the oracle enumerates: `problem.graph` with each external node that has a known
 * transition made categorical with that distribution. Its score is zero (the probabilities do not
 * depend on θ), so the exact derivatives are those of the MDP with the environment sampling it.
 */
export const enumeratedGraph = (problem: OracleProblem): Graph => {
  const transitions = problem.transitions ?? {};
  const names = Object.keys(transitions);
  if (names.length === 0) return problem.graph;
  const impls = new Map(problem.graph.impls);
  const byName = new Map(problem.graph.spec.nodes.map((n) => [n.name, n]));
  for (const name of names) {
    const n = byName.get(name);
    if (n === undefined || n.kind !== 'stochastic' || n.family?.type !== 'external') {
      throw new Error(`transitions.${name}: the graph has no external stochastic node '${name}'`);
    }
    const { categories, distribution } = transitions[name]!;
    if (!Number.isInteger(categories) || categories < 1) throw new Error(`transitions.${name}.categories: expected a whole number ≥ 1, got ${categories}`);
    impls.set(name, { kind: 'distribution', fn: distribution });
  }
  const nodes = problem.graph.spec.nodes.map((n) =>
    n.kind === 'stochastic' && transitions[n.name] !== undefined ? { ...n, family: { type: 'categorical' as const, categories: transitions[n.name]!.categories } } : n,
  );
  return { spec: { ...problem.graph.spec, nodes }, impls };
};

/** The parameters of a graph as one flat vector, and back. */
export interface ParameterLayout {
  readonly names: readonly string[];
  readonly shapes: readonly (readonly number[])[];
  readonly size: number;
  readonly flat: readonly number[];
  readonly unflatten: (theta: tf.Tensor) => Params;
}

export const parameterLayout = (problem: OracleProblem): ParameterLayout => {
  const nodes = problem.graph.spec.nodes.filter((n) => n.kind === 'parameter');
  const names = nodes.map((n) => n.name);
  const shapes = nodes.map((n) => n.shape as readonly number[]);
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const flat = names.flatMap((name, i) => {
    const p = problem.params[name];
    if (p === undefined) throw new Error(`the oracle problem has no value for parameter '${name}'`);
    if (p.values.length !== sizes[i]) throw new Error(`parameter '${name}' has ${p.values.length} values, its shape needs ${sizes[i]}`);
    return [...p.values];
  });
  const unflatten = (theta: tf.Tensor): Params => {
    const out: Record<string, tf.Tensor> = {};
    let offset = 0;
    names.forEach((name, i) => {
      out[name] = tf.reshape(tf.slice(theta, [offset], [sizes[i]!]), [...shapes[i]!]);
      offset += sizes[i]!;
    });
    return out;
  };
  return { names, shapes, size: flat.length, flat, unflatten };
};

/** Everything the oracle needs about one problem, computed once. */
export interface Oracle {
  readonly problem: OracleProblem;
  /** The graph enumerated (problem.graph, its known transitions made categorical; see enumeratedGraph). */
  readonly graph: Graph;
  readonly layout: ParameterLayout;
  readonly enumeration: Enumeration;
  /** p_θ₀(τ) for each outcome. */
  readonly probabilities: readonly number[];
  /** θ ↦ J(θ), the exact objective. */
  readonly exact: ScalarFn;
  /** θ ↦ Σ_τ ⊥p(τ)·L(τ; θ): the estimator's expected surrogate, whose derivatives at θ₀ are its expected derivatives. */
  readonly expected: (estimator: Estimator) => ScalarFn;
  /**
   * `exact` as a sum over chunks of at most `outcomeChunk` outcomes: differentiated part by part
   * (gradient, hessian, thirdDerivative, derivatives accept it), the expectation is accumulated in
   * float64, so its rounding error does not grow with the number of outcomes as one float32 sum's does.
   */
  readonly exactParts: readonly ScalarFn[];
  /** `expected(estimator)` as a sum over chunks of outcomes (see exactParts). */
  readonly expectedParts: (estimator: Estimator) => readonly ScalarFn[];
  /** Releases the enumerated batch. */
  readonly dispose: () => void;
}

const sumPerSample = (x: tf.Tensor): tf.Tensor => (x.rank === 2 ? tf.sum(x, 1) : x);

/**
 * Outcomes per part of exactParts / expectedParts. A float32 sum of n terms carries a rounding error
 * growing with n (1.1e-4 relative on the Hessian of a 7,776-outcome MDP summed at once); parts of
 * 1024 keep it at ~3e-6, far under the verify tolerance, while each part's derivatives cost a pass of
 * their own (≤ 98 parts at the 100,000-outcome limit).
 */
export const outcomeChunk = 1024;

/** Rows [start, start + size) of every tensor of an enumerated batch. */
const sliceBatch = (batch: Batch, start: number, size: number): Batch => ({
  values: Object.fromEntries(Object.entries(batch.values).map(([k, v]) => [k, tf.slice(v, [start], [size])])),
});

export const oracle = (problem: OracleProblem): Oracle => {
  const layout = parameterLayout(problem);
  const known = enumeratedGraph(problem);
  const enumeration = enumerate(known, problem.horizon);
  const batch = enumeration.batch;
  const chunks = Array.from({ length: Math.ceil(enumeration.outcomes / outcomeChunk) }, (_, c) => {
    const start = c * outcomeChunk;
    const size = Math.min(outcomeChunk, enumeration.outcomes - start);
    return { start, size, batch: sliceBatch(batch, start, size) };
  });
  const logProbability = (params: Params, on: Batch = batch, size = enumeration.outcomes): tf.Tensor => {
    const ev = evaluateGraph(known, params, on);
    const parts = [...ev.logProbs.values()].map(sumPerSample);
    return parts.length === 0 ? tf.zeros([size]) : tf.addN(parts);
  };
  const returns = (params: Params, on: Batch = batch, size = enumeration.outcomes): tf.Tensor => {
    const ev = evaluateGraph(known, params, on);
    const parts = [...ev.costs.values()].map(sumPerSample);
    return parts.length === 0 ? tf.zeros([size]) : tf.addN(parts);
  };
  const exactOn =
    (on: Batch, size: number): ScalarFn =>
    (theta) => {
      const params = layout.unflatten(theta);
      return tf.sum(tf.mul(exp(logProbability(params, on, size)), returns(params, on, size)));
    };
  const exact = exactOn(batch, enumeration.outcomes);
  const probabilities = tf.tidy(() => Array.from(tf.exp(logProbability(layout.unflatten(tf.tensor1d([...layout.flat])))).dataSync()));
  const expectedOn =
    (surrogate: Surrogate, on: Batch, p: readonly number[]): ScalarFn =>
    (theta) =>
      tf.sum(tf.mul(tf.tensor1d([...p]), surrogate.perSample(layout.unflatten(theta), on)));
  const expected = (estimator: Estimator): ScalarFn => expectedOn(compile(problem.graph, estimator), batch, probabilities);
  const exactParts = chunks.map((c) => exactOn(c.batch, c.size));
  const expectedParts = (estimator: Estimator): ScalarFn[] => {
    const surrogate = compile(problem.graph, estimator);
    return chunks.map((c) => expectedOn(surrogate, c.batch, probabilities.slice(c.start, c.start + c.size)));
  };
  const dispose = () => {
    Object.values(batch.values).forEach((t) => t.dispose());
    chunks.forEach((c) => Object.values(c.batch.values).forEach((t) => t.dispose()));
  };
  return { problem, graph: known, layout, enumeration, probabilities, exact, expected, exactParts, expectedParts, dispose };
};

/** The Hessian of J at θ₀ split into its four terms (costs must not depend on θ directly). */
export interface HessianTerms {
  /** E[Σ_w ∇ℓ_w ∇ℓ_wᵀ Q_w] */
  readonly h1: Matrix;
  /** E[Σ_w ∇²ℓ_w Q_w] */
  readonly h2: Matrix;
  /** H12 + H12ᵀ = E[Σ_{w≠w′} ∇ℓ_w ∇ℓ_w′ᵀ Q_{w,w′}], Q_{w,w′} the costs both influence. */
  readonly h12: Matrix;
}

/** Whether some cost depends on the parameters other than through sampling (then the decomposition does not apply). */
export const costsDependOnParameters = (o: Oracle): boolean =>
  gradient((theta) => {
    const ev = evaluateGraph(o.graph, o.layout.unflatten(theta), o.enumeration.batch);
    // 0·Σθ keeps θ connected to the result: tf.grad refuses a function that does not depend on its input.
    return tf.addN([tf.mul(tf.sum(theta), 0), ...[...ev.costs.values()].map((c) => tf.sum(c))]) as tf.Scalar;
  }, o.layout.flat).some((g) => g !== 0);

export const hessianTerms = (o: Oracle): HessianTerms => {
  const { graph } = o;
  // Known transitions have a zero score: only the nodes the estimators score enter the terms.
  const transitions = o.problem.transitions ?? {};
  const { enumeration: en, layout } = o;
  const B = en.outcomes;
  const d = layout.size;
  const byName = new Map(graph.spec.nodes.map((n) => [n.name, n]));
  const scored = en.stochastic.filter((i) => {
    const n = byName.get(i.node);
    return n?.kind === 'stochastic' && n.family?.type === 'categorical' && transitions[n.name] === undefined;
  });
  const costInstances = graph.spec.nodes
    .filter((n) => n.kind === 'cost')
    .flatMap((n) => (isTemporal(n) ? Array.from({ length: en.horizon }, (_, t) => ({ node: n.name, step: t })) : [{ node: n.name, step: 0 }]));

  // ℓ of each scored instance as one long vector [instances × B], and each cost instance's values at θ₀.
  const instanceLogProbs = (theta: tf.Tensor): tf.Tensor => {
    const ev = evaluateGraph(graph, layout.unflatten(theta), en.batch);
    const columns = scored.map((i) => {
      const lp = ev.logProbs.get(i.node)!;
      return lp.rank === 2 ? tf.reshape(tf.slice(lp, [0, i.step], [B, 1]), [B]) : lp;
    });
    return columns.length === 0 ? tf.zeros([0]) : tf.concat(columns);
  };
  const costValues: number[][] = tf.tidy(() => {
    const ev = evaluateGraph(graph, layout.unflatten(tf.tensor1d([...layout.flat])), en.batch);
    return costInstances.map((c) => {
      const v = ev.costs.get(c.node)!;
      const column = v.rank === 2 ? tf.slice(v, [0, c.step], [B, 1]) : v;
      return Array.from(column.dataSync());
    });
  });
  const influences = (i: { node: string; step: number }, c: { node: string; step: number }) =>
    en.ancestors.get(en.instanceKey(c))?.has(en.instanceKey(i)) === true;
  const influenced = scored.map((i) => costInstances.map((c) => influences(i, c)));
  // Q[i][b]: costs instance i influences; Q2(i, j)[b]: costs both influence.
  const q = influenced.map((row) => Array.from({ length: B }, (_, b) => row.reduce((s, inf, ci) => s + (inf ? costValues[ci]![b]! : 0), 0)));
  const qBoth = (i: number, j: number, b: number) =>
    costInstances.reduce((s, _, ci) => s + (influenced[i]![ci] && influenced[j]![ci] ? costValues[ci]![b]! : 0), 0);

  const jac = scored.length === 0 ? [] : jacobian(instanceLogProbs, layout.flat); // [instances·B][d]
  const score = (i: number, b: number): number[] => jac[i * B + b]!;
  const zero = (): Matrix => Array.from({ length: d }, () => new Array<number>(d).fill(0));
  const h1 = zero();
  const h12 = zero();
  const p = o.probabilities;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < scored.length; i++) {
      const gi = score(i, b);
      for (let j = 0; j < scored.length; j++) {
        const weight = p[b]! * (i === j ? q[i]![b]! : qBoth(i, j, b));
        if (weight === 0) continue;
        const gj = score(j, b);
        const target = i === j ? h1 : h12;
        for (let r = 0; r < d; r++) for (let s = 0; s < d; s++) target[r]![s]! += weight * gi[r]! * gj[s]!;
      }
    }
  }
  // H2 = Σ_b p_b Σ_i ∇²ℓ_i(b)·Q_i(b): a weighted sum over all instances × outcomes, differentiated
  // in parts of at most outcomeChunk terms and accumulated in float64 (see Oracle.exactParts).
  const weights = Float32Array.from(scored.flatMap((_, i) => Array.from({ length: B }, (_, b) => p[b]! * q[i]![b]!)));
  const total = weights.length;
  const parts: Array<{ start: number; size: number; w: tf.Tensor }> = [];
  for (let start = 0; start < total; start += outcomeChunk) {
    const size = Math.min(outcomeChunk, total - start);
    parts.push({ start, size, w: tf.tensor1d(weights.subarray(start, start + size)) });
  }
  try {
    const h2 =
      total === 0
        ? zero()
        : hessian(
            parts.map(({ start, size, w }) => (theta: tf.Tensor) => tf.sum(tf.mul(tf.slice(instanceLogProbs(theta), [start], [size]), w))),
            layout.flat,
          );
    return { h1, h2, h12 };
  } finally {
    parts.forEach(({ w }) => w.dispose());
  }
};

/** Unit-length directions for the third derivative, fixed by the seed. */
export const directions = (d: number, count: number, seed = 7): number[][] => {
  const u = seededUniform(seed);
  return Array.from({ length: count }, () => {
    const v = Array.from({ length: d }, () => u() * 2 - 1);
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  });
};

/**
 * Derivatives of orders 1–3 of a scalar function (or a sum of parts, accumulated in float64) at θ₀:
 * the gradient, the Hessian, and D³f[u, ·, ·] for each u.
 */
export interface Derivatives {
  readonly order1: number[];
  readonly order2: Matrix;
  readonly order3: Matrix[];
}

export const derivatives = (f: SummedFn, theta: readonly number[], us: readonly number[][], maxOrder: 1 | 2 | 3 = 3): Derivatives => ({
  order1: gradient(f, theta),
  order2: maxOrder >= 2 ? hessian(f, theta) : [],
  order3: maxOrder >= 3 ? us.map((u) => thirdDerivative(f, theta, u)) : [],
});
