/**
 * Sums over tasks computed one task at a time. The outer step's objective is a sum of independent
 * per-task terms (each task's adapted parameters, its second-order tape, its KL); keeping every task's
 * tape alive at once makes peak memory grow with the number of tasks (at the paper's 40 tasks × 20
 * trajectories it exhausts the WebAssembly heap). Here each task's term is computed and read out inside
 * its own tidy scope, so at most one task's tape exists at any time, and the terms are added in float64
 * in task order: the sum does not depend on how, or where, each task's term was computed — which is
 * what lets the per-task work move to other threads without changing a bit of the result.
 */
import * as tf from '@tensorflow/tfjs';

/** The values of tensors computed in `f`'s own tidy scope, copied out (everything `f` made is freed). */
export const readOut = (f: () => readonly tf.Tensor[]): Float32Array[] => {
  let values: Float32Array[] = [];
  // Copied: a backend's readSync may hand back a view of memory the scope is about to free. Assigned,
  // not returned from the tidy: tidy walks whatever it returns looking for tensors, and a Float32Array
  // is walked entry by entry (measured: 2.4% of a ProMP iteration for the gradients' few thousand).
  tf.tidy(() => {
    values = f().map((t) => Float32Array.from(t.dataSync()));
  });
  return values;
};

/**
 * Σ_{i < count} of the arrays `term(i)` returns (the same number and lengths for every i), in float64,
 * added in task order. `check(i, values)` sees each task's arrays before they are added (e.g. to refuse
 * non-finite ones).
 */
export const sumOverTasks = (
  count: number,
  term: (i: number) => readonly Float32Array[],
  check?: (i: number, values: readonly Float32Array[]) => void,
): Float64Array[] => {
  let sums: Float64Array[] | undefined;
  for (let i = 0; i < count; i++) {
    const values = term(i);
    check?.(i, values);
    if (sums === undefined) sums = values.map((v) => new Float64Array(v.length));
    if (values.length !== sums.length) throw new Error(`sumOverTasks: task ${i} gave ${values.length} arrays, task 0 gave ${sums.length}`);
    values.forEach((v, k) => {
      const s = sums![k]!;
      if (v.length !== s.length) throw new Error(`sumOverTasks: task ${i}'s array ${k} has ${v.length} entries, task 0's ${s.length}`);
      for (let e = 0; e < v.length; e++) s[e]! += v[e]!;
    });
  }
  if (sums === undefined) throw new Error('sumOverTasks: no tasks');
  return sums;
};

/** A float64 sum as a float32 tensor of the given shape, scaled by `scale`. */
export const tensorOf = (values: Float64Array, shape: readonly number[], scale = 1): tf.Tensor => {
  const out = new Float32Array(values.length);
  for (let e = 0; e < values.length; e++) out[e] = values[e]! * scale;
  return tf.tensor(out, [...shape]);
};
