/**
 * The fused MLP op's parameter layout and its output op on a packed θ, each case a mutation survivor
 * of src/ops/mlp (spec.ts, output-op.ts): the parameter shapes of each head written out by hand, the
 * output's gradient with respect to a θ that carries the learned log-std (zero there, the tfjs path's
 * elsewhere), and a network of three hidden layers, deeper than test/fused-mlp.test.ts's.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { tfjsMlpKernels, type MlpKernels } from '../src/ops/mlp/kernels.ts';
import { fusedMlpOutput, fusedMlpOutputPacked } from '../src/ops/mlp/output-op.ts';
import { parameterShapes, parameterSizes, type MlpSpec } from '../src/ops/mlp/spec.ts';
import { mlpKernelBytes } from '../src/ops/mlp/wasm-module.ts';
import { wasmMlpKernels } from '../src/ops/mlp/wasm-kernels.ts';
import { tanh } from '../src/ops/index.ts';
import { seededUniform } from '../src/random.ts';
import { useBackend } from './helpers/derivatives.ts';

test.before(async () => {
  await useBackend('wasm');
});

test('parameterShapes: W_l [n_l, n_l+1] and b_l [n_l+1] per layer, then the log-std [out] only when it is learned', (t) => {
  const layers = [[3, 5], [5], [5, 2], [2]];
  t.deepEqual(parameterShapes({ widths: [3, 5, 2], activation: 'tanh', head: { kind: 'gaussian', logStd: 'learned' } }), [...layers, [2]]);
  t.deepEqual(parameterShapes({ widths: [3, 5, 2], activation: 'tanh', head: { kind: 'gaussian', logStd: -0.5 } }), layers);
  t.deepEqual(parameterShapes({ widths: [3, 5, 2], activation: 'relu', head: { kind: 'categorical' } }), layers);
  t.deepEqual(parameterSizes({ widths: [3, 5, 2], activation: 'tanh', head: { kind: 'gaussian', logStd: 'learned' } }), { sizes: [15, 5, 10, 2, 2], total: 34 });
  t.deepEqual(parameterSizes({ widths: [3, 5, 2], activation: 'tanh', head: { kind: 'categorical' } }), { sizes: [15, 5, 10, 2], total: 32 });
});

const kernelSets: readonly (readonly [string, () => MlpKernels])[] = [
  ['tfjs kernels', () => tfjsMlpKernels],
  ['wasm kernels', () => wasmMlpKernels(mlpKernelBytes('plain'))],
];

/** The network written with tfjs ops and the safe tanh: the reference. */
const generalOutput = (spec: MlpSpec, x: tf.Tensor) => (params: readonly tf.Tensor[]): tf.Tensor => {
  const layers = spec.widths.length - 1;
  let h = x;
  for (let l = 0; l < layers; l++) {
    h = tf.add(tf.matMul(h as tf.Tensor2D, params[2 * l] as tf.Tensor2D), params[2 * l + 1]!);
    if (l + 1 < layers) h = tanh(h);
  }
  return h;
};
const random = (u: () => number, shape: number[], scale = 1) =>
  tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => scale * (2 * u() - 1)), shape);
const relativeError = (a: tf.Tensor, e: tf.Tensor): number => tf.tidy(() => tf.norm(tf.sub(a, e)).dataSync()[0]! / Math.max(tf.norm(e).dataSync()[0]!, 1e-30));

for (const [kernelsName, makeKernels] of kernelSets) {
  test(`fused output on ${kernelsName}, θ packed with the learned log-std: the tfjs path's value and gradient, and a zero gradient for the log-std`, (t) => {
    const spec: MlpSpec = { widths: [3, 6, 2], activation: 'tanh', head: { kind: 'gaussian', logStd: 'learned' } };
    tf.tidy(() => {
      const u = seededUniform(41);
      const params = parameterShapes(spec).map((s) => random(u, s, 0.8));
      const x = random(u, [11, 3], 1.5) as tf.Tensor2D;
      const w = random(u, [11, 2]);
      const theta = tf.concat(params.map((p) => tf.reshape(p, [-1])));
      const packed = fusedMlpOutputPacked(spec, makeKernels(), x);
      const general = generalOutput(spec, x);
      t.true(relativeError(packed(theta), general(params)) < 2e-6, 'value');
      // Σ w ⊙ O², as a divergence would use the output
      const fusedGrad = tf.grad((th: tf.Tensor) => tf.sum(tf.mul(w, tf.square(packed(th)))) as tf.Scalar)(theta);
      const layerGrads = tf.grads((...p: tf.Tensor[]) => tf.sum(tf.mul(w, tf.square(general(p)))) as tf.Scalar)(params.slice(0, 4));
      const expected = tf.concat([...layerGrads.map((g) => tf.reshape(g, [-1])), tf.zeros([2])]);
      t.deepEqual(fusedGrad.shape, [parameterSizes(spec).total]);
      t.true(relativeError(fusedGrad, expected) < 2e-5, `gradient: ${relativeError(fusedGrad, expected)}`);
      t.deepEqual(Array.from(fusedGrad.dataSync().slice(-2)), [0, 0], 'the log-std’s');
    });
  });

  test(`fused output on ${kernelsName} of a network with three hidden layers: the tfjs path's value and gradient`, (t) => {
    const spec: MlpSpec = { widths: [3, 5, 4, 5, 2], activation: 'tanh', head: { kind: 'gaussian', logStd: 'learned' } };
    tf.tidy(() => {
      const u = seededUniform(43);
      const params = parameterShapes(spec).slice(0, 8).map((s) => random(u, s, 0.8));
      const x = random(u, [9, 3], 1.5) as tf.Tensor2D;
      const w = random(u, [9, 2]);
      const fused = fusedMlpOutput(spec, makeKernels(), x);
      const general = generalOutput(spec, x);
      t.true(relativeError(fused(params), general(params)) < 2e-6, 'value');
      const f = (o: (p: readonly tf.Tensor[]) => tf.Tensor) => (...p: tf.Tensor[]) => tf.sum(tf.mul(w, tf.square(o(p)))) as tf.Scalar;
      const flat = (gs: tf.Tensor[]) => tf.concat(gs.map((g) => tf.reshape(g, [-1])));
      const error = relativeError(flat(tf.grads(f(fused))(params)), flat(tf.grads(f(general))(params)));
      t.true(error < 2e-5, `gradient: ${error}`);
    });
  });
}
