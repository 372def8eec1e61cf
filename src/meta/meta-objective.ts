/**
 * Meta-objectives from graphs. The meta-SCG
 *
 *   θ → τ₀ (pre-update trajectories, sampled with π_θ) → θ₁ = U(θ, τ₀) → τ₁ → … → θ_k → τ_k → R
 *
 * is itself a graph value (`metaGraph`), so it can be validated and drawn, and the meta-surrogate of a
 * task is assembled from compiled surrogates of the task's own graph:
 *
 *   inner step   θ_{j+1} = θ_j + α ∇ L_inner(θ_j; D_j)        L_inner = compile(task graph, inner estimator)
 *   formulation I      L_outer(θ_k(θ); D_k)                    credit to τ_j flows through θ_{j+1}: the inner
 *                                                              estimator's Hessian carries ∇J_pre (ProMP eq. 4)
 *   formulation II     L_outer(θ_k; D_k) + Σ_j Σ_{τ∈D_j} log π_{θ_j}(τ)·⊥R(D_k)   (E-MAML, ProMP eq. 3;
 *                                                              `score: 'pre-update'`: the j = 0 term only)
 *   naive MAML         L_outer(θ_k; D_k) with the naive inner estimator: no pre-update credit at all
 *
 * Each level's data may carry weights (the oracle's exact probabilities) instead of the batch mean.
 */
import * as tf from '@tensorflow/tfjs';
import { stopGradient } from '../ops/index.ts';
import { graphOf, type DistributionParams, type Graph } from '../scg/builder.ts';
import type { NodeSpec } from '../scg/spec.ts';
import { groupMean, groupSum, type Batch, type Params } from '../surrogates/batch.ts';
import { compile, type Surrogate } from '../surrogates/compile.ts';
import { estimatorName, type Estimator } from '../surrogates/estimators.ts';
import { evaluateGraph, type Evaluation } from '../surrogates/evaluate.ts';

export type Formulation = 'I' | 'II' | 'naive-maml';
export const formulations: readonly Formulation[] = ['I', 'II', 'naive-maml'];

/** One level's data: a batch, and how its samples are weighted (default: the batch mean). */
export interface LevelData {
  readonly batch: Batch;
  /**
   * Weights of the samples as a function of the parameters that sampled them (already stop-gradiented
   * by the caller or not: they are always treated as constants). The oracle passes θ ↦ p_θ(τ).
   */
  readonly weights?: (params: Params) => tf.Tensor;
  /**
   * Post-update data only, formulation II: the constant that multiplies E-MAML's score term in place of
   * R(D_k) (the released code's normalised average reward of the task; iteration.ts); one per group
   * where the batch has groups.
   */
  readonly scoreWeight?: number | readonly number[];
  /** The parameters that sampled this level's data, when the caller has them (ProMP's per-level KL reference). */
  readonly sampledBy?: Params;
  /**
   * The distributions of the parameters that sampled this level on its batch (constants), when the
   * caller computed them once for many evaluations (ProMP's KL reference over its outer steps).
   */
  readonly samplingDistributions?: ReadonlyMap<string, DistributionParams>;
}

/**
 * The outer objective: a scalar to maximise from the adapted parameters and the post-update data (one
 * per group where the data's batch has groups: Batch.groups).
 */
export type OuterObjective = (adapted: Params, data: LevelData) => tf.Tensor;

export interface MetaObjectiveOptions {
  readonly formulation: Formulation;
  /** The inner estimator (formulation II and naive MAML use the naive one, PGT). */
  readonly inner: Estimator;
  /** Inner step size α. */
  readonly stepSize: number;
  /** Number of inner adaptation steps k ≥ 1. */
  readonly steps: number;
  /** Default: the mean over D_k of the surrogate compiled with `outerEstimator`. */
  readonly outer?: OuterObjective;
  /** The estimator of the default outer objective (default DiCE). */
  readonly outerEstimator?: Estimator;
  /**
   * Formulation II: which pre-update levels get E-MAML's score term: every level j (default), or the
   * pre-update level 0 only (the released vpg_maml.py / trpo_maml.py).
   */
  readonly score?: 'every-level' | 'pre-update';
}

export interface MetaObjective {
  /** The meta-SCG: θ, the pre-update trajectories and updates, the post-update trajectories, the return. */
  readonly graph: Graph;
  readonly options: MetaObjectiveOptions;
  /** One inner step θ + α∇L_inner(θ; D) (differentiable in θ): how the sampler gets each level's parameters. */
  readonly innerStep: (params: Params, data: LevelData) => Params;
  /** θ₁ … θ_k from θ and the pre-update data D₀ … D_{k−1} (differentiable in θ). */
  readonly adapt: (params: Params, pre: readonly LevelData[]) => Params[];
  /**
   * `adapt`, and beside each inner step j a value of the caller's computed from the very evaluation of
   * the task graph that step differentiates (θ_j on D_j, its distributions computed with its
   * log-probabilities: `evaluateGraph`'s `distributions`): a caller reading θ_j's distributions on D_j
   * (ProMP's KL) then shares the step's forward pass and, with a fused policy, its backward pass.
   * `beside(j)` is the function of level j's evaluation, or undefined for a level the caller does not
   * read (its step runs as `adapt`'s); it runs inside the step's gradient scope, and what it returns is
   * kept past it, for the caller to dispose.
   */
  readonly adaptBeside: (
    params: Params,
    pre: readonly LevelData[],
    beside: (level: number) => ((evaluation: Evaluation) => tf.Tensor) | undefined,
  ) => { readonly adapted: Params[]; readonly beside: ReadonlyArray<tf.Tensor | undefined> };
  /**
   * The meta-surrogate of one task, to maximise: its gradient is the meta-gradient. `adapted`, when
   * given, is `adapt(params, pre)` computed by the caller (who needs it too), so it is not built twice.
   * On batches with groups (several tasks stacked, their parameters θ of as many blocks), one per
   * group — each group's term depends on its own block of θ only.
   */
  readonly surrogate: (params: Params, pre: readonly LevelData[], post: LevelData, adapted?: readonly Params[]) => tf.Tensor;
}

export class MetaObjectiveError extends Error {
  override readonly name = 'MetaObjectiveError';
}

/** Σ_b w_b·x_b with the level's weights, or the mean over the batch; per group where it has groups. */
export const weightedMean = (x: tf.Tensor, data: LevelData, params: Params): tf.Tensor => {
  const groups = data.batch.groups;
  return data.weights === undefined ? groupMean(x, groups) : groupSum(tf.mul(stopGradient(data.weights(params)), x), groups);
};

/** log π(τ) of each sample: the sum of every scored node's log-probability over the sample's steps. */
export const trajectoryLogProb = (graph: Graph, params: Params, batch: Batch): tf.Tensor => {
  const ev = evaluateGraph(graph, params, batch);
  const parts = [...ev.logProbs.values()].map((lp) => (lp.rank === 2 ? tf.sum(lp, 1) : lp));
  return parts.length === 0 ? tf.zeros([ev.size]) : parts.reduce((a, b) => tf.add(a, b));
};

/** The return of each sample: every cost summed over its steps. */
export const sampleReturn = (graph: Graph, params: Params, batch: Batch): tf.Tensor => {
  const ev = evaluateGraph(graph, params, batch);
  const parts = [...ev.costs.values()].map((c) => (c.rank === 2 ? tf.sum(c, 1) : c));
  return parts.length === 0 ? tf.zeros([ev.size]) : parts.reduce((a, b) => tf.add(a, b));
};

/**
 * The meta-SCG as a graph value (structure only: its functions are the meta-objective's own), drawn
 * so that each formulation's credit to the pre-update sampling distributions shows in its structure:
 *
 *   I           θ_j → τ_j (data for the update) ; θ_j, τ_j → J_in_j (the inner DiCE/LVC surrogate,
 *               whose MagicBox carries log π_θ_j(τ_j)) → θ_{j+1} ; θ_k → τ_k → R.
 *               τ_j is not scored at the meta level: its credit flows pathwise through J_in_j.
 *   II          θ_j → τ_j (scored: E-MAML's score term) → θ_{j+1} ; θ_k → τ_k → R.
 *   naive MAML  as II but τ_j unscored: no credit reaches the pre-update distributions.
 *
 * Node names: theta, theta1 … theta{k}, tau0 … tau{k} (tau{k} post-update), Jin0 … (formulation I), R.
 */
export const metaGraph = (steps: number, formulation: Formulation): Graph => {
  const nodes: NodeSpec[] = [{ kind: 'parameter', name: 'theta', shape: [1], label: '\\theta' }];
  const ref = (node: string) => ({ node, lag: 0 });
  const policyAt = (j: number) => (j === 0 ? 'theta' : `theta${j}`);
  for (let j = 0; j < steps; j++) {
    const pre = `tau${j}`;
    nodes.push({
      kind: 'stochastic',
      name: pre,
      label: `\\tau_${j}`,
      family: formulation === 'II' ? { type: 'trajectory' } : { type: 'external' },
      parents: [ref(policyAt(j))],
    });
    if (formulation === 'I') {
      nodes.push({ kind: 'deterministic', name: `Jin${j}`, label: `J^{in}_${j}`, parents: [ref(policyAt(j)), ref(pre)] });
      nodes.push({ kind: 'deterministic', name: `theta${j + 1}`, label: `\\theta_${j + 1}`, parents: [ref(policyAt(j)), ref(`Jin${j}`)] });
    } else {
      nodes.push({ kind: 'deterministic', name: `theta${j + 1}`, label: `\\theta_${j + 1}`, parents: [ref(policyAt(j)), ref(pre)] });
    }
  }
  nodes.push({ kind: 'stochastic', name: `tau${steps}`, label: "\\tau'", family: { type: 'trajectory' }, parents: [ref(policyAt(steps))] });
  nodes.push({ kind: 'cost', name: 'R', label: "R(\\tau')", parents: [ref(`tau${steps}`)] });
  return graphOf({ name: `meta-${formulation}-${steps}`, nodes }, new Map());
};

export const metaObjective = (taskGraph: Graph, options: MetaObjectiveOptions): MetaObjective => {
  const { formulation, inner, stepSize, steps } = options;
  if (!Number.isInteger(steps) || steps < 1) throw new MetaObjectiveError(`the number of inner steps must be a whole number ≥ 1, got ${steps}`);
  if (!(stepSize > 0)) throw new MetaObjectiveError(`the inner step size must be positive, got ${stepSize}`);
  if (formulation !== 'I' && inner.kind !== 'pgt') {
    throw new MetaObjectiveError(
      `formulation ${formulation} uses the naive inner estimator (pgt); got ${estimatorName(inner)}` +
        (formulation === 'II' ? ': its pre-update credit is an explicit score term, and an inner DiCE/LVC would count it twice' : ''),
    );
  }
  const innerSurrogate: Surrogate = compile(taskGraph, inner);
  const outerSurrogate = compile(taskGraph, options.outerEstimator ?? { kind: 'dice' });
  const outer: OuterObjective =
    options.outer ?? ((adapted, data) => weightedMean(outerSurrogate.perSample(adapted, data.batch), data, adapted));
  const names = taskGraph.spec.nodes.filter((n) => n.kind === 'parameter').map((n) => n.name);

  /** An inner step, and `beside`'s value from the evaluation it differentiates (kept: see adaptBeside). */
  const stepBeside = (params: Params, data: LevelData, beside?: (evaluation: Evaluation) => tf.Tensor): { next: Params; beside?: tf.Tensor } => {
    let kept: tf.Tensor | undefined;
    const objective = (...values: tf.Tensor[]) => {
      const p = Object.fromEntries(names.map((n, i) => [n, values[i]!]));
      const evaluation = beside === undefined ? undefined : evaluateGraph(innerSurrogate.graph, p, data.batch, { distributions: true });
      const objective = weightedMean(innerSurrogate.perSample(p, data.batch, evaluation), data, p);
      // Kept past tf.grads' scope; its ops are on the tape like every other, for the caller's gradient.
      if (evaluation !== undefined) kept = tf.keep(beside!(evaluation));
      // Groups: their sum, whose gradient is each group's own in its block of θ.
      return data.batch.groups === undefined ? objective : tf.sum(objective);
    };
    try {
      // tf.grads keeps the dependence of the gradient on the parameters: θ' stays differentiable in θ.
      const grads = tf.grads(objective)(names.map((n) => params[n]!));
      return { next: Object.fromEntries(names.map((n, i) => [n, tf.add(params[n]!, tf.mul(stepSize, grads[i]!))])), beside: kept };
    } catch (e) {
      kept?.dispose();
      throw e;
    }
  };
  const innerStep = (params: Params, data: LevelData): Params => stepBeside(params, data).next;

  const adaptBeside = (params: Params, pre: readonly LevelData[], beside?: (level: number) => ((evaluation: Evaluation) => tf.Tensor) | undefined) => {
    if (pre.length !== steps) throw new MetaObjectiveError(`${steps} inner step(s) need ${steps} pre-update batch(es), got ${pre.length}`);
    const adapted: Params[] = [];
    const values: Array<tf.Tensor | undefined> = [];
    let current = params;
    try {
      for (const [j, data] of pre.entries()) {
        const step = stepBeside(current, data, beside?.(j));
        values.push(step.beside);
        current = step.next;
        adapted.push(current);
      }
    } catch (e) {
      tf.dispose(values.filter((v): v is tf.Tensor => v !== undefined));
      throw e;
    }
    return { adapted, beside: values };
  };
  const adapt = (params: Params, pre: readonly LevelData[]): Params[] => adaptBeside(params, pre).adapted;

  const surrogate = (params: Params, pre: readonly LevelData[], post: LevelData, given?: readonly Params[]): tf.Tensor => {
    const adapted = given ?? adapt(params, pre);
    const last = adapted[adapted.length - 1]!;
    const outerValue = outer(last, post);
    if (formulation !== 'II') return outerValue;
    // E-MAML's credit to each pre-update sampling distribution: Σ_{τ∈D_j} log π_{θ_j}(τ) · ⊥R(D_k),
    // with R(D_k) the post-update return (weighted like the outer objective), or the constant the data
    // carries in its place.
    const weight = post.scoreWeight;
    const postReturn =
      weight !== undefined
        ? typeof weight === 'number'
          ? tf.scalar(weight)
          : tf.tensor1d([...weight])
        : stopGradient(weightedMean(sampleReturn(taskGraph, last, post.batch), post, last));
    const sampling = [params, ...adapted.slice(0, -1)];
    const scored = options.score === 'pre-update' ? pre.slice(0, 1) : pre;
    const scores = scored.map((data, j) => {
      const logp = trajectoryLogProb(taskGraph, sampling[j]!, data.batch);
      const groups = data.batch.groups;
      const total = data.weights === undefined ? groupSum(logp, groups) : groupSum(tf.mul(stopGradient(data.weights(sampling[j]!)), logp), groups);
      return tf.mul(total, postReturn);
    });
    return scores.reduce<tf.Tensor>((a, b) => tf.add(a, b), outerValue);
  };

  return { graph: metaGraph(steps, formulation), options, innerStep, adapt, adaptBeside, surrogate };
};
