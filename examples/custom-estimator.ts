/**
 * A new estimator without touching the compiler (docs/extending.md, "A new estimator"): an estimator is
 * a value, `estimators.custom(name, terms)`, whose `terms` assemble the surrogate from the same
 * ingredients the built-in estimators are made of (ℓ_w, S_y, Q_w, b_w, □), which the compiler derives
 * from the graph. The example defines
 *
 *   DiCE + first-order baseline:   L = Σ_c □(S_c)·c + Σ_w (1 − □(ℓ_w))·b_w
 *
 * (the first-order baseline alone, without the cross terms DiCE + baseline also corrects: by the
 * identity in docs/concepts.md §3, DiCE + baseline = this + TMAML's variate), checks with the exactness
 * oracle that it is unbiased at orders 1–3 on the built-in graphs, and re-expresses LVC to show that a
 * kit-built estimator equals the built-in one. Run: npx tsx examples/custom-estimator.ts
 */
import * as tf from '@tensorflow/tfjs';
import { builtinProblems, describeBackend, estimators, selectBackend, verify, type Baselines, type Estimator } from '../src/index.ts';

console.log(describeBackend(await selectBackend()));

/** Σ_c □(S_c)·c + Σ_w (1 − □(ℓ_w))·b_w, written with the estimator kit. */
export const diceFirstOrderBaseline = (baselines: Baselines): Estimator =>
  estimators.custom(
    'DiCE + first-order baseline',
    (kit) => [
      ...kit.costs.map((c) => {
        const box = kit.boxCredit(c);
        return box === undefined ? kit.cost(c) : tf.mul(box, kit.cost(c));
      }),
      ...kit.scored.map((w) => {
        const b = kit.baseline(w);
        return b === undefined ? undefined : tf.mul(tf.sub(1, kit.box(w)), b);
      }),
    ],
    { baselines },
  );

/** LVC, Σ_w □(ℓ_w)·⊥(Q_w − b_w) + Σ_c (c − ⊥c), from the kit: the same numbers as estimators.lvc(). */
export const lvcFromKit = (baselines?: Baselines): Estimator =>
  estimators.custom(
    'LVC (from the kit)',
    (kit) => [
      ...kit.scored.map((w) => {
        const weight = kit.weight(w);
        return weight === undefined ? undefined : tf.mul(kit.box(w), weight);
      }),
      kit.pathwise(),
    ],
    baselines === undefined ? {} : { baselines },
  );

for (const problem of builtinProblems()) {
  const [check] = verify([problem], { estimators: [diceFirstOrderBaseline(problem.baselines), lvcFromKit(), estimators.lvc()] });
  for (const e of check!.estimators) {
    const cells = e.orders.map((o) => `${o.relativeError.toExponential(1)} ${o.unbiased ? 'exact' : 'biased'}`);
    console.log(`${problem.name}: ${e.estimator.padEnd(28)} ${cells.join('   ')}`);
  }
}
