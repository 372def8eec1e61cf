/**
 * The three computations a fused MLP log-probability op needs, for rows x [B, in] with actions a
 * (Gaussian: [B, out]; categorical: [B] indices) and the parameters θ as one flat vector in the op's
 * order (spec.ts; the output-only kernels read its layer part, a prefix, and accept θ without the
 * log-std):
 *
 *   logProb      ℓ_b = log π_θ(a_b | x_b)                                    → [B]
 *   vjp          Σ_b u_b ∇_θ ℓ_b                                             → [P] (flat, op order)
 *   secondOrder  hvp = Σ_b u_b ∇²_θ ℓ_b · v  → [P],  jvp = ∇_θ ℓ_b · v  → [B], in two halves:
 *                `tangents` (the forward pass's and the head's tangents along v, and the jvp) and
 *                `secondOrderBackward` (the backward pass and its tangents: the hvp), which may take
 *                a further cotangent u′ whose vjp Σ_b u′_b ∇ℓ_b it adds in the same pass
 *
 * `vjp` and the second order's forward half may also take a cotangent dO [B, out] of the network's
 * output O: then vjp is Σ_b u_b ∇ℓ_b + Σ_b ∂O_bᵀdO_b (one backward pass from G_O + dO), the second order
 * its derivative (the hvp
 * with G_O + dO, and, besides the jvp, the output's tangent Ȯ = ∂O·v [B, out]: the derivative with
 * respect to dO). That is the gradient of an op whose outputs are ℓ and O together (log-prob-op.ts),
 * for a caller that reads both at the same θ (ProMP's KL at an inner step's parameters and data).
 *
 * θ may also be [K, P]: K parameter settings (blocks), block k applying to the rows k·B/K … (k+1)·B/K − 1
 * (K tasks' batches stacked, each with its own parameters). Derivatives with respect to θ (and v) then
 * have θ's shape, row k that of block k's rows alone: one call does what K calls would, with the tfjs
 * bookkeeping of one (the outer step stacks tasks this way: iteration.ts).
 *
 * `vjp` also returns its backward pass's cotangents before each hidden layer's activation slope,
 * G_l W_lᵀ for l = L−1 … 1 ([B, width_l] each): the second order's backward half at the same θ and u
 * needs exactly these (its backward pass is the vjp's and its tangent), so it takes them instead of
 * recomputing them — one
 * [B, width]·[width, width] product per hidden layer fewer.
 *
 * The second order is the derivative of `vjp` (with respect to θ, and to u): forward-mode tangents along v
 * pushed through the forward pass and the backward pass (forward-over-reverse), written out by hand.
 * This module's implementation runs them as tfjs kernels (every backend has them, and on the native
 * TensorFlow backends they are the fast ones); matrix products with a transposed operand are
 * written with explicit transposes, which tfjs-wasm sends to XNNPACK instead of its naive loop.
 *
 * Derivation (layer l: Z_l = H_l W_l + b_l, H_{l+1} = act(Z_l), output O = Z_{L−1}; dots are tangents
 * along v = (dW, db, ds); G are cotangents):
 *   Gaussian  r = (a − O)e^{−s}, q = r e^{−s}:  ℓ = Σ_j (−½r² − s) − ½ d log 2π
 *             G_O = u q,  g_s = uᵀ(r² − 1);  ℓ̇ = Σ_j q Ȯ + (r² − 1) ds
 *             Ġ_O = u (−Ȯ e^{−2s} − 2 q ds),  ġ_s = 2 uᵀ(r ṙ),  ṙ = −Ȯ e^{−s} − r ds
 *   categorical p = softmax(O):  ℓ = O[a] − logΣexp O;  G_O = u (onehot(a) − p);  ℓ̇ = Ȯ[a] − p·Ȯ;
 *             Ġ_O = −u p (Ȯ − p·Ȯ)
 *   layers    gW_l = H_lᵀ G_l, gb_l = Σ_rows G_l, G_{l−1} = (G_l W_lᵀ) act′_l;
 *             ġW_l = Ḣ_lᵀ G_l + H_lᵀ Ġ_l, ġb_l = Σ_rows Ġ_l,
 *             Ġ_{l−1} = (Ġ_l W_lᵀ + G_l dW_lᵀ) act′_l + (G_l W_lᵀ) act″_l Ż_{l−1}
 *             tanh: act′ = 1 − H², act″·Ż = −2 H Ḣ;  relu: act′ = [H > 0], act″ = 0.
 */
import * as tf from '@tensorflow/tfjs';
import { fastTanh } from '../elementwise.ts';
import { layerCount, parameterShapes, parameterSizes, type MlpSpec } from './spec.ts';

/**
 * ℓ and the forward pass's activations H_1 … H_{L−1} and output O, which the derivative kernels reuse
 * (they are evaluated at the same θ): the nonlinearity runs once per op, not once per derivative.
 */
export interface MlpForward {
  readonly value: tf.Tensor1D;
  readonly activations: readonly tf.Tensor[];
}

/** Σ_b u_b ∇ℓ_b (θ's shape) and the backward pass's pre-slope cotangents G_l W_lᵀ, l = L−1 … 1 (see the module comment). */
export interface MlpVjp {
  readonly value: tf.Tensor;
  readonly cotangents: readonly tf.Tensor[];
}

/**
 * What the second order's backward half needs from its forward half (`tangents`) at the same θ, u, v
 * (and dO): the forward pass's tangents and the head's cotangent and its tangent, kept as tensors
 * between the two calls so that the backward half can run later, with a further cotangent merged in.
 */
export interface MlpTangents {
  /** Ḣ_1 … Ḣ_{L−1}: each hidden layer's tangent along v ([B, width_l]). */
  readonly hidden: readonly tf.Tensor[];
  /** G_O for weights u (dO added, where the vjp had one), [B, out]. */
  readonly outputCotangent: tf.Tensor2D;
  /** Its tangent Ġ_O along v, [B, out]. */
  readonly outputCotangentTangent: tf.Tensor2D;
  /** The learned log-std's part of the hvp ([out]; [K, out] for θ of K blocks), where it has one. */
  readonly logStdHvp?: tf.Tensor;
}

/** The forward half's results: the derivative of `vjp` with respect to u (and dO), and the state for the backward half. */
export interface MlpForwardTangents {
  readonly jvp: tf.Tensor1D;
  /** Ȯ [B, out], when the vjp had an output cotangent dO. */
  readonly outputTangent?: tf.Tensor2D;
  readonly tangents: MlpTangents;
}

/**
 * A first-order cotangent the backward half adds in (see `secondOrderBackward`): row weights u′ of ℓ
 * and, where the op outputs O too, dO′ of O, with the actions the head needs.
 */
export interface MlpExtraCotangent {
  readonly a: tf.Tensor;
  readonly u: tf.Tensor1D;
  readonly dO?: tf.Tensor2D;
}

/** The computations behind a fused MLP op; each runs off the tape and returns new tensors. */
export interface MlpKernels {
  readonly name: string;
  /** θ: [P], or [K, P] (blocks: see the module comment); likewise below. */
  readonly logProb: (spec: MlpSpec, theta: tf.Tensor, x: tf.Tensor2D, a: tf.Tensor) => MlpForward;
  /** The forward pass alone: H_1 … H_{L−1} and the output O (the last), for the output op. */
  readonly forward: (spec: MlpSpec, theta: tf.Tensor, x: tf.Tensor2D) => tf.Tensor[];
  /**
   * Σ_{b,j} g_bj ∂O_bj/∂θ for the layer parameters (W0, b0, …; no log-std) as one flat vector: the
   * gradient of the network's output, for divergences (the KL penalty) that need its first order only
   * ([layer entries], or [K, layer entries] for a θ of K blocks).
   */
  readonly outputVjp: (spec: MlpSpec, theta: tf.Tensor, activations: readonly tf.Tensor[], x: tf.Tensor2D, g: tf.Tensor2D) => tf.Tensor;
  /** dO: a cotangent of the output O besides u's (see the module comment). */
  readonly vjp: (spec: MlpSpec, theta: tf.Tensor, activations: readonly tf.Tensor[], x: tf.Tensor2D, a: tf.Tensor, u: tf.Tensor1D, dO?: tf.Tensor2D) => MlpVjp;
  /** The second order's forward half: the tangents along v (θ's shape) of the forward pass and the head. */
  readonly tangents: (
    spec: MlpSpec,
    theta: tf.Tensor,
    activations: readonly tf.Tensor[],
    x: tf.Tensor2D,
    a: tf.Tensor,
    u: tf.Tensor1D,
    v: tf.Tensor,
    /** The vjp's output cotangent, if it had one. */
    dO?: tf.Tensor2D,
  ) => MlpForwardTangents;
  /**
   * The second order's backward half: Σ_b u_b ∇²ℓ_b·v (θ's shape) from `tangents`' state, plus, given
   * `extra`, the vjp for its weights — Σ_b u′_b ∇ℓ_b (+ Σ_b ∂O_bᵀdO′_b) — in the same backward pass:
   * both are linear in the output cotangent's tangent, so u′'s cotangent joins Ġ_O (the module comment).
   */
  readonly secondOrderBackward: (
    spec: MlpSpec,
    theta: tf.Tensor,
    activations: readonly tf.Tensor[],
    /** `vjp`'s cotangents at the same θ and u. */
    cotangents: readonly tf.Tensor[],
    x: tf.Tensor2D,
    v: tf.Tensor,
    tangents: MlpTangents,
    extra?: MlpExtraCotangent,
  ) => tf.Tensor;
}

/** Frees the tensors of a forward half's state. */
export const disposeTangents = (t: MlpTangents): void => {
  tf.dispose([...t.hidden, t.outputCotangent, t.outputCotangentTangent, ...(t.logStdHvp === undefined ? [] : [t.logStdHvp])]);
};

const halfLog2Pi = 0.5 * Math.log(2 * Math.PI);

/** tf.tidy for a result that holds its tensors in nested records (tidy walks them; its types want an index signature). */
const tidyRecord = <T extends object>(f: () => T): T => tf.tidy(f as () => tf.TensorContainer) as T;

/** A·B, A·Bᵀ and Aᵀ·B, the last two through explicit transposes (see the module comment). */
const mm = (a: tf.Tensor, b: tf.Tensor): tf.Tensor2D => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
const mmT = (a: tf.Tensor, b: tf.Tensor): tf.Tensor2D => mm(a, tf.transpose(b));
const tMm = (a: tf.Tensor, b: tf.Tensor): tf.Tensor2D => mm(tf.transpose(a), b);

/** The flat θ (all of it, or its layer part) as the parameters' tensors, in the op's order. */
const unflatten = (spec: MlpSpec, theta: tf.Tensor): tf.Tensor[] => {
  const all = parameterShapes(spec);
  const shapes = theta.size === parameterSizes(spec).total ? all : all.slice(0, 2 * layerCount(spec));
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  if (sizes.reduce((a, b) => a + b, 0) !== theta.size) throw new RangeError(`fused MLP kernels: θ has ${theta.size} entries, which is neither all parameters nor the layers'`);
  return tf.split(theta, sizes).map((part, k) => tf.reshape(part, shapes[k]!));
};

/** The parameters by role. */
const unpack = (spec: MlpSpec, theta: tf.Tensor) => {
  const params = unflatten(spec, theta);
  const layers = layerCount(spec);
  const W = Array.from({ length: layers }, (_, l) => params[2 * l]!);
  const b = Array.from({ length: layers }, (_, l) => params[2 * l + 1]!);
  const out = spec.widths.at(-1)!;
  const logStd =
    spec.head.kind !== 'gaussian' ? undefined : spec.head.logStd === 'learned' ? params[2 * layers]! : tf.fill([out], spec.head.logStd);
  return { layers, W, b, logStd };
};

/** A direction v along θ by role: dW_l, db_l and (learned log-std) ds. */
const directionOf = (spec: MlpSpec, v: tf.Tensor) => {
  const layers = layerCount(spec);
  const dirs = unflatten(spec, v);
  return {
    dW: Array.from({ length: layers }, (_, l) => dirs[2 * l]!),
    db: Array.from({ length: layers }, (_, l) => dirs[2 * l + 1]!),
    ds: spec.head.kind === 'gaussian' && spec.head.logStd === 'learned' ? dirs[2 * layers]! : undefined,
  };
};

/** H_0 … H_{L−1} (the inputs of each layer) and the output O. */
const forward = (spec: MlpSpec, W: readonly tf.Tensor[], b: readonly tf.Tensor[], x: tf.Tensor): { H: tf.Tensor[]; O: tf.Tensor } => {
  const H: tf.Tensor[] = [x];
  let z = x;
  for (let l = 0; l < W.length; l++) {
    z = tf.add(mm(H[l]!, W[l]!), b[l]!);
    if (l + 1 < W.length) H.push(spec.activation === 'tanh' ? fastTanh(z) : tf.relu(z));
  }
  return { H, O: z };
};

/** act′ at layer input H_l (l ≥ 1), as a function of H_l. */
const activationSlope = (spec: MlpSpec, h: tf.Tensor): tf.Tensor =>
  spec.activation === 'tanh' ? tf.sub(1, tf.square(h)) : tf.cast(tf.greater(h, 0), 'float32');

const oneHot = (a: tf.Tensor, k: number): tf.Tensor => tf.cast(tf.oneHot(a.dtype === 'int32' ? a : tf.cast(a, 'int32'), k), 'float32');

/** The output cotangent G_O = ∂(Σ_b u_b ℓ_b)/∂O, and (Gaussian, learned) the log-std's gradient. */
const headVjp = (spec: MlpSpec, O: tf.Tensor, a: tf.Tensor, u: tf.Tensor, logStd: tf.Tensor | undefined) => {
  const uCol = tf.expandDims(u, 1);
  if (spec.head.kind === 'categorical') {
    return { G: tf.mul(uCol, tf.sub(oneHot(a, O.shape[1]!), tf.softmax(O))), gs: undefined };
  }
  const inv = tf.exp(tf.neg(logStd!));
  const r = tf.mul(tf.sub(a, O), inv);
  const G = tf.mul(uCol, tf.mul(r, inv));
  const gs = tf.sub(tf.sum(tf.mul(uCol, tf.square(r)), 0), tf.sum(u));
  return { G, gs, r, inv };
};

/** Backward through the layers from G_O: [gW_0, gb_0, …] and the G_l of every layer. */
const layersVjp = (spec: MlpSpec, W: readonly tf.Tensor[], H: readonly tf.Tensor[], GO: tf.Tensor) => {
  const grads: tf.Tensor[] = [];
  const G: tf.Tensor[] = new Array<tf.Tensor>(W.length);
  const preSlope: tf.Tensor[] = [];
  G[W.length - 1] = GO;
  for (let l = W.length - 1; l >= 0; l--) {
    grads[2 * l] = tMm(H[l]!, G[l]!);
    grads[2 * l + 1] = tf.sum(G[l]!, 0);
    if (l === 0) break;
    const Gh = mmT(G[l]!, W[l]!);
    preSlope.push(Gh);
    G[l - 1] = tf.mul(Gh, activationSlope(spec, H[l]!));
  }
  return { grads, G, preSlope };
};

const flat = (parts: readonly tf.Tensor[]): tf.Tensor1D => tf.concat(parts.map((p) => tf.reshape(p, [-1]))) as tf.Tensor1D;


/**
 * Kernels that take θ of K blocks ([K, P]) by running `single` (one block's θ, [P]) on each block's rows
 * and joining the results: the blocks' semantics (see the module comment) stated as plainly as it can
 * be, for the tfjs implementation (the oracle) — the WebAssembly kernels loop over blocks inside.
 */
export const blockwise = (single: MlpKernels): MlpKernels => {
  /** Row k of θ-shaped tensors and block k of the per-row ones, per block, with `f`'s results per block. */
  const perBlock = <T>(theta: tf.Tensor, rows: number, f: (row: (t: tf.Tensor) => tf.Tensor, rowsOf: <R extends tf.Tensor>(t: R) => R) => T): T[] => {
    const count = theta.shape[0]!;
    const size = rows / count;
    return Array.from({ length: count }, (_, k) =>
      f(
        (t) => tf.reshape(tf.slice(t, [k, 0], [1, t.shape[1]!]), [t.shape[1]!]),
        <R extends tf.Tensor>(t: R) => tf.slice(t, [k * size, ...t.shape.slice(1).map(() => 0)], [size, ...t.shape.slice(1)]) as R,
      ),
    );
  };
  const joinRows = (parts: readonly tf.Tensor[]): tf.Tensor => tf.concat(parts as tf.Tensor[], 0);
  const stackRows = (parts: readonly tf.Tensor[]): tf.Tensor => tf.stack(parts as tf.Tensor[]);
  return {
    name: single.name,
    logProb: (spec, theta, x, a) => {
      if (theta.rank === 1) return single.logProb(spec, theta, x, a);
      return tf.tidy(() => {
        const parts = perBlock(theta, x.shape[0], (row, rowsOf) => single.logProb(spec, row(theta), rowsOf(x), rowsOf(a)));
        return {
          value: joinRows(parts.map((p) => p.value)) as tf.Tensor1D,
          activations: parts[0]!.activations.map((_, l) => joinRows(parts.map((p) => p.activations[l]!))),
        };
      });
    },
    forward: (spec, theta, x) => {
      if (theta.rank === 1) return single.forward(spec, theta, x);
      return tf.tidy(() => {
        const parts = perBlock(theta, x.shape[0], (row, rowsOf) => single.forward(spec, row(theta), rowsOf(x)));
        return parts[0]!.map((_, l) => joinRows(parts.map((p) => p[l]!)));
      });
    },
    outputVjp: (spec, theta, activations, x, g) => {
      if (theta.rank === 1) return single.outputVjp(spec, theta, activations, x, g);
      return tf.tidy(() =>
        stackRows(perBlock(theta, x.shape[0], (row, rowsOf) => single.outputVjp(spec, row(theta), activations.map(rowsOf), rowsOf(x), rowsOf(g)))),
      );
    },
    vjp: (spec, theta, activations, x, a, u, dO) => {
      if (theta.rank === 1) return single.vjp(spec, theta, activations, x, a, u, dO);
      return tf.tidy(() => {
        const parts = perBlock(theta, x.shape[0], (row, rowsOf) =>
          single.vjp(spec, row(theta), activations.map(rowsOf), rowsOf(x), rowsOf(a), rowsOf(u), dO === undefined ? undefined : rowsOf(dO)),
        );
        return {
          value: stackRows(parts.map((p) => p.value)),
          cotangents: parts[0]!.cotangents.map((_, l) => joinRows(parts.map((p) => p.cotangents[l]!))),
        };
      });
    },
    tangents: (spec, theta, activations, x, a, u, v, dO) => {
      if (theta.rank === 1) return single.tangents(spec, theta, activations, x, a, u, v, dO);
      return tidyRecord((): MlpForwardTangents => {
        const parts = perBlock(theta, x.shape[0], (row, rowsOf) =>
          single.tangents(spec, row(theta), activations.map(rowsOf), rowsOf(x), rowsOf(a), rowsOf(u), row(v), dO === undefined ? undefined : rowsOf(dO)),
        );
        const t = parts.map((p) => p.tangents);
        const logStdHvp = t[0]!.logStdHvp === undefined ? undefined : stackRows(t.map((p) => p.logStdHvp!));
        const tangents: MlpTangents = {
          hidden: t[0]!.hidden.map((_, l) => joinRows(t.map((p) => p.hidden[l]!))),
          outputCotangent: joinRows(t.map((p) => p.outputCotangent)) as tf.Tensor2D,
          outputCotangentTangent: joinRows(t.map((p) => p.outputCotangentTangent)) as tf.Tensor2D,
          ...(logStdHvp === undefined ? {} : { logStdHvp }),
        };
        const jvp = joinRows(parts.map((p) => p.jvp)) as tf.Tensor1D;
        return dO === undefined ? { jvp, tangents } : { jvp, tangents, outputTangent: joinRows(parts.map((p) => p.outputTangent!)) as tf.Tensor2D };
      });
    },
    secondOrderBackward: (spec, theta, activations, cotangents, x, v, tangents, extra) => {
      if (theta.rank === 1) return single.secondOrderBackward(spec, theta, activations, cotangents, x, v, tangents, extra);
      return tf.tidy(() =>
        stackRows(
          perBlock(theta, x.shape[0], (row, rowsOf) =>
            single.secondOrderBackward(
              spec,
              row(theta),
              activations.map(rowsOf),
              cotangents.map(rowsOf),
              rowsOf(x),
              row(v),
              {
                hidden: tangents.hidden.map(rowsOf),
                outputCotangent: rowsOf(tangents.outputCotangent),
                outputCotangentTangent: rowsOf(tangents.outputCotangentTangent),
                ...(tangents.logStdHvp === undefined ? {} : { logStdHvp: row(tangents.logStdHvp) }),
              },
              extra === undefined ? undefined : { a: rowsOf(extra.a), u: rowsOf(extra.u), ...(extra.dO === undefined ? {} : { dO: rowsOf(extra.dO) }) },
            ),
          ),
        ),
      );
    },
  };
};

const oneBlockTfjsKernels: MlpKernels = {
  name: 'tfjs',
  logProb: (spec, theta, x, a) =>
    tf.tidy(() => {
      const { W, b, logStd } = unpack(spec, theta);
      const { H, O } = forward(spec, W, b, x);
      const activations = [...H.slice(1), O];
      if (spec.head.kind === 'categorical') {
        return { value: tf.sub(tf.sum(tf.mul(oneHot(a, O.shape[1]!), O), 1), tf.logSumExp(O, 1)) as tf.Tensor1D, activations };
      }
      const r = tf.mul(tf.sub(a, O), tf.exp(tf.neg(logStd!)));
      const d = O.shape[1]!;
      return { value: tf.sub(tf.neg(tf.sum(tf.mul(0.5, tf.square(r)), 1)), tf.sum(logStd!).add(d * halfLog2Pi)) as tf.Tensor1D, activations };
    }),

  forward: (spec, theta, x) =>
    tf.tidy(() => {
      const { W, b } = unpack(spec, theta);
      const { H, O } = forward(spec, W, b, x);
      return [...H.slice(1), O];
    }),

  outputVjp: (spec, theta, activations, x, g) =>
    tf.tidy(() => {
      const { W } = unpack(spec, theta);
      const H = [x, ...activations.slice(0, -1)];
      return flat(layersVjp(spec, W, H, g).grads);
    }),

  vjp: (spec, theta, activations, x, a, u, dO) =>
    tf.tidy(() => {
      const { W, logStd } = unpack(spec, theta);
      const H = [x, ...activations.slice(0, -1)];
      const O = activations.at(-1)!;
      const head = headVjp(spec, O, a, u, logStd);
      const { grads, preSlope } = layersVjp(spec, W, H, dO === undefined ? head.G : tf.add(head.G, dO));
      if (spec.head.kind === 'gaussian' && spec.head.logStd === 'learned') grads.push(head.gs!);
      return { value: flat(grads), cotangents: preSlope };
    }),

  tangents: (spec, theta, activations, x, a, u, v, dO) =>
    tidyRecord((): MlpForwardTangents => {
      const { layers, W, logStd } = unpack(spec, theta);
      const { dW, db, ds } = directionOf(spec, v);

      // the forward pass's tangents (the activations themselves are the forward's)
      const H = [x, ...activations.slice(0, -1)];
      const O = activations.at(-1)!;
      const hidden: tf.Tensor[] = [];
      let Zdot: tf.Tensor = x;
      for (let l = 0; l < layers; l++) {
        const fromInput = l === 0 ? undefined : mm(hidden[l - 1]!, W[l]!);
        const fromWeights = tf.add(mm(H[l]!, dW[l]!), db[l]!);
        Zdot = fromInput === undefined ? fromWeights : tf.add(fromInput, fromWeights);
        if (l + 1 < layers) hidden.push(tf.mul(activationSlope(spec, H[l + 1]!), Zdot));
      }
      const Odot = Zdot;
      const uCol = tf.expandDims(u, 1);

      // the head: G_O, its tangent, the JVP and the log-std's terms
      let G: tf.Tensor;
      let Gdot: tf.Tensor;
      let jvp: tf.Tensor;
      let gsDot: tf.Tensor | undefined;
      if (spec.head.kind === 'categorical') {
        const p = tf.softmax(O);
        const pDotO = tf.sum(tf.mul(p, Odot), 1, true);
        G = tf.mul(uCol, tf.sub(oneHot(a, O.shape[1]!), p));
        Gdot = tf.neg(tf.mul(uCol, tf.mul(p, tf.sub(Odot, pDotO))));
        jvp = tf.sub(tf.sum(tf.mul(oneHot(a, O.shape[1]!), Odot), 1), tf.reshape(pDotO, [-1]));
      } else {
        const inv = tf.exp(tf.neg(logStd!));
        const r = tf.mul(tf.sub(a, O), inv);
        const q = tf.mul(r, inv);
        G = tf.mul(uCol, q);
        const rDot0 = tf.neg(tf.mul(Odot, inv));
        const rDot = ds === undefined ? rDot0 : tf.sub(rDot0, tf.mul(r, ds));
        const qDot0 = tf.neg(tf.mul(Odot, tf.square(inv)));
        const qDot = ds === undefined ? qDot0 : tf.sub(qDot0, tf.mul(tf.mul(2, q), ds));
        Gdot = tf.mul(uCol, qDot);
        const jvpMean = tf.sum(tf.mul(q, Odot), 1);
        jvp = ds === undefined ? jvpMean : tf.add(jvpMean, tf.sum(tf.mul(tf.sub(tf.square(r), 1), ds), 1));
        if (ds !== undefined) gsDot = tf.mul(2, tf.sum(tf.mul(uCol, tf.mul(r, rDot)), 0));
      }
      // An output cotangent dO is a constant: it adds to G_O, not to its tangent.
      if (dO !== undefined) G = tf.add(G, dO);
      const tangents: MlpTangents = {
        hidden,
        outputCotangent: G as tf.Tensor2D,
        outputCotangentTangent: Gdot as tf.Tensor2D,
        ...(gsDot === undefined ? {} : { logStdHvp: gsDot }),
      };
      const results = { jvp: tf.reshape(jvp, [-1]) as tf.Tensor1D, tangents };
      return dO === undefined ? results : { ...results, outputTangent: Odot as tf.Tensor2D };
    }),

  secondOrderBackward: (spec, theta, activations, cotangents, x, v, tangents, extra) =>
    tf.tidy(() => {
      const { layers, W, logStd } = unpack(spec, theta);
      const { dW } = directionOf(spec, v);
      const H = [x, ...activations.slice(0, -1)];
      const Hdot = [undefined, ...tangents.hidden];
      let G: tf.Tensor = tangents.outputCotangent;
      let Gdot: tf.Tensor = tangents.outputCotangentTangent;
      let gsDot = tangents.logStdHvp;
      // The extra cotangent's vjp rides on Ġ: the backward pass is linear in it.
      if (extra !== undefined) {
        const head = headVjp(spec, activations.at(-1)!, extra.a, extra.u, logStd);
        Gdot = tf.add(Gdot, extra.dO === undefined ? head.G : tf.add(head.G, extra.dO));
        if (head.gs !== undefined && gsDot !== undefined) gsDot = tf.add(gsDot, head.gs);
      }

      // backward pass and its tangents
      const hvp: tf.Tensor[] = [];
      for (let l = layers - 1; l >= 0; l--) {
        const fromG = tMm(H[l]!, Gdot);
        hvp[2 * l] = Hdot[l] === undefined ? fromG : tf.add(tMm(Hdot[l]!, G), fromG);
        hvp[2 * l + 1] = tf.sum(Gdot, 0);
        if (l === 0) break;
        // G_l W_lᵀ: the vjp's (its cotangents run l = L−1 … 1).
        const Gh = cotangents[layers - 1 - l]!;
        const GhDot = tf.add(mmT(Gdot, W[l]!), mmT(G, dW[l]!));
        const h = H[l]!;
        const slope = activationSlope(spec, h);
        const nextG = tf.mul(Gh, slope);
        const curvature = spec.activation === 'tanh' ? tf.mul(Gh, tf.mul(-2, tf.mul(h, Hdot[l]!))) : undefined;
        Gdot = curvature === undefined ? tf.mul(GhDot, slope) : tf.add(tf.mul(GhDot, slope), curvature);
        G = nextG;
      }
      if (gsDot !== undefined) hvp.push(gsDot);
      return flat(hvp);
    }),
};

/** The kernels as tfjs ops, on every backend: the oracle the WebAssembly ones are tested against. */
export const tfjsMlpKernels: MlpKernels = blockwise(oneBlockTfjsKernels);
