/**
 * The fused engine's hot kernels (assembly/gemm.ts) against this machine's limit and against PyTorch,
 * per call: what bounds the meta-gradient's time once its overheads are gone. On one hidden layer's
 * step of a [rows, width] batch:
 *
 *   matmul            A·W            (a forward pass; a forward tangent)       gemmNN
 *   matmulTransposed  G·Wᵀ           (a backward pass: the engine transposes W, a small matrix, then
 *                                     gemmNN; only the product is timed)
 *   weightGradient    Hᵀ·G           (a weight gradient)                      gemmTN
 *   tanh              tanh(X + b)                                              biasTanh
 *
 * and the peak of the multiply-adds themselves: ten independent chains of 128-bit ones (the build the
 * engine runs: fused multiply-adds with relaxed SIMD, else a multiply and an add), compiled here with
 * AssemblyScript, i.e. the most any WebAssembly product loop can do on one core. With `--reference`,
 * the same four on PyTorch (bench/reference/promp_iteration.py `kernels`, float32, one thread unless
 * --threads), in rounds alternating with magicbox's. Medians of rounds.
 *
 *   npm run bench -- kernels [--reference] [--rows=2000] [--width=64] [--rounds=5] [--threads=1] [--quick]
 *
 * Reported: seconds per call and GFLOP/s (tanh: elements per ns), each product's fraction of the
 * multiply-add peak, and with --reference PyTorch's figures and magicbox ÷ PyTorch per kernel (below 1:
 * magicbox faster).
 */
import asc from 'assemblyscript/asc';
import { chosenMlpKernelBuild, mlpKernelBytes, type MlpKernelBuild } from '../src/ops/mlp/wasm-module.ts';
import { BenchUsageError, benchArgs } from './_options.ts';
import { referenceInstallHint, referenceMissing, startReference } from './_reference.ts';

interface KernelExports {
  readonly gemmNN: (a: number, b: number, c: number, m: number, k: number, n: number, accumulate: number) => void;
  readonly gemmTN: (a: number, b: number, c: number, m: number, k: number, n: number, accumulate: number) => void;
  readonly biasTanh: (x: number, bias: number, out: number, m: number, n: number) => void;
}
/** The WebAssembly API's few members used here (the project's TypeScript libraries do not declare it). */
interface WasmApi {
  readonly Memory: new (d: { initial: number }) => { readonly buffer: ArrayBuffer };
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: unknown };
}
const wasm = (globalThis as unknown as { readonly WebAssembly: WasmApi }).WebAssembly;

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number, digits: number): number => Number(x.toFixed(digits));
const log = (msg: string) => process.stderr.write(`[kernels] ${msg}\n`);

/** Ten independent multiply-add chains on four lanes: `iters` × 80 flops, nothing else in the loop. */
const peakSource = (build: MlpKernelBuild): string => {
  const madd = build === 'fma' ? 'f32x4.relaxed_madd(a, m, c)' : 'f32x4.add(f32x4.mul(a, m), c)';
  const chains = Array.from({ length: 10 }, (_, i) => i);
  return [
    `@inline function step(a: v128, m: v128, c: v128): v128 { return ${madd}; }`,
    'export function peak(iters: i32, x: f32): f32 {',
    ...chains.map((i) => `  let a${i} = f32x4.splat(x + ${i});`),
    '  const m = f32x4.splat(0.999), c = f32x4.splat(0.001);',
    `  for (let i = 0; i < iters; i++) { ${chains.map((i) => `a${i} = step(a${i}, m, c);`).join(' ')} }`,
    `  let s = a0; ${chains.slice(1).map((i) => `s = f32x4.add(s, a${i});`).join(' ')}`,
    '  return f32x4.extract_lane(s, 0);',
    '}',
  ].join('\n');
};

/** GFLOP/s of the multiply-add chains, the best of seven timings after warming up (tier-up). */
const fmaPeak = async (build: MlpKernelBuild): Promise<number> => {
  const { error, binary, stderr } = await asc.compileString(peakSource(build), {
    optimizeLevel: 3,
    runtime: 'stub',
    noAssert: true,
    enable: build === 'fma' ? ['simd', 'relaxed-simd'] : ['simd'],
  });
  if (error !== null || binary === null) throw new Error(`the peak kernel did not compile: ${stderr.toString().trim()}`);
  const { peak } = new wasm.Instance(new wasm.Module(binary), { env: { abort: () => undefined } }).exports as { peak: (n: number, x: number) => number };
  const iters = 2e7;
  for (let w = 0; w < 3; w++) peak(iters, 0.5);
  const rates: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    peak(iters, 0.5);
    rates.push((iters * 80) / ((performance.now() - t0) / 1000) / 1e9);
  }
  return Math.max(...rates);
};

/** Seconds per call of each magicbox kernel on [rows, width] operands, median of 7 timings of `calls`. */
const magicboxKernels = (build: MlpKernelBuild, rows: number, width: number, calls: number) => {
  const memory = new wasm.Memory({ initial: Math.ceil((4 * (4 * rows * width + 2 * width * width + width)) / 65536) + 1 });
  const ex = new wasm.Instance(new wasm.Module(mlpKernelBytes(build)), { env: { memory, abort: () => undefined } }).exports as KernelExports;
  const f32 = new Float32Array(memory.buffer);
  for (let i = 0; i < f32.length; i++) f32[i] = Math.sin(i * 0.37);
  const matrix = rows * width * 4;
  const [a, g, c, w, bias] = [0, matrix, 2 * matrix, 3 * matrix, 3 * matrix + width * width * 4];
  const seconds = (f: () => void): number => {
    for (let i = 0; i < calls / 4; i++) f();
    const times: number[] = [];
    for (let r = 0; r < 7; r++) {
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) f();
      times.push((performance.now() - t0) / 1000 / calls);
    }
    return median(times);
  };
  return {
    matmul: seconds(() => ex.gemmNN(a, w, c, rows, width, width, 0)),
    matmulTransposed: seconds(() => ex.gemmNN(g, w, c, rows, width, width, 0)),
    weightGradient: seconds(() => ex.gemmTN(a, g, w, width, rows, width, 0)),
    tanh: seconds(() => ex.biasTanh(a, bias, c, rows, width)),
  };
};

type Kernel = 'matmul' | 'matmulTransposed' | 'weightGradient' | 'tanh';
const kernels: readonly Kernel[] = ['matmul', 'matmulTransposed', 'weightGradient', 'tanh'];

export const run = async (args: readonly string[] = []): Promise<Record<string, unknown>> => {
  const reference = args.includes('--reference');
  const { quick, value } = benchArgs(
    'kernels',
    args.filter((a) => a !== '--reference'),
    ['rows', 'width', 'rounds', 'threads'],
  );
  const rows = value('rows') ?? 2000;
  const width = value('width') ?? 64;
  const rounds = value('rounds') ?? (quick ? 1 : 5);
  const threads = value('threads') ?? 1;
  if (reference) {
    const missing = referenceMissing();
    if (missing !== undefined) throw new BenchUsageError(`--reference needs PyTorch: ${missing}; ${referenceInstallHint}`);
  }
  const build = chosenMlpKernelBuild();
  const peak = await fmaPeak(build);
  log(`128-bit multiply-add peak (${build} build): ${peak.toFixed(1)} GFLOP/s`);
  const calls = Math.max(20, Math.round(4e8 / (2 * rows * width * width)));
  const ours: Array<Record<Kernel, number>> = [];
  const theirs: Array<Record<Kernel, number>> = [];
  const torch = reference ? startReference(threads) : undefined;
  try {
    for (let r = 0; r < rounds; r++) {
      ours.push(magicboxKernels(build, rows, width, calls));
      if (torch !== undefined) theirs.push((await torch.request({ cmd: 'kernels', threads, rows, width, calls })) as unknown as Record<Kernel, number>);
      log(`round ${r + 1}/${rounds}`);
    }
  } finally {
    torch?.close();
  }
  const flops = 2 * rows * width * width;
  const figures = (runs: ReadonlyArray<Record<Kernel, number>>) =>
    Object.fromEntries(
      kernels.map((k) => {
        const s = median(runs.map((x) => x[k]));
        return [k, k === 'tanh' ? { microseconds: round(s * 1e6, 1), elementsPerNs: round((rows * width) / s / 1e9, 2) } : { microseconds: round(s * 1e6, 1), gflops: round(flops / s / 1e9, 1) }];
      }),
    );
  const magicbox = figures(ours);
  const products = kernels.filter((k) => k !== 'tanh');
  return {
    shape: { rows, width },
    build,
    fmaPeakGflops: round(peak, 1),
    magicbox,
    fractionOfPeak: Object.fromEntries(products.map((k) => [k, round(flops / median(ours.map((x) => x[k])) / 1e9 / peak, 2)])),
    ...(reference
      ? {
          pytorch: { threads, ...figures(theirs) },
          ratio: Object.fromEntries(kernels.map((k) => [k, round(median(ours.map((x) => x[k])) / median(theirs.map((x) => x[k])), 2)])),
        }
      : {}),
    rounds,
    note:
      'seconds per call on one core; fmaPeakGflops: ten independent 128-bit multiply-add chains, the most a WebAssembly product loop can do; ' +
      'ratio = magicbox ÷ PyTorch time per call (below 1: magicbox faster)',
  };
};
