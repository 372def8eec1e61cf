/**
 * What `verify` checks beyond expectations (src/oracle/closed-forms.ts), on the problems it runs:
 * every outcome's gradient against Σ_i ∇ℓ_i (Q_i − b_i) + Σ_c ∇c, the biased estimators' expected
 * Hessians against their own closed forms, clipped LVC at θ ≠ θ_o; and that each of these checks can
 * fail (the quantities they compare are not equal by construction), and fails the verdict.
 */
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { allAsPredicted } from '../src/cli/verify.ts';
import { expectedHessianClosedForm, perSampleClosedForm, perSampleGradients } from '../src/oracle/closed-forms.ts';
import { relativeError } from '../src/oracle/derivatives.ts';
import { costsDependOnParameters, oracle } from '../src/oracle/oracle.ts';
import { lagTwoChain, pathwiseChain, verifyProblems } from '../src/oracle/problems.ts';
import { verify, type GraphCheck } from '../src/oracle/verify.ts';
import { influenceQuery } from '../src/scg/influence.ts';
import { estimators } from '../src/surrogates/estimators.ts';

test.before(async () => {
  await selectBackend();
});

test('verify runs a graph with a θ-dependent cost and one whose influence starts at lag 2', (t) => {
  t.deepEqual(verifyProblems().map((p) => p.name), ['mdp-chain', 'two-cost-dag', 'pathwise-chain', 'lag-two-chain']);
  const lagTwo = lagTwoChain();
  const q = influenceQuery(lagTwo.graph.spec, lagTwo.horizon);
  const lags = (from: string, to: string) => {
    const inf = q.influence(from, to);
    return inf.kind === 'lags' ? inf.lags : inf.kind;
  };
  t.deepEqual(lags('a', 'r'), [false, false, true, true, true], 'an action reaches the rewards two steps later, and on');
  t.deepEqual(lags('a', 'a'), [false, false, true, true, true]);
  const o = oracle(pathwiseChain());
  t.true(costsDependOnParameters(o));
  o.dispose();
});

test('the per-sample check has teeth: with a baseline, each outcome\'s gradient differs from the baseline-free closed form', (t) => {
  for (const p of verifyProblems()) {
    const o = oracle(p);
    for (const e of [estimators.lvc(p.baselines), estimators.pgt(p.baselines), estimators.loadedDice(0.5, p.baselines)]) {
      const measured = perSampleGradients(o, e);
      t.true(relativeError(measured, perSampleClosedForm(o, p.baselines)) < 1e-4, `${p.name} ${e.kind}: matches with its baseline`);
      t.true(relativeError(measured, perSampleClosedForm(o, undefined)) > 1e-2, `${p.name} ${e.kind}: the baseline shows per sample`);
    }
    o.dispose();
  }
});

test('Loaded DiCE\'s closed-form Hessian depends on λ on the RL chains (the check sees a λ that is ignored)', (t) => {
  for (const p of verifyProblems().filter((x) => x.name === 'mdp-chain' || x.name === 'lag-two-chain')) {
    const o = oracle(p);
    const half = expectedHessianClosedForm(o, estimators.loadedDice(0.5, p.baselines));
    const full = expectedHessianClosedForm(o, estimators.loadedDice(1, p.baselines));
    const lvc = expectedHessianClosedForm(o, estimators.lvc(p.baselines));
    t.true(relativeError(half, full) > 1e-3, `${p.name}: λ = 0.5 vs 1`);
    t.true(relativeError(half, lvc) > 1e-3, `${p.name}: λ = 0.5 vs LVC`);
    o.dispose();
  }
});

test('every closed-form check holds on every problem verify runs, with clipping active in a good share of terms', (t) => {
  const checks = verify(verifyProblems());
  t.true(allAsPredicted(checks));
  for (const g of checks) {
    t.true(g.clippedRatio.holds, `${g.graph}: clipped LVC value ${g.clippedRatio.valueError}, gradient ${g.clippedRatio.gradientError}`);
    t.true(g.clippedRatio.clippedShare > 0.1 && g.clippedRatio.clippedShare < 0.9, `${g.graph}: ${g.clippedRatio.clippedShare} of the terms clipped`);
    for (const e of g.estimators) {
      t.true(e.perSample.holds, `${g.graph} ${e.estimator}: per sample ${e.perSample.relativeError}`);
      const second = e.orders.find((o) => o.order === 2)!;
      if (['pgt', 'lvc', 'loaded-dice'].includes(e.kind)) t.true(second.closedForm?.matches, `${g.graph} ${e.estimator}: ${second.closedForm?.relativeError}`);
    }
  }
});

const graphWith = (patch: { perSample?: boolean; closedForm?: boolean; clipped?: boolean }): GraphCheck => ({
  graph: 'g',
  description: '',
  parameters: 1,
  outcomes: 1,
  horizon: 1,
  estimators: [
    {
      estimator: 'Loaded DiCE (λ=0.5)',
      kind: 'loaded-dice',
      orders: [
        { order: 1, maxAbsError: 0, relativeError: 0, unbiased: true },
        { order: 2, maxAbsError: 1, relativeError: 1, unbiased: false, closedForm: { relativeError: 0, matches: patch.closedForm ?? true } },
        { order: 3, maxAbsError: 1, relativeError: 1, unbiased: false },
      ],
      perSample: { relativeError: 0, holds: patch.perSample ?? true },
    },
  ],
  clippedRatio: { clip: 0.3, shift: 1, clippedShare: 0.3, valueError: 0, gradientError: 0, holds: patch.clipped ?? true },
});

test('a failed per-sample, closed-form or clipped-LVC check fails the verdict', (t) => {
  t.true(allAsPredicted([graphWith({})]));
  t.false(allAsPredicted([graphWith({ perSample: false })]));
  t.false(allAsPredicted([graphWith({ closedForm: false })]));
  t.false(allAsPredicted([graphWith({ clipped: false })]));
});
