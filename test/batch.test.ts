/**
 * A batch at the boundary (src/surrogates/batch.ts), each case a mutation survivor: which nodes a batch
 * must supply, the batch size and horizon it implies, every shape it refuses (naming the node and the
 * shapes), every non-finite entry it refuses (naming where), and the time shift of a lagged parent,
 * all against values written out by hand.
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { lag, scg } from '../src/scg/builder.ts';
import { BatchError, batchDimensions, checkBatch, readsBatch, shiftInTime, type Batch } from '../src/surrogates/batch.ts';

test.before(async () => {
  await selectBackend();
});

/**
 * A graph mixing per-sample and per-step nodes: an input x [B, 1], a per-sample stochastic z, a per-step
 * external s and categorical a, a deterministic h with a function (not read from the batch) and one
 * without (read), and a per-step cost without a function.
 */
const graph = scg({ name: 'mixed' })
  .parameter('theta', { shape: [2] })
  .input('x', { shape: [1] })
  .stochastic('z', { family: { type: 'categorical', categories: 2 }, parents: ['theta'], distribution: ({ theta }) => ({ logits: theta }) })
  .stochastic('s', { temporal: true, family: { type: 'external' }, parents: [lag('s', 1)] })
  .stochastic('a', { temporal: true, family: { type: 'categorical', categories: 2 }, parents: ['theta'], distribution: ({ theta }) => ({ logits: theta }) })
  .deterministic('h', { parents: ['x'], fn: ({ x }) => tf.mul(x!, 2) })
  .deterministic('e', { temporal: true, parents: ['s'] })
  .cost('r', { temporal: true, parents: ['a', 'e', 'h', 'z'] })
  .build();

const [B, T] = [2, 3];
/** A good batch of B = 2 samples and T = 3 steps; `change` replaces or adds entries. */
const good = (change: Omit<Partial<Batch>, 'values'> & { values?: Record<string, tf.Tensor | undefined> } = {}): Batch => {
  const values: Record<string, tf.Tensor | undefined> = {
    x: tf.tensor2d([[0.5], [1.5]]),
    z: tf.tensor1d([0, 1], 'int32'),
    s: tf.tensor2d([[0, 1, 2], [2, 1, 0]]),
    a: tf.tensor2d([[1, 0, 1], [0, 0, 1]]),
    e: tf.tensor2d([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]),
    r: tf.tensor2d([[1, 2, 3], [4, 5, 6]]),
    ...change.values,
  };
  const { values: _, ...rest } = change;
  return { values: Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Record<string, tf.Tensor>, ...rest };
};
/** The problems of a refused batch, one per line of the error. */
const problemsOf = (f: () => unknown): string[] => {
  try {
    f();
  } catch (e) {
    if (!(e instanceof BatchError)) throw e;
    return e.message.split('\n').slice(1).map((l) => l.trim());
  }
  return [];
};

test('readsBatch: inputs, stochastic nodes, and deterministic nodes and costs without a function; not parameters or computed nodes', (t) => {
  const reads = Object.fromEntries(graph.spec.nodes.map((n) => [n.name, readsBatch(graph, n)]));
  t.deepEqual(reads, { theta: false, x: true, z: true, s: true, a: true, h: false, e: true, r: true });
});

test('batchDimensions: B from the leading axis, T from the second of per-step values; 1 and 1 when nothing is read', (t) => {
  tf.tidy(() => {
    t.deepEqual(batchDimensions(graph, good()), { size: B, horizon: T });
    t.deepEqual(checkBatch(graph, good({ mask: tf.tensor2d([[1, 1, 1], [1, 1, 0]]) })), { size: B, horizon: T });
    // a graph of parameters and computed nodes only reads nothing from its batch
    const computed = scg()
      .parameter('w', { shape: [1] })
      .cost('c', { parents: ['w'], fn: ({ w }) => w! })
      .build();
    t.deepEqual(batchDimensions(computed, { values: {} }), { size: 1, horizon: 1 });
    // per-sample nodes only: the horizon is 1, the size is theirs
    const perSample = scg()
      .input('x', { shape: [1] })
      .cost('c', { parents: ['x'] })
      .build();
    t.deepEqual(batchDimensions(perSample, { values: { x: tf.zeros([5, 1]), c: tf.zeros([5]) } }), { size: 5, horizon: 1 });
  });
});

test('batchDimensions refuses each wrong value, naming the node and the shapes, and lists every problem', (t) => {
  tf.tidy(() => {
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ values: { e: undefined } }))), ["no value for deterministic node 'e' in the batch"]);
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ values: { z: tf.tensor1d([0, 1, 1], 'int32') } }))), ["value of 'z' has 3 samples (shape [3]) but the batch has 2"]);
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ values: { r: tf.zeros([2, 4]) } }))), ["value of 'r' has 4 time steps (shape [2, 4]) but the batch has 3"]);
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ values: { s: tf.zeros([2]) } }))), ["value of 's' has shape [2] but needs [B, T, ...]"]);
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ values: { x: tf.scalar(1) } }))), ["value of 'x' has shape [] but needs [B, ...]"]);
    // a scalar where a per-sample value is due is refused even when it comes first (nothing set B yet)
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ values: { x: tf.scalar(1), z: tf.scalar(0) } }))), [
      "value of 'x' has shape [] but needs [B, ...]",
      "value of 'z' has shape [] but needs [B, ...]",
    ]);
    // two problems at once, both listed
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ values: { e: undefined, r: tf.zeros([3, 3]) } }))), [
      "no value for deterministic node 'e' in the batch",
      "value of 'r' has 3 samples (shape [3, 3]) but the batch has 2",
    ]);
  });
});

test('batchDimensions refuses a mask that is not [B, T], and baselines, behaviour log-probabilities and advantages not [B] or [B, T] or not of a stochastic node', (t) => {
  tf.tidy(() => {
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ mask: tf.ones([2]) }))), ['mask has shape [2] but needs [B, T]']);
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ mask: tf.ones([2, 3, 1]) }))), ['mask has shape [2, 3, 1] but needs [B, T]']);
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ mask: tf.ones([2, 2]) }))), ['mask has 2 time steps (shape [2, 2]) but the batch has 3']);
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ mask: tf.ones([1, 3]) }))), ['mask has 1 samples (shape [1, 3]) but the batch has 2']);
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ baselines: { a: tf.zeros([2, 3]), z: tf.zeros([2]) } }))), []);
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ baselines: { a: tf.zeros([2]) } }))), ["baseline of 'a' has shape [2] but needs [B, T]"]);
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ baselines: { z: tf.zeros([2, 3]) } }))), ["baseline of 'z' has shape [2, 3] but needs [B]"]);
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ baselines: { r: tf.zeros([2, 3]) } }))), ["baseline given for 'r', which is not a stochastic node of the graph"]);
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ baselines: { nowhere: tf.zeros([2]) } }))), ["baseline given for 'nowhere', which is not a stochastic node of the graph"]);
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ behaviour: { a: tf.zeros([2, 4]) } }))), ["behaviour log-probability of 'a' has 4 time steps (shape [2, 4]) but the batch has 3"]);
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ advantages: { z: tf.zeros([3]) } }))), ["advantage of 'z' has 3 samples (shape [3]) but the batch has 2"]);
    t.deepEqual(problemsOf(() => batchDimensions(graph, good({ advantages: { h: tf.zeros([2]) } }))), ["advantage given for 'h', which is not a stochastic node of the graph"]);
  });
});

test('checkBatch refuses the first non-finite entry of each tensor, naming it and its flat index, in values, mask, baselines, behaviour and advantages', (t) => {
  tf.tidy(() => {
    const bad = good({
      values: { r: tf.tensor2d([[1, 2, 3], [Number.NaN, 5, Infinity]]), x: tf.tensor2d([[-Infinity], [0]]) },
      mask: tf.tensor2d([[1, 1, Number.NaN], [1, 1, 1]]),
      baselines: { a: tf.tensor2d([[0, 0, 0], [0, Infinity, 0]]) },
      behaviour: { z: tf.tensor1d([Number.NaN, 0]) },
      advantages: { a: tf.tensor2d([[0, -Infinity, 0], [0, 0, 0]]) },
    });
    t.deepEqual(problemsOf(() => checkBatch(graph, bad)), [
      "value of 'x' contains -Infinity at flat index 0 (shape [2, 1])",
      "value of 'r' contains NaN at flat index 3 (shape [2, 3])",
      'mask contains NaN at flat index 2 (shape [2, 3])',
      "baseline of 'a' contains Infinity at flat index 4 (shape [2, 3])",
      "behaviour log-probability of 'z' contains NaN at flat index 0 (shape [2])",
      "advantage of 'a' contains -Infinity at flat index 1 (shape [2, 3])",
    ]);
    // shapes first: a batch with a wrong shape is refused for it, before its entries are read
    t.deepEqual(problemsOf(() => checkBatch(graph, good({ values: { r: tf.tensor2d([[Number.NaN, 1]]) } }))), [
      "value of 'r' has 1 samples (shape [1, 2]) but the batch has 2",
      "value of 'r' has 2 time steps (shape [1, 2]) but the batch has 3",
    ]);
  });
});

test('shiftInTime moves a per-step value lag steps later, zeros first; lag 0 is the value itself, lag ≥ T all zeros', (t) => {
  tf.tidy(() => {
    // [B = 2, T = 3, 2]
    const v = tf.tensor3d([
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
      [
        [7, 8],
        [9, 10],
        [11, 12],
      ],
    ]);
    t.is(shiftInTime(v, 0), v);
    const one = shiftInTime(v, 1);
    t.deepEqual(one.shape, [2, 3, 2]);
    t.deepEqual(Array.from(one.dataSync()), [0, 0, 1, 2, 3, 4, 0, 0, 7, 8, 9, 10]);
    t.deepEqual(Array.from(shiftInTime(v, 2).dataSync()), [0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 7, 8]);
    for (const lagged of [3, 5]) {
      const all = shiftInTime(v, lagged);
      t.deepEqual(all.shape, [2, 3, 2], `lag ${lagged}`);
      t.deepEqual(Array.from(all.dataSync()), Array(12).fill(0), `lag ${lagged}`);
    }
    // [B, T]
    t.deepEqual(Array.from(shiftInTime(tf.tensor2d([[1, 2, 3, 4]]), 1).dataSync()), [0, 1, 2, 3]);
  });
});
