/**
 * The fused MLP kernels (kernels.ts) on this project's own WebAssembly: the matrix products and tanh in
 * 128-bit SIMD (assembly/gemm.ts, in the build wasm-module.ts chooses), the small element-wise chains in
 * plain JavaScript loops over the same memory. One call per kernel: no tfjs op, no intermediate
 * tensor, the data copied in once and the results out once. The mathematics is kernels.ts's (see its
 * derivation); that module's tfjs implementation is the oracle these are tested against.
 */
import * as tf from '@tensorflow/tfjs';
import type { MlpForward, MlpKernels, MlpSecondOrder, MlpVjp } from './kernels.ts';
import { layerCount, parameterSizes, type MlpSpec } from './spec.ts';
import { copyValues, tensorOfValues } from './tensor-io.ts';
import { chosenMlpKernelBuild, mlpKernelBytes } from './wasm-module.ts';

/** The WebAssembly API's few members used here (the project's TypeScript libraries do not declare it). */
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: unknown };
}
const wasmApi = (globalThis as unknown as { readonly WebAssembly: WasmApi }).WebAssembly;

interface Exports {
  readonly memory: { readonly buffer: ArrayBuffer; grow: (pages: number) => number };
  readonly gemmNN: (a: number, b: number, c: number, m: number, k: number, n: number, accumulate: number) => void;
  readonly gemmDot: (a: number, bt: number, c: number, m: number, k: number, n: number, accumulate: number) => void;
  readonly gemmTN: (a: number, b: number, c: number, m: number, k: number, n: number, accumulate: number) => void;
  readonly transpose: (x: number, out: number, m: number, n: number) => void;
  readonly biasTanh: (x: number, bias: number, out: number, m: number, n: number) => void;
  readonly biasRelu: (x: number, bias: number, out: number, m: number, n: number) => void;
  readonly addRow: (x: number, bias: number, m: number, n: number) => void;
  readonly columnSums: (x: number, out: number, m: number, n: number) => void;
  readonly mulSlope: (x: number, h: number, len: number, relu: number) => void;
  readonly slopeTangent: (g: number, gDot: number, h: number, hDot: number, len: number, relu: number) => void;
}

const halfLog2Pi = 0.5 * Math.log(2 * Math.PI);

/** The compiled module's bytes: the build this process runs (wasm-module.ts). */
export const mlpKernelsWasm = (): Uint8Array => mlpKernelBytes(chosenMlpKernelBuild());

/** A matrix in the module's memory: its byte offset, its shape, and a view of its values. */
interface Matrix {
  readonly ptr: number;
  readonly rows: number;
  readonly cols: number;
  readonly data: Float32Array;
}

/**
 * The kernels on a fresh instance of the module (each instance has its own memory; a kernel call
 * lays out everything it needs from offset 0, so calls must not overlap — JavaScript runs them one at
 * a time).
 */
/** A fresh instance of the module (its own memory). */
const instantiate = (bytes: Uint8Array): Exports =>
  new wasmApi.Instance(new wasmApi.Module(bytes), {
    env: {
      abort: () => {
        throw new Error('the mlp kernels module aborted');
      },
    },
  }).exports as unknown as Exports;

/** Grows `memory` to at least `bytes`. */
const reserve = (memory: Exports['memory'], bytes: number): void => {
  if (memory.buffer.byteLength < bytes) memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / 65536));
};

/**
 * The network's forward pass on plain arrays, for sampling (no tensors, no derivatives): a function of
 * the layer widths, activation and weights that maps n rows of observations to n rows of outputs. Each
 * call lays out the weights and rows afresh from offset 0 of its own instance's memory, so several
 * such functions may share one instance and be called in any order.
 */
export const wasmMlpForward = (bytes: Uint8Array = mlpKernelsWasm()) => {
  const ex = instantiate(bytes);
  return (widths: readonly number[], activation: 'tanh' | 'relu', weights: readonly Float32Array[], biases: readonly Float32Array[]) =>
    (x: Float32Array, n: number): Float32Array => {
      const align = (floats: number) => Math.ceil(floats / 4) * 4;
      const widest = Math.max(...widths);
      const weightFloats = weights.reduce((t, w, l) => t + align(w.length) + align(biases[l]!.length), 0);
      reserve(ex.memory, 4 * (weightFloats + align(n * widths[0]!) + 2 * align(n * widest)) + 64);
      const f32 = new Float32Array(ex.memory.buffer);
      let top = 0;
      const place = (values: ArrayLike<number>, floats = values.length): number => {
        const ptr = top;
        f32.set(values, ptr);
        top += align(floats);
        return ptr * 4;
      };
      const w = weights.map((wl) => place(wl));
      const b = biases.map((bl) => place(bl));
      let input = place(x.subarray(0, n * widths[0]!));
      const buffers = [top * 4, (top + align(n * widest)) * 4];
      const layers = widths.length - 1;
      for (let l = 0; l < layers; l++) {
        const out = buffers[l % 2]!;
        ex.gemmNN(input, w[l]!, out, n, widths[l]!, widths[l + 1]!, 0);
        if (l + 1 === layers) ex.addRow(out, b[l]!, n, widths[l + 1]!);
        else if (activation === 'tanh') ex.biasTanh(out, b[l]!, out, n, widths[l + 1]!);
        else ex.biasRelu(out, b[l]!, out, n, widths[l + 1]!);
        input = out;
      }
      return new Float32Array(ex.memory.buffer, input, n * widths[layers]!).slice();
    };
};

export const wasmMlpKernels = (bytes: Uint8Array = mlpKernelsWasm()): MlpKernels => {
  const ex = instantiate(bytes);
  const memory = ex.memory;

  /** A workspace for one call: reserves `floats` up front (so no view goes stale), then hands out matrices. */
  const workspace = (floats: number) => {
    const capacity = floats * 4 + 64 * 16;
    reserve(memory, capacity);
    let top = 0;
    const matrix = (rows: number, cols: number, values?: ArrayLike<number>): Matrix => {
      const ptr = top;
      top += Math.ceil((rows * cols * 4) / 16) * 16;
      if (top > capacity) throw new Error(`mlp wasm kernels: workspace of ${capacity} bytes exceeded (a sizing bug)`);
      const data = new Float32Array(memory.buffer, ptr, rows * cols);
      if (values !== undefined) data.set(values);
      return { ptr, rows, cols, data };
    };
    /** A tensor's values as a matrix of the workspace (one copy). */
    const load = (t: tf.Tensor, rows: number, cols: number): Matrix => {
      const m = matrix(rows, cols);
      copyValues(t, m.data);
      return m;
    };
    return { matrix, load };
  };
  type Workspace = ReturnType<typeof workspace>;

  const transposed = (ws: Workspace, a: Matrix): Matrix => {
    const t = ws.matrix(a.cols, a.rows);
    ex.transpose(a.ptr, t.ptr, a.rows, a.cols);
    return t;
  };
  /** C = A·B: register-blocked for wide B, dot products against Bᵀ for narrow B (fewer than 16 columns). */
  const mm = (ws: Workspace, a: Matrix, b: Matrix, into?: Matrix, accumulate = false): Matrix => {
    const c = into ?? ws.matrix(a.rows, b.cols);
    if (b.cols < 16) ex.gemmDot(a.ptr, transposed(ws, b).ptr, c.ptr, a.rows, a.cols, b.cols, accumulate ? 1 : 0);
    else ex.gemmNN(a.ptr, b.ptr, c.ptr, a.rows, a.cols, b.cols, accumulate ? 1 : 0);
    return c;
  };
  /** C = Aᵀ·B, A and B as they are (the batch is the long, shared axis). */
  const tMm = (ws: Workspace, a: Matrix, b: Matrix, into?: Matrix, accumulate = false): Matrix => {
    const c = into ?? ws.matrix(a.cols, b.cols);
    ex.gemmTN(a.ptr, b.ptr, c.ptr, a.cols, a.rows, b.cols, accumulate ? 1 : 0);
    return c;
  };
  /** C = A·Bᵀ through an explicit transpose of B (a weight matrix: small). */
  const mmT = (ws: Workspace, a: Matrix, b: Matrix, into?: Matrix, accumulate = false) => mm(ws, a, transposed(ws, b), into, accumulate);

  /** Column sums of a matrix (a copy out of the workspace). */
  const columnSums = (ws: Workspace, g: Matrix): Float32Array => {
    const out = ws.matrix(1, g.cols);
    ex.columnSums(g.ptr, out.ptr, g.rows, g.cols);
    return out.data.slice();
  };
  const reluFlag = (spec: MlpSpec): number => (spec.activation === 'relu' ? 1 : 0);

  /** Rows × cols of `m`'s values from entry `offset` on, as a matrix of its own (no copy). */
  const part = (m: Matrix, offset: number, rows: number, cols: number): Matrix => ({
    ptr: m.ptr + 4 * offset,
    rows,
    cols,
    data: m.data.subarray(offset, offset + rows * cols),
  });

  /**
   * A flat vector in the op's order (θ, or a direction along it) as matrices by role, laid over one
   * copy of it in `ws`: W_l [in, out] and b_l [1, out] per layer, then the log-std's values when the
   * vector has them (the output op's θ may stop after the layers).
   */
  const byRole = (spec: MlpSpec, ws: Workspace, flat: tf.Tensor) => {
    const layers = layerCount(spec);
    const all = ws.load(flat, 1, flat.size);
    const W: Matrix[] = [];
    const b: Matrix[] = [];
    let offset = 0;
    for (let l = 0; l < layers; l++) {
      const [n, m] = [spec.widths[l]!, spec.widths[l + 1]!];
      W.push(part(all, offset, n, m));
      b.push(part(all, offset + n * m, 1, m));
      offset += n * m + m;
    }
    const out = spec.widths.at(-1)!;
    const logStd =
      spec.head.kind !== 'gaussian'
        ? undefined
        : spec.head.logStd !== 'learned'
          ? new Float32Array(out).fill(spec.head.logStd)
          : flat.size > offset
            ? all.data.subarray(offset, offset + out)
            : undefined;
    return { layers, W, b, logStd };
  };

  /**
   * Floats a call may need: every layer's activations (and tangents), a few row-sized scratch matrices,
   * the loaded output, actions and row weights, the weights and the direction thrice.
   */
  const floatsFor = (spec: MlpSpec, rows: number): number => {
    const widest = Math.max(...spec.widths);
    const all = spec.widths.reduce((s, w) => s + w, 0);
    return rows * (8 * all + 4 * widest + 2 * spec.widths.at(-1)! + 1) + 8 * parameterSizes(spec).total + 8 * widest * widest;
  };

  /** Ones of the action indices, for the categorical head. */
  const indexOf = (a: Float32Array | Int32Array, r: number) => a[r]!;

  /** The actions: a Gaussian's [rows, out] loaded into the workspace; a categorical's indices as they are. */
  const actionsOf = (spec: MlpSpec, ws: Workspace, a: tf.Tensor, rows: number): Float32Array | Int32Array =>
    spec.head.kind === 'categorical' || a.dtype !== 'float32' ? (a.dataSync() as Float32Array | Int32Array) : ws.load(a, rows, spec.widths.at(-1)!).data;

  /** Each layer's input H_0 = x, H_1 … H_{L−1} (the saved activations but the output), in the workspace. */
  const layerInputs = (spec: MlpSpec, ws: Workspace, x: tf.Tensor2D, activations: readonly tf.Tensor[]): Matrix[] => {
    const rows = x.shape[0];
    return [ws.load(x, rows, spec.widths[0]!), ...activations.slice(0, -1).map((t) => ws.load(t, rows, t.shape[1]!))];
  };

  /** The forward pass into `ws`: the activation tensors (H_1 …, O), O's values and the log-std's. */
  const forwardPass = (spec: MlpSpec, theta: tf.Tensor, x: tf.Tensor2D, ws: Workspace) => {
    const rows = x.shape[0];
    const { layers, W, b, logStd } = byRole(spec, ws, theta);
    let h = ws.load(x, rows, spec.widths[0]!);
    const activations: tf.Tensor[] = [];
    for (let l = 0; l < layers; l++) {
      const z = mm(ws, h, W[l]!);
      const bias = b[l]!;
      if (l + 1 === layers) ex.addRow(z.ptr, bias.ptr, z.rows, z.cols);
      else if (spec.activation === 'tanh') ex.biasTanh(z.ptr, bias.ptr, z.ptr, z.rows, z.cols);
      else ex.biasRelu(z.ptr, bias.ptr, z.ptr, z.rows, z.cols);
      activations.push(tensorOfValues(z.data, [z.rows, z.cols]));
      h = z;
    }
    return { activations, O: h.data, logStd };
  };

  const logProb = (spec: MlpSpec, theta: tf.Tensor1D, x: tf.Tensor2D, a: tf.Tensor): MlpForward => {
    const rows = x.shape[0];
    const ws = workspace(floatsFor(spec, rows));
    const { activations, O, logStd } = forwardPass(spec, theta, x, ws);
    const k = spec.widths.at(-1)!;
    const actions = actionsOf(spec, ws, a, rows);
    const value = new Float32Array(rows);
    if (spec.head.kind === 'categorical') {
      for (let r = 0; r < rows; r++) {
        let max = -Infinity;
        for (let j = 0; j < k; j++) max = Math.max(max, O[r * k + j]!);
        let total = 0;
        for (let j = 0; j < k; j++) total += Math.exp(O[r * k + j]! - max);
        value[r] = O[r * k + indexOf(actions, r)]! - max - Math.log(total);
      }
    } else {
      const s = logStd!;
      let constant = k * halfLog2Pi;
      for (let j = 0; j < k; j++) constant += s[j]!;
      const inv = Array.from(s, (v) => Math.exp(-v));
      for (let r = 0; r < rows; r++) {
        let sq = 0;
        for (let j = 0; j < k; j++) {
          const z = (actions[r * k + j]! - O[r * k + j]!) * inv[j]!;
          sq += z * z;
        }
        value[r] = -0.5 * sq - constant;
      }
    }
    return { value: tf.tensor1d(value), activations };
  };

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
    const inv = Array.from(logStd!, (v) => Math.exp(-v));
    const ds = tangent?.ds;
    for (let r = 0; r < rows; r++) {
      let jvp = 0;
      for (let j = 0; j < k; j++) {
        const e = r * k + j;
        const rr = (actions[e]! - O[e]!) * inv[j]!;
        const q = rr * inv[j]!;
        g[e] = u[r]! * q;
        gs[j]! += u[r]! * (rr * rr - 1);
        if (tangent === undefined) continue;
        const oDot = tangent.Odot[e]!;
        const dsj = ds === undefined ? 0 : ds[j]!;
        const rDot = -oDot * inv[j]! - rr * dsj;
        tangent.gDot[e] = u[r]! * (-oDot * inv[j]! * inv[j]! - 2 * q * dsj);
        jvp += q * oDot + (rr * rr - 1) * dsj;
        gsDot[j]! += 2 * u[r]! * rr * rDot;
      }
      if (tangent !== undefined) tangent.jvp[r] = jvp;
    }
    return { gs: Float32Array.from(gs), gsDot: Float32Array.from(gsDot) };
  };

  const learnedStd = (spec: MlpSpec) => spec.head.kind === 'gaussian' && spec.head.logStd === 'learned';

  /**
   * Backward through the layers from the output cotangent G_O: [gW_0, gb_0, …] (copied out); with
   * `preSlope`, each hidden layer's G_l W_lᵀ before the slope is also copied out there as a tensor.
   */
  const layersBackward = (spec: MlpSpec, ws: Workspace, W: readonly Matrix[], H: readonly Matrix[], GO: Matrix, preSlope?: tf.Tensor[]): Float32Array[] => {
    const grads: Float32Array[] = [];
    let G = GO;
    for (let l = W.length - 1; l >= 0; l--) {
      grads[2 * l] = tMm(ws, H[l]!, G).data.slice();
      grads[2 * l + 1] = columnSums(ws, G);
      if (l === 0) break;
      const Gh = mmT(ws, G, W[l]!);
      preSlope?.push(tensorOfValues(Gh.data, [Gh.rows, Gh.cols]));
      ex.mulSlope(Gh.ptr, H[l]!.ptr, Gh.data.length, reluFlag(spec));
      G = Gh;
    }
    return grads;
  };

  const vjp = (spec: MlpSpec, theta: tf.Tensor1D, activations: readonly tf.Tensor[], x: tf.Tensor2D, a: tf.Tensor, u: tf.Tensor1D): MlpVjp => {
    const rows = x.shape[0];
    const ws = workspace(floatsFor(spec, rows));
    const { W, logStd } = byRole(spec, ws, theta);
    const H = layerInputs(spec, ws, x, activations);
    const k = spec.widths.at(-1)!;
    const O = ws.load(activations.at(-1)!, rows, k).data;
    const G = ws.matrix(rows, k);
    const { gs } = head(spec, O, k, rows, actionsOf(spec, ws, a, rows), ws.load(u, 1, rows).data, logStd, G.data);
    const cotangents: tf.Tensor[] = [];
    const grads = layersBackward(spec, ws, W, H, G, cotangents);
    if (learnedStd(spec)) grads.push(gs!);
    return { value: flat(grads), cotangents };
  };

  const secondOrder = (
    spec: MlpSpec,
    theta: tf.Tensor1D,
    activations: readonly tf.Tensor[],
    cotangents: readonly tf.Tensor[],
    x: tf.Tensor2D,
    a: tf.Tensor,
    u: tf.Tensor1D,
    v: tf.Tensor1D,
  ): MlpSecondOrder => {
    const rows = x.shape[0];
    const ws = workspace(floatsFor(spec, rows));
    const { layers, W: Wm, logStd } = byRole(spec, ws, theta);
    // The direction by role: dW_l, db_l and (learned log-std) ds.
    const { W: dWm, b: db, logStd: dsLearned } = byRole(spec, ws, v);
    const ds = learnedStd(spec) ? dsLearned : undefined;
    const widths = spec.widths;
    const H = layerInputs(spec, ws, x, activations);
    const O = ws.load(activations.at(-1)!, rows, widths.at(-1)!).data;

    // forward tangents
    const Hdot: (Matrix | undefined)[] = [undefined];
    let Zdot = ws.matrix(rows, widths[1]!);
    for (let l = 0; l < layers; l++) {
      Zdot = mm(ws, H[l]!, dWm[l]!);
      if (Hdot[l] !== undefined) mm(ws, Hdot[l]!, Wm[l]!, Zdot, true);
      ex.addRow(Zdot.ptr, db[l]!.ptr, Zdot.rows, Zdot.cols);
      if (l + 1 < layers) {
        ex.mulSlope(Zdot.ptr, H[l + 1]!.ptr, Zdot.data.length, reluFlag(spec));
        Hdot.push(Zdot);
      }
    }
    const k = widths.at(-1)!;
    let G = ws.matrix(rows, k);
    let Gdot = ws.matrix(rows, k);
    const jvp = new Float32Array(rows);
    const { gsDot } = head(spec, O, k, rows, actionsOf(spec, ws, a, rows), ws.load(u, 1, rows).data, logStd, G.data, {
      Odot: Zdot.data,
      ds,
      gDot: Gdot.data,
      jvp,
    });

    // backward pass and its tangents
    const hvp: Float32Array[] = [];
    for (let l = layers - 1; l >= 0; l--) {
      const hw = tMm(ws, H[l]!, Gdot);
      if (Hdot[l] !== undefined) tMm(ws, Hdot[l]!, G, hw, true);
      hvp[2 * l] = hw.data.slice();
      hvp[2 * l + 1] = columnSums(ws, Gdot);
      if (l === 0) break;
      // G_l W_lᵀ: the vjp's at this θ and u (its cotangents run l = L−1 … 1).
      const Gh = ws.load(cotangents[layers - 1 - l]!, rows, widths[l]!);
      const GhDot = mmT(ws, Gdot, Wm[l]!);
      mmT(ws, G, dWm[l]!, GhDot, true);
      ex.slopeTangent(Gh.ptr, GhDot.ptr, H[l]!.ptr, Hdot[l]!.ptr, Gh.data.length, reluFlag(spec));
      G = Gh;
      Gdot = GhDot;
    }
    if (learnedStd(spec)) hvp.push(gsDot!);
    return { hvp: flat(hvp), jvp: tf.tensor1d(jvp) };
  };

  const outputVjp = (spec: MlpSpec, theta: tf.Tensor1D, activations: readonly tf.Tensor[], x: tf.Tensor2D, g: tf.Tensor2D): tf.Tensor1D => {
    const rows = x.shape[0];
    const ws = workspace(floatsFor(spec, rows));
    const { W } = byRole(spec, ws, theta);
    return flat(layersBackward(spec, ws, W, layerInputs(spec, ws, x, activations), ws.load(g, rows, spec.widths.at(-1)!)));
  };

  const forward = (spec: MlpSpec, theta: tf.Tensor1D, x: tf.Tensor2D): tf.Tensor[] =>
    forwardPass(spec, theta, x, workspace(floatsFor(spec, x.shape[0]))).activations;

  return { name: 'wasm', logProb, forward, outputVjp, vjp, secondOrder };
};

const flat = (parts: readonly Float32Array[]): tf.Tensor1D => {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return tf.tensor1d(out);
};
