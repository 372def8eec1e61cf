/**
 * log π_θ(a|s) of an MLP policy as one op with its derivatives, so that tfjs autodiff composes it with
 * everything else (the compiler's surrogate algebra over ℓ stays as it is) while the network's own
 * derivatives run as a few large kernels instead of hundreds of small taped ones:
 *
 *   ℓ = logProb(θ)                gradient: (dℓ) ↦ vjp(θ, dℓ)               (θ: all parameters, flat)
 *                                 — or, where vjp's gradient left its forward half: the backward half
 *                                   Σ u ∇²ℓ·v with dℓ's vjp merged in (see `application` below)
 *   g = vjp(θ, u) = Σ_b u_b ∇ℓ_b  gradient: (dg) ↦ (0, ∇ℓ·dg), the forward half of the second order
 *                                 (kernels' `tangents`), its backward half left for logProb's gradient
 *   the second order's results    gradient: a clear error (third order is not provided)
 *
 * Each level is a tf.customGrad whose value comes from the kernels (kernels.ts) and whose gradient is
 * the next level's op, so a second derivative is exact and a third one says so rather than returning
 * a wrong number. Observations and actions are data (no derivative flows to them).
 *
 * The same ops with the network's output O as a second result (`fusedMlpLogProbAndOutputPacked`): one
 * flat output [ℓ; O], whose cotangent [u; dO] the vjp takes whole (one backward pass for both: kernels.ts)
 * and whose second order also returns O's tangent — for a caller that reads ℓ and O at the same θ and
 * rows (ProMP's KL at an inner step's parameters and data), where ℓ's op and the output op apart would
 * each run the forward pass and a backward pass.
 */
import * as tf from '@tensorflow/tfjs';
import { disposeTangents, type MlpKernels, type MlpTangents } from './kernels.ts';
import { layerCount, parameterShapes, parameterSizes, type MlpSpec } from './spec.ts';

export class FusedOrderError extends Error {
  override readonly name = 'FusedOrderError';
}

/** tf.customGrad with its callback typed as it really is: the inputs, then `save`. */
const custom = (
  body: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] },
): ((...inputs: tf.Tensor[]) => tf.Tensor) => {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    return body(args.slice(0, -1) as tf.Tensor[], save);
  });
  return (...inputs) => op(...inputs);
};

/**
 * θ as the fused ops take it: a vector of one of `sizes` entries, or K such rows ([K, P]: K blocks, each
 * applying to its share of the `rows` rows — kernels.ts), K dividing the rows; else a RangeError naming
 * the shape.
 */
export const checkBlocks = (op: string, theta: tf.Tensor, sizes: readonly number[], rows: number): void => {
  const entries = theta.shape.at(-1)!;
  const blocks = theta.rank === 2 ? theta.shape[0]! : 1;
  const fits = (theta.rank === 1 || theta.rank === 2) && sizes.includes(entries) && blocks > 0 && rows % blocks === 0;
  if (!fits) {
    throw new RangeError(
      `${op}: θ of ${sizes.join(' or ')} entries expected (a vector, or one row per block of the ${rows} rows), got shape [${theta.shape.join(', ')}]`,
    );
  }
};

/** The parameters, in the op's order, as one flat [P] vector (differentiable: reshapes and a concat). */
export const packParams = (params: readonly tf.Tensor[]): tf.Tensor1D => tf.concat(params.map((p) => tf.reshape(p, [-1]))) as tf.Tensor1D;

/**
 * ℓ [rows] for observations x [rows, in] and actions a (Gaussian [rows, out]; categorical [rows]), from
 * the parameters as one flat θ [P] in the op's order (spec.ts). The op's derivatives are flat vectors
 * too, so an inner step θ′ = θ + α∇ℓ-weighted is one add on one tensor: no split, reshape or per-
 * parameter op on the tape. θ may be K rows ([K, P]), block k applying to its share of the rows
 * (kernels.ts); its derivatives then have θ's shape.
 */
export const fusedMlpLogProbPacked = (spec: MlpSpec, kernels: MlpKernels, x: tf.Tensor2D, a: tf.Tensor) => fusedOps(spec, kernels, x, a, false);

/**
 * `fusedMlpLogProbPacked` with the network's output too: θ ↦ [ℓ (rows); O (rows × out, row-major)] as one
 * flat vector (slice it; a θ of K blocks gives the same layout over all rows). Derivatives to order 2,
 * the two results' cotangents taken by one backward pass.
 */
export const fusedMlpLogProbAndOutputPacked = (spec: MlpSpec, kernels: MlpKernels, x: tf.Tensor2D, a: tf.Tensor) => fusedOps(spec, kernels, x, a, true);

const fusedOps = (spec: MlpSpec, kernels: MlpKernels, x: tf.Tensor2D, a: tf.Tensor, withOutput: boolean) => {
  const { total } = parameterSizes(spec);
  const layers = layerCount(spec);
  const rows = x.shape[0];
  const out = spec.widths.at(-1)!;
  /** The op's cotangent as the kernels take it: u [rows], and dO [rows, out] where the op outputs O too. */
  const cotangentOf = (flat: tf.Tensor): { u: tf.Tensor1D; dO?: tf.Tensor2D } =>
    withOutput
      ? { u: tf.slice(flat, [0], [rows]) as tf.Tensor1D, dO: tf.reshape(tf.slice(flat, [rows], [rows * out]), [rows, out]) as tf.Tensor2D }
      : { u: flat as tf.Tensor1D };

  // Inputs of the derivative ops: θ; the forward pass's activations (constants that the kernels reuse:
  // their dependence on θ is already in the kernels' own tangents, so the gradient sent to them is
  // zero); the observations and actions (data: zero gradient); then u (and v). Everything a later
  // derivative needs travels as a saved input: a tensor merely captured would be freed with the
  // forward pass's scope before the backward pass runs.
  const split = (inputs: readonly tf.Tensor[]) => ({
    theta: inputs[0] as tf.Tensor1D,
    activations: inputs.slice(1, 1 + layers),
    x: inputs[1 + layers] as tf.Tensor2D,
    a: inputs[2 + layers]!,
    u: inputs[3 + layers] as tf.Tensor1D,
  });
  // What vjp saves: its inputs but the op's value, then its cotangents (one per hidden layer).
  const hidden = layers - 1;
  // The "gradients" of the activations, observations and actions. The activations are made inside the
  // forward op, so no tape path leads from any parameter to them, and the observations and actions are
  // data on every graph the op serves; tfjs never asks for these (it prunes inputs off the path before
  // calling a gradient). A scalar stands in for each, not zeros of its shape, which cost an allocation
  // and a fill of the batch's size (two to four per level). Were one ever asked for — a graph computing
  // the observations from a parameter — tfjs would refuse its shape: an error, where zeros would have
  // been a silently wrong gradient.
  const unreachable = (ts: readonly tf.Tensor[]) => ts.map(() => tf.scalar(0));

  const refuseThirdOrder = (): never => {
    throw new FusedOrderError(
      'a third derivative through the fused MLP policy op was requested; it provides orders 1 and 2 — use the tfjs policy path (engine "tfjs") for higher orders',
    );
  };
  /**
   * A second-order result as an op on the tape (of `inputs`, what it depends on) whose gradient is a
   * clear error: a third derivative through it is refused, not silently zero. It takes `value` over.
   */
  const final = (value: tf.Tensor, ...inputs: tf.Tensor[]): tf.Tensor =>
    custom(() => {
      const own = tf.clone(value);
      value.dispose();
      return { value: own, gradFunc: refuseThirdOrder };
    })(...inputs);

  // One application of the op (one forward pass at one θ), with the second order split in two halves
  // around the surrogate's algebra. Differentiating the inner step's g = vjp(θ, u), u = ∂L/∂ℓ (ℓ this
  // op's value), the backward pass meets vjp first: its gradient, with respect to u, is the JVP ∇ℓ·v,
  // which runs back through the algebra to ℓ as a cotangent u′; then this op, whose gradient is the
  // vjp for u′. With respect to θ, vjp's gradient is Σ u ∇²ℓ·v, a backward pass through the same layers
  // as u′'s vjp and linear in the same output cotangent's tangent, so the two are one pass: vjp's
  // gradient runs only the forward half (`tangents`: the JVP and the state) and leaves the state in
  // `pending`; this op's gradient, reached later in the same backward pass, runs the backward half
  // with u′ merged in (`secondOrderBackward`). One backward pass per level fewer: two of a level's
  // eleven large products.
  //
  // What makes this safe is that this op's gradient always runs after vjp's: vjp takes this op's value
  // as an input besides u (its gradient there is zero), so wherever a backward pass reaches vjp and
  // wants θ's gradient, it reaches this op too — even where u does not depend on ℓ (a surrogate linear
  // in ℓ) — and tfjs runs the tape backwards, this op (recorded first) last. A state that a backward
  // pass leaves behind (it wanted u's gradient alone) is the backward pass's own tensors, freed when it
  // ends: a later pass skips it.
  const application = (theta: tf.Tensor): tf.Tensor => {
    interface Pending {
      readonly v: tf.Tensor;
      readonly cotangents: readonly tf.Tensor[];
      readonly tangents: MlpTangents;
    }
    const pending: Pending[] = [];
    /** This application's value (for vjp's extra input), set once the op has run. */
    let output: tf.Tensor | undefined;

    const vjp = custom((inputs, save) => {
      const { theta, activations, x, a, u: cotangent } = split(inputs);
      const { u, dO } = cotangentOf(cotangent);
      const { value, cotangents } = kernels.vjp(spec, theta, activations, x, a, u, dO);
      save([...inputs.slice(0, 4 + layers), ...cotangents]);
      return {
        value,
        gradFunc: (dg, saved) => {
          const s = split(saved);
          const { u, dO } = cotangentOf(s.u);
          const half = kernels.tangents(spec, s.theta, s.activations, s.x, s.a, u, dg, dO);
          pending.push({ v: dg, cotangents: saved.slice(4 + layers, 4 + layers + hidden), tangents: half.tangents });
          // The derivative with respect to the whole cotangent: [∇ℓ·v; Ȯ] where the op outputs O too.
          const whole = half.outputTangent === undefined ? half.jvp : tf.concat([half.jvp, tf.reshape(half.outputTangent, [-1])]);
          return [tf.zerosLike(s.theta), ...unreachable([...s.activations, s.x, s.a]), final(whole, s.theta, s.u, dg), tf.fill(output!.shape, 0)];
        },
      };
    });

    const logProb = custom((inputs, save) => {
      const [theta, x, a] = inputs as [tf.Tensor1D, tf.Tensor2D, tf.Tensor];
      const { value, activations } = kernels.logProb(spec, theta, x, a);
      save([theta, ...activations, x, a]);
      return {
        value: withOutput ? tf.concat([value, tf.reshape(activations.at(-1)!, [-1])]) : value,
        // dℓ has ℓ's shape, [rows] (tfjs checks it), as vjp's u needs: no reshape (a taped op and its clone);
        // with O, the flat [u; dO] goes to vjp whole.
        gradFunc: (dl, saved) => {
          const halves = pending.splice(0).filter((p) => !p.tangents.outputCotangent.isDisposed);
          if (halves.length === 0) return [vjp(...saved, dl, output!), ...unreachable(saved.slice(-2))];
          const [thetaSaved, ...rest] = saved as [tf.Tensor, ...tf.Tensor[]];
          const activations = rest.slice(0, layers);
          const [x, a] = saved.slice(-2) as [tf.Tensor2D, tf.Tensor];
          const { u, dO } = cotangentOf(dl);
          const extra = { a, u, ...(dO === undefined ? {} : { dO }) };
          // The first half's backward pass takes u′ (and dO′) in; any further half (the op's value
          // differentiated by more than one inner step) runs its own.
          const parts = halves.map((h, i) => kernels.secondOrderBackward(spec, thetaSaved, activations, h.cotangents, x, h.v, h.tangents, i === 0 ? extra : undefined));
          halves.forEach((h) => disposeTangents(h.tangents));
          const total = parts.length === 1 ? parts[0]! : tf.addN(parts);
          return [final(total, thetaSaved, dl, ...halves.map((h) => h.v)), ...unreachable(saved.slice(-2))];
        },
      };
    });

    output = logProb(theta, x, a);
    return output;
  };

  return (theta: tf.Tensor): tf.Tensor1D => {
    checkBlocks(withOutput ? 'fusedMlpLogProbAndOutput' : 'fusedMlpLogProb', theta, [total], x.shape[0]);
    return application(theta) as tf.Tensor1D;
  };
};

/** `fusedMlpLogProbPacked` on the parameters as separate tensors, in the op's order (spec.ts). */
export const fusedMlpLogProb = (spec: MlpSpec, kernels: MlpKernels, x: tf.Tensor2D, a: tf.Tensor) => {
  const count = parameterShapes(spec).length;
  const packed = fusedMlpLogProbPacked(spec, kernels, x, a);
  return (params: readonly tf.Tensor[]): tf.Tensor1D => {
    if (params.length !== count) throw new RangeError(`fusedMlpLogProb: ${count} parameters expected, got ${params.length}`);
    return packed(packParams(params));
  };
};
