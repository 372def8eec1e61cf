/**
 * Moves per-step quantities along time the way an influence set says: `forward` sums a source's
 * per-step values into each later step it influences (Σ_{d∈D} x_{t−d}: how log-probabilities reach a
 * cost), `backward` sums a target's values back onto each step that influences them (Σ_{d∈D} y_{t+d}:
 * how rewards-to-go reach an action). Both are linear, so their derivatives of every order are exact.
 *
 * The common influence sets get the cheap forms: {0} is the identity, {0, 1, …} a cumulative sum,
 * {1, 2, …} an exclusive one; any other set, or a decay λ^d, is a product with a T×T matrix.
 */
import * as tf from '@tensorflow/tfjs';

export interface TimeOperator {
  /** [B, T] → [B, T]: out_t = Σ_d w(d)·x_{t−d}. */
  readonly forward: (x: tf.Tensor) => tf.Tensor;
  /** [B, T] → [B, T]: out_t = Σ_d w(d)·y_{t+d} (the transpose of forward). */
  readonly backward: (y: tf.Tensor) => tf.Tensor;
}

const identity: TimeOperator = { forward: (x) => x, backward: (y) => y };
const nothing: TimeOperator = { forward: (x) => tf.zerosLike(x), backward: (y) => tf.zerosLike(y) };

/** The T×T matrix M[t′][t] = w(t − t′) for t ≥ t′, so that forward(x) = x·M. */
const weightMatrix = (lags: readonly boolean[], decay: number): number[][] => {
  const T = lags.length;
  return Array.from({ length: T }, (_, tp) =>
    Array.from({ length: T }, (_, t) => (t >= tp && lags[t - tp] === true ? decay ** (t - tp) : 0)),
  );
};

/** The operator for influence offsets `lags` (lags[d]: offset d is in the set), weighting offset d by decay^d. */
export const timeOperator = (lags: readonly boolean[], decay = 1): TimeOperator => {
  const first = lags.indexOf(true);
  if (first < 0) return nothing;
  const onlyFirst = lags.every((x, d) => x === (d === first));
  if (first === 0 && onlyFirst) return identity;
  const suffixFromFirst = lags.every((x, d) => x === d >= first);
  if (decay === 1 && suffixFromFirst && first <= 1) {
    const exclusive = first === 1;
    return {
      forward: (x) => tf.cumsum(x, 1, exclusive, false),
      backward: (y) => tf.cumsum(y, 1, exclusive, true),
    };
  }
  const m = weightMatrix(lags, decay);
  return {
    forward: (x) => tf.matMul(x, tf.tensor2d(m)),
    backward: (y) => tf.matMul(y, tf.tensor2d(m), false, true),
  };
};
