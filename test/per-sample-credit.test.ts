/**
 * Per-sample checks the expectation-based ones cannot make. A baseline's term has zero mean at every
 * order, so the oracle, the properties and `verify` (all in expectation) cannot see a baseline dropped
 * from a score weight; the gradient of each sample's surrogate can. And a behaviour-referenced
 * estimator must ignore the behaviour log-probabilities recorded on padded steps, whatever they are.
 *
 * The reference values are written here in plain float64 JavaScript for the tabular RL chain
 * (test/helpers/rl-chain.ts): ∇_θ log softmax(θ[s])[a] = e_s ⊗ (e_a − softmax(θ[s])).
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import type { Batch } from '../src/surrogates/batch.ts';
import { compile } from '../src/surrogates/compile.ts';
import { estimators, estimatorName, type Estimator } from '../src/surrogates/estimators.ts';
import { actions, batchOf, randomTrajectories, rlChain, states } from './helpers/rl-chain.ts';

test.before(async () => {
  await selectBackend();
});

type Trajectories = ReturnType<typeof randomTrajectories>;

/** θ as nested float64 arrays [states][actions]. */
const theta0: number[][] = [
  [0.3, -0.4],
  [-0.2, 0.5],
  [0.8, 0.1],
  [-0.6, -0.3],
];

const softmax = (row: readonly number[]): number[] => {
  const m = Math.max(...row);
  const e = row.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
};

const logPi = (theta: readonly number[][], s: number, a: number): number => Math.log(softmax(theta[s]!)[a]!);

/** ∇_θ log π(a|s), flattened [states × actions]. */
const score = (theta: readonly number[][], s: number, a: number): number[] => {
  const g = new Array<number>(states * actions).fill(0);
  const p = softmax(theta[s]!);
  for (let k = 0; k < actions; k++) g[s * actions + k] = (k === a ? 1 : 0) - p[k]!;
  return g;
};

/** The state baseline the tests use: b(s) = 0.1·s (as a tensor function and as a number). */
const stateBaseline = ({ s }: Readonly<Record<string, tf.Tensor>>) => tf.mul(tf.cast(s!, 'float32'), 0.1);
const b = (s: number) => 0.1 * s;

/** Σ_t ∇ℓ_t·(R_≥t − b_t) for one trajectory (withBaseline false: Σ_t ∇ℓ_t·R_≥t), float64. */
const handWrittenGradient = (tr: Trajectories, i: number, withBaseline: boolean): number[] => {
  const g = new Array<number>(states * actions).fill(0);
  const r = tr.r[i]!;
  for (let t = 0; t < r.length; t++) {
    const rewardToGo = r.slice(t).reduce((x, y) => x + y, 0);
    const weight = rewardToGo - (withBaseline ? b(tr.s[i]![t]!) : 0);
    score(theta0, tr.s[i]![t]!, tr.a[i]![t]!).forEach((v, k) => (g[k]! += v * weight));
  }
  return g;
};

/** The gradient of sample i's surrogate at θ (picked by a product: wasm has no gather gradient). */
const perSampleGradient = (e: Estimator, batch: Batch, theta: tf.Tensor, i: number): number[] =>
  tf.tidy(() => {
    const surrogate = compile(rlChain(), e);
    const size = batch.values.r!.shape[0]!;
    const pick = tf.tensor1d(Array.from({ length: size }, (_, k) => (k === i ? 1 : 0)));
    return Array.from(tf.grad((th: tf.Tensor) => tf.sum(tf.mul(surrogate.perSample({ theta: th }, batch), pick)) as tf.Scalar)(theta).dataSync());
  });

const maxDiff = (a: readonly number[], c: readonly number[]) => Math.max(...a.map((x, k) => Math.abs(x - c[k]!)));

test('each sample\'s gradient is Σ_t ∇ℓ_t (R_≥t − b_t) for PGT, LVC, Loaded DiCE and DiCE + baseline with a state baseline (and Σ_t ∇ℓ_t R_≥t for TMAML)', (t) => {
  const tr = randomTrajectories(5, 4, 21);
  const withBaseline: Estimator[] = [
    estimators.pgt({ a: stateBaseline }),
    estimators.lvc({ a: stateBaseline }),
    estimators.loadedDice(1, { a: stateBaseline }),
    estimators.loadedDice(0.5, { a: stateBaseline }),
    estimators.diceBaseline({ a: stateBaseline }),
    // The same baseline read from the batch instead of computed from the parents.
    estimators.lvc({ a: 'batch' }),
    estimators.pgt({ a: 'batch' }),
  ];
  tf.tidy(() => {
    const theta = tf.tensor2d(theta0);
    const batch: Batch = { ...batchOf(tr), baselines: { a: tf.tensor2d(tr.s.map((row) => row.map(b))) } };
    for (let i = 0; i < tr.r.length; i++) {
      const expected = handWrittenGradient(tr, i, true);
      const without = handWrittenGradient(tr, i, false);
      // The baseline must matter for the check to mean anything.
      t.true(maxDiff(expected, without) > 1e-2, `sample ${i}: the baseline changes the gradient`);
      for (const e of withBaseline) {
        const g = perSampleGradient(e, batch, theta, i);
        t.true(maxDiff(g, expected) < 1e-5, `${estimatorName(e)} sample ${i}: ${g.map((x) => x.toFixed(5))} vs ${expected.map((x) => x.toFixed(5))}`);
      }
      // TMAML's first derivative is DiCE's: its control variate has no first-order baseline term.
      const tmaml = perSampleGradient(estimators.tmaml({ a: stateBaseline }), batch, theta, i);
      t.true(maxDiff(tmaml, without) < 1e-5, `TMAML sample ${i}`);
    }
  });
});

test('behaviour-referenced estimators ignore what padded steps record: −200 there gives each trajectory exactly its unpadded value and gradient', (t) => {
  const horizon = 4;
  const lengths = [4, 2, 1];
  const tr = randomTrajectories(lengths.length, horizon, 22);
  const mask = lengths.map((n) => Array.from({ length: horizon }, (_, k) => (k < n ? 1 : 0)));
  // The behaviour policy: θ_o; the surrogate is evaluated at θ ≠ θ_o (ProMP's later outer steps).
  const thetaOld = theta0;
  const thetaNew = theta0.map((row, s) => row.map((x, a) => x + 0.15 * (s - a)));
  const behaviourOf = (i: number, n: number) => Array.from({ length: n }, (_, k) => logPi(thetaOld, tr.s[i]![k]!, tr.a[i]![k]!));
  const paddedBehaviour = lengths.map((n, i) => [...behaviourOf(i, n), ...new Array<number>(horizon - n).fill(-200)]);
  const withRef = (e: Estimator): Estimator => ({ ...e, reference: 'behaviour' }) as Estimator;
  const referenced: Estimator[] = [
    withRef(estimators.lvc()),
    estimators.lvc(undefined, { clip: 0.2, reference: 'behaviour' }),
    withRef(estimators.dice()),
    withRef(estimators.diceBaseline({ a: stateBaseline })),
    withRef(estimators.tmaml({ a: stateBaseline })),
    withRef(estimators.loadedDice(0.5, { a: stateBaseline })),
  ];
  tf.tidy(() => {
    const theta = tf.tensor2d(thetaNew);
    const padded: Batch = { ...batchOf(tr, mask), behaviour: { a: tf.tensor2d(paddedBehaviour) } };
    for (const e of referenced) {
      const surrogate = compile(rlChain(), e);
      const values = Array.from(surrogate.perSample({ theta }, padded).dataSync());
      t.true(values.every(Number.isFinite), `${estimatorName(e)}: finite on padded steps (${values})`);
      lengths.forEach((n, i) => {
        const cut = { s: [tr.s[i]!.slice(0, n)], a: [tr.a[i]!.slice(0, n)], r: [tr.r[i]!.slice(0, n)] };
        const alone: Batch = { ...batchOf(cut), behaviour: { a: tf.tensor2d([behaviourOf(i, n)]) } };
        const value = surrogate.perSample({ theta }, alone).dataSync()[0]!;
        t.true(Math.abs(values[i]! - value) < 1e-5 * Math.max(1, Math.abs(value)), `${estimatorName(e)} value, trajectory ${i}: ${values[i]} vs ${value}`);
        const g = perSampleGradient(e, padded, theta, i);
        const gAlone = perSampleGradient(e, alone, theta, 0);
        t.true(g.every(Number.isFinite) && maxDiff(g, gAlone) < 1e-5, `${estimatorName(e)} gradient, trajectory ${i}: ${g} vs ${gAlone}`);
      });
      // Away from θ_o the ratio is not 1: the check is on a real importance weight.
      const atOld = Array.from(surrogate.perSample({ theta: tf.tensor2d(thetaOld) }, padded).dataSync());
      t.true(maxDiff(values, atOld) > 1e-4, `${estimatorName(e)}: θ ≠ θ_o changes the value`);
    }
  });
});
