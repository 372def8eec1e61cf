/**
 * Which kernels a fused MLP op runs on, chosen by the backend in use when the op is built: the tfjs
 * kernels everywhere for now (on the native TensorFlow backends they are the fast ones).
 */
import { tfjsMlpKernels, type MlpKernels } from './kernels.ts';

export const defaultMlpKernels = (): MlpKernels => tfjsMlpKernels;
