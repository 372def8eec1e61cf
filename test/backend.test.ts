/** Backend selection: the preference order, the override, and what is reported. */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { BackendError, describeBackend, selectBackend } from '../src/backend.ts';

test.serial('without an override the best loadable backend is chosen and the missing node backends are reported', async (t) => {
  const report = await selectBackend('');
  t.true(['tensorflow-gpu', 'tensorflow', 'wasm'].includes(report.backend), report.backend);
  t.is(tf.getBackend(), report.tfjsName);
  for (const s of report.skipped) t.regex(s.reason, /not installed|could not initialise|failed/);
  t.regex(describeBackend(report), new RegExp(`^backend: ${report.backend} \\(tfjs 4\\.22\\.0\\)`));
});

test.serial('MAGICBOX_BACKEND forces a backend; an unknown or unavailable one is an error, not a silent fall-back', async (t) => {
  const cpu = await selectBackend('cpu');
  t.is(cpu.backend, 'cpu');
  t.is(tf.getBackend(), 'cpu');
  t.deepEqual(cpu.skipped, []);
  await t.throwsAsync(selectBackend('tpu'), { instanceOf: BackendError, message: /valid: tensorflow-gpu, tensorflow, wasm, cpu/ });
  let nodeInstalled = true;
  try {
    await import('@tensorflow/tfjs-node' as string);
  } catch {
    nodeInstalled = false;
  }
  if (!nodeInstalled) {
    await t.throwsAsync(selectBackend('tensorflow'), { instanceOf: BackendError, message: /@tensorflow\/tfjs-node is not installed/ });
  }
});

test.serial('on wasm a clone shares its buffer (no copy), stays readable after the original is freed, and carries gradients', async (t) => {
  await selectBackend('wasm');
  const x = tf.tensor1d([1, -2, 3.5]);
  const before = tf.memory();
  const y = tf.clone(x);
  t.is(tf.memory().numDataBuffers, before.numDataBuffers, 'no new buffer');
  x.dispose();
  t.deepEqual([...y.dataSync()], [1, -2, 3.5]);
  // A gradient through the ops that clone what they save (tf.mul saves both inputs while taping).
  const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(v, v)))(y);
  t.deepEqual([...g.dataSync()], [2, -4, 7]);
  tf.dispose([y, g]);
  t.is(tf.memory().numDataBuffers, before.numDataBuffers - 1, 'every buffer freed once its last tensor is');
});
