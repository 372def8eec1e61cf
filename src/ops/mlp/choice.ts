/**
 * Which kernels a fused MLP op runs on, by the backend in use: this project's SIMD WebAssembly on the
 * wasm and cpu backends (measured: `npm run bench -- promp-iteration --reference`, and the kernels'
 * own matrix product runs ~2.5× tfjs-wasm's per call on [2000, 64]·[64, 64]); the tfjs kernels on the
 * native TensorFlow backends, whose own kernels are multi-threaded BLAS (not measurable on the project's
 * machines: no native backend installs there).
 */
import * as tf from '@tensorflow/tfjs';
import { tfjsMlpKernels, type MlpKernels } from './kernels.ts';
import { wasmMlpKernels } from './wasm-kernels.ts';

/**
 * A chooser with its own cache: the kernels for the backend in use when called, each set made once
 * (a WebAssembly instance per chooser, so two policies never share memory).
 */
export const mlpKernelChooser = (): (() => MlpKernels) => {
  const made = new Map<string, MlpKernels>();
  return () => {
    const backend = tf.getBackend();
    let kernels = made.get(backend);
    if (kernels === undefined) made.set(backend, (kernels = backend === 'wasm' || backend === 'cpu' ? wasmMlpKernels() : tfjsMlpKernels));
    return kernels;
  };
};
