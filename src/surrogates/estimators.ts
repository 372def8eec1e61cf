/**
 * The gradient estimators a graph can be compiled with, as plain data. What each one means is in
 * compile.ts; the bias/variance story is in docs/concepts.md.
 */
import type * as tf from '@tensorflow/tfjs';
import type { NodeContext, ParentValues } from '../scg/builder.ts';

/**
 * Where a stochastic node's baseline comes from: `'batch'` reads `batch.baselines[node]`; a function
 * computes it from the node's parent values (the same values its distribution receives). A baseline
 * must not depend on the node's own sample; it is always treated as a constant (stop-gradient).
 */
export type BaselineSource = 'batch' | ((parents: ParentValues, context: NodeContext) => tf.Tensor);
export type Baselines = Readonly<Record<string, BaselineSource>>;

/**
 * What the MagicBox □(x) = exp(x − ⊥x) of an estimator is measured against. `'stop-gradient'` (the
 * default) is on-policy: □ evaluates to 1. `'behaviour'` uses the log-probabilities recorded when the
 * batch was sampled (`batch.behaviour`): □(x) becomes the likelihood ratio exp(x − x_behaviour), whose
 * value and derivatives of every order equal □'s when the parameters are the sampling ones, and which
 * stays a correct importance weight after the parameters move (ProMP's J^LR, several steps per batch).
 */
export type Reference = 'stop-gradient' | 'behaviour';

interface BoxOptions {
  readonly reference?: Reference;
}

/**
 * What a user-defined estimator is built from: the same ingredients the built-in ones are, derived by
 * the compiler from the graph's influence query, for one evaluation of one batch. Every tensor is
 * [B] (per-sample node) or [B, T] (temporal node), zero on padded steps, and connected to the
 * parameters, so that the terms a custom estimator returns can be differentiated to any order.
 * Functions returning `undefined` mean "nothing influences / nothing is influenced".
 */
export interface EstimatorKit {
  /** The stochastic nodes that have a log-probability (categorical, Gaussian), in declaration order. */
  readonly scored: readonly string[];
  /** The cost nodes, in declaration order. */
  readonly costs: readonly string[];
  /** ℓ_w: the log-probability of w's sampled values. */
  readonly logProb: (w: string) => tf.Tensor;
  /** A cost's values. */
  readonly cost: (c: string) => tf.Tensor;
  /**
   * S_y: Σ of ℓ_w over the scored nodes w that influence `target` (a cost or a stochastic node), each
   * moved forward along time by its influence set and discounted by decay^lag; on y's steps.
   */
  readonly credit: (target: string, decay?: number) => tf.Tensor | undefined;
  /** Q_w: the costs w influences, gathered back onto w's steps (the reward-to-go on an RL chain). */
  readonly costsInfluencedBy: (w: string) => tf.Tensor | undefined;
  /** b_w from the estimator's `baselines` (stop-gradient, masked), or undefined when it has none for w. */
  readonly baseline: (w: string) => tf.Tensor | undefined;
  /** ⊥(Q_w − b_w), or the batch's advantage of w where the batch has one. */
  readonly weight: (w: string) => tf.Tensor | undefined;
  /**
   * □ of ℓ_w (`box(w)`) or of the credit S_target (`boxCredit(target, decay)`), measured against the
   * estimator's `reference`: exp(x − ⊥x) on-policy, exp(x − x_behaviour) against the behaviour policy.
   */
  readonly box: (w: string) => tf.Tensor;
  readonly boxCredit: (target: string, decay?: number) => tf.Tensor | undefined;
  /** Σ_c (c − ⊥c) for costs computed by a function: the pathwise derivative, value 0. [B]. */
  readonly pathwise: () => tf.Tensor | undefined;
}

/**
 * A user-defined estimator: `terms(kit)` returns per-sample or per-step tensors whose sum over steps
 * and terms is the per-sample surrogate. Compiled, differentiated and checked by the oracle like any
 * built-in one (examples/custom-estimator.ts).
 */
export interface CustomEstimator extends BoxOptions {
  readonly kind: 'custom';
  /** Shown in reports and errors. */
  readonly name: string;
  readonly terms: (kit: EstimatorKit) => ReadonlyArray<tf.Tensor | undefined>;
  readonly baselines?: Baselines;
}

export type Estimator =
  /**
   * Naive score function (the original MAML implementation): Σ_c c + Σ_w ℓ_w·⊥(Q_w − b_w). Right first
   * derivative only; on-policy only. Its expected Hessian is H2 without a baseline; a baseline adds
   * E[Σ_w b_w ∇ℓ_w∇ℓ_wᵀ] (E[∇²ℓ_w] = −Fisher), so its bias is H1 + H12 + H12ᵀ only without one.
   */
  | { readonly kind: 'pgt'; readonly baselines?: Baselines }
  /** DiCE: Σ_c □(Σ_{w∈W_c} ℓ_w)·c. Unbiased at every order. */
  | ({ readonly kind: 'dice' } & BoxOptions)
  /** DiCE with baselines (Mao et al.): adds Σ_w (1 − □(ℓ_w))·□(Σ_{w′∈W_w} ℓ_w′)·b_w, which evaluates to 0. */
  | ({ readonly kind: 'dice-baseline'; readonly baselines: Baselines } & BoxOptions)
  /**
   * Low variance curvature (ProMP eq. 9): Σ_w □(ℓ_w)·⊥(Q_w − b_w). Its Hessian drops H12 + H12ᵀ.
   * With `clip` ε each term becomes min(□·A, clip(□, 1 − ε, 1 + ε)·A): the clipped objective J^CLIP
   * of PPO/ProMP (for first-order use: clipping has no useful second derivative).
   */
  | ({ readonly kind: 'lvc'; readonly baselines?: Baselines; readonly clip?: number } & BoxOptions)
  /** Loaded DiCE (Farquhar et al.): Σ_w [□(ℓ_w + V_w) − □(V_w)]·⊥(Q_w − b_w), V_w the λ^lag-discounted credit of w's stochastic ancestors. */
  | ({ readonly kind: 'loaded-dice'; readonly lambda: number; readonly baselines?: Baselines } & BoxOptions)
  /**
   * TMAML (Liu et al.): DiCE − Σ_w [1 − □(Σ_{w′∈W_w} ℓ_w′)]·[1 − □(ℓ_w)]·b_w, a zero-mean control variate
   * at every order. Its Hessian weights each cross term ∇ℓ_w′∇ℓ_wᵀ by the costs w influences minus b_w,
   * so b_w = V(parents of w) is the variance-reducing choice, as for DiCE + baseline. (The poster writes
   * the term with a plus sign; its b is the negative of this one.) Its first derivative is plain DiCE's,
   * without a baseline: (1 − □(ℓ_w))·□(S_w)·b_w = (1 − □(ℓ_w))·b_w + (1 − □(ℓ_w))·(□(S_w) − 1)·b_w, so
   * DiCE + baseline is exactly TMAML plus the per-node first-order baseline (1 − □(ℓ_w))·b_w.
   */
  | ({ readonly kind: 'tmaml'; readonly baselines: Baselines } & BoxOptions)
  /** A user-defined estimator, assembled from the compiler's ingredients (see EstimatorKit). */
  | CustomEstimator;

export type EstimatorKind = Estimator['kind'];

/** The built-in estimators' kinds ('custom' is the user-defined one). */
export const estimatorKinds: readonly EstimatorKind[] = ['pgt', 'dice', 'dice-baseline', 'lvc', 'loaded-dice', 'tmaml'];

/** Constructors, so that call sites read as what they are: `estimators.loadedDice(0.5)`. */
export const estimators = {
  pgt: (baselines?: Baselines): Estimator => ({ kind: 'pgt', ...(baselines ? { baselines } : {}) }),
  dice: (): Estimator => ({ kind: 'dice' }),
  diceBaseline: (baselines: Baselines): Estimator => ({ kind: 'dice-baseline', baselines }),
  lvc: (baselines?: Baselines, options: { readonly clip?: number; readonly reference?: Reference } = {}): Estimator => {
    if (options.clip !== undefined && !(options.clip > 0 && options.clip < 1)) throw new RangeError(`the clip range ε must be in (0, 1), got ${options.clip}`);
    return { kind: 'lvc', ...(baselines ? { baselines } : {}), ...options };
  },
  loadedDice: (lambda: number, baselines?: Baselines): Estimator => {
    if (!(lambda >= 0 && lambda <= 1)) throw new RangeError(`Loaded DiCE needs λ in [0, 1], got ${lambda}`);
    return { kind: 'loaded-dice', lambda, ...(baselines ? { baselines } : {}) };
  },
  tmaml: (baselines: Baselines): Estimator => ({ kind: 'tmaml', baselines }),
  /** A user-defined estimator: `estimators.custom('my estimator', (kit) => [...terms], { baselines, reference })`. */
  custom: (
    name: string,
    terms: CustomEstimator['terms'],
    options: { readonly baselines?: Baselines; readonly reference?: Reference } = {},
  ): Estimator => {
    if (typeof name !== 'string' || name.trim() === '') throw new TypeError('a custom estimator needs a non-empty name');
    if (typeof terms !== 'function') throw new TypeError(`custom estimator '${name}': terms must be a function of the estimator kit`);
    return { kind: 'custom', name, terms, ...options };
  },
} as const;

/** A short human name: 'Loaded DiCE (λ=0.5)'. */
export const estimatorName = (e: Estimator): string => {
  switch (e.kind) {
    case 'pgt':
      return 'PGT (naive score function)';
    case 'dice':
      return 'DiCE';
    case 'dice-baseline':
      return 'DiCE + baseline';
    case 'lvc':
      return e.clip === undefined ? 'LVC' : `clipped LVC (ε=${e.clip})`;
    case 'loaded-dice':
      return `Loaded DiCE (λ=${e.lambda})`;
    case 'tmaml':
      return 'TMAML';
    case 'custom':
      return e.name;
  }
};
