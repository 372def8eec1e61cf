/**
 * Policies: a function from parameters and observations to action distributions, written only with
 * ops whose derivatives are right at every order (the meta-gradient differentiates log π twice, and
 * tfjs's own tanh and exp get the second derivative wrong). Parameters are plain `Params` records, so
 * an adapted θ' = θ + α∇L is just another record and stays on the tape.
 *
 * The MLP (rllab / ProMP): tanh hidden layers, linear output, Glorot-uniform weights, zero biases. A
 * Gaussian policy adds a state-independent log standard deviation, learned (parameter `logStd`) or
 * fixed.
 */
import * as tf from '@tensorflow/tfjs';
import type { ActionSpace } from '../envs/types.ts';
import { categoricalKl, categoricalLogProb, gaussianKl, gaussianLogProb, matMul, tanh } from '../ops/index.ts';
import { mlpKernelChooser } from '../ops/mlp/choice.ts';
import type { MlpKernels } from '../ops/mlp/kernels.ts';
import { fusedMlpLogProbAndOutputPacked, fusedMlpLogProbPacked } from '../ops/mlp/log-prob-op.ts';
import { fusedMlpOutputPacked } from '../ops/mlp/output-op.ts';
import { wasmMlpForward } from '../ops/mlp/wasm-kernels.ts';
import type { Activation, MlpSpec } from '../ops/mlp/spec.ts';
import { seededUniform } from '../random.ts';
import type { CategoricalParams, GaussianParams } from '../scg/builder.ts';
import type { Params } from '../surrogates/batch.ts';

/** The seeded JavaScript generators `sample` draws from (src/random.ts). */
export interface PolicyRandom {
  /** standard normal */
  readonly normal: () => number;
  /** uniform on [0, 1) */
  readonly uniform: () => number;
}

export interface Policy {
  readonly kind: 'gaussian' | 'categorical';
  readonly observationDim: number;
  readonly action: ActionSpace;
  /** Hidden layer widths; [] for a linear policy. */
  readonly hidden: readonly number[];
  /**
   * Parameter shapes by name, in a fixed order (W0, b0, W1, b1, …, then logStd when learned). Layer i
   * maps [rows, in] to [rows, out] as x·Wi + bi, so Wi is [in, out].
   */
  readonly paramShapes: Readonly<Record<string, readonly number[]>>;
  /** Fresh parameters: Glorot-uniform weights, zero biases, logStd = initLogStd; the same for the same seed. */
  readonly init: (seed: number) => Params;
  /**
   * Distribution parameters for observations [..., observationDim] (any leading dims, e.g. [N, T]):
   * logits [..., n], or mean [..., dim] with logStd [dim] (broadcastable; the learned logStd is the
   * parameter tensor itself — do not dispose it). Safe at every derivative order.
   */
  readonly distribution: (params: Params, observations: tf.Tensor) => GaussianParams | CategoricalParams;
  /**
   * One action per observation row (observations: [n × observationDim] row-major), drawn with the
   * given generators row by row; keeps no tensor. Returns [n × dim] reals (Gaussian, unclipped) or [n]
   * action indices (categorical).
   */
  readonly sample: (params: Params, observations: Float32Array, n: number, random: PolicyRandom) => Float32Array;
  /**
   * `sample` with the parameters read once: the returned function draws as `sample(params, …)` does.
   * Sampling a trajectory calls it at every step, so it runs the network in plain JavaScript on weights
   * copied out of the tensors (no tfjs op per step); its means and logits agree with `distribution`'s to
   * float32 rounding.
   */
  readonly sampler: (params: Params) => (observations: Float32Array, n: number, random: PolicyRandom) => Float32Array;
  /** log π(a|s): observations [..., observationDim], actions [..., dim] or [...] indices → [...]. */
  readonly logProb: (params: Params, observations: tf.Tensor, actions: tf.Tensor) => tf.Tensor;
  /**
   * `logProb` as one fused op with its own derivative kernels (src/ops/mlp): the same values and
   * first and second derivatives, far fewer kernels; a third derivative through it is an error.
   * Absent for policies without one.
   */
  readonly fusedLogProb?: (params: Params, observations: tf.Tensor, actions: tf.Tensor) => tf.Tensor;
  /**
   * `distribution` with the network's output through the fused output op: the same values, the first
   * derivative only (a second one is an error) — for divergences such as ProMP's KL penalty.
   */
  readonly fusedDistribution?: (params: Params, observations: tf.Tensor) => GaussianParams | CategoricalParams;
  /** KL(π_P(·|s) ‖ π_Q(·|s)) per observation: [..., observationDim] → [...]. */
  readonly kl: (paramsP: Params, paramsQ: Params, observations: tf.Tensor) => tf.Tensor;
  /** The fused ops on the parameters packed into one vector; absent for policies without fused ops. */
  readonly packed?: PackedPolicy;
}

/**
 * A policy's parameters as one flat vector θ — every parameter in `paramShapes` order, each flattened
 * row-major — with the fused ops taking θ directly. A graph whose policy parameter is θ (rl-graph.ts,
 * engine "fused") takes an inner step θ′ = θ + α∇J as one op on one tensor, where named parameters
 * cost a few ops each (an add, a multiply, their saved inputs and their gradients) at every level of
 * the meta-gradient.
 */
export interface PackedPolicy {
  /** The number of entries of θ. */
  readonly size: number;
  /** Named parameters as θ (differentiable: reshapes and a concat). */
  readonly pack: (params: Params) => tf.Tensor1D;
  /** θ as named parameters (differentiable: a split and reshapes). */
  readonly unpack: (theta: tf.Tensor) => Params;
  /** `fusedLogProb` on θ. */
  readonly logProb: (theta: tf.Tensor, observations: tf.Tensor, actions: tf.Tensor) => tf.Tensor;
  /** `fusedDistribution` on θ (the first derivative only). */
  readonly distribution: (theta: tf.Tensor, observations: tf.Tensor) => GaussianParams | CategoricalParams;
  /**
   * `logProb` and `distribution` at once, from one op whose derivatives (to order 2) take both results'
   * cotangents in one backward pass: for a caller that reads both at the same θ and observations.
   */
  readonly logProbAndDistribution?: (
    theta: tf.Tensor,
    observations: tf.Tensor,
    actions: tf.Tensor,
  ) => { readonly logProb: tf.Tensor; readonly distribution: GaussianParams | CategoricalParams };
  /**
   * Whether `logProb` and `distribution` also take θ of K blocks ([K, size]: K parameter settings, block
   * k for the k-th share of the observations' first axis, as src/ops/mlp/kernels.ts's), a
   * distribution's state-independent parameters then one per sample ([B, 1, …, d]). The trainer stacks
   * tasks (src/meta/task-stack.ts) only for policies whose ops do; absent: they do not.
   */
  readonly blocks?: boolean;
}

/** What sampling needs of a policy: its action space, a draw per row, and the log-probability of a draw. */
export type SamplingPolicy = Pick<Policy, 'action' | 'sample' | 'logProb'> & Partial<Pick<Policy, 'sampler' | 'fusedLogProb'>>;

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
}

// ---------------------------------------------------------------------------------------------------
// the MLP

const checkWidth = (what: string, n: number): void => {
  if (!Number.isInteger(n) || n < 1) throw new PolicyError(`${what} must be a positive integer, got ${n}`);
};

/** Layer shapes [W0, b0, …] of an MLP in → hidden… → out. */
const mlpShapes = (inputDim: number, hidden: readonly number[], outputDim: number): Record<string, number[]> => {
  const widths = [inputDim, ...hidden, outputDim];
  const shapes: Record<string, number[]> = {};
  for (let i = 0; i + 1 < widths.length; i++) {
    shapes[`W${i}`] = [widths[i]!, widths[i + 1]!];
    shapes[`b${i}`] = [widths[i + 1]!];
  }
  return shapes;
};

const param = (params: Params, name: string): tf.Tensor => {
  const p = params[name];
  if (p === undefined) throw new PolicyError(`parameter '${name}' is missing (have: ${Object.keys(params).join(', ')})`);
  return p;
};

/**
 * The MLP on [..., inputDim] inputs: one [rows × in]·[in × out] matMul per layer on the flattened
 * leading dims, tanh (the safe one) between layers, linear output; returns [..., outputDim].
 */
const mlp = (params: Params, layers: number, inputDim: number, outputDim: number, x: tf.Tensor, activation: Activation = 'tanh'): tf.Tensor => {
  const shape = x.shape;
  if (shape.length === 0 || shape[shape.length - 1] !== inputDim) {
    throw new PolicyError(`observations have shape [${shape.join(', ')}] but the policy needs [..., ${inputDim}]`);
  }
  const leading = shape.slice(0, -1);
  const rows = leading.reduce((a, b) => a * b, 1);
  let h = tf.reshape(x, [rows, inputDim]);
  for (let i = 0; i < layers; i++) {
    h = tf.add(matMul(h, param(params, `W${i}`)), param(params, `b${i}`));
    if (i + 1 < layers) h = activation === 'tanh' ? tanh(h) : tf.relu(h);
  }
  return tf.reshape(h, [...leading, outputDim]);
};

/** Glorot-uniform weights (limit √(6 / (fan_in + fan_out))), zero biases, drawn in name order. */
const initMlp = (shapes: Readonly<Record<string, readonly number[]>>, seed: number): Record<string, tf.Tensor> => {
  const u = seededUniform(seed);
  const out: Record<string, tf.Tensor> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    if (!name.startsWith('W')) continue;
    const [fanIn, fanOut] = shape as [number, number];
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    const values = new Float32Array(fanIn * fanOut);
    for (let k = 0; k < values.length; k++) values[k] = (2 * u() - 1) * limit;
    out[name] = tf.tensor2d(values, [fanIn, fanOut]);
    out[`b${name.slice(1)}`] = tf.zeros([fanOut]);
  }
  return out;
};

/** The policy's forward kernel for sampling, instantiated on first use (one WebAssembly instance per policy). */
const lazyForward = (): (() => ReturnType<typeof wasmMlpForward>) => {
  let made: ReturnType<typeof wasmMlpForward> | undefined;
  return () => (made ??= wasmMlpForward());
};

/**
 * The MLP's forward pass on weights copied out once, for sampling, where no gradient is needed: the
 * policy's own SIMD WebAssembly forward kernel (src/ops/mlp/wasm-kernels.ts) on plain arrays, no tfjs op
 * per step. Returns [n × outputDim].
 */
const arrayMlp = (
  forward: ReturnType<typeof wasmMlpForward>,
  params: Params,
  layers: number,
  inputDim: number,
  outputDim: number,
  activation: Activation = 'tanh',
): ((x: Float32Array, n: number) => Float32Array) => {
  const weights: Float32Array[] = [];
  const biases: Float32Array[] = [];
  const widths = [inputDim];
  for (let i = 0; i < layers; i++) {
    const w = param(params, `W${i}`);
    const out = w.shape[1]!;
    if (w.shape[0] !== widths[i] || (i + 1 === layers && out !== outputDim)) {
      throw new PolicyError(`parameter W${i} has shape [${w.shape.join(', ')}], expected [${widths[i]}, ${i + 1 === layers ? outputDim : out}]`);
    }
    weights.push(read(w));
    biases.push(read(param(params, `b${i}`)));
    widths.push(out);
  }
  return forward(widths, activation, weights, biases);
};

/** Reads a tensor's values into a fresh array (a backend's readSync may hand back its own buffer). */
const read = (t: tf.Tensor): Float32Array => Float32Array.from(t.dataSync());

const checkRows = (observations: Float32Array, n: number, d: number): void => {
  if (!Number.isInteger(n) || n < 0 || observations.length < n * d) {
    throw new PolicyError(`sample: ${n} rows of ${d} observations need ${n * d} numbers, got ${observations.length}`);
  }
};

/**
 * log π over any leading dims through the fused op: rows flattened to [rows, in], the op's parameters
 * in `paramShapes` order, the result reshaped back.
 */
/** Observations [..., in] as rows [rows, in] for a fused op, with the leading dims to reshape back to. */
const asRows = (spec: MlpSpec, observations: tf.Tensor): { readonly x: tf.Tensor2D; readonly leading: number[]; readonly rows: number } => {
  const inputDim = spec.widths[0]!;
  const shape = observations.shape;
  if (shape.length === 0 || shape[shape.length - 1] !== inputDim) {
    throw new PolicyError(`observations have shape [${shape.join(', ')}] but the policy needs [..., ${inputDim}]`);
  }
  const leading = shape.slice(0, -1);
  const rows = leading.reduce((a, b) => a * b, 1);
  return { x: tf.reshape(observations, [rows, inputDim]) as tf.Tensor2D, leading, rows };
};

/** The network's output over any leading dims through the fused output op, on θ (all of it, or its layer part). */
const fusedOutputOf =
  (spec: MlpSpec, kernels: MlpKernels | undefined, chosen: () => MlpKernels) =>
  (theta: tf.Tensor, observations: tf.Tensor): tf.Tensor => {
    const { x, leading } = asRows(spec, observations);
    return tf.reshape(fusedMlpOutputPacked(spec, kernels ?? chosen(), x)(theta), [...leading, spec.widths.at(-1)!]);
  };

/** log π over any leading dims through the fused op on θ: rows flattened to [rows, in], the result reshaped back. */
const fusedLogProbOf =
  (spec: MlpSpec, kernels: MlpKernels | undefined, chosen: () => MlpKernels) =>
  (theta: tf.Tensor, observations: tf.Tensor, actions: tf.Tensor): tf.Tensor => {
    const { x, leading, rows } = asRows(spec, observations);
    const a = spec.head.kind === 'categorical' ? tf.reshape(actions, [rows]) : tf.reshape(actions, [rows, spec.widths.at(-1)!]);
    return tf.reshape(fusedMlpLogProbPacked(spec, kernels ?? chosen(), x, a)(theta), leading);
  };

/**
 * log π and the network's output over any leading dims from one fused op on θ (its flat [ℓ; O] sliced):
 * [...leading] and [...leading, out], with one backward pass for both results' cotangents.
 */
const fusedLogProbAndOutputOf =
  (spec: MlpSpec, kernels: MlpKernels | undefined, chosen: () => MlpKernels) =>
  (theta: tf.Tensor, observations: tf.Tensor, actions: tf.Tensor): { logProb: tf.Tensor; output: tf.Tensor } => {
    const { x, leading, rows } = asRows(spec, observations);
    const out = spec.widths.at(-1)!;
    const a = spec.head.kind === 'categorical' ? tf.reshape(actions, [rows]) : tf.reshape(actions, [rows, out]);
    const both = fusedMlpLogProbAndOutputPacked(spec, kernels ?? chosen(), x, a)(theta);
    return {
      logProb: tf.reshape(tf.slice(both, [0], [rows]), leading),
      output: tf.reshape(tf.slice(both, [rows], [rows * out]), [...leading, out]),
    };
  };

/** θ ↔ named parameters for parameter shapes in the op's order (paramShapes' order). */
const packing = (paramShapes: Readonly<Record<string, readonly number[]>>) => {
  const names = Object.keys(paramShapes);
  const sizes = names.map((n) => paramShapes[n]!.reduce((a, b) => a * b, 1));
  const size = sizes.reduce((a, b) => a + b, 0);
  return {
    size,
    pack: (params: Params): tf.Tensor1D => tf.concat(names.map((n) => tf.reshape(param(params, n), [-1]))) as tf.Tensor1D,
    unpack: (theta: tf.Tensor): Params => {
      if (theta.rank !== 1 || theta.size !== size) throw new PolicyError(`θ must be a vector of ${size} entries, got shape [${theta.shape.join(', ')}]`);
      const parts = tf.split(theta, sizes);
      return Object.fromEntries(names.map((n, k) => [n, tf.reshape(parts[k]!, [...paramShapes[n]!])]));
    },
  };
};

// ---------------------------------------------------------------------------------------------------
// Gaussian

export interface GaussianMlpOptions {
  readonly observationDim: number;
  readonly actionDim: number;
  /** Hidden widths; default [64, 64]; [] makes the mean linear in the observation. */
  readonly hidden?: readonly number[];
  /** Initial log standard deviation (the fixed one when learnStd is false); default 0. */
  readonly initLogStd?: number;
  /** Whether logStd is a parameter; default true. */
  readonly learnStd?: boolean;
  /** The action bounds recorded in `action` (the environment clips); default ±∞. */
  readonly low?: number;
  readonly high?: number;
  /** The hidden layers' nonlinearity; default tanh (rllab / ProMP). */
  readonly activation?: Activation;
  /** The kernels behind `fusedLogProb`; default: the fastest for the backend in use (src/ops/mlp/choice.ts). */
  readonly kernels?: MlpKernels;
}

/**
 * A diagonal Gaussian policy whose mean is an MLP of the observation and whose log standard deviation
 * is state-independent: parameters W0, b0, …, W_L, b_L and (when learned) logStd [actionDim].
 */
export const gaussianMlpPolicy = (opts: GaussianMlpOptions): Policy => {
  const { observationDim, actionDim, hidden = [64, 64], initLogStd = 0, learnStd = true, activation = 'tanh' } = opts;
  const { low = -Infinity, high = Infinity } = opts;
  checkWidth('observationDim', observationDim);
  checkWidth('actionDim', actionDim);
  hidden.forEach((h, i) => checkWidth(`hidden[${i}]`, h));
  if (!Number.isFinite(initLogStd)) throw new PolicyError(`initLogStd must be finite, got ${initLogStd}`);
  const layers = hidden.length + 1;
  const shapes: Record<string, readonly number[]> = mlpShapes(observationDim, hidden, actionDim);
  if (learnStd) shapes.logStd = [actionDim];
  const paramShapes = Object.freeze(shapes);

  const logStdOf = (params: Params): tf.Tensor =>
    learnStd ? param(params, 'logStd') : tf.fill([actionDim], initLogStd);

  const distribution = (params: Params, observations: tf.Tensor): GaussianParams => ({
    mean: mlp(params, layers, observationDim, actionDim, observations, activation),
    logStd: logStdOf(params),
  });
  const spec: MlpSpec = {
    widths: [observationDim, ...hidden, actionDim],
    activation,
    head: { kind: 'gaussian', logStd: learnStd ? 'learned' : initLogStd },
  };
  // One kernel chooser (and WebAssembly instance) per policy, shared by its fused ops.
  const chosen = mlpKernelChooser();
  const fusedOutput = fusedOutputOf(spec, opts.kernels, chosen);
  const fusedLogProb = fusedLogProbOf(spec, opts.kernels, chosen);
  const fusedLogProbAndOutput = fusedLogProbAndOutputOf(spec, opts.kernels, chosen);
  const { size, pack, unpack } = packing(paramShapes);
  const layerSize = size - (learnStd ? actionDim : 0);
  /**
   * The log-std in θ ([d]); for θ of K blocks ([K, P]: stacked tasks, kernels.ts) each block's, one per
   * sample of the observations' first axis ([B, 1, …, d], block k's on its B/K samples), so that it
   * broadcasts against the mean as [d] does.
   */
  const packedLogStd = (theta: tf.Tensor, observations: tf.Tensor): tf.Tensor => {
    if (!learnStd) return tf.fill([actionDim], initLogStd);
    if (theta.rank === 1) return tf.slice(theta, [layerSize], [actionDim]);
    const blocks = theta.shape[0]!;
    const leading = observations.shape.slice(0, -1);
    const perBlock = tf.reshape(tf.slice(theta, [0, layerSize], [blocks, actionDim]), [blocks, 1, actionDim]);
    // Repeated by a broadcasting add, whose gradient is one sum: tf.tile's is a slice and an add per
    // repeat (and tfjs-wasm's Tile itself ~0.5 ms a call).
    const repeated = tf.add(perBlock, tf.zeros([blocks, leading[0]! / blocks, actionDim]));
    return tf.reshape(repeated, [leading[0]!, ...leading.slice(1).map(() => 1), actionDim]);
  };

  const forward = lazyForward();
  const sampler = (params: Params) => {
    const mean = arrayMlp(forward(), params, layers, observationDim, actionDim, activation);
    const logStd = learnStd ? read(param(params, 'logStd')) : new Float32Array(actionDim).fill(initLogStd);
    if (logStd.length !== actionDim) throw new PolicyError(`parameter logStd has ${logStd.length} entries, expected ${actionDim}`);
    const std = Array.from(logStd, Math.exp);
    return (observations: Float32Array, n: number, random: PolicyRandom): Float32Array => {
      checkRows(observations, n, observationDim);
      const m = mean(observations, n);
      const out = new Float32Array(n * actionDim);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < actionDim; j++) {
          const k = i * actionDim + j;
          out[k] = m[k]! + std[j]! * random.normal();
        }
      }
      return out;
    };
  };

  return {
    kind: 'gaussian',
    observationDim,
    action: { kind: 'continuous', dim: actionDim, low, high },
    hidden: Object.freeze([...hidden]),
    paramShapes,
    init: (seed) => {
      const p = initMlp(paramShapes, seed);
      if (learnStd) p.logStd = tf.fill([actionDim], initLogStd);
      return p;
    },
    distribution,
    sample: (params, observations, n, random) => sampler(params)(observations, n, random),
    sampler,
    logProb: (params, observations, actions) => {
      const d = distribution(params, observations);
      return gaussianLogProb(actions, d.mean, d.logStd);
    },
    fusedLogProb: (params, observations, actions) => fusedLogProb(pack(params), observations, actions),
    fusedDistribution: (params, observations) => ({ mean: fusedOutput(pack(params), observations), logStd: logStdOf(params) }),
    packed: {
      size,
      pack,
      unpack,
      logProb: fusedLogProb,
      distribution: (theta, observations) => ({ mean: fusedOutput(theta, observations), logStd: packedLogStd(theta, observations) }),
      logProbAndDistribution: (theta, observations, actions) => {
        const { logProb, output } = fusedLogProbAndOutput(theta, observations, actions);
        return { logProb, distribution: { mean: output, logStd: packedLogStd(theta, observations) } };
      },
      blocks: true,
    },
    kl: (paramsP, paramsQ, observations) => {
      const p = distribution(paramsP, observations);
      const q = distribution(paramsQ, observations);
      return gaussianKl(p.mean, p.logStd, q.mean, q.logStd);
    },
  };
};

/**
 * mean = W0ᵀ·s + b0 with a fixed standard deviation exp(logStd): the two-parameter policy of 1D
 * examples (observationDim = actionDim = 1 gives exactly θ0 = W0, θ1 = b0).
 */
export const linearGaussianPolicy = (opts: {
  readonly observationDim: number;
  readonly actionDim: number;
  readonly logStd?: number;
  readonly low?: number;
  readonly high?: number;
}): Policy =>
  gaussianMlpPolicy({
    observationDim: opts.observationDim,
    actionDim: opts.actionDim,
    hidden: [],
    learnStd: false,
    initLogStd: opts.logStd ?? 0,
    ...(opts.low === undefined ? {} : { low: opts.low }),
    ...(opts.high === undefined ? {} : { high: opts.high }),
  });

// ---------------------------------------------------------------------------------------------------
// categorical

export interface CategoricalMlpOptions {
  readonly observationDim: number;
  /** The number of actions. */
  readonly actions: number;
  /** Hidden widths; default [64, 64]. */
  readonly hidden?: readonly number[];
  /** The hidden layers' nonlinearity; default tanh. */
  readonly activation?: Activation;
  /** The kernels behind `fusedLogProb`; default: the fastest for the backend in use. */
  readonly kernels?: MlpKernels;
}

/** A categorical policy whose logits are an MLP of the observation: parameters W0, b0, …, W_L, b_L. */
export const categoricalMlpPolicy = (opts: CategoricalMlpOptions): Policy => {
  const { observationDim, actions, hidden = [64, 64], activation = 'tanh' } = opts;
  checkWidth('observationDim', observationDim);
  checkWidth('actions', actions);
  hidden.forEach((h, i) => checkWidth(`hidden[${i}]`, h));
  const layers = hidden.length + 1;
  const paramShapes = Object.freeze(mlpShapes(observationDim, hidden, actions) as Record<string, readonly number[]>);

  const distribution = (params: Params, observations: tf.Tensor): CategoricalParams => ({
    logits: mlp(params, layers, observationDim, actions, observations, activation),
  });
  const sampler = categoricalSampler(observationDim, actions, layers, activation, lazyForward());
  const spec: MlpSpec = { widths: [observationDim, ...hidden, actions], activation, head: { kind: 'categorical' } };
  const chosen = mlpKernelChooser();
  const fusedOutput = fusedOutputOf(spec, opts.kernels, chosen);
  const fusedLogProb = fusedLogProbOf(spec, opts.kernels, chosen);
  const fusedLogProbAndOutput = fusedLogProbAndOutputOf(spec, opts.kernels, chosen);
  const { size, pack, unpack } = packing(paramShapes);

  return {
    kind: 'categorical',
    observationDim,
    action: { kind: 'discrete', n: actions },
    hidden: Object.freeze([...hidden]),
    paramShapes,
    init: (seed) => initMlp(paramShapes, seed),
    distribution,
    sample: (params, observations, n, random) => sampler(params)(observations, n, random),
    sampler,
    logProb: (params, observations, actionIndices) =>
      categoricalLogProb(distribution(params, observations).logits, actionIndices),
    fusedLogProb: (params, observations, actions) => fusedLogProb(pack(params), observations, actions),
    fusedDistribution: (params, observations) => ({ logits: fusedOutput(pack(params), observations) }),
    packed: {
      size,
      pack,
      unpack,
      logProb: fusedLogProb,
      distribution: (theta, observations) => ({ logits: fusedOutput(theta, observations) }),
      logProbAndDistribution: (theta, observations, actions) => {
        const { logProb, output } = fusedLogProbAndOutput(theta, observations, actions);
        return { logProb, distribution: { logits: output } };
      },
      blocks: true,
    },
    kl: (paramsP, paramsQ, observations) =>
      categoricalKl(distribution(paramsP, observations).logits, distribution(paramsQ, observations).logits),
  };
};

/** Draws categorical actions from the logits of the forward kernel (see arrayMlp). */
const categoricalSampler =
  (observationDim: number, actions: number, layers: number, activation: Activation, forward: () => ReturnType<typeof wasmMlpForward>) =>
  (params: Params) => {
    const logitsOf = arrayMlp(forward(), params, layers, observationDim, actions, activation);
    return (observations: Float32Array, n: number, random: PolicyRandom): Float32Array => {
      checkRows(observations, n, observationDim);
      const logits = logitsOf(observations, n);
      const out = new Float32Array(n);
      const p = new Float64Array(actions);
      for (let i = 0; i < n; i++) {
        // softmax in float64, then the inverse CDF of one uniform draw
        let max = -Infinity;
        for (let j = 0; j < actions; j++) max = Math.max(max, logits[i * actions + j]!);
        let total = 0;
        for (let j = 0; j < actions; j++) total += p[j] = Math.exp(logits[i * actions + j]! - max);
        let r = random.uniform() * total;
        let choice = actions - 1;
        for (let j = 0; j < actions; j++) {
          r -= p[j]!;
          if (r < 0) {
            choice = j;
            break;
          }
        }
        out[i] = choice;
      }
      return out;
    };
  };

/** The MLP policy that fits an action space: Gaussian for a continuous one, categorical for a discrete one. */
export const mlpPolicyFor = (
  observationDim: number,
  action: ActionSpace,
  options: { readonly hidden?: readonly number[]; readonly initLogStd?: number } = {},
): Policy =>
  action.kind === 'continuous'
    ? gaussianMlpPolicy({ observationDim, actionDim: action.dim, low: action.low, high: action.high, ...options })
    : categoricalMlpPolicy({ observationDim, actions: action.n, ...(options.hidden ? { hidden: options.hidden } : {}) });

/**
 * Actions drawn uniformly from a bounded continuous space (or uniformly among n discrete ones), with no
 * parameters and no network: the random policy benchmarks and baselines compare against. logProb is
 * the constant −Σ log(high − low) (−log n).
 */
export const uniformPolicy = (action: ActionSpace): SamplingPolicy => {
  if (action.kind === 'continuous' && !(Number.isFinite(action.low) && Number.isFinite(action.high) && action.high > action.low)) {
    throw new PolicyError(`a uniform policy needs finite bounds low < high, got [${action.low}, ${action.high}]`);
  }
  const dim = action.kind === 'continuous' ? action.dim : 1;
  const logDensity = action.kind === 'continuous' ? -dim * Math.log(action.high - action.low) : -Math.log(action.n);
  return {
    action,
    sample: (_params, _observations, n, random) => {
      const out = new Float32Array(n * dim);
      for (let k = 0; k < out.length; k++) {
        out[k] = action.kind === 'continuous' ? action.low + (action.high - action.low) * random.uniform() : Math.floor(action.n * random.uniform());
      }
      return out;
    },
    logProb: (_params, observations) => tf.fill(observations.shape.slice(0, -1), logDensity),
  };
};
