/**
 * An independent float64 model of one meta-training iteration for the two-parameter linear Gaussian
 * policy a ~ N(w·x + b, σ²) (fixed σ), written from the mathematics alone — closed-form scores and
 * Hessians, no tfjs, no compiler: what the trainer's numbers are pinned against.
 *
 *   ℓ(θ; x, a) = −(a − μ)²/(2σ²) − log σ − ½ log 2π,  μ = w·x + b,  θ = (w, b), φ = (x, 1)
 *   ∇ℓ = (a − μ)/σ²·φ,   ∇²ℓ = −φφᵀ/σ²
 *
 * Per task: the inner step θ′ = θ + α∇L_in(θ) with its Jacobian I + α∇²L_in(θ); the outer objective and
 * its gradient at θ′ on the post-update data; the meta-gradient by the chain rule (plus E-MAML's score
 * term). The data (trajectories) and the linear feature baseline's fit (src/meta/baseline.ts, tested on
 * its own) are the only things taken from the library.
 */
import { fitLinearBaseline } from '../../src/meta/baseline.ts';
import type { Trajectories } from '../../src/meta/sampler.ts';

export type Vec = [number, number];
export type Mat = [[number, number], [number, number]];

export const zeroVec = (): Vec => [0, 0];
export const zeroMat = (): Mat => [
  [0, 0],
  [0, 0],
];
const addTo = (m: Mat, s: number, u: Vec, v: Vec): void => {
  for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) m[i]![j]! += s * u[i]! * v[j]!;
};
export const matVec = (m: Mat, v: Vec): Vec => [m[0][0] * v[0] + m[0][1] * v[1], m[1][0] * v[0] + m[1][1] * v[1]];
export const transposeVec = (m: Mat, v: Vec): Vec => [m[0][0] * v[0] + m[1][0] * v[1], m[0][1] * v[0] + m[1][1] * v[1]];
export const solve2 = (m: Mat, v: Vec): Vec => {
  const det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
  return [(m[1][1] * v[0] - m[0][1] * v[1]) / det, (m[0][0] * v[1] - m[1][0] * v[0]) / det];
};

/** One task's trajectories as float64 rows [n][T] (the point-1d observation is one number). */
export interface Rows {
  readonly n: number;
  readonly T: number;
  readonly x: number[][];
  readonly a: number[][];
  readonly r: number[][];
  /** The behaviour log-probabilities the sampler recorded. */
  readonly logp: number[][];
  readonly raw: Trajectories;
}

export const rowsOf = (tr: Trajectories): Rows => {
  if (tr.observationDim !== 1 || tr.actionDim !== 1) throw new Error('the model is for 1-D observations and actions');
  if (Array.from(tr.mask).some((m) => m !== 1)) throw new Error('the model assumes no padding (point-1d never ends early)');
  const grid = (xs: Float32Array) => Array.from({ length: tr.n }, (_, i) => Array.from(xs.subarray(i * tr.horizon, (i + 1) * tr.horizon)));
  return { n: tr.n, T: tr.horizon, x: grid(tr.observations), a: grid(tr.actions), r: grid(tr.rewards), logp: grid(tr.logProbs), raw: tr };
};

export interface Policy1d {
  readonly sigma: number;
}

const mean = (th: Vec, x: number) => th[0] * x + th[1];
export const logPi = (p: Policy1d, th: Vec, x: number, a: number): number =>
  -((a - mean(th, x)) ** 2) / (2 * p.sigma ** 2) - Math.log(p.sigma) - 0.5 * Math.log(2 * Math.PI);
export const score = (p: Policy1d, th: Vec, x: number, a: number): Vec => {
  const k = (a - mean(th, x)) / p.sigma ** 2;
  return [k * x, k];
};
const curvature = (p: Policy1d, x: number): Mat => [
  [-(x * x) / p.sigma ** 2, -x / p.sigma ** 2],
  [-x / p.sigma ** 2, -1 / p.sigma ** 2],
];

/** What each step's score is weighted by: normalised GAE advantages, or the DiCE family's costs and baseline. */
export type Credit =
  | { readonly kind: 'advantages'; readonly A: number[][] }
  | { readonly kind: 'costs'; readonly c: number[][]; readonly b: number[][] }
  /** The released DiCE credit: adjusted rewards as costs (no baseline term), and the advantages. */
  | { readonly kind: 'adjusted'; readonly c: number[][]; readonly b: number[][]; readonly A: number[][] };

/** x solving (M + reg·I) x = y by Gaussian elimination with partial pivoting (float64). */
const solveDamped = (m: number[][], y: number[], reg: number): number[] => {
  const k = y.length;
  const a = m.map((row, i) => [...row.map((v, j) => v + (i === j ? reg : 0)), y[i]!]);
  for (let c = 0; c < k; c++) {
    let best = c;
    for (let r = c + 1; r < k; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[best]![c]!)) best = r;
    [a[c], a[best]] = [a[best]!, a[c]!];
    for (let r = c + 1; r < k; r++) {
      const f = a[r]![c]! / a[c]![c]!;
      for (let q = c; q <= k; q++) a[r]![q]! -= f * a[c]![q]!;
    }
  }
  const x = new Array<number>(k).fill(0);
  for (let r = k - 1; r >= 0; r--) {
    let s = a[r]![k]!;
    for (let q = r + 1; q < k; q++) s -= a[r]![q]! * x[q]!;
    x[r] = s / a[r]![r]!;
  }
  return x;
};

/**
 * The released DiceSampleProcessor in float64: γᵗrₜ minus its LinearTimeBaseline (ridge 1e-5 least
 * squares on [t/100, (t/100)², (t/100)³, 1]), normalised over the task's N·T steps.
 */
export const releasedAdjustedRewards = (rows: Rows, gamma: number): number[][] => {
  const y = rows.r.map((row) => row.map((v, t) => gamma ** t * v));
  const phi = (t: number) => [t / 100, (t / 100) ** 2, (t / 100) ** 3, 1];
  const gram = [0, 1, 2, 3].map(() => [0, 0, 0, 0]);
  const rhs = [0, 0, 0, 0];
  y.forEach((row) =>
    row.forEach((v, t) => {
      const f = phi(t);
      for (let p = 0; p < 4; p++) {
        rhs[p]! += f[p]! * v;
        for (let q = 0; q < 4; q++) gram[p]![q]! += f[p]! * f[q]!;
      }
    }),
  );
  const w = solveDamped(gram, rhs, 1e-5);
  const adjusted = y.map((row) => row.map((v, t) => v - phi(t).reduce((s, f, p) => s + f * w[p]!, 0)));
  const flat = adjusted.flat();
  const mu = flat.reduce((s, v) => s + v, 0) / flat.length;
  const std = Math.sqrt(flat.reduce((s, v) => s + (v - mu) ** 2, 0) / flat.length);
  return adjusted.map((row) => row.map((v) => (v - mu) / (std + 1e-8)));
};

/** The recipe of levelData (γ-discounted returns, fitted V, A = R − V with λ = 1), in float64. */
export const creditOf = (rows: Rows, kind: Credit['kind'], gamma: number): Credit => {
  const { n, T } = rows;
  const R = rows.r.map((row) => {
    const out = new Array<number>(T).fill(0);
    let running = 0;
    for (let t = T - 1; t >= 0; t--) out[t] = running = row[t]! + gamma * running;
    return out;
  });
  const tr = rows.raw;
  const V = fitLinearBaseline(tr.observations, Float32Array.from(R.flat()), tr.mask, n, T, 1).predict(tr.observations, n, T, tr.mask);
  const A = R.map((row, i) => row.map((v, t) => v - V[i * T + t]!));
  const flat = A.flat();
  const mu = flat.reduce((s, v) => s + v, 0) / flat.length;
  const std = Math.sqrt(flat.reduce((s, v) => s + (v - mu) ** 2, 0) / flat.length);
  if (kind === 'advantages') return { kind, A: A.map((row) => row.map((v) => (v - mu) / (std + 1e-8))) };
  if (kind === 'adjusted') {
    const c = releasedAdjustedRewards(rows, gamma);
    return { kind, c, b: c.map((row) => row.map(() => 0)), A: A.map((row) => row.map((v) => (v - mu) / (std + 1e-8))) };
  }
  const scale = std + 1e-8;
  return {
    kind,
    c: rows.r.map((row) => row.map((v, t) => (gamma ** t * v) / scale)),
    b: rows.r.map((row, i) => row.map((_, t) => (gamma ** t * V[i * T + t]!) / scale)),
  };
};

/** Each trajectory's weight: 1 / (the task's steps). */
const weightOf = (rows: Rows) => 1 / (rows.n * rows.T);

export type Surrogate = 'pgt' | 'lvc-ratio' | 'clipped-ratio' | 'dice' | 'dice-baseline' | 'tmaml';

/**
 * Value, gradient and Hessian at θ of a surrogate on one task's data (mean over steps). The ratio
 * forms are measured against the recorded behaviour log-probabilities (π_θ/π_behaviour); the DiCE
 * forms are on-policy (□ = 1) and need costs.
 */
export const surrogateAt = (p: Policy1d, kind: Surrogate, th: Vec, rows: Rows, credit: Credit, clip = 0.3): { value: number; g: Vec; h: Mat } => {
  const w = weightOf(rows);
  let value = 0;
  const g = zeroVec();
  const h = zeroMat();
  for (let i = 0; i < rows.n; i++) {
    const xs = rows.x[i]!;
    const as = rows.a[i]!;
    const scores = xs.map((x, t) => score(p, th, x, as[t]!));
    if (kind === 'pgt' || kind === 'lvc-ratio' || kind === 'clipped-ratio') {
      if (credit.kind === 'costs') throw new Error(`${kind} uses advantages`);
      for (let t = 0; t < rows.T; t++) {
        const A = credit.A[i]![t]!;
        const s = scores[t]!;
        if (kind === 'pgt') {
          value += w * logPi(p, th, xs[t]!, as[t]!) * A;
          g[0] += w * A * s[0];
          g[1] += w * A * s[1];
          const c = curvature(p, xs[t]!);
          for (let r = 0; r < 2; r++) for (let q = 0; q < 2; q++) h[r]![q]! += w * A * c[r]![q]!;
          continue;
        }
        const rho = Math.exp(logPi(p, th, xs[t]!, as[t]!) - rows.logp[i]![t]!);
        const bounded = Math.min(Math.max(rho, 1 - clip), 1 + clip);
        const clipped = kind === 'clipped-ratio' && bounded * A < rho * A;
        value += w * (clipped ? bounded * A : rho * A);
        if (clipped) continue;
        g[0] += w * rho * A * s[0];
        g[1] += w * rho * A * s[1];
        addTo(h, w * rho * A, s, s);
        const c = curvature(p, xs[t]!);
        for (let r = 0; r < 2; r++) for (let q = 0; q < 2; q++) h[r]![q]! += w * rho * A * c[r]![q]!;
      }
      continue;
    }
    if (credit.kind === 'advantages') throw new Error(`${kind} uses costs`);
    const c = credit.c[i]!;
    const b = credit.b[i]!;
    // S_t = Σ_{t′≤t} ℓ_t′: its gradient and (constant) Hessian.
    const S: Vec[] = [];
    const S2: Mat[] = [];
    for (let t = 0; t < rows.T; t++) {
      const prev = t === 0 ? zeroVec() : S[t - 1]!;
      S.push([prev[0] + scores[t]![0], prev[1] + scores[t]![1]]);
      const cur = curvature(p, xs[t]!);
      const prevH = t === 0 ? zeroMat() : S2[t - 1]!;
      S2.push([
        [prevH[0][0] + cur[0][0], prevH[0][1] + cur[0][1]],
        [prevH[1][0] + cur[1][0], prevH[1][1] + cur[1][1]],
      ]);
    }
    for (let t = 0; t < rows.T; t++) {
      // DiCE: □(S_t)·c_t → value c_t, gradient c_t∇S_t, Hessian c_t(∇S_t∇S_tᵀ + ∇²S_t).
      value += w * c[t]!;
      g[0] += w * c[t]! * S[t]![0];
      g[1] += w * c[t]! * S[t]![1];
      addTo(h, w * c[t]!, S[t]!, S[t]!);
      for (let r = 0; r < 2; r++) for (let q = 0; q < 2; q++) h[r]![q]! += w * c[t]! * S2[t]![r]![q]!;
      // Plain DiCE has no control variate.
      if (kind === 'dice') continue;
      const s = scores[t]!;
      const past = t === 0 ? zeroVec() : S[t - 1]!;
      // The control variate's Hessian: −b_t(∇ℓ_t∇S′ᵀ + ∇S′∇ℓ_tᵀ), S′ = S_{t−1}; DiCE + baseline's also
      // −b_t(∇ℓ_t∇ℓ_tᵀ + ∇²ℓ_t) and the first-order −b_t∇ℓ_t.
      addTo(h, -w * b[t]!, s, past);
      addTo(h, -w * b[t]!, past, s);
      if (kind === 'dice-baseline') {
        g[0] -= w * b[t]! * s[0];
        g[1] -= w * b[t]! * s[1];
        addTo(h, -w * b[t]!, s, s);
        const cur = curvature(p, xs[t]!);
        for (let r = 0; r < 2; r++) for (let q = 0; q < 2; q++) h[r]![q]! -= w * b[t]! * cur[r]![q]!;
      }
    }
  }
  return { value, g, h };
};

/** Σ_n w_n log π_θ(τ_n) and its gradient (E-MAML's score term, before the post-update return). */
export const trajectoryScore = (p: Policy1d, th: Vec, rows: Rows): { value: number; g: Vec } => {
  const w = weightOf(rows);
  let value = 0;
  const g = zeroVec();
  for (let i = 0; i < rows.n; i++) {
    for (let t = 0; t < rows.T; t++) {
      value += w * logPi(p, th, rows.x[i]![t]!, rows.a[i]![t]!);
      const s = score(p, th, rows.x[i]![t]!, rows.a[i]![t]!);
      g[0] += w * s[0];
      g[1] += w * s[1];
    }
  }
  return { value, g };
};

/** R(D′): the mean over trajectories of the undiscounted return (weighted per step as the surrogates are, times T). */
export const postReturn = (rows: Rows): number => weightOf(rows) * rows.r.flat().reduce((s, v) => s + v, 0);

/** Mean over the batch's steps of KL(N(μ_P, σ²) ‖ N(μ_Q, σ²)) and its gradient in θ_Q (fixed σ). */
export const meanKl = (p: Policy1d, thP: Vec, thQ: Vec, rows: Rows): { value: number; g: Vec } => {
  const w = weightOf(rows);
  let value = 0;
  const g = zeroVec();
  for (const row of rows.x) {
    for (const x of row) {
      const d = mean(thQ, x) - mean(thP, x);
      value += (w * d * d) / (2 * p.sigma ** 2);
      g[0] += (w * d * x) / p.sigma ** 2;
      g[1] += (w * d) / p.sigma ** 2;
    }
  }
  return { value, g };
};

/** Adam's update θ − lr·m̂/(√v̂ + ε) from a state (step, m, v), in float64. */
export const adamStep = (th: Vec, grad: Vec, state: { step: number; m: Vec; v: Vec }, lr: number) => {
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  const t = state.step + 1;
  const m: Vec = [b1 * state.m[0] + (1 - b1) * grad[0], b1 * state.m[1] + (1 - b1) * grad[1]];
  const v: Vec = [b2 * state.v[0] + (1 - b2) * grad[0] ** 2, b2 * state.v[1] + (1 - b2) * grad[1] ** 2];
  const next: Vec = [0, 1].map((k) => th[k]! - (lr * (m[k]! / (1 - b1 ** t))) / (Math.sqrt(v[k]! / (1 - b2 ** t)) + eps)) as Vec;
  return { params: next, state: { step: t, m, v } };
};
