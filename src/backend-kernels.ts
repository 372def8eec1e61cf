/**
 * Kernels magicbox registers in place of a backend's own, where the backend's does more work than its
 * contract needs: the wasm backend's Identity, Slice and SplitV.
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

/** The wasm backend's members its own kernels use (BackendWasm; not part of tfjs's public API). */
interface WasmBackendHeap {
  readonly makeOutput: (shape: number[], dtype: tf.DataType) => tf.TensorInfo;
  readonly typedArrayFromHeap: (t: tf.TensorInfo) => Float32Array | Int32Array | Uint8Array;
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

/*
 * Slice and SplitV. tfjs-backend-wasm's Slice first copies the *whole* input out of the heap
 * (`readSync`) and then the slice out of that copy, and its SplitV runs that Slice once per part: a
 * split of a tensor into k parts copies it k + 1 times. Measured on a [6484] vector split in two: ~30 µs
 * with a small heap, ~0.4 ms inside a ProMP iteration (the copy is of the heap's pages, and a fresh
 * array each time). Here a slice whose values are contiguous in the input (any slice of a vector, rows
 * of a matrix: what splitting parameters produces) is one copy of its own values from the heap into the
 * output; every other slice (and strings) goes to the backend's own kernel.
 */
type SliceAttrs = { readonly begin: number | number[]; readonly size?: number | number[] };

const contiguousSlice = (x: tf.TensorInfo, attrs: SliceAttrs, backend: WasmBackendHeap): tf.TensorInfo | undefined => {
  if (x.dtype === 'string') return undefined;
  const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin, attrs.size) as [number[], number[]];
  if (!tf.slice_util.isSliceContinous(x.shape, begin, size)) return undefined;
  const offset = tf.slice_util.computeFlatOffset(begin, tf.util.computeStrides(x.shape));
  const length = size.reduce((a, b) => a * b, 1);
  const out = backend.makeOutput(size, x.dtype);
  // Views taken after the allocation (which may grow the heap and detach older views).
  backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(x).subarray(offset, offset + length) as never);
  return out;
};

const sliceKernel =
  (fallback: tf.KernelFunc): tf.KernelFunc =>
  (args) => {
    const x = (args.inputs as { x: tf.TensorInfo }).x;
    return contiguousSlice(x, args.attrs as unknown as SliceAttrs, args.backend as unknown as WasmBackendHeap) ?? fallback(args);
  };

const splitVKernel =
  (slice: tf.KernelFunc): tf.KernelFunc =>
  (args) => {
    const x = (args.inputs as { x: tf.TensorInfo }).x;
    const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const dim = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, dim);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((s) => {
      const size = [...x.shape];
      size[dim] = s;
      const part = slice({ ...args, attrs: { begin: [...begin], size } as unknown as tf.NamedAttrMap }) as tf.TensorInfo;
      begin[dim]! += s;
      return part;
    });
  };

/** Marks the kernels registered here, so that a second registration changes nothing. */
const magicboxKernels = new WeakSet<tf.KernelFunc>();

/**
 * Registers the contiguous Slice and, on top of it, SplitV for the wasm backend (once). The backend's
 * own Slice stays the fall-back for the other slices.
 */
export const fastWasmSlices = (): void => {
  const current = tf.getKernel(tf.Slice, 'wasm');
  if (current === undefined || magicboxKernels.has(current.kernelFunc)) return;
  const slice = sliceKernel(current.kernelFunc);
  const splitV = splitVKernel(slice);
  magicboxKernels.add(slice);
  magicboxKernels.add(splitV);
  tf.unregisterKernel(tf.Slice, 'wasm');
  tf.registerKernel({ kernelName: tf.Slice, backendName: 'wasm', kernelFunc: slice });
  if (tf.getKernel(tf.SplitV, 'wasm') !== undefined) tf.unregisterKernel(tf.SplitV, 'wasm');
  tf.registerKernel({ kernelName: tf.SplitV, backendName: 'wasm', kernelFunc: splitV });
};
