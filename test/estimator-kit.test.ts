/**
 * The custom-estimator kit (src/surrogates/compile.ts, `kitOf` and `customTerms`), each case a mutation
 * survivor: every ingredient a custom estimator is handed, used alone as its one term, with its
 * per-sample values and gradients against closed forms written out by hand. On a per-sample graph
 * (φ → z ~ softmax(φ) → cost r, and a cost q = Σφ² computed from φ) the score is
 * ∇_φ log softmax(φ)[z] = e_z − softmax(φ); on the RL chain the credit of the reward at step t is the
 * decay-discounted sum of the action log-probabilities up to t, and the costs an action influences are
 * the rewards from its step on.
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { scg } from '../src/scg/builder.ts';
import { BatchError, type Batch } from '../src/surrogates/batch.ts';
import { compile, GraphError } from '../src/surrogates/compile.ts';
import { estimators, type EstimatorKit } from '../src/surrogates/estimators.ts';
import { actions, batchOf, randomTrajectories, rlChain, states } from './helpers/rl-chain.ts';
import { softmax, softmaxScore } from './helpers/softmax.ts';

test.before(async () => {
  await selectBackend();
});

const phi0 = [0.4, -0.7];
const logSoftmax = (row: readonly number[]) => softmax(row).map(Math.log);
const scoreOf = (z: number) => softmaxScore(phi0, z);
const zs = [0, 1, 1, 0];
const r = [1.5, -0.5, 2, 0.25];
const b = [0.5, 0.25, -1, 1];
const behaviour = [-0.2, -1.1, -0.9, -0.4];

const graph = scg()
  .parameter('phi', { shape: [2] })
  .stochastic('z', { family: { type: 'categorical', categories: 2 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
  .cost('r', { parents: ['z'] })
  .cost('q', { parents: ['phi'], fn: ({ phi }) => tf.sum(tf.square(phi!)) })
  .build();
const batch = (extra: Partial<Batch> = {}): Batch => ({ values: { z: tf.tensor1d(zs, 'int32'), r: tf.tensor1d(r) }, ...extra });

type Term = (kit: EstimatorKit) => tf.Tensor | undefined;
/** Per-sample values and gradients (row i: ∂ surrogate_i / ∂φ at φ0) of a custom estimator whose one term is `term`. */
const run = (term: Term, options: Parameters<typeof estimators.custom>[2] = {}, extra: Partial<Batch> = {}) =>
  tf.tidy(() => {
    const s = compile(graph, estimators.custom('one term', (kit) => [term(kit)], options));
    const phi = tf.tensor1d(phi0);
    const values = Array.from(s.perSample({ phi }, batch(extra)).dataSync());
    const grads = zs.map((_, i) => {
      const pick = tf.oneHot(i, zs.length).asType('float32');
      // (+ 0·Σφ: a term that does not depend on φ has gradient 0, where tf.grad would refuse it)
      return Array.from(tf.grad((p: tf.Tensor) => tf.add(tf.sum(tf.mul(s.perSample({ phi: p }, batch(extra)), pick)), tf.mul(0, tf.sum(p))) as tf.Scalar)(phi).dataSync());
    });
    return { values, grads };
  });
const close = (a: readonly number[], want: readonly number[], tol = 1e-5) => a.length === want.length && a.every((x, k) => Math.abs(x - want[k]!) <= tol * Math.max(1, Math.abs(want[k]!)));
const zero = [0, 0];

test('the kit names the scored nodes and the costs, in declaration order', (t) => {
  let seen: { scored: readonly string[]; costs: readonly string[] } | undefined;
  run((kit) => {
    seen = { scored: kit.scored, costs: kit.costs };
    return undefined;
  });
  t.deepEqual(seen, { scored: ['z'], costs: ['r', 'q'] });
});

test('logProb(z) is log softmax(φ)[z] with the score as its gradient; cost(c) is the cost, r from the batch and q = Σφ² with gradient 2φ', (t) => {
  const lp = run((kit) => kit.logProb('z'));
  t.true(close(lp.values, zs.map((z) => logSoftmax(phi0)[z]!)), `ℓ ${lp.values}`);
  zs.forEach((z, i) => t.true(close(lp.grads[i]!, scoreOf(z)), `∇ℓ sample ${i}: ${lp.grads[i]}`));
  const cr = run((kit) => kit.cost('r'));
  t.true(close(cr.values, r));
  cr.grads.forEach((g) => t.true(close(g, zero)));
  const cq = run((kit) => kit.cost('q'));
  const q = phi0[0]! ** 2 + phi0[1]! ** 2;
  t.true(close(cq.values, zs.map(() => q)), `q ${cq.values}`);
  cq.grads.forEach((g) => t.true(close(g, phi0.map((p) => 2 * p)), `∇q ${g}`));
});

test('credit(r) is ℓ_z (z influences r); nothing influences q or z itself, so their credit is undefined (no term)', (t) => {
  const c = run((kit) => kit.credit('r'));
  t.true(close(c.values, zs.map((z) => logSoftmax(phi0)[z]!)));
  zs.forEach((z, i) => t.true(close(c.grads[i]!, scoreOf(z))));
  let none: unknown[] = [];
  run((kit) => {
    none = [kit.credit('q'), kit.credit('z'), kit.boxCredit('q'), kit.costsInfluencedBy('z') === undefined];
    return undefined;
  });
  t.deepEqual(none, [undefined, undefined, undefined, false]);
});

test('costsInfluencedBy(z) is r; baseline(z) is b (batch) or undefined; weight(z) is ⊥(r − b), r without a baseline, the batch’s advantage where given', (t) => {
  const q = run((kit) => kit.costsInfluencedBy('z'));
  t.true(close(q.values, r));
  const base = run((kit) => kit.baseline('z'), { baselines: { z: 'batch' } }, { baselines: { z: tf.tensor1d(b) } });
  t.true(close(base.values, b), `b ${base.values}`);
  base.grads.forEach((g) => t.true(close(g, zero)));
  let noBaseline: unknown = 'unset';
  run((kit) => {
    noBaseline = kit.baseline('z');
    return undefined;
  });
  t.is(noBaseline, undefined);
  const w = run((kit) => kit.weight('z'), { baselines: { z: 'batch' } }, { baselines: { z: tf.tensor1d(b) } });
  t.true(close(w.values, r.map((ri, i) => ri - b[i]!)), `weight ${w.values}`);
  w.grads.forEach((g) => t.true(close(g, zero), 'a weight is held constant'));
  t.true(close(run((kit) => kit.weight('z')).values, r), 'no baseline: Q');
  const advantage = [0.3, -0.6, 0.9, -1.2];
  t.true(close(run((kit) => kit.weight('z'), { baselines: { z: 'batch' } }, { baselines: { z: tf.tensor1d(b) }, advantages: { z: tf.tensor1d(advantage) } }).values, advantage));
});

test('box(z) and boxCredit(r) are 1 with the score as gradient on-policy, exp(ℓ − ℓ_behaviour) against the behaviour policy', (t) => {
  for (const term of [(kit: EstimatorKit) => kit.box('z'), (kit: EstimatorKit) => kit.boxCredit('r')] as Term[]) {
    const on = run(term);
    t.true(close(on.values, zs.map(() => 1)), `on-policy ${on.values}`);
    zs.forEach((z, i) => t.true(close(on.grads[i]!, scoreOf(z)), `sample ${i}: ${on.grads[i]}`));
    const off = run(term, { reference: 'behaviour' }, { behaviour: { z: tf.tensor1d(behaviour) } });
    const ratio = zs.map((z, i) => Math.exp(logSoftmax(phi0)[z]! - behaviour[i]!));
    t.true(close(off.values, ratio), `ratio ${off.values} vs ${ratio}`);
    zs.forEach((z, i) => t.true(close(off.grads[i]!, scoreOf(z).map((g) => g * ratio[i]!)), `∇ratio sample ${i}: ${off.grads[i]}`));
  }
});

test('pathwise() is Σ (c − ⊥c) over the costs computed by a function: 0, with gradient 2φ (q’s); undefined where no cost is computed', (t) => {
  const p = run((kit) => kit.pathwise());
  t.true(close(p.values, zs.map(() => 0)));
  p.grads.forEach((g) => t.true(close(g, phi0.map((x) => 2 * x)), `∇ ${g}`));
  const batchOnly = scg()
    .parameter('phi', { shape: [2] })
    .stochastic('z', { family: { type: 'categorical', categories: 2 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
    .cost('r', { parents: ['z'] })
    .build();
  let none: unknown = 'unset';
  tf.tidy(() => {
    compile(
      batchOnly,
      estimators.custom('pathwise only', (kit) => {
        none = kit.pathwise();
        return [];
      }),
    ).perSample({ phi: tf.tensor1d(phi0) }, batch());
  });
  t.is(none, undefined);
});

test('the kit refuses names that are not what it asks for, naming the estimator; a term of another shape than [B] or [B, T] is refused', (t) => {
  const refuse = (term: Term, message: RegExp, kind: 'graph' | 'batch' = 'graph') => {
    if (kind === 'batch') return t.throws(() => run(term), { instanceOf: BatchError, message });
    // a name the kit does not know is no problem of the graph's: the error lists none
    t.deepEqual(t.throws(() => run(term), { instanceOf: GraphError, message })?.problems, []);
    return undefined;
  };
  refuse((kit) => kit.logProb('r'), /^custom estimator 'one term': 'r' is not a scored stochastic node \(scored: z\)$/);
  refuse((kit) => kit.credit('phi'), /^custom estimator 'one term': 'phi' is neither a cost nor a scored stochastic node$/);
  refuse((kit) => kit.cost('z'), /^custom estimator 'one term': 'z' is not a cost node$/);
  refuse((kit) => tf.reshape(kit.cost('r'), [2, 2]), /^custom estimator 'one term': term 0 has shape \[2, 2\]; a term is \[B\] or \[B, T\] = \[4\] or \[4, 1\]$/, 'batch');
  refuse((kit) => tf.reshape(kit.cost('r'), [1, 4]), /term 0 has shape \[1, 4\]/, 'batch');
  refuse((kit) => tf.reshape(kit.cost('r'), [4, 1, 1]), /term 0 has shape \[4, 1, 1\]/, 'batch');
  refuse((kit) => tf.sum(kit.cost('r')), /term 0 has shape \[\]/, 'batch');
  refuse((kit) => tf.slice(kit.cost('r'), 0, 3), /term 0 has shape \[3\]/, 'batch');
  refuse((kit) => tf.reshape(tf.slice(kit.cost('r'), 0, 2), [2, 1]), /term 0 has shape \[2, 1\]/, 'batch');
  refuse((kit) => tf.stack([kit.cost('r'), kit.cost('r')], 1), /term 0 has shape \[4, 2\]/, 'batch');
  // [B, T] = [4, 1] here is a term too, summed over its one step
  t.true(close(run((kit) => tf.expandDims(kit.cost('r'), 1)).values, r));
});

test('on the RL chain: credit(r, λ) at step t is Σ_{t′≤t} λ^(t−t′) ℓ_a(t′) (λ = 1 by default); costsInfluencedBy(a) is the reward-to-go; a [B, T] term is summed over steps', (t) => {
  const [n, horizon] = [3, 4];
  const tr = randomTrajectories(n, horizon, 77);
  const theta = Array.from({ length: states * actions }, (_, k) => 0.3 * Math.sin(k + 1));
  const ell = tr.s.map((row, i) => row.map((s, k) => logSoftmax(theta.slice(s * actions, (s + 1) * actions))[tr.a[i]![k]!]!));
  const perStep = (term: Term) =>
    tf.tidy(() => {
      let out: number[] = [];
      compile(
        rlChain(),
        estimators.custom('per step', (kit) => {
          const x = term(kit)!;
          out = Array.from(x.dataSync());
          return [x];
        }),
      ).perSample({ theta: tf.tensor2d(theta, [states, actions]) }, batchOf(tr));
      return out;
    });
  for (const [decay, term] of [
    [1, (kit: EstimatorKit) => kit.credit('r')],
    [0.5, (kit: EstimatorKit) => kit.credit('r', 0.5)],
  ] as const) {
    const want = ell.flatMap((row) => row.map((_, k) => row.slice(0, k + 1).reduce((acc, l, j) => acc + decay ** (k - j) * l, 0)));
    t.true(close(perStep(term), want), `λ = ${decay}: ${perStep(term)} vs ${want}`);
  }
  // boxCredit(r, λ) is 1 on-policy, whatever λ
  t.true(close(perStep((kit) => kit.boxCredit('r', 0.5)), ell.flat().map(() => 1)));
  const toGo = tr.r.flatMap((row) => row.map((_, k) => row.slice(k).reduce((a, x) => a + x, 0)));
  t.true(close(perStep((kit) => kit.costsInfluencedBy('a')), toGo), 'reward-to-go');
  // the per-sample surrogate of a [B, T] term is its sum over steps
  const summed = tf.tidy(() =>
    Array.from(compile(rlChain(), estimators.custom('rewards', (kit) => [kit.cost('r')])).perSample({ theta: tf.tensor2d(theta, [states, actions]) }, batchOf(tr)).dataSync()),
  );
  t.true(close(summed, tr.r.map((row) => row.reduce((a, x) => a + x, 0))));
});

test('with two scored nodes (z1 → z2 → r, z2 ~ softmax(2φ)), each name finds its own node: logProb, credit and box of z2 are z2’s', (t) => {
  const two = scg()
    .parameter('phi', { shape: [2] })
    .stochastic('z1', { family: { type: 'categorical', categories: 2 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
    .stochastic('z2', { family: { type: 'categorical', categories: 2 }, parents: ['phi', 'z1'], distribution: ({ phi }) => ({ logits: tf.mul(phi!, 2) }) })
    .cost('r', { parents: ['z2'] })
    .build();
  const z2s = [1, 1, 0, 0];
  const twoPhi = phi0.map((p) => 2 * p);
  const ell1 = zs.map((z) => logSoftmax(phi0)[z]!);
  const ell2 = z2s.map((z) => logSoftmax(twoPhi)[z]!);
  const score2 = (z: number) => softmax(twoPhi).map((p, k) => 2 * ((k === z ? 1 : 0) - p));
  const runTwo = (term: Term) =>
    tf.tidy(() => {
      const s = compile(two, estimators.custom('two', (kit) => [term(kit)]));
      const b = (): Batch => ({ values: { z1: tf.tensor1d(zs, 'int32'), z2: tf.tensor1d(z2s, 'int32'), r: tf.tensor1d(r) } });
      const values = Array.from(s.perSample({ phi: tf.tensor1d(phi0) }, b()).dataSync());
      const grads = zs.map((_, i) => {
        const pick = tf.oneHot(i, zs.length).asType('float32');
        return Array.from(tf.grad((p: tf.Tensor) => tf.add(tf.sum(tf.mul(s.perSample({ phi: p }, b()), pick)), tf.mul(0, tf.sum(p))) as tf.Scalar)(tf.tensor1d(phi0)).dataSync());
      });
      return { values, grads };
    });
  let scored: readonly string[] = [];
  runTwo((kit) => {
    scored = kit.scored;
    return undefined;
  });
  t.deepEqual(scored, ['z1', 'z2']);
  const lp = runTwo((kit) => kit.logProb('z2'));
  t.true(close(lp.values, ell2), `ℓ_z2 ${lp.values} vs ${ell2}`);
  z2s.forEach((z, i) => t.true(close(lp.grads[i]!, score2(z)), `∇ℓ_z2 sample ${i}`));
  t.true(close(runTwo((kit) => kit.credit('z2')).values, ell1), 'S_z2 = ℓ_z1');
  t.true(close(runTwo((kit) => kit.credit('r')).values, ell1.map((l, i) => l + ell2[i]!)), 'S_r = ℓ_z1 + ℓ_z2');
  t.true(close(runTwo((kit) => kit.costsInfluencedBy('z1')).values, r), 'Q_z1 = r');
  const box = runTwo((kit) => kit.box('z2'));
  z2s.forEach((z, i) => t.true(close(box.grads[i]!, score2(z)), `∇□(ℓ_z2) sample ${i}`));
  const weight = runTwo((kit) => kit.weight('z2'));
  t.true(close(weight.values, r));
});
