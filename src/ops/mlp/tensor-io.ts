/**
 * Moving a fused op's numbers between tfjs tensors and the kernels' own WebAssembly memory with one copy
 * each way. `dataSync()` on the wasm backend copies the tensor out of tfjs's heap into a fresh array (a
 * copy the kernels then copy again into their memory), and a tensor made from an array that a backend
 * keeps by reference (the cpu backend does) must be handed a copy of its own. Here: on the wasm backend
 * the values are read from a view of its heap and written by the backend's own copy on creation; on
 * every other backend through `dataSync()` and a private copy, as before. Measured: `readSync`'s copies
 * were ~5% of the ProMP outer step's profile, `move` 1%.
 */
import * as tf from '@tensorflow/tfjs';

/** The wasm backend's heap view of a tensor (BackendWasm.typedArrayFromHeap), when that backend is in use. */
const heapView = (): ((t: tf.TensorInfo) => Float32Array) | undefined => {
  if (tf.getBackend() !== 'wasm') return undefined;
  const backend = tf.backend() as unknown as { typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array };
  return typeof backend.typedArrayFromHeap === 'function' ? (t) => backend.typedArrayFromHeap!(t) : undefined;
};

/**
 * Copies a float32 tensor's values into `target` (which must have room for them). The heap view is used
 * at once and dropped: a later tfjs allocation may grow the heap and detach it.
 */
export const copyValues = (t: tf.Tensor, target: Float32Array): void => {
  const view = t.dtype === 'float32' ? heapView() : undefined;
  target.set(view !== undefined ? view(t) : (t.dataSync() as Float32Array));
};

/** A new float32 tensor holding a copy of `values` (which may be a view the caller reuses afterwards). */
export const tensorOfValues = (values: Float32Array, shape: readonly number[]): tf.Tensor =>
  // The wasm backend copies `values` into its heap when the tensor is made; others may keep the array.
  tf.tensor(heapView() !== undefined ? values : values.slice(), [...shape], 'float32');
