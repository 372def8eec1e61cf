/**
 * The fused MLP log-probability op against the general tfjs path (the policy's network through the
 * safe ops, whose derivatives are checked elsewhere against closed forms): value, gradient,
 * Hessian-vector product and a MAML-style meta-gradient, on random networks and batches, for both
 * heads and both activations; and a third derivative refused clearly.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { exp } from '../src/ops/index.ts';
import { fusedMlpLogProb, fusedMlpLogProbAndOutputPacked, FusedOrderError, packParams } from '../src/ops/mlp/log-prob-op.ts';
import { fusedMlpOutput } from '../src/ops/mlp/output-op.ts';
import { tfjsMlpKernels, type MlpKernels } from '../src/ops/mlp/kernels.ts';
import { wasmMlpForward, wasmMlpKernels } from '../src/ops/mlp/wasm-kernels.ts';
import { kernelMemory } from '../src/ops/mlp/kernel-memory.ts';
import { chosenMlpKernelBuild, fmaAvailable, mlpKernelBytes } from '../src/ops/mlp/wasm-module.ts';
import { parameterShapes, type MlpSpec } from '../src/ops/mlp/spec.ts';
import { categoricalLogProb, gaussianLogProb, tanh } from '../src/ops/index.ts';
import { seededUniform } from '../src/random.ts';
import { useBackend } from './helpers/derivatives.ts';

test.before(async () => {
  await useBackend('wasm');
});

const random = (u: () => number, shape: number[], scale = 1) =>
  tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => scale * (2 * u() - 1)), shape);

/** The general path: the same network written with tfjs ops and the safe tanh / log-probabilities. */
const generalLogProb = (spec: MlpSpec, x: tf.Tensor, a: tf.Tensor) => (params: readonly tf.Tensor[]): tf.Tensor => {
  const layers = spec.widths.length - 1;
  let h = x;
  for (let l = 0; l < layers; l++) {
    h = tf.add(tf.matMul(h as tf.Tensor2D, params[2 * l] as tf.Tensor2D), params[2 * l + 1]!);
    if (l + 1 < layers) h = spec.activation === 'tanh' ? tanh(h) : tf.relu(h);
  }
  if (spec.head.kind === 'categorical') return categoricalLogProb(h, a);
  const logStd = spec.head.logStd === 'learned' ? params[2 * layers]! : tf.fill([spec.widths.at(-1)!], spec.head.logStd);
  return gaussianLogProb(a, h, logStd);
};

interface Case {
  readonly spec: MlpSpec;
  readonly params: tf.Tensor[];
  readonly x: tf.Tensor2D;
  readonly a: tf.Tensor;
  readonly weights: tf.Tensor;
  readonly direction: tf.Tensor[];
}

const makeCase = (spec: MlpSpec, rows: number, seed: number): Case => {
  const u = seededUniform(seed);
  const params = parameterShapes(spec).map((s) => random(u, s, 0.8));
  const x = random(u, [rows, spec.widths[0]!], 1.5) as tf.Tensor2D;
  const out = spec.widths.at(-1)!;
  const a = spec.head.kind === 'categorical' ? tf.tensor1d(Array.from({ length: rows }, () => Math.floor(u() * out)), 'int32') : random(u, [rows, out], 2);
  return { spec, params, x, a, weights: random(u, [rows]), direction: parameterShapes(spec).map((s) => random(u, s)) };
};

/** A scalar of ℓ whose second derivative needs both the Hessian of ℓ and the JVP: Σ_b w_b exp(ℓ_b / 4). */
const objective = (logProb: (p: readonly tf.Tensor[]) => tf.Tensor, w: tf.Tensor) => (p: readonly tf.Tensor[]) =>
  tf.sum(tf.mul(w, exp(tf.div(logProb(p), 4)))) as tf.Scalar;

const gradient = (f: (p: readonly tf.Tensor[]) => tf.Scalar, at: readonly tf.Tensor[]) => tf.grads((...p: tf.Tensor[]) => f(p))([...at]);
const hvp = (f: (p: readonly tf.Tensor[]) => tf.Scalar, at: readonly tf.Tensor[], v: readonly tf.Tensor[]) =>
  tf.grads((...p: tf.Tensor[]) => tf.addN(gradient(f, p).map((g, k) => tf.sum(tf.mul(g, v[k]!)))) as tf.Scalar)([...at]);
/** θ′ = θ + 0.1·∇f(θ), then ∇_θ f(θ′): a MAML meta-gradient. */
const metaGradient = (f: (p: readonly tf.Tensor[]) => tf.Scalar, at: readonly tf.Tensor[]) =>
  tf.grads((...p: tf.Tensor[]) => {
    const adapted = gradient(f, p).map((g, k) => tf.add(p[k]!, tf.mul(0.1, g)));
    return f(adapted);
  })([...at]);

const relativeError = (actual: readonly tf.Tensor[], expected: readonly tf.Tensor[]): number =>
  tf.tidy(() => {
    const a = tf.concat(actual.map((t) => tf.reshape(t, [-1])));
    const e = tf.concat(expected.map((t) => tf.reshape(t, [-1])));
    return tf.max(tf.abs(tf.sub(a, e))).dataSync()[0]! / Math.max(tf.max(tf.abs(e)).dataSync()[0]!, 1e-12);
  });

// Rows per case: 37 in general; the widths that are multiples of 16 take the wasm GEMMs' register
// blocks (and, before fewer than eight outputs, gemmTN's narrow block: two columns at a time, then an
// odd one), and 150 rows are two full panels of gemmTN and a partial one, and not a multiple of the four
// rows gemmDot takes at a time.
const rowsFor = (spec: MlpSpec): number => (spec.widths.slice(1).every((w) => w % 16 === 0 || w === spec.widths.at(-1)) ? 150 : 37);

const specs: readonly [string, MlpSpec][] = [
  ['gaussian tanh, 16-wide layers, 150 rows', { widths: [4, 32, 16, 2], activation: 'tanh', head: { kind: 'gaussian', logStd: 'learned' } }],
  ['gaussian tanh, learned log-std', { widths: [3, 16, 8, 2], activation: 'tanh', head: { kind: 'gaussian', logStd: 'learned' } }],
  ['gaussian tanh, fixed log-std', { widths: [2, 8, 2], activation: 'tanh', head: { kind: 'gaussian', logStd: -0.3 } }],
  ['gaussian relu, learned log-std', { widths: [4, 12, 3], activation: 'relu', head: { kind: 'gaussian', logStd: 'learned' } }],
  ['gaussian relu, a 16-wide layer before three actions', { widths: [5, 16, 3], activation: 'relu', head: { kind: 'gaussian', logStd: 'learned' } }],
  ['gaussian linear', { widths: [3, 2], activation: 'tanh', head: { kind: 'gaussian', logStd: 'learned' } }],
  ['categorical tanh', { widths: [3, 16, 8, 4], activation: 'tanh', head: { kind: 'categorical' } }],
  ['categorical relu', { widths: [5, 10, 3], activation: 'relu', head: { kind: 'categorical' } }],
];

// Both WebAssembly builds: the plain one and, where the engine compiles it (Node 20 with relaxed SIMD
// switched on, Node 22), the fused multiply-add one.
const kernelSets: readonly (readonly [string, () => MlpKernels])[] = [
  ['tfjs kernels', () => tfjsMlpKernels],
  ['wasm kernels', () => wasmMlpKernels(mlpKernelBytes('plain'))],
  ...(fmaAvailable() ? [['wasm kernels (fused multiply-add)', () => wasmMlpKernels(mlpKernelBytes('fma'))] as const] : []),
];

test('the fused multiply-add build of the kernels compiles on this Node (relaxed SIMD on V8 ≥ 11.3) and is the one chosen; MAGICBOX_WASM_FMA=0 chooses the plain one', (t) => {
  // Node ≥ 20 on x86-64 and arm64: if this fails, the fast build silently never runs.
  t.true(fmaAvailable());
  t.is(chosenMlpKernelBuild({}), 'fma');
  t.is(chosenMlpKernelBuild({ MAGICBOX_WASM_FMA: '0' }), 'plain');
  t.is(chosenMlpKernelBuild({ MAGICBOX_WASM_FMA: '1' }), 'fma');
});

for (const [kernelsName, makeKernels] of kernelSets) {
  for (const [name, spec] of specs) {
    test(`fused ${name} on ${kernelsName}: value, gradient, Hessian-vector product and meta-gradient equal the tfjs path's`, (t) => {
      const kernels = makeKernels();
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        for (const seed of [1, 2, 3]) {
          const c = makeCase(spec, rowsFor(spec), seed);
          const fused = fusedMlpLogProb(spec, kernels, c.x, c.a);
          const general = generalLogProb(spec, c.x, c.a);
          t.true(relativeError([fused(c.params)], [general(c.params)]) < 2e-6, 'value');
          const ff = objective(fused, c.weights);
          const fg = objective(general, c.weights);
          t.true(relativeError(gradient(ff, c.params), gradient(fg, c.params)) < 2e-5, 'gradient');
          t.true(relativeError(hvp(ff, c.params, c.direction), hvp(fg, c.params, c.direction)) < 2e-4, 'Hessian-vector product');
          t.true(relativeError(metaGradient(ff, c.params), metaGradient(fg, c.params)) < 2e-4, 'meta-gradient');
        }
      });
      t.is(tf.memory().numTensors, before);
    });
  }
}

// The op's second order is split around the surrogate's algebra (log-prob-op.ts): the vjp's gradient
// leaves its forward half's state for the op's own gradient, reached later in the same backward pass,
// which merges the backward half with the algebra's cotangent u′. Two graphs that test what makes that
// safe: a surrogate linear in ℓ (u does not depend on ℓ, so only the op's value as vjp's input leads
// the backward pass to the op), and a backward pass that reaches the vjp but not the op.
const linearSpecs = [specs[1]!, specs[6]!];
for (const [kernelsName, makeKernels] of kernelSets) {
  for (const [name, spec] of linearSpecs) {
    test(`fused ${name} on ${kernelsName}, a surrogate linear in ℓ: Hessian-vector product and meta-gradient equal the tfjs path's`, (t) => {
      const kernels = makeKernels();
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const c = makeCase(spec, rowsFor(spec), 7);
        const linear = (logProb: (p: readonly tf.Tensor[]) => tf.Tensor) => (p: readonly tf.Tensor[]) => tf.sum(tf.mul(c.weights, logProb(p))) as tf.Scalar;
        const ff = linear(fusedMlpLogProb(spec, kernels, c.x, c.a));
        const fg = linear(generalLogProb(spec, c.x, c.a));
        const expected = hvp(fg, c.params, c.direction);
        t.true(relativeError(expected, expected.map((e) => tf.zerosLike(e))) > 0.5, 'the Hessian-vector product is not zero');
        t.true(relativeError(hvp(ff, c.params, c.direction), expected) < 2e-4, 'Hessian-vector product');
        t.true(relativeError(metaGradient(ff, c.params), metaGradient(fg, c.params)) < 2e-4, 'meta-gradient');
      });
      t.is(tf.memory().numTensors, before);
    });

    test(`fused ${name} on ${kernelsName}: a backward pass through the inner gradient for the weights alone leaves nothing to a later one through the same op`, (t) => {
      const kernels = makeKernels();
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const c = makeCase(spec, rowsFor(spec), 8);
        const v = c.direction;
        // ∇_θ Σ_k ∇_θ L · v with L = Σ w exp(ℓ/4), after a backward pass, inside, of the same inner
        // gradient for w alone (its vjp is reached, the op is not: θ is no input of that pass).
        const outer = (logProb: (p: readonly tf.Tensor[]) => tf.Tensor) =>
          tf.grads((...p: tf.Tensor[]) => {
            const l = logProb(p);
            const w = tf.clone(c.weights);
            const g = tf.grads((..._: tf.Tensor[]) => tf.sum(tf.mul(w, exp(tf.div(l, 4)))) as tf.Scalar)(p);
            const gv = () => tf.addN(g.map((gk, k) => tf.sum(tf.mul(gk, v[k]!)))) as tf.Scalar;
            const [byWeights] = tf.grads((_: tf.Tensor) => gv())([w]);
            t.true(byWeights!.shape[0] === c.weights.shape[0]);
            return gv();
          })(c.params);
        t.true(relativeError(outer(fusedMlpLogProb(spec, kernels, c.x, c.a)), outer(generalLogProb(spec, c.x, c.a))) < 2e-4);
      });
      t.is(tf.memory().numTensors, before);
    });
  }
}

/**
 * A scalar of ℓ and the network's output O together, nonlinear in both, so that its first, second and
 * meta-derivatives need the combined op's every part: one backward pass for u and dO, and the
 * second order's hvp (with dO in G_O), jvp and Ȯ.
 */
const objectiveOfBoth = (both: (p: readonly tf.Tensor[]) => { logProb: tf.Tensor; output: tf.Tensor }, w: tf.Tensor, c: tf.Tensor) => (p: readonly tf.Tensor[]) => {
  const { logProb, output } = both(p);
  return tf.add(tf.sum(tf.mul(w, exp(tf.div(logProb, 4)))), tf.sum(tf.mul(c, tf.square(tanh(output))))) as tf.Scalar;
};

for (const [kernelsName, makeKernels] of kernelSets) {
  for (const [name, spec] of specs) {
    test(`fused log-probability and output of ${name} from one op on ${kernelsName}: value, gradient, Hessian-vector product and meta-gradient equal the tfjs path's`, (t) => {
      const kernels = makeKernels();
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        for (const seed of [4, 5]) {
          const c = makeCase(spec, rowsFor(spec), seed);
          const rows = c.x.shape[0];
          const out = spec.widths.at(-1)!;
          const weightsOfO = random(seededUniform(seed + 10), [rows, out]);
          const op = fusedMlpLogProbAndOutputPacked(spec, kernels, c.x, c.a);
          const fused = (p: readonly tf.Tensor[]) => {
            const flat = op(packParams(p));
            return { logProb: tf.slice(flat, [0], [rows]), output: tf.reshape(tf.slice(flat, [rows], [rows * out]), [rows, out]) };
          };
          const general = (p: readonly tf.Tensor[]) => ({ logProb: generalLogProb(spec, c.x, c.a)(p), output: generalOutput(spec, c.x)(p.slice(0, 2 * (spec.widths.length - 1))) });
          const f = fused(c.params);
          const g = general(c.params);
          t.true(relativeError([f.logProb, f.output], [g.logProb, g.output]) < 2e-6, 'values');
          const ff = objectiveOfBoth(fused, c.weights, weightsOfO);
          const fg = objectiveOfBoth(general, c.weights, weightsOfO);
          t.true(relativeError(gradient(ff, c.params), gradient(fg, c.params)) < 2e-5, 'gradient');
          t.true(relativeError(hvp(ff, c.params, c.direction), hvp(fg, c.params, c.direction)) < 2e-4, 'Hessian-vector product');
          t.true(relativeError(metaGradient(ff, c.params), metaGradient(fg, c.params)) < 2e-4, 'meta-gradient');
        }
      });
      t.is(tf.memory().numTensors, before);
    });
  }
}

test('on the wasm backend the kernels work in its heap, reading their inputs in place without writing to them', (t) => {
  t.is(kernelMemory().kind, 'tfjs-wasm');
  const kernels = wasmMlpKernels();
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const spec = specs[0]![1];
    const c = makeCase(spec, 40, 11);
    const theta = tf.concat(c.params.map((p) => tf.reshape(p, [-1]))) as tf.Tensor1D;
    const v = tf.concat(c.direction.map((p) => tf.reshape(p, [-1]))) as tf.Tensor1D;
    const { activations } = kernels.logProb(spec, theta, c.x, c.a);
    const { cotangents } = kernels.vjp(spec, theta, activations, c.x, c.a, c.weights as tf.Tensor1D);
    const inputs = [theta, v, c.x, c.a, c.weights, ...activations, ...cotangents];
    const copies = inputs.map((x) => Float32Array.from(x.dataSync()));
    // The second order's two halves, the forward half's state handed to the backward half.
    const secondOrder = (k: MlpKernels) => {
      const half = k.tangents(spec, theta, activations, c.x, c.a, c.weights as tf.Tensor1D, v);
      return { hvp: k.secondOrderBackward(spec, theta, activations, cotangents, c.x, v, half.tangents), jvp: half.jvp };
    };
    const once = secondOrder(kernels);
    const twice = secondOrder(kernels);
    inputs.forEach((x, k) => t.deepEqual(Float32Array.from(x.dataSync()), copies[k], `input ${k} unchanged`));
    t.deepEqual(twice.hvp.dataSync(), once.hvp.dataSync());
    t.deepEqual(twice.jvp.dataSync(), once.jvp.dataSync());
    // and the results are the tfjs kernels' (the oracle), the activations and cotangents included
    const reference = secondOrder(tfjsMlpKernels);
    t.true(relativeError([once.hvp, once.jvp], [reference.hvp, reference.jvp]) < 2e-5);
    const referenceForward = tfjsMlpKernels.logProb(spec, theta, c.x, c.a);
    t.true(relativeError(activations, referenceForward.activations) < 2e-6);
  });
  t.is(tf.memory().numTensors, before, 'every result handed over as a tensor is freed with it');
});

test("the sampler's forward kernel: two networks on one instance, called alternately with varying rows, each equal to the tfjs path", (t) => {
  const forward = wasmMlpForward();
  const nets = [specs[0]![1], specs[3]![1]].map((spec, k) => {
    const c = makeCase(spec, 1, 20 + k);
    const layers = spec.widths.length - 1;
    const values = (i: number) => Float32Array.from(c.params[i]!.dataSync());
    const f = forward(
      spec.widths,
      spec.activation,
      Array.from({ length: layers }, (_, l) => values(2 * l)),
      Array.from({ length: layers }, (_, l) => values(2 * l + 1)),
    );
    return { spec, c, f };
  });
  const u = seededUniform(5);
  for (const rows of [3, 17, 1, 40, 17]) {
    for (const { spec, c, f } of nets) {
      const x = Float32Array.from({ length: rows * spec.widths[0]! }, () => 2 * u() - 1);
      const expected = tf.tidy(() => generalOutput(spec, tf.tensor2d(x, [rows, spec.widths[0]!]))(c.params).dataSync());
      const actual = f(x, rows);
      t.is(actual.length, expected.length);
      t.true(actual.every((v, i) => Math.abs(v - expected[i]!) <= 2e-6 * Math.max(1, Math.abs(expected[i]!))), `${rows} rows`);
    }
  }
});

/** The wasm backend's record of where a tensor's values sit in its heap. */
const heapOffset = (t: tf.Tensor): number =>
  (tf.backend() as unknown as { dataIdMap: { get: (d: object) => { memoryOffset: number } } }).dataIdMap.get(t.dataId as object).memoryOffset;

test('kernel memory on the wasm backend: inputs read where tfjs keeps them, results handed over where they were computed, everything else freed', (t) => {
  const heap = kernelMemory();
  const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
  const call = heap.open(64);
  try {
    const m = call.input(x, 3, 2);
    t.is(m.ptr, heapOffset(x), 'in place');
    t.deepEqual(Array.from(m.data), [1, 2, 3, 4, 5, 6]);
    // A tensor that is not float32 is copied (converted), never read as float32 in place.
    const ints = tf.tensor1d([7, -8, 9], 'int32');
    const c = call.input(ints, 1, 3);
    t.not(c.ptr, heapOffset(ints));
    t.deepEqual(Array.from(c.data), [7, -8, 9]);
    ints.dispose();
    const r = call.result(2, 2);
    r.data.set([0.5, 1.5, 2.5, 3.5]);
    const adopted = call.adopt(r, [4]);
    t.is(heapOffset(adopted), r.ptr, 'no copy out');
    t.deepEqual(adopted.shape, [4]);
    t.deepEqual(Array.from(adopted.dataSync()), [0.5, 1.5, 2.5, 3.5]);
    adopted.dispose();
  } finally {
    call.close();
    x.dispose();
  }
  // Scratch and results not adopted are freed at close: 200 calls of 16 MB each leave the heap as it was.
  const memory = heap.memory;
  const warm = heap.open(4e6);
  warm.result(1000, 1000);
  warm.close();
  const size = memory.buffer.byteLength;
  for (let k = 0; k < 200; k++) {
    const call2 = heap.open(4e6);
    call2.result(1000, 1000);
    call2.close();
  }
  t.is(memory.buffer.byteLength, size);
});

test('kernel memory: the largest call a 32-bit memory can hold is the limit, not a size that wraps around', (t) => {
  // 2^32 + 224 bytes: past the limit (2^32 − 64 KiB) by less than a page, and would wrap to 224 bytes.
  t.throws(() => kernelMemory().open(2 ** 30 - 200), { instanceOf: RangeError, message: /out of memory/ });
});

test('a kernel call larger than a 32-bit memory is refused as out of memory (which the trainer reports as the batch), not wrapped around', (t) => {
  // 1.1e9 floats = 4.4e9 bytes: passed on as is, the allocator's 32-bit argument would wrap to ~105 MB.
  t.throws(() => kernelMemory().open(1.1e9), { instanceOf: RangeError, message: /out of memory/ });
  t.is(tf.tidy(() => tf.sum(tf.ones([10])).dataSync()[0]), 10);
});

test.serial('on another backend (cpu) the kernels copy in and out of a memory of their own, with the same numbers', async (t) => {
  await useBackend('cpu');
  try {
    t.is(kernelMemory().kind, 'own');
    const kernels = wasmMlpKernels();
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const spec = specs[0]![1];
      // 600 rows: more than the own memory's first page holds, so it must grow.
      const c = makeCase(spec, 600, 12);
      const fused = objective(fusedMlpLogProb(spec, kernels, c.x, c.a), c.weights);
      const general = objective(generalLogProb(spec, c.x, c.a), c.weights);
      t.true(relativeError(gradient(fused, c.params), gradient(general, c.params)) < 2e-5, 'gradient');
      t.true(relativeError(hvp(fused, c.params, c.direction), hvp(general, c.params, c.direction)) < 2e-4, 'Hessian-vector product');
      // Then a call far smaller than the memory has grown to: it must leave the memory as it is.
      const small = makeCase(spec, 3, 13);
      const smallFused = objective(fusedMlpLogProb(spec, kernels, small.x, small.a), small.weights);
      const smallGeneral = objective(generalLogProb(spec, small.x, small.a), small.weights);
      t.true(relativeError(gradient(smallFused, small.params), gradient(smallGeneral, small.params)) < 2e-5, 'a small call after large ones');
    });
    t.is(tf.memory().numTensors, before);
  } finally {
    await useBackend('wasm');
  }
});

test('fused op: a third derivative is refused with FusedOrderError, not a wrong number', (t) => {
  tf.tidy(() => {
    const c = makeCase(specs[0]![1], 5, 4);
    const f = objective(fusedMlpLogProb(c.spec, tfjsMlpKernels, c.x, c.a), c.weights);
    const third = () =>
      tf.grads((...p: tf.Tensor[]) => tf.addN(hvp(f, p, c.direction).map((g) => tf.sum(g))) as tf.Scalar)(c.params);
    t.throws(third, { instanceOf: FusedOrderError, message: /third derivative/ });
  });
});

test('fused op: observations computed from a parameter get an error at the first and second order, not a zero gradient', (t) => {
  // The op treats observations and actions as data; a graph that makes them depend on a parameter must
  // hear so, since the fused op's stand-in for their gradient is no number at all.
  tf.tidy(() => {
    const c = makeCase(specs[0]![1], 6, 5);
    const scale = tf.scalar(1.5);
    const through = (s: tf.Tensor) => tf.sum(fusedMlpLogProb(c.spec, tfjsMlpKernels, tf.mul(c.x, s) as tf.Tensor2D, c.a)(c.params)) as tf.Scalar;
    t.throws(() => tf.grad(through)(scale), { message: /shape/ });
    const inner = (s: tf.Tensor) => {
      const g = tf.grads((...p: tf.Tensor[]) => tf.sum(fusedMlpLogProb(c.spec, tfjsMlpKernels, tf.mul(c.x, s) as tf.Tensor2D, c.a)(p)) as tf.Scalar)(c.params);
      return tf.addN(g.map((x) => tf.sum(x))) as tf.Scalar;
    };
    t.throws(() => tf.grad(inner)(scale), { message: /shape/ });
  });
});

/** The general path's network output (the same network as generalLogProb's, without the head). */
const generalOutput = (spec: MlpSpec, x: tf.Tensor) => (params: readonly tf.Tensor[]): tf.Tensor => {
  const layers = spec.widths.length - 1;
  let h = x;
  for (let l = 0; l < layers; l++) {
    h = tf.add(tf.matMul(h as tf.Tensor2D, params[2 * l] as tf.Tensor2D), params[2 * l + 1]!);
    if (l + 1 < layers) h = spec.activation === 'tanh' ? tanh(h) : tf.relu(h);
  }
  return h;
};

for (const [kernelsName, makeKernels] of kernelSets) {
  for (const [name, spec] of specs) {
    test(`fused output of ${name} on ${kernelsName}: value and gradient equal the tfjs path's; a second derivative is refused`, (t) => {
      const kernels = makeKernels();
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const c = makeCase(spec, 29, 8);
        const layerParams = c.params.slice(0, 2 * (spec.widths.length - 1));
        const fused = fusedMlpOutput(spec, kernels, c.x);
        const general = generalOutput(spec, c.x);
        t.true(relativeError([fused(layerParams)], [general(layerParams)]) < 2e-6, 'value');
        const out = spec.widths.at(-1)!;
        const w = tf.randomUniform([29, out], -1, 1, 'float32', 3);
        // A nonlinear scalar of the output, like a KL's: Σ w ⊙ O².
        const f = (o: (p: readonly tf.Tensor[]) => tf.Tensor) => (p: readonly tf.Tensor[]) => tf.sum(tf.mul(w, tf.square(o(p)))) as tf.Scalar;
        t.true(relativeError(gradient(f(fused), layerParams), gradient(f(general), layerParams)) < 2e-5, 'gradient');
      });
      t.is(tf.memory().numTensors, before);
      // (A throw inside tfjs's backprop leaves that tape's saved tensors behind: checked after the count.)
      tf.tidy(() => {
        const c = makeCase(spec, 7, 9);
        const layerParams = c.params.slice(0, 2 * (spec.widths.length - 1));
        const f = (p: readonly tf.Tensor[]) => tf.sum(tf.square(fusedMlpOutput(spec, kernels, c.x)(p))) as tf.Scalar;
        t.throws(() => hvp(f, layerParams, c.direction.slice(0, layerParams.length)), { instanceOf: FusedOrderError, message: /order 1/ });
      });
    });
  }
}
