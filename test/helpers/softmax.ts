/** A categorical's probabilities from logits, and its score ∇_φ log softmax(φ)[z] = e_z − softmax(φ), in float64. */
export const softmax = (row: readonly number[]): number[] => {
  const e = row.map((x) => Math.exp(x));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
};

export const softmaxScore = (phi: readonly number[], z: number): number[] => softmax(phi).map((p, k) => (k === z ? 1 : 0) - p);
