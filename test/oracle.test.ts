/**
 * The exactness oracle's claims, and the oracle itself checked against an independent float64
 * computation of the MDP (dynamic programming and finite differences, following the paper's own
 * definitions of J, the Hessian and H12 = E[Σ_t ∇log π_t ∇Q^π_tᵀ]).
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { relativeError, subtract, type Matrix } from '../src/oracle/derivatives.ts';
import { derivatives, directions, hessianTerms, oracle } from '../src/oracle/oracle.ts';
import { builtinProblems, mdpChain, mdpTables } from '../src/oracle/problems.ts';
import { exactTolerance, verify, type EstimatorCheck } from '../src/oracle/verify.ts';
import { estimators } from '../src/surrogates/estimators.ts';

test.before(async () => {
  await selectBackend();
});

const reports = () => verify(builtinProblems());

const order = (e: EstimatorCheck, k: 1 | 2 | 3) => e.orders.find((o) => o.order === k)!;

test('DiCE, DiCE + baseline and TMAML are exact at orders 1, 2 and 3 on every built-in graph', (t) => {
  for (const g of reports()) {
    for (const kind of ['dice', 'dice-baseline', 'tmaml'] as const) {
      const e = g.estimators.find((x) => x.kind === kind)!;
      for (const k of [1, 2, 3] as const) {
        t.true(order(e, k).relativeError < exactTolerance, `${g.graph} ${e.estimator} order ${k}: ${order(e, k).relativeError}`);
      }
    }
  }
});

test('every estimator is unbiased at order 1; LVC and PGT are biased at order 2 by exactly the predicted terms', (t) => {
  for (const g of reports()) {
    t.true(g.decomposition?.holds, `${g.graph}: H1 + H2 + H12 + H12ᵀ should equal the exact Hessian`);
    for (const e of g.estimators) t.true(order(e, 1).unbiased, `${g.graph} ${e.estimator} order 1`);
    for (const kind of ['lvc', 'pgt'] as const) {
      const e = g.estimators.find((x) => x.kind === kind)!;
      const second = order(e, 2);
      t.false(second.unbiased, `${g.graph} ${e.estimator} should be biased at order 2`);
      t.true(second.relativeError > 1e-2, `${g.graph} ${e.estimator}: the bias is material`);
      t.true(second.predictedBias?.matches, `${g.graph} ${e.estimator}: bias ${second.predictedBias?.terms} off by ${second.predictedBias?.relativeError}`);
    }
  }
});

test('Loaded DiCE with λ = 1 is exact on the RL chain, and λ < 1 trades bias at order ≥ 2 only', (t) => {
  const chain = reports().find((g) => g.graph === 'mdp-chain')!;
  const full = chain.estimators.find((e) => e.estimator === 'Loaded DiCE (λ=1)')!;
  const half = chain.estimators.find((e) => e.estimator === 'Loaded DiCE (λ=0.5)')!;
  for (const k of [1, 2, 3] as const) t.true(order(full, k).unbiased);
  t.true(order(half, 1).unbiased);
  t.false(order(half, 2).unbiased);
});

test('LVC with baselines keeps the expected Hessian H1 + H2 (baselines have zero-mean second derivatives)', (t) => {
  for (const p of builtinProblems()) {
    const o = oracle(p);
    const terms = hessianTerms(o);
    const lvc = derivatives(o.expected(estimators.lvc(p.baselines)), o.layout.flat, [], 2).order2;
    const predicted = terms.h1.map((row, i) => row.map((x, j) => x + terms.h2[i]![j]!));
    t.true(relativeError(lvc, predicted) < exactTolerance, p.name);
    o.dispose();
  }
});

// ---- An independent float64 model of the MDP, from its tables ----

const softmax = (xs: readonly number[]): number[] => {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
};

const mdp = mdpTables();
const { states: S, actions: A, horizon: H } = mdp;
const transition = (s: number, a: number) => softmax(mdp.transitionLogits.slice((s * A + a) * S, (s * A + a + 1) * S));
const policy = (theta: readonly number[], s: number) => softmax(theta.slice(s * A, (s + 1) * A));

/** J(θ) by forward recursion over state distributions. */
const objective = (theta: readonly number[]): number => {
  let d = softmax(mdp.initialLogits);
  let j = 0;
  for (let t = 0; t < H; t++) {
    const next = new Array<number>(S).fill(0);
    for (let s = 0; s < S; s++) {
      const pi = policy(theta, s);
      for (let a = 0; a < A; a++) {
        j += d[s]! * pi[a]! * mdp.rewards[s * A + a]!;
        transition(s, a).forEach((p, s2) => (next[s2]! += d[s]! * pi[a]! * p));
      }
    }
    d = next;
  }
  return j;
};

/** Q^π_t(s, a) by backward recursion. */
const qValues = (theta: readonly number[]): number[][][] => {
  const q: number[][][] = [];
  let v = new Array<number>(S).fill(0);
  for (let t = H - 1; t >= 0; t--) {
    const qt = Array.from({ length: S }, (_, s) =>
      Array.from({ length: A }, (_, a) => mdp.rewards[s * A + a]! + transition(s, a).reduce((acc, p, s2) => acc + p * v[s2]!, 0)),
    );
    v = qt.map((row, s) => row.reduce((acc, x, a) => acc + policy(theta, s)[a]! * x, 0));
    q[t] = qt;
  }
  return q;
};

const shifted = (theta: readonly number[], i: number, h: number) => theta.map((x, k) => (k === i ? x + h : x));
const fdGradient = (f: (th: readonly number[]) => number, theta: readonly number[], h = 1e-5) =>
  theta.map((_, i) => (f(shifted(theta, i, h)) - f(shifted(theta, i, -h))) / (2 * h));
const fdHessian = (f: (th: readonly number[]) => number, theta: readonly number[], h = 1e-4): Matrix =>
  theta.map((_, i) => fdGradient(f, theta, h).map((_, j) => {
    const pp = f(shifted(shifted(theta, i, h), j, h));
    const pm = f(shifted(shifted(theta, i, h), j, -h));
    const mp = f(shifted(shifted(theta, i, -h), j, h));
    const mm = f(shifted(shifted(theta, i, -h), j, -h));
    return (pp - pm - mp + mm) / (4 * h * h);
  }));

/** H12 = Σ_t E[∇log π(a_t|s_t) ∇Q^π_t(s_t, a_t)ᵀ] (ProMP eq. 46), with ∇Q by finite differences. */
const paperH12 = (theta: readonly number[]): Matrix => {
  const d = theta.length;
  const h12: Matrix = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  const gradQ = theta.map((_, i) => {
    const up = qValues(shifted(theta, i, 1e-5));
    const down = qValues(shifted(theta, i, -1e-5));
    return up.map((qt, t) => qt.map((row, s) => row.map((x, a) => (x - down[t]![s]![a]!) / 2e-5)));
  }); // [i][t][s][a]
  let dist = softmax(mdp.initialLogits);
  for (let t = 0; t < H; t++) {
    const next = new Array<number>(S).fill(0);
    for (let s = 0; s < S; s++) {
      const pi = policy(theta, s);
      for (let a = 0; a < A; a++) {
        const weight = dist[s]! * pi[a]!;
        // ∂ log π(a|s) / ∂θ[s′, a′] = δ(s, s′)·(δ(a, a′) − π(a′|s)) for a tabular softmax policy.
        const score = theta.map((_, k) => (Math.floor(k / A) === s ? (k % A === a ? 1 : 0) - pi[k % A]! : 0));
        for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) h12[i]![j]! += weight * score[i]! * gradQ[j]![t]![s]![a]!;
        transition(s, a).forEach((p, s2) => (next[s2]! += weight * p));
      }
    }
    dist = next;
  }
  return h12;
};

test('the oracle agrees with an independent float64 model of the MDP: J, ∇J, ∇²J', (t) => {
  const o = oracle(mdpChain());
  const theta = o.layout.flat;
  const exact = derivatives(o.exact, theta, [], 2);
  const value = tf.tidy(() => o.exact(tf.tensor1d([...theta])).dataSync()[0]!);
  t.true(Math.abs(value - objective(theta)) < 1e-5 * Math.abs(objective(theta)), `J = ${value} vs ${objective(theta)}`);
  t.true(relativeError(exact.order1, fdGradient(objective, theta)) < 1e-5);
  t.true(relativeError(exact.order2, fdHessian(objective, theta)) < 1e-4);
  o.dispose();
});

test("LVC's bias on the MDP is H12 + H12ᵀ with the paper's H12 = E[Σ_t ∇log π_t ∇Q^π_tᵀ]", (t) => {
  const o = oracle(mdpChain());
  const theta = o.layout.flat;
  const exact = derivatives(o.exact, theta, [], 2).order2;
  const lvc = derivatives(o.expected(estimators.lvc()), theta, [], 2).order2;
  const h12 = paperH12(theta);
  const predicted = h12.map((row, i) => row.map((x, j) => x + h12[j]![i]!));
  const bias = subtract(exact, lvc);
  t.true(relativeError(bias, predicted) < 1e-3, `relative error ${relativeError(bias, predicted)}`);
  o.dispose();
});

test('third-derivative slices differ between directions (the order-3 check is not vacuous)', (t) => {
  const o = oracle(mdpChain());
  const us = directions(o.layout.size, 2);
  const third = derivatives(o.exact, o.layout.flat, us).order3;
  t.true(relativeError(third[0]!, third[1]!) > 1e-2);
  t.true(Math.max(...third[0]!.flat().map(Math.abs)) > 1e-3);
  o.dispose();
});
