/**
 * The linear feature baseline of rllab / ProMP, refit on each task's trajectories: the value of step
 * t is a linear function of φ(s_t, t) = [clip(s, −10, 10), clip(s, −10, 10)², t/100, (t/100)²,
 * (t/100)³, 1], fitted by ridge-regularised least squares to the discounted returns. The normal
 * equations are tiny ((2d + 4)², d the observation size), so they are built and solved in float64
 * JavaScript (Cholesky) rather than as tensors. Arrays are row-major [n × horizon] (× observationDim).
 */

/** A fitted baseline. */
export interface LinearBaseline {
  readonly observationDim: number;
  /** The 2·observationDim + 4 weights of the features, in the order above. */
  readonly coefficients: Float64Array;
  /** The ridge coefficient that gave a finite solution (0 when none did and the baseline predicts 0). */
  readonly regularisation: number;
  /**
   * Values for every step of n trajectories of `horizon` steps (observations [n × horizon ×
   * observationDim]); [n × horizon]. Steps where `mask` (if given) is 0 get 0.
   */
  readonly predict: (observations: Float32Array, n: number, horizon: number, mask?: Float32Array) => Float32Array;
}

export interface LinearBaselineOptions {
  /** Initial ridge coefficient; default 1e-5. */
  readonly regularisation?: number;
  /** Solves tried, the coefficient ×10 after each one that is not finite; default 5 (rllab). */
  readonly attempts?: number;
}

/** The number of features for observations of size d. */
export const featureCount = (observationDim: number): number => 2 * observationDim + 4;

/** φ(s, t) into `out` (length featureCount(d)). */
const features = (observations: ArrayLike<number>, offset: number, d: number, t: number, out: Float64Array): void => {
  for (let j = 0; j < d; j++) {
    const o = Math.min(10, Math.max(-10, observations[offset + j]!));
    out[j] = o;
    out[d + j] = o * o;
  }
  const s = t / 100;
  out[2 * d] = s;
  out[2 * d + 1] = s * s;
  out[2 * d + 2] = s * s * s;
  out[2 * d + 3] = 1;
};

const checkSizes = (what: string, array: ArrayLike<number>, expected: number): void => {
  if (array.length !== expected) throw new RangeError(`${what} has ${array.length} entries, expected ${expected}`);
};

/**
 * Solves (A + reg·I) x = c for symmetric positive semi-definite A (k × k, row-major) by Cholesky;
 * undefined when a pivot is not positive or the result is not finite.
 */
export const solveRidge = (a: Float64Array, c: Float64Array, k: number, reg: number): Float64Array | undefined => {
  const l = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * k + j]! + (i === j ? reg : 0);
      for (let m = 0; m < j; m++) s -= l[i * k + m]! * l[j * k + m]!;
      if (i === j) {
        if (!(s > 0)) return undefined;
        l[i * k + i] = Math.sqrt(s);
      } else {
        l[i * k + j] = s / l[j * k + j]!;
      }
    }
  }
  const y = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    let s = c[i]!;
    for (let m = 0; m < i; m++) s -= l[i * k + m]! * y[m]!;
    y[i] = s / l[i * k + i]!;
  }
  const x = new Float64Array(k);
  for (let i = k - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let m = i + 1; m < k; m++) s -= l[m * k + i]! * x[m]!;
    x[i] = s / l[i * k + i]!;
  }
  return x.every(Number.isFinite) ? x : undefined;
};

/**
 * Fits the baseline to `returns` over the valid steps (mask ≠ 0; padding never enters the fit).
 * observations [n × horizon × observationDim], returns and mask [n × horizon]; t is the step index
 * within each trajectory. The ridge coefficient starts at 1e-5 and is multiplied by 10 after each
 * solve that fails (not positive definite or not finite), for at most 5 solves; if all fail the
 * baseline predicts 0 (rllab keeps its previous coefficients, which a per-task refit does not have).
 */
export const fitLinearBaseline = (
  observations: Float32Array,
  returns: Float32Array,
  mask: Float32Array,
  n: number,
  horizon: number,
  observationDim: number,
  options: LinearBaselineOptions = {},
): LinearBaseline => {
  const d = observationDim;
  checkSizes('observations', observations, n * horizon * d);
  checkSizes('returns', returns, n * horizon);
  checkSizes('mask', mask, n * horizon);
  const k = featureCount(d);
  const a = new Float64Array(k * k);
  const c = new Float64Array(k);
  const phi = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < horizon; t++) {
      const step = i * horizon + t;
      if (mask[step] === 0) continue;
      features(observations, step * d, d, t, phi);
      const r = returns[step]!;
      for (let p = 0; p < k; p++) {
        const fp = phi[p]!;
        c[p] = c[p]! + fp * r;
        for (let q = 0; q <= p; q++) a[p * k + q] = a[p * k + q]! + fp * phi[q]!;
      }
    }
  }
  for (let p = 0; p < k; p++) for (let q = 0; q < p; q++) a[q * k + p] = a[p * k + q]!;

  let reg = options.regularisation ?? 1e-5;
  const attempts = options.attempts ?? 5;
  let coefficients: Float64Array | undefined;
  for (let attempt = 0; attempt < attempts && coefficients === undefined; attempt++) {
    coefficients = solveRidge(a, c, k, reg);
    if (coefficients === undefined) reg *= 10;
  }
  return linearBaseline(d, coefficients ?? new Float64Array(k), coefficients === undefined ? 0 : reg);
};

/** A baseline with given coefficients (e.g. from a checkpoint). */
export const linearBaseline = (observationDim: number, coefficients: Float64Array, regularisation = 0): LinearBaseline => {
  const d = observationDim;
  const k = featureCount(d);
  checkSizes('coefficients', coefficients, k);
  return {
    observationDim: d,
    coefficients,
    regularisation,
    predict: (observations, n, horizon, mask) => {
      checkSizes('observations', observations, n * horizon * d);
      if (mask !== undefined) checkSizes('mask', mask, n * horizon);
      const out = new Float32Array(n * horizon);
      const phi = new Float64Array(k);
      for (let i = 0; i < n; i++) {
        for (let t = 0; t < horizon; t++) {
          const step = i * horizon + t;
          if (mask !== undefined && mask[step] === 0) continue;
          features(observations, step * d, d, t, phi);
          let v = 0;
          for (let p = 0; p < k; p++) v += coefficients[p]! * phi[p]!;
          out[step] = v;
        }
      }
      return out;
    },
  };
};
