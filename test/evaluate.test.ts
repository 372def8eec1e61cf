/**
 * The "run" interpreter (src/surrogates/evaluate.ts) on one small graph that mixes per-sample and
 * per-step nodes, each case a mutation survivor: values, parent values (a lagged parent shifted in time,
 * a per-sample parent broadcast over steps, a parameter as it is), the step a function is told, every
 * log-probability and cost (broadcast to [B] or [B, T], masked on padding where per-step), and what is
 * computed lazily and once. Every number against its value written out by hand in float64.
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { lag, scg, type Graph, type NodeImpl } from '../src/scg/builder.ts';
import { parentsOf } from '../src/scg/spec.ts';
import type { Batch } from '../src/surrogates/batch.ts';
import { EvaluationError, evaluateGraph, topologicalOrder } from '../src/surrogates/evaluate.ts';

test.before(async () => {
  await selectBackend();
});

const [B, T] = [2, 3];
const theta = [0.3, -0.2];
const x = [0.5, -1];
const s = [
  [1, 2, 3],
  [4, 5, 6],
];
const z = [1, 0];
const g = [
  [0.7, 1.1, 2.4],
  [3.9, 4.2, 7.5],
];
const mask = [
  [1, 1, 1],
  [1, 1, 0],
];
const logStd = -0.5;

/** Calls of each function, to see what is computed lazily and once. */
const calls = { z: 0, g: 0 };
/**
 * z per-sample categorical (logits θ); s per-step external; h_t = s_{t−1} + x (x per-sample); k_t = 10t + θ₁
 * (a parameter parent, and the step); g per-step Gaussian with mean h, log σ = −0.5; costs c_t = g_t + k_t,
 * d = θ₀ + θ₁ (a scalar, one per sample) and e_t = x + m (per-sample, one per step; m = θ₀ + θ₁ a scalar
 * computed from parameters only, which broadcasts as it is), and w_t = k_t ([1, T], one row for every sample).
 */
const graph = scg({ name: 'mixed' })
  .parameter('theta', { shape: [2] })
  .input('x')
  .stochastic('z', {
    family: { type: 'categorical', categories: 2 },
    parents: ['theta'],
    distribution: ({ theta }) => {
      calls.z++;
      return { logits: theta };
    },
  })
  .stochastic('s', { temporal: true, family: { type: 'external' }, parents: [lag('s', 1)] })
  .deterministic('h', { temporal: true, parents: [lag('s', 1), 'x'], fn: (p) => tf.add(p['s@1']!, p.x!) })
  .deterministic('k', { temporal: true, parents: ['theta'], fn: ({ theta }, { step }) => tf.add(tf.mul(step, 10), tf.slice(theta!, [1], [1])) })
  .stochastic('g', {
    temporal: true,
    family: { type: 'gaussian', dim: 1 },
    parents: ['h'],
    distribution: ({ h }) => {
      calls.g++;
      return { mean: tf.expandDims(h!, 2), logStd: tf.tensor1d([logStd]) };
    },
  })
  .cost('c', { temporal: true, parents: ['g', 'k'], fn: ({ g, k }) => tf.add(tf.sum(g!, -1), k!) })
  .cost('d', { parents: ['theta'], fn: ({ theta }) => tf.sum(theta!) })
  .deterministic('m', { parents: ['theta'], fn: ({ theta }) => tf.sum(theta!) })
  .cost('e', { temporal: true, parents: ['x', 'm'], fn: ({ x, m }) => tf.add(x!, m!) })
  .cost('w', { temporal: true, parents: ['k'], fn: ({ k }) => k! })
  .build();

const batch = (withMask = true): Batch => ({
  values: { x: tf.tensor1d(x), z: tf.tensor1d(z, 'int32'), s: tf.tensor2d(s), g: tf.tensor3d(g.map((row) => row.map((v) => [v]))) },
  ...(withMask ? { mask: tf.tensor2d(mask) } : {}),
});
const params = () => ({ theta: tf.tensor1d(theta) });

const h = s.map((row, b) => row.map((_, t) => (t === 0 ? 0 : row[t - 1]!) + x[b]!));
const logSoftmax = (v: readonly number[]) => {
  const m = Math.log(v.reduce((a, y) => a + Math.exp(y), 0));
  return v.map((y) => y - m);
};
const gaussian = (y: number, mean: number) => -0.5 * ((y - mean) / Math.exp(logStd)) ** 2 - logStd - 0.5 * Math.log(2 * Math.PI);
const close = (t: import('ava').ExecutionContext, got: tf.Tensor | undefined, shape: readonly number[], want: readonly number[], label: string) => {
  t.deepEqual(got?.shape, [...shape], `${label}: shape`);
  const a = Array.from(got!.dataSync());
  t.true(a.length === want.length && a.every((v, i) => Math.abs(v - want[i]!) <= 1e-5 * Math.max(1, Math.abs(want[i]!))), `${label}: ${a} vs ${want}`);
};

test('topologicalOrder: every node once, each after its same-step parents, whatever the declaration order; lagged parents do not order', (t) => {
  for (const nodes of [graph.spec.nodes, [...graph.spec.nodes].reverse()]) {
    const order = topologicalOrder(nodes).map((n) => n.name);
    t.deepEqual([...order].sort(), nodes.map((n) => n.name).sort(), 'a permutation');
    const at = new Map(order.map((name, i) => [name, i]));
    for (const n of nodes) {
      for (const p of parentsOf(n)) if (p.lag === 0) t.true(at.get(p.node)! < at.get(n.name)!, `${p.node} before ${n.name}`);
    }
  }
  // a same-step cycle (which validation refuses) is named, not followed for ever
  const cycle = [
    { name: 'p', kind: 'deterministic' as const, parents: [{ node: 'q', lag: 0 }] },
    { name: 'q', kind: 'deterministic' as const, parents: [{ node: 'p', lag: 0 }] },
  ];
  t.throws(() => topologicalOrder(cycle), { instanceOf: EvaluationError, message: "cycle through 'p' in same-step edges" });
});

test('evaluateGraph: values, a lagged parent shifted in time, a per-sample parent broadcast over steps, a parameter parent as it is, and each function told its step', (t) => {
  tf.tidy(() => {
    const ev = evaluateGraph(graph, params(), batch());
    t.is(ev.size, B);
    t.is(ev.horizon, T);
    close(t, ev.values.get('h'), [B, T], h.flat(), 'h_t = s_{t−1} + x');
    close(t, ev.values.get('k'), [1, T], [0, 10, 20].map((v) => v + theta[1]!), 'k_t = 10t + θ₁');
    close(t, ev.values.get('theta'), [2], theta, 'θ');
    close(t, ev.values.get('s'), [B, T], s.flat(), 's from the batch');
    const hParents = ev.parentValuesOf(graph.spec.nodes.find((n) => n.name === 'h')!);
    t.deepEqual(Object.keys(hParents).sort(), ['s@1', 'x']);
    close(t, hParents['s@1'], [B, T], s.flatMap((row) => [0, row[0]!, row[1]!]), 's@1');
    close(t, hParents.x, [B, 1], x, 'x, given a step axis');
    const kParents = ev.parentValuesOf(graph.spec.nodes.find((n) => n.name === 'k')!);
    close(t, kParents.theta, [2], theta, 'a parameter parent is not given a step axis');
    close(t, ev.contextOf(graph.spec.nodes.find((n) => n.name === 'g')!).step, [1, T], [0, 1, 2], 'a per-step node’s step');
    close(t, ev.contextOf(graph.spec.nodes.find((n) => n.name === 'z')!).step, [], [0], 'a per-sample node’s step');
  });
});

test('evaluateGraph: log-probabilities of each sampled value (per-step ones zero on padding) and costs broadcast to [B] or [B, T] and masked', (t) => {
  tf.tidy(() => {
    for (const withMask of [true, false]) {
      const ev = evaluateGraph(graph, params(), batch(withMask));
      const m = (b: number, t_: number) => (withMask ? mask[b]![t_]! : 1);
      const label = withMask ? 'masked' : 'no mask';
      t.deepEqual([...ev.logProbs.keys()].sort(), ['g', 'z'], 'external s has none');
      t.deepEqual([...ev.costs.keys()].sort(), ['c', 'd', 'e', 'w'], 'the costs, and nothing else');
      close(t, ev.logProbs.get('z'), [B], z.map((v) => logSoftmax(theta)[v]!), `${label}: log softmax(θ)[z]`);
      close(t, ev.logProbs.get('g'), [B, T], g.flatMap((row, b) => row.map((v, t_) => gaussian(v, h[b]![t_]!) * m(b, t_))), `${label}: log N(g; h, σ)`);
      close(t, ev.costs.get('c'), [B, T], g.flatMap((row, b) => row.map((v, t_) => (v + 10 * t_ + theta[1]!) * m(b, t_))), `${label}: c_t = g_t + k_t`);
      close(t, ev.costs.get('d'), [B], [theta[0]! + theta[1]!, theta[0]! + theta[1]!], `${label}: a scalar cost, one per sample`);
      close(t, ev.costs.get('w'), [B, T], [0, 1].flatMap((b) => [0, 1, 2].map((t_) => (10 * t_ + theta[1]!) * m(b, t_))), `${label}: a [1, T] cost broadcast over samples`);
      close(t, ev.costs.get('e'), [B, T], x.flatMap((v, b) => [0, 1, 2].map((t_) => (v + theta[0]! + theta[1]!) * m(b, t_))), `${label}: a per-sample value as a per-step cost`);
      t.is(ev.mask === undefined, !withMask);
    }
  });
});

test('evaluateGraph: a node’s own log-probability replaces its family’s, and its distribution is then computed only when asked for, once', (t) => {
  tf.tidy(() => {
    const own: NodeImpl = { ...(graph.impls.get('z') as Extract<NodeImpl, { kind: 'distribution' }>), logProb: (_p, value) => tf.mul(tf.cast(value, 'float32'), -7) };
    const withOwn: Graph = { ...graph, impls: new Map([...graph.impls, ['z', own]]) };
    calls.z = 0;
    const ev = evaluateGraph(withOwn, params(), batch());
    close(t, ev.logProbs.get('z'), [B], z.map((v) => -7 * v), 'the node’s own');
    t.is(calls.z, 0, 'the distribution is not computed for the log-probability');
    close(t, (ev.distributionOf('z') as { logits: tf.Tensor }).logits, [2], theta, 'logits when asked');
    ev.distributionOf('z');
    t.is(calls.z, 1, 'once');
    t.is(ev.distributionOf('s'), undefined, 'an external node has none');
    t.is(ev.distributionOf('nowhere'), undefined);
  });
});

test('evaluateGraph with logProbs: false computes no log-probability and no distribution until asked, and the same costs', (t) => {
  tf.tidy(() => {
    calls.g = 0;
    const ev = evaluateGraph(graph, params(), batch(), { logProbs: false });
    t.is(ev.logProbs.size, 0);
    t.is(calls.g, 0);
    const d = ev.distributionOf('g') as { mean: tf.Tensor; logStd: tf.Tensor };
    close(t, d.mean, [B, T, 1], h.flat(), 'g’s mean is h');
    close(t, d.logStd, [1], [logStd], 'g’s log σ');
    ev.distributionOf('g');
    t.is(calls.g, 1);
    close(t, ev.costs.get('c'), [B, T], g.flatMap((row, b) => row.map((v, t_) => (v + 10 * t_ + theta[1]!) * mask[b]![t_]!)), 'c');
    // with log-probabilities, g's distribution is computed once for them
    calls.g = 0;
    const full = evaluateGraph(graph, params(), batch());
    full.distributionOf('g');
    t.is(calls.g, 1);
  });
});

test('evaluateGraph refuses a node that stands for whole trajectories (a meta-level graph’s): its log-probability is the meta-objective’s', (t) => {
  const meta: Graph = { ...graph, spec: { ...graph.spec, nodes: graph.spec.nodes.map((n) => (n.name === 'z' ? { ...n, family: { type: 'trajectory' as const } } : n)) } };
  tf.tidy(() => {
    t.throws(() => evaluateGraph(meta, params(), batch()), { instanceOf: EvaluationError, message: /^stochastic node 'z' stands for whole trajectories/ });
  });
});

test('evaluateGraph refuses a result that does not broadcast to [B] or [B, T], naming it and both shapes', (t) => {
  const withCost = (fn: () => tf.Tensor, temporal: boolean): Graph =>
    scg()
      .parameter('theta', { shape: [2] })
      .input('x')
      .cost('bad', { temporal, parents: ['theta'], fn })
      .build();
  const refuse = (shape: number[], temporal: boolean, fits: string) =>
    tf.tidy(() => {
      const message = `cost 'bad' has shape [${shape.join(', ')}], which does not fit [${fits}]`;
      t.throws(() => evaluateGraph(withCost(() => tf.zeros(shape), temporal), params(), { values: { x: tf.tensor1d(x) }, mask: tf.tensor2d(mask) }), { instanceOf: EvaluationError, message });
    });
  refuse([2, 5], true, '2, 3');
  refuse([2, 3, 1], true, '2, 3');
  refuse([1, 1, 1], true, '2, 3');
  refuse([2], true, '2, 3');
  refuse([2, 1], false, '2');
  refuse([3], false, '2');
  // what does broadcast: [1], [T], [B, 1] and [1, T] for a per-step cost, [1] for a per-sample one
  tf.tidy(() => {
    for (const [shape, temporal] of [
      [[1], true],
      [[3], true],
      [[2, 1], true],
      [[1, 3], true],
      [[1], false],
    ] as const) {
      const ev = evaluateGraph(withCost(() => tf.ones([...shape]), temporal), params(), { values: { x: tf.tensor1d(x) }, mask: tf.ones([2, 3]) });
      t.deepEqual(ev.costs.get('bad')!.shape, temporal ? [2, 3] : [2], `[${shape}]`);
    }
  });
});

test('evaluateGraph never reads a computed node from the batch: a lagged reference to it before it is computed is refused', (t) => {
  // u_t = h_{t−1} is declared (and evaluated) before h = 2x; the batch's own 'h' is not a substitute
  const recurrent = scg()
    .input('x')
    .deterministic('u', { temporal: true, parents: [lag('h', 1)], fn: (p) => p['h@1']! })
    .deterministic('h', { temporal: true, parents: ['x'], fn: ({ x }) => tf.mul(x!, 2) })
    .cost('c', { temporal: true, parents: ['u'] })
    .build();
  tf.tidy(() => {
    t.throws(() => evaluateGraph(recurrent, {}, { values: { x: tf.tensor1d(x), h: tf.fill([2, 3], 7), c: tf.zeros([2, 3]) } }), {
      instanceOf: EvaluationError,
      message: /^node 'u' needs 'h@1' before it is computed/,
    });
  });
});

test('evaluateGraph skips a stochastic node without a family (validation reports it): no log-probability, no error', (t) => {
  const noFamily: Graph = { ...graph, spec: { ...graph.spec, nodes: graph.spec.nodes.map((n) => (n.name === 'z' ? { ...n, family: undefined } : n)) } };
  tf.tidy(() => {
    const ev = evaluateGraph(noFamily, params(), batch());
    t.deepEqual([...ev.logProbs.keys()], ['g']);
    t.is(ev.distributionOf('z'), undefined);
  });
});

test('evaluateGraph refuses what does not fit its node, naming it: a family’s parameters, a parameter’s shape, a function of the wrong kind', (t) => {
  const swap = (name: string, impl: NodeImpl | undefined): Graph => {
    const impls = new Map(graph.impls);
    if (impl === undefined) impls.delete(name);
    else impls.set(name, impl);
    return { ...graph, impls };
  };
  const refuse = (g: Graph, message: string, p: Record<string, tf.Tensor> = params()) =>
    tf.tidy(() => {
      t.throws(() => evaluateGraph(g, p, batch()), { instanceOf: EvaluationError, message });
    });
  const gaussianParams = { mean: tf.zeros([1]), logStd: tf.zeros([1]) };
  refuse(swap('z', { kind: 'distribution', fn: () => gaussianParams }), "stochastic node 'z' is categorical: its distribution must return { logits }");
  refuse(swap('g', { kind: 'distribution', fn: () => ({ logits: tf.zeros([2]) }) }), "stochastic node 'g' is Gaussian: its distribution must return { mean, logStd }");
  refuse(swap('z', undefined), "stochastic node 'z' has no distribution function");
  refuse(swap('z', { kind: 'value', fn: () => tf.zeros([2]) }), "stochastic node 'z' has no distribution function");
  refuse(swap('h', { kind: 'distribution', fn: () => gaussianParams }), "node 'h' has a distribution but is deterministic");
  refuse(graph, "parameter 'theta' has shape [1, 2] but is declared [2]", { theta: tf.tensor2d([theta]) });
  refuse(graph, "parameter 'theta' has shape [3] but is declared [2]", { theta: tf.tensor1d([...theta, 0]) });
  refuse(graph, "parameter 'theta' has shape [] but is declared [2]", { theta: tf.scalar(theta[0]!) });
  refuse(graph, "no value for parameter 'theta'", {});
});
