/**
 * What a fused MLP log-probability op computes: the network's widths, its activation, and its head
 * (a diagonal Gaussian with a state-independent log standard deviation, or a categorical over
 * logits). Parameters travel as one list in a fixed order — W0, b0, …, W_{L−1}, b_{L−1}, then logStd
 * when it is learned — and their derivatives as one flat vector in that order.
 */
export type Activation = 'tanh' | 'relu';

export type MlpHead =
  /** log N(a; μ(s), diag σ²), σ = exp(logStd): learned (the last parameter) or fixed. */
  | { readonly kind: 'gaussian'; readonly logStd: 'learned' | number }
  /** log softmax(logits(s))[a]. */
  | { readonly kind: 'categorical' };

export interface MlpSpec {
  /** [input, hidden…, output] */
  readonly widths: readonly number[];
  readonly activation: Activation;
  readonly head: MlpHead;
}

/** Number of linear layers. */
export const layerCount = (spec: MlpSpec): number => spec.widths.length - 1;

/** The shapes of the parameters, in the op's order. */
export const parameterShapes = (spec: MlpSpec): number[][] => {
  const shapes: number[][] = [];
  for (let l = 0; l < layerCount(spec); l++) shapes.push([spec.widths[l]!, spec.widths[l + 1]!], [spec.widths[l + 1]!]);
  if (spec.head.kind === 'gaussian' && spec.head.logStd === 'learned') shapes.push([spec.widths.at(-1)!]);
  return shapes;
};

/** Entries of each parameter, in order, and their total: the length of the flat derivative vector. */
export const parameterSizes = (spec: MlpSpec): { readonly sizes: readonly number[]; readonly total: number } => {
  const sizes = parameterShapes(spec).map((s) => s.reduce((a, b) => a * b, 1));
  return { sizes, total: sizes.reduce((a, b) => a + b, 0) };
};
