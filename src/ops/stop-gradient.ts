/**
 * Stop-gradient (⊥ in the design notes): tfjs has none, and the score-function surrogates and
 * MagicBox need a value that the optimiser sees but differentiation does not, at every order.
 */
import * as tf from '@tensorflow/tfjs';
import { customUnary, type UnaryOp } from './custom-gradient.ts';

/**
 * ⊥x: evaluates to `x`; its derivative is zero at every order. (Returning `x` itself from the custom
 * op would make one tensor both input and output of a tape node, so the value is a copy.)
 */
export const stopGradient = customUnary((x) => ({
  value: tf.clone(x),
  // zerosLike(dy) has a zero gradient of its own, so orders ≥ 2 are zero as well.
  gradFunc: (dy) => tf.zerosLike(dy),
}));

/**
 * `detached(f)(x)` = ⊥f(x): `f` runs off the tape, so its own gradient is never built. For constants
 * derived from a tensor, such as a stabilising shift, where `stopGradient(f(x))` would still put f on
 * the tape and fail at order 2 (tf.max's gradient uses tf.equal, which has no gradient).
 */
export const detached = (f: UnaryOp): UnaryOp =>
  customUnary((x) => {
    const shape = x.shape;
    const value = f(x);
    return { value: value === x ? tf.clone(x) : value, gradFunc: () => tf.zeros(shape) };
  });
