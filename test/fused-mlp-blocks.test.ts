/**
 * The fused ops on θ of K blocks ([K, P]: K tasks' parameters, block k applying to its share of the
 * rows): value, gradient and second derivatives (through θ and through the row weights) are, block by
 * block, exactly those of K separate calls on each block's rows with its own θ — on both kernel sets,
 * both heads, both activations. This is what lets the outer step stack tasks (iteration.ts).
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { fusedMlpLogProbPacked } from '../src/ops/mlp/log-prob-op.ts';
import { fusedMlpOutputPacked } from '../src/ops/mlp/output-op.ts';
import { tfjsMlpKernels, type MlpKernels } from '../src/ops/mlp/kernels.ts';
import { wasmMlpKernels } from '../src/ops/mlp/wasm-kernels.ts';
import { mlpKernelBytes } from '../src/ops/mlp/wasm-module.ts';
import { parameterSizes, type MlpSpec } from '../src/ops/mlp/spec.ts';
import { seededUniform } from '../src/random.ts';
import { useBackend } from './helpers/derivatives.ts';

test.before(async () => {
  await useBackend('wasm');
});

const kernelSets: readonly (readonly [string, () => MlpKernels])[] = [
  ['tfjs kernels', () => tfjsMlpKernels],
  ['wasm kernels', () => wasmMlpKernels(mlpKernelBytes('plain'))],
];

const specs: readonly MlpSpec[] = [
  { widths: [3, 16, 8, 2], activation: 'tanh', head: { kind: 'gaussian', logStd: 'learned' } },
  { widths: [4, 8, 3], activation: 'relu', head: { kind: 'categorical' } },
  { widths: [2, 6, 2], activation: 'tanh', head: { kind: 'gaussian', logStd: -0.3 } },
];

const random = (u: () => number, shape: number[], scale = 1) =>
  tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => scale * (2 * u() - 1)), shape);

const blocks = 3;
const rowsPerBlock = 7;

/**
 * For one block's θ (or all blocks' [K, P]) and rows: [ℓ, ∇_θ Σ w ℓ, the gradient with respect to θ
 * and to w of Σ (∇_θ Σ_b w_b exp(ℓ_b/4)) · V] — the second one runs the op's second-order kernels
 * (the Hessian-vector product and the JVP).
 */
const derivatives = (spec: MlpSpec, kernels: MlpKernels, theta: tf.Tensor, x: tf.Tensor2D, a: tf.Tensor, w: tf.Tensor, v: tf.Tensor): tf.Tensor[] => {
  const op = fusedMlpLogProbPacked(spec, kernels, x, a);
  const value = op(theta);
  const gradient = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(w, op(t))))(theta);
  const inner = (t: tf.Tensor, weights: tf.Tensor) => tf.grad((s: tf.Tensor) => tf.sum(tf.mul(weights, tf.exp(tf.div(op(s), 4)))))(t);
  const [hvp, jvp] = tf.grads((t: tf.Tensor, weights: tf.Tensor) => tf.sum(tf.mul(inner(t, weights), v)))([theta, w]);
  return [value, gradient, hvp!, jvp!];
};

const rowsOf = (t: tf.Tensor, k: number): tf.Tensor => tf.slice(t, [k * rowsPerBlock, ...t.shape.slice(1).map(() => 0)], [rowsPerBlock, ...t.shape.slice(1)]);
const rowOf = (t: tf.Tensor, k: number): tf.Tensor => tf.reshape(tf.slice(t, [k, 0], [1, t.shape[1]!]), [t.shape[1]!]);

for (const [kernelsName, makeKernels] of kernelSets) {
  for (const spec of specs) {
    const name = `${spec.head.kind}${spec.head.kind === 'gaussian' ? ` (log-std ${spec.head.logStd})` : ''}, ${spec.activation}`;
    test(`fused log-prob on ${kernelsName}, ${name}: θ of ${blocks} blocks gives each block's value, gradient, HVP and JVP of its own call`, (t) => {
      const kernels = makeKernels();
      tf.tidy(() => {
        const u = seededUniform(7 + spec.widths.length);
        const { total } = parameterSizes(spec);
        const rows = blocks * rowsPerBlock;
        // The blocks' θ differ, so a block read with another's θ would show.
        const theta = random(u, [blocks, total], 0.8);
        const x = random(u, [rows, spec.widths[0]!], 1.5) as tf.Tensor2D;
        const out = spec.widths.at(-1)!;
        const a = spec.head.kind === 'categorical' ? tf.tensor1d(Array.from({ length: rows }, () => Math.floor(u() * out)), 'int32') : random(u, [rows, out], 2);
        const w = random(u, [rows]);
        const v = random(u, [blocks, total]);
        const stacked = derivatives(spec, kernels, theta, x, a, w, v);
        t.deepEqual(
          stacked.map((s) => s.shape),
          [[rows], [blocks, total], [blocks, total], [rows]],
        );
        const separate = Array.from({ length: blocks }, (_, k) =>
          derivatives(spec, kernels, rowOf(theta, k), rowsOf(x, k) as tf.Tensor2D, rowsOf(a, k), rowsOf(w, k), rowOf(v, k)),
        );
        const joined = [
          tf.concat(separate.map((s) => s[0]!)),
          tf.stack(separate.map((s) => s[1]!)),
          tf.stack(separate.map((s) => s[2]!)),
          tf.concat(separate.map((s) => s[3]!)),
        ];
        ['value', 'gradient', 'HVP', 'JVP'].forEach((what, i) => {
          const got = stacked[i]!.dataSync();
          const want = joined[i]!.dataSync();
          let worst = 0;
          for (let e = 0; e < want.length; e++) worst = Math.max(worst, Math.abs(got[e]! - want[e]!) / Math.max(Math.abs(want[e]!), 1e-3));
          t.true(worst <= 1e-6, `${what}: largest relative difference ${worst}`);
        });
        // Not trivially equal: the blocks' gradients differ from one another.
        const grads = stacked[1]!.arraySync() as number[][];
        t.notDeepEqual(grads[0], grads[1]);
      });
    });
  }

  test(`fused output on ${kernelsName}: θ of ${blocks} blocks (with the learned log-std) gives each block's output and gradient, zero for the log-std`, (t) => {
    const spec = specs[0]!;
    const kernels = makeKernels();
    tf.tidy(() => {
      const u = seededUniform(99);
      const { total } = parameterSizes(spec);
      const rows = blocks * rowsPerBlock;
      const theta = random(u, [blocks, total], 0.8);
      const x = random(u, [rows, spec.widths[0]!], 1.5) as tf.Tensor2D;
      const g = random(u, [rows, spec.widths.at(-1)!]);
      const of = (th: tf.Tensor, xs: tf.Tensor2D, gs: tf.Tensor) => {
        const op = fusedMlpOutputPacked(spec, kernels, xs);
        return [op(th), tf.grad((s: tf.Tensor) => tf.sum(tf.mul(gs, op(s))))(th)];
      };
      const [value, gradient] = of(theta, x, g);
      const separate = Array.from({ length: blocks }, (_, k) => of(rowOf(theta, k), rowsOf(x, k) as tf.Tensor2D, rowsOf(g, k)));
      t.deepEqual(gradient!.shape, [blocks, total]);
      const close = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]! <= 1e-6 * Math.max(1, tf.max(tf.abs(b)).dataSync()[0]!);
      t.true(close(value!, tf.concat(separate.map((s) => s[0]!))));
      t.true(close(gradient!, tf.stack(separate.map((s) => s[1]!))));
      const logStdGradient = tf.slice(gradient!, [0, total - 2], [blocks, 2]).dataSync();
      t.deepEqual(Array.from(logStdGradient), new Array(2 * blocks).fill(0));
    });
  });

  test(`fused ops on ${kernelsName}: θ whose blocks do not divide the rows is refused, naming its shape`, (t) => {
    const spec = specs[0]!;
    const kernels = makeKernels();
    tf.tidy(() => {
      const { total } = parameterSizes(spec);
      const x = tf.zeros([10, spec.widths[0]!]) as tf.Tensor2D;
      const a = tf.zeros([10, 2]);
      t.throws(() => fusedMlpLogProbPacked(spec, kernels, x, a)(tf.zeros([3, total])), { instanceOf: RangeError, message: /got shape \[3, 220\]/ });
      t.throws(() => fusedMlpOutputPacked(spec, kernels, x)(tf.zeros([4, total])), { instanceOf: RangeError, message: /one row per block of the 10 rows/ });
      t.throws(() => fusedMlpLogProbPacked(spec, kernels, x, a)(tf.zeros([2, total + 1])), { instanceOf: RangeError });
      t.notThrows(() => fusedMlpLogProbPacked(spec, kernels, x, a)(tf.zeros([5, total])));
    });
  });
}

test.serial('on another backend (cpu) the WebAssembly kernels, copying through a memory of their own, give each block its own call too', async (t) => {
  await useBackend('cpu');
  try {
    const kernels = wasmMlpKernels(mlpKernelBytes('plain'));
    const spec = specs[0]!;
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const u = seededUniform(31);
      const { total } = parameterSizes(spec);
      // 3 blocks of 200 rows: more than the memory's first page, and one block's scratch reused thrice.
      const per = 200;
      const theta = random(u, [blocks, total], 0.8);
      const x = random(u, [blocks * per, spec.widths[0]!], 1.5) as tf.Tensor2D;
      const a = random(u, [blocks * per, spec.widths.at(-1)!], 2);
      const w = random(u, [blocks * per]);
      const v = random(u, [blocks, total]);
      const stacked = derivatives(spec, kernels, theta, x, a, w, v);
      const slice = (t: tf.Tensor, k: number) => tf.slice(t, [k * per, ...t.shape.slice(1).map(() => 0)], [per, ...t.shape.slice(1)]);
      const separate = Array.from({ length: blocks }, (_, k) => derivatives(spec, kernels, rowOf(theta, k), slice(x, k) as tf.Tensor2D, slice(a, k), slice(w, k), rowOf(v, k)));
      const joined = [0, 1, 2, 3].map((i) => (i === 0 || i === 3 ? tf.concat(separate.map((s) => s[i]!)) : tf.stack(separate.map((s) => s[i]!))));
      joined.forEach((want, i) => t.deepEqual(Array.from(stacked[i]!.dataSync()), Array.from(want.dataSync()), ['value', 'gradient', 'HVP', 'JVP'][i]));
    });
    t.is(tf.memory().numTensors, before);
  } finally {
    await useBackend('wasm');
  }
});
