/**
 * The MLP's output O(θ) (a Gaussian policy's mean, a categorical one's logits) as one op with a
 * first-order gradient from the fused kernels: what a divergence between two parameter settings (ProMP's
 * KL penalty) differentiates. Its second derivative is refused (FusedOrderError), never approximated:
 * everything that needs it (TRPO's Hessian-vector products) takes the general path.
 */
import * as tf from '@tensorflow/tfjs';
import type { MlpKernels } from './kernels.ts';
import { FusedOrderError } from './log-prob-op.ts';
import { layerCount, parameterShapes, type MlpSpec } from './spec.ts';

const custom = (
  body: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] },
): ((...inputs: tf.Tensor[]) => tf.Tensor) => {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => body(args.slice(0, -1) as tf.Tensor[], args[args.length - 1] as tf.GradSaveFunc));
  return (...inputs) => op(...inputs);
};

/** O [rows, out] for observations x [rows, in], from the layer parameters W0, b0, … (no log-std). */
export const fusedMlpOutput = (spec: MlpSpec, kernels: MlpKernels, x: tf.Tensor2D) => {
  const layers = layerCount(spec);
  const shapes = parameterShapes(spec).slice(0, 2 * layers);
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));

  const outputVjp = custom((inputs) => {
    const params = inputs.slice(0, 2 * layers);
    const activations = inputs.slice(2 * layers, 3 * layers);
    return {
      value: kernels.outputVjp(spec, params, activations, inputs[3 * layers] as tf.Tensor2D, inputs[3 * layers + 1] as tf.Tensor2D),
      gradFunc: () => {
        throw new FusedOrderError(
          "a second derivative through the fused MLP output (a divergence's) was requested; it provides order 1 — use the tfjs policy path (engine \"tfjs\")",
        );
      },
    };
  });

  const output = custom((inputs, save) => {
    const activations = kernels.forward(spec, inputs.slice(0, 2 * layers), x);
    save([...inputs, ...activations]);
    return {
      value: activations.at(-1)!,
      gradFunc: (dO, saved) => {
        const params = saved.slice(0, 2 * layers);
        const xs = saved[2 * layers]!;
        const acts = saved.slice(2 * layers + 1);
        const flat = outputVjp(...params, ...acts, xs, dO);
        return [...tf.split(flat, sizes).map((part, k) => tf.reshape(part, shapes[k]!)), tf.zerosLike(xs)];
      },
    };
  });

  return (layerParams: readonly tf.Tensor[]): tf.Tensor2D => {
    if (layerParams.length !== 2 * layers) throw new RangeError(`fusedMlpOutput: ${2 * layers} layer parameters expected, got ${layerParams.length}`);
    return output(...layerParams, x) as tf.Tensor2D;
  };
};
