/**
 * The fused MLP kernels (kernels.ts) on this project's own WebAssembly: the matrix products and tanh in
 * 128-bit SIMD (assembly/gemm.ts, in the build wasm-module.ts chooses), the small element-wise chains in
 * plain JavaScript loops over the same memory. One call per kernel: no tfjs op, no intermediate
 * tensor; on the wasm backend the module works in tfjs-wasm's own heap, reading the tensors in place
 * and writing its results where they stay (kernel-memory.ts). The mathematics is kernels.ts's (see its
 * derivation); that module's tfjs implementation is the oracle these are tested against.
 */
import * as tf from '@tensorflow/tfjs';
import type { MlpForward, MlpForwardTangents, MlpKernels, MlpTangents, MlpVjp } from './kernels.ts';
import { layerCount, parameterSizes, type MlpSpec } from './spec.ts';
import { kernelMemory, matrixAt, newWasmMemory, type CallMemory, type Matrix, type WasmMemory } from './kernel-memory.ts';
import { chosenMlpKernelBuild, mlpKernelBytes } from './wasm-module.ts';

/** The WebAssembly API's few members used here (the project's TypeScript libraries do not declare it). */
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: unknown };
}
const wasmApi = (globalThis as unknown as { readonly WebAssembly: WasmApi }).WebAssembly;

interface Exports {
  readonly gemmNN: (a: number, b: number, c: number, m: number, k: number, n: number, accumulate: number) => void;
  readonly gemmDot: (a: number, bt: number, c: number, m: number, k: number, n: number, accumulate: number) => void;
  readonly gemmTN: (a: number, b: number, c: number, m: number, k: number, n: number, accumulate: number) => void;
  readonly transpose: (x: number, out: number, m: number, n: number) => void;
  readonly biasTanh: (x: number, bias: number, out: number, m: number, n: number) => void;
  readonly biasRelu: (x: number, bias: number, out: number, m: number, n: number) => void;
  readonly addRow: (x: number, bias: number, m: number, n: number) => void;
  readonly columnSums: (x: number, out: number, m: number, n: number) => void;
  readonly mulSlope: (x: number, h: number, len: number, relu: number, out: number) => void;
  readonly slopeTangent: (g: number, gDot: number, h: number, hDot: number, len: number, relu: number, gOut: number) => void;
}

const halfLog2Pi = 0.5 * Math.log(2 * Math.PI);

/** The compiled module's bytes: the build this process runs (wasm-module.ts). */
export const mlpKernelsWasm = (): Uint8Array => mlpKernelBytes(chosenMlpKernelBuild());

/** An instance of the module working in `memory` (which it imports). */
const instantiate = (bytes: Uint8Array, memory: WasmMemory): Exports =>
  new wasmApi.Instance(new wasmApi.Module(bytes), {
    env: {
      memory,
      abort: () => {
        throw new Error('the mlp kernels module aborted');
      },
    },
  }).exports as unknown as Exports;

/** Grows `memory` to at least `bytes`. */
const reserve = (memory: WasmMemory, bytes: number): void => {
  if (memory.buffer.byteLength < bytes) memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / 65536));
};

/**
 * The network's forward pass on plain arrays, for sampling (no tensors, no derivatives): a function of
 * the layer widths, activation and weights that maps n rows of observations to n rows of outputs.
 * Several such functions may share one instance and be called in any order: the weights sit at the
 * start of the instance's memory and are laid out again only when the previous call was another
 * function's (a sampler calls one function once per environment step: its weights are copied once).
 */
export const wasmMlpForward = (bytes: Uint8Array = mlpKernelsWasm()) => {
  const memory = newWasmMemory();
  const ex = instantiate(bytes, memory);
  /** The function whose weights are in memory now. */
  let resident: object | undefined;
  const align = (floats: number) => Math.ceil(floats / 4) * 4;
  return (widths: readonly number[], activation: 'tanh' | 'relu', weights: readonly Float32Array[], biases: readonly Float32Array[]) => {
    const self = {};
    const widest = Math.max(...widths);
    const layers = widths.length - 1;
    // Offsets (in floats) of each layer's weights and biases, then of the rows and the two buffers.
    let top = 0;
    const at = (floats: number): number => {
      const ptr = top;
      top += align(floats);
      return ptr;
    };
    const w = weights.map((wl) => at(wl.length));
    const b = biases.map((bl) => at(bl.length));
    const rowsAt = top;
    return (x: Float32Array, n: number): Float32Array => {
      const input0 = rowsAt;
      const buffers = [input0 + align(n * widths[0]!), input0 + align(n * widths[0]!) + align(n * widest)];
      reserve(memory, 4 * (buffers[1]! + align(n * widest)) + 64);
      const f32 = new Float32Array(memory.buffer);
      if (resident !== self) {
        weights.forEach((wl, l) => f32.set(wl, w[l]!));
        biases.forEach((bl, l) => f32.set(bl, b[l]!));
        resident = self;
      }
      f32.set(x.subarray(0, n * widths[0]!), input0);
      let input = input0 * 4;
      for (let l = 0; l < layers; l++) {
        const out = buffers[l % 2]! * 4;
        ex.gemmNN(input, w[l]! * 4, out, n, widths[l]!, widths[l + 1]!, 0);
        if (l + 1 === layers) ex.addRow(out, b[l]! * 4, n, widths[l + 1]!);
        else if (activation === 'tanh') ex.biasTanh(out, b[l]! * 4, out, n, widths[l + 1]!);
        else ex.biasRelu(out, b[l]! * 4, out, n, widths[l + 1]!);
        input = out;
      }
      return new Float32Array(memory.buffer, input, n * widths[layers]!).slice();
    };
  };
};

/**
 * The kernels on an instance of the module in the memory `kernelMemory()` gives (tfjs-wasm's heap when
 * that backend is in use when they are made, else a memory of their own). A call's scratch space and
 * results are allocated when it starts and released when it ends (but the results it hands over as
 * tensors); calls must not overlap — JavaScript runs them one at a time.
 */
export const wasmMlpKernels = (bytes: Uint8Array = mlpKernelsWasm()): MlpKernels => {
  const heap = kernelMemory();
  const ex = instantiate(bytes, heap.memory);

  /** Runs `body` with a call's memory (`floatsFor`), released afterwards. */
  const withMemory = <T>(floats: { readonly scratch: number; readonly all: number }, body: (ws: CallMemory) => T): T => {
    const ws = heap.open(floats.scratch, floats.all);
    try {
      return body(ws);
    } finally {
      ws.close();
    }
  };
  type Workspace = CallMemory;

  const transposed = (ws: Workspace, a: Matrix): Matrix => {
    const t = ws.scratch(a.cols, a.rows);
    ex.transpose(a.ptr, t.ptr, a.rows, a.cols);
    return t;
  };
  /** C = A·B: register-blocked for wide B, dot products against Bᵀ for narrow B (fewer than 16 columns). */
  const mm = (ws: Workspace, a: Matrix, b: Matrix, into?: Matrix, accumulate = false): Matrix => {
    const c = into ?? ws.scratch(a.rows, b.cols);
    if (b.cols < 16) ex.gemmDot(a.ptr, transposed(ws, b).ptr, c.ptr, a.rows, a.cols, b.cols, accumulate ? 1 : 0);
    else ex.gemmNN(a.ptr, b.ptr, c.ptr, a.rows, a.cols, b.cols, accumulate ? 1 : 0);
    return c;
  };
  /** C = Aᵀ·B, A and B as they are (the batch is the long, shared axis). */
  const tMm = (ws: Workspace, a: Matrix, b: Matrix, into?: Matrix, accumulate = false): Matrix => {
    const c = into ?? ws.scratch(a.cols, b.cols);
    ex.gemmTN(a.ptr, b.ptr, c.ptr, a.cols, a.rows, b.cols, accumulate ? 1 : 0);
    return c;
  };
  /** C = A·Bᵀ through an explicit transpose of B (a weight matrix: small). */
  const mmT = (ws: Workspace, a: Matrix, b: Matrix, into?: Matrix, accumulate = false) => mm(ws, a, transposed(ws, b), into, accumulate);

  /** out = the column sums of g (out: 1 × g.cols). */
  const columnSums = (g: Matrix, out: Matrix): void => ex.columnSums(g.ptr, out.ptr, g.rows, g.cols);
  const reluFlag = (spec: MlpSpec): number => (spec.activation === 'relu' ? 1 : 0);

  /** Rows × cols of `m`'s values from entry `offset` on, as a matrix of its own (no copy; every matrix here is in `heap`'s memory). */
  const part = (m: Matrix, offset: number, rows: number, cols: number): Matrix => matrixAt(heap.memory, m.ptr + 4 * offset, rows, cols);

  /**
   * Where each layer's W_l [in, out] and b_l [1, out] sit in a flat vector in the op's order (θ, a
   * direction, a gradient), as matrices over `flat`; `layers` is the entries they take (the log-std's,
   * if any, follow).
   */
  const layout = (spec: MlpSpec, flat: Matrix) => {
    const W: Matrix[] = [];
    const b: Matrix[] = [];
    let offset = 0;
    for (let l = 0; l < layerCount(spec); l++) {
      const [n, m] = [spec.widths[l]!, spec.widths[l + 1]!];
      W.push(part(flat, offset, n, m));
      b.push(part(flat, offset + n * m, 1, m));
      offset += n * m + m;
    }
    return { W, b, layers: offset };
  };

  /**
   * A flat vector in the op's order (θ, or a direction along it: one block's row) as matrices by role,
   * over its values where they are: W_l [in, out] and b_l [1, out] per layer, then the log-std's values
   * when the vector has them (the output op's θ may stop after the layers).
   */
  const byRole = (spec: MlpSpec, all: Matrix) => {
    const layers = layerCount(spec);
    const { W, b, layers: offset } = layout(spec, all);
    const out = spec.widths.at(-1)!;
    const logStd =
      spec.head.kind !== 'gaussian'
        ? undefined
        : spec.head.logStd !== 'learned'
          ? new Float32Array(out).fill(spec.head.logStd)
          : all.cols > offset
            ? all.data.subarray(offset, offset + out)
            : undefined;
    return { layers, W, b, logStd };
  };

  /**
   * θ's blocks (kernels.ts): a [K, P] θ is K parameter settings, block k applying to rows
   * k·rows/K … (k+1)·rows/K − 1; a vector is one block. Each block's rows are its own matrices (views).
   */
  const blocksOf = (theta: tf.Tensor, rows: number) => {
    const count = theta.rank === 2 ? theta.shape[0]! : 1;
    return { count, rows: rows / count, size: theta.size / count };
  };
  /** Block k of a matrix whose rows are `count` equal blocks (a view). */
  const block = (m: Matrix, k: number, count: number): Matrix => {
    const rows = m.rows / count;
    return part(m, k * rows * m.cols, rows, m.cols);
  };

  /**
   * Floats a call on `rows` rows in `blocks` blocks may need. `scratch`: what one block's rows work in
   * (the kernels take their scratch block by block, in `ws.scoped`): at most two row-sized matrices per
   * hidden layer and one of the output's width, and up to four transposed weight matrices per layer.
   * `all`, for a memory of the kernels' own, where results and copied inputs share that room: every
   * layer's activations (and tangents) and a few row-sized matrices over all rows, the loaded output,
   * actions, output cotangent, output tangent and row weights, θ, a direction and a gradient per block,
   * and one block's transposed weights.
   */
  const floatsFor = (spec: MlpSpec, rows: number, blocks = 1): { scratch: number; all: number } => {
    const widest = Math.max(...spec.widths);
    const all = spec.widths.reduce((s, w) => s + w, 0);
    const out = spec.widths.at(-1)!;
    const layers = layerCount(spec);
    // + 4 floats of 16-byte alignment per scratch matrix (fewer than 8 per layer, and 2).
    const transposes = 4 * layers * widest * widest + 4 * (8 * layers + 2);
    return {
      scratch: Math.ceil(rows / blocks) * 2 * all + transposes,
      all: rows * (8 * all + 4 * widest + 4 * out + 1) + 8 * blocks * parameterSizes(spec).total + 8 * widest * widest,
    };
  };

  /** Ones of the action indices, for the categorical head. */
  const indexOf = (a: Float32Array | Int32Array, r: number) => a[r]!;

  /**
   * The actions: a Gaussian's [rows, out] loaded into the workspace; a categorical's indices as they are —
   * as a function giving their values, to call once every input is taken: an input that is not in the
   * heap already is copied into a block of its own, which may grow the memory and detach older views.
   */
  const actionsOf = (spec: MlpSpec, ws: Workspace, a: tf.Tensor, rows: number): (() => Float32Array | Int32Array) => {
    if (spec.head.kind === 'categorical' || a.dtype !== 'float32') {
      const values = a.dataSync() as Float32Array | Int32Array;
      return () => values;
    }
    const m = ws.input(a, rows, spec.widths.at(-1)!);
    return () => m.data;
  };

  /** Block k's part of per-row values with `perRow` entries a row. */
  const rowsOf = <T extends Float32Array | Int32Array>(values: T, k: number, rows: number, perRow: number): T =>
    values.subarray(k * rows * perRow, (k + 1) * rows * perRow) as T;

  /** Each layer's input H_0 = x, H_1 … H_{L−1} (the saved activations but the output), in the workspace. */
  const layerInputs = (spec: MlpSpec, ws: Workspace, x: tf.Tensor2D, activations: readonly tf.Tensor[]): Matrix[] => {
    const rows = x.shape[0];
    return [ws.input(x, rows, spec.widths[0]!), ...activations.slice(0, -1).map((t) => ws.input(t, rows, t.shape[1]!))];
  };

  /** One block's forward pass from its layer weights into `results` (H_1 …, O: that block's rows). */
  const forwardBlock = (spec: MlpSpec, ws: Workspace, W: readonly Matrix[], b: readonly Matrix[], x: Matrix, results: readonly Matrix[]): void => {
    let h = x;
    for (let l = 0; l < W.length; l++) {
      const z = mm(ws, h, W[l]!, results[l]!);
      const bias = b[l]!;
      if (l + 1 === W.length) ex.addRow(z.ptr, bias.ptr, z.rows, z.cols);
      else if (spec.activation === 'tanh') ex.biasTanh(z.ptr, bias.ptr, z.ptr, z.rows, z.cols);
      else ex.biasRelu(z.ptr, bias.ptr, z.ptr, z.rows, z.cols);
      h = z;
    }
  };

  /**
   * The forward pass of every block into `ws`: the activations H_1 …, O as result matrices (to `adopt`
   * once the call has read what it needs of them) and each block's log-std values. Allocates its
   * results first: call it before taking any view.
   */
  const forwardPass = (spec: MlpSpec, theta: tf.Tensor, x: tf.Tensor2D, ws: Workspace) => {
    const rows = x.shape[0];
    const blocks = blocksOf(theta, rows);
    const results = spec.widths.slice(1).map((width) => ws.result(rows, width));
    const thetas = ws.input(theta, blocks.count, blocks.size);
    const xs = ws.input(x, rows, spec.widths[0]!);
    const logStd: (Float32Array | undefined)[] = [];
    for (let k = 0; k < blocks.count; k++) {
      const { W, b, logStd: s } = byRole(spec, block(thetas, k, blocks.count));
      logStd.push(s);
      ws.scoped(() =>
        forwardBlock(
          spec,
          ws,
          W,
          b,
          block(xs, k, blocks.count),
          results.map((m) => block(m, k, blocks.count)),
        ),
      );
    }
    return { results, logStd, blocks };
  };

  const logProb = (spec: MlpSpec, theta: tf.Tensor, x: tf.Tensor2D, a: tf.Tensor): MlpForward =>
    withMemory(floatsFor(spec, x.shape[0], blocksOf(theta, x.shape[0]).count), (ws) => {
      const rows = x.shape[0];
      // ℓ written where its tensor will be (a JavaScript array of the batch's size, then copied into a
      // tensor, was a third of this kernel's JavaScript time); allocated first, as forwardPass's results.
      const ell = ws.result(1, rows);
      const actionValues = actionsOf(spec, ws, a, rows);
      // Its views of the log-std are the call's first.
      const { results, logStd, blocks } = forwardPass(spec, theta, x, ws);
      const k = spec.widths.at(-1)!;
      const actions = actionValues();
      const O = results.at(-1)!.data;
      const value = ell.data;
      if (spec.head.kind === 'categorical') {
        for (let r = 0; r < rows; r++) {
          let max = -Infinity;
          for (let j = 0; j < k; j++) max = Math.max(max, O[r * k + j]!);
          let total = 0;
          for (let j = 0; j < k; j++) total += Math.exp(O[r * k + j]! - max);
          value[r] = O[r * k + indexOf(actions, r)]! - max - Math.log(total);
        }
      } else {
        // Floats only, for a monomorphic loop (see `head`).
        const floats = actions instanceof Float32Array ? actions : Float32Array.from(actions);
        for (let blk = 0; blk < blocks.count; blk++) {
          const s = logStd[blk]!;
          let constant = k * halfLog2Pi;
          for (let j = 0; j < k; j++) constant += s[j]!;
          const inv = Float64Array.from(s, (v) => Math.exp(-v));
          for (let r = blk * blocks.rows; r < (blk + 1) * blocks.rows; r++) {
            let sq = 0;
            for (let j = 0; j < k; j++) {
              const z = (floats[r * k + j]! - O[r * k + j]!) * inv[j]!;
              sq += z * z;
            }
            value[r] = -0.5 * sq - constant;
          }
        }
      }
      return { value: ws.adopt(ell, [rows]) as tf.Tensor1D, activations: results.map((m) => ws.adopt(m)) };
    });

  /**
   * The head's output cotangent G_O for weights u (and the log-std's gradient), written into `g`; with
   * a tangent Ȯ also its tangent Ġ_O into `gDot`, the JVP into `jvp` and the log-std's HVP part.
   */
  const head = (
    spec: MlpSpec,
    O: Float32Array,
    k: number,
    rows: number,
    actions: Float32Array | Int32Array,
    u: Float32Array,
    logStd: Float32Array | undefined,
    g: Float32Array,
    tangent?: { readonly Odot: Float32Array; readonly ds: Float32Array | undefined; readonly gDot: Float32Array; readonly jvp: Float32Array },
  ) => {
    const gs = new Float64Array(k);
    const gsDot = new Float64Array(k);
    if (spec.head.kind === 'categorical') {
      const p = new Float64Array(k);
      for (let r = 0; r < rows; r++) {
        let max = -Infinity;
        for (let j = 0; j < k; j++) max = Math.max(max, O[r * k + j]!);
        let total = 0;
        for (let j = 0; j < k; j++) total += p[j] = Math.exp(O[r * k + j]! - max);
        for (let j = 0; j < k; j++) p[j] = p[j]! / total;
        const chosen = indexOf(actions, r);
        for (let j = 0; j < k; j++) g[r * k + j] = u[r]! * ((j === chosen ? 1 : 0) - p[j]!);
        if (tangent === undefined) continue;
        let pDotO = 0;
        for (let j = 0; j < k; j++) pDotO += p[j]! * tangent.Odot[r * k + j]!;
        for (let j = 0; j < k; j++) tangent.gDot[r * k + j] = -u[r]! * p[j]! * (tangent.Odot[r * k + j]! - pDotO);
        tangent.jvp[r] = tangent.Odot[r * k + chosen]! - pDotO;
      }
      return { gs: undefined, gsDot: undefined };
    }
    // Two loops, each over float arrays only (a Gaussian's actions are floats): the JIT keeps each
    // monomorphic, where one loop with the tangent's branches and a Float32Array | Int32Array of actions
    // was ~5% of a ProMP task term.
    const a = actions instanceof Float32Array ? actions : Float32Array.from(actions);
    const inv = Float64Array.from(logStd!, (v) => Math.exp(-v));
    if (tangent === undefined) gaussianHead(O, k, rows, a, u, inv, g, gs);
    else gaussianHeadTangent(O, k, rows, a, u, inv, g, gs, tangent.Odot, tangent.ds ?? new Float32Array(k), tangent.gDot, tangent.jvp, gsDot);
    return { gs: Float32Array.from(gs), gsDot: Float32Array.from(gsDot) };
  };

  /** The Gaussian head's G_O (into g) and log-std gradient (added into gs), inv = e^{−s}. */
  const gaussianHead = (O: Float32Array, k: number, rows: number, a: Float32Array, u: Float32Array, inv: Float64Array, g: Float32Array, gs: Float64Array): void => {
    for (let r = 0; r < rows; r++) {
      const ur = u[r]!;
      for (let j = 0; j < k; j++) {
        const e = r * k + j;
        const ij = inv[j]!;
        const rr = (a[e]! - O[e]!) * ij;
        g[e] = ur * (rr * ij);
        gs[j]! += ur * (rr * rr - 1);
      }
    }
  };

  /** `gaussianHead` and its tangent along (Ȯ, ds): Ġ_O (into gDot), the JVP (into jvp) and the log-std's HVP part (added into gsDot). */
  const gaussianHeadTangent = (
    O: Float32Array,
    k: number,
    rows: number,
    a: Float32Array,
    u: Float32Array,
    inv: Float64Array,
    g: Float32Array,
    gs: Float64Array,
    Odot: Float32Array,
    ds: Float32Array,
    gDot: Float32Array,
    jvpOut: Float32Array,
    gsDot: Float64Array,
  ): void => {
    for (let r = 0; r < rows; r++) {
      const ur = u[r]!;
      let jvp = 0;
      for (let j = 0; j < k; j++) {
        const e = r * k + j;
        const ij = inv[j]!;
        const dsj = ds[j]!;
        const rr = (a[e]! - O[e]!) * ij;
        const q = rr * ij;
        g[e] = ur * q;
        gs[j]! += ur * (rr * rr - 1);
        const oDot = Odot[e]!;
        const rDot = -oDot * ij - rr * dsj;
        gDot[e] = ur * (-oDot * ij * ij - 2 * q * dsj);
        jvp += q * oDot + (rr * rr - 1) * dsj;
        gsDot[j]! += 2 * ur * rr * rDot;
      }
      jvpOut[r] = jvp;
    }
  };

  const learnedStd = (spec: MlpSpec) => spec.head.kind === 'gaussian' && spec.head.logStd === 'learned';

  /** G_O += dO (an output cotangent besides u's: kernels.ts), element by element in float32. */
  const addInto = (g: Float32Array, dO: Float32Array): void => {
    for (let i = 0; i < g.length; i++) g[i] = g[i]! + dO[i]!;
  };

  /**
   * Backward through the layers from the output cotangent G_O, writing gW_0, gb_0, … into `grad` (a flat
   * vector in the op's order); with `preSlope` (result matrices, l = L−1 … 1), each hidden layer's
   * G_l W_lᵀ before the slope is written there and kept.
   */
  const layersBackward = (spec: MlpSpec, ws: Workspace, W: readonly Matrix[], H: readonly Matrix[], GO: Matrix, grad: Matrix, preSlope?: readonly Matrix[]): void => {
    const into = layout(spec, grad);
    let G = GO;
    for (let l = W.length - 1; l >= 0; l--) {
      tMm(ws, H[l]!, G, into.W[l]);
      columnSums(G, into.b[l]!);
      if (l === 0) break;
      const kept = preSlope?.[W.length - 1 - l];
      const Gh = mmT(ws, G, W[l]!, kept);
      const next = kept === undefined ? Gh : ws.scratch(Gh.rows, Gh.cols);
      ex.mulSlope(Gh.ptr, H[l]!.ptr, Gh.rows * Gh.cols, reluFlag(spec), next.ptr);
      G = next;
    }
  };

  const vjp = (spec: MlpSpec, theta: tf.Tensor, activations: readonly tf.Tensor[], x: tf.Tensor2D, a: tf.Tensor, u: tf.Tensor1D, dO?: tf.Tensor2D): MlpVjp => {
    const rows = x.shape[0];
    const blocks = blocksOf(theta, rows);
    return withMemory(floatsFor(spec, rows, blocks.count), (ws) => {
      // The cotangents G_l W_lᵀ (l = L−1 … 1) are results: allocated before any view is taken.
      const kept = spec.widths.slice(1, -1).reverse().map((width) => ws.result(rows, width));
      const grad = ws.result(blocks.count, blocks.size);
      const thetas = ws.input(theta, blocks.count, blocks.size);
      const H = layerInputs(spec, ws, x, activations);
      const k = spec.widths.at(-1)!;
      const Om = ws.input(activations.at(-1)!, rows, k);
      const actionValues = actionsOf(spec, ws, a, rows);
      const um = ws.input(u, 1, rows);
      const dOm = dO === undefined ? undefined : ws.input(dO, rows, k);
      // Views once every input is taken (see actionsOf).
      const [O, actions, us, dOs] = [Om.data, actionValues(), um.data, dOm?.data];
      const perAction = spec.head.kind === 'categorical' ? 1 : k;
      for (let blk = 0; blk < blocks.count; blk++) {
        const { W, logStd } = byRole(spec, block(thetas, blk, blocks.count));
        const gradRow = block(grad, blk, blocks.count);
        ws.scoped(() => {
          const G = ws.scratch(blocks.rows, k);
          const of = <T extends Float32Array | Int32Array>(values: T, perRow: number) => rowsOf(values, blk, blocks.rows, perRow);
          const { gs } = head(spec, of(O, k), k, blocks.rows, of(actions, perAction), of(us, 1), logStd, G.data);
          if (dOs !== undefined) addInto(G.data, of(dOs, k));
          const Hb = H.map((m) => block(m, blk, blocks.count));
          layersBackward(spec, ws, W, Hb, G, gradRow, kept.map((m) => block(m, blk, blocks.count)));
          if (learnedStd(spec)) gradRow.data.set(gs!, layout(spec, gradRow).layers);
        });
      }
      return { value: ws.adopt(grad, [...theta.shape]), cotangents: kept.map((m) => ws.adopt(m)) };
    });
  };

  /**
   * The second order's forward half: per block, the forward pass's tangents along v (Ḣ_l kept as
   * results, Ȯ too given dO), then the head's G_O and Ġ_O (results) with the JVP and the log-std's
   * HVP part.
   */
  const tangents: MlpKernels['tangents'] = (spec, theta, activations, x, a, u, v, dO): MlpForwardTangents => {
    const rows = x.shape[0];
    const blocks = blocksOf(theta, rows);
    return withMemory(floatsFor(spec, rows, blocks.count), (ws) => {
      const widths = spec.widths;
      const k = widths.at(-1)!;
      // The results first (before any view is taken).
      const jvp = ws.result(1, rows);
      const outputTangent = dO === undefined ? undefined : ws.result(rows, k);
      const hidden = widths.slice(1, -1).map((width) => ws.result(rows, width));
      const G = ws.result(rows, k);
      const Gdot = ws.result(rows, k);
      const logStdHvp = learnedStd(spec) ? ws.result(blocks.count, k) : undefined;
      const thetas = ws.input(theta, blocks.count, blocks.size);
      const directions = ws.input(v, blocks.count, blocks.size);
      const H = layerInputs(spec, ws, x, activations);
      const Om = ws.input(activations.at(-1)!, rows, k);
      const actionValues = actionsOf(spec, ws, a, rows);
      const um = ws.input(u, 1, rows);
      const dOm = dO === undefined ? undefined : ws.input(dO, rows, k);
      // Views once every input is taken (see actionsOf).
      const [O, actions, us, dOs] = [Om.data, actionValues(), um.data, dOm?.data];
      const perAction = spec.head.kind === 'categorical' ? 1 : k;
      for (let blk = 0; blk < blocks.count; blk++) {
        const of = <T extends Float32Array | Int32Array>(values: T, perRow: number) => rowsOf(values, blk, blocks.rows, perRow);
        const mine = (m: Matrix) => block(m, blk, blocks.count);
        const Hb = H.map(mine);
        const { layers, W: Wm, logStd } = byRole(spec, mine(thetas));
        // The direction by role: dW_l, db_l and (learned log-std) ds.
        const { W: dWm, b: db, logStd: dsLearned } = byRole(spec, mine(directions));
        const ds = learnedStd(spec) ? dsLearned : undefined;
        ws.scoped(() => {
          let Zdot: Matrix | undefined;
          for (let l = 0; l < layers; l++) {
            const into = l + 1 < layers ? mine(hidden[l]!) : outputTangent === undefined ? undefined : mine(outputTangent);
            const z = mm(ws, Hb[l]!, dWm[l]!, into);
            if (l > 0) mm(ws, Zdot!, Wm[l]!, z, true);
            ex.addRow(z.ptr, db[l]!.ptr, z.rows, z.cols);
            if (l + 1 < layers) ex.mulSlope(z.ptr, Hb[l + 1]!.ptr, z.rows * z.cols, reluFlag(spec), z.ptr);
            Zdot = z;
          }
          const Gb = mine(G);
          const { gsDot } = head(spec, of(O, k), k, blocks.rows, of(actions, perAction), of(us, 1), logStd, Gb.data, {
            Odot: Zdot!.data,
            ds,
            gDot: mine(Gdot).data,
            jvp: of(jvp.data, 1),
          });
          // dO is a constant: it adds to G_O, not to its tangent.
          if (dOs !== undefined) addInto(Gb.data, of(dOs, k));
          if (logStdHvp !== undefined) mine(logStdHvp).data.set(gsDot!);
        });
      }
      const tangentsState: MlpTangents = {
        hidden: hidden.map((m) => ws.adopt(m)),
        outputCotangent: ws.adopt(G) as tf.Tensor2D,
        outputCotangentTangent: ws.adopt(Gdot) as tf.Tensor2D,
        ...(logStdHvp === undefined ? {} : { logStdHvp: ws.adopt(logStdHvp, theta.rank === 2 ? [blocks.count, k] : [k]) }),
      };
      const results = { jvp: ws.adopt(jvp, [rows]) as tf.Tensor1D, tangents: tangentsState };
      return outputTangent === undefined ? results : { ...results, outputTangent: ws.adopt(outputTangent) as tf.Tensor2D };
    });
  };

  /**
   * The second order's backward half, per block: the backward pass and its tangents from `tangents`'
   * state, written into the hvp; an extra cotangent's G_O (and dO′) joins Ġ_O first, its log-std
   * gradient the log-std's part.
   */
  const secondOrderBackward: MlpKernels['secondOrderBackward'] = (spec, theta, activations, cotangents, x, v, state, extra) => {
    const rows = x.shape[0];
    const blocks = blocksOf(theta, rows);
    return withMemory(floatsFor(spec, rows, blocks.count), (ws) => {
      const hvp = ws.result(blocks.count, blocks.size);
      const thetas = ws.input(theta, blocks.count, blocks.size);
      const directions = ws.input(v, blocks.count, blocks.size);
      const widths = spec.widths;
      const k = widths.at(-1)!;
      const H = layerInputs(spec, ws, x, activations);
      const Gh = cotangents.map((t) => ws.input(t, rows, t.shape[1]!));
      const Hdot = state.hidden.map((t) => ws.input(t, rows, t.shape[1]!));
      const GO = ws.input(state.outputCotangent, rows, k);
      const GOdot = ws.input(state.outputCotangentTangent, rows, k);
      const gsDot = state.logStdHvp === undefined ? undefined : ws.input(state.logStdHvp, blocks.count, k);
      const Om = extra === undefined ? undefined : ws.input(activations.at(-1)!, rows, k);
      const actionValues = extra === undefined ? undefined : actionsOf(spec, ws, extra.a, rows);
      const um = extra === undefined ? undefined : ws.input(extra.u, 1, rows);
      const dOm = extra?.dO === undefined ? undefined : ws.input(extra.dO, rows, k);
      // Views once every input is taken (see actionsOf).
      const [O, actions, us, dOs] = [Om?.data, actionValues?.(), um?.data, dOm?.data];
      const perAction = spec.head.kind === 'categorical' ? 1 : k;
      for (let blk = 0; blk < blocks.count; blk++) {
        const of = <T extends Float32Array | Int32Array>(values: T, perRow: number) => rowsOf(values, blk, blocks.rows, perRow);
        const mine = (m: Matrix) => block(m, blk, blocks.count);
        const Hb = [...H.map(mine)];
        const Hdotb: (Matrix | undefined)[] = [undefined, ...Hdot.map(mine)];
        const hvpRow = mine(hvp);
        const { layers, W: Wm, logStd } = byRole(spec, mine(thetas));
        const { W: dWm } = byRole(spec, mine(directions));
        ws.scoped(() => {
          let G = mine(GO);
          // Ġ_O, with the extra cotangent's G_O (and dO′) added in a copy: the inputs are read, never written.
          let Gdot = mine(GOdot);
          let gsExtra: Float32Array | undefined;
          if (us !== undefined) {
            const merged = ws.scratch(blocks.rows, k);
            gsExtra = head(spec, of(O!, k), k, blocks.rows, of(actions!, perAction), of(us, 1), logStd, merged.data).gs;
            addInto(merged.data, Gdot.data);
            if (dOs !== undefined) addInto(merged.data, of(dOs, k));
            Gdot = merged;
          }
          const into = layout(spec, hvpRow);
          for (let l = layers - 1; l >= 0; l--) {
            tMm(ws, Hb[l]!, Gdot, into.W[l]);
            if (Hdotb[l] !== undefined) tMm(ws, Hdotb[l]!, G, into.W[l], true);
            columnSums(Gdot, into.b[l]!);
            if (l === 0) break;
            // G_l W_lᵀ: the vjp's at this θ and u (its cotangents run l = L−1 … 1), read where it is.
            const GhBlock = mine(Gh[layers - 1 - l]!);
            const GhDot = mmT(ws, Gdot, Wm[l]!);
            mmT(ws, G, dWm[l]!, GhDot, true);
            const next = ws.scratch(blocks.rows, widths[l]!);
            ex.slopeTangent(GhBlock.ptr, GhDot.ptr, Hb[l]!.ptr, Hdotb[l]!.ptr, blocks.rows * widths[l]!, reluFlag(spec), next.ptr);
            G = next;
            Gdot = GhDot;
          }
          if (gsDot !== undefined) {
            const part = hvpRow.data.subarray(into.layers, into.layers + k);
            part.set(mine(gsDot).data);
            if (gsExtra !== undefined) addInto(part, gsExtra);
          }
        });
      }
      return ws.adopt(hvp, [...theta.shape]);
    });
  };

  const outputVjp = (spec: MlpSpec, theta: tf.Tensor, activations: readonly tf.Tensor[], x: tf.Tensor2D, g: tf.Tensor2D): tf.Tensor => {
    const rows = x.shape[0];
    const blocks = blocksOf(theta, rows);
    return withMemory(floatsFor(spec, rows, blocks.count), (ws) => {
      const layerSize = parameterSizes(spec).total - (learnedStd(spec) ? spec.widths.at(-1)! : 0);
      const grad = ws.result(blocks.count, layerSize);
      const thetas = ws.input(theta, blocks.count, blocks.size);
      const H = layerInputs(spec, ws, x, activations);
      // G_O is read where it is: layersBackward writes only to its own scratch and `grad`.
      const GO = ws.input(g, rows, spec.widths.at(-1)!);
      for (let blk = 0; blk < blocks.count; blk++) {
        const { W } = byRole(spec, block(thetas, blk, blocks.count));
        const Hb = H.map((m) => block(m, blk, blocks.count));
        ws.scoped(() => layersBackward(spec, ws, W, Hb, block(GO, blk, blocks.count), block(grad, blk, blocks.count)));
      }
      return ws.adopt(grad, theta.rank === 2 ? [blocks.count, layerSize] : [layerSize]);
    });
  };

  const forward = (spec: MlpSpec, theta: tf.Tensor, x: tf.Tensor2D): tf.Tensor[] =>
    withMemory(floatsFor(spec, x.shape[0], blocksOf(theta, x.shape[0]).count), (ws) => forwardPass(spec, theta, x, ws).results.map((m) => ws.adopt(m)));

  return { name: 'wasm', logProb, forward, outputVjp, vjp, tangents, secondOrderBackward };
};
