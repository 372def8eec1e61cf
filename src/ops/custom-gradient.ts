/**
 * Defines a unary op by its value and its derivative so that the derivative is differentiable too.
 * tfjs's own gradients for exp, tanh, sigmoid, … reuse the op's *output*, which is not connected to
 * the input on the tape, so their second derivatives are wrong or throw; an op built here saves its
 * *input* and expresses the gradient through other ops built here, so every order is right.
 */
import * as tf from '@tensorflow/tfjs';

/** A tensor-to-tensor function, the shape of every op in this folder. */
export type UnaryOp = (x: tf.Tensor) => tf.Tensor;

/** What the body of a unary custom op returns: its value, and the vector–Jacobian product. */
export interface UnaryCustomResult {
  readonly value: tf.Tensor;
  readonly gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor;
}

/**
 * `tf.customGrad` for one input, with the types its callback really has (tfjs types the callback's
 * parameters as one `Array<Tensor | GradSaveFunc>`, which no annotated callback satisfies).
 *
 * The body runs with the tape off: ops inside it cost nothing in backprop and need no gradient of
 * their own. Only what `save` keeps is reachable in `gradFunc` (other forward tensors are disposed
 * by then), and higher-order derivatives flow through the saved tensors only.
 */
export const customUnary = (body: (x: tf.Tensor, save: tf.GradSaveFunc) => UnaryCustomResult): UnaryOp => {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, save] = args;
    if (!(x instanceof tf.Tensor) || typeof save !== 'function') {
      throw new TypeError('customUnary: expected exactly one tensor argument');
    }
    const { value, gradFunc } = body(x, save);
    return { value, gradFunc };
  });
  return (x) => op(x);
};

/** The one tensor a unary op saved. */
const savedInput = (saved: readonly tf.Tensor[]): tf.Tensor => {
  const [x] = saved;
  if (x === undefined) throw new Error('custom gradient called without its saved input');
  return x;
};

/**
 * The elementwise op with value `forward(x)` and gradient `dy · derivative(x)`. `derivative` must
 * itself be built from safe ops (ones from this folder, or built-ins whose gradients use only their
 * inputs): it is what the next order differentiates.
 */
export const withDerivative = (forward: UnaryOp, derivative: UnaryOp): UnaryOp =>
  customUnary((x, save) => {
    save([x]);
    return {
      value: forward(x),
      gradFunc: (dy, saved) => tf.mul(dy, derivative(savedInput(saved))),
    };
  });
