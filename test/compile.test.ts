/**
 * The compiler on Monte-Carlo batches: what each surrogate evaluates to, its derivatives against the
 * same estimator written by hand for the RL chain, masking of padded steps, and the errors a user sees.
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { lookup } from '../src/oracle/problems.ts';
import { logSoftmax, magicBox } from '../src/ops/index.ts';
import { lag, scg } from '../src/scg/builder.ts';
import { BatchError, checkBatch } from '../src/surrogates/batch.ts';
import { compile, GraphError } from '../src/surrogates/compile.ts';
import { estimators, type Estimator } from '../src/surrogates/estimators.ts';
import { EvaluationError } from '../src/surrogates/evaluate.ts';
import { actions, batchOf, randomTrajectories, rlChain, states, thetaValue } from './helpers/rl-chain.ts';

test.before(async () => {
  await selectBackend();
});

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5) => {
  const scale = Math.max(1e-6, ...Array.from(b).map(Math.abs));
  return Array.from(a).every((x, i) => Math.abs(x - b[i]!) <= tol * scale);
};

const stateBaseline = ({ s }: Readonly<Record<string, tf.Tensor>>) => tf.mul(tf.cast(s!, 'float32'), 0.1);

test('DiCE, DiCE + baseline and TMAML evaluate to the return; LVC to the sum of rewards-to-go', (t) => {
  const tr = randomTrajectories(6, 5, 1);
  const graph = rlChain();
  tf.tidy(() => {
    const batch = batchOf(tr);
    const params = { theta: thetaValue() };
    const returns = tr.r.map((row) => row.reduce((a, b) => a + b, 0));
    const rewardsToGo = tr.r.map((row) => row.reduce((acc, _, t0) => acc + row.slice(t0).reduce((a, b) => a + b, 0), 0));
    const baselines = { a: stateBaseline };
    for (const e of [estimators.dice(), estimators.diceBaseline(baselines), estimators.tmaml(baselines)]) {
      t.true(close(compile(graph, e).perSample(params, batch).dataSync(), returns), e.kind);
    }
    t.true(close(compile(graph, estimators.lvc()).perSample(params, batch).dataSync(), rewardsToGo), 'lvc');
  });
});

/** DiCE and LVC for the RL chain written out by hand (cumulative sums over time). */
const handWritten = (kind: 'dice' | 'lvc', theta: tf.Tensor, tr: ReturnType<typeof randomTrajectories>) => {
  const s = tf.tensor2d(tr.s);
  const logits = lookup(theta, s);
  const logp = tf.sum(tf.mul(logSoftmax(logits), tf.cast(tf.oneHot(tf.cast(tf.tensor2d(tr.a), 'int32'), actions), 'float32')), -1);
  const r = tf.tensor2d(tr.r);
  const perSample =
    kind === 'dice'
      ? tf.sum(tf.mul(magicBox(tf.cumsum(logp, 1)), r), 1)
      : tf.sum(tf.mul(magicBox(logp), tf.cumsum(r, 1, false, true)), 1);
  return tf.mean(perSample) as tf.Scalar;
};

test('compiled DiCE and LVC have the hand-written estimators\' gradients and Hessians on the RL chain', (t) => {
  const tr = randomTrajectories(8, 4, 2);
  const graph = rlChain();
  for (const kind of ['dice', 'lvc'] as const) {
    const surrogate = compile(graph, kind === 'dice' ? estimators.dice() : estimators.lvc());
    tf.tidy(() => {
      const batch = batchOf(tr);
      const compiled = (theta: tf.Tensor) => surrogate.objective({ theta }, batch);
      const direct = (theta: tf.Tensor) => handWritten(kind, theta, tr);
      const theta0 = thetaValue();
      const g1 = tf.grad(compiled)(theta0).dataSync();
      const g2 = tf.grad(direct)(theta0).dataSync();
      t.true(close(g1, g2), `${kind} gradient`);
      const v = tf.randomNormal([states, actions], 0, 1, 'float32', 3);
      const hvp = (f: (x: tf.Tensor) => tf.Scalar) => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.grad(f)(x), v)) as tf.Scalar)(theta0).dataSync();
      t.true(close(hvp(compiled), hvp(direct), 1e-4), `${kind} Hessian-vector product`);
    });
  }
});

test('padded steps contribute nothing: a masked batch gives each trajectory what its unpadded self gives', (t) => {
  const long = randomTrajectories(3, 5, 4);
  const lengths = [5, 3, 1];
  const mask = lengths.map((n) => Array.from({ length: 5 }, (_, k) => (k < n ? 1 : 0)));
  const graph = rlChain();
  for (const e of [estimators.dice(), estimators.lvc(), estimators.tmaml({ a: stateBaseline }), estimators.loadedDice(0.5)] as Estimator[]) {
    const surrogate = compile(graph, e);
    tf.tidy(() => {
      const theta0 = thetaValue();
      const padded = batchOf(long, mask);
      const perSampleGrad = (batch: ReturnType<typeof batchOf>, i: number) =>
        tf.grad((theta: tf.Tensor) => {
          // Picks sample i by a product, not tf.gather, whose gradient kernel the wasm backend lacks.
          const pick = tf.tensor1d(Array.from({ length: batch.values.r!.shape[0]! }, (_, k) => (k === i ? 1 : 0)));
          return tf.sum(tf.mul(surrogate.perSample({ theta }, batch), pick)) as tf.Scalar;
        })(theta0).dataSync();
      lengths.forEach((n, i) => {
        const cut = { s: [long.s[i]!.slice(0, n)], a: [long.a[i]!.slice(0, n)], r: [long.r[i]!.slice(0, n)] };
        const alone = batchOf(cut);
        const paddedValue = surrogate.perSample({ theta: theta0 }, padded).dataSync()[i]!;
        t.true(close([paddedValue], surrogate.perSample({ theta: theta0 }, alone).dataSync()), `${e.kind} value, trajectory ${i}`);
        t.true(close(perSampleGrad(padded, i), perSampleGrad(alone, 0)), `${e.kind} gradient, trajectory ${i}`);
      });
    });
  }
});

test('a static stochastic node feeding temporal costs is credited at every step (mixed graphs)', (t) => {
  // z ~ Cat(φ) once per sample (a task), then r_t depends on z: DiCE credits log p(z) to every r_t.
  const graph = scg()
    .parameter('phi', { shape: [2] })
    .stochastic('z', { family: { type: 'categorical', categories: 2 }, parents: ['phi'], distribution: ({ phi }) => ({ logits: phi }) })
    .cost('r', { temporal: true, parents: ['z'] })
    .build();
  tf.tidy(() => {
    const z = tf.tensor1d([0, 1, 1]);
    const r = tf.tensor2d([[1, 2], [0.5, -1], [3, 0]]);
    const phi0 = tf.tensor1d([0.2, -0.3]);
    const surrogate = compile(graph, estimators.dice());
    const g = tf.grad((phi: tf.Tensor) => surrogate.objective({ phi }, { values: { z, r } }))(phi0).dataSync();
    // ∇ mean_b Σ_t r_bt · log p(z_b) = mean_b R_b ∇log p(z_b), with ∇log p(z) = onehot(z) − softmax(φ).
    const p = tf.softmax(phi0).dataSync();
    const R = [3, -0.5, 3];
    const zs = [0, 1, 1];
    const expected = [0, 1].map((k) => zs.reduce((acc, zb, b) => acc + R[b]! * ((zb === k ? 1 : 0) - p[k]!), 0) / 3);
    t.true(close(g, expected));
  });
});

test('a graph with a cycle is refused at compile time, naming the cycle', (t) => {
  const graph = {
    spec: {
      nodes: [
        { kind: 'parameter' as const, name: 'theta', shape: [1] },
        { kind: 'deterministic' as const, name: 'x', parents: [{ node: 'y', lag: 0 }, { node: 'theta', lag: 0 }] },
        { kind: 'deterministic' as const, name: 'y', parents: [{ node: 'x', lag: 0 }] },
        { kind: 'cost' as const, name: 'c', parents: [{ node: 'y', lag: 0 }] },
      ],
    },
    impls: new Map(),
  };
  const error = t.throws(() => compile(graph, estimators.dice()), { instanceOf: GraphError });
  t.regex(error!.message, /x → y → x|y → x → y/);
});

test('compile refuses a categorical node without a distribution and estimators without their baselines', (t) => {
  const graph = rlChain();
  const bare = { spec: graph.spec, impls: new Map() };
  t.throws(() => compile(bare, estimators.dice()), { instanceOf: GraphError, message: /'a' \(categorical\) has no distribution function/ });
  t.throws(() => compile(graph, estimators.tmaml({})), { instanceOf: GraphError, message: /needs a baseline/ });
  t.throws(() => compile(graph, estimators.tmaml({ r: 'batch' })), { instanceOf: GraphError, message: /'r', which is not a stochastic node/ });
  t.throws(() => estimators.loadedDice(1.5), { instanceOf: RangeError });
});

test('bad batches are reported by node: missing values, wrong sizes, wrong parameter shapes, NaN', (t) => {
  const graph = rlChain();
  const surrogate = compile(graph, estimators.dice());
  tf.tidy(() => {
    const tr = randomTrajectories(2, 3, 6);
    const { s, a } = batchOf(tr).values;
    t.throws(() => surrogate.objective({ theta: thetaValue() }, { values: { s: s!, a: a! } }), { instanceOf: BatchError, message: /no value for cost node 'r'/ });
    t.throws(() => surrogate.objective({ theta: thetaValue() }, { values: { s: s!, a: a!, r: tf.zeros([3, 3]) } }), {
      instanceOf: BatchError,
      message: /value of 'r' has 3 samples .* but the batch has 2/,
    });
    t.throws(() => surrogate.objective({ theta: tf.zeros([2, 2]) }, batchOf(tr)), { instanceOf: EvaluationError, message: /parameter 'theta' has shape \[2, 2\] but is declared \[4, 2\]/ });
    t.throws(() => surrogate.objective({}, batchOf(tr)), { instanceOf: EvaluationError, message: /no value for parameter 'theta'/ });
    const withNaN = { values: { s: s!, a: a!, r: tf.tensor2d([[0, 1, NaN], [0, 0, 0]]) } };
    t.throws(() => checkBatch(graph, withNaN), { instanceOf: BatchError, message: /value of 'r' contains NaN at flat index 2/ });
    t.notThrows(() => checkBatch(graph, batchOf(tr)));
  });
});

test('a deterministic node computed from its own past is refused with an explanation', (t) => {
  const graph = scg()
    .parameter('theta', { shape: [1] })
    .deterministic('h', { temporal: true, parents: [lag('h', 1), 'theta'], fn: (p) => tf.add(p['h@1']!, p.theta!) })
    .cost('c', { temporal: true, parents: ['h'], fn: ({ h }) => h })
    .build();
  t.throws(() => tf.tidy(() => compile(graph, estimators.dice()).objective({ theta: tf.ones([1]) }, { values: {}, mask: tf.ones([2, 3]) })), {
    instanceOf: EvaluationError,
    message: /recurrent/,
  });
});

test('evaluating a surrogate leaves no tensor behind', (t) => {
  const graph = rlChain();
  const surrogate = compile(graph, estimators.tmaml({ a: stateBaseline }));
  const tr = randomTrajectories(4, 6, 7);
  const batch = batchOf(tr);
  const theta0 = thetaValue();
  const once = () => tf.tidy(() => tf.grad((theta: tf.Tensor) => tf.sum(tf.grad((x: tf.Tensor) => surrogate.objective({ theta: x }, batch))(theta)) as tf.Scalar)(theta0));
  once().dispose();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) once().dispose();
  t.is(tf.memory().numTensors, before);
});

test('baselines are really in the sample gradient: DiCE + baseline gives Σ_t ∇ℓ_t (R_≥t − b_t); TMAML keeps DiCE\'s gradient but not its Hessian', (t) => {
  const tr = randomTrajectories(8, 4, 8);
  const graph = rlChain();
  const baselines = { a: stateBaseline };
  tf.tidy(() => {
    const batch = batchOf(tr);
    const theta0 = thetaValue();
    const gradOf = (e: Estimator) => tf.grad((theta: tf.Tensor) => compile(graph, e).objective({ theta }, batch))(theta0).dataSync();
    // Hand-written: mean_b Σ_t ∇ℓ_t · (Σ_{t'≥t} r_t' − b(s_t)).
    const handWritten = tf.grad((theta: tf.Tensor) => {
      const logits = lookup(theta, tf.tensor2d(tr.s));
      const logp = tf.sum(tf.mul(logSoftmax(logits), tf.cast(tf.oneHot(tf.cast(tf.tensor2d(tr.a), 'int32'), actions), 'float32')), -1);
      const advantage = tf.sub(tf.cumsum(tf.tensor2d(tr.r), 1, false, true), tf.mul(tf.tensor2d(tr.s), 0.1));
      return tf.mean(tf.sum(tf.mul(logp, advantage), 1)) as tf.Scalar;
    })(theta0).dataSync();
    const withBaseline = gradOf(estimators.diceBaseline(baselines));
    t.true(close(withBaseline, handWritten), 'DiCE + baseline gradient');
    t.false(close(withBaseline, gradOf(estimators.dice()), 1e-3), 'the baseline changes the sample gradient');
    t.true(close(gradOf(estimators.tmaml(baselines)), gradOf(estimators.dice())), 'TMAML first derivative is DiCE\'s');
    const v = tf.randomNormal([states, actions], 0, 1, 'float32', 9);
    const hvp = (e: Estimator) =>
      tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.grad((th: tf.Tensor) => compile(graph, e).objective({ theta: th }, batch))(x), v)) as tf.Scalar)(theta0).dataSync();
    t.false(close(hvp(estimators.tmaml(baselines)), hvp(estimators.dice()), 1e-3), 'TMAML adds a control variate to the Hessian');
  });
});

/** The RL chain's behaviour log-probabilities under θ: what a sampler records. */
const behaviourAt = (theta: tf.Tensor, tr: ReturnType<typeof randomTrajectories>) => {
  const logits = lookup(theta, tf.tensor2d(tr.s));
  return tf.sum(tf.mul(logSoftmax(logits), tf.cast(tf.oneHot(tf.cast(tf.tensor2d(tr.a), 'int32'), actions), 'float32')), -1);
};

test('against the behaviour policy, □ is the likelihood ratio: exactly 1 with □\'s derivatives at the sampling parameters, a real ratio elsewhere', (t) => {
  const tr = randomTrajectories(6, 4, 10);
  const graph = rlChain();
  tf.tidy(() => {
    const theta0 = thetaValue();
    const batch = { ...batchOf(tr), behaviour: { a: behaviourAt(theta0, tr) } };
    const v = tf.randomNormal([states, actions], 0, 1, 'float32', 11);
    for (const [onPolicy, offPolicy] of [
      [estimators.lvc(), { kind: 'lvc', reference: 'behaviour' }],
      [estimators.dice(), { kind: 'dice', reference: 'behaviour' }],
      [estimators.tmaml({ a: stateBaseline }), { kind: 'tmaml', baselines: { a: stateBaseline }, reference: 'behaviour' }],
    ] as Array<[Estimator, Estimator]>) {
      const a = compile(graph, onPolicy);
      const b = compile(graph, offPolicy);
      const f = (s: typeof a) => (theta: tf.Tensor) => s.objective({ theta }, batch);
      t.true(close(f(b)(theta0).dataSync(), f(a)(theta0).dataSync()), `${offPolicy.kind} value`);
      t.true(close(tf.grad(f(b))(theta0).dataSync(), tf.grad(f(a))(theta0).dataSync()), `${offPolicy.kind} gradient`);
      const hvp = (g: (x: tf.Tensor) => tf.Scalar) => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.grad(g)(x), v)) as tf.Scalar)(theta0).dataSync();
      t.true(close(hvp(f(b)), hvp(f(a)), 1e-4), `${offPolicy.kind} Hessian`);
    }
    // Away from the sampling parameters the on-policy □ still evaluates to 1; the ratio does not.
    // (A random move: adding one constant to every logit would leave a softmax policy unchanged.)
    const moved = tf.add(theta0, tf.randomNormal([states, actions], 0, 0.5, 'float32', 15));
    const lvcOff = compile(graph, { kind: 'lvc', reference: 'behaviour' }).perSample({ theta: moved }, batch).dataSync();
    const lvcOn = compile(graph, estimators.lvc()).perSample({ theta: moved }, batch).dataSync();
    t.false(close(lvcOff, lvcOn, 1e-3));
    const noBehaviour = batchOf(tr);
    t.throws(() => compile(graph, { kind: 'lvc', reference: 'behaviour' }).objective({ theta: theta0 }, noBehaviour), { instanceOf: BatchError, message: /no behaviour log-probability for 'a'/ });
  });
});

test('clipped LVC is min(ratio·A, clip(ratio)·A) per action', (t) => {
  const tr = randomTrajectories(5, 3, 12);
  const graph = rlChain();
  tf.tidy(() => {
    const theta0 = thetaValue();
    const batch = { ...batchOf(tr), behaviour: { a: behaviourAt(theta0, tr) } };
    const moved = tf.add(theta0, tf.randomNormal([states, actions], 0, 1, 'float32', 13));
    const eps = 0.2;
    const clipped = compile(graph, estimators.lvc(undefined, { clip: eps, reference: 'behaviour' })).perSample({ theta: moved }, batch).arraySync() as number[];
    const ratio = tf.exp(tf.sub(behaviourAt(moved, tr), behaviourAt(theta0, tr))).arraySync() as number[][];
    const expected = tr.r.map((row, b) =>
      row.reduce((acc, _, k) => {
        const advantage = row.slice(k).reduce((x, y) => x + y, 0);
        const r = ratio[b]![k]!;
        return acc + Math.min(r * advantage, Math.min(Math.max(r, 1 - eps), 1 + eps) * advantage);
      }, 0),
    );
    t.true(close(clipped, expected, 1e-4));
    t.true(ratio.flat().some((r) => r > 1 + eps || r < 1 - eps), 'some ratios are actually clipped');
  });
});

test('meanKl is 0 between equal parameters and the mean categorical KL otherwise, over real steps only', async (t) => {
  const { meanKl } = await import('../src/surrogates/divergence.ts');
  const tr = randomTrajectories(4, 3, 14);
  const mask = [[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]];
  const graph = rlChain();
  tf.tidy(() => {
    const p = thetaValue(1);
    const q = thetaValue(2);
    const batch = batchOf(tr, mask);
    t.true(Math.abs(meanKl(graph, { theta: p }, { theta: p }, batch).dataSync()[0]!) < 1e-7);
    const softmaxRows = (th: tf.Tensor) => tf.softmax(th).arraySync() as number[][];
    const [pp, qq] = [softmaxRows(p), softmaxRows(q)];
    let total = 0;
    let count = 0;
    tr.s.forEach((row, b) => row.forEach((s, k) => {
      if (mask[b]![k] === 0) return;
      total += pp[s]!.reduce((acc, x, a) => acc + x * Math.log(x / qq[s]![a]!), 0);
      count += 1;
    }));
    t.true(close(meanKl(graph, { theta: p }, { theta: q }, batch).dataSync(), [total / count], 1e-4));
  });
});

test('advantages in the batch replace Q − b in PGT, LVC and Loaded DiCE, and leave DiCE alone', (t) => {
  const tr = randomTrajectories(5, 4, 16);
  const graph = rlChain();
  tf.tidy(() => {
    const theta0 = thetaValue();
    const advantage = tf.randomNormal([5, 4], 0, 1, 'float32', 17);
    const batch = { ...batchOf(tr), advantages: { a: advantage } };
    const handWritten = tf.grad((theta: tf.Tensor) => tf.mean(tf.sum(tf.mul(behaviourAt(theta, tr), advantage), 1)) as tf.Scalar)(theta0).dataSync();
    for (const e of [estimators.pgt(), estimators.lvc(), estimators.loadedDice(0.5)]) {
      t.true(close(tf.grad((theta: tf.Tensor) => compile(graph, e).objective({ theta }, batch))(theta0).dataSync(), handWritten), e.kind);
    }
    const dice = (b: typeof batch | ReturnType<typeof batchOf>) => tf.grad((theta: tf.Tensor) => compile(graph, estimators.dice()).objective({ theta }, b))(theta0).dataSync();
    t.true(close(dice(batch), dice(batchOf(tr))));
  });
});

test('DiCE + baseline is TMAML plus the first-order baseline Σ_w (1 − □(ℓ_w))·b_w, at every order', (t) => {
  const tr = randomTrajectories(6, 4, 18);
  const graph = rlChain();
  const baselines = { a: stateBaseline };
  tf.tidy(() => {
    const batch = batchOf(tr);
    const theta0 = thetaValue();
    const firstOrderBaseline = (theta: tf.Tensor) =>
      tf.sum(tf.mul(tf.sub(1, magicBox(behaviourAt(theta, tr))), tf.mul(tf.tensor2d(tr.s), 0.1)), 1);
    const diceBaseline = (theta: tf.Tensor) => tf.mean(compile(graph, estimators.diceBaseline(baselines)).perSample({ theta }, batch)) as tf.Scalar;
    const tmamlPlus = (theta: tf.Tensor) =>
      tf.mean(tf.add(compile(graph, estimators.tmaml(baselines)).perSample({ theta }, batch), firstOrderBaseline(theta))) as tf.Scalar;
    const v = tf.randomNormal([states, actions], 0, 1, 'float32', 19);
    const hvp = (f: (x: tf.Tensor) => tf.Scalar) => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.grad(f)(x), v)) as tf.Scalar)(theta0).dataSync();
    t.true(close(tf.grad(tmamlPlus)(theta0).dataSync(), tf.grad(diceBaseline)(theta0).dataSync()), 'gradient');
    t.true(close(hvp(tmamlPlus), hvp(diceBaseline), 1e-4), 'Hessian-vector product');
  });
});
