/**
 * Returns and advantages of sampled trajectories, in plain JavaScript: discounted returns, GAE(γ, λ)
 * and per-task normalisation (rllab / ProMP). Every array is row-major [n × horizon]; `mask` is 1 on
 * each trajectory's steps (a prefix of its row) and 0 on the padding after it, and every output is 0
 * on the padding. Sums run in float64.
 */
import { fitLinearBaseline } from './baseline.ts';

const check = (what: string, array: ArrayLike<number>, n: number, horizon: number): void => {
  if (array.length !== n * horizon) {
    throw new RangeError(`${what} has ${array.length} entries, expected n × horizon = ${n} × ${horizon}`);
  }
};

/** R_t = Σ_{t' ≥ t} γ^{t'−t} r_{t'} over the valid steps of each trajectory. */
export const discountedReturns = (
  rewards: Float32Array,
  mask: Float32Array,
  n: number,
  horizon: number,
  gamma: number,
): Float32Array => {
  check('rewards', rewards, n, horizon);
  check('mask', mask, n, horizon);
  const out = new Float32Array(n * horizon);
  for (let i = 0; i < n; i++) {
    let running = 0;
    for (let t = horizon - 1; t >= 0; t--) {
      const k = i * horizon + t;
      const m = mask[k]!;
      running = m * rewards[k]! + gamma * running;
      out[k] = m * running;
    }
  }
  return out;
};

/**
 * Generalised advantage estimation: δ_t = r_t + γ·V_{t+1} − V_t, A_t = Σ_{l ≥ 0} (γλ)^l δ_{t+l}, with
 * V = 0 after a trajectory's last valid step (and after the horizon), as rllab does. λ = 1 gives
 * R_t − V_t; λ = 0 the one-step TD error.
 */
export const gae = (
  rewards: Float32Array,
  values: Float32Array,
  mask: Float32Array,
  n: number,
  horizon: number,
  gamma: number,
  lambda: number,
): Float32Array => {
  check('rewards', rewards, n, horizon);
  check('values', values, n, horizon);
  check('mask', mask, n, horizon);
  const out = new Float32Array(n * horizon);
  for (let i = 0; i < n; i++) {
    let running = 0;
    let nextValue = 0;
    for (let t = horizon - 1; t >= 0; t--) {
      const k = i * horizon + t;
      const m = mask[k]!;
      if (m === 0) {
        running = 0;
        nextValue = 0;
        continue;
      }
      const v = values[k]!;
      const delta = rewards[k]! + gamma * nextValue - v;
      running = delta + gamma * lambda * running;
      out[k] = m * running;
      nextValue = v;
    }
  }
  return out;
};

/**
 * (A − mean) / (std + 1e-8), mean and (population) std over the valid steps (every step when `mask`
 * is absent); padding stays 0. Returns a new array.
 */
export const normalize = (advantages: Float32Array, mask?: Float32Array, epsilon = 1e-8): Float32Array => {
  if (mask !== undefined && mask.length !== advantages.length) {
    throw new RangeError(`mask has ${mask.length} entries, advantages ${advantages.length}`);
  }
  const valid = (k: number): boolean => mask === undefined || mask[k] !== 0;
  let count = 0;
  let sum = 0;
  for (let k = 0; k < advantages.length; k++) {
    if (valid(k)) {
      count++;
      sum += advantages[k]!;
    }
  }
  const out = new Float32Array(advantages.length);
  if (count === 0) return out;
  const mean = sum / count;
  let squares = 0;
  for (let k = 0; k < advantages.length; k++) if (valid(k)) squares += (advantages[k]! - mean) ** 2;
  const scale = 1 / (Math.sqrt(squares / count) + epsilon);
  for (let k = 0; k < advantages.length; k++) if (valid(k)) out[k] = (advantages[k]! - mean) * scale;
  return out;
};

/** What one task's trajectories give for the surrogate: returns, baseline values and advantages. */
export interface TaskAdvantages {
  readonly returns: Float32Array;
  readonly values: Float32Array;
  readonly advantages: Float32Array;
}

/**
 * The ProMP recipe for one task: discounted returns, the linear feature baseline refit on them,
 * GAE(γ, λ) with its values, then (by default) advantages normalised over the task's valid steps.
 * observations [n × horizon × observationDim]; rewards and mask [n × horizon].
 */
export const taskAdvantages = (opts: {
  readonly observations: Float32Array;
  readonly rewards: Float32Array;
  readonly mask: Float32Array;
  readonly n: number;
  readonly horizon: number;
  readonly observationDim: number;
  readonly gamma: number;
  readonly lambda: number;
  readonly normalize?: boolean;
}): TaskAdvantages => {
  const { observations, rewards, mask, n, horizon, observationDim, gamma, lambda } = opts;
  const returns = discountedReturns(rewards, mask, n, horizon, gamma);
  const values = fitLinearBaseline(observations, returns, mask, n, horizon, observationDim).predict(
    observations,
    n,
    horizon,
    mask,
  );
  const raw = gae(rewards, values, mask, n, horizon, gamma, lambda);
  return { returns, values, advantages: opts.normalize === false ? raw : normalize(raw, mask) };
};

/**
 * The released DiceSampleProcessor's credit for one task: adjusted rewards γ^t·r_t − b(t), where b is
 * its LinearTimeBaseline — least squares (ridge 1e-5, ×10 on failure) of γ^t·r_t on the features
 * [t/100, (t/100)², (t/100)³, 1] over the task's real steps (the linear feature baseline without its
 * observation features) — then normalised over those steps. rewards and mask [n × horizon].
 */
export const adjustedRewards = (rewards: Float32Array, mask: Float32Array, n: number, horizon: number, gamma: number): Float32Array => {
  const discounted = new Float32Array(n * horizon);
  for (let i = 0; i < n; i++) for (let t = 0; t < horizon; t++) discounted[i * horizon + t] = mask[i * horizon + t] === 0 ? 0 : gamma ** t * rewards[i * horizon + t]!;
  const none = new Float32Array(0);
  const b = fitLinearBaseline(none, discounted, mask, n, horizon, 0).predict(none, n, horizon, mask);
  const adjusted = new Float32Array(n * horizon);
  for (let k = 0; k < n * horizon; k++) adjusted[k] = mask[k] === 0 ? 0 : discounted[k]! - b[k]!;
  return normalize(adjusted, mask);
};
