/**
 * Where the fused kernels' numbers live. The kernel module (assembly/gemm.ts) imports its memory, so
 * it can run in either of two:
 *
 * - **tfjs-wasm's own heap**, when that backend is in use: a tensor's values are read where the backend
 *   keeps them, scratch space and results are allocated with the backend's allocator, and a result is
 *   handed to tfjs as a tensor over the memory it was computed in. No copy either way. (Measured before:
 *   copying the inputs into a memory of the kernels' own and the results back out was ~5% of a ProMP
 *   iteration's CPU profile.)
 * - **a memory of the kernels' own**, on every other backend (cpu; and the native ones, should their
 *   kernels ever be chosen): values copied in through `dataSync()` and results out through `tf.tensor`.
 *
 * The first reads three members of tfjs-backend-wasm's BackendWasm that are not part of tfjs's public
 * API (its `wasm` module with `_malloc` / `_free` and the exported memory, `dataIdMap`, and
 * `makeOutput` with a memory offset — what the backend's own kernels use); where they are missing (another
 * version), the second is used. A tensor of another backend, or not float32, is copied in either case.
 */
import * as tf from '@tensorflow/tfjs';

/** The WebAssembly memory's members used here (the project's TypeScript libraries do not declare it). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow: (pages: number) => number;
}
const wasmApi = (globalThis as unknown as { readonly WebAssembly: { Memory: new (d: { initial: number }) => WasmMemory } }).WebAssembly;

/** A fresh memory of one page, for a kernel module of its own (it grows on demand). */
export const newWasmMemory = (): WasmMemory => new wasmApi.Memory({ initial: 1 });

/** A matrix in the memory: its byte offset, its shape, and a fresh view of its values at each read. */
export interface Matrix {
  readonly ptr: number;
  readonly rows: number;
  readonly cols: number;
  /** A view of the values: take it after the call's allocations (a growing memory detaches older views). */
  readonly data: Float32Array;
}

/** One kernel call's memory: everything it allocates is released by `close`, but the results it adopted. */
export interface CallMemory {
  /** A scratch matrix (contents undefined). */
  readonly scratch: (rows: number, cols: number) => Matrix;
  /**
   * `body`'s value, the scratch it took given back afterwards (a kernel's blocks reuse one block's
   * scratch). Take inputs and results before: on a memory of the kernels' own they come from the same
   * region and would be given back too.
   */
  readonly scoped: <T>(body: () => T) => T;
  /**
   * A tensor's values as a matrix: in place where they are in this memory, else a copy (which, like a
   * result, may grow the memory: take every input and result before the first view).
   */
  readonly input: (t: tf.Tensor, rows: number, cols: number) => Matrix;
  /** A result matrix that `adopt` will turn into a tensor (allocate every result before the first view). */
  readonly result: (rows: number, cols: number) => Matrix;
  /** The tensor of a `result` matrix (shape [rows, cols] or `shape`), handed over to tfjs. */
  readonly adopt: (m: Matrix, shape?: readonly number[]) => tf.Tensor;
  readonly close: () => void;
}

export interface KernelMemory {
  /** The memory the kernel module imports. */
  readonly memory: WasmMemory;
  /** 'tfjs-wasm' (the backend's heap, in place) or 'own' (copies). */
  readonly kind: 'tfjs-wasm' | 'own';
  /**
   * A call's memory, with room reserved for `floats` scratch floats; a memory of the kernels' own
   * reserves `allFloats` (default: `floats`), since its results and copied inputs come out of the same room.
   */
  readonly open: (floats: number, allFloats?: number) => CallMemory;
}

interface WasmBackendInternals {
  readonly wasm: {
    readonly _malloc: (bytes: number) => number;
    readonly _free: (ptr: number) => void;
    readonly asm?: { readonly memory?: unknown };
  };
  readonly dataIdMap: { get: (dataId: object) => { memoryOffset: number | null } | undefined; has: (dataId: object) => boolean };
  readonly makeOutput: (shape: number[], dtype: 'float32', memoryOffset: number) => tf.TensorInfo;
}

const isMemory = (m: unknown): m is WasmMemory => typeof m === 'object' && m !== null && (m as WasmMemory).buffer instanceof ArrayBuffer && typeof (m as WasmMemory).grow === 'function';

/** tfjs-wasm's internals, when the backend in use is tfjs-wasm and has them. */
const wasmBackendInternals = (): WasmBackendInternals | undefined => {
  if (tf.getBackend() !== 'wasm') return undefined;
  const b = tf.backend() as unknown as Partial<WasmBackendInternals>;
  const ok =
    typeof b.wasm?._malloc === 'function' &&
    typeof b.wasm._free === 'function' &&
    isMemory(b.wasm.asm?.memory) &&
    typeof b.dataIdMap?.get === 'function' &&
    typeof b.makeOutput === 'function';
  return ok ? (b as WasmBackendInternals) : undefined;
};

const view = (memory: WasmMemory, ptr: number, length: number): Float32Array => new Float32Array(memory.buffer, ptr, length);

/**
 * A matrix at byte offset `ptr` of `memory`. A class, not an object literal with a getter: a kernel call
 * makes hundreds of these (its blocks, each parameter's part of θ), and a literal with an accessor was
 * created on V8's slow path (with the class the outer step took 0.954× its time: `outer-ab`).
 */
class MatrixAt implements Matrix {
  constructor(
    private readonly memory: WasmMemory,
    readonly ptr: number,
    readonly rows: number,
    readonly cols: number,
  ) {}
  get data(): Float32Array {
    return view(this.memory, this.ptr, this.rows * this.cols);
  }
}

/** The rows × cols matrix at byte offset `ptr` of `memory`. */
export const matrixAt = (memory: WasmMemory, ptr: number, rows: number, cols: number): Matrix => new MatrixAt(memory, ptr, rows, cols);

const align16 = (bytes: number): number => Math.ceil(bytes / 16) * 16;

/** The largest allocation a 32-bit WebAssembly memory can hold (4 GiB, less a page for the rest). */
const maxBytes = 2 ** 32 - 65536;

/**
 * `bytes`, or an out-of-memory error past what a 32-bit memory can hold: a larger size would wrap
 * around to a small one in the allocator's 32-bit argument. Worded so that the trainer reports it as
 * the batch being too large (iteration.ts memoryError).
 */
const checkedBytes = (bytes: number): number => {
  if (!(bytes <= maxBytes)) throw new RangeError(`the wasm backend is out of memory: the fused MLP kernels need ${bytes} bytes, more than a 32-bit WebAssembly memory holds`);
  return bytes;
};

/** Scratch matrices handed out 16-byte aligned from `start` on, up to `end` (byte offsets). */
const bumpAllocator = (memory: WasmMemory, start: number, end: number) => {
  let top = align16(start);
  const scratch = (rows: number, cols: number): Matrix => {
    const ptr = top;
    top += align16(rows * cols * 4);
    if (top > end) throw new Error(`fused MLP kernels: scratch of ${end - start} bytes exceeded (a sizing bug)`);
    return matrixAt(memory, ptr, rows, cols);
  };
  const scoped = <T>(body: () => T): T => {
    const mark = top;
    try {
      return body();
    } finally {
      top = mark;
    }
  };
  return { scratch, scoped };
};

/** A tensor's values copied into a scratch matrix. */
const copiedInput = (scratch: CallMemory['scratch'], t: tf.Tensor, rows: number, cols: number): Matrix => {
  const m = scratch(rows, cols);
  m.data.set(t.dataSync() as Float32Array);
  return m;
};

/** The kernels' memory in tfjs-wasm's heap, if that backend is in use; else one of their own. */
export const kernelMemory = (): KernelMemory => {
  const backend = wasmBackendInternals();
  return backend !== undefined ? backendHeap(backend) : ownMemory();
};

/** tfjs-wasm's heap (see the module comment). */
const backendHeap = (backend: WasmBackendInternals): KernelMemory => {
  const memory = backend.wasm.asm!.memory as WasmMemory;
  const resident = (t: tf.Tensor): number | undefined => {
    if (t.dtype !== 'float32' || tf.backend() !== (backend as unknown)) return undefined;
    const offset = backend.dataIdMap.get(t.dataId as object)?.memoryOffset;
    return typeof offset === 'number' ? offset : undefined;
  };
  return {
    memory,
    kind: 'tfjs-wasm',
    open: (floats) => {
      const owned: number[] = [];
      const malloc = (bytes: number): number => {
        const ptr = backend.wasm._malloc(Math.max(checkedBytes(bytes), 16));
        if (ptr === 0) throw new RangeError(`the wasm backend is out of memory: ${bytes} bytes for the fused MLP kernels could not be allocated`);
        owned.push(ptr);
        return ptr;
      };
      // Scratch: one block. Results, and the inputs that are not in the heap already, have blocks of
      // their own: the scratch is only what a call works in (one block of rows at a time), and a block
      // reserved for everything a call might hold was ~100 MB at 20,000 rows, which, made while other
      // tensors sat in the heap, grew it by as much.
      const block = malloc(floats * 4 + 16 * 64);
      const { scratch, scoped } = bumpAllocator(memory, block, block + floats * 4 + 16 * 64);
      const own = (rows: number, cols: number): Matrix => matrixAt(memory, malloc(rows * cols * 4), rows, cols);
      return {
        scratch,
        scoped,
        input: (t, rows, cols) => {
          const offset = resident(t);
          return offset !== undefined ? matrixAt(memory, offset, rows, cols) : copiedInput(own, t, rows, cols);
        },
        result: own,
        adopt: (m, shape = [m.rows, m.cols]) => {
          const at = owned.indexOf(m.ptr);
          if (at < 0) throw new Error('fused MLP kernels: adopt() of a matrix that is not a result of this call');
          if (tf.backend() !== (backend as unknown)) return tf.tensor(m.data.slice(), [...shape], 'float32');
          owned.splice(at, 1); // tfjs frees it with the tensor
          return tf.engine().makeTensorFromTensorInfo(backend.makeOutput([...shape], 'float32', m.ptr));
        },
        close: () => {
          for (const ptr of owned.splice(0)) backend.wasm._free(ptr);
        },
      };
    },
  };
};

/** A memory of the kernels' own: each call lays out everything from offset 0 (see the module comment). */
const ownMemory = (): KernelMemory => {
  const memory = newWasmMemory();
  return {
    memory,
    kind: 'own',
    open: (floats, allFloats = floats) => {
      // Results and scratch alike from one bump region, reserved up front so that no view goes stale.
      const capacity = checkedBytes(Math.max(floats, allFloats) * 4 + 16 * 64);
      if (memory.buffer.byteLength < capacity) {
        try {
          memory.grow(Math.ceil((capacity - memory.buffer.byteLength) / 65536));
        } catch {
          throw new RangeError(`the kernels' memory is out of memory: ${capacity} bytes for the fused MLP kernels could not be reserved`);
        }
      }
      const { scratch, scoped } = bumpAllocator(memory, 0, capacity);
      return {
        scratch,
        scoped,
        input: (t, rows, cols) => copiedInput(scratch, t, rows, cols),
        result: scratch,
        // A copy: other backends may keep the array they are given by reference.
        adopt: (m, shape = [m.rows, m.cols]) => tf.tensor(m.data.slice(), [...shape], 'float32'),
        close: () => undefined,
      };
    },
  };
};
