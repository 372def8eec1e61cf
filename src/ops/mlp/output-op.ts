/**
 * The MLP's output O(θ) (a Gaussian policy's mean, a categorical one's logits) as one op with a
 * first-order gradient from the fused kernels: what a divergence between two parameter settings (ProMP's
 * KL penalty) differentiates. Its second derivative is refused (FusedOrderError), never approximated:
 * everything that needs it (TRPO's Hessian-vector products) takes the general path.
 */
import * as tf from '@tensorflow/tfjs';
import type { MlpKernels } from './kernels.ts';
import { checkBlocks, FusedOrderError, packParams } from './log-prob-op.ts';
import { layerCount, parameterShapes, parameterSizes, type MlpSpec } from './spec.ts';

const custom = (
  body: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] },
): ((...inputs: tf.Tensor[]) => tf.Tensor) => {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => body(args.slice(0, -1) as tf.Tensor[], args[args.length - 1] as tf.GradSaveFunc));
  return (...inputs) => op(...inputs);
};

/**
 * O [rows, out] for observations x [rows, in], from the parameters as one flat θ in the op's order
 * (spec.ts): all of them, or the layers' alone (a prefix); or from K such rows ([K, P]), block k
 * applying to its share of the rows (kernels.ts). A log-std in θ gets a zero gradient: the
 * output does not depend on it.
 */
export const fusedMlpOutputPacked = (spec: MlpSpec, kernels: MlpKernels, x: tf.Tensor2D) => {
  const layers = layerCount(spec);
  const layerSize = parameterShapes(spec)
    .slice(0, 2 * layers)
    .reduce((t, s) => t + s.reduce((a, b) => a * b, 1), 0);
  const { total } = parameterSizes(spec);

  const outputVjp = custom((inputs) => {
    const activations = inputs.slice(1, 1 + layers);
    return {
      value: kernels.outputVjp(spec, inputs[0] as tf.Tensor1D, activations, inputs[1 + layers] as tf.Tensor2D, inputs[2 + layers] as tf.Tensor2D),
      gradFunc: () => {
        throw new FusedOrderError(
          "a second derivative through the fused MLP output (a divergence's) was requested; it provides order 1 — use the tfjs policy path (engine \"tfjs\")",
        );
      },
    };
  });

  const output = custom((inputs, save) => {
    const [theta, xs] = inputs as [tf.Tensor1D, tf.Tensor2D];
    const activations = kernels.forward(spec, theta, xs);
    save([theta, ...activations, xs]);
    return {
      value: activations.at(-1)!,
      gradFunc: (dO, saved) => {
        const [th, ...rest] = saved;
        const acts = rest.slice(0, layers);
        const flat = outputVjp(th!, ...acts, rest[layers]!, dO);
        // A log-std in θ (the last entries of each row) gets zeros.
        const entries = th!.shape.at(-1)!;
        const grad = entries === layerSize ? flat : tf.concat([flat, tf.zeros([...th!.shape.slice(0, -1), entries - layerSize])], th!.rank - 1);
        return [grad, tf.zerosLike(rest[layers]!)];
      },
    };
  });

  return (theta: tf.Tensor): tf.Tensor2D => {
    checkBlocks('fusedMlpOutput', theta, [layerSize, total], x.shape[0]);
    return output(theta, x) as tf.Tensor2D;
  };
};

/** `fusedMlpOutputPacked` on the layer parameters W0, b0, … as separate tensors (no log-std). */
export const fusedMlpOutput = (spec: MlpSpec, kernels: MlpKernels, x: tf.Tensor2D) => {
  const layers = layerCount(spec);
  const packed = fusedMlpOutputPacked(spec, kernels, x);
  return (layerParams: readonly tf.Tensor[]): tf.Tensor2D => {
    if (layerParams.length !== 2 * layers) throw new RangeError(`fusedMlpOutput: ${2 * layers} layer parameters expected, got ${layerParams.length}`);
    return packed(packParams(layerParams));
  };
};
