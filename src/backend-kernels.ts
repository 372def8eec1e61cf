/**
 * Kernels magicbox registers in place of a backend's own, where the backend's does more work than its
 * contract needs. Today one: the wasm backend's Identity.
 *
 * tfjs runs Identity for every tensor an op saves for its gradient while a tape records (the engine's
 * `clone`, ~440 times in one task's term of ProMP's outer step: every saved input of every op at every
 * derivative level), and tfjs-backend-wasm's Identity allocates and copies the whole tensor. Tensors are
 * immutable and the wasm backend counts references to a buffer (its Reshape shares the input's buffer the
 * same way), so a clone can share the buffer, as tfjs-backend-cpu's Identity does. Measured: the ProMP
 * outer-step term's CPU time −7% (median; −9% best) with bit-identical results (both kernels alternated
 * in one process).
 */
import * as tf from '@tensorflow/tfjs';

interface RefCounting {
  readonly incRef: (dataId: object) => void;
}

/** Identity as a new reference to the input's buffer. */
const sharedIdentity: tf.KernelFunc = ({ inputs, backend }) => {
  const x = (inputs as { x: tf.TensorInfo }).x;
  (backend as unknown as RefCounting).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

/** Registers the sharing Identity for the wasm backend (once; a second call changes nothing). */
export const shareWasmIdentity = (): void => {
  const current = tf.getKernel(tf.Identity, 'wasm');
  if (current?.kernelFunc === sharedIdentity) return;
  if (current !== undefined) tf.unregisterKernel(tf.Identity, 'wasm');
  tf.registerKernel({ kernelName: tf.Identity, backendName: 'wasm', kernelFunc: sharedIdentity });
};
