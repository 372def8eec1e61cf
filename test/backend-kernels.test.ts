/**
 * The kernels magicbox registers for the wasm backend (src/backend-kernels.ts) against tfjs's own:
 * Slice and SplitV give the values the cpu backend gives (its kernels are tfjs's reference ones), for
 * contiguous slices (the fast path) and for the others (the backend's own kernel), every dtype the
 * fast path serves; and the sharing Identity keeps a clone alive after its source is disposed.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from './helpers/derivatives.ts';

/** Runs `f` on the cpu backend and on wasm, returning both results' values and shapes. */
const onBoth = async (f: () => tf.Tensor | tf.Tensor[]) => {
  const run = () =>
    tf.tidy(() => {
      const out = f();
      return (Array.isArray(out) ? out : [out]).map((t) => ({ shape: t.shape, dtype: t.dtype, values: Array.from(t.dataSync()) }));
    });
  await useBackend('cpu');
  const cpu = run();
  await useBackend('wasm');
  const wasm = run();
  return { cpu, wasm };
};

const vector = (n: number, dtype: 'float32' | 'int32' = 'float32') => tf.tensor1d(Array.from({ length: n }, (_, i) => (dtype === 'int32' ? i * 3 - 7 : Math.sin(i) * 10)), dtype);
const array3 = () => tf.tensor3d(Array.from({ length: 4 * 5 * 3 }, (_, i) => i * 0.5 - 9), [4, 5, 3]);

const cases: ReadonlyArray<readonly [string, () => tf.Tensor | tf.Tensor[]]> = [
  ['a vector, middle', () => tf.slice(vector(6484), 100, 4000)],
  ['an int32 vector', () => tf.slice(vector(50, 'int32'), 7, 20)],
  ['a vector to its end (size -1)', () => tf.slice(vector(40), 33, -1)],
  ['rows of a matrix (contiguous)', () => tf.slice(tf.reshape(vector(60), [12, 5]), [3, 0], [4, 5])],
  ['columns of a matrix (not contiguous: the backend kernel)', () => tf.slice(tf.reshape(vector(60), [12, 5]), [2, 1], [5, 3])],
  ['one row, part of its columns (contiguous)', () => tf.slice(tf.reshape(vector(60), [12, 5]), [4, 1], [1, 3])],
  ['a block of a rank-3 array (not contiguous)', () => tf.slice(array3(), [1, 2, 0], [2, 2, 2])],
  ['trailing slabs of a rank-3 array (contiguous)', () => tf.slice(array3(), [2, 0, 0], [2, 5, 3])],
  ['an empty slice', () => tf.slice(vector(10), 4, 0)],
  ['a split of a vector by sizes', () => tf.split(vector(6484), [4484, 2000])],
  ['a split of a vector in equal parts', () => tf.split(vector(30), 3)],
  ['a split of a matrix along its rows', () => tf.split(tf.reshape(vector(60), [12, 5]), [2, 7, 3], 0)],
  ['a split of a matrix along its columns (the backend kernel per part)', () => tf.split(tf.reshape(vector(60), [12, 5]), [2, 3], 1)],
  ['a split of an int32 vector', () => tf.split(vector(12, 'int32'), [5, 7])],
  ['a split with a negative axis', () => tf.split(array3(), [1, 2], -1)],
];

for (const [name, f] of cases) {
  test.serial(`wasm Slice / SplitV equal the cpu backend's: ${name}`, async (t) => {
    const { cpu, wasm } = await onBoth(f);
    t.deepEqual(wasm, cpu);
  });
}

test.serial('the gradient of a concat (a split) and of a slice on wasm equal the cpu backend’s', async (t) => {
  const { cpu, wasm } = await onBoth(() => {
    const a = vector(7);
    const b = vector(5);
    const w = vector(12);
    const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.concat([x, y]), w)))([a, b]);
    const gs = tf.grad((x: tf.Tensor) => tf.sum(tf.square(tf.slice(x, 3, 8))))(vector(20));
    return [ga!, gb!, gs];
  });
  t.deepEqual(wasm, cpu);
});

test.serial('on wasm a slice and a split leave no tensor and no buffer behind', async (t) => {
  await useBackend('wasm');
  const before = tf.memory();
  tf.tidy(() => {
    tf.split(vector(1000), [300, 700]);
    tf.slice(tf.reshape(vector(60), [12, 5]), [2, 1], [5, 3]);
  });
  const after = tf.memory();
  t.is(after.numTensors, before.numTensors);
  t.is(after.numBytes, before.numBytes);
});

test.serial('the sharing Identity: a clone outlives its disposed source with its values', async (t) => {
  await useBackend('wasm');
  const source = vector(16);
  const expected = Array.from(source.dataSync());
  const clone = tf.clone(source);
  source.dispose();
  t.deepEqual(Array.from(clone.dataSync()), expected);
  clone.dispose();
});
