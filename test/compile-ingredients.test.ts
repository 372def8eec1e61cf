/**
 * The compiler's ingredients on the graphs the RL-chain tests do not build (each case a mutation
 * survivor of src/surrogates/compile.ts): a per-sample source and cost (influence `same`), a per-sample
 * source reaching a per-step cost from step 1 on (`broadcast` with fromStep 1), baselines read from the
 * batch or returned as [B, 1], and costs that depend on the parameters directly (the pathwise term).
 * Per-sample values and gradients against the score function written out by hand:
 * ∇_φ log softmax(φ)[z] = e_z − softmax(φ).
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { lag, scg, type Graph, type NodeImpl } from '../src/scg/builder.ts';
import { BatchError, type Batch } from '../src/surrogates/batch.ts';
import { assertCompilable, compile, GraphError } from '../src/surrogates/compile.ts';
import { meanKl } from '../src/surrogates/divergence.ts';
import { estimators, estimatorName, type Estimator } from '../src/surrogates/estimators.ts';
import { batchOf, randomTrajectories, rlChain } from './helpers/rl-chain.ts';
import { softmax, softmaxScore } from './helpers/softmax.ts';

test.before(async () => {
  await selectBackend();
});

const phi0 = [0.4, -0.7];
const scoreOf = (z: number) => softmaxScore(phi0, z);
const zs = [0, 1, 1, 0];

/** Per-sample values and gradients (row i: ∂ surrogate_i / ∂φ) of a compiled graph at φ0. */
const perSample = (graph: Parameters<typeof compile>[0], e: Estimator, batch: () => Batch) =>
  tf.tidy(() => {
    const s = compile(graph, e);
    const phi = tf.tensor1d(phi0);
    const values = Array.from(s.perSample({ phi }, batch()).dataSync());
    const grads = zs.map((_, i) => {
      const pick = tf.oneHot(i, zs.length).asType('float32');
      return Array.from(tf.grad((p: tf.Tensor) => tf.sum(tf.mul(s.perSample({ phi: p }, batch()), pick)) as tf.Scalar)(phi).dataSync());
    });
    return { values, grads };
  });
const close = (a: readonly number[], b: readonly number[], tol = 1e-5) => a.length === b.length && a.every((x, k) => Math.abs(x - b[k]!) <= tol * Math.max(1, Math.abs(b[k]!)));

test('a per-sample source and cost: DiCE, PGT and LVC weight the score by r − b (b from the batch, or a [B, 1] function)', (t) => {
  const graph = scg()
    .parameter('phi', { shape: [2] })
    .stochastic('z', { family: { type: 'categorical', categories: 2 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
    .cost('r', { parents: ['z'] })
    .build();
  const r = [1.5, -0.5, 2, 0.25];
  const b = [0.5, 0.25, -1, 1];
  const batch = (): Batch => ({ values: { z: tf.tensor1d(zs, 'int32'), r: tf.tensor1d(r) }, baselines: { z: tf.tensor1d(b) } });
  const dice = perSample(graph, estimators.dice(), batch);
  t.true(close(dice.values, r), `DiCE values ${dice.values}`);
  zs.forEach((z, i) => t.true(close(dice.grads[i]!, scoreOf(z).map((g) => g * r[i]!)), `DiCE sample ${i}: ${dice.grads[i]}`));
  const withBaseline: Estimator[] = [estimators.pgt({ z: 'batch' }), estimators.lvc({ z: 'batch' }), estimators.pgt({ z: () => tf.reshape(tf.tensor1d(b), [4, 1]) })];
  for (const e of withBaseline) {
    const { grads } = perSample(graph, e, batch);
    zs.forEach((z, i) => t.true(close(grads[i]!, scoreOf(z).map((g) => g * (r[i]! - b[i]!))), `${estimatorName(e)} sample ${i}: ${grads[i]}`));
  }
});

test('a per-sample source reaching a per-step cost from step 1 on: only c_1, c_2, … carry its credit (DiCE and PGT)', (t) => {
  // z → s_t (per step, from the batch) → c_t reads s_{t−1}: z influences c from step 1 (a broadcast from step 1)
  const graph = scg()
    .parameter('phi', { shape: [2] })
    .stochastic('z', { family: { type: 'categorical', categories: 2 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
    .deterministic('s', { temporal: true, parents: ['z'] })
    .cost('c', { temporal: true, parents: [lag('s', 1)] })
    .build();
  const c = [
    [5, 1, 2],
    [7, -1, 0.5],
    [-3, 2, 2],
    [1, 0.5, -0.5],
  ];
  const batch = (): Batch => ({ values: { z: tf.tensor1d(zs, 'int32'), s: tf.zeros([4, 3]), c: tf.tensor2d(c) } });
  const late = c.map((row) => row[1]! + row[2]!);
  for (const e of [estimators.dice(), estimators.pgt()]) {
    const { values, grads } = perSample(graph, e, batch);
    if (e.kind === 'dice') t.true(close(values, c.map((row) => row[0]! + row[1]! + row[2]!)), `DiCE values ${values}`);
    zs.forEach((z, i) => t.true(close(grads[i]!, scoreOf(z).map((g) => g * late[i]!)), `${estimatorName(e)} sample ${i}: ${grads[i]} (c_0 = ${c[i]![0]} must not count)`));
  }
});

test('a cost that depends on φ directly: LVC and Loaded DiCE add its pathwise derivative (a batch cost adds none); PGT its value and derivative', (t) => {
  // r = 3·φ₀·(z + 1), computed; q from the batch. ∇_φ r = [3(z + 1), 0].
  const graph = scg()
    .parameter('phi', { shape: [2] })
    .stochastic('z', { family: { type: 'categorical', categories: 2 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
    .cost('r', { parents: ['z', 'phi'], fn: ({ z, phi }) => tf.mul(tf.mul(3, tf.slice(phi!, [0], [1])), tf.add(tf.cast(z!, 'float32'), 1)) })
    .cost('q', { parents: ['z'] })
    .build();
  const q = [1, -2, 0.5, 3];
  const batch = (): Batch => ({ values: { z: tf.tensor1d(zs, 'int32'), q: tf.tensor1d(q) } });
  const r = zs.map((z) => 3 * phi0[0]! * (z + 1));
  for (const e of [estimators.lvc(), estimators.loadedDice(1), estimators.pgt()]) {
    const { values, grads } = perSample(graph, e, batch);
    // LVC / Loaded DiCE: □·(r + q) (value r + q at □ = 1) plus r − ⊥r; PGT: log π·⊥(r + q) plus r + q themselves
    const wantValues = zs.map((_, i) => (e.kind === 'pgt' ? Math.log(softmax(phi0)[zs[i]!]!) * (r[i]! + q[i]!) + r[i]! + q[i]! : e.kind === 'lvc' ? r[i]! + q[i]! : 0));
    t.true(close(values, wantValues), `${estimatorName(e)} values ${values} vs ${wantValues}`);
    zs.forEach((z, i) => {
      const want = scoreOf(z).map((g, k) => g * (r[i]! + q[i]!) + (k === 0 ? 3 * (z + 1) : 0));
      t.true(close(grads[i]!, want), `${estimatorName(e)} sample ${i}: ${grads[i]} vs ${want}`);
    });
  }
});

test('two independent branches: each score is weighted by its own cost only (a cost its node does not influence adds nothing)', (t) => {
  // z → r and y → u, both drawn from softmax(φ): ∇ per sample = (e_z − p)·r + (e_y − p)·u
  const graph = scg()
    .parameter('phi', { shape: [2] })
    .stochastic('z', { family: { type: 'categorical', categories: 2 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
    .stochastic('y', { family: { type: 'categorical', categories: 2 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
    .cost('r', { parents: ['z'] })
    .cost('u', { parents: ['y'] })
    .build();
  const ys = [1, 0, 1, 1];
  const r = [1, 2, -1, 0.5];
  const u = [10, -20, 30, 40];
  const batch = (): Batch => ({ values: { z: tf.tensor1d(zs, 'int32'), y: tf.tensor1d(ys, 'int32'), r: tf.tensor1d(r), u: tf.tensor1d(u) } });
  for (const e of [estimators.pgt(), estimators.lvc(), estimators.dice()]) {
    const { grads } = perSample(graph, e, batch);
    zs.forEach((z, i) => {
      const want = scoreOf(z).map((g, k) => g * r[i]! + scoreOf(ys[i]!)[k]! * u[i]!);
      t.true(close(grads[i]!, want), `${estimatorName(e)} sample ${i}: ${grads[i]} vs ${want}`);
    });
  }
});

test('baselines of a per-step node: [B, T] kept as is even at T = 1, [B, T, 1] trimmed; a batch without the baseline it should hold is refused', (t) => {
  // the RL chain over one step and over three: ∇ per sample = Σ_t ∇ℓ_t (R_≥t − b_t), b(s) = 0.1·s + 0.2
  const softmaxRow = (theta: number[][], s: number) => softmax(theta[s]!);
  const theta = [
    [0.3, -0.4],
    [-0.2, 0.5],
    [0.8, 0.1],
    [-0.6, -0.3],
  ];
  const base = (s: number) => 0.1 * s + 0.2;
  for (const [horizon, shape] of [
    [1, 'BT'],
    [1, 'BT1'],
    [3, 'BT1'],
  ] as const) {
    const tr = randomTrajectories(3, horizon, 9);
    const baseline = ({ s }: Readonly<Record<string, tf.Tensor>>) => {
      const b = tf.add(tf.mul(tf.cast(s!, 'float32'), 0.1), 0.2);
      return shape === 'BT1' ? tf.expandDims(b, 2) : b;
    };
    tf.tidy(() => {
      const surrogate = compile(rlChain(), estimators.pgt({ a: baseline }));
      const batch = batchOf(tr);
      const th = tf.tensor2d(theta);
      for (let i = 0; i < 3; i++) {
        const pick = tf.oneHot(i, 3).asType('float32');
        const g = Array.from(tf.grad((x: tf.Tensor) => tf.sum(tf.mul(surrogate.perSample({ theta: x }, batch), pick)) as tf.Scalar)(th).dataSync());
        const want = new Array<number>(8).fill(0);
        for (let s = 0; s < horizon; s++) {
          const weight = tr.r[i]!.slice(s).reduce((a, b) => a + b, 0) - base(tr.s[i]![s]!);
          const p = softmaxRow(theta, tr.s[i]![s]!);
          for (let k = 0; k < 2; k++) want[tr.s[i]![s]! * 2 + k]! += ((k === tr.a[i]![s]! ? 1 : 0) - p[k]!) * weight;
        }
        t.true(close(g, want), `T = ${horizon}, ${shape}, sample ${i}: ${g} vs ${want}`);
      }
    });
  }
  const fromBatch = compile(rlChain(), estimators.pgt({ a: 'batch' }));
  t.throws(() => tf.tidy(() => fromBatch.perSample({ theta: tf.tensor2d(theta) }, batchOf(randomTrajectories(2, 2, 3)))), {
    instanceOf: BatchError,
    message: "the estimator reads the baseline of 'a' from the batch, but the batch has none",
  });
});

test("LVC on padded steps: neither the batch's advantages nor a baseline recorded there count (each sample's value is Σ over its real steps)", (t) => {
  // ratio □ = 1 at θ = θ_old, so LVC's value is Σ_t (weight_t) over real steps; padded steps hold 100
  const tr = randomTrajectories(2, 3, 4);
  const mask = [
    [1, 1, 1],
    [1, 1, 0],
  ];
  const theta = tf.tensor2d([
    [0.3, -0.4],
    [-0.2, 0.5],
    [0.8, 0.1],
    [-0.6, -0.3],
  ]);
  const advantages = [
    [0.5, -1, 2],
    [1.5, 0.25, 100],
  ];
  const given = tf.tidy(() => Array.from(compile(rlChain(), estimators.lvc()).perSample({ theta }, { ...batchOf(tr, mask), advantages: { a: tf.tensor2d(advantages) } }).dataSync()));
  t.true(close(given, [1.5, 1.75]), `with the batch's advantages: ${given}`);
  // a baseline of 100 everywhere: the value is Σ_real (R_≥t − 100), the padded step adding nothing
  const hundred = ({ s }: Readonly<Record<string, tf.Tensor>>) => tf.fill(s!.shape, 100);
  const withBaseline = tf.tidy(() => Array.from(compile(rlChain(), estimators.lvc({ a: hundred })).perSample({ theta }, batchOf(tr, mask)).dataSync()));
  const want = tr.r.map((row, i) => row.reduce((acc, _, s) => (mask[i]![s] ? acc + row.slice(s).filter((_, k) => mask[i]![s + k]).reduce((a, b) => a + b, 0) - 100 : acc), 0));
  t.true(close(withBaseline, want), `with a baseline: ${withBaseline} vs ${want}`);
  theta.dispose();
});

test('a scored node that influences no cost: no term without a baseline, −ℓ·b with one', (t) => {
  // z → r as before; x is drawn from softmax(φ) too but reaches no cost
  const graph = scg()
    .parameter('phi', { shape: [2] })
    .stochastic('z', { family: { type: 'categorical', categories: 2 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
    .stochastic('x', { family: { type: 'categorical', categories: 2 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
    .cost('r', { parents: ['z'] })
    .build();
  const xs = [1, 1, 0, 1];
  const r = [1, 2, -1, 0.5];
  const bx = [0.5, -0.5, 1, 2];
  const batch = (): Batch => ({ values: { z: tf.tensor1d(zs, 'int32'), x: tf.tensor1d(xs, 'int32'), r: tf.tensor1d(r) }, baselines: { x: tf.tensor1d(bx) } });
  for (const e of [estimators.pgt(), estimators.lvc(), estimators.loadedDice(0.5)]) {
    const plain = perSample(graph, e, batch);
    zs.forEach((z, i) => t.true(close(plain.grads[i]!, scoreOf(z).map((g) => g * r[i]!)), `${estimatorName(e)}, no baseline, sample ${i}: ${plain.grads[i]}`));
  }
  // DiCE + baseline with a baseline for x only: z's score has no control variate, x's gives −∇ℓ_x·b_x
  const dice = perSample(graph, estimators.diceBaseline({ x: 'batch' }), batch);
  zs.forEach((z, i) => {
    const want = scoreOf(z).map((g, k) => g * r[i]! - scoreOf(xs[i]!)[k]! * bx[i]!);
    t.true(close(dice.grads[i]!, want), `DiCE + baseline, sample ${i}: ${dice.grads[i]} vs ${want}`);
  });
  const based = perSample(graph, estimators.pgt({ x: 'batch' }), batch);
  zs.forEach((z, i) => {
    const want = scoreOf(z).map((g, k) => g * r[i]! - scoreOf(xs[i]!)[k]! * bx[i]!);
    t.true(close(based.grads[i]!, want), `x's baseline, sample ${i}: ${based.grads[i]} vs ${want}`);
  });
});

test('DiCE with a cost no stochastic node reaches (a pathwise cost of φ alone), and a custom estimator’s own terms', (t) => {
  // r = φ₀² + φ₁ (no stochastic parent), q from the batch reached by z: ∇ = [2φ₀, 1] + q·(e_z − p)
  const graph = scg()
    .parameter('phi', { shape: [2] })
    .stochastic('z', { family: { type: 'categorical', categories: 2 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
    .cost('r', { parents: ['phi'], fn: ({ phi }) => tf.add(tf.square(tf.slice(phi!, [0], [1])), tf.slice(phi!, [1], [1])) })
    .cost('q', { parents: ['z'] })
    .build();
  const q = [1, -2, 0.5, 3];
  const batch = (): Batch => ({ values: { z: tf.tensor1d(zs, 'int32'), q: tf.tensor1d(q) } });
  const dice = perSample(graph, estimators.dice(), batch);
  zs.forEach((z, i) => {
    const want = scoreOf(z).map((g, k) => g * q[i]! + (k === 0 ? 2 * phi0[0]! : 1));
    t.true(close(dice.grads[i]!, want), `DiCE sample ${i}: ${dice.grads[i]} vs ${want}`);
  });
  // a custom estimator made of z's log-probability alone: its gradient is the score, nothing of DiCE's
  const custom = perSample(graph, estimators.custom('score only', (kit) => [kit.logProb('z')]), batch);
  zs.forEach((z, i) => t.true(close(custom.grads[i]!, scoreOf(z)), `custom sample ${i}: ${custom.grads[i]}`));
});

test('an estimator with no terms gives a zero per sample; DiCE + baseline without any baseline is refused', (t) => {
  const graph = scg()
    .parameter('phi', { shape: [2] })
    .stochastic('z', { family: { type: 'categorical', categories: 2 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
    .cost('r', { parents: ['z'] })
    .build();
  const values = tf.tidy(() => {
    const out = compile(graph, estimators.custom('nothing', () => [])).perSample({ phi: tf.tensor1d(phi0) }, { values: { z: tf.tensor1d(zs, 'int32'), r: tf.ones([4]) } });
    return { shape: out.shape, data: Array.from(out.dataSync()) };
  });
  t.deepEqual(values, { shape: [4], data: [0, 0, 0, 0] });
  t.throws(() => compile(graph, estimators.diceBaseline({})), { message: 'dice-baseline needs a baseline for at least one stochastic node' });
});

test('meanKl of a per-sample node is the mean over samples, mask or not; of a per-step node without a mask, the mean over every step', (t) => {
  // z's logits are φ·x for a per-sample input x: its KL differs from sample to sample
  const graph = scg()
    .parameter('phi', { shape: [2] })
    .input('x', { shape: [1] })
    .stochastic('z', { family: { type: 'categorical', categories: 2 }, parents: ['phi', 'x'], distribution: ({ phi, x }) => ({ logits: tf.mul(phi!, x!) }) })
    .deterministic('s', { temporal: true, parents: ['z'] })
    .cost('c', { temporal: true, parents: [lag('s', 1)] })
    .build();
  const x = [0.5, 1, 2, -1];
  const [p1, p2] = [phi0, [0.1, 0.2]];
  const kl = (xi: number) => {
    const p = softmax(p1.map((v) => v * xi));
    const q = softmax(p2.map((v) => v * xi));
    return p.reduce((acc, pk, k) => acc + pk * Math.log(pk / q[k]!), 0);
  };
  const want = x.map(kl).reduce((a, b) => a + b, 0) / x.length;
  const mask = [
    [1, 1, 1],
    [1, 0, 0],
    [1, 1, 0],
    [1, 1, 1],
  ];
  for (const withMask of [false, true]) {
    const got = tf.tidy(() =>
      meanKl(graph, { phi: tf.tensor1d(p1) }, { phi: tf.tensor1d(p2) }, {
        values: { x: tf.tensor2d(x, [4, 1]), z: tf.tensor1d(zs, 'int32'), s: tf.zeros([4, 3]), c: tf.zeros([4, 3]) },
        ...(withMask ? { mask: tf.tensor2d(mask) } : {}),
      }).dataSync()[0]!,
    );
    t.true(Math.abs(got - want) < 1e-5, `${withMask ? 'with' : 'without'} a mask: ${got} vs ${want}`);
  }
  // the RL chain without a mask: the mean over all B·T steps of KL(softmax(θ1[s]) ‖ softmax(θ2[s]))
  const tr = randomTrajectories(3, 2, 8);
  const [t1, t2] = [
    [
      [0.3, -0.4],
      [-0.2, 0.5],
      [0.8, 0.1],
      [-0.6, -0.3],
    ],
    [
      [0, 0],
      [0.5, 0.5],
      [-1, 1],
      [0.2, 0],
    ],
  ];
  const klState = (s: number) => {
    const p = softmax(t1[s]!);
    const q = softmax(t2[s]!);
    return p.reduce((acc, pk, k) => acc + pk * Math.log(pk / q[k]!), 0);
  };
  const wantChain = tr.s.flat().map(klState).reduce((a, b) => a + b, 0) / 6;
  const gotChain = tf.tidy(() => meanKl(rlChain(), { theta: tf.tensor2d(t1) }, { theta: tf.tensor2d(t2) }, batchOf(tr)).dataSync()[0]!);
  t.true(Math.abs(gotChain - wantChain) < 1e-5, `RL chain, no mask: ${gotChain} vs ${wantChain}`);
});

test('assertCompilable lists every node whose function does not fit it, in declaration order, then functions for no node', (t) => {
  const graph = scg({ name: 'checked' })
    .parameter('phi', { shape: [2] })
    .input('x')
    .stochastic('z', { family: { type: 'categorical', categories: 2 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
    .stochastic('e', { family: { type: 'external' }, parents: ['x'] })
    .cost('r', { parents: ['z', 'e'] })
    .build();
  const value: NodeImpl = { kind: 'value', fn: () => tf.scalar(0) };
  const withImpls = (change: (impls: Map<string, NodeImpl>) => void, name = true): Graph => {
    const impls = new Map(graph.impls);
    change(impls);
    const { name: _name, ...unnamed } = graph.spec;
    return { spec: name ? graph.spec : unnamed, impls };
  };
  const problemsOf = (g: Graph): readonly string[] => {
    try {
      assertCompilable(g);
      return [];
    } catch (e) {
      if (!(e instanceof GraphError)) throw e;
      t.is(e.message, `the graph${g.spec.name ? " 'checked'" : ''} cannot be compiled:\n  ${e.problems.join('\n  ')}`);
      return e.problems;
    }
  };
  t.deepEqual(problemsOf(graph), [], 'an external node needs no function');
  t.deepEqual(problemsOf(withImpls((m) => m.delete('z'))), ["stochastic node 'z' (categorical) has no distribution function"]);
  t.deepEqual(problemsOf(withImpls((m) => m.set('z', value))), ["stochastic node 'z' (categorical) has no distribution function"]);
  t.deepEqual(problemsOf(withImpls((m) => m.set('phi', value))), ["parameter node 'phi' cannot have a function"]);
  t.deepEqual(problemsOf(withImpls((m) => m.set('x', value))), ["input node 'x' cannot have a function"]);
  t.deepEqual(problemsOf(withImpls((m) => m.set('e', value))), [], 'an external node may have one (its value is read from the batch)');
  t.deepEqual(
    problemsOf(
      withImpls((m) => {
        m.set('ghost', value);
        m.set('x', value);
        m.delete('z');
        m.set('phi', value);
      }, false),
    ),
    ["parameter node 'phi' cannot have a function", "input node 'x' cannot have a function", "stochastic node 'z' (categorical) has no distribution function", "a function is given for 'ghost', which is not a node"],
  );
  t.throws(() => compile(withImpls((m) => m.delete('z')), estimators.dice()), { instanceOf: GraphError });
  // a stochastic node without a family is validation's problem to report, listed with the others (not a TypeError)
  const noFamily: Graph = { ...graph, spec: { ...graph.spec, nodes: graph.spec.nodes.map((n) => (n.name === 'e' ? { ...n, family: undefined } : n)) } };
  const problems = problemsOf(noFamily);
  t.true(problems.length > 0 && problems.some((p) => /['"]e['"]/.test(p) && p.includes('family')), `problems: ${problems.join('; ')}`);
});
