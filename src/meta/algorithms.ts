/**
 * The meta-RL algorithms, each a row of one table: which formulation, which inner estimator, which
 * outer objective, which outer optimiser. Every objective is compiled from the task's RL graph; the
 * per-iteration machinery (sampling, advantages, adaptation, the outer step) is shared.
 *
 *   algorithm    formulation  inner (θ′ = θ + α∇·)      outer objective on D′               outer step
 *   promp        I            LVC ratio (J^LR)          clipped LVC ratio (J^CLIP) − η·KL   Adam × N
 *   maml-trpo    naive MAML   PGT                       LVC ratio                           TRPO
 *   maml-vpg     naive MAML   PGT                       LVC ratio                           Adam
 *   emaml-trpo   II           PGT                       LVC ratio + score term              TRPO
 *   emaml-vpg    II           PGT                       LVC ratio + score term              Adam
 *   lvc-vpg      I            LVC ratio                 LVC ratio                           Adam
 *   dice-vpg     I            DiCE + fitted baseline    DiCE + fitted baseline              Adam
 *   tmaml        I            TMAML (fitted baseline)   TMAML                               Adam
 *   dice-maml    I            DiCE on adjusted rewards  DiCE on adjusted rewards            Adam
 *   vpg-dice     I            DiCE on adjusted rewards  LVC ratio (VPG) on advantages       Adam
 *
 * The last two are the released code's DiCE runs: `dice-maml` is its DICEMAML (dice_maml.py, "DiCE-VPG"),
 * `vpg-dice` the DiCE arm of its gradient-variance study (VPG_DICE: vpg_dice_maml_extract_grads.py, Fig. 4),
 * whose LVC arm is `lvc-vpg`. Their credit is the released DiceSampleProcessor's: adjusted rewards
 * γᵗrₜ − b(t), b a cubic in t fitted per task, normalised over the task's steps (advantages.ts).
 *
 * "LVC ratio" is LVC measured against the behaviour policy: at the sampling parameters its value and
 * derivatives are LVC's, and it stays a correct importance weight when the parameters move.
 */
import * as tf from '@tensorflow/tfjs';
import type { Params } from '../surrogates/batch.ts';
import { estimators, type Estimator } from '../surrogates/estimators.ts';
import type { AlgorithmName } from './algorithm-names.ts';
import type { Formulation } from './meta-objective.ts';

export type OuterOptimizer = 'adam' | 'trpo' | 'promp';

/** What the advantage-like weight of each action is built from. */
export type Credit =
  /** GAE advantages (normalised per task) supplied as data: estimators that weight scores use them. */
  | 'advantages'
  /** Discounted rewards γ^t·r_t as costs, and γ^t·V(s_t) as the baseline: DiCE-family estimators. */
  | 'discounted-costs'
  /**
   * The released DiceSampleProcessor's adjusted rewards as costs (γ^t·r_t − b(t), normalised), and the
   * GAE advantages (normalised) for an outer objective that weights scores by them.
   */
  | 'adjusted-rewards';

export interface Algorithm {
  readonly name: AlgorithmName;
  readonly description: string;
  readonly formulation: Formulation;
  readonly inner: Estimator;
  /** The outer estimator; ProMP's clip range is filled in from the config. */
  readonly outer: (config: { readonly clip: number }) => Estimator;
  readonly optimizer: OuterOptimizer;
  readonly credit: Credit;
}

const ratio = { reference: 'behaviour' } as const;
/** The fitted linear baseline γ^t·V(s_t), supplied with the batch (DiCE + baseline's and TMAML's control variate). */
const fittedBaseline = { a: 'batch' } as const;

export const algorithms: Readonly<Record<AlgorithmName, Algorithm>> = {
  promp: {
    name: 'promp',
    description: 'ProMP (Rothfuss et al. 2019): formulation I with the LVC likelihood-ratio inner step, clipped outer objective and KL penalty',
    formulation: 'I',
    inner: estimators.lvc(undefined, ratio),
    outer: ({ clip }) => estimators.lvc(undefined, { clip, ...ratio }),
    optimizer: 'promp',
    credit: 'advantages',
  },
  'maml-trpo': {
    name: 'maml-trpo',
    description: 'MAML as originally implemented (naive inner estimator), TRPO outer step',
    formulation: 'naive-maml',
    inner: estimators.pgt(),
    outer: () => estimators.lvc(undefined, ratio),
    optimizer: 'trpo',
    credit: 'advantages',
  },
  'maml-vpg': {
    name: 'maml-vpg',
    description: 'MAML as originally implemented (naive inner estimator), policy-gradient outer step',
    formulation: 'naive-maml',
    inner: estimators.pgt(),
    outer: () => estimators.lvc(undefined, ratio),
    optimizer: 'adam',
    credit: 'advantages',
  },
  'emaml-trpo': {
    name: 'emaml-trpo',
    description: 'E-MAML (formulation II): score term for the pre-update trajectories, TRPO outer step',
    formulation: 'II',
    inner: estimators.pgt(),
    outer: () => estimators.lvc(undefined, ratio),
    optimizer: 'trpo',
    credit: 'advantages',
  },
  'emaml-vpg': {
    name: 'emaml-vpg',
    description: 'E-MAML (formulation II): score term for the pre-update trajectories, policy-gradient outer step',
    formulation: 'II',
    inner: estimators.pgt(),
    outer: () => estimators.lvc(undefined, ratio),
    optimizer: 'adam',
    credit: 'advantages',
  },
  'lvc-vpg': {
    name: 'lvc-vpg',
    description: 'formulation I with the LVC inner estimator, policy-gradient outer step',
    formulation: 'I',
    inner: estimators.lvc(undefined, ratio),
    outer: () => estimators.lvc(undefined, ratio),
    optimizer: 'adam',
    credit: 'advantages',
  },
  'dice-vpg': {
    name: 'dice-vpg',
    description: 'formulation I with the DiCE inner estimator (unbiased at every order, with the fitted baseline), policy-gradient outer step',
    formulation: 'I',
    inner: estimators.diceBaseline(fittedBaseline),
    outer: () => estimators.diceBaseline(fittedBaseline),
    optimizer: 'adam',
    credit: 'discounted-costs',
  },
  'dice-maml': {
    name: 'dice-maml',
    description: "the released code's DiCE-VPG (DICEMAML): DiCE at the inner and the outer level on baseline-adjusted rewards γᵗrₜ − b(t), normalised; policy-gradient outer step",
    formulation: 'I',
    inner: estimators.dice(),
    outer: () => estimators.dice(),
    optimizer: 'adam',
    credit: 'adjusted-rewards',
  },
  'vpg-dice': {
    name: 'vpg-dice',
    description: "the released gradient-variance study's DiCE arm (VPG_DICE): a DiCE inner step on adjusted rewards, the VPG (LVC ratio) outer objective on advantages; policy-gradient outer step",
    formulation: 'I',
    inner: estimators.dice(),
    outer: () => estimators.lvc(undefined, ratio),
    optimizer: 'adam',
    credit: 'adjusted-rewards',
  },
  tmaml: {
    name: 'tmaml',
    description: 'TMAML (Liu et al. 2019): DiCE with a zero-mean control variate at every order, policy-gradient outer step',
    formulation: 'I',
    inner: estimators.tmaml(fittedBaseline),
    outer: () => estimators.tmaml(fittedBaseline),
    optimizer: 'adam',
    credit: 'discounted-costs',
  },
};

/** Params → the same params with every tensor kept past the enclosing tidy. */
export const keepParams = (p: Params): Params => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, tf.keep(v)]));

export const disposeParams = (p: Params): void => tf.dispose(Object.values(p));
